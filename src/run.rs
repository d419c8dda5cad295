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
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::Offset;

use crate::changelog;
use crate::checkpoint::{
    self, Checkpoint, CheckpointError, CheckpointStore, StateKey, stream_name,
};
use crate::config::{Config, KafkaConfig};
use crate::engine::Outputs;
use crate::event::DeadLetter;
use crate::event::rows::Corrupt;
use crate::eventtime::StreamId;
use crate::ingest::{Event, Intake, IntakeError};
use crate::metrics::CheckpointMetrics;
use crate::pipeline::Pipeline;
use crate::sink::delivery::Delivery;
use crate::sink::kafka::{KafkaSink, KafkaSinkError};
use crate::source::LineBlock;
use crate::source::kafka::{AssignHook, KafkaSource, KafkaSourceError, SourceEvent};
use crate::state::{Core, Shared, Snapshot};
use crate::time::wall_now;

/// Records drained from the consumer per processing step.
const POLL_RECORDS: usize = 4096;
/// How often consumer lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// How long one attempt to reach the brokers at start waits.
const BROKER_PROBE: Duration = Duration::from_secs(5);
/// The pause between two attempts.
const BROKER_RETRY: Duration = Duration::from_secs(5);

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
    /// `engine.checkpoint_key_env` names a variable without a key.
    #[error(transparent)]
    MissingKey(#[from] crate::checkpoint::MissingKey),
    /// An incident could not be encoded (a bug: every incident serialises).
    #[error("cannot encode an incident: {0}")]
    Encode(#[from] serde_json::Error),
    /// A decoded batch broke the decoder's invariants: the loop stops before
    /// committing anything of it.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Events posted over HTTP in `run` go to their Kafka topic (keyed like any
/// producer would), so they are durable and replayable like any other event;
/// dead letters of refused items go to the dead-letter topic.
struct KafkaIntake {
    sink: KafkaSink,
    kafka: KafkaConfig,
}

impl KafkaIntake {
    fn flush(&self) -> Result<(), IntakeError> {
        let flushed = self.sink.flush(Duration::from_secs(10));
        flushed.map_err(|e| IntakeError(e.into()))
    }
}

impl Intake for KafkaIntake {
    fn publish(&self, events: &[Event]) -> Result<(), IntakeError> {
        for e in events {
            (self.sink)
                .send(self.kafka.topic_name(e.topic), &e.key, &e.json)
                .map_err(|e| IntakeError(e.into()))?;
        }
        self.flush()
    }

    fn dead_letter(&self, dead: &[DeadLetter]) -> Result<(), IntakeError> {
        for d in dead {
            (self.sink)
                .send(&self.kafka.deadletter_topic, &d.key(), &d.to_json())
                .map_err(|e| IntakeError(e.into()))?;
        }
        self.flush()
    }
}

/// Runs the live pipeline and the API until SIGTERM or SIGINT.
pub fn run(config: Arc<Config>) -> Result<(), RunError> {
    // Settings that cannot work stop the start before anything listens.
    let key = StateKey::from_config(&config)?;
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

    let stop = Stop::default();
    {
        let stop = stop.clone();
        let grace = shared.config.engine.shutdown_grace.std();
        runtime.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            stop.request();
            exit_after(grace);
        });
    }
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(crate::api::serve(listener, shared.clone(), async move {
        let _ = api_stopped.await;
    }));
    let result = consume_until_stopped(&shared, kafka, key, &stop);
    // The API stops after the consumer has committed and left the group (or
    // after a stop that came before the brokers answered).
    let _ = api_stop.send(());
    if let Ok(Err(e)) = runtime.block_on(server) {
        tracing::warn!(error = %e, "API server");
    }
    result
}

