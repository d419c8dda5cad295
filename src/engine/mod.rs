//! The SLA engine core: pure, no I/O, no clocks. It takes released batches (rows in
//! event-time order) and watermark advances, and returns outputs.

pub mod availability;
pub mod burn;
pub mod calendar;
pub mod capacity;
pub mod changes;
pub mod contract;
pub mod dist;
pub mod episodes;
pub mod incidents;
pub mod requests;
pub mod runs;
pub mod services;
pub mod sources;
pub mod states;
pub mod tickets;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{BurnAlert, Config};
use crate::event::rows::{
    Corrupt, MonitoringEvent, MonitoringRows, TicketChange, TicketRow, TicketRows,
};
use crate::event::{DeadLetter, Reason, Topic};
use crate::eventtime::{ReleasedRows, StreamId};
use crate::time::Millis;
use availability::ServiceTimeline;
use capacity::{Series, SeriesMap};
use incidents::Incident;
use services::Services;
use tickets::{Refusal, Ticket, Tickets};

/// The engine state of one input partition: what a checkpoint holds and what
/// moves with the partition to another instance. State is partitioned by the
/// message key (service or ticket), so each entity belongs to one partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineSlice {
    /// Availability timelines of the partition's services.
    pub services: Vec<ServiceTimeline>,
    /// Capacity series of those services.
    pub capacity: Vec<Series>,
    /// Tickets of the partition.
    pub tickets: Vec<Ticket>,
}

impl EngineSlice {
    /// Checks restored state against `config` before anything of it is used:
    /// what no run under this config could have produced is refused.
    pub fn check(&self, config: &Config) -> Result<(), String> {
        let service = |id: &str| {
            config
                .service(id)
                .ok_or_else(|| format!("unknown service {id:?}"))
        };
        let alerts = config.burn_alerts.clone().into();
        for t in &self.services {
            t.check(service(t.id())?, config.engine.bucket.0, &alerts)?;
            let slos = requests::SloRules::of(config, t.id());
            t.requests()
                .check(&slos)
                .map_err(|e| format!("service {:?}: {e}", t.id()))?;
        }
        for s in &self.capacity {
            s.check(service(&s.service)?)?;
        }
        for t in &self.tickets {
            t.check(config)?;
        }
        Ok(())
    }
}

/// What one engine step produced.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Records rejected (any stage), in the order decided.
    pub dead_letters: Vec<DeadLetter>,
    /// Records applied to state.
    pub applied: u64,
    /// Incident actions, in the order they fired.
    pub incidents: Vec<Incident>,
}

/// The engine's state.
#[derive(Debug, Clone)]
pub struct Engine {
    tickets_topic: String,
    /// Ticket clocks (also behind the `unknown_ticket`/`conflict` checks).
    tickets: Tickets,
    /// Availability per configured service.
    services: Services,
    /// Capacity per metric series (service, resource, metric).
    capacity: SeriesMap,
    /// `[[burn_alerts]]`, shared by every timeline.
    burn_alerts: Arc<[BurnAlert]>,
    config: Arc<Config>,
}

impl Engine {
    /// An empty engine for `config`; `tickets_topic` names the ticket topic in dead letters.
    pub fn new(config: Arc<Config>, tickets_topic: &str) -> Self {
        let burn_alerts: Arc<[BurnAlert]> = config.burn_alerts.clone().into();
        let services =
            Services::new((config.services.iter()).map(|s| timeline_of(&config, s, &burn_alerts)));
        Engine {
            tickets_topic: tickets_topic.to_owned(),
            tickets: Tickets::new(&config),
            capacity: SeriesMap::default(),
            burn_alerts,
            config,
            services,
        }
    }

