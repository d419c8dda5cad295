//! The SLA engine core: pure, no I/O, no clocks. It takes released batches (rows in
//! event-time order) and watermark advances, and returns outputs.

pub mod availability;
pub mod burn;
pub mod calendar;
pub mod capacity;
pub mod changes;
pub mod contract;
pub mod episodes;
pub mod incidents;
pub mod requests;
pub mod runs;
pub mod states;
pub mod tickets;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type};
use serde::{Deserialize, Serialize};

use crate::config::{BurnAlert, Config};
use crate::event::schema::{col, mon, tkt};
use crate::event::{DeadLetter, Reason, Topic};
use crate::eventtime::{ReleasedRows, StreamId};
use crate::model::{
    ChangeOutcome, MonitoringKind, Priority, ProbeStatus, TicketEventType, TicketKind,
};
use crate::time::Millis;
use availability::ServiceTimeline;
use capacity::Series;
use incidents::Incident;
use tickets::{NewTicket, Refusal, Ticket, TicketEvent, Tickets};

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
    services: BTreeMap<String, ServiceTimeline>,
    /// Capacity per metric series (service, resource, metric).
    capacity: BTreeMap<(String, String, String), Series>,
    /// `[[burn_alerts]]`, shared by every timeline.
    burn_alerts: Arc<[BurnAlert]>,
    config: Arc<Config>,
}

impl Engine {
    /// An empty engine for `config`; `tickets_topic` names the ticket topic in dead letters.
    pub fn new(config: Arc<Config>, tickets_topic: &str) -> Self {
        let burn_alerts: Arc<[BurnAlert]> = config.burn_alerts.clone().into();
        let services = (config.services.iter())
            .map(|s| {
                let timeline = timeline_of(&config, s, &burn_alerts);
                (s.id.get_ref().clone(), timeline)
            })
            .collect();
        Engine {
            tickets_topic: tickets_topic.to_owned(),
            tickets: Tickets::new(&config),
            capacity: BTreeMap::new(),
            burn_alerts,
            config,
            services,
        }
    }

    /// Applies released monitoring rows (in `ts` order). Rows were admitted
    /// against the config, so every service is known.
    pub fn apply_monitoring(&mut self, released: &ReleasedRows, out: &mut Outputs) {
        let chunks: Vec<MonitoringRows> =
            released.batches.iter().map(MonitoringRows::new).collect();
        for &(b, r) in &released.rows {
            let (rows, r) = (&chunks[b as usize], r as usize);
            let (service, t) = (rows.service.value(r), rows.ts.value(r));
            let Some(timeline) = self.services.get_mut(service) else {
                continue;
            };
            timeline.partition = Some(rows.partition.value(r));
            let Some(kind) = MonitoringKind::parse(rows.kind.value(r)) else {
                debug_assert!(false, "decoding admits only known kinds");
                continue;
            };
            match kind {
                MonitoringKind::Probe => {
                    let Some(status) = ProbeStatus::parse(rows.status.value(r)) else {
                        debug_assert!(false, "decoding admits only known probe statuses");
                        continue;
                    };
                    timeline.probe(t, rows.source.value(r), status, &mut out.incidents)
                }
                MonitoringKind::Maintenance => {
                    let window = (rows.start.value(r), rows.end.value(r));
                    let change = rows.change_id.is_valid(r).then(|| rows.change_id.value(r));
                    timeline.maintenance(t, window, change, &mut out.incidents)
                }
                MonitoringKind::Exclusion => {
                    let version = contract::Exclusion {
                        start: rows.start.value(r),
                        end: rows.end.value(r),
                        reason: rows.reason.value(r).to_owned(),
                        approved_by: rows.approved_by.value(r).to_owned(),
                        versions: 0,
                        ts: t,
                    };
                    let id = rows.exclusion_id.value(r);
                    timeline.exclusion(t, id, version, &mut out.incidents)
                }
                MonitoringKind::Metric => {
                    timeline.touch(t, &mut out.incidents);
                    self.sample(rows, r, out);
                }
                MonitoringKind::Change => {
                    let Some(outcome) = ChangeOutcome::parse(rows.status.value(r)) else {
                        debug_assert!(false, "decoding admits only known outcomes");
                        continue;
                    };
                    timeline.change(t, rows.change_id.value(r), outcome);
                }
                MonitoringKind::Counter => {
                    let (source, name) = (rows.source.value(r), rows.metric.value(r));
                    let value = rows.value.value(r);
                    timeline.counter(t, source, name, value, &mut out.incidents)
                }
            }
            out.applied += 1;
        }
    }

