//! The one processing path every driver uses (replay, `run`, demo, tests):
//! decode → event time → engine. No I/O: drivers feed raw records and collect
//! [`Outputs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::buffer::Buffer;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::{Engine, EngineSlice, Outputs};
use crate::event::rows::{Corrupt, Rows};
use crate::event::{Decoder, RawRecord, Reason, Topic};
use crate::eventtime::{EventTime, EventTimeConfig, StreamId, StreamState};
use crate::time::Millis;

/// The share of dead letters (percent of records read) above which a replay
/// warns: generated traffic, with its deliberate faults, stays under 1 %.
pub const WARN_DEADLETTER_PCT: u64 = 5;

/// Record counts; invariant: `read = applied + Σ deadletter + handed_off + buffered`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Records read from all inputs.
    pub read: u64,
    /// Records applied to the engine.
    pub applied: u64,
    /// Dead-lettered records by reason (every reason listed, zeros included).
    pub deadletter: BTreeMap<&'static str, u64>,
    /// Records dropped because their partition was revoked before release (live only).
    #[serde(skip_serializing_if = "is_zero")]
    pub handed_off: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Counts {
    fn new() -> Self {
        Counts {
            deadletter: Reason::ALL.iter().map(|r| (r.as_str(), 0)).collect(),
            ..Default::default()
        }
    }
    /// Total dead-lettered.
    pub fn deadlettered(&self) -> u64 {
        self.deadletter.values().sum()
    }

    /// A warning when at least [`WARN_DEADLETTER_PCT`] % of the records read
    /// were dead-lettered: the reasons by count, and the likely cause of the
    /// largest. A wrong config otherwise shows only as thin reports.
    pub fn deadletter_warning(&self) -> Option<String> {
        let dead = self.deadlettered();
        if self.read == 0
            || dead.saturating_mul(100) < self.read.saturating_mul(WARN_DEADLETTER_PCT)
        {
            return None;
        }
        let mut reasons: Vec<(&str, u64)> = (self.deadletter.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (*r, *n))
            .collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let top = reasons
            .first()
            .and_then(|(r, _)| Reason::ALL.iter().find(|x| x.as_str() == *r));
        let pct = dead as f64 * 100.0 / self.read as f64;
        Some(format!(
            "{pct:.1} % of the records read were dead-lettered ({}){}",
            listed.join(", "),
            top.map(|r| format!("; {}: {}", r.as_str(), r.hint()))
                .unwrap_or_default()
        ))
    }
}

/// Decode, event time and engine, wired together.
pub struct Pipeline {
    config: Arc<Config>,
    decoders: [Decoder; 2],
    eventtime: EventTime,
    engine: Engine,
    counts: Counts,
}

impl Pipeline {
    /// A pipeline for `config`; `topic_names` (monitoring, tickets) name topics in dead letters.
    pub fn new(config: Arc<Config>, topic_names: [String; 2]) -> Self {
        let e = &config.engine;
        let et = EventTimeConfig {
            allowed_lateness: e.allowed_lateness.0,
            dedup_horizon: e.dedup_horizon.0,
            idle_timeout: e.idle_timeout.0,
            max_future: e.max_future.0,
        };
        Pipeline {
            decoders: [
                Decoder::new(Topic::Monitoring, &topic_names[0]).with_max_window(e.max_window.0),
                Decoder::new(Topic::Tickets, &topic_names[1]),
            ],
            engine: Engine::new(config.clone(), &topic_names[1]),
            eventtime: EventTime::new(et, topic_names),
            config,
            counts: Counts::new(),
        }
    }

    /// Counts so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The event-time layer (stream registration, offsets, watermark).
    pub fn eventtime(&self) -> &EventTime {
        &self.eventtime
    }

