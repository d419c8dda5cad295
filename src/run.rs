//! `slaflow run`: the live driver. Kafka → pipeline → Kafka, plus the HTTP API.
//!
//! One dedicated thread polls and processes (the consumer never waits on the async
//! runtime, so rebalances are served promptly); the runtime serves the API and
//! watches for SIGTERM/SIGINT. Every `engine.checkpoint_interval` each assigned
//! partition is checkpointed (disk and changelog) once the outputs its state
//! produced are acknowledged (incident deliveries are in the durable outbox
//! before that); only then are the offsets the checkpoints cover committed. On
//! assignment a partition is restored from the newest valid checkpoint and read
//! from its offset, or rebuilt from the beginning of the topic.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::topic_partition_list::Offset;

use crate::changelog;
use crate::checkpoint::{
    self, Checkpoint, CheckpointError, CheckpointStore, StateKey, stream_name,
};
use crate::config::{Config, KafkaConfig};
use crate::engine::Outputs;
use crate::event::DeadLetter;
use crate::event::RawRecord;
use crate::eventtime::StreamId;
use crate::ingest::{Event, Intake};
use crate::metrics::CheckpointMetrics;
use crate::pipeline::Pipeline;
use crate::sink::delivery::Delivery;
use crate::sink::kafka::{KafkaSink, KafkaSinkError};
use crate::source::kafka::{AssignHook, KafkaSource, KafkaSourceError, SourceEvent};
use crate::state::{Core, Shared};
use crate::time::wall_now;

/// Records drained from the consumer per processing step.
const POLL_RECORDS: usize = 4096;
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
    /// Settings that cannot work (e.g. a state key variable that is unset).
    #[error("{0}")]
    Setup(String),
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
            self.sink
                .send(self.kafka.topic_name(e.topic), &e.key, &e.json)
                .map_err(|e| e.to_string())?;
        }
        self.flush()
    }

    fn dead_letter(&self, dead: &[DeadLetter]) -> Result<(), String> {
        for d in dead {
            self.sink
                .send(&self.kafka.deadletter_topic, &d.key(), &d.to_json())
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
        let grace = shared.config.engine.shutdown_grace.std();
        runtime.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.store(true, Ordering::SeqCst);
            exit_after(grace);
        });
    }
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(crate::api::serve(listener, shared.clone(), async move {
        let _ = api_stopped.await;
    }));
    let key = StateKey::from_config(&shared.config).map_err(RunError::Setup)?;
    let global = {
        let (shared, stop, kafka) = (shared.clone(), stop.clone(), kafka.clone());
        std::thread::Builder::new()
            .name("slaflow-global".into())
            .spawn(move || follow_changelog(&shared, &kafka, &key, &stop))?
    };
    let worker = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("slaflow-live".into())
            .spawn(move || live(&shared, &kafka, &stop))?
    };
    let result = worker
        .join()
        .unwrap_or_else(|_| Err(RunError::Io(std::io::Error::other("live loop panicked"))));
    // The live loop may have stopped on an error: stop the follower too.
    stop.store(true, Ordering::SeqCst);
    let _ = global.join();
    // The API stops after the consumer has committed and left the group.
    let _ = api_stop.send(());
    if let Ok(Err(e)) = runtime.block_on(server) {
        tracing::warn!(error = %e, "API server");
    }
    result
}

