//! State shared between a driver (`run`, `demo`) and the HTTP API: the pipeline,
//! the incident log, readiness and the intake of events posted over HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::engine::incidents::{Action, Incident};
use crate::engine::{Engine, Outputs};
use crate::event::Topic;
use crate::event::rows::Corrupt;
use crate::eventtime::StreamId;
use crate::ingest::{Intake, RecentIds};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::report::{ReportCache, ReportError, Tables};
use crate::time::Millis;

/// The processing state: pipeline plus every incident action so far.
pub struct Core {
    /// Decode → event time → engine.
    pub pipeline: Pipeline,
    /// Every incident action, in the order fired.
    pub incidents: Vec<Incident>,
    /// Triggered and not yet resolved, by id.
    pub open: BTreeMap<String, Incident>,
    /// The driver's notion of "now" in event time (demo clock or wall clock).
    pub now: Millis,
    /// The input partitions this instance owns (`run`; empty elsewhere).
    pub owned: BTreeSet<StreamId>,
    /// The retention horizon last applied ([`Core::prune`]).
    pruned_to: Millis,
}

impl Core {
    /// A core around `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        Core {
            pipeline,
            incidents: Vec::new(),
            open: BTreeMap::new(),
            now: 0,
            owned: BTreeSet::new(),
            pruned_to: Millis::MIN,
        }
    }

    /// Appends incident actions to the log and tracks which are open.
    pub fn record(&mut self, incidents: &[Incident]) {
        for i in incidents {
            match i.action {
                Action::Trigger => {
                    self.open.insert(i.incident_id.clone(), i.clone());
                }
                Action::Resolve => {
                    self.open.remove(&i.incident_id);
                }
            }
        }
        self.incidents.extend_from_slice(incidents);
    }

    /// Ends a processing step, the same in `run` and `demo`: advances the
    /// watermark (with the live wall clock, or `None`: the inputs' own), which
    /// releases records and fires deadlines, logs the incidents and applies
    /// retention. Returns whether the watermark moved.
    pub fn step(&mut self, wall: Option<Millis>, out: &mut Outputs) -> Result<bool, Corrupt> {
        let before = self.pipeline.eventtime().watermark();
        self.pipeline.advance(wall, out)?;
        self.record(&out.incidents);
        self.prune();
        Ok(self.pipeline.eventtime().watermark() != before)
    }

    /// Applies `engine.retention` at the watermark: the engine's intervals,
    /// capacity hours and finished tickets, and the incident log's actions, before
    /// the horizon are dropped (open incidents stay listed as open). Drivers call
    /// it often; it works once the horizon moved by an hour.
    pub fn prune(&mut self) {
        let wm = self.pipeline.eventtime().watermark();
        if wm == Millis::MIN {
            return;
        }
        let horizon = wm.saturating_sub(self.pipeline.config().engine.retention.0);
        if horizon < self.pruned_to.saturating_add(3_600_000) {
            return;
        }
        self.pruned_to = horizon;
        self.pipeline.engine_mut().prune(horizon);
        if self.incidents.first().is_some_and(|i| i.at_ms < horizon) {
            self.incidents.retain(|i| i.at_ms >= horizon);
        }
    }

    /// An empty core for `config` (topics named as in its `[kafka]` section).
    pub fn empty(config: &Arc<Config>) -> Self {
        let k = config.kafka_or_default();
        Core::new(Pipeline::new(
            config.clone(),
            [k.monitoring_topic, k.tickets_topic],
        ))
    }

    /// The input partition whose state fired an incident.
    fn stream_of(&self, i: &Incident) -> Option<StreamId> {
        let engine = self.pipeline.engine();
        match (&i.ticket, &i.service) {
            (Some(t), _) => engine.tickets().get(t).map(|t| StreamId {
                topic: Topic::Tickets,
                partition: t.partition,
            }),
            (None, Some(s)) => engine
                .services()
                .get(s)?
                .partition
                .map(|partition| StreamId {
                    topic: Topic::Monitoring,
                    partition,
                }),
            (None, None) => None,
        }
    }

    /// A checkpoint of one partition, `None` before its first record.
    pub fn checkpoint(&self, stream: StreamId) -> Option<Checkpoint> {
        let state = self.pipeline.export(stream)?;
        let incidents = self
            .incidents
            .iter()
            .filter(|i| self.stream_of(i) == Some(stream))
            .cloned()
            .collect();
        Some(Checkpoint { state, incidents })
    }

    /// Restores a partition from its checkpoint.
    pub fn restore(&mut self, cp: Checkpoint, wall: Millis) {
        // `Pipeline::import` replaces the stream's own state; only its incidents are left here.
        self.forget_incidents(cp.stream());
        self.pipeline.import(cp.state, wall);
        self.record(&cp.incidents);
        self.incidents
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    }

    /// Drops a partition's state (revoked: another instance owns it now).
    pub fn forget(&mut self, stream: StreamId) {
        self.forget_incidents(stream);
        self.pipeline.forget(stream);
    }

    /// Drops the incident log entries of a partition's services or tickets.
    fn forget_incidents(&mut self, stream: StreamId) {
        let gone: std::collections::HashSet<String> = self
            .incidents
            .iter()
            .filter(|i| self.stream_of(i) == Some(stream))
            .map(|i| i.incident_id.clone())
            .collect();
        if !gone.is_empty() {
            self.incidents.retain(|i| !gone.contains(&i.incident_id));
            self.open.retain(|id, _| !gone.contains(id));
        }
    }

    /// Updates the metrics after a step that took `step` and fired `fired`.
    pub fn observe(&self, metrics: &Metrics, step: Duration, fired: &[Incident]) {
        metrics.observe(&self.pipeline, &self.open, self.now, step, fired);
    }
}

