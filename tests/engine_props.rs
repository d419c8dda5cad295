//! Property tests of the whole engine: the incremental pipeline (decode → event
//! time → engine) equals a deliberately simple, offline reference model on random
//! streams with disorder within the lateness, duplicates and bad records; and the
//! results do not depend on chunk sizes or on how events are split into partitions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use slaflow::checkpoint::{CheckpointStore, StateKey};
use slaflow::config::Config;
use slaflow::engine::Outputs;
use slaflow::engine::availability::State;
use slaflow::engine::incidents::Incident;
use slaflow::engine::tickets::TicketLine;
use slaflow::event::{RawRecord, Topic};
use slaflow::eventtime::StreamId;
use slaflow::pipeline::Pipeline;
use slaflow::state::Core;

const LATENESS: i64 = 30_000;
const STALE: i64 = 120_000;
const OUTAGE_AFTER: i64 = 60_000;
const RESOLVE_AFTER: i64 = 120_000;
const T0: i64 = 1_793_577_600_000;

const CONFIG: &str = r#"
[engine]
allowed_lateness = "30s"
[[customers]]
id = "acme"
[[services]]
id = "s0"
customer = "acme"
[[services]]
id = "s1"
customer = "acme"
down_when = "any"
service_hours = "office"
[[calendars]]
id = "office"
timezone = "Europe/Paris"
holidays = ["2026-11-10"]
[calendars.hours]
mon = "01:00-02:30,03:00-06:00"
tue = "09:00-18:00"
[[slos]]
id = "s0-errors"
service = "s0"
objective = 99.0
window = "28d"
total = "req"
bad = "err"
[[slos]]
id = "s1-good"
service = "s1"
objective = 95.0
window = "month"
total = "req"
good = "ok"
[[slas]]
id = "sla"
customer = "acme"
calendar = "office"
kinds = ["incident"]
pause_statuses = ["waiting"]
warn_at = 0.75
[slas.targets.P1]
response = "10m"
resolution = "1h"
[slas.targets.P2]
response = "30m"
resolution = "3h"
"#;