    /// One metric row into its capacity series (created on first sight).
    fn sample(&mut self, rows: &MonitoringRows, r: usize, out: &mut Outputs) {
        let key = (
            rows.service.value(r).to_owned(),
            rows.resource.value(r).to_owned(),
            rows.metric.value(r).to_owned(),
        );
        let series = match self.capacity.get_mut(&key) {
            Some(s) => s,
            None => match self.config.service(&key.0) {
                Some(cfg) => {
                    let series = Series::new(cfg, &key.1, &key.2);
                    self.capacity.entry(key).or_insert(series)
                }
                None => return,
            },
        };
        series.partition = rows.partition.value(r);
        let cap = rows.capacity.is_valid(r).then(|| rows.capacity.value(r));
        series.sample(
            rows.ts.value(r),
            rows.value.value(r),
            cap,
            &mut out.incidents,
        );
    }

    /// Applies released ticket rows (in `ts` order); `unknown_ticket` and
    /// `conflict` are decided here, in event-time order.
    pub fn apply_tickets(&mut self, released: &ReleasedRows, out: &mut Outputs) {
        let chunks: Vec<TicketRows> = released.batches.iter().map(TicketRows::new).collect();
        for &(b, r) in &released.rows {
            let (rows, r, batch) = (
                &chunks[b as usize],
                r as usize,
                &released.batches[b as usize],
            );
            let (id, t) = (rows.ticket.value(r), rows.ts.value(r));
            let Some(row) = rows.event(r) else {
                debug_assert!(false, "decoding admits only complete ticket events");
                continue;
            };
            let result = match row {
                TicketRow::Created(c) => self.tickets.create(t, id, c, &mut out.incidents),
                TicketRow::Change(ev) => self.tickets.apply(t, id, ev, &mut out.incidents),
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
                self.capacity
                    .insert((s.service.clone(), s.resource.clone(), s.metric.clone()), s);
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
                    if let Some(t) = self.services.get_mut(cfg.id.get_ref())
                        && t.partition == Some(p)
                    {
                        *t = timeline_of(&self.config, cfg, &self.burn_alerts);
                    }
                }
                self.capacity.retain(|_, s| s.partition != p);
            }
            Topic::Tickets => self.tickets.forget(p),
        }
    }

    /// The configuration the engine runs under.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Capacity series by (service, resource, metric).
    pub fn capacity(&self) -> &BTreeMap<(String, String, String), Series> {
        &self.capacity
    }

    /// Ticket state.
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Availability timelines by service id.
    pub fn services(&self) -> &BTreeMap<String, ServiceTimeline> {
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
    let slos = requests::SloRules::of(config, s.id.get_ref());
    let change_window = config.engine.change_window.0;
    (ServiceTimeline::new(s, hours, bucket, alerts).with_slos(slos))
        .with_change_window(change_window)
}

/// A service's hours calendar (contract section 13). Validation refuses an
/// unknown calendar id, so the `24x7` fallback is never reached from a loaded config.
pub fn service_hours(config: &Config, s: &crate::config::ServiceConfig) -> Arc<calendar::Calendar> {
    let id = s.service_hours.get_ref();
    Arc::new(calendar::Calendar::named(config, id).unwrap_or(calendar::Calendar::Always))
}

