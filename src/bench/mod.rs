//! `slaflow bench`: end-to-end throughput and memory, measured the way users run
//! slaflow, printed as one table. Micro-benchmarks live in `benches/`.

use std::sync::Arc;
use std::time::Instant;

mod api;
mod mock;
pub use api::api_rows;
pub use mock::mock_live_rows;

use crate::config::{Config, Dur, KafkaConfig};
use crate::engine::Outputs;
use crate::event::decode::Decoder;
use crate::event::{RawRecord, Topic};
use crate::eventtime::StreamId;
use crate::generate::{Generated, Generator, SERVICES, roughen, scenario_config};
use crate::kafka::TopicSpec;
use crate::pipeline::Pipeline;
use crate::source::{LineBlock, Lines};
use crate::time::Millis;

const START: i64 = 1_793_577_600_000;

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The value, formatted.
    pub value: String,
    /// The target it is compared with, if any.
    pub target: String,
}

/// Resident set size of this process in bytes (Linux), if known.
pub fn rss_bytes() -> Option<u64> {
    rss_of("self")
}

/// Resident set size of process `pid` ("self" or a number) in bytes (Linux).
fn rss_of(pid: &str) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`…) in bytes.
fn status_bytes(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn config() -> Arc<Config> {
    // The generated config always parses (a unit test checks it).
    parse(&scenario_config())
}

/// Generated traffic for `days` days, roughened like real input.
pub fn traffic(days: u32, seed: u64, intensity: f64) -> Vec<Generated> {
    let mut g = Generator::new(seed, START, intensity);
    let all: Vec<Generated> = (0..days as usize * 1440).flat_map(|_| g.minute()).collect();
    roughen(all, seed, 20_000, 0.005, 0.001, 0.0005)
}

/// Decodes `events` (JSON → Arrow batches, both topics) in the chunks
/// [`replay_in_memory`] uses, and nothing else: the ceiling of a replay's
/// speed set by parsing. Returns seconds. Each chunk's records lie side by
/// side in one buffer, as in a file block or a Kafka fetch, and are laid out
/// before the clock starts: the generator's lines are scattered strings, and
/// first touching those measured the heap, not the decoder.
fn decode_only(events: &[&Generated], fast: bool) -> f64 {
    let decoders = Topic::ALL.map(|t| {
        let d = Decoder::new(t, t.as_str());
        if fast { d } else { d.serde_only() }
    });
    let blocks: Vec<(&Decoder, LineBlock)> = (events.chunks(8192))
        .flat_map(|chunk| decoders.iter().map(move |d| (chunk, d)))
        .map(|(chunk, d)| {
            let mut lines = Lines::new();
            for (n, g) in (0..).zip(chunk.iter().filter(|g| g.topic == d.topic())) {
                lines.push(n, g.line.as_bytes());
            }
            (d, lines.into_block())
        })
        .collect();
    let chunks: Vec<(&Decoder, &LineBlock, Vec<RawRecord>)> = (blocks.iter())
        .map(|(d, block)| (*d, block, block.records(0)))
        .collect();
    let started = Instant::now();
    for (d, block, records) in &chunks {
        std::hint::black_box(d.decode_in(0, records, Some(block.text())));
    }
    started.elapsed().as_secs_f64()
}

/// Generated traffic decodes into batches its own views read; a failure is a
/// bug in slaflow, so the bench stops on it.
const CONSISTENT: &str = "decoded batches keep the decoder's invariants";

/// Partition 0 of each topic, added to `p`: generated traffic is fed as one
/// stream per topic.
fn single_streams(p: &mut Pipeline) -> [StreamId; 2] {
    let streams = Topic::ALL.map(|topic| StreamId {
        topic,
        partition: 0,
    });
    for s in streams {
        p.eventtime_mut().add_stream(s, 0);
    }
    streams
}

/// Ingests one chunk of generated events, each topic's records into its
/// stream, numbered on from `offsets`.
fn ingest_chunk(
    p: &mut Pipeline,
    streams: [StreamId; 2],
    chunk: &[&Generated],
    offsets: &mut [i64; 2],
    now: Millis,
    out: &mut Outputs,
) {
    for s in streams {
        let lines: Vec<&str> = (chunk.iter())
            .filter(|g| g.topic == s.topic)
            .map(|g| g.line.as_str())
            .collect();
        let first = offsets[s.topic.index()];
        offsets[s.topic.index()] += lines.len() as i64;
        p.ingest(s, &RawRecord::numbered(&lines, 0, first), now, out)
            .expect(CONSISTENT);
    }
}

/// Runs `events` through one pipeline in 8192-record chunks; returns seconds.
fn replay_in_memory(config: &Arc<Config>, events: &[&Generated]) -> f64 {
    let mut p = Pipeline::new(config.clone(), ["m".into(), "t".into()]);
    let now = crate::time::wall_now();
    let streams = single_streams(&mut p);
    let mut out = Outputs::default();
    let started = Instant::now();
    let mut offsets = [0i64; 2];
    for chunk in events.chunks(8192) {
        ingest_chunk(&mut p, streams, chunk, &mut offsets, now, &mut out);
        p.advance(None, &mut out).expect(CONSISTENT);
        out.dead_letters.clear();
        out.incidents.clear();
    }
    for s in streams {
        p.eventtime_mut().finish_stream(s);
    }
    p.finish(None, &mut out).expect(CONSISTENT);
    started.elapsed().as_secs_f64()
}

/// Checkpoint bytes per interval, incremental against full: `days` of generated
/// traffic fed in intervals of about ten minutes of events, every stream
/// checkpointed through a [`CheckpointStore`] after each. The state grows all
/// week (tickets, a day of dedup ids, month accumulators); what an interval
/// changes does not.
pub fn checkpoint_rows(days: u32) -> Vec<Row> {
    use crate::checkpoint::{CheckpointStore, StateKey, encode};
    let config = config();
    let events = traffic(days, 7, 1.0);
    let events: Vec<&Generated> = events.iter().collect();
    let dir =
        std::env::temp_dir().join(format!("slaflow-bench-checkpoints-{}", std::process::id()));
    let store = CheckpointStore::new(&dir, config.clone(), StateKey::default());
    let mut core = crate::state::Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
    let streams = single_streams(&mut core.pipeline);
    let intervals = days as usize * 144;
    let per_interval = events.len().div_ceil(intervals.max(1));
    let (mut out, mut offsets) = (Outputs::default(), [0i64; 2]);
    // Per interval: (bytes written, bytes of full files of the same state, deltas written).
    let mut sizes: Vec<(usize, usize, usize)> = Vec::new();
    for chunk in events.chunks(per_interval.max(1)) {
        let now = crate::time::wall_now();
        ingest_chunk(
            &mut core.pipeline,
            streams,
            chunk,
            &mut offsets,
            now,
            &mut out,
        );
        core.pipeline.advance(None, &mut out).expect(CONSISTENT);
        core.record(&out.incidents);
        out.dead_letters.clear();
        out.incidents.clear();
        let mut interval = (0, 0, 0);
        for cp in streams.iter().filter_map(|&s| core.checkpoint(s)) {
            let (Ok(w), Ok(full)) = (store.write(&cp), encode(&cp, &config)) else {
                let _ = std::fs::remove_dir_all(&dir);
                return vec![Row {
                    name: "checkpoint bytes per interval".into(),
                    value: "checkpoint write failed".into(),
                    target: String::new(),
                }];
            };
            interval.0 += w.bytes.len();
            interval.1 += full.len();
            interval.2 += usize::from(w.delta() > 0);
        }
        sizes.push(interval);
    }
    let _ = std::fs::remove_dir_all(&dir);
    checkpoint_table(&sizes, days)
}

fn checkpoint_table(sizes: &[(usize, usize, usize)], days: u32) -> Vec<Row> {
    let day = sizes.len() / days.max(1) as usize;
    let mean = |part: &[(usize, usize, usize)], f: fn(&(usize, usize, usize)) -> usize| {
        part.iter().map(f).sum::<usize>() as f64 / part.len().max(1) as f64 / 1024.0
    };
    let (first, last) = (
        &sizes[..day.min(sizes.len())],
        &sizes[sizes.len().saturating_sub(day)..],
    );
    let written_deltas: usize = sizes.iter().map(|s| s.2).sum();
    vec![
        Row {
            name: format!(
                "checkpoint bytes per ~10 min interval, first day → last day ({} intervals, {written_deltas} of {} files deltas)",
                sizes.len(),
                sizes.len() * 2
            ),
            value: format!(
                "{:.0} KiB → {:.0} KiB written",
                mean(first, |s| s.0),
                mean(last, |s| s.0)
            ),
            target: "grows with the change, not the state".into(),
        },
        Row {
            name: "the same state as full files, first day → last day".into(),
            value: format!(
                "{:.0} KiB → {:.0} KiB",
                mean(first, |s| s.1),
                mean(last, |s| s.1)
            ),
            target: String::new(),
        },
    ]
}

/// The JSON → Arrow decoder alone over the generated traffic, with and
/// without its fast path (`--only decode`).
pub fn decode_rows(days: u32) -> Vec<Row> {
    let events = traffic(days, 7, 1.0);
    let bytes = ndjson_bytes(&events);
    let all: Vec<&Generated> = events.iter().collect();
    let mut rows = Vec::new();
    for (fast, name, target) in [
        (true, "the JSON → Arrow decoder alone", "≥ 600 MB/s"),
        (
            false,
            "the decoder with its fast path off (serde_json for every record)",
            "the row above is faster",
        ),
    ] {
        let secs = median_of_3(&|| decode_only(&all, fast));
        rows.push(Row {
            name: format!("parse only: the same events through {name} (median of 3)"),
            value: rate(all.len(), bytes, secs),
            target: target.into(),
        });
    }
    rows
}

/// The size of `events` as NDJSON (each line and its newline).
fn ndjson_bytes(events: &[Generated]) -> usize {
    events.iter().map(|g| g.line.len() + 1).sum()
}

/// `events` records of `bytes` bytes in `secs`, as events/s and MB/s.
fn rate(events: usize, bytes: usize, secs: f64) -> String {
    format!(
        "{:.0} events/s, {:.1} MB/s",
        events as f64 / secs,
        bytes as f64 / secs / 1e6
    )
}

/// Replay throughput on one core and on `threads` cores (services split by key
/// across independent pipelines, as partitions split them in `run`).
pub fn replay_rows(days: u32, threads: usize) -> Vec<Row> {
    let config = config();
    let events = traffic(days, 7, 1.0);
    let bytes = ndjson_bytes(&events);
    let all: Vec<&Generated> = events.iter().collect();
    let probe_heavy = all.len();
    let median = median_of_3;
    let secs = median(&|| replay_in_memory(&config, &all));
    let mut rows = vec![Row {
        name: format!("replay, 1 core ({probe_heavy} events, probe-heavy; median of 3)"),
        value: rate(probe_heavy, bytes, secs),
        target: "≥ 1,000,000 events/s".into(),
    }];
    // Section 14's counter samples alone (a quarter of the generated traffic).
    let counters: Vec<&Generated> = (all.iter().copied())
        .filter(|g| g.line.contains(r#""kind":"counter""#))
        .collect();
    let secs = median(&|| replay_in_memory(&config, &counters));
    rows.push(Row {
        name: format!(
            "replay, 1 core, counter samples only ({}; median of 3)",
            counters.len()
        ),
        value: format!(
            "{:.0} events/s, {:.0} ns per sample",
            counters.len() as f64 / secs,
            secs * 1e9 / counters.len().max(1) as f64
        ),
        target: "as fast as the mixed traffic".into(),
    });
    let threads = threads.max(1);
    let secs = median(&|| replay_split(&config, &all, threads));
    rows.push(Row {
        name: format!(
            "replay, {threads} {} (keys split across pipelines; median of 3)",
            if threads == 1 { "core" } else { "cores" }
        ),
        value: rate(probe_heavy, bytes, secs),
        target: "scales with cores".into(),
    });
    rows
}

/// Median of three runs: the first run also pays for faulting in fresh memory.
fn median_of_3(f: &dyn Fn() -> f64) -> f64 {
    let mut v = [f(), f(), f()];
    v.sort_by(f64::total_cmp);
    v[1]
}

/// Seconds to replay `all` on `threads` pipelines at once, keys split among them.
fn replay_split(config: &Arc<Config>, all: &[&Generated], threads: usize) -> f64 {
    let parts: Vec<Vec<&Generated>> = (0..threads)
        .map(|t| {
            (all.iter().copied())
                .filter(|g| split(&g.key, threads) == t)
                .collect()
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in &parts {
            let config = config.clone();
            scope.spawn(move || replay_in_memory(&config, part));
        }
    });
    started.elapsed().as_secs_f64()
}

/// Which pipeline a key goes to: the scenario's six services round-robin (so the
/// split is even), tickets by hash.
fn split(key: &str, threads: usize) -> usize {
    SERVICES.iter().position(|s| s.id == key).map_or_else(
        || crate::generate::partition_of(key, threads),
        |i| i % threads,
    )
}

/// Cost of the time a stream spans: a year of hourly probes for `services`
/// services, against the same records spread over one week. Records are made
/// and fed slot by slot, so the peak RSS growth is the engine's state. The year
/// runs first: its peak is measured from the bench's own baseline (the week
/// would reuse freed memory, so only its time is compared).
pub fn span_rows(services: usize) -> Vec<Row> {
    let slots: i64 = 365 * 24;
    let before = peak_rss_bytes().unwrap_or(0);
    let year = span_once(services, slots, 3_600_000, false);
    let peak = peak_rss_bytes().unwrap_or(0).saturating_sub(before);
    let week = span_once(services, slots, 7 * 86_400_000 / slots, false);
    let office = span_once(services, slots, 3_600_000, true);
    let records = services as i64 * slots;
    vec![
        Row {
            name: format!("replay, one week: {records} probes of {services} services"),
            value: format!("{week:.2} s"),
            target: String::new(),
        },
        Row {
            name: format!("replay, one year of hourly probes: the same {records}"),
            value: format!(
                "{year:.2} s ({:.2}× the week), peak RSS +{:.0} MiB",
                year / week.max(1e-9),
                peak as f64 / 1048576.0
            ),
            target: "peak RSS < 1 GiB, time ≤ 2× the week".into(),
        },
        Row {
            name: "replay, the same year on office hours (service_hours, contract section 13)"
                .into(),
            value: format!(
                "{office:.2} s ({:.2}× the year 24x7)",
                office / year.max(1e-9)
            ),
            target: "≤ 1.5× the year 24x7".into(),
        },
    ]
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
fn peak_rss_bytes() -> Option<u64> {
    status_bytes("self", "VmHWM:")
}

/// Feeds `slots` rounds of one probe per service, `spacing` apart; returns
/// seconds. With `office`, the services' hours are weekdays 09:00-18:00 in
/// Paris with a lunch break and holidays (every walk crosses their edges).
fn span_once(services: usize, slots: i64, spacing: i64, office: bool) -> f64 {
    let mut text = String::from("[[customers]]\nid = \"c\"\n");
    let hours = if office {
        text.push_str(concat!(
            "[[calendars]]\nid = \"office\"\ntimezone = \"Europe/Paris\"\n",
            "holidays = [\"2025-12-25\", \"2026-01-01\", \"2026-05-01\"]\n[calendars.hours]\n",
            "mon = \"09:00-12:30,13:30-18:00\"\ntue = \"09:00-12:30,13:30-18:00\"\n",
            "wed = \"09:00-12:30,13:30-18:00\"\nthu = \"09:00-12:30,13:30-18:00\"\n",
            "fri = \"09:00-12:30,13:30-18:00\"\n",
        ));
        "office"
    } else {
        "24x7"
    };
    for i in 0..services {
        text.push_str(&format!(
            "[[services]]\nid = \"s{i}\"\ncustomer = \"c\"\nservice_hours = \"{hours}\"\n"
        ));
    }
    let mut p = Pipeline::new(parse(&text), ["m".into(), "t".into()]);
    let mon = StreamId {
        topic: Topic::Monitoring,
        partition: 0,
    };
    p.eventtime_mut().add_stream(mon, 0);
    let start = START - slots * spacing;
    let now = crate::time::wall_now().max(START);
    let started = Instant::now();
    let mut out = Outputs::default();
    for slot in 0..slots {
        let ts = start + slot * spacing;
        let lines: Vec<String> = (0..services)
            .map(|i| format!(r#"{{"event_id":"p{slot}-{i}","ts":{ts},"service":"s{i}","kind":"probe","source":"a","status":"up"}}"#))
            .collect();
        let first = slot * services as i64;
        p.ingest(mon, &RawRecord::numbered(&lines, 0, first), now, &mut out)
            .expect(CONSISTENT);
        p.advance(None, &mut out).expect(CONSISTENT);
        out.dead_letters.clear();
        out.incidents.clear();
    }
    p.finish(None, &mut out).expect(CONSISTENT);
    std::hint::black_box(p.counts().applied);
    started.elapsed().as_secs_f64()
}

/// How memory is measured: resident set growth (`slaflow bench`), or heap
/// bytes live from a counting global allocator (`cargo bench --bench memory`).
#[derive(Clone, Copy)]
pub struct MemoryGauge {
    /// What the rows say was measured ("RSS", "heap").
    pub unit: &'static str,
    /// Bytes now.
    pub bytes: fn() -> Option<u64>,
}

impl MemoryGauge {
    /// This process's resident set.
    pub const RSS: MemoryGauge = MemoryGauge {
        unit: "RSS",
        bytes: rss_bytes,
    };
}

/// Memory per open ticket, per service source and per counter series: the
/// gauge's growth while `tickets` open tickets, then `services` × 3 probed
/// sources, then `services` counter series are added.
pub fn memory_rows(tickets: usize, services: usize, gauge: MemoryGauge) -> Vec<Row> {
    let bytes = || (gauge.bytes)().unwrap_or(0);
    let config = memory_config(services);
    let mut p = Pipeline::new(config.clone(), ["m".into(), "t".into()]);
    let now = crate::time::wall_now();
    let mut out = Outputs::default();
    let before = bytes();
    let tkt = StreamId {
        topic: Topic::Tickets,
        partition: 0,
    };
    let mut offset = 0;
    for chunk in (0..tickets).collect::<Vec<_>>().chunks(1_000) {
        let lines: Vec<String> = chunk
            .iter()
            .map(|i| format!(r#"{{"event_id":"c{i}","ts":{},"ticket":"INC-{i}","type":"created","customer":"c","priority":"P1","kind":"incident"}}"#, START + *i as i64))
            .collect();
        p.ingest(tkt, &RawRecord::numbered(&lines, 0, offset), now, &mut out)
            .expect(CONSISTENT);
        offset += lines.len() as i64;
        p.advance(None, &mut out).expect(CONSISTENT);
    }
    p.finish(None, &mut out).expect(CONSISTENT);
    let after_tickets = bytes();
    probe_services(&mut p, services, now, &mut out);
    let after_services = bytes();
    let per_counter = counter_series_bytes(&config, services, &bytes);
    let per_ticket = after_tickets.saturating_sub(before) as f64 / tickets as f64;
    let per_source = after_services.saturating_sub(after_tickets) as f64 / (services * 3) as f64;
    memory_table(
        tickets,
        services,
        gauge.unit,
        [per_ticket, per_source, per_counter],
    )
}

/// One customer with `services` services, an SLA and a request SLO.
fn memory_config(services: usize) -> Arc<Config> {
    let mut text = String::from("[[customers]]\nid = \"c\"\n");
    for i in 0..services {
        text.push_str(&format!("[[services]]\nid = \"s{i}\"\ncustomer = \"c\"\n"));
    }
    text.push_str("[[slas]]\nid = \"sla\"\ncustomer = \"c\"\nkinds = [\"incident\"]\n[slas.targets.P1]\nresponse = \"100d\"\nresolution = \"100d\"\n");
    text.push_str("[[slos]]\nid = \"req\"\nservice = \"s0\"\nobjective = 99.0\nwindow = \"28d\"\ntotal = \"requests\"\nbad = \"errors\"\n");
    parse(&text)
}

/// Two rounds of probes from three sources for each of `services` services.
fn probe_services(p: &mut Pipeline, services: usize, now: Millis, out: &mut Outputs) {
    let mon = StreamId {
        topic: Topic::Monitoring,
        partition: 0,
    };
    let mut offset = 0;
    for round in 0..2i64 {
        for chunk in (0..services).collect::<Vec<_>>().chunks(1_000) {
            let lines: Vec<String> = chunk
                .iter()
                .flat_map(|i| {
                    ["a", "b", "c"].map(|src| {
                        format!(r#"{{"event_id":"p{round}-{i}-{src}","ts":{},"service":"s{i}","kind":"probe","source":"{src}","status":"up"}}"#, START + 1_000_000_000 + round * 60_000)
                    })
                })
                .collect();
            p.ingest(mon, &RawRecord::numbered(&lines, 0, offset), now, out)
                .expect(CONSISTENT);
            offset += lines.len() as i64;
        }
        p.advance(None, out).expect(CONSISTENT);
    }
    p.finish(None, out).expect(CONSISTENT);
}

/// The memory rows: bytes per open ticket, per service source, per counter series.
fn memory_table(tickets: usize, services: usize, unit: &str, per: [f64; 3]) -> Vec<Row> {
    let [per_ticket, per_source, per_counter] = per;
    vec![
        Row {
            name: format!("memory per open ticket ({tickets} tickets, {unit})"),
            value: format!(
                "{per_ticket:.0} B ({:.1} MiB per 100,000)",
                per_ticket * 1e5 / 1048576.0
            ),
            target: "≤ 512 B".into(),
        },
        Row {
            name: format!("memory per service source ({services} services × 3 sources, {unit})"),
            value: format!(
                "{per_source:.0} B ({:.1} MiB per 10,000 services)",
                per_source * 3.0 * 1e4 / 1048576.0
            ),
            target: "≤ 512 B".into(),
        },
        Row {
            name: format!(
                "memory per counter series ({services} series of one service, Prometheus-style sources, {unit})"
            ),
            value: format!("{per_counter:.0} B"),
            target: "≤ 256 B".into(),
        },
    ]
}

/// Heap (or RSS) per counter series: `n` series of one service as Prometheus
/// remote write names them, two samples each at the same instants (one
/// increase a series, one log entry per instant), in a pipeline of their own
/// (pruning another stream's dedup ids must not offset the growth).
fn counter_series_bytes(config: &Arc<Config>, n: usize, bytes: &dyn Fn() -> u64) -> f64 {
    let mut p = Pipeline::new(config.clone(), ["m".into(), "t".into()]);
    let (now, mut out, mut offset) = (crate::time::wall_now(), Outputs::default(), 0);
    let mon = StreamId {
        topic: Topic::Monitoring,
        partition: 0,
    };
    let before = bytes();
    for round in 0..2i64 {
        for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
            let lines: Vec<String> = chunk
                .iter()
                .map(|i| format!(r#"{{"event_id":"n{round}-{i}","ts":{},"service":"s0","kind":"counter","source":"{{code=\"200\",instance=\"10.0.{}.{}:9090\",job=\"api\"}}","name":"requests","value":{}}}"#, START + round * 60_000, i / 256, i % 256, 100 * round))
                .collect();
            p.ingest(mon, &RawRecord::numbered(&lines, 0, offset), now, &mut out)
                .expect(CONSISTENT);
            offset += lines.len() as i64;
        }
        p.advance(None, &mut out).expect(CONSISTENT);
    }
    p.finish(None, &mut out).expect(CONSISTENT);
    debug_assert_eq!(p.counts().applied, 2 * n as u64);
    bytes().saturating_sub(before) as f64 / n as f64
}

/// Formats rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from("| measurement | result | target |\n|---|---|---|\n");
    for r in rows {
        s.push_str(&format!("| {} | {} | {} |\n", r.name, r.value, r.target));
    }
    s
}

/// Live measurements through a real broker: slaflow's consume+process rate next to
/// a bare rdkafka consumer's on the same topic and settings, and incident latency.
pub fn live_rows(brokers: &str) -> Result<Vec<Row>, crate::run::RunError> {
    let tag = format!("bench-{}-{}", std::process::id(), crate::time::wall_now());
    let topic = |t: &str| format!("{tag}-{t}");
    let (mon, tkt, inc, dl) = (topic("mon"), topic("tkt"), topic("inc"), topic("dl"));
    create_topics(brokers, &[&mon, &tkt, &inc, &dl])?;
    let events = traffic(3, 11, 1.0);
    let n = events.len();
    produce_traffic(brokers, &events, &mon, &tkt)?;

    // Three pairs, each reading the same topics from the start under fresh
    // groups, alternating: one run is a few seconds, where a group join or a
    // busy core moves the ratio by several percent.
    let mut pairs = Vec::new();
    for run in 0..3 {
        let bare = bare_consumer_rate(brokers, &topic(&format!("bare{run}")), &[&mon, &tkt], n)?;
        let group = topic(&format!("slaflow{run}"));
        let text = live_config(brokers, &group, [&mon, &tkt, &inc, &dl], "");
        pairs.push((bare, live_consumer_rate(&text, n)?));
    }
    let ((bare, (live, decided)), each) =
        median_round(&pairs, |(b, (l, _))| l.rate / b.rate.max(1.0));
    let mut rows = vec![
        Row {
            name: format!("bare rdkafka consumer ({n} events, 2 topics × 4 partitions; from its first record)"),
            value: format!("{:.0} events/s", bare.rate),
            target: String::new(),
        },
        Row {
            name: format!(
                "slaflow run: consume + process, from its first record (median of 3 pairs: {each}; {decided} of {n} records decided)"
            ),
            value: format!(
                "{:.0} events/s ({:.0}% of bare)",
                live.rate,
                100.0 * live.rate / bare.rate.max(1.0)
            ),
            target: "≥ 90% of bare".into(),
        },
        Row {
            name: "startup to the first record: bare consumer, slaflow run (group join; slaflow also reads the changelog and restores)".into(),
            value: format!("{:.2} s, {:.2} s", bare.startup, live.startup),
            target: String::new(),
        },
    ];
    rows.push(incident_latency(brokers, &tag)?);
    Ok(rows)
}

/// Of alternating rounds of a measurement, the one with the median
/// `ratio`, and every round's ratio in run order ("96%, 74%, 98%").
fn median_round<T: Copy>(rounds: &[T], ratio: impl Fn(&T) -> f64) -> (T, String) {
    let mut order: Vec<&T> = rounds.iter().collect();
    order.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let each: Vec<String> = (rounds.iter())
        .map(|r| format!("{:.0}%", 100.0 * ratio(r)))
        .collect();
    (*order[rounds.len() / 2], each.join(", "))
}

/// The generated scenario's config reading `mon` and `tkt` on `brokers`
/// under `group`, writing to `inc` and `dl`; `extra` lines go into `[kafka]`.
fn live_config(brokers: &str, group: &str, [mon, tkt, inc, dl]: [&str; 4], extra: &str) -> String {
    format!(
        "{}\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\noptions = {{ \"fetch.wait.max.ms\" = \"100\" }}\nmonitoring_topic = \"{mon}\"\ntickets_topic = \"{tkt}\"\nincidents_topic = \"{inc}\"\ndeadletter_topic = \"{dl}\"\n{extra}",
        scenario_config(),
    )
}

/// Produces generated `events` to `mon` and `tkt` (keyed as generated) and
/// waits until all are delivered.
fn produce_traffic(
    brokers: &str,
    events: &[Generated],
    mon: &str,
    tkt: &str,
) -> Result<(), crate::run::RunError> {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()?;
    for g in events {
        let t = if g.topic == Topic::Monitoring {
            mon
        } else {
            tkt
        };
        send_waiting(&producer, BaseRecord::to(t).key(&g.key).payload(&g.line))?;
    }
    producer.flush(std::time::Duration::from_secs(120))?;
    Ok(())
}

/// A consumer's run: seconds from start to its first record, and events per
/// second from that record to the last (startup apart from throughput).
#[derive(Debug, Clone, Copy)]
struct ConsumerRun {
    startup: f64,
    rate: f64,
}

impl ConsumerRun {
    fn new(started: Instant, first: Option<(Instant, usize)>, read: usize) -> ConsumerRun {
        let Some((at, before)) = first else {
            return ConsumerRun {
                startup: started.elapsed().as_secs_f64(),
                rate: 0.0,
            };
        };
        ConsumerRun {
            startup: (at - started).as_secs_f64(),
            rate: read.saturating_sub(before) as f64 / at.elapsed().as_secs_f64().max(1e-9),
        }
    }
}

/// slaflow's live loop (config `text`) over a backlog of `n` records, timed
/// from its first record read until it has read them all and decided
/// (applied or dead-lettered) all but a thousandth: the last
/// `allowed_lateness` of event time stays held by the watermark, as live
/// processing holds it, where replay releases it at the end of its input.
/// Returns the run and the records decided by then.
fn live_consumer_rate(text: &str, n: usize) -> Result<(ConsumerRun, usize), crate::run::RunError> {
    use std::time::Duration;
    let mut config = parse_owned(text);
    // A partition without records (services are the monitoring keys, and
    // there are fewer of them than partitions) would hold the watermark for
    // `idle_timeout` of wall time, so nothing would be applied while the
    // backlog is read.
    config.engine.idle_timeout = Dur(1);
    let live = LiveLoop::start(config);
    let started = Instant::now();
    // (read, decided), under the engine lock, which a step holds from its
    // first record to its watermark's releases: between steps.
    let counts = || {
        let core = live.shared.core();
        let c = core.pipeline.counts();
        (c.read as usize, (c.applied + c.deadlettered()) as usize)
    };
    let mut first = None;
    let (mut read, mut decided) = counts();
    let enough = n - n / 1000;
    while (read < n || decided < enough) && started.elapsed() < Duration::from_secs(300) {
        if first.is_none() && read > 0 {
            first = Some((Instant::now(), read));
        }
        // The mock-broker row's input takes about 150 ms: a coarser poll
        // would add up to its period to the measured time.
        std::thread::sleep(Duration::from_millis(1));
        (read, decided) = counts();
    }
    let run = ConsumerRun::new(started, first, read);
    live.stop()?;
    if decided < enough {
        return Err(crate::run::RunError::Setup(format!(
            "the live loop decided {decided} of {n} records in 300 s"
        )));
    }
    Ok((run, decided))
}

/// A bare consumer with exactly the settings slaflow uses, storing each
/// offset, reading `n` records of `topics`.
fn bare_consumer_rate(
    brokers: &str,
    group: &str,
    topics: &[&str],
    n: usize,
) -> Result<ConsumerRun, crate::run::RunError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::Duration;
    let kafka = KafkaConfig {
        brokers: brokers.to_owned(),
        group_id: group.to_owned(),
        ..Default::default()
    };
    let bare: BaseConsumer = crate::kafka::consumer_config(&kafka).create()?;
    bare.subscribe(topics)?;
    let started = Instant::now();
    let (mut read, mut first) = (0usize, None);
    while read < n && started.elapsed() < Duration::from_secs(300) {
        if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
            bare.store_offset_from_message(&m)?;
            // Counted like the live loop's first step: from the first record on.
            first.get_or_insert((Instant::now(), read));
            read += 1;
        }
    }
    Ok(ConsumerRun::new(started, first, read))
}

/// Time from an outage deadline (event time = wall time) to the incident on the
/// incidents topic, over 20 outages produced live.
fn incident_latency(brokers: &str, tag: &str) -> Result<Row, crate::run::RunError> {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    const N: usize = 20;
    const OUTAGE_AFTER: i64 = 2_000;
    let topic = |t: &str| format!("{tag}-lat-{t}");
    let (mon, tkt, inc, dl) = (topic("mon"), topic("tkt"), topic("inc"), topic("dl"));
    create_topics(brokers, &[&mon, &tkt, &inc, &dl])?;
    let mut text = format!(
        "[engine]\nallowed_lateness = \"2s\"\nidle_timeout = \"1s\"\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{}\"\nmonitoring_topic = \"{mon}\"\ntickets_topic = \"{tkt}\"\nincidents_topic = \"{inc}\"\ndeadletter_topic = \"{dl}\"\n[[customers]]\nid = \"c\"\n",
        topic("group")
    );
    for i in 0..N {
        text.push_str(&format!("[[services]]\nid = \"lat{i}\"\ncustomer = \"c\"\noutage_after = \"2s\"\nstale_after = \"10s\"\n"));
    }
    let live = LiveLoop::start(parse_owned(&text));
    while !live.shared.is_ready() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", topic("reader"))
        .set("auto.offset.reset", "earliest")
        // The reader measures slaflow, so its own fetches must not wait long.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    reader.subscribe(&[&inc])?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()?;
    let started = crate::time::wall_now();
    let mut first_down: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut seq = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < N && Instant::now() < deadline {
        let now = crate::time::wall_now();
        // Service i goes down 250 ms after service i − 1 and stays down; probes every 100 ms.
        for i in 0..N {
            if now - started < i as i64 * 250 {
                continue;
            }
            let svc = format!("lat{i}");
            first_down.entry(svc.clone()).or_insert(now);
            for src in ["a", "b", "c"] {
                seq += 1;
                let line = format!(
                    r#"{{"event_id":"l{seq}","ts":{now},"service":"{svc}","kind":"probe","source":"{src}","status":"down"}}"#
                );
                let _ = producer.send(BaseRecord::to(&mon).key(&svc).payload(&line));
            }
        }
        producer.poll(Duration::ZERO);
        note_triggers(&reader, &mut seen, Duration::from_millis(100));
    }
    live.stop()?;
    Ok(latency_row(&seen, &first_down, N, OUTAGE_AFTER))
}

/// Notes, for `period`, the first trigger of each service on the incidents topic.
fn note_triggers(
    reader: &rdkafka::consumer::BaseConsumer,
    seen: &mut std::collections::BTreeMap<String, i64>,
    period: std::time::Duration,
) {
    use rdkafka::message::Message;
    let until = Instant::now() + period;
    while Instant::now() < until {
        let Some(Ok(m)) = reader.poll(std::time::Duration::from_millis(20)) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
        else {
            continue;
        };
        if v["action"] == "trigger"
            && let Some(svc) = v["service"].as_str()
        {
            seen.entry(svc.to_owned())
                .or_insert_with(crate::time::wall_now);
        }
    }
}

/// p50 and p99 of (trigger seen − (first down + outage_after)) over the services seen.
fn latency_row(
    seen: &std::collections::BTreeMap<String, i64>,
    first_down: &std::collections::BTreeMap<String, i64>,
    services: usize,
    outage_after: i64,
) -> Row {
    let mut lat: Vec<i64> = seen
        .iter()
        .filter_map(|(s, at)| Some(at - (first_down.get(s)? + outage_after)))
        .collect();
    lat.sort_unstable();
    let pick = |q: f64| {
        lat.get(((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len().max(1)) - 1)
            .copied()
    };
    Row {
        name: format!(
            "incident latency, live ({} of {services} outages seen; lateness 2s)",
            lat.len()
        ),
        value: match (pick(0.5), pick(0.99)) {
            (Some(a), Some(b)) => format!(
                "p50 {:.2} s, p99 {:.2} s",
                a as f64 / 1000.0,
                b as f64 / 1000.0
            ),
            _ => "no incident seen".into(),
        },
        target: "p99 ≤ allowed_lateness + 0.5 s (2.5 s)".into(),
    }
}

/// One phase of the burst measurement: what was produced and the worst seen.
#[derive(Default)]
struct Phase {
    produced: u64,
    secs: f64,
    rss_max: u64,
    /// Peak RSS in each third of the phase, to tell a plateau from growth.
    rss_thirds: [u64; 3],
    buffered_max: u64,
    lag_max: u64,
    /// Event ids remembered for dedup at the phase's end.
    dedup_ids: u64,
    /// Largest checkpoint round (bytes, all partitions).
    checkpoint_max: u64,
}

/// What the burst measurement reads from `/metrics`.
struct Sample {
    read: u64,
    buffered: u64,
    dedup_ids: u64,
    checkpoint_bytes: u64,
}

/// Memory of `slaflow run` while the input steps from `rate` events/s to 10 ×
/// `rate` for 90 s and back. The engine runs as a child process, so only its
/// memory is counted, not the producer's. Events carry the wall clock as `ts`, as
/// live monitoring does. What grows with the rate is the records held for the
/// watermark (rate × `allowed_lateness`) and the remembered event ids (rate ×
/// `dedup_horizon`); both are 10 s here, so they reach their burst level within
/// the burst's first two thirds, and its last third shows whether memory then
/// stays flat while the burst goes on.
pub fn burst_rows(brokers: &str, rate: u64) -> Result<Vec<Row>, crate::run::RunError> {
    use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
    use std::time::Duration;

    let burst = BurstChild::start(brokers)?;
    let ready = Instant::now();
    while burst.sample().is_none() && ready.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let kafka = KafkaConfig {
        brokers: brokers.to_owned(),
        ..KafkaConfig::default()
    };
    let producer: ThreadedProducer<DefaultProducerContext> = crate::kafka::client_config(&kafka)
        .set("linger.ms", "5")
        .create()?;
    let plan = [
        ("steady", rate, 30.0),
        ("burst", rate * 10, 90.0),
        ("after", rate, 45.0),
    ];
    let mut phases: Vec<Phase> = Vec::new();
    let mut seq = 0u64;
    for (name, phase_rate, secs) in plan {
        phases.push(burst.phase(&producer, name == "burst", phase_rate, secs, &mut seq)?);
    }
    producer.flush(Duration::from_secs(60))?;
    let drained = Instant::now();
    let mut final_lag = u64::MAX;
    while drained.elapsed() < Duration::from_secs(60) {
        if let Some(m) = burst.sample() {
            final_lag = seq.saturating_sub(m.read);
            if final_lag == 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_end = rss_of(&burst.pid).unwrap_or(0);
    burst.stop();
    Ok(burst_table(&phases, rss_end, final_lag))
}

/// Services of the burst measurement.
const BURST_SERVICES: u64 = 500;

/// `slaflow run` as a child process on its own topics, for the burst measurement.
struct BurstChild {
    child: std::process::Child,
    pid: String,
    dir: std::path::PathBuf,
    mon: String,
    metrics_url: String,
    agent: ureq::Agent,
}

impl BurstChild {
    fn start(brokers: &str) -> Result<BurstChild, crate::run::RunError> {
        const SERVICES: u64 = BURST_SERVICES;
        let tag = format!(
            "bench-{}-{}-burst",
            std::process::id(),
            crate::time::wall_now()
        );
        let topic = |t: &str| format!("{tag}-{t}");
        let (mon, tkt, inc, dl, state) = (
            topic("mon"),
            topic("tkt"),
            topic("inc"),
            topic("dl"),
            topic("state"),
        );
        create_topics(brokers, &[&mon, &tkt, &inc, &dl, &state])?;
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut text = format!(
            "[engine]\nallowed_lateness = \"10s\"\ndedup_horizon = \"10s\"\ndata_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{}\"\nmonitoring_topic = \"{mon}\"\ntickets_topic = \"{tkt}\"\nincidents_topic = \"{inc}\"\ndeadletter_topic = \"{dl}\"\nstate_topic = \"{state}\"\n[[customers]]\nid = \"c\"\n",
            dir.join("data").display(),
            topic("group")
        );
        for i in 0..SERVICES {
            text.push_str(&format!("[[services]]\nid = \"b{i}\"\ncustomer = \"c\"\n"));
        }
        let config = dir.join("burst.toml");
        std::fs::write(&config, text)?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(&config)
            .env("SLAFLOW_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("run.log"))?)
            .spawn()?;
        let pid = child.id().to_string();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(2)))
            .build()
            .into();
        let metrics_url = format!("http://127.0.0.1:{port}/metrics");
        Ok(BurstChild {
            child,
            pid,
            dir,
            mon,
            metrics_url,
            agent,
        })
    }

    /// Gauges and counters of the child's /metrics, if the API answers.
    fn sample(&self) -> Option<Sample> {
        let (agent, metrics_url) = (&self.agent, self.metrics_url.as_str());
        let body = agent
            .get(metrics_url)
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()?;
        let value = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .map(|v| v as u64)
        };
        Some(Sample {
            read: value("slaflow_records_read_total")?,
            buffered: value("slaflow_records_buffered")?,
            dedup_ids: value("slaflow_dedup_ids")?,
            checkpoint_bytes: value("slaflow_checkpoint_bytes")?,
        })
    }

    /// Produces probes at `rate` per second for `secs`, sampling the child's
    /// memory and metrics every 250 ms; `storm`: a tenth of the services are down.
    fn phase(
        &self,
        producer: &rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
        storm: bool,
        phase_rate: u64,
        secs: f64,
        next_seq: &mut u64,
    ) -> Result<Phase, crate::run::RunError> {
        use rdkafka::producer::BaseRecord;
        use std::time::Duration;
        const SERVICES: u64 = BURST_SERVICES;
        let (mon, pid) = (&self.mon, &self.pid);
        let mut seq = *next_seq;
        let mut ph = Phase::default();
        let started = Instant::now();
        let mut next_sample = started;
        while started.elapsed().as_secs_f64() < secs {
            let due = (started.elapsed().as_secs_f64() * phase_rate as f64) as u64;
            let now = crate::time::wall_now();
            while ph.produced < due {
                seq += 1;
                let svc = format!("b{}", seq % SERVICES);
                let src = ["a", "b", "c"][((seq / SERVICES) % 3) as usize];
                // The burst is an alert storm: a tenth of the services report down.
                let status = if storm && seq % SERVICES < SERVICES / 10 {
                    "down"
                } else {
                    "up"
                };
                let line = format!(
                    r#"{{"event_id":"e{seq}","ts":{now},"service":"{svc}","kind":"probe","source":"{src}","status":"{status}"}}"#
                );
                send_waiting(producer, BaseRecord::to(mon).key(&svc).payload(&line))?;
                ph.produced += 1;
            }
            if Instant::now() >= next_sample {
                next_sample += Duration::from_millis(250);
                let rss = rss_of(pid).unwrap_or(0);
                let third = ((started.elapsed().as_secs_f64() / secs * 3.0) as usize).min(2);
                ph.rss_max = ph.rss_max.max(rss);
                ph.rss_thirds[third] = ph.rss_thirds[third].max(rss);
                if let Some(m) = self.sample() {
                    ph.buffered_max = ph.buffered_max.max(m.buffered);
                    ph.lag_max = ph.lag_max.max(seq.saturating_sub(m.read));
                    ph.dedup_ids = m.dedup_ids;
                    ph.checkpoint_max = ph.checkpoint_max.max(m.checkpoint_bytes);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ph.secs = started.elapsed().as_secs_f64();
        *next_seq = seq;
        Ok(ph)
    }

    fn stop(mut self) {
        // SIGTERM, so the child checkpoints and leaves the group like a real stop.
        let term = std::process::Command::new("kill")
            .args(["-TERM", &self.pid])
            .status();
        if let Err(e) = term.and_then(|_| self.child.wait()) {
            eprintln!("bench: stopping the burst child: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("bench: removing {}: {e}", self.dir.display());
        }
    }
}

/// The burst measurement's three rows.
fn burst_table(phases: &[Phase], rss_end: u64, final_lag: u64) -> Vec<Row> {
    const SERVICES: u64 = BURST_SERVICES;
    let mib = |b: u64| b as f64 / 1048576.0;
    let describe = |ph: &Phase| {
        format!(
            "{:.0} events/s; RSS peak {:.0} MiB; buffered ≤ {}; consumer lag ≤ {}; dedup ids {}; checkpoint ≤ {:.1} MiB",
            ph.produced as f64 / ph.secs,
            mib(ph.rss_max),
            ph.buffered_max,
            ph.lag_max,
            ph.dedup_ids,
            mib(ph.checkpoint_max)
        )
    };
    let (steady, burst, after) = (&phases[0], &phases[1], &phases[2]);
    vec![
        Row {
            name: format!(
                "burst: steady input (30 s, {SERVICES} services, lateness 10 s, dedup horizon 10 s)"
            ),
            value: describe(steady),
            target: String::new(),
        },
        Row {
            name: "burst: 10× input for 90 s".into(),
            value: format!(
                "{}; RSS peak by third {:.0} / {:.0} / {:.0} MiB",
                describe(burst),
                mib(burst.rss_thirds[0]),
                mib(burst.rss_thirds[1]),
                mib(burst.rss_thirds[2])
            ),
            target: "bounded: last third ≤ 1.05 × middle third".into(),
        },
        Row {
            name: "burst: back to steady (45 s), then drained".into(),
            value: format!(
                "{}; RSS at the end {:.0} MiB; lag at the end {}",
                describe(after),
                mib(rss_end),
                if final_lag == u64::MAX {
                    "unknown".to_owned()
                } else {
                    final_lag.to_string()
                }
            ),
            target: "lag back to 0".into(),
        },
    ]
}

/// A live loop running on its own thread, as `slaflow run` runs it.
struct LiveLoop {
    shared: Arc<crate::state::Shared>,
    stop: crate::run::Stop,
    worker: std::thread::JoinHandle<Result<(), crate::run::RunError>>,
    data_dir: std::path::PathBuf,
}

impl LiveLoop {
    /// Starts the live loop for `config`, checkpointing into a fresh
    /// temporary directory.
    fn start(mut config: Config) -> LiveLoop {
        config.engine.data_dir = std::env::temp_dir().join(format!(
            "slaflow-bench-{}-{}",
            std::process::id(),
            crate::time::wall_now()
        ));
        let data_dir = config.engine.data_dir.clone();
        let config = Arc::new(config);
        let kafka = config.kafka_or_default();
        let topics = [kafka.monitoring_topic.clone(), kafka.tickets_topic.clone()];
        let shared = Arc::new(crate::state::Shared::new(
            config.clone(),
            crate::state::Core::new(Pipeline::new(config, topics)),
            Box::new(crate::ingest::NoIntake),
        ));
        let stop = crate::run::Stop::default();
        let worker = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || crate::run::live(&shared, &kafka, &stop))
        };
        LiveLoop {
            shared,
            stop,
            worker,
            data_dir,
        }
    }

    /// Stops it and returns its result.
    fn stop(self) -> Result<(), crate::run::RunError> {
        self.stop.request();
        let result = self.worker.join().unwrap_or_else(|_| {
            Err(crate::run::RunError::Io(std::io::Error::other(
                "live loop panicked",
            )))
        });
        let _ = std::fs::remove_dir_all(&self.data_dir);
        result
    }
}

/// Enqueues `rec`, waiting while the producer's local queue is full; any other
/// error is returned (retrying it would loop forever).
fn send_waiting(
    producer: &rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    mut rec: rdkafka::producer::BaseRecord<'_, String, String>,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                producer.poll(std::time::Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Parses a config generated by the bench itself.
fn parse(text: &str) -> Arc<Config> {
    Arc::new(parse_owned(text))
}

/// [`parse`], for a config the bench adjusts before use.
fn parse_owned(text: &str) -> Config {
    Config::parse(text, std::path::Path::new("<bench>"))
        .unwrap_or_else(|e| panic!("bench config: {e}"))
}

/// Creates the benchmark's topics (4 partitions each) on `brokers`.
fn create_topics(brokers: &str, names: &[&str]) -> Result<(), rdkafka::error::KafkaError> {
    let kafka = KafkaConfig {
        brokers: brokers.to_owned(),
        ..KafkaConfig::default()
    };
    let topics: Vec<TopicSpec> = (names.iter())
        .map(|name| TopicSpec {
            name,
            partitions: 4,
            compacted: false,
        })
        .collect();
    crate::kafka::create_topics(&kafka, &topics)
}

#[cfg(test)]
mod tests {
    /// The median round is picked by its ratio; the ratios keep run order.
    #[test]
    fn median_round_picks_by_ratio_and_lists_in_run_order() {
        let rounds = [(1.0, 4.0), (3.0, 4.0), (2.0, 4.0)];
        let (median, each) = super::median_round(&rounds, |(a, b)| a / b);
        assert_eq!(median, (2.0, 4.0));
        assert_eq!(each, "25%, 75%, 50%");
    }
}