    /// Applies released monitoring rows (in `ts` order). Rows were admitted
    /// against the config, so every service is known.
    pub fn apply_monitoring(
        &mut self,
        released: &ReleasedRows,
        out: &mut Outputs,
    ) -> Result<(), Corrupt> {
        let chunks = (released.batches.iter())
            .map(MonitoringRows::new)
            .collect::<Result<Vec<_>, _>>()?;
        for &(b, r) in &released.rows {
            let row = chunks[b as usize].row(r as usize)?;
            let Some(timeline) = self.services.get_mut(row.service) else {
                return Err(Corrupt {
                    topic: Topic::Monitoring,
                    row: r as usize,
                    what: format!(
                        "service {:?} was admitted but is not configured",
                        row.service
                    ),
                });
            };
            timeline.partition = Some(row.partition);
            let (t, incidents) = (row.ts, &mut out.incidents);
            match row.event {
                MonitoringEvent::Probe { source, status } => {
                    timeline.probe(t, source, status, incidents)
                }
                MonitoringEvent::Maintenance { window, change_id } => {
                    timeline.maintenance(t, window, change_id, incidents)
                }
                MonitoringEvent::Exclusion {
                    id,
                    window: (start, end),
                    reason,
                    approved_by,
                } => {
                    let version = contract::Exclusion {
                        start,
                        end,
                        reason: reason.to_owned(),
                        approved_by: approved_by.to_owned(),
                        versions: 0,
                        ts: t,
                    };
                    timeline.exclusion(t, id, version, incidents)
                }
                MonitoringEvent::Metric {
                    resource,
                    metric,
                    value,
                    capacity,
                } => {
                    timeline.touch(t, incidents);
                    let key = (row.service, resource, metric);
                    self.sample(key, row.partition, t, (value, capacity), out);
                }
                MonitoringEvent::Change { change_id, outcome } => {
                    timeline.change(t, change_id, outcome)
                }
                MonitoringEvent::Counter {
                    source,
                    name,
                    value,
                } => timeline.counter(t, source, name, value, incidents),
            }
            out.applied += 1;
        }
        Ok(())
    }

    /// One metric sample (value, capacity) at `t` into its capacity series
    /// (created on first sight), keyed by (service, resource, metric).
    fn sample(
        &mut self,
        (service, resource, metric): (&str, &str, &str),
        partition: i32,
        t: Millis,
        (value, capacity): (f64, Option<f64>),
        out: &mut Outputs,
    ) {
        let series = match self.capacity.get_mut(service, resource, metric) {
            Some(s) => s,
            None => {
                let Some(cfg) = self.config.service(service) else {
                    return;
                };
                self.capacity.insert(Series::new(cfg, resource, metric))
            }
        };
        series.partition = partition;
        series.sample(t, value, capacity, &mut out.incidents);
    }

    /// Applies released ticket rows (in `ts` order); `unknown_ticket` and
    /// `conflict` are decided here, in event-time order.
    pub fn apply_tickets(
        &mut self,
        released: &ReleasedRows,
        out: &mut Outputs,
    ) -> Result<(), Corrupt> {
        let chunks = (released.batches.iter())
            .map(TicketRows::new)
            .collect::<Result<Vec<_>, _>>()?;
        for &(b, r) in &released.rows {
            let (batch, r) = (&released.batches[b as usize], r as usize);
            let TicketRow {
                ts: t,
                ticket: id,
                event,
            } = chunks[b as usize].row(r)?;
            let result = match event {
                TicketChange::Created(c) => self.tickets.create(t, id, c, &mut out.incidents),
                TicketChange::Change(ev) => self.tickets.apply(t, id, ev, &mut out.incidents),
            };
            let (reason, why) = match result {
                Ok(()) => {
                    out.applied += 1;
                    continue;
                }
                Err(Refusal::Conflict) => (
                    Reason::Conflict,
                    format!("ticket {id:?} was already created"),
                ),
                Err(Refusal::Unknown) => (
                    Reason::UnknownTicket,
                    format!("ticket {id:?} has no `created` at or before ts {t}"),
                ),
            };
            let dead = DeadLetter::from_row(batch, r, &self.tickets_topic, reason, why);
            out.dead_letters.push(dead);
        }
        Ok(())
    }