    /// Mutable access to the event-time layer (stream registration by drivers).
    pub fn eventtime_mut(&mut self) -> &mut EventTime {
        &mut self.eventtime
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Mutable access to the engine (retention).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Highest `ts` that moved a watermark so far, on any stream.
    pub fn max_ts(&self) -> Option<Millis> {
        self.eventtime.ts_range().map(|r| r.1)
    }

    /// Lowest `ts` that moved a watermark so far, on any stream.
    pub fn min_ts(&self) -> Option<Millis> {
        self.eventtime.ts_range().map(|r| r.0)
    }

    /// Decodes and admits a chunk of records of one stream. `now` is the
    /// processing clock (contract section 2's `future` check): the wall clock
    /// live, the simulated clock in the demo, `--now` in replay.
    pub fn ingest(
        &mut self,
        stream: StreamId,
        records: &[RawRecord],
        now: Millis,
        out: &mut Outputs,
    ) -> Result<(), Corrupt> {
        self.ingest_in(stream, records, None, now, out)
    }

    /// [`Pipeline::ingest`] for records whose payloads lie in `text` (a file
    /// block, a Kafka poll): the buffered rows keep their text as views into
    /// it ([`Decoder::decode_in`]).
    pub fn ingest_in(
        &mut self,
        stream: StreamId,
        records: &[RawRecord],
        text: Option<&Buffer>,
        now: Millis,
        out: &mut Outputs,
    ) -> Result<(), Corrupt> {
        if records.is_empty() {
            return Ok(());
        }
        self.counts.read += records.len() as u64;
        let decoder = &self.decoders[stream.topic.index()];
        let chunk = decoder.decode_in(stream.partition, records, text);
        let batch = chunk.batch.clone();
        let rows = Rows::new(stream.topic, &batch)?;
        let config = &self.config;
        let mut admit = |row: usize| admit(config, &rows, row);
        let before = out.dead_letters.len();
        let ingested = (self.eventtime).ingest(chunk, now, &mut admit, &mut out.dead_letters);
        self.count_dead(out, before);
        ingested
    }

    /// The state one input stream owns, `None` before its first record.
    pub fn export(&self, stream: StreamId) -> Option<PartitionState> {
        Some(PartitionState {
            eventtime: self.eventtime.export_stream(stream)?,
            engine: self.engine.export(stream),
            min_ts: self.min_ts(),
            max_ts: self.max_ts(),
        })
    }

    /// Restores a stream's state (from a checkpoint or the changelog).
    pub fn import(&mut self, state: PartitionState, wall: Millis) {
        let stream = state.eventtime.stream;
        self.engine.forget(stream);
        self.engine.import(state.engine);
        let decoder = &self.decoders[stream.topic.index()];
        self.eventtime.import_stream(state.eventtime, decoder, wall);
        for t in [state.min_ts, state.max_ts].into_iter().flatten() {
            self.eventtime.widen_ts_range(t);
        }
    }

    /// Drops everything a stream owns (its partition moved to another instance).
    pub fn forget(&mut self, stream: StreamId) {
        self.eventtime.remove_stream(stream);
        self.engine.forget(stream);
    }

    /// Recomputes the watermark, applies released records and fires due deadlines.
    pub fn advance(&mut self, wall: Option<Millis>, out: &mut Outputs) -> Result<(), Corrupt> {
        let released = self.eventtime.advance(wall);
        let watermark = self.eventtime.watermark();
        self.apply(released, watermark, out)
    }

    /// End of replay input: the watermark becomes the later of `to` and the highest
    /// `ts` read; everything buffered is applied and deadlines up to it fire.
    pub fn finish(&mut self, to: Option<Millis>, out: &mut Outputs) -> Result<(), Corrupt> {
        let final_wm = match (to, self.max_ts()) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(Millis::MIN),
        };
        let released = self.eventtime.finish(final_wm);
        // Input is complete: deadlines at the final watermark itself fire too.
        self.apply(released, final_wm.saturating_add(1), out)
    }

    /// Applies released records, then fires deadlines strictly before `horizon`.
    fn apply(
        &mut self,
        released: crate::eventtime::Released,
        horizon: Millis,
        out: &mut Outputs,
    ) -> Result<(), Corrupt> {
        let before = out.dead_letters.len();
        let applied_before = out.applied;
        self.counts.handed_off += released.handed_off;
        let applied = (self.engine.apply_monitoring(&released.monitoring, out))
            .and_then(|()| self.engine.apply_tickets(&released.tickets, out));
        self.counts.applied += out.applied - applied_before;
        self.count_dead(out, before);
        applied?;
        self.engine.advance(horizon, out);
        Ok(())
    }

    fn count_dead(&mut self, out: &Outputs, from: usize) {
        for d in &out.dead_letters[from..] {
            *self.counts.deadletter.entry(d.reason.as_str()).or_default() += 1;
        }
    }
}

