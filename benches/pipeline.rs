//! Micro-benchmarks: JSON → Arrow decode, engine apply (probe-heavy and
//! ticket-heavy mixes) and calendar walks. `cargo bench`; the end-to-end table
//! is `slaflow bench`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use slaflow::config::Config;
use slaflow::engine::Outputs;
use slaflow::engine::calendar::Calendar;
use slaflow::event::{Decoder, RawRecord, Topic};
use slaflow::eventtime::StreamId;
use slaflow::generate::{Generator, scenario_config};
use slaflow::pipeline::Pipeline;

const START: i64 = 1_793_577_600_000;

fn lines(topic: Topic, minutes: usize, intensity: f64) -> Vec<String> {
    let mut g = Generator::new(1, START, intensity);
    (0..minutes)
        .flat_map(|_| g.minute())
        .filter(|e| e.topic == topic)
        .map(|e| e.line)
        .collect()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for topic in Topic::ALL {
        let ls = lines(
            topic,
            if topic == Topic::Monitoring {
                240
            } else {
                20_000
            },
            1.0,
        );
        let ls: Vec<String> = ls.into_iter().take(8192).collect();
        let bytes: usize = ls.iter().map(String::len).sum();
        let recs = RawRecord::numbered(&ls, 0, 0);
        let d = Decoder::new(topic, "t");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("{topic:?} {} records", recs.len()), |b| {
            b.iter(|| black_box(d.decode(0, black_box(&recs))))
        });
    }
    group.finish();
}

fn apply(c: &mut Criterion) {
    let config = Arc::new(
        Config::parse(&scenario_config(), std::path::Path::new("b.toml")).expect("config"),
    );
    let mut group = c.benchmark_group("pipeline");
    // The processing clock of the `future` check: past every generated record.
    let now = slaflow::time::wall_now().max(START + 86_400_000);
    for (name, intensity) in [("probe-heavy", 1.0), ("ticket-heavy", 60.0)] {
        let mut g = Generator::new(2, START, intensity);
        let evs: Vec<_> = (0..360).flat_map(|_| g.minute()).collect();
        let mon: Vec<&str> = evs
            .iter()
            .filter(|e| e.topic == Topic::Monitoring)
            .map(|e| e.line.as_str())
            .collect();
        let tkt: Vec<&str> = evs
            .iter()
            .filter(|e| e.topic == Topic::Tickets)
            .map(|e| e.line.as_str())
            .collect();
        group.throughput(Throughput::Elements(evs.len() as u64));
        group.bench_function(format!("{name} {} events", evs.len()), |b| {
            b.iter_batched(
                || Pipeline::new(config.clone(), ["m".into(), "t".into()]),
                |mut p| {
                    let mut out = Outputs::default();
                    for (topic, ls) in [(Topic::Monitoring, &mon), (Topic::Tickets, &tkt)] {
                        let s = StreamId {
                            topic,
                            partition: 0,
                        };
                        for (i, chunk) in ls.chunks(4096).enumerate() {
                            p.ingest(
                                s,
                                &RawRecord::numbered(chunk, 0, (i * 4096) as i64),
                                now,
                                &mut out,
                            )
                            .expect("decoded rows");
                            p.advance(None, &mut out).expect("decoded rows");
                        }
                        p.eventtime_mut().finish_stream(s);
                    }
                    p.finish(None, &mut out).expect("decoded rows");
                    black_box(out.incidents.len())
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn calendar(c: &mut Criterion) {
    let config = Config::parse(&scenario_config(), std::path::Path::new("b.toml")).expect("config");
    let office = Calendar::from_config(&config.calendars[0]);
    let mut group = c.benchmark_group("calendar");
    group.bench_function("add 3 business days from each hour of a week", |b| {
        b.iter(|| {
            let mut acc = 0i64;
            for h in 0..168 {
                acc ^= office
                    .add_business(START + h * 3_600_000, 3 * 9 * 3_600_000)
                    .unwrap_or(0);
            }
            black_box(acc)
        })
    });
    group.bench_function("business time over a month", |b| {
        b.iter(|| black_box(office.business_between(black_box(START), START + 30 * 86_400_000)))
    });
    group.finish();
}

criterion_group!(benches, decode, apply, calendar);
criterion_main!(benches);