    /// Fires every deadline strictly before `watermark` (everything before it is final;
    /// events at the watermark itself may still arrive).
    pub fn advance(&mut self, watermark: Millis, out: &mut Outputs) {
        let last_final = watermark.saturating_sub(1);
        for s in self.services.values_mut() {
            s.advance(last_final, &mut out.incidents);
        }
        for s in self.capacity.values_mut() {
            s.advance(last_final, &mut out.incidents);
        }
        self.tickets.advance(watermark, &mut out.incidents);
    }

    /// Copies the state owned by one input partition (for a checkpoint).
    pub fn export(&self, stream: StreamId) -> EngineSlice {
        let p = stream.partition;
        match stream.topic {
            Topic::Monitoring => EngineSlice {
                services: self
                    .services
                    .values()
                    .filter(|s| s.partition == Some(p))
                    .cloned()
                    .collect(),
                capacity: self
                    .capacity
                    .values()
                    .filter(|s| s.partition == p)
                    .cloned()
                    .collect(),
                tickets: Vec::new(),
            },
            Topic::Tickets => EngineSlice {
                tickets: self.tickets.export(p),
                ..EngineSlice::default()
            },
        }
    }

    /// Takes in restored state. Entities of services no longer configured are
    /// dropped (the checkpoint was written under the same engine config, so this
    /// only guards against misuse).
    pub fn import(&mut self, slice: EngineSlice) {
        for s in slice.services {
            if let Some(t) = self.services.get_mut(s.id()) {
                t.restore(s);
            }
        }
        for s in slice.capacity {
            if self.config.service(&s.service).is_some() {
                self.capacity.insert(s);
            }
        }
        self.tickets.import(slice.tickets);
    }

    /// Forgets what reports read before `horizon` (`engine.retention`): closed
    /// state intervals, capacity hours, and tickets created before it that are
    /// done. Live drivers call it; a replay keeps everything its input holds.
    pub fn prune(&mut self, horizon: Millis) {
        for t in self.services.values_mut() {
            t.prune(horizon);
        }
        for s in self.capacity.values_mut() {
            s.prune(horizon);
        }
        self.tickets.prune(horizon);
    }

    /// Forgets the state owned by one input partition (it moved to another instance).
    pub fn forget(&mut self, stream: StreamId) {
        let p = stream.partition;
        match stream.topic {
            Topic::Monitoring => {
                for cfg in &self.config.services {
                    if let Some(t) = self.services.get_mut(&cfg.id)
                        && t.partition == Some(p)
                    {
                        *t = timeline_of(&self.config, cfg, &self.burn_alerts);
                    }
                }
                self.capacity.retain(|s| s.partition != p);
            }
            Topic::Tickets => self.tickets.forget(p),
        }
    }

    /// The configuration the engine runs under.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Capacity series by (service, resource, metric).
    pub fn capacity(&self) -> &SeriesMap {
        &self.capacity
    }

    /// Ticket state.
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Availability timelines by service id.
    pub fn services(&self) -> &Services {
        &self.services
    }
}

/// A fresh timeline for a configured service, with its hours and SLOs.
fn timeline_of(
    config: &Config,
    s: &crate::config::ServiceConfig,
    alerts: &Arc<[BurnAlert]>,
) -> ServiceTimeline {
    let (bucket, hours) = (config.engine.bucket.0, service_hours(config, s));
    let slos = requests::SloRules::of(config, &s.id);
    let change_window = config.engine.change_window.0;
    (ServiceTimeline::new(s, hours, bucket, alerts).with_slos(slos))
        .with_change_window(change_window)
}

/// A service's hours calendar (contract section 13). Validation refuses an
/// unknown calendar id, so the `24x7` fallback is never reached from a loaded config.
pub fn service_hours(config: &Config, s: &crate::config::ServiceConfig) -> Arc<calendar::Calendar> {
    let id = &s.service_hours;
    Arc::new(calendar::Calendar::named(config, id).unwrap_or(calendar::Calendar::Always))
}
