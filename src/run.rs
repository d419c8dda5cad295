//! `slaflow run`: the live driver. Kafka → pipeline → Kafka.
//!
//! One dedicated thread polls and processes (the consumer never waits on the async
//! runtime); the runtime only watches for SIGTERM/SIGINT. Offsets are stored only
//! for records whose fate is decided and whose outputs Kafka has acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, KafkaConfig};
use crate::engine::Outputs;
use crate::event::RawRecord;
use crate::pipeline::Pipeline;
use crate::sink::kafka::{KafkaSink, KafkaSinkError};
use crate::source::kafka::{KafkaSource, KafkaSourceError, SourceEvent};
use crate::time::wall_now;

/// Records drained from the consumer per processing step.
const POLL_RECORDS: usize = 4096;
/// How often delivered outputs let input offsets be stored.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Live-run failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Consumer side.
    #[error(transparent)]
    Source(#[from] KafkaSourceError),
    /// Producer side.
    #[error(transparent)]
    Sink(#[from] KafkaSinkError),
    /// Offset store/commit.
    #[error("kafka offsets: {0}")]
    Offsets(#[from] rdkafka::error::KafkaError),
    /// Runtime setup.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Runs the live pipeline until SIGTERM or SIGINT.
pub fn run(config: Arc<Config>) -> Result<(), RunError> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let worker = std::thread::Builder::new()
        .name("slaflow-live".into())
        .spawn(move || live_loop(config, &stop))?;
    match worker.join() {
        Ok(r) => r,
        Err(_) => Err(RunError::Runtime(std::io::Error::other(
            "live loop panicked",
        ))),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn live_loop(config: Arc<Config>, stop: &AtomicBool) -> Result<(), RunError> {
    let kafka = config.kafka_or_default();
    let mut source = KafkaSource::new(&kafka)?;
    let sink = KafkaSink::new(&kafka)?;
    let mut pipeline = Pipeline::new(
        config,
        [kafka.monitoring_topic.clone(), kafka.tickets_topic.clone()],
    );
    let mut out = Outputs::default();
    let mut last_commit = Instant::now();
    tracing::info!(brokers = %kafka.brokers, group = %kafka.group_id, "slaflow run started");

    while !stop.load(Ordering::SeqCst) {
        for ev in source.poll_batch(POLL_RECORDS, Duration::from_millis(100)) {
            let wall = wall_now();
            match ev {
                SourceEvent::Records(stream, recs) => {
                    let raw: Vec<RawRecord> = recs
                        .iter()
                        .map(|r| RawRecord {
                            partition: stream.partition,
                            offset: r.offset,
                            payload: &r.payload,
                        })
                        .collect();
                    pipeline.ingest(stream, &raw, wall, &mut out);
                    pipeline.eventtime_mut().set_caught_up(stream, false);
                }
                SourceEvent::Assigned(streams) => {
                    for s in streams {
                        pipeline.eventtime_mut().add_stream(s, wall);
                    }
                }
                SourceEvent::Revoked(streams) => {
                    for &s in &streams {
                        pipeline.eventtime_mut().remove_stream(s);
                    }
                    source.forget(&streams);
                }
                SourceEvent::CaughtUp(s, c) => pipeline.eventtime_mut().set_caught_up(s, c),
            }
        }
        pipeline.advance(Some(wall_now()), &mut out);
        publish(&sink, &kafka, &mut out)?;
        if last_commit.elapsed() >= COMMIT_EVERY {
            commit(&pipeline, &mut source, &sink)?;
            last_commit = Instant::now();
        }
    }
    commit(&pipeline, &mut source, &sink)?;
    source.commit_stored()?;
    let c = pipeline.counts();
    tracing::info!(
        read = c.read,
        applied = c.applied,
        deadlettered = c.deadlettered(),
        "slaflow run stopped"
    );
    Ok(())
}

/// Queues dead letters (key = `topic/partition/offset`) and incidents (key = incident id).
fn publish(sink: &KafkaSink, kafka: &KafkaConfig, out: &mut Outputs) -> Result<(), RunError> {
    for d in out.dead_letters.drain(..) {
        let key = format!("{}/{}/{}", d.topic, d.partition, d.offset);
        sink.send(&kafka.deadletter_topic, &key, &d.to_json())?;
    }
    for i in out.incidents.drain(..) {
        sink.send(&kafka.incidents_topic, &i.incident_id, &i.to_json())?;
    }
    Ok(())
}

/// Flushes outputs, then stores the offsets they cover.
fn commit(pipeline: &Pipeline, source: &mut KafkaSource, sink: &KafkaSink) -> Result<(), RunError> {
    // Offsets are taken before the flush: everything they cover was already queued.
    let et = pipeline.eventtime();
    let offsets: Vec<_> = et
        .streams()
        .filter_map(|s| Some((s, et.safe_offset(s)?)))
        .collect();
    sink.flush(Duration::from_secs(30))?;
    source.store_offsets(&offsets)?;
    Ok(())
}
