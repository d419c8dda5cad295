//! State shared between a driver (`run`, `demo`) and the HTTP API: the pipeline,
//! the incident log, readiness and the intake of events posted over HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::engine::incidents::{Action, Incident};
use crate::event::Topic;
use crate::eventtime::StreamId;
use crate::ingest::{Intake, RecentIds};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::report::{ReportError, Tables};
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

    /// A snapshot of every state table.
    pub fn tables(&self) -> Result<Tables, ReportError> {
        Tables::from_engine(self.pipeline.engine(), &self.incidents)
    }

    /// A snapshot of the tables the SLA report reads.
    pub fn report_tables(&self) -> Result<Tables, ReportError> {
        Tables::for_sla_report(self.pipeline.engine())
    }
}

/// The core reports read (see [`Shared::view`]).
pub enum View<'a> {
    /// This instance's live state.
    Live(MutexGuard<'a, Core>),
    /// The global view from the changelog.
    Global(MutexGuard<'a, (Core, BTreeSet<StreamId>)>),
}

impl std::ops::Deref for View<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        match self {
            View::Live(core) => core,
            View::Global(g) => &g.0,
        }
    }
}

/// Event ids remembered to skip repeated HTTP deliveries of the same event.
const RECENT_IDS: usize = 100_000;

/// Everything the API reads.
pub struct Shared {
    /// The configuration.
    pub config: Arc<Config>,
    core: Mutex<Core>,
    /// Partitions the live core owns (`run`); empty elsewhere.
    owned: Mutex<BTreeSet<StreamId>>,
    /// Every partition's latest checkpoint from the changelog, restored into a
    /// read-only core, and the partitions it covers (`run` with several instances).
    global: Mutex<(Core, BTreeSet<StreamId>)>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    ready: AtomicBool,
    /// Where events posted over HTTP go (Kafka in `run`, the engine in `demo`).
    pub intake: Box<dyn Intake>,
    /// Recently published event ids (HTTP retries and repeats are not republished).
    pub recent: RecentIds,
}

impl Shared {
    /// Shared state for `config` around `core`.
    pub fn new(config: Arc<Config>, core: Core, intake: Box<dyn Intake>) -> Self {
        Shared {
            global: Mutex::new((Core::empty(&config), BTreeSet::new())),
            config,
            core: Mutex::new(core),
            owned: Mutex::new(BTreeSet::new()),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            intake,
            recent: RecentIds::new(RECENT_IDS),
        }
    }

    /// Locks the core. A panic while holding the lock cannot leave the engine half
    /// updated in a way readers care about, so a poisoned lock is still used.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What reports read: the live core, or, when other instances own partitions
    /// this one does not, the global view built from their checkpoints (as of
    /// their last checkpoint).
    pub fn view(&self) -> View<'_> {
        let owned = self.owned();
        let global = self.global.lock().unwrap_or_else(|p| p.into_inner());
        if !global.1.is_subset(&owned) {
            return View::Global(global);
        }
        drop(global);
        View::Live(self.core())
    }

    /// The partitions the live core owns.
    pub fn owned(&self) -> BTreeSet<StreamId> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the partitions the live core owns.
    pub fn set_owned(&self, owned: &BTreeSet<StreamId>) {
        *self.owned.lock().unwrap_or_else(|p| p.into_inner()) = owned.clone();
    }

    /// Replaces the global view (a core restored from every partition's checkpoint).
    pub fn set_global(&self, core: Core, covers: BTreeSet<StreamId>) {
        *self.global.lock().unwrap_or_else(|p| p.into_inner()) = (core, covers);
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
    use crate::engine::Outputs;
    use crate::event::RawRecord;

    const D: Millis = 86_400_000;
    const T0: Millis = 1_793_491_200_000; // 2026-11-01

    #[test]
    fn retention_forgets_old_intervals_hours_and_incidents_but_not_open_ones() {
        let text = "[engine]\nretention = \"1d\"\n[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n";
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
        );
        p.ingest(
            tkt,
            &RawRecord::numbered(&tickets, 0, 0),
            T0 + 3 * D,
            &mut out,
        );
        p.finish(None, &mut out);
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