/// Once the brokers answer: the live loop and the changelog follower until
/// `stop` (or the loop's error). Nothing is consumed if a stop comes first.
fn consume_until_stopped(
    shared: &Arc<Shared>,
    kafka: KafkaConfig,
    key: StateKey,
    stop: &Stop,
) -> Result<(), RunError> {
    if !wait_for_brokers(&kafka, stop)? {
        tracing::info!("slaflow run stopped before the brokers answered");
        return Ok(());
    }
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
    stop.request();
    let _ = global.join();
    result
}

/// Waits until the brokers answer, with a warning after each failed attempt
/// (until then `/readyz` answers 503); false if a stop came first.
fn wait_for_brokers(kafka: &KafkaConfig, stop: &Stop) -> Result<bool, RunError> {
    let probe = crate::kafka::BrokerProbe::new(kafka)
        .map_err(|e| RunError::Setup(format!("kafka client for {}: {e}", kafka.brokers)))?;
    let mut failed = false;
    loop {
        match probe.check(BROKER_PROBE) {
            Ok(()) if failed => {
                tracing::info!(brokers = %kafka.brokers, "the Kafka brokers answer");
                return Ok(true);
            }
            Ok(()) => return Ok(true),
            Err(e) => {
                tracing::warn!(
                    brokers = %kafka.brokers,
                    error = %e,
                    "cannot reach the Kafka brokers (kafka.brokers); retrying every {}s, /readyz answers 503 until they answer",
                    BROKER_RETRY.as_secs()
                );
                failed = true;
            }
        }
        if stop.wait(BROKER_RETRY) {
            return Ok(false);
        }
    }
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
fn follow_changelog(shared: &Shared, kafka: &KafkaConfig, key: &StateKey, stop: &Stop) {
    let mut tail = match changelog::Tail::new(kafka, key) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the changelog: reports cover this instance's partitions only");
            return;
        }
    };
    let config = &shared.config;
    let every = config
        .engine
        .checkpoint_interval
        .std()
        .max(Duration::from_secs(1));
    let mut built: BTreeMap<StreamId, String> = BTreeMap::new();
    loop {
        let latest = tail.poll(Duration::from_millis(500));
        let current: BTreeMap<StreamId, String> =
            latest.iter().map(|(s, l)| (*s, l.sha256.clone())).collect();
        let owned = shared.owned();
        if current != built && !current.keys().all(|s| owned.contains(s)) {
            let mut core = Core::empty(config);
            let wall = wall_now();
            for (s, l) in latest {
                match checkpoint::decode_chain(&l.files, config) {
                    Ok(cp) => core.restore(cp, wall),
                    Err(e) => {
                        tracing::warn!(stream = %stream_name(s), error = %e, "global view: checkpoint skipped")
                    }
                }
            }
            core.now = wall;
            shared.set_global(Snapshot::of(&core), current.keys().copied().collect());
            tracing::debug!(partitions = current.len(), "global view rebuilt");
            built = current;
        }
        if stop.wait(every) {
            return;
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

/// Where a partition's state came from on assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreSource {
    /// This instance's data directory.
    Local,
    /// The changelog topic (another instance's, or a newer one).
    Changelog,
    /// Neither: rebuilt from the beginning of the topic.
    Rebuilt,
}

impl RestoreSource {
    /// `local`, `changelog` or `rebuilt` (metric labels, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreSource::Local => "local",
            RestoreSource::Changelog => "changelog",
            RestoreSource::Rebuilt => "rebuilt",
        }
    }
}

