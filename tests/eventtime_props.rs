//! Property tests: the event-time layer equals a deliberately simple reference
//! model on random streams with disorder, duplicates, bad records and records
//! from wrong clocks (contract section 2), whatever the chunking.

use std::collections::HashMap;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use proptest::prelude::*;
use slaflow::event::schema::col;
use slaflow::event::{Decoder, RawRecord, Reason, Topic};
use slaflow::eventtime::{EventTime, EventTimeConfig, StreamId};

const LATENESS: i64 = 30_000;
const HORIZON: i64 = 200_000;
/// The processing clock and `engine.max_future` of the `future` check.
const NOW: i64 = 2_000_000;
const MAX_FUTURE: i64 = 60_000;

#[derive(Debug, Clone)]
struct Rec {
    stream: i32,
    line: String,
    /// `None`: malformed (whether or not its `ts` could be read).
    ts: Option<i64>,
    id: Option<String>,
    service: String,
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((0..2i32, 0..5000i64, 0..45_000i64, 0..30u32, 0..20u8), 1..200).prop_map(|raw| {
        let mut clock = [0i64; 2];
        raw.into_iter()
            .map(|(stream, step, back, id, dice)| {
                clock[stream as usize] += step;
                let mut ts = clock[stream as usize] - back;
                let service = if dice == 1 { "ghost" } else { "web" };
                if dice == 0 {
                    Rec { stream, line: "{bad".into(), ts: None, id: None, service: service.into() }
                } else if dice == 2 {
                    // Malformed with a readable (and far) `ts`: must not move the watermark.
                    let line = format!(r#"{{"event_id":"x","ts":{},"service":"web","kind":"probe","source":"s","status":"sideways"}}"#, ts + 500_000);
                    Rec { stream, line, ts: None, id: None, service: service.into() }
                } else {
                    if dice == 3 {
                        // A wrong clock: past the processing clock + max_future,
                        // now and then exactly on the limit (accepted).
                        ts = NOW + MAX_FUTURE + if back % 8 == 0 { 0 } else { 1 + back };
                    }
                    let id = format!("e{id}");
                    let line = format!(r#"{{"event_id":"{id}","ts":{ts},"service":"{service}","kind":"probe","source":"s","status":"up"}}"#);
                    Rec { stream, line, ts: Some(ts), id: Some(id), service: service.into() }
                }
            })
            .collect()
    })
}

/// Fates in arrival order, and the admitted records' indices in release order.
fn reference(recs: &[Rec]) -> (Vec<(usize, Reason)>, Vec<usize>) {
    let mut max = [None::<i64>; 2];
    let mut seen: HashMap<&str, i64> = HashMap::new();
    let mut dead = Vec::new();
    let mut admitted = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let (Some(ts), Some(id)) = (r.ts, r.id.as_deref()) else {
            dead.push((i, Reason::Malformed));
            continue;
        };
        if ts > NOW + MAX_FUTURE {
            dead.push((i, Reason::Future));
            continue;
        }
        let m = &mut max[r.stream as usize];
        if m.is_some_and(|m| ts < m - LATENESS) {
            dead.push((i, Reason::Late));
            continue;
        }
        *m = Some(m.map_or(ts, |m| m.max(ts)));
        if seen.get(id).is_some_and(|&s| (ts - s).abs() < HORIZON) {
            dead.push((i, Reason::Duplicate));
            continue;
        }
        seen.insert(id, ts);
        if r.service == "ghost" {
            dead.push((i, Reason::UnknownService));
            continue;
        }
        admitted.push(i);
    }
    admitted.sort_by_key(|&i| (recs[i].ts, i));
    (dead, admitted)
}

/// Runs the real layer; records are identified by (stream, offset) = (stream, index).
fn actual(recs: &[Rec], chunks: &[usize]) -> (Vec<(usize, Reason)>, Vec<usize>) {
    let cfg = EventTimeConfig {
        allowed_lateness: LATENESS,
        dedup_horizon: HORIZON,
        idle_timeout: 1,
        max_future: MAX_FUTURE,
    };
    let mut et = EventTime::new(cfg, ["m".into(), "t".into()]);
    let streams = [0, 1].map(|p| StreamId {
        topic: Topic::Monitoring,
        partition: p,
    });
    for s in streams {
        et.add_stream(s, 0);
    }
    let decoder = Decoder::new(Topic::Monitoring, "m");
    let mut dead = Vec::new();
    let mut released: Vec<RecordBatch> = Vec::new();
    let mut i = 0;
    let mut c = 0;
    while i < recs.len() {
        // A chunk holds consecutive records of one stream.
        let n = chunks[c % chunks.len()].max(1);
        c += 1;
        let s = recs[i].stream;
        let mut j = i;
        while j < recs.len() && j - i < n && recs[j].stream == s {
            j += 1;
        }
        let raw: Vec<RawRecord> = (i..j)
            .map(|k| RawRecord {
                partition: s,
                offset: k as i64,
                payload: recs[k].line.as_bytes(),
            })
            .collect();
        let chunk = decoder.decode(s, &raw);
        let services = chunk.batch.column(col::KEY).as_string::<i32>().clone();
        let mut admit = |r: usize| {
            Ok((services.value(r) == "ghost").then(|| (Reason::UnknownService, String::new())))
        };
        (et.ingest(chunk, NOW, &mut admit, &mut dead)).expect("decoded rows");
        let r = et.advance(None);
        if let Some(b) = r.monitoring.to_batch() {
            assert!(
                b.column(col::TS)
                    .as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .all(|ts| ts < et.watermark())
            );
            released.push(b);
        }
        i = j;
    }
    for s in streams {
        et.finish_stream(s);
    }
    released.extend(et.finish(0).monitoring.to_batch());
    let dead = dead.iter().map(|d| (d.offset as usize, d.reason)).collect();
    let order = released
        .iter()
        .flat_map(|b| {
            let off = b.column(col::OFFSET).as_primitive::<Int64Type>().clone();
            (0..b.num_rows()).map(move |r| off.value(r) as usize)
        })
        .collect();
    (dead, order)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn eventtime_matches_reference(recs in records(), chunks in prop::collection::vec(1..12usize, 1..5)) {
        let (ref_dead, ref_order) = reference(&recs);
        let (dead, order) = actual(&recs, &chunks);
        prop_assert_eq!(&dead, &ref_dead);
        prop_assert_eq!(&order, &ref_order);
        // read = applied + dead-lettered
        prop_assert_eq!(dead.len() + order.len(), recs.len());
    }

    #[test]
    fn chunking_does_not_change_results(recs in records(), a in prop::collection::vec(1..12usize, 1..5), b in prop::collection::vec(1..50usize, 1..5)) {
        prop_assert_eq!(actual(&recs, &a), actual(&recs, &b));
    }
}