/// The state one input partition owns: its event-time state and engine slice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionState {
    /// Watermark, dedup ids, buffered records, next offset.
    pub eventtime: StreamState,
    /// Services, capacity series or tickets keyed to the partition.
    pub engine: EngineSlice,
    /// Lowest `ts` the process had read (default report periods start there).
    pub min_ts: Option<Millis>,
    /// Highest `ts` the process had read.
    pub max_ts: Option<Millis>,
}

/// Config-based admission after dedup: `unknown_service`, `unknown_customer`.
pub(crate) fn admit(
    config: &Config,
    rows: &Rows,
    row: usize,
) -> Result<Option<(Reason, String)>, Corrupt> {
    Ok(match rows {
        Rows::Monitoring(rows) => {
            let service = rows.service(row)?;
            config.service(service).is_none().then(|| {
                (
                    Reason::UnknownService,
                    format!("service {service:?} is not configured"),
                )
            })
        }
        Rows::Tickets(rows) => rows.created_for(row)?.and_then(|customer| {
            config.customer(customer).is_none().then(|| {
                (
                    Reason::UnknownCustomer,
                    format!("customer {customer:?} is not configured"),
                )
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CONFIG: &str =
        "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n";
    const TKT: StreamId = StreamId {
        topic: Topic::Tickets,
        partition: 0,
    };

    fn pipeline() -> Pipeline {
        let config = Arc::new(Config::parse(CONFIG, Path::new("t.toml")).expect("config"));
        Pipeline::new(config, ["mon".into(), "tkt".into()])
    }

    fn feed(p: &mut Pipeline, stream: StreamId, lines: &[&str]) -> Outputs {
        let recs = RawRecord::numbered(lines, 0, 0);
        let mut out = Outputs::default();
        p.ingest(stream, &recs, 0, &mut out).expect("decoded rows");
        p.finish(None, &mut out).expect("decoded rows");
        out
    }

    #[test]
    fn ticket_reasons_are_decided_in_event_time_order() {
        let mut p = pipeline();
        let out = feed(
            &mut p,
            TKT,
            &[
                // Arrives before its `created` but is later in event time: applied.
                r#"{"event_id":"1","ts":2000,"ticket":"A","type":"responded"}"#,
                r#"{"event_id":"2","ts":1000,"ticket":"A","type":"created","customer":"acme","priority":"P1","kind":"incident"}"#,
                r#"{"event_id":"3","ts":3000,"ticket":"A","type":"created","customer":"acme","priority":"P1","kind":"incident"}"#,
                r#"{"event_id":"4","ts":500,"ticket":"B","type":"status","status":"open"}"#,
                r#"{"event_id":"5","ts":4000,"ticket":"B","type":"created","customer":"initech","priority":"P1","kind":"incident"}"#,
                r#"{"event_id":"6","ts":900,"ticket":"C","type":"priority","priority":"P3"}"#,
                r#"{"event_id":"7","ts":1000,"ticket":"C","type":"created","customer":"acme","priority":"P2","kind":"request"}"#,
            ],
        );
        let fate: Vec<(i64, Reason)> = out
            .dead_letters
            .iter()
            .map(|d| (d.offset, d.reason))
            .collect();
        assert_eq!(
            fate,
            vec![
                (4, Reason::UnknownCustomer),
                (3, Reason::UnknownTicket),
                (5, Reason::UnknownTicket),
                (2, Reason::Conflict)
            ]
        );
        let c = p.counts();
        assert_eq!((c.read, c.applied, c.deadlettered()), (7, 3, 4));
        assert_eq!(c.deadletter["unknown_customer"], 1);
        assert_eq!(c.deadletter["conflict"], 1);
        assert_eq!(p.engine().tickets().len(), 2);
    }

    #[test]
    fn finish_sets_watermark_to_later_of_to_and_max_ts() {
        let mut p = pipeline();
        let mon = StreamId {
            topic: Topic::Monitoring,
            partition: 1,
        };
        feed(
            &mut p,
            mon,
            &[
                r#"{"event_id":"a","ts":5000,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            ],
        );
        assert_eq!(p.eventtime().watermark(), 5000);
        let mut out = Outputs::default();
        p.finish(Some(9000), &mut out).expect("decoded rows");
        assert_eq!(p.eventtime().watermark(), 9000);
        assert_eq!(p.max_ts(), Some(5000));
    }
}