/// Which checkpoint a newly assigned partition resumes from: the one that covers
/// more of the partition (the higher next offset); the local one on a tie, as
/// it needs no broker.
pub fn choose_restore(
    local: Option<Checkpoint>,
    changelog: Option<Checkpoint>,
) -> (Option<Checkpoint>, RestoreSource) {
    match (local, changelog) {
        (Some(l), Some(r)) if r.next_offset() > l.next_offset() => {
            (Some(r), RestoreSource::Changelog)
        }
        (Some(l), _) => (Some(l), RestoreSource::Local),
        (None, Some(r)) => (Some(r), RestoreSource::Changelog),
        (None, None) => (None, RestoreSource::Rebuilt),
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
                    checkpoint::decode_chain(&latest.files, self.store.config())
                        .inspect_err(|e| {
                            self.metrics.count("corrupt");
                            tracing::error!(stream = %stream_name(s), error = %e, "changelog checkpoint refused")
                        })
                        .ok()
                });
                let (best, source) = choose_restore(self.local(s), from_changelog);
                self.metrics.count(&format!("restored_{}", source.as_str()));
                match best {
                    Some(cp) => {
                        let at = cp.next_offset();
                        tracing::info!(stream = %stream_name(s), next_offset = at, source = source.as_str(), "partition restored");
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

/// A stop request that every thread of a run can check or wait on.
#[derive(Clone, Default)]
pub struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    /// Asks every thread to stop.
    pub fn request(&self) {
        let (flag, wake) = &*self.0;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout`; true if a stop was requested.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, wake) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, timeout, |stop| !*stop)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// The live loop until `stop`: consume, process, publish, checkpoint, commit.
/// A consumer thread polls Kafka and hands each poll's events to the loop over a
/// channel (one poll ahead at most); the loop sends back the offsets to store.
/// `run` drives it on its own thread; `slaflow bench` measures it.
pub fn live(shared: &Shared, kafka: &KafkaConfig, stop: &Stop) -> Result<(), RunError> {
    let (mut live, source, commands) = LiveLoop::start(shared, kafka)?;
    let (events, polled) = sync_channel::<Vec<SourceEvent>>(1);
    let metrics = &shared.metrics;
    std::thread::scope(|scope| {
        let consumer = std::thread::Builder::new()
            .name("slaflow-consumer".into())
            .spawn_scoped(scope, move || {
                consume(source, events, commands, stop, metrics)
            })?;
        let looped = (|| {
            // A closed channel means the consumer stopped (on `stop`, or on an error).
            while let Ok(batch) = polled.recv() {
                live.step(batch)?;
                if stop.requested() {
                    break;
                }
            }
            // Unblocks a consumer waiting to hand over a poll.
            drop(polled);
            live.shutdown()
        })();
        let consumed = consumer
            .join()
            .unwrap_or_else(|_| Err(RunError::Io(std::io::Error::other("consumer panicked"))));
        looped.and(consumed)
    })
}

/// What the live loop asks of the consumer thread.
enum ToConsumer {
    /// Store these offsets (covered by written checkpoints) for commit.
    Store(Vec<(StreamId, i64)>),
    /// Forget the stored offsets of revoked partitions.
    Forget(Vec<StreamId>),
    /// Commit the stored offsets now (shutdown) and report how it went.
    Commit(SyncSender<Result<(), KafkaError>>),
}

/// The consumer thread: applies the loop's requests, polls, hands the events
/// over (an empty poll too: it is the loop's tick), measures lag; after `stop`
/// or once the loop stops listening, serves the loop's last requests until it
/// hangs up, then the consumer leaves the group.
fn consume(
    mut source: KafkaSource,
    events: SyncSender<Vec<SourceEvent>>,
    commands: Receiver<ToConsumer>,
    stop: &Stop,
    metrics: &crate::metrics::Metrics,
) -> Result<(), RunError> {
    let mut last_lag = Instant::now();
    while !stop.requested() {
        while let Ok(command) = commands.try_recv() {
            serve(&mut source, command)?;
        }
        if last_lag.elapsed() >= LAG_EVERY {
            for (stream, lag) in source.lags() {
                metrics.set_consumer_lag(stream, lag);
            }
            last_lag = Instant::now();
        }
        let batch = source.poll_batch(POLL_RECORDS, Duration::from_millis(100));
        if events.send(batch).is_err() {
            break;
        }
    }
    // The loop sees the end of the polls and goes on to its shutdown requests.
    drop(events);
    for command in commands {
        serve(&mut source, command)?;
    }
    Ok(())
}

fn serve(source: &mut KafkaSource, command: ToConsumer) -> Result<(), RunError> {
    match command {
        ToConsumer::Store(offsets) => source.store_offsets(&offsets)?,
        ToConsumer::Forget(streams) => source.forget(&streams),
        // The loop may have gone on an error of its own; it then needs no answer.
        ToConsumer::Commit(reply) => drop(reply.send(source.commit_stored())),
    }
    Ok(())
}

/// The live driver between steps: what it consumes from, writes to, owns.
/// Each poll's events are one step ([`LiveLoop::step`]); checkpoints are
/// written by a [`Checkpointer`] thread from copies taken between steps.
pub struct LiveLoop<'a> {
    shared: &'a Shared,
    kafka: &'a KafkaConfig,
    /// Requests to the consumer thread.
    consumer: Sender<ToConsumer>,
    restorer: Arc<Restorer>,
    sink: Arc<KafkaSink>,
    delivery: Option<Delivery>,
    checkpointer: Checkpointer,
    out: Outputs,
    interval: Duration,
    last_checkpoint: Instant,
    /// Partitions assigned since the last round: their state may come from
    /// another instance, so their checkpoints start new chains.
    assigned: BTreeSet<StreamId>,
}

impl<'a> LiveLoop<'a> {
    /// Connects to Kafka (restoring partitions as they are assigned) and starts
    /// the delivery and checkpoint threads; returns the consumer to poll and
    /// the loop's requests to it.
    fn start(
        shared: &'a Shared,
        kafka: &'a KafkaConfig,
    ) -> Result<(Self, KafkaSource, Receiver<ToConsumer>), RunError> {
        let config = shared.config.clone();
        let key = StateKey::from_config(&config)?;
        if let Err(e) = changelog::ensure_topic(kafka) {
            tracing::warn!(error = %e, topic = %kafka.state_topic, "changelog topic not ensured");
        }
        let restorer = Arc::new(Restorer {
            store: CheckpointStore::for_kafka(config.clone(), key.clone(), kafka),
            kafka: kafka.clone(),
            stash: Mutex::new(VecDeque::new()),
            metrics: shared.metrics.checkpoints.clone(),
        });
        let source = KafkaSource::new(kafka, Some(Box::new(restorer.clone())))?;
        let sink = Arc::new(KafkaSink::new(kafka)?);
        let store = CheckpointStore::for_kafka(config.clone(), key, kafka);
        let checkpointer = Checkpointer::start(store, sink.clone(), kafka, shared)?;
        let delivery = Delivery::start(&config, shared.metrics.delivery.clone())?;
        tracing::info!(brokers = %kafka.brokers, group = %kafka.group_id, "slaflow run started");
        let (consumer, commands) = channel();
        let live = LiveLoop {
            shared,
            kafka,
            consumer,
            restorer,
            sink,
            delivery,
            checkpointer,
            out: Outputs::default(),
            interval: config.engine.checkpoint_interval.std(),
            last_checkpoint: Instant::now(),
            assigned: BTreeSet::new(),
        };
        Ok((live, source, commands))
    }

    fn tell(&self, command: ToConsumer) -> Result<(), RunError> {
        (self.consumer.send(command))
            .map_err(|_| RunError::Setup("the consumer thread stopped".into()))
    }

    /// One step: the polled events under the engine lock, then outputs,
    /// offsets and (when due) a checkpoint round.
    pub fn step(&mut self, events: Vec<SourceEvent>) -> Result<(), RunError> {
        let started = Instant::now();
        let mut changed = !events.is_empty();
        {
            let mut core = self.shared.core();
            let wall = wall_now();
            core.now = wall;
            for ev in events {
                match ev {
                    SourceEvent::Records(stream, recs) => {
                        self.on_records(&mut core, stream, &recs, wall)?
                    }
                    SourceEvent::Assigned(streams) => self.on_assigned(&mut core, streams, wall),
                    SourceEvent::Revoked(streams) => self.on_revoked(&mut core, &streams),
                    SourceEvent::CaughtUp(s, c) => {
                        core.pipeline.eventtime_mut().set_caught_up(s, c)
                    }
                }
            }
            // A moving watermark releases records and fires deadlines without any new event.
            changed |= core.step(Some(wall), &mut self.out)?;
            core.observe(&self.shared.metrics, started.elapsed(), &self.out.incidents);
            self.shared.publish(&core, changed);
        }
        self.on_tick()
    }

    fn on_records(
        &mut self,
        core: &mut Core,
        stream: StreamId,
        recs: &LineBlock,
        wall: i64,
    ) -> Result<(), Corrupt> {
        // Records fetched for a partition no longer ours are its new owner's.
        if !core.owned.contains(&stream) {
            return Ok(());
        }
        let raw = recs.records(stream.partition);
        (core.pipeline).ingest_in(stream, &raw, Some(recs.text()), wall, &mut self.out)?;
        core.pipeline.eventtime_mut().set_caught_up(stream, false);
        Ok(())
    }

    fn on_assigned(&mut self, core: &mut Core, streams: Vec<StreamId>, wall: i64) {
        let mut loaded = self.restorer.take();
        for s in streams {
            core.owned.insert(s);
            self.assigned.insert(s);
            match loaded.remove(&s) {
                Some(cp) => core.restore(cp, wall),
                None => {
                    core.forget(s);
                    core.pipeline.eventtime_mut().add_stream(s, wall);
                }
            }
        }
        self.shared.set_ready(true);
        tracing::debug!(
            partitions = core.owned.len(),
            "live loop owns the assigned partitions"
        );
    }

    fn on_revoked(&mut self, core: &mut Core, streams: &[StreamId]) {
        // The new owner resumes from the last checkpoint.
        for s in streams {
            core.owned.remove(s);
            core.forget(*s);
        }
        if let Err(e) = self.tell(ToConsumer::Forget(streams.to_vec())) {
            tracing::warn!(error = %e, "revoked partitions' offsets not forgotten");
        }
    }

    /// After the engine step: outputs out, finished checkpoint rounds' offsets
    /// stored, the next round started when due.
    fn on_tick(&mut self) -> Result<(), RunError> {
        // Into the outbox before the offsets that produced them can be committed.
        if let Some(d) = &self.delivery {
            d.enqueue(&self.out.incidents)?;
        }
        publish(&self.sink, self.kafka, &mut self.out)?;
        if let Some(covered) = self.checkpointer.finished()? {
            self.store_offsets(covered)?;
        }
        // One round in flight at most: while one is being written, the next waits.
        if self.last_checkpoint.elapsed() >= self.interval && self.checkpointer.idle() {
            let round = self.copies();
            self.checkpointer.begin(round)?;
            self.last_checkpoint = Instant::now();
        }
        Ok(())
    }

    /// Copies of every assigned partition's state, taken between steps, and a
    /// mark of the outputs sent so far (the outputs that state produced).
    fn copies(&mut self) -> Round {
        let core = self.shared.core();
        let copies = (core.owned.iter())
            .filter_map(|&s| core.checkpoint(s))
            .collect();
        Round {
            outputs: self.sink.mark(),
            copies,
            new_chains: std::mem::take(&mut self.assigned),
        }
    }

    /// Stores, for commit, the offsets a finished round covers, for the
    /// partitions still assigned.
    fn store_offsets(&mut self, mut covered: Vec<(StreamId, i64)>) -> Result<(), RunError> {
        let owned = &self.shared.core().owned;
        covered.retain(|(s, _)| owned.contains(s));
        self.tell(ToConsumer::Store(covered))
    }

    /// Graceful stop: fetching has stopped; checkpoint, commit, then leave the group.
    pub fn shutdown(mut self) -> Result<(), RunError> {
        if let Some(covered) = self.checkpointer.wait()? {
            self.store_offsets(covered)?;
        }
        let round = self.copies();
        self.checkpointer.begin(round)?;
        if let Some(covered) = self.checkpointer.wait()? {
            self.store_offsets(covered)?;
        }
        let (reply, committed) = sync_channel(1);
        self.tell(ToConsumer::Commit(reply))?;
        match committed.recv() {
            Ok(result) => result?,
            Err(_) => return Err(RunError::Setup("the consumer thread stopped".into())),
        }
        let core = self.shared.core();
        let c = core.pipeline.counts();
        tracing::info!(
            read = c.read,
            applied = c.applied,
            deadlettered = c.deadlettered(),
            "slaflow run stopped"
        );
        Ok(())
    }
}

/// Queues dead letters (key = `topic/partition/offset`) and incidents (key = incident id).
fn publish(sink: &KafkaSink, kafka: &KafkaConfig, out: &mut Outputs) -> Result<(), RunError> {
    for d in out.dead_letters.drain(..) {
        sink.send(&kafka.deadletter_topic, &d.key(), &d.to_json())?;
    }
    for i in out.incidents.drain(..) {
        sink.send(&kafka.incidents_topic, &i.incident_id, &i.to_json()?)?;
    }
    Ok(())
}

/// Writes checkpoint rounds on its own thread: waits until the outputs the
/// copied state produced are delivered, writes each checkpoint to disk, queues
/// it on the changelog and, once the changelog has acknowledged it, hands back
/// the offsets the round covers (to be stored for commit).
struct Checkpointer {
    rounds: SyncSender<Round>,
    covered: Receiver<Result<Vec<(StreamId, i64)>, RunError>>,
    in_flight: bool,
}

impl Checkpointer {
    fn start(
        store: CheckpointStore,
        sink: Arc<KafkaSink>,
        kafka: &KafkaConfig,
        shared: &Shared,
    ) -> Result<Self, RunError> {
        let (rounds, todo) = sync_channel::<Round>(1);
        let (done, covered) = sync_channel(1);
        // Checkpoints go through their own producer, so outputs never queue behind them.
        let writer = CheckpointWriter {
            store,
            sink,
            changelog: KafkaSink::new(kafka)?,
            kafka: kafka.clone(),
            metrics: shared.metrics.checkpoints.clone(),
        };
        std::thread::Builder::new()
            .name("slaflow-checkpoint".into())
            .spawn(move || {
                for round in todo {
                    if done.send(writer.round(&round)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Checkpointer {
            rounds,
            covered,
            in_flight: false,
        })
    }

    fn idle(&self) -> bool {
        !self.in_flight
    }

    fn begin(&mut self, round: Round) -> Result<(), RunError> {
        self.rounds
            .send(round)
            .map_err(|_| RunError::Setup("the checkpoint thread stopped".into()))?;
        self.in_flight = true;
        Ok(())
    }

    /// The finished round's covered offsets, if one finished.
    fn finished(&mut self) -> Result<Option<Vec<(StreamId, i64)>>, RunError> {
        match self.covered.try_recv() {
            Ok(result) => {
                self.in_flight = false;
                result.map(Some)
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => {
                Err(RunError::Setup("the checkpoint thread stopped".into()))
            }
        }
    }

    /// Waits for the round in flight, if any.
    fn wait(&mut self) -> Result<Option<Vec<(StreamId, i64)>>, RunError> {
        if !self.in_flight {
            return Ok(None);
        }
        self.in_flight = false;
        match self.covered.recv() {
            Ok(result) => result.map(Some),
            Err(_) => Err(RunError::Setup("the checkpoint thread stopped".into())),
        }
    }
}

/// One checkpoint round: the copies, and the mark of the outputs they depend on.
struct Round {
    outputs: usize,
    copies: Vec<Checkpoint>,
    /// Partitions whose checkpoints must start new chains (see [`LiveLoop::assigned`]).
    new_chains: BTreeSet<StreamId>,
}

/// What the checkpoint thread owns.
struct CheckpointWriter {
    store: CheckpointStore,
    sink: Arc<KafkaSink>,
    changelog: KafkaSink,
    kafka: KafkaConfig,
    metrics: CheckpointMetrics,
}

impl CheckpointWriter {
    /// One round; returns the offsets it covers once the changelog has it.
    fn round(&self, round: &Round) -> Result<Vec<(StreamId, i64)>, RunError> {
        let started = Instant::now();
        // Only the outputs sent before the copies: the loop keeps sending.
        self.sink.wait_for(round.outputs, Duration::from_secs(30))?;
        let mut covered = Vec::new();
        let (mut total_bytes, mut deltas) = (0, 0);
        for &s in &round.new_chains {
            self.store.start_over(s);
        }
        for cp in &round.copies {
            match self.store.write(cp) {
                Ok(written) => {
                    total_bytes += written.bytes.len();
                    deltas += usize::from(written.delta() > 0);
                    let (stream, next) = (cp.stream(), cp.next_offset());
                    let key = self.store.key();
                    changelog::publish(&self.changelog, &self.kafka, key, stream, &written)?;
                    covered.push((stream, next));
                }
                // Keep running: the offsets stay uncommitted, a restart resumes earlier.
                Err(e) => {
                    self.metrics.count("failed");
                    tracing::error!(error = %e, "checkpoint not written");
                }
            }
        }
        self.changelog.flush(Duration::from_secs(60))?;
        if !covered.is_empty() {
            let took_ms = started.elapsed().as_millis() as u64;
            // Which partitions, up to which offset: what a restart resumes from.
            let next_offsets: Vec<String> = (covered.iter())
                .map(|&(s, next)| format!("{}@{next}", stream_name(s)))
                .collect();
            tracing::debug!(
                partitions = covered.len(),
                next_offsets = %next_offsets.join(","),
                deltas,
                took_ms,
                bytes = total_bytes,
                "checkpoint written"
            );
        }
        self.metrics.count_n("written", covered.len());
        self.metrics.count_n("written_delta", deltas);
        self.metrics.observe(started.elapsed(), total_bytes);
        Ok(covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineSlice;
    use crate::eventtime::StreamState;
    use crate::model::Topic;

    fn checkpoint(next_offset: i64) -> Checkpoint {
        let stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let eventtime = StreamState {
            stream,
            max_ts: None,
            next_offset,
            dedup: Vec::new(),
            pending: Vec::new(),
        };
        Checkpoint {
            state: crate::pipeline::PartitionState {
                eventtime,
                engine: EngineSlice::default(),
                min_ts: None,
                max_ts: None,
            },
            incidents: Vec::new(),
        }
    }

    #[test]
    fn restore_prefers_the_checkpoint_covering_more() {
        let pick = |l: Option<i64>, r: Option<i64>| {
            let (cp, source) = choose_restore(l.map(checkpoint), r.map(checkpoint));
            (cp.map(|c| c.next_offset()), source)
        };
        assert_eq!(
            pick(Some(10), Some(12)),
            (Some(12), RestoreSource::Changelog)
        );
        assert_eq!(pick(Some(12), Some(10)), (Some(12), RestoreSource::Local));
        assert_eq!(pick(Some(10), Some(10)), (Some(10), RestoreSource::Local));
        assert_eq!(pick(None, Some(3)), (Some(3), RestoreSource::Changelog));
        assert_eq!(pick(Some(3), None), (Some(3), RestoreSource::Local));
        assert_eq!(pick(None, None), (None, RestoreSource::Rebuilt));
    }

    #[test]
    fn stop_wakes_a_waiting_thread() {
        let stop = Stop::default();
        assert!(!stop.wait(Duration::from_millis(1)));
        let waiter = {
            let stop = stop.clone();
            std::thread::spawn(move || stop.wait(Duration::from_secs(60)))
        };
        stop.request();
        assert!(waiter.join().expect("waiter"), "woken by the request");
        assert!(stop.requested());
    }
}
