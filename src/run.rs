//! `slaflow run`: the live driver. Kafka → pipeline → Kafka, plus the HTTP API.
//!
//! One dedicated thread polls and processes (the consumer never waits on the async
//! runtime, so rebalances are served promptly); the runtime serves the API and
//! watches for SIGTERM/SIGINT. Offsets are stored only for records whose fate is
//! decided and whose outputs Kafka has acknowledged (and, for incident delivery
//! targets, the durable outbox holds).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Config, KafkaConfig};
use crate::engine::Outputs;
use crate::event::RawRecord;
use crate::event::{DeadLetter, Topic};
use crate::ingest::{Event, Intake};
use crate::pipeline::Pipeline;
use crate::sink::delivery::Delivery;
use crate::sink::kafka::{KafkaSink, KafkaSinkError};
use crate::source::kafka::{KafkaSource, KafkaSourceError, SourceEvent};
use crate::state::{Core, Shared};
use crate::time::wall_now;

/// Records drained from the consumer per processing step.
const POLL_RECORDS: usize = 4096;
/// How often delivered outputs let input offsets be stored.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How often consumer lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Live-run failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Consumer side.
    #[error(transparent)]
    Source(#[from] KafkaSourceError),
    /// Producer side.
    #[error(transparent)]
    Sink(#[from] KafkaSinkError),
    /// Incident delivery outbox.
    #[error(transparent)]
    Delivery(#[from] crate::sink::delivery::DeliveryError),
    /// Offset store/commit.
    #[error("kafka offsets: {0}")]
    Offsets(#[from] rdkafka::error::KafkaError),
    /// Runtime or socket setup.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Events posted over HTTP in `run` go to their Kafka topic (keyed like any
/// producer would), so they are durable and replayable like any other event;
/// dead letters of refused items go to the dead-letter topic.
struct KafkaIntake {
    sink: KafkaSink,
    kafka: KafkaConfig,
}

impl KafkaIntake {
    fn flush(&self) -> Result<(), String> {
        self.sink
            .flush(Duration::from_secs(10))
            .map_err(|e| e.to_string())
    }
}

impl Intake for KafkaIntake {
    fn publish(&self, events: &[Event]) -> Result<(), String> {
        for e in events {
            let topic = match e.topic {
                Topic::Monitoring => &self.kafka.monitoring_topic,
                Topic::Tickets => &self.kafka.tickets_topic,
            };
            self.sink
                .send(topic, &e.key, &e.json)
                .map_err(|e| e.to_string())?;
        }
        self.flush()
    }

    fn dead_letter(&self, dead: &[DeadLetter]) -> Result<(), String> {
        for d in dead {
            let key = format!("{}/{}/{}", d.topic, d.partition, d.offset);
            self.sink
                .send(&self.kafka.deadletter_topic, &key, &d.to_json())
                .map_err(|e| e.to_string())?;
        }
        self.flush()
    }
}

/// Runs the live pipeline and the API until SIGTERM or SIGINT.
pub fn run(config: Arc<Config>) -> Result<(), RunError> {
    let kafka = config.kafka_or_default();
    let listen = config.api.clone().unwrap_or_default().listen;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&listen))
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let pipeline = Pipeline::new(
        config.clone(),
        [kafka.monitoring_topic.clone(), kafka.tickets_topic.clone()],
    );
    let intake = KafkaIntake {
        sink: KafkaSink::new(&kafka)?,
        kafka: kafka.clone(),
    };
    let shared = Arc::new(Shared::new(config, Core::new(pipeline), Box::new(intake)));
    tracing::info!(listen = %listener.local_addr()?, "API listening");

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
        });
    }
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(crate::api::serve(listener, shared.clone(), async move {
        let _ = api_stopped.await;
    }));
    let worker = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("slaflow-live".into())
            .spawn(move || live(&shared, &kafka, &stop))?
    };
    let result = worker
        .join()
        .unwrap_or_else(|_| Err(RunError::Io(std::io::Error::other("live loop panicked"))));
    // The API stops after the consumer has committed and left the group.
    let _ = api_stop.send(());
    if let Ok(Err(e)) = runtime.block_on(server) {
        tracing::warn!(error = %e, "API server");
    }
    result
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

/// The live loop: consume, process, publish, commit, until `stop` is set.
/// `run` drives it on its own thread; `slaflow bench` measures it.
pub fn live(shared: &Shared, kafka: &KafkaConfig, stop: &AtomicBool) -> Result<(), RunError> {
    let mut source = KafkaSource::new(kafka)?;
    let sink = KafkaSink::new(kafka)?;
    let delivery = Delivery::start(&shared.config, shared.metrics.delivery.clone())?;
    let mut out = Outputs::default();
    let mut last_commit = Instant::now();
    let mut last_lag = Instant::now();
    tracing::info!(brokers = %kafka.brokers, group = %kafka.group_id, "slaflow run started");

    while !stop.load(Ordering::SeqCst) {
        let events = source.poll_batch(POLL_RECORDS, Duration::from_millis(100));
        let started = Instant::now();
        {
            let mut core = shared.core();
            let wall = wall_now();
            core.now = wall;
            let p = &mut core.pipeline;
            for ev in events {
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
                        p.ingest(stream, &raw, wall, &mut out);
                        p.eventtime_mut().set_caught_up(stream, false);
                    }
                    SourceEvent::Assigned(streams) => {
                        for s in streams {
                            p.eventtime_mut().add_stream(s, wall);
                        }
                        shared.set_ready(true);
                    }
                    SourceEvent::Revoked(streams) => {
                        for &s in &streams {
                            p.eventtime_mut().remove_stream(s);
                        }
                        source.forget(&streams);
                    }
                    SourceEvent::CaughtUp(s, c) => p.eventtime_mut().set_caught_up(s, c),
                }
            }
            p.advance(Some(wall), &mut out);
            core.record(&out.incidents);
            shared
                .metrics
                .observe(&core, started.elapsed(), &out.incidents);
        }
        // Into the outbox before the offsets that produced them can be committed.
        if let Some(d) = &delivery {
            d.enqueue(&out.incidents)?;
        }
        publish(&sink, kafka, &mut out)?;
        if last_commit.elapsed() >= COMMIT_EVERY {
            commit(shared, &mut source, &sink)?;
            last_commit = Instant::now();
        }
        if last_lag.elapsed() >= LAG_EVERY {
            for (stream, lag) in source.lags() {
                shared.metrics.set_consumer_lag(stream, lag);
            }
            last_lag = Instant::now();
        }
    }
    commit(shared, &mut source, &sink)?;
    source.commit_stored()?;
    let core = shared.core();
    let c = core.pipeline.counts();
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
fn commit(shared: &Shared, source: &mut KafkaSource, sink: &KafkaSink) -> Result<(), RunError> {
    // Offsets are taken before the flush: everything they cover was already queued.
    let offsets: Vec<_> = {
        let core = shared.core();
        let et = core.pipeline.eventtime();
        et.streams()
            .filter_map(|s| Some((s, et.safe_offset(s)?)))
            .collect()
    };
    sink.flush(Duration::from_secs(30))?;
    source.store_offsets(&offsets)?;
    Ok(())
}