/// What the API reads: the reports' inputs as of one processing step, published
/// by the driver ([`Shared::publish`]), so no request waits on the engine and
/// no engine step waits on a request.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The engine's state.
    pub engine: Engine,
    /// Every incident action kept (see `engine.retention`), in the order fired.
    pub incidents: Vec<Incident>,
    /// Triggered and not yet resolved, by id.
    pub open: BTreeMap<String, Incident>,
    /// The driver's clock.
    pub now: Millis,
    /// The global watermark (`Millis::MIN` before any record).
    pub watermark: Millis,
    /// The smallest `ts` seen.
    pub min_ts: Option<Millis>,
    /// Records read so far.
    pub records_read: u64,
    /// The partitions the core owned ([`Core::owned`]).
    pub owned: BTreeSet<StreamId>,
    /// Report tables and reports made from this snapshot, on first use.
    pub reports: ReportCache,
}

impl Snapshot {
    /// A copy of what `core` holds now.
    pub fn of(core: &Core) -> Self {
        let p = &core.pipeline;
        Snapshot {
            engine: p.engine().clone(),
            incidents: core.incidents.clone(),
            open: core.open.clone(),
            now: core.now,
            watermark: p.eventtime().watermark(),
            min_ts: p.min_ts(),
            records_read: p.counts().read,
            owned: core.owned.clone(),
            reports: ReportCache::default(),
        }
    }

    /// The default end of a report period: the watermark (everything before it
    /// is final), or the driver's clock before any record arrived.
    pub fn default_to(&self) -> Millis {
        match self.watermark {
            Millis::MIN => self.now,
            wm => wm,
        }
    }

    /// Every state table.
    pub fn tables(&self) -> Result<Tables, ReportError> {
        Tables::from_engine(&self.engine, &self.incidents)
    }

    /// The tables the SLA report reads (built once per snapshot).
    pub fn report_tables(&self) -> Result<&Tables, ReportError> {
        self.reports.tables(&self.engine)
    }
}

/// Event ids remembered to skip repeated HTTP deliveries of the same event.
const RECENT_IDS: usize = 100_000;
/// Snapshots are taken at most this often; copying a large state must not
/// slow ingestion, so the interval also grows to 10× the last copy's duration.
const MIN_PUBLISH_INTERVAL: Duration = Duration::from_millis(200);

/// The global view from the changelog and the partitions it covers.
struct Global {
    snapshot: Arc<Snapshot>,
    covers: BTreeSet<StreamId>,
}

/// When the last snapshot was taken and how long it took.
struct Published {
    at: Instant,
    took: Duration,
    stale: bool,
}

/// Everything the API reads, and the driver's core behind it.
pub struct Shared {
    /// The configuration.
    pub config: Arc<Config>,
    core: Mutex<Core>,
    live: ArcSwap<Snapshot>,
    published: Mutex<Published>,
    /// Every partition's latest checkpoint from the changelog, restored into a
    /// read-only snapshot (`run` with several instances).
    global: ArcSwapOption<Global>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    ready: AtomicBool,
    /// Where events posted over HTTP go (Kafka in `run`, the engine in `demo`).
    pub intake: Box<dyn Intake>,
    /// Recently published event ids (HTTP retries and repeats are not republished).
    pub recent: RecentIds,
}

impl Shared {
    /// Shared state for `config` around `core`, its first snapshot published.
    pub fn new(config: Arc<Config>, core: Core, intake: Box<dyn Intake>) -> Self {
        Shared {
            live: ArcSwap::from_pointee(Snapshot::of(&core)),
            published: Mutex::new(Published {
                at: Instant::now(),
                took: Duration::ZERO,
                stale: false,
            }),
            global: ArcSwapOption::empty(),
            config,
            core: Mutex::new(core),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            intake,
            recent: RecentIds::new(RECENT_IDS),
        }
    }