/// The columns of a decoded monitoring batch.
struct MonitoringRows<'a> {
    ts: &'a PrimitiveArray<Int64Type>,
    service: &'a StringArray,
    kind: &'a StringArray,
    source: &'a StringArray,
    status: &'a StringArray,
    start: &'a PrimitiveArray<Int64Type>,
    end: &'a PrimitiveArray<Int64Type>,
    change_id: &'a StringArray,
    exclusion_id: &'a StringArray,
    reason: &'a StringArray,
    approved_by: &'a StringArray,
    resource: &'a StringArray,
    metric: &'a StringArray,
    value: &'a PrimitiveArray<Float64Type>,
    capacity: &'a PrimitiveArray<Float64Type>,
    partition: &'a PrimitiveArray<Int32Type>,
}

impl<'a> MonitoringRows<'a> {
    fn new(batch: &'a RecordBatch) -> Self {
        MonitoringRows {
            ts: batch.column(col::TS).as_primitive(),
            service: batch.column(col::KEY).as_string(),
            kind: batch.column(mon::KIND).as_string(),
            source: batch.column(mon::SOURCE).as_string(),
            status: batch.column(mon::STATUS).as_string(),
            start: batch.column(mon::START).as_primitive(),
            end: batch.column(mon::END).as_primitive(),
            change_id: batch.column(mon::CHANGE_ID).as_string(),
            exclusion_id: batch.column(mon::EXCLUSION_ID).as_string(),
            reason: batch.column(mon::REASON).as_string(),
            approved_by: batch.column(mon::APPROVED_BY).as_string(),
            resource: batch.column(mon::RESOURCE).as_string(),
            metric: batch.column(mon::METRIC).as_string(),
            value: batch.column(mon::VALUE).as_primitive(),
            capacity: batch.column(mon::CAPACITY).as_primitive(),
            partition: batch.column(col::PARTITION).as_primitive(),
        }
    }
}

/// A decoded ticket row, typed.
enum TicketRow<'a> {
    Created(NewTicket<'a>),
    Change(TicketEvent<'a>),
}

/// The columns of a decoded tickets batch.
struct TicketRows<'a> {
    ts: &'a PrimitiveArray<Int64Type>,
    ticket: &'a StringArray,
    ty: &'a StringArray,
    customer: &'a StringArray,
    service: &'a StringArray,
    priority: &'a StringArray,
    kind: &'a StringArray,
    status: &'a StringArray,
    partition: &'a PrimitiveArray<Int32Type>,
}

impl<'a> TicketRows<'a> {
    fn new(batch: &'a RecordBatch) -> Self {
        TicketRows {
            ts: batch.column(col::TS).as_primitive(),
            ticket: batch.column(col::KEY).as_string(),
            ty: batch.column(tkt::TYPE).as_string(),
            customer: batch.column(tkt::CUSTOMER).as_string(),
            service: batch.column(tkt::SERVICE).as_string(),
            priority: batch.column(tkt::PRIORITY).as_string(),
            kind: batch.column(tkt::KIND).as_string(),
            status: batch.column(tkt::STATUS).as_string(),
            partition: batch.column(col::PARTITION).as_primitive(),
        }
    }

    /// The row as a typed event; `None` only if decoding let a bad row through.
    fn event(&self, r: usize) -> Option<TicketRow<'a>> {
        let priority = || Priority::parse(self.priority.value(r));
        Some(match TicketEventType::parse(self.ty.value(r))? {
            TicketEventType::Created => TicketRow::Created(NewTicket {
                customer: self.customer.value(r),
                service: self.service.is_valid(r).then(|| self.service.value(r)),
                kind: TicketKind::parse(self.kind.value(r))?,
                priority: priority()?,
                partition: self.partition.value(r),
            }),
            TicketEventType::Responded => TicketRow::Change(TicketEvent::Responded),
            TicketEventType::Priority => TicketRow::Change(TicketEvent::Priority(priority()?)),
            TicketEventType::Status => TicketRow::Change(TicketEvent::Status(self.status.value(r))),
        })
    }
}