/// Ends the process once `grace` has passed, whatever a clean stop is waiting
/// for (a broker that went away can block a consumer's close forever). Nothing is
/// lost: offsets are committed only after the state they cover is checkpointed,
/// so records after the last commit are read again after a restart, and event
/// and incident ids deduplicate them.
pub fn exit_after(grace: Duration) {
    let spawned = std::thread::Builder::new()
        .name("slaflow-shutdown-deadline".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "shutdown grace (engine.shutdown_grace) expired: exiting now; what was not \
                 committed is read again after a restart"
            );
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot arm the shutdown deadline");
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

/// Keeps the global view for reports: follows the changelog and, while other
/// instances own partitions this one does not, restores every partition's latest
/// checkpoint into a read-only core (rebuilt when a checkpoint changes).
fn follow_changelog(shared: &Shared, kafka: &KafkaConfig, key: &StateKey, stop: &AtomicBool) {
    let mut tail = match changelog::Tail::new(kafka, key) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the changelog: reports cover this instance's partitions only");
            return;
        }
    };
    let config = &shared.config;
    let every = Duration::from_millis(config.engine.checkpoint_interval.0.max(1000) as u64);
    let mut built: BTreeMap<StreamId, String> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let latest = tail.poll(Duration::from_millis(500));
        let current: BTreeMap<StreamId, String> =
            latest.iter().map(|(s, l)| (*s, l.sha256.clone())).collect();
        let owned = shared.owned();
        if current != built && !current.keys().all(|s| owned.contains(s)) {
            let mut core = Core::empty(config);
            let wall = wall_now();
            for (s, l) in latest {
                match checkpoint::decode(&l.bytes, config) {
                    Ok(cp) => core.restore(cp, wall),
                    Err(e) => {
                        tracing::warn!(stream = %stream_name(s), error = %e, "global view: checkpoint skipped")
                    }
                }
            }
            core.now = wall;
            shared.set_global(core, current.keys().copied().collect());
            tracing::debug!(partitions = current.len(), "global view rebuilt");
            built = current;
        }
        let until = Instant::now() + every;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Restores assigned partitions inside the rebalance: the newest of the local
/// checkpoint and the changelog's; without either (or if both are corrupt) the
/// partition is rebuilt from the beginning of the topic.
struct Restorer {
    store: CheckpointStore,
    kafka: KafkaConfig,
    /// Checkpoints loaded per assignment, in rebalance order: each `Assigned`
    /// event the live loop handles takes the front entry (one poll can carry
    /// several rebalances, so a per-stream slot could be overwritten).
    stash: Mutex<VecDeque<HashMap<StreamId, Checkpoint>>>,
    metrics: CheckpointMetrics,
}