/// One generated event (already JSON), its key and its event time.
#[derive(Debug, Clone)]
struct Ev {
    topic: Topic,
    key: String,
    ts: i64,
    line: String,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Probe {
        source: usize,
        status: u8,
    },
    Maintenance {
        start: i64,
        end: i64,
    },
    /// Section 13: changes no interval or outage, only contractual figures.
    Exclusion {
        id: u8,
        start: i64,
        end: i64,
    },
    /// Section 14: a cumulative counter sample of series (key, source, name).
    Counter {
        source: usize,
        name: &'static str,
        value: u64,
    },
    Created {
        priority: u8,
    },
    Responded,
    Status(&'static str),
    Priority(u8),
}

const STATUSES: [&str; 3] = ["up", "degraded", "down"];
const TICKET_STATUSES: [&str; 5] = ["in_progress", "waiting", "resolved", "reopened", "closed"];

fn events() -> impl Strategy<Value = (Vec<Ev>, Vec<(usize, usize)>)> {
    let probes = prop::collection::vec((0..2usize, 0..3usize, 1..90_000i64, 0..10u8), 20..160);
    let maint = prop::collection::vec(
        (
            0..2usize,
            0..10_000_000i64,
            -600_000..600_000i64,
            60_000..900_000i64,
        ),
        0..3,
    );
    let tickets = prop::collection::vec(
        (
            0..6_000_000i64,
            0..2u8,
            prop::collection::vec((1..2_400_000i64, 0..8u8), 0..6),
        ),
        0..8,
    );
    let noise = prop::collection::vec((0..1000usize, 0..4usize), 0..12);
    // (service, at, start offset, length, id): retroactive ones and versions too.
    let exclusions = prop::collection::vec(
        (
            0..2usize,
            0..10_000_000i64,
            -3_000_000..600_000i64,
            60_000..3_000_000i64,
            0..3u8,
        ),
        0..4,
    );
    // (service, source, step in s, requests, bad share, dice): resets and bursts.
    let counters = prop::collection::vec(
        (
            0..2usize,
            0..2usize,
            1..400i64,
            0..200u64,
            0..=100u64,
            0..12u8,
        ),
        0..80,
    );
    (probes, maint, tickets, noise, (exclusions, counters)).prop_map(|(probes, maint, tickets, noise, (exclusions, counters))| {
        let mut evs = Vec::new();
        let mut clock = [[T0; 3]; 2];
        let mut last = [[0u8; 3]; 2];
        for (i, (svc, src, step, dice)) in probes.into_iter().enumerate() {
            clock[svc][src] += step;
            // Sticky statuses, so outages and flapping both happen.
            let status = match dice {
                0..=5 => last[svc][src],
                6 | 7 => 2,
                8 => 1,
                _ => 0,
            };
            last[svc][src] = status;
            let ts = clock[svc][src];
            evs.push(Ev {
                topic: Topic::Monitoring,
                key: format!("s{svc}"),
                ts,
                line: format!(r#"{{"event_id":"p{i}","ts":{ts},"service":"s{svc}","kind":"probe","source":"src{src}","status":"{}"}}"#, STATUSES[status as usize]),
                body: Body::Probe { source: src, status },
            });
        }
        for (i, (svc, at, offset, len)) in maint.into_iter().enumerate() {
            // Whole seconds: counter samples (at ….001) never share its instant.
            let ts = T0 + at / 1000 * 1000;
            let start = ts + offset;
            let end = start + len;
            evs.push(Ev {
                topic: Topic::Monitoring,
                key: format!("s{svc}"),
                ts,
                line: format!(r#"{{"event_id":"w{i}","ts":{ts},"service":"s{svc}","kind":"maintenance","start":{start},"end":{end}}}"#),
                body: Body::Maintenance { start, end },
            });
        }
        for (i, (svc, at, offset, len, id)) in exclusions.into_iter().enumerate() {
            let ts = T0 + at;
            let (start, end) = (ts + offset, ts + offset + len);
            evs.push(Ev {
                topic: Topic::Monitoring,
                key: format!("s{svc}"),
                ts,
                line: format!(r#"{{"event_id":"x{i}","ts":{ts},"service":"s{svc}","kind":"exclusion","exclusion_id":"X{id}","start":{start},"end":{end},"reason":"customer change","approved_by":"a"}}"#),
                body: Body::Exclusion { id, start, end },
            });
        }
        counter_samples(&mut evs, counters);
        for (k, (at, prio, steps)) in tickets.into_iter().enumerate() {
            let mut ts = T0 + at;
            let p = prio + 1;
            evs.push(Ev {
                topic: Topic::Tickets,
                key: format!("T{k}"),
                ts,
                line: format!(r#"{{"event_id":"c{k}","ts":{ts},"ticket":"T{k}","type":"created","customer":"acme","priority":"P{p}","kind":"incident"}}"#),
                body: Body::Created { priority: p },
            });
            for (j, (step, what)) in steps.into_iter().enumerate() {
                ts += step;
                let (frag, body) = match what {
                    0 => (r#""type":"responded""#.to_owned(), Body::Responded),
                    1 => (r#""type":"priority","priority":"P1""#.to_owned(), Body::Priority(1)),
                    2 => (r#""type":"priority","priority":"P2""#.to_owned(), Body::Priority(2)),
                    n => {
                        let s = TICKET_STATUSES[(n - 3) as usize];
                        (format!(r#""type":"status","status":"{s}""#), Body::Status(s))
                    }
                };
                evs.push(Ev {
                    topic: Topic::Tickets,
                    key: format!("T{k}"),
                    ts,
                    line: format!(r#"{{"event_id":"e{k}-{j}","ts":{ts},"ticket":"T{k}",{frag}}}"#),
                    body,
                });
            }
        }
        evs.sort_by_key(|e| e.ts);
        (evs, noise)
    })
}

/// Counter samples: s0 counts `req` and `err`, s1 `req` and `ok`; each sample
/// adds `requests` of which `share` % are bad, and some reset a series to what
/// it adds (a restart) or burst with every request bad.
fn counter_samples(evs: &mut Vec<Ev>, samples: Vec<(usize, usize, i64, u64, u64, u8)>) {
    let mut clock = [[T0 + 1; 2]; 2];
    let mut value = [[[0u64; 2]; 2]; 2];
    for (i, (svc, src, step, requests, share, dice)) in samples.into_iter().enumerate() {
        clock[svc][src] += step * 1000;
        let ts = clock[svc][src];
        let bad = if dice >= 10 {
            requests
        } else {
            requests * share / 100
        };
        let adds = [requests, if svc == 0 { bad } else { requests - bad }];
        let names = ["req", if svc == 0 { "err" } else { "ok" }];
        for k in 0..2 {
            let v = &mut value[svc][src][k];
            *v = if dice == 0 { adds[k] } else { *v + adds[k] };
            let (name, value) = (names[k], *v);
            evs.push(Ev {
                topic: Topic::Monitoring,
                key: format!("s{svc}"),
                ts,
                line: format!(r#"{{"event_id":"n{i}-{k}","ts":{ts},"service":"s{svc}","kind":"counter","source":"lb{src}","name":"{name}","value":{value}}}"#),
                body: Body::Counter { source: src, name, value },
            });
        }
    }
}

/// Arrival order: each event may arrive up to the lateness after its time, so it
/// is never late; `noise` adds duplicates, garbage lines, negative counters and
/// late probes and counters (a copy of one that already arrived, 10 minutes older under a new id: its
/// stream's watermark is past it, so it must be dead-lettered `late`).
fn arrivals(
    evs: &[Ev],
    jitter_seed: u64,
    noise: &[(usize, usize)],
) -> Vec<(Topic, String, String)> {
    let mut x = jitter_seed | 1;
    let mut keyed: Vec<(i64, usize)> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (e.ts + (x % (LATENESS as u64 - 1)) as i64, i)
        })
        .collect();
    keyed.sort();
    let mut out: Vec<(Topic, String, String)> = keyed
        .iter()
        .map(|&(_, i)| (evs[i].topic, evs[i].key.clone(), evs[i].line.clone()))
        .collect();
    for &(pos, kind) in noise {
        if out.is_empty() {
            break;
        }
        let at = pos % out.len();
        let (topic, key, line) = out[at].clone();
        let extra = match kind {
            0 => line,
            1 => "{\"not\": json".to_owned(),
            // A counter going negative under a new id: malformed (section 2).
            3 if line.contains(r#""kind":"counter""#) => line
                .replacen(r#""event_id":""#, r#""event_id":"neg-"#, 1)
                .replacen(r#""value":"#, r#""value":-"#, 1),
            _ => match late_copy(&line) {
                Some(late) => late,
                None => continue,
            },
        };
        out.insert(at + 1, (topic, key, extra));
    }
    out
}

/// A probe or counter `line` 10 minutes older, with a new event id; None for
/// other records.
fn late_copy(line: &str) -> Option<String> {
    if !line.contains(r#""kind":"probe""#) && !line.contains(r#""kind":"counter""#) {
        return None;
    }
    let ts: i64 = line
        .split(r#""ts":"#)
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()?;
    Some(
        line.replacen(r#""event_id":""#, r#""event_id":"late-"#, 1)
            .replacen(
                &format!(r#""ts":{ts},"#),
                &format!(r#""ts":{},"#, ts - 600_000),
                1,
            ),
    )
}

/// Checkpoints every stream that has state through `store`.
fn write_all(store: &CheckpointStore, core: &Core, per: &BTreeMap<StreamId, Vec<String>>) {
    for cp in per.keys().filter_map(|&s| core.checkpoint(s)) {
        store.write(&cp).expect("checkpoint written");
    }
}

/// (rule, incident id, action, at).
type IncidentKey = (String, String, String, i64);

struct Result {
    /// The pipeline at the end, for reports.
    core: Core,
    /// Every incident action, as fired.
    fired: Vec<Incident>,
    incidents: Vec<IncidentKey>,
    intervals: BTreeMap<String, Vec<(i64, i64, State)>>,
    tickets: Vec<String>,
}

/// Runs the pipeline over `stream` split into `partitions` and fed in chunks. With
/// `restart = Some(n)`, every partition is checkpointed on disk after every
/// round (a full file, then deltas), and after the n-th round the process
/// "restarts" with an empty pipeline and restores from those chains before
/// reading on.
fn run(
    config: &str,
    stream: &[(Topic, String, String)],
    partitions: i32,
    chunk: usize,
    restart: Option<usize>,
) -> Result {
    let config = Arc::new(Config::parse(config, Path::new("t.toml")).expect("config"));
    let mut core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
    let p = &mut core.pipeline;
    let part = |key: &str| key.bytes().map(i32::from).sum::<i32>() % partitions;
    let mut per: BTreeMap<StreamId, Vec<String>> = BTreeMap::new();
    for t in Topic::ALL {
        for q in 0..partitions {
            per.insert(
                StreamId {
                    topic: t,
                    partition: q,
                },
                Vec::new(),
            );
        }
    }
    for (topic, key, line) in stream {
        per.entry(StreamId {
            topic: *topic,
            partition: part(key),
        })
        .or_default()
        .push(line.clone());
    }
    for &s in per.keys() {
        p.eventtime_mut().add_stream(s, 0);
    }
    let mut out = Outputs::default();
    let mut pos: BTreeMap<StreamId, usize> = per.keys().map(|&s| (s, 0)).collect();
    let (mut read, mut decided) = (0, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::new(dir.path(), config.clone(), StateKey::default());
    for round in 0.. {
        if restart.is_some_and(|r| round < r) {
            // Checkpoints every round before the restart: incremental chains.
            write_all(&store, &core, &per);
        }
        if restart == Some(round) {
            let c = core.pipeline.counts();
            read += c.read;
            decided += c.applied + c.deadlettered();
            // The last write of each chain; the chains' earlier files are deltas.
            write_all(&store, &core, &per);
            let cps: Vec<_> = per
                .keys()
                .filter_map(|&s| store.read(s).expect("restores"))
                .collect();
            core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
            for &s in per.keys() {
                core.pipeline.eventtime_mut().add_stream(s, 0);
            }
            for cp in cps {
                assert_eq!(cp.next_offset(), pos[&cp.stream()] as i64);
                core.restore(cp, 0);
            }
            for (&s, lines) in &per {
                if pos[&s] == lines.len() {
                    core.pipeline.eventtime_mut().finish_stream(s);
                }
            }
        }
        let p = &mut core.pipeline;
        let mut progressed = false;
        for (&s, lines) in &per {
            let at = pos[&s];
            if at >= lines.len() {
                continue;
            }
            let end = (at + chunk).min(lines.len());
            let recs = RawRecord::numbered(&lines[at..end], s.partition, at as i64);
            // The processing clock: a wall clock far past the generated records.
            p.ingest(s, &recs, slaflow::time::MAX_MS / 2, &mut out)
                .expect("decoded rows");
            pos.insert(s, end);
            if end == lines.len() {
                p.eventtime_mut().finish_stream(s);
            }
            progressed = true;
        }
        for (&s, lines) in &per {
            if lines.is_empty() {
                p.eventtime_mut().finish_stream(s);
            }
        }
        p.advance(None, &mut out).expect("decoded rows");
        if !progressed {
            break;
        }
    }
    let p = &mut core.pipeline;
    p.finish(None, &mut out).expect("decoded rows");
    let c = p.counts();
    assert_eq!(read + c.read, stream.len() as u64);
    assert_eq!(
        read + c.read,
        decided + c.applied + c.deadlettered(),
        "read = applied + dead-lettered"
    );
    let mut incidents: Vec<_> = out.incidents.iter().map(key_of).collect();
    incidents.sort();
    let intervals = p
        .engine()
        .services()
        .iter()
        .map(|(id, t)| (id.to_owned(), t.intervals().collect()))
        .collect();
    let tickets = p
        .engine()
        .tickets()
        .lines()
        .iter()
        .map(|l: &TicketLine| serde_json::to_string(l).unwrap_or_default())
        .collect();
    Result {
        core,
        fired: out.incidents,
        incidents,
        intervals,
        tickets,
    }
}

fn key_of(i: &Incident) -> IncidentKey {
    (
        i.rule.as_str().to_owned(),
        i.incident_id.clone(),
        format!("{:?}", i.action),
        i.at_ms,
    )
}

// ---------------------------------------------------------------- reference model

/// A monitoring record of the operational timeline: exclusions neither start
/// it nor change it (contract section 13).
fn operational(e: &Ev) -> bool {
    e.topic == Topic::Monitoring && !matches!(e.body, Body::Exclusion { .. } | Body::Counter { .. })
}

/// Service state at `t` from scratch: latest probe per source at or before `t`
/// (ties: the last in event order), staleness, quorum, maintenance.
fn state_at(evs: &[&Ev], t: i64, any: bool) -> State {
    let mut latest: [Option<(i64, u8)>; 3] = [None; 3];
    let mut maint = false;
    for e in evs.iter().filter(|e| e.ts <= t) {
        match e.body {
            Body::Probe { source, status } => latest[source] = Some((e.ts, status)),
            Body::Maintenance { start, end } => maint |= start.max(e.ts) <= t && t < end,
            _ => {}
        }
    }
    if maint {
        return State::Maintenance;
    }
    let known: Vec<u8> = latest
        .iter()
        .flatten()
        .filter(|(ts, _)| t - ts < STALE)
        .map(|&(_, s)| s)
        .collect();
    let down = known.iter().filter(|&&s| s == 2).count();
    if known.is_empty() {
        State::NoData
    } else if (any && down >= 1) || (!any && down * 2 > known.len()) {
        State::Down
    } else if known.iter().any(|&s| s != 0) {
        State::Degraded
    } else {
        State::Up
    }
}

fn reference_intervals(evs: &[&Ev], end: i64, any: bool) -> Vec<(i64, i64, State)> {
    let Some(first) = evs.first().map(|e| e.ts) else {
        return Vec::new();
    };
    let mut points: Vec<i64> = vec![first, end];
    for e in evs {
        points.push(e.ts);
        points.push(e.ts + STALE);
        if let Body::Maintenance { start, end } = e.body {
            points.push(start.max(e.ts));
            points.push(end);
        }
    }
    points.retain(|&p| p >= first && p <= end);
    points.sort();
    points.dedup();
    let mut out: Vec<(i64, i64, State)> = Vec::new();
    for w in points.windows(2) {
        let s = state_at(evs, w[0], any);
        match out.last_mut() {
            Some(last) if last.2 == s && last.1 == w[0] => last.1 = w[1],
            _ => out.push((w[0], w[1], s)),
        }
    }
    out
}

/// Episodes (section 5) of the down intervals that trigger an outage: (episode
/// start, trigger instant, end of its last down interval). Down intervals
/// separated by less than resolve_after merge; the first lasting
/// outage_after triggers.
fn reference_episodes(iv: &[(i64, i64, State)]) -> Vec<(i64, i64, i64)> {
    let mut episodes: Vec<Vec<(i64, i64)>> = Vec::new();
    for d in iv.iter().filter(|i| i.2 == State::Down).map(|i| (i.0, i.1)) {
        match episodes.last_mut() {
            Some(ep) if d.0 - ep.last().map_or(i64::MIN, |l| l.1) < RESOLVE_AFTER => ep.push(d),
            _ => episodes.push(vec![d]),
        }
    }
    (episodes.iter())
        .filter_map(|ep| {
            let trigger = ep.iter().find(|d| d.1 - d.0 >= OUTAGE_AFTER)?.0 + OUTAGE_AFTER;
            Some((ep[0].0, trigger, ep.last().map_or(ep[0].0, |d| d.1)))
        })
        .collect()
}

/// The outages a report counts: episode starts.
fn reference_outage_starts(iv: &[(i64, i64, State)]) -> Vec<i64> {
    reference_episodes(iv).into_iter().map(|e| e.0).collect()
}

/// Outage actions from the interval list; deadlines fire only up to `end`.
fn reference_outages(
    service: &str,
    iv: &[(i64, i64, State)],
    end: i64,
) -> Vec<(String, String, String, i64)> {
    let mut out = Vec::new();
    for (start, trigger, last_end) in reference_episodes(iv) {
        let id =
            slaflow::engine::incidents::incident_id(slaflow::model::Rule::Outage, service, start);
        out.push((
            "outage".to_owned(),
            id.clone(),
            "Trigger".to_owned(),
            trigger,
        ));
        if last_end < end && last_end + RESOLVE_AFTER <= end {
            out.push((
                "outage".to_owned(),
                id,
                "Resolve".to_owned(),
                last_end + RESOLVE_AFTER,
            ));
        }
    }
    out
}

/// A clock of the reference model; times are business milliseconds on the
/// office calendar ([`office_between`], [`office_after`]).
#[derive(Default, Clone)]
struct RefClock {
    acc: i64,
    since: Option<i64>,
    stopped: bool,
    warned: Option<i64>,
    breached: Option<i64>,
    open: Vec<(&'static str, i64)>,
}

/// Offline ticket model: walks each ticket's events, checking thresholds inside
/// each segment between event instants (and at an instant after its events).
fn reference_tickets(evs: &[Ev], end: i64) -> (Vec<String>, Vec<IncidentKey>) {
    use slaflow::model::{Priority, Rule};
    let targets = |p: u8| {
        if p == 1 {
            [600_000i64, 3_600_000]
        } else {
            [1_800_000, 10_800_000]
        }
    };
    let rules = [
        ("response_warning", "response_breach"),
        ("resolution_warning", "resolution_breach"),
    ];
    let mut by_ticket: BTreeMap<String, Vec<&Ev>> = BTreeMap::new();
    for e in evs.iter().filter(|e| e.topic == Topic::Tickets) {
        by_ticket.entry(e.key.clone()).or_default().push(e);
    }
    let mut lines = Vec::new();
    let mut incidents = Vec::new();
    let id = |rule: &str, t: &str, at: i64| {
        let rule = Rule::parse(rule).expect("the reference names contract rules");
        slaflow::engine::incidents::incident_id(rule, t, at)
    };
    for (tid, tevs) in by_ticket {
        let Body::Created { priority } = tevs[0].body else {
            continue;
        };
        let created = tevs[0].ts;
        let mut prio = priority;
        let mut status = "new";
        let mut clocks = [
            RefClock {
                since: Some(created),
                ..Default::default()
            },
            RefClock {
                since: Some(created),
                ..Default::default()
            },
        ];
        let mut i = 1;
        let mut x = created;
        loop {
            // Segment [x, y): thresholds reached inside it fire at that instant.
            let y = tevs.get(i).map_or(end + 1, |e| e.ts);
            for k in 0..2 {
                let c = &mut clocks[k];
                let Some(since) = c.since else { continue };
                let target = targets(prio)[k];
                let warn = (0.75 * target as f64).round() as i64;
                let elapsed = c.acc + office_between(since, x);
                for (threshold, is_breach) in [(warn, false), (target, true)] {
                    let done = if is_breach {
                        c.breached.is_some()
                    } else {
                        c.warned.is_some()
                    };
                    let at = office_after(x, (threshold - elapsed).max(0));
                    if !done && at < y {
                        let rule = if is_breach { rules[k].1 } else { rules[k].0 };
                        incidents.push((
                            rule.to_owned(),
                            id(rule, &tid, at),
                            "Trigger".to_owned(),
                            at,
                        ));
                        c.open.push((rule, at));
                        if is_breach {
                            c.breached = Some(at)
                        } else {
                            c.warned = Some(at)
                        }
                    }
                }
            }
            let Some(e) = tevs.get(i) else { break };
            x = e.ts;
            let stop = |c: &mut RefClock, incidents: &mut Vec<_>| {
                if let Some(s) = c.since.take() {
                    c.acc += office_between(s, x);
                }
                c.stopped = true;
                for (rule, at) in c.open.drain(..) {
                    incidents.push((rule.to_owned(), id(rule, &tid, at), "Resolve".to_owned(), x));
                }
            };
            match e.body {
                Body::Responded if !clocks[0].stopped => stop(&mut clocks[0], &mut incidents),
                Body::Priority(p) => prio = p,
                Body::Status(s) => {
                    status = s;
                    if s == "resolved" || s == "closed" {
                        for c in clocks.iter_mut() {
                            if !c.stopped {
                                stop(c, &mut incidents);
                            }
                        }
                    } else if s == "waiting" {
                        let c = &mut clocks[1];
                        if let Some(since) = c.since.take() {
                            c.acc += office_between(since, x);
                        }
                        c.stopped = false;
                    } else if clocks[1].since.is_none() {
                        clocks[1].stopped = false;
                        clocks[1].since = Some(x);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let met = |c: &RefClock| {
            if c.breached.is_some() {
                Some(false)
            } else if c.stopped {
                Some(true)
            } else {
                None
            }
        };
        let line = TicketLine {
            ticket: tid.clone(),
            customer: "acme".to_owned(),
            priority: Priority::parse(&format!("P{prio}")).unwrap_or(Priority::P4),
            created: slaflow::time::format_ms(created),
            status: status.to_owned(),
            response_s: clocks[0].stopped.then(|| clocks[0].acc as f64 / 1000.0),
            resolution_s: clocks[1].stopped.then(|| clocks[1].acc as f64 / 1000.0),
            response_met: met(&clocks[0]),
            resolution_met: met(&clocks[1]),
        };
        lines.push(serde_json::to_string(&line).unwrap_or_default());
    }
    incidents.sort();
    (lines, incidents)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn engine_matches_reference_and_is_independent_of_chunks_and_partitions(
        (evs, noise) in events(),
        seed in any::<u64>(),
        chunk_a in 1..40usize,
        chunk_b in 1..500usize,
        parts in 1..4i32,
        restart in 0..12usize,
    ) {
        let stream = arrivals(&evs, seed, &noise);
        let a = run(CONFIG, &stream, 1, chunk_a, None);
        let b = run(CONFIG, &stream, parts, chunk_b, None);
        prop_assert_eq!(&a.incidents, &b.incidents);
        prop_assert_eq!(&a.intervals, &b.intervals);
        prop_assert_eq!(&a.tickets, &b.tickets);
        // Checkpoint, restart from nothing, restore: the same results.
        let c = run(CONFIG, &stream, parts, chunk_a, Some(restart));
        prop_assert_eq!(&a.incidents, &c.incidents);
        prop_assert_eq!(&a.intervals, &c.intervals);
        prop_assert_eq!(&a.tickets, &c.tickets);

        let end = evs.iter().map(|e| e.ts).max().unwrap_or(T0);
        for (svc, any) in [("s0", false), ("s1", true)] {
            let mine: Vec<&Ev> = evs.iter().filter(|e| operational(e) && e.key == svc).collect();
            let want = reference_intervals(&mine, end, any);
            prop_assert_eq!(a.intervals.get(svc).cloned().unwrap_or_default(), want.clone(), "intervals of {}", svc);
            let mut got: Vec<_> = a.incidents.iter().filter(|i| i.0 == "outage").cloned().collect();
            let want_outages = {
                let mut all = reference_outages("s0", &reference_intervals(&evs.iter().filter(|e| operational(e) && e.key == "s0").collect::<Vec<_>>(), end, false), end);
                all.extend(reference_outages("s1", &reference_intervals(&evs.iter().filter(|e| operational(e) && e.key == "s1").collect::<Vec<_>>(), end, true), end));
                all.sort();
                all
            };
            got.sort();
            prop_assert_eq!(got, want_outages);
        }
        let (lines, ticket_incidents) = reference_tickets(&evs, end);
        prop_assert_eq!(&a.tickets, &lines);
        let got: Vec<_> = a.incidents.iter().filter(|i| i.0.starts_with("res")).cloned().collect();
        prop_assert_eq!(got, ticket_incidents);
    }
}

// ------------------------------------------------------------ reference report

/// Mondays in Europe/Paris: [01:00, 02:30) and [03:00, 06:00) local;
/// Tuesdays [09:00, 18:00) but the holiday 2026-11-10; else closed. Written from the calendar's text, not
/// the engine's calendar code.
fn office_open(t: i64) -> bool {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    let Some(local) = chrono_tz::Europe::Paris.timestamp_millis_opt(t).single() else {
        return false;
    };
    if local.date_naive() == chrono::NaiveDate::from_ymd_opt(2026, 11, 10).expect("a date") {
        return false; // the calendar's holiday
    }
    let minute = local.hour() * 60 + local.minute();
    match local.weekday() {
        Weekday::Mon => (60..150).contains(&minute) || (180..360).contains(&minute),
        Weekday::Tue => (540..1080).contains(&minute),
        _ => false,
    }
}

/// Exclusion windows in force per service for evaluations at `before`: of
/// each (service, exclusion_id), the version with `ts` < `before` applied last
/// (event-time order, equal times in arrival order: first arrival of each id).
fn exclusions_in_force(
    evs: &[Ev],
    stream: &[(Topic, String, String)],
    before: i64,
) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut arrival: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (_, _, line)) in stream.iter().enumerate() {
        if let Some(id) = event_id(line) {
            arrival.entry(id).or_insert(i);
        }
    }
    type Version = (i64, usize, (String, u8), (i64, i64));
    let mut versions: Vec<Version> = (evs.iter())
        .filter(|e| e.ts < before)
        .filter_map(|e| match e.body {
            Body::Exclusion { id, start, end } => {
                let at = *arrival.get(event_id(&e.line)?)?;
                Some((e.ts, at, (e.key.clone(), id), (start, end)))
            }
            _ => None,
        })
        .collect();
    versions.sort();
    let force: BTreeMap<(String, u8), (i64, i64)> =
        versions.into_iter().map(|(_, _, k, w)| (k, w)).collect();
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for ((svc, _), w) in force {
        out.entry(svc).or_default().push(w);
    }
    out
}

fn event_id(line: &str) -> Option<&str> {
    line.split(r#""event_id":""#).nth(1)?.split('"').next()
}

/// Section 14's counted increases of service `svc` from scratch, as
/// (ts, counter name, increase): each sample after its series' first, the
/// value itself after a fall (a reset), dropped in maintenance and (`office`)
/// outside service hours. Exclusions are taken out by the caller.
fn reference_increases(evs: &[Ev], svc: &str, office: bool) -> Vec<(i64, &'static str, f64)> {
    let ops: Vec<&Ev> = evs
        .iter()
        .filter(|e| operational(e) && e.key == svc)
        .collect();
    let mut last: BTreeMap<(usize, &str), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in evs.iter().filter(|e| e.key == svc) {
        let Body::Counter {
            source,
            name,
            value,
        } = e.body
        else {
            continue;
        };
        let Some(prev) = last.insert((source, name), value) else {
            continue;
        };
        let increase = if value < prev { value } else { value - prev };
        let maintenance = state_at(&ops, e.ts, false) == State::Maintenance;
        if !maintenance && (!office || office_open(e.ts)) {
            out.push((e.ts, name, increase as f64));
        }
    }
    out
}

/// (total, bad) of an SLO over [a, b) from reference increases, samples in
/// `excluded` windows taken out; `good` names the good counter, else `bad`.
fn reference_slo(
    increases: &[(i64, &str, f64)],
    (a, b): (i64, i64),
    excluded: &[(i64, i64)],
    other: &str,
    good: bool,
) -> (f64, f64) {
    let sum = |name: &str| -> f64 {
        (increases.iter())
            .filter(|&&(t, n, _)| n == name && a <= t && t < b)
            .filter(|&&(t, _, _)| !excluded.iter().any(|&(s, e)| s <= t && t < e))
            .map(|x| x.2)
            .sum()
    };
    let total = sum("req");
    let bad = if good {
        (total - sum(other)).clamp(0.0, total)
    } else {
        sum(other)
    };
    (total, bad)
}

/// The contract's three burn alerts (section 11): (name, long, short, factor).
const ALERTS: [(&str, i64, i64, f64); 3] = [
    ("page-fast", 3_600_000, 300_000, 14.4),
    ("page-slow", 21_600_000, 1_800_000, 6.0),
    ("ticket", 259_200_000, 21_600_000, 1.0),
];

/// `slo_burn_rate` actions (slo, alert, action, at) of section 14 from
/// scratch: every bucket close up to the final watermark `end`, with the
/// exclusions in force at that close.
fn reference_slo_burns(
    evs: &[Ev],
    stream: &[(Topic, String, String)],
    end: i64,
) -> Vec<(String, String, String, i64)> {
    let mut out = Vec::new();
    // (slo, service, office, other counter, good, objective)
    let slos = [
        ("s0-errors", "s0", false, "err", false, 99.0),
        ("s1-good", "s1", true, "ok", true, 95.0),
    ];
    for (slo, svc, office, other, good, objective) in slos {
        let inc = reference_increases(evs, svc, office);
        let e = 1.0 - objective / 100.0;
        let mut open = BTreeMap::new();
        let mut x = T0 / 60_000 * 60_000;
        while x < end {
            let excl = exclusions_in_force(evs, stream, x)
                .remove(svc)
                .unwrap_or_default();
            for (alert, long, short, factor) in ALERTS {
                let burns = |w: i64| {
                    let (total, bad) = reference_slo(&inc, (x - w, x), &excl, other, good);
                    total > 0.0 && bad >= factor * e * total
                };
                let holds = burns(long) && burns(short);
                let action = match (holds, open.contains_key(alert)) {
                    (true, false) => {
                        open.insert(alert, x);
                        "Trigger"
                    }
                    (false, true) => {
                        open.remove(alert);
                        "Resolve"
                    }
                    _ => continue,
                };
                out.push((slo.to_owned(), alert.to_owned(), action.to_owned(), x));
            }
            x += 60_000;
        }
    }
    out.sort();
    out
}

/// `availability_breach` and `burn_rate` actions of sections 5, 11 and 13
/// from scratch: at every bucket close after each service's first record, up
/// to the final watermark `end`, with the exclusions in force at that close
/// and `nodata` under `policy`. The generated month is November 2026.
fn reference_budget_incidents(
    evs: &[Ev],
    stream: &[(Topic, String, String)],
    end: i64,
    policy: &str,
) -> Vec<IncidentKey> {
    use slaflow::engine::incidents::incident_id;
    use slaflow::model::Rule;
    const MINUTE: i64 = 60_000;
    let e = 1.0 - 99.9 / 100.0;
    let month = (T0 - 86_400_000, T0 + 29 * 86_400_000);
    let mut out = Vec::new();
    for (svc, any, office) in [("s0", false, false), ("s1", true, true)] {
        let mine: Vec<&Ev> = evs
            .iter()
            .filter(|e| operational(e) && e.key == svc)
            .collect();
        let Some(first) = mine.first().map(|e| e.ts) else {
            continue;
        };
        let mut pieces: BTreeMap<Vec<(i64, i64)>, Vec<_>> = BTreeMap::new();
        let (mut breached, mut open) = (false, BTreeMap::new());
        let mut x = (first.div_euclid(MINUTE) + 1) * MINUTE;
        while x <= end {
            let excl = (exclusions_in_force(evs, stream, x).remove(svc)).unwrap_or_default();
            let segments = (pieces.entry(excl.clone()))
                .or_insert_with(|| reference_segments(&mine, any, office, &excl, (month.0, end)));
            let window = |a: i64| measured_and_downtime(&times_of(segments, (a, x)), x - a, policy);
            let (measured, down) = window(month.0);
            let left = if office {
                office_between(x, month.1)
            } else {
                month.1 - x
            };
            if !breached && down as f64 > e * (measured + left) as f64 {
                breached = true;
                let id = incident_id(Rule::AvailabilityBreach, svc, x);
                out.push((
                    "availability_breach".to_owned(),
                    id,
                    "Trigger".to_owned(),
                    x,
                ));
            }
            for (alert, long, short, factor) in ALERTS {
                let burns = |w: i64| {
                    let (measured, down) = window((x - w).max(first));
                    measured > 0 && down as f64 >= factor * e * measured as f64
                };
                let holds = burns(long) && burns(short);
                let key = format!("{svc}/{alert}");
                let action = match (holds, open.get(alert)) {
                    (true, None) => {
                        open.insert(alert, x);
                        ("Trigger", x)
                    }
                    (false, Some(&started)) => {
                        open.remove(alert);
                        ("Resolve", started)
                    }
                    _ => continue,
                };
                let id = incident_id(Rule::BurnRate, &key, action.1);
                out.push(("burn_rate".to_owned(), id, action.0.to_owned(), x));
            }
            x += MINUTE;
        }
    }
    out.sort();
    out
}

const HALF_HOUR: i64 = 1_800_000;

/// The open half hours of [`office_open`] in November 2026 (computed once).
fn office_slots() -> &'static [i64] {
    static OPEN: std::sync::OnceLock<Vec<i64>> = std::sync::OnceLock::new();
    OPEN.get_or_init(|| {
        let from = T0 - 86_400_000;
        (0..30 * 48)
            .map(|k| from + k * HALF_HOUR)
            .filter(|&s| office_open(s))
            .collect()
    })
}

/// Milliseconds of [a, b) inside the office hours (November 2026).
fn office_between(a: i64, b: i64) -> i64 {
    (office_slots().iter())
        .map(|&s| ((s + HALF_HOUR).min(b) - s.max(a)).max(0))
        .sum()
}

/// The first instant at which `d` office milliseconds have passed since `x`
/// (`x` itself for 0); `i64::MAX` past November.
fn office_after(x: i64, d: i64) -> i64 {
    let mut left = d;
    if left == 0 {
        return x;
    }
    for &s in office_slots().iter().filter(|&&s| s + HALF_HOUR > x) {
        let start = s.max(x);
        let open = s + HALF_HOUR - start;
        if left <= open {
            return start + left;
        }
        left -= open;
    }
    i64::MAX
}

/// Seconds per contractual class of one service over [from, to), from scratch:
/// the operational state of [`state_at`], then maintenance, excluded, outside
/// hours (section 13's order). With `exclusions` empty this is the raw view.
#[derive(Debug, Default)]
struct RefTimes {
    maintenance: i64,
    excluded: i64,
    outside: i64,
    nodata: i64,
    down: i64,
    degraded: i64,
    up: i64,
}

fn reference_times(
    evs: &[&Ev],
    any: bool,
    office: bool,
    exclusions: &[(i64, i64)],
    (from, to): (i64, i64),
) -> RefTimes {
    times_of(
        &reference_segments(evs, any, office, exclusions, (from, to)),
        (from, to),
    )
}

/// Section 13's contractual state: the first match of maintenance, excluded,
/// outside hours, then the operational state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Contractual {
    Maintenance,
    Excluded,
    Outside,
    In(State),
}

/// [from, to) cut where the contractual state may change, each piece with
/// its state, from scratch ([`state_at`] at the piece's start).
fn reference_segments(
    evs: &[&Ev],
    any: bool,
    office: bool,
    exclusions: &[(i64, i64)],
    (from, to): (i64, i64),
) -> Vec<(i64, i64, Contractual)> {
    let mut points = vec![from, to];
    for e in evs {
        points.extend([e.ts, e.ts + STALE]);
        if let Body::Maintenance { start, end } = e.body {
            points.extend([start.max(e.ts), end]);
        }
    }
    for &(start, end) in exclusions {
        points.extend([start, end]);
    }
    // Office hours change only on the half hour (Paris is a whole-hour offset).
    points.extend((from.div_euclid(HALF_HOUR)..=to.div_euclid(HALF_HOUR)).map(|k| k * HALF_HOUR));
    points.retain(|&p| from <= p && p <= to);
    points.sort();
    points.dedup();
    (points.windows(2))
        .map(|w| {
            let a = w[0];
            let state = match state_at(evs, a, any) {
                State::Maintenance => Contractual::Maintenance,
                _ if exclusions.iter().any(|&(s, e)| s <= a && a < e) => Contractual::Excluded,
                _ if office && !office_open(a) => Contractual::Outside,
                s => Contractual::In(s),
            };
            (w[0], w[1], state)
        })
        .collect()
}

/// Seconds per contractual class of the pieces' part in [a, b).
fn times_of(segments: &[(i64, i64, Contractual)], (a, b): (i64, i64)) -> RefTimes {
    let mut t = RefTimes::default();
    for &(s, e, state) in segments {
        let len = e.min(b) - s.max(a);
        if len <= 0 {
            continue;
        }
        let slot = match state {
            Contractual::Maintenance | Contractual::In(State::Maintenance) => &mut t.maintenance,
            Contractual::Excluded => &mut t.excluded,
            Contractual::Outside => &mut t.outside,
            Contractual::In(State::NoData) => &mut t.nodata,
            Contractual::In(State::Down) => &mut t.down,
            Contractual::In(State::Degraded) => &mut t.degraded,
            Contractual::In(State::Up) => &mut t.up,
        };
        *slot += len;
    }
    t
}

/// (measured, downtime) of section 4 and 13 under a `nodata` policy.
fn measured_and_downtime(t: &RefTimes, period: i64, policy: &str) -> (i64, i64) {
    let counted = period - t.maintenance - t.excluded - t.outside;
    match policy {
        "exclude" => (counted - t.nodata, t.down),
        "down" => (counted, t.down + t.nodata),
        _ => (counted, t.down),
    }
}

fn pct(measured: i64, downtime: i64) -> Option<f64> {
    (measured > 0).then(|| 100.0 * (measured - downtime) as f64 / measured as f64)
}

/// Section 6's ticket aggregates for tickets created in [from, to), by
/// priority, from the reference ticket lines: (count, [response, resolution] of
/// (met, breached, pending, p50, p90)). Nearest rank: sorted[ceil(p × n) − 1].
type ClockAgg = (u64, u64, u64, Option<f64>, Option<f64>);
fn reference_ticket_groups(
    lines: &[String],
    from: i64,
    to: i64,
) -> BTreeMap<String, (u64, [ClockAgg; 2])> {
    let mut by: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for l in lines {
        let line: serde_json::Value = serde_json::from_str(l).expect("ticket line");
        let created = line["created"].as_str().expect("created");
        let created = slaflow::time::parse_flexible(created).expect("a time");
        if from <= created && created < to {
            let p = line["priority"].as_str().expect("priority").to_owned();
            by.entry(p).or_default().push(line);
        }
    }
    let rank = |mut v: Vec<f64>, p: f64| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        let k = (p * v.len() as f64).ceil() as usize;
        k.checked_sub(1).and_then(|i| v.get(i).copied())
    };
    let agg = |ls: &[serde_json::Value], clock: &str| -> ClockAgg {
        let verdict = |want: Option<bool>| {
            let n = ls
                .iter()
                .filter(|l| l[format!("{clock}_met")].as_bool() == want);
            n.count() as u64
        };
        let stopped: Vec<f64> = ls
            .iter()
            .filter_map(|l| l[format!("{clock}_s")].as_f64())
            .collect();
        let (p50, p90) = (rank(stopped.clone(), 0.5), rank(stopped, 0.9));
        (
            verdict(Some(true)),
            verdict(Some(false)),
            verdict(None),
            p50,
            p90,
        )
    };
    (by.into_iter())
        .map(|(p, ls)| {
            let clocks = [agg(&ls, "response"), agg(&ls, "resolution")];
            (p, (ls.len() as u64, clocks))
        })
        .collect()
}

/// slaflow's SLA report of acme for [from, to), as JSON.
fn report_json(r: &Result, from: i64, to: i64) -> serde_json::Value {
    let engine = r.core.pipeline.engine();
    let tables = slaflow::report::Tables::for_sla_report(engine).expect("tables");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let config = r.core.pipeline.config().clone();
    let reports = runtime
        .block_on(slaflow::report::sla_reports(
            &config, &tables, &r.fired, from, to, 0,
        ))
        .expect("report");
    serde_json::to_value(&reports[0]).expect("json")
}

fn close(a: &serde_json::Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

/// Seconds as reports write them: rounded to the millisecond.
fn close_s(a: &serde_json::Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 0.0005 + 1e-9 * b.abs())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Issue 32: the report's figures for a random period, under each `nodata`
    /// policy, equal a reference computed from the raw events (probes,
    /// maintenance, exclusions in force, office hours), and its ticket section
    /// equals the aggregates of the reference ticket lines.
    #[test]
    fn report_matches_a_reference_report(
        (evs, noise) in events(),
        seed in any::<u64>(),
        policy in prop::sample::select(vec!["exclude", "down", "up"]),
        cut in (0.0..1.0f64, 0.0..1.0f64),
    ) {
        let stream = arrivals(&evs, seed, &noise);
        let mut config = CONFIG.to_owned();
        for svc in ["s0", "s1"] {
            let head = format!("[[services]]\nid = \"{svc}\"\ncustomer = \"acme\"\n");
            config = config.replace(&head, &format!("{head}nodata = \"{policy}\"\n"));
        }
        prop_assert_eq!(config.matches(&format!("nodata = \"{policy}\"")).count(), 2);
        let r = run(&config, &stream, 1, 64, None);
        let end = evs.iter().map(|e| e.ts).max().unwrap_or(T0);
        // A period inside [T0 − 30 min, end]: before the first record too.
        let lo = T0 - 1_800_000;
        let a = lo + ((end - lo) as f64 * cut.0.min(cut.1)) as i64;
        let b = lo + ((end - lo) as f64 * cut.0.max(cut.1)) as i64;
        prop_assume!(a < b);
        let report = report_json(&r, a, b);
        let forced = exclusions_in_force(&evs, &stream, i64::MAX);
        for (svc, any, office) in [("s0", false, false), ("s1", true, true)] {
            let mine: Vec<&Ev> = evs.iter().filter(|e| operational(e) && e.key == svc).collect();
            let excl = forced.get(svc).cloned().unwrap_or_default();
            let t = reference_times(&mine, any, office, &excl, (a, b));
            let raw = reference_times(&mine, any, office, &[], (a, b));
            let period = b - a;
            let (measured, downtime) = measured_and_downtime(&t, period, policy);
            let (raw_measured, raw_downtime) = measured_and_downtime(&raw, period, policy);
            let got = (report["services"].as_array().expect("services").iter())
                .find(|s| s["service"] == svc).expect("service row").clone();
            let secs = |ms: i64| ms as f64 / 1000.0;
            for (field, want) in [
                ("period_s", secs(period)),
                ("maintenance_s", secs(t.maintenance)),
                ("excluded_s", secs(t.excluded)),
                ("outside_hours_s", secs(t.outside)),
                ("nodata_s", secs(t.nodata)),
                ("degraded_s", secs(t.degraded)),
                ("up_s", secs(t.up)),
                ("measured_s", secs(measured)),
                ("downtime_s", secs(downtime)),
                ("budget_s", (1.0 - 99.9 / 100.0) * secs(measured)),
                ("budget_remaining_s", (1.0 - 99.9 / 100.0) * secs(measured) - secs(downtime)),
            ] {
                prop_assert!(close_s(&got[field], want), "{} {} [{}, {}) {}: report {}, reference {}", svc, policy, a, b, field, got[field], want);
            }
            for (field, want) in [
                ("availability_pct", pct(measured, downtime)),
                ("raw_availability_pct", pct(raw_measured, raw_downtime)),
            ] {
                match want {
                    Some(w) => prop_assert!(close(&got[field], w), "{} {}: report {}, reference {}", svc, field, got[field], w),
                    None => prop_assert!(got[field].is_null(), "{} {}: {}", svc, field, got[field]),
                }
            }
            if let Some(p) = pct(measured, downtime) {
                prop_assert_eq!(got["met"].as_bool(), Some(p >= 99.9), "{} met", svc);
            }
            // Operational: the longest maximal down interval clipped to the
            // period, and the outages that started in it.
            let iv = reference_intervals(&mine, end, any);
            let longest = (iv.iter().filter(|i| i.2 == State::Down))
                .map(|i| (i.1.min(b) - i.0.max(a)).max(0))
                .max()
                .unwrap_or(0);
            prop_assert!(close_s(&got["longest_outage_s"], secs(longest)), "{} longest: {} vs {}", svc, got["longest_outage_s"], secs(longest));
            let started = reference_outage_starts(&iv);
            let outages = started.iter().filter(|&&s| a <= s && s < b).count();
            prop_assert_eq!(got["outages"].as_u64(), Some(outages as u64), "{} outages", svc);
        }

        let (lines, _) = reference_tickets(&evs, end);
        let want = reference_ticket_groups(&lines, a, b);
        let rows = report["tickets"]["by_priority"].as_array().expect("by_priority").clone();
        for row in &rows {
            let p = row["priority"].as_str().expect("priority");
            let Some((count, clocks)) = want.get(p) else {
                prop_assert_eq!(row["count"].as_u64(), Some(0), "{} has no ticket", p);
                continue;
            };
            prop_assert_eq!(row["count"].as_u64(), Some(*count), "{} count", p);
            for (name, (met, breached, pending, p50, p90)) in ["response", "resolution"].iter().zip(clocks) {
                let c = &row[*name];
                prop_assert_eq!(
                    (c["met"].as_u64(), c["breached"].as_u64(), c["pending"].as_u64()),
                    (Some(*met), Some(*breached), Some(*pending)),
                    "{} {} verdicts", p, name
                );
                for (field, want) in [("p50_s", p50), ("p90_s", p90)] {
                    match want {
                        Some(w) => prop_assert!(close_s(&c[field], *w), "{} {} {}: {} vs {}", p, name, field, c[field], w),
                        None => prop_assert!(c[field].is_null(), "{} {} {}", p, name, field),
                    }
                }
            }
        }
        prop_assert_eq!(rows.iter().filter(|r| r["count"].as_u64() > Some(0)).count(), want.len());

        // Section 14: the slos block from reference increases (exclusions in
        // force at the end), and every slo_burn_rate action.
        for (slo, svc, office, other, good, objective) in [("s0-errors", "s0", false, "err", false, 99.0), ("s1-good", "s1", true, "ok", true, 95.0)] {
            let inc = reference_increases(&evs, svc, office);
            let excl = forced.get(svc).cloned().unwrap_or_default();
            let (total, bad) = reference_slo(&inc, (a, b), &excl, other, good);
            let got = (report["slos"].as_array().expect("slos").iter())
                .find(|s| s["slo"] == slo).expect("slo row").clone();
            prop_assert_eq!((got["total"].as_f64(), got["bad"].as_f64()), (Some(total), Some(bad)), "{} [{}, {})", slo, a, b);
            match (total > 0.0).then(|| 100.0 * (total - bad) / total) {
                Some(want) => {
                    prop_assert!(close(&got["ratio_pct"], want), "{} ratio {} vs {}", slo, got["ratio_pct"], want);
                    prop_assert_eq!(got["met"].as_bool(), Some(want >= objective));
                }
                None => prop_assert!(got["ratio_pct"].is_null() && got["met"].is_null(), "{}", got),
            }
        }
        let mut burns: Vec<(String, String, String, i64)> = (r.fired.iter())
            .filter(|i| i.rule.as_str() == "slo_burn_rate")
            .map(|i| (i.details["slo"].as_str().unwrap_or("").to_owned(), i.details["alert"].as_str().unwrap_or("").to_owned(), format!("{:?}", i.action), i.at_ms))
            .collect();
        burns.sort();
        prop_assert_eq!(burns, reference_slo_burns(&evs, &stream, end));

        // Sections 5, 11 and 13: availability_breach and burn_rate from the
        // contractual timeline of the raw events.
        let got: Vec<IncidentKey> = (r.incidents.iter())
            .filter(|i| i.0 == "availability_breach" || i.0 == "burn_rate")
            .cloned()
            .collect();
        prop_assert_eq!(got, reference_budget_incidents(&evs, &stream, end, policy));
    }
}