    /// Locks the core: for the driver only (the API reads [`Shared::snapshot`]).
    /// A panic while holding the lock cannot leave the engine half updated in a
    /// way readers care about, so a poisoned lock is still used.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a snapshot of `core` (which the driver has locked) if the last
    /// one is old enough, or marks the state as changed so that a later call
    /// (an idle tick: `changed = false`) publishes it. A change of the owned
    /// partitions is published at once: which view reports read depends on it.
    pub fn publish(&self, core: &Core, changed: bool) {
        let mut last = self.published.lock().unwrap_or_else(|p| p.into_inner());
        last.stale |= changed;
        let wait = MIN_PUBLISH_INTERVAL.max(last.took * 10);
        let moved = self.live.load().owned != core.owned;
        if !moved && (!last.stale || last.at.elapsed() < wait) {
            return;
        }
        *last = self.store(core);
    }

    /// Publishes a snapshot of `core` now (history loaded, a test's setup).
    pub fn publish_now(&self, core: &Core) {
        let published = self.store(core);
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = published;
    }

    fn store(&self, core: &Core) -> Published {
        let started = Instant::now();
        self.live.store(Arc::new(Snapshot::of(core)));
        Published {
            at: Instant::now(),
            took: started.elapsed(),
            stale: false,
        }
    }