impl Restorer {
    fn local(&self, s: StreamId) -> Option<Checkpoint> {
        match self.store.read(s) {
            Ok(cp) => cp,
            Err(e @ CheckpointError::Corrupt { .. }) => {
                self.metrics.count("corrupt");
                match self.store.set_aside(s) {
                    Ok(to) => {
                        tracing::error!(error = %e, moved_to = %to.display(), "checkpoint refused")
                    }
                    Err(m) => tracing::error!(error = %e, also = %m, "checkpoint refused"),
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint unreadable");
                None
            }
        }
    }

    /// Takes the checkpoints loaded for the oldest assignment not yet handled.
    fn take(&self) -> HashMap<StreamId, Checkpoint> {
        self.stash
            .lock()
            .map(|mut q| q.pop_front().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl AssignHook for Arc<Restorer> {
    fn start_at(&self, streams: &[StreamId]) -> Vec<(StreamId, Offset)> {
        let remote = changelog::read_latest(&self.kafka, self.store.key(), Duration::from_secs(30)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the changelog; using local checkpoints only");
            HashMap::new()
        });
        let mut loaded = HashMap::new();
        let starts = streams
            .iter()
            .map(|&s| {
                let from_changelog = remote.get(&s).and_then(|latest| {
                    checkpoint::decode(&latest.bytes, self.store.config())
                        .inspect_err(|e| {
                            self.metrics.count("corrupt");
                            tracing::error!(stream = %stream_name(s), error = %e, "changelog checkpoint refused")
                        })
                        .ok()
                });
                let local = self.local(s);
                let (best, source) = match (local, from_changelog) {
                    (Some(l), Some(r)) if r.next_offset() > l.next_offset() => (Some(r), "changelog"),
                    (Some(l), _) => (Some(l), "local"),
                    (None, Some(r)) => (Some(r), "changelog"),
                    (None, None) => (None, "rebuilt"),
                };
                self.metrics.count(&format!("restored_{source}"));
                match best {
                    Some(cp) => {
                        let at = cp.next_offset();
                        tracing::info!(stream = %stream_name(s), next_offset = at, source, "partition restored");
                        loaded.insert(s, cp);
                        (s, Offset::Offset(at))
                    }
                    None => {
                        tracing::info!(stream = %stream_name(s), "no checkpoint: rebuilding from the beginning");
                        (s, Offset::Beginning)
                    }
                }
            })
            .collect();
        if let Ok(mut q) = self.stash.lock() {
            q.push_back(loaded);
        }
        starts
    }
}

/// The live loop: consume, process, publish, checkpoint, commit, until `stop` is set.
/// `run` drives it on its own thread; `slaflow bench` measures it.
pub fn live(shared: &Shared, kafka: &KafkaConfig, stop: &AtomicBool) -> Result<(), RunError> {
    let config = shared.config.clone();
    let key = StateKey::from_config(&config).map_err(RunError::Setup)?;
    let store = CheckpointStore::for_kafka(config.clone(), key.clone(), kafka);
    if let Err(e) = changelog::ensure_topic(kafka) {
        tracing::warn!(error = %e, topic = %kafka.state_topic, "changelog topic not ensured");
    }
    let restorer = Arc::new(Restorer {
        store: CheckpointStore::for_kafka(config.clone(), key, kafka),
        kafka: kafka.clone(),
        stash: Mutex::new(VecDeque::new()),
        metrics: shared.metrics.checkpoints.clone(),
    });
    let mut source = KafkaSource::new(kafka, Some(Box::new(restorer.clone())))?;
    let sink = KafkaSink::new(kafka)?;
    // Checkpoints go through their own producer, so the loop never waits behind
    // them: their offsets are stored once the broker has acknowledged them.
    let changelog_sink = KafkaSink::new(kafka)?;
    let mut unacked = Unacked::default();
    let delivery = Delivery::start(&config, shared.metrics.delivery.clone())?;
    let interval = Duration::from_millis(config.engine.checkpoint_interval.0.max(1) as u64);
    let mut out = Outputs::default();
    let mut assigned: BTreeSet<StreamId> = BTreeSet::new();
    let mut last_checkpoint = Instant::now();
    let mut last_lag = Instant::now();
    tracing::info!(brokers = %kafka.brokers, group = %kafka.group_id, "slaflow run started");

    while !stop.load(Ordering::SeqCst) {
        let events = source.poll_batch(POLL_RECORDS, Duration::from_millis(100));
        let started = Instant::now();
        {
            let mut core = shared.core();
            let wall = wall_now();
            core.now = wall;
            for ev in events {
                match ev {
                    // Records fetched for a partition no longer ours are its new owner's.
                    SourceEvent::Records(stream, _) if !assigned.contains(&stream) => {}
                    SourceEvent::Records(stream, recs) => {
                        let raw: Vec<RawRecord> = recs
                            .iter()
                            .map(|r| RawRecord {
                                partition: stream.partition,
                                offset: r.offset,
                                payload: &r.payload,
                            })
                            .collect();
                        let p = &mut core.pipeline;
                        p.ingest(stream, &raw, wall, &mut out);
                        p.eventtime_mut().set_caught_up(stream, false);
                    }
                    SourceEvent::Assigned(streams) => {
                        let mut loaded = restorer.take();
                        for s in streams {
                            assigned.insert(s);
                            match loaded.remove(&s) {
                                Some(cp) => core.restore(cp, wall),
                                None => {
                                    core.forget(s);
                                    core.pipeline.eventtime_mut().add_stream(s, wall);
                                }
                            }
                        }
                        shared.set_owned(&assigned);
                        shared.set_ready(true);
                    }
                    SourceEvent::Revoked(streams) => {
                        // The new owner resumes from the last checkpoint.
                        for &s in &streams {
                            assigned.remove(&s);
                            core.forget(s);
                        }
                        shared.set_owned(&assigned);
                        source.forget(&streams);
                    }
                    SourceEvent::CaughtUp(s, c) => {
                        core.pipeline.eventtime_mut().set_caught_up(s, c)
                    }
                }
            }
            core.pipeline.advance(Some(wall), &mut out);
            core.record(&out.incidents);
            core.prune();
            shared
                .metrics
                .observe(&core, started.elapsed(), &out.incidents);
        }
        // Into the outbox before the offsets that produced them can be committed.
        if let Some(d) = &delivery {
            d.enqueue(&out.incidents)?;
        }
        publish(&sink, kafka, &mut out)?;
        unacked.settle(&changelog_sink, &mut source, &assigned, false)?;
        // One round in flight at most: while the changelog is still taking the
        // last one, the next waits (rather than the loop).
        if last_checkpoint.elapsed() >= interval && unacked.covered.is_empty() {
            unacked.covered = checkpoint(shared, &store, &sink, &changelog_sink, kafka, &assigned)?;
            last_checkpoint = Instant::now();
        }
        if last_lag.elapsed() >= LAG_EVERY {
            for (stream, lag) in source.lags() {
                shared.metrics.set_consumer_lag(stream, lag);
            }
            last_lag = Instant::now();
        }
    }
    // Graceful stop: fetching has stopped; checkpoint, commit, then leave the group.
    unacked.settle(&changelog_sink, &mut source, &assigned, true)?;
    unacked.covered = checkpoint(shared, &store, &sink, &changelog_sink, kafka, &assigned)?;
    unacked.settle(&changelog_sink, &mut source, &assigned, true)?;
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
        sink.send(&kafka.deadletter_topic, &d.key(), &d.to_json())?;
    }
    for i in out.incidents.drain(..) {
        sink.send(&kafka.incidents_topic, &i.incident_id, &i.to_json())?;
    }
    Ok(())
}

/// Offsets covered by checkpoints whose changelog copies are not yet acknowledged.
#[derive(Default)]
struct Unacked {
    covered: Vec<(StreamId, i64)>,
}

impl Unacked {
    /// Once the changelog has everything (waiting for it if `wait`), stores the
    /// covered offsets of partitions still assigned for commit.
    fn settle(
        &mut self,
        changelog: &KafkaSink,
        source: &mut KafkaSource,
        assigned: &BTreeSet<StreamId>,
        wait: bool,
    ) -> Result<(), RunError> {
        if self.covered.is_empty() {
            return Ok(());
        }
        if wait {
            changelog.flush(Duration::from_secs(60))?;
        } else if changelog.in_flight() > 0 {
            return Ok(());
        }
        changelog.check()?;
        self.covered.retain(|(s, _)| assigned.contains(s));
        source.store_offsets(&self.covered)?;
        self.covered.clear();
        Ok(())
    }
}

/// Checkpoints every assigned partition: snapshot the state, wait until the
/// outputs it produced are delivered, write the checkpoints to disk and queue
/// them on the changelog. Returns the offsets they cover, to be stored for
/// commit once the changelog has them ([`Unacked::settle`]).
fn checkpoint(
    shared: &Shared,
    store: &CheckpointStore,
    sink: &KafkaSink,
    changelog_sink: &KafkaSink,
    kafka: &KafkaConfig,
    assigned: &BTreeSet<StreamId>,
) -> Result<Vec<(StreamId, i64)>, RunError> {
    let started = Instant::now();
    let snapshots: Vec<Checkpoint> = {
        let core = shared.core();
        assigned
            .iter()
            .filter_map(|&s| core.checkpoint(s))
            .collect()
    };
    sink.flush(Duration::from_secs(30))?;
    let mut covered = Vec::new();
    let mut total_bytes = 0;
    for cp in &snapshots {
        match store.write(cp) {
            Ok((_, bytes)) => {
                total_bytes += bytes.len();
                changelog::publish(
                    changelog_sink,
                    kafka,
                    store.key(),
                    cp.stream(),
                    cp.next_offset(),
                    &bytes,
                )?;
                covered.push((cp.stream(), cp.next_offset()));
            }
            // Keep running: the offsets stay uncommitted, a restart resumes earlier.
            Err(e) => {
                shared.metrics.checkpoints.count("failed");
                tracing::error!(error = %e, "checkpoint not written");
            }
        }
    }
    if !covered.is_empty() {
        tracing::debug!(
            partitions = covered.len(),
            took_ms = started.elapsed().as_millis() as u64,
            bytes = total_bytes,
            "checkpoint written"
        );
    }
    shared.metrics.checkpoints.count_n("written", covered.len());
    shared
        .metrics
        .checkpoints
        .observe(started.elapsed(), total_bytes);
    Ok(covered)
}