    /// What reports read: the live snapshot, or, when other instances own
    /// partitions this one does not, the global view built from their
    /// checkpoints (as of their last checkpoint).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let live = self.live.load_full();
        // Ownership and state come from one snapshot, so a newly assigned
        // partition is never read from a snapshot taken before its restore.
        match self.global.load_full() {
            Some(global) if !global.covers.is_subset(&live.owned) => global.snapshot.clone(),
            _ => live,
        }
    }

    /// The live core's last published snapshot: this instance's own partitions
    /// only (what its `/metrics` describe).
    pub fn live_snapshot(&self) -> Arc<Snapshot> {
        self.live.load_full()
    }

    /// The partitions the live core owned at its last published snapshot.
    pub fn owned(&self) -> BTreeSet<StreamId> {
        self.live.load().owned.clone()
    }

    /// Replaces the global view (a snapshot of a core restored from every
    /// partition's checkpoint).
    pub fn set_global(&self, snapshot: Snapshot, covers: BTreeSet<StreamId>) {
        let snapshot = Arc::new(snapshot);
        self.global
            .store(Some(Arc::new(Global { snapshot, covers })));
    }

    /// Marks the service ready (state restored, partitions assigned).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether `/readyz` says ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RawRecord;

    const D: Millis = 86_400_000;
    // 2026-10-30: retention keeps at least the current month (an exclusion
    // may make it be recomputed), so three days from here prune October.
    const T0: Millis = 1_793_318_400_000;

    #[test]
    fn readers_see_whole_steps_while_the_writer_advances() {
        let text = "[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\noutage_after = \"1m\"\nresolve_after = \"1m\"\n";
        let config = Arc::new(Config::parse(text, std::path::Path::new("t.toml")).expect("config"));
        let core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
        let shared = Arc::new(Shared::new(config, core, Box::new(crate::ingest::NoIntake)));
        let mon = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let steps: i64 = 400;
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let (mut read, mut watermark, mut seen) = (0, Millis::MIN, 0);
                while read < (steps * 10) as u64 {
                    let s = shared.snapshot();
                    assert!(s.records_read >= read && s.watermark >= watermark);
                    (read, watermark) = (s.records_read, s.watermark);
                    // The open set is exactly what the published log leaves open.
                    let mut open = BTreeSet::new();
                    for i in &s.incidents {
                        match i.action {
                            Action::Trigger => open.insert(i.incident_id.as_str()),
                            Action::Resolve => open.remove(i.incident_id.as_str()),
                        };
                    }
                    assert!(open.iter().eq(s.open.keys()), "a torn snapshot");
                    seen += 1;
                    std::thread::yield_now();
                }
                seen
            })
        };
        for step in 0..steps {
            // Ten minutes per step, down every other step: outages open and close.
            let status = if step % 2 == 0 { "down" } else { "up" };
            let lines: Vec<String> = (0..10)
                .map(|m| {
                    let (n, ts) = (step * 10 + m, T0 + (step * 10 + m) * 60_000);
                    format!(r#"{{"event_id":"p{n}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"{status}"}}"#)
                })
                .collect();
            let mut out = Outputs::default();
            let mut core = shared.core();
            let first = step * 10;
            core.pipeline
                .ingest(
                    mon,
                    &RawRecord::numbered(&lines, 0, first),
                    T0 + D * 10,
                    &mut out,
                )
                .expect("decoded rows");
            core.pipeline.advance(None, &mut out).expect("decoded rows");
            core.record(&out.incidents);
            shared.publish(&core, true);
        }
        // The last steps came faster than the interval: an idle tick publishes them.
        std::thread::sleep(MIN_PUBLISH_INTERVAL);
        shared.publish(&shared.core(), false);
        assert_eq!(shared.snapshot().records_read, (steps * 10) as u64);
        let seen = reader.join().expect("reader saw only consistent snapshots");
        assert!(seen > 0);
        let last = shared.snapshot();
        assert_eq!(last.records_read, (steps * 10) as u64);
        assert!(last.incidents.len() > 100, "outages were published");
    }

    #[test]
    fn retention_forgets_old_intervals_hours_and_incidents_but_not_open_ones() {
        let text = "burn_alerts = []\n[engine]\nretention = \"1d\"\n[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n";
        let config = Arc::new(Config::parse(text, std::path::Path::new("t.toml")).expect("config"));
        let mut core = Core::new(Pipeline::new(config, ["m".into(), "t".into()]));
        let (mon, tkt) = (
            StreamId {
                topic: Topic::Monitoring,
                partition: 0,
            },
            StreamId {
                topic: Topic::Tickets,
                partition: 0,
            },
        );
        // Three days of minute probes, an hourly metric just after each hour's
        // probe: down for 10 minutes on day 1 (an outage that resolves) and from the
        // last 10 minutes of day 3 on (one that stays open).
        let mut lines = Vec::new();
        for m in 0..3 * 1440 {
            let down = (100..110).contains(&m) || m >= 3 * 1440 - 10;
            let status = if down { "down" } else { "up" };
            let ts = T0 + m * 60_000;
            lines.push(format!(r#"{{"event_id":"p{m}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"{status}"}}"#));
            if m % 60 == 0 {
                lines.push(format!(r#"{{"event_id":"c{m}","ts":{ts},"service":"web","kind":"metric","resource":"db","metric":"disk","value":1,"capacity":2}}"#));
            }
        }
        let ticket = |id: &str, ts: Millis, what: &str| {
            format!(r#"{{"event_id":"{id}-{ts}","ts":{ts},"ticket":"{id}",{what}}}"#)
        };
        let created = r#""type":"created","customer":"c","priority":"P3","kind":"request""#;
        let tickets = [
            ticket("DONE", T0, created),
            ticket("OPEN", T0, created),
            ticket(
                "DONE",
                T0 + 60_000,
                r#""type":"status","status":"resolved""#,
            ),
            ticket("NEW", T0 + 3 * D - 60_000, created),
            ticket(
                "NEW",
                T0 + 3 * D - 30_000,
                r#""type":"status","status":"closed""#,
            ),
        ];
        let mut out = Outputs::default();
        let p = &mut core.pipeline;
        p.ingest(
            mon,
            &RawRecord::numbered(&lines, 0, 0),
            T0 + 3 * D,
            &mut out,
        )
        .expect("decoded rows");
        p.ingest(
            tkt,
            &RawRecord::numbered(&tickets, 0, 0),
            T0 + 3 * D,
            &mut out,
        )
        .expect("decoded rows");
        p.finish(None, &mut out).expect("decoded rows");
        assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
        core.record(&out.incidents);
        let opened = core.open.len();
        assert_eq!(opened, 1, "the outage at the end is open");
        assert!(core.incidents.iter().any(|i| i.at_ms < T0 + D));
        assert!(
            core.pipeline
                .engine()
                .capacity()
                .values()
                .any(|s| s.hours().len() == 72)
        );
        core.prune();
        let horizon = core.pipeline.eventtime().watermark() - D;
        let engine = core.pipeline.engine();
        let web = &engine.services()["web"];
        assert!(web.intervals().all(|(_, end, _)| end > horizon));
        assert!(web.intervals().next().is_some());
        let hours: Vec<usize> = engine
            .capacity()
            .values()
            .map(|s| s.hours().len())
            .collect();
        assert_eq!(hours, [25], "the hours that end after the horizon");
        assert!(core.incidents.iter().all(|i| i.at_ms >= horizon));
        assert_eq!(core.open.len(), opened, "open incidents stay open");
        // Tickets done before the horizon go; open or recent ones stay.
        let tickets = core.pipeline.engine().tickets();
        assert!(tickets.get("DONE").is_none());
        assert!(tickets.get("OPEN").is_some() && tickets.get("NEW").is_some());
    }
}
