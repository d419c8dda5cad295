//! Prometheus metrics (text exposition format via `prometheus-client`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::BurnAlert;
use crate::engine::Engine;
use crate::engine::incidents::{Action, Incident};
use crate::engine::requests::Requests;
use crate::model::Rule;
use strum::VariantArray;

use crate::eventtime::StreamId;
use crate::pipeline::{Counts, Pipeline};
use crate::sink::delivery::DeliveryMetrics;
use crate::time::Millis;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IncidentLabel {
    rule: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabel {
    endpoint: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SloLabel {
    customer: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BurnLabel {
    customer: String,
    service: String,
    window: String,
}

/// Changes of a service by outcome (contract section 15).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    customer: String,
    service: String,
    outcome: String,
}

/// A request SLO's gauge (contract section 14).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestSloLabel {
    customer: String,
    slo: String,
    window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeriodLabel {
    customer: String,
    service: String,
    period: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// SLO gauges (contract section 11), set from the engine's state when scraped.
#[derive(Default)]
struct SloMetrics {
    burn_rate: Family<BurnLabel, FloatGauge>,
    budget_remaining: Family<SloLabel, FloatGauge>,
    availability: Family<PeriodLabel, FloatGauge>,
    objective: Family<SloLabel, FloatGauge>,
    credit: Family<SloLabel, FloatGauge>,
    request_ratio: Family<RequestSloLabel, FloatGauge>,
    request_burn_rate: Family<RequestSloLabel, FloatGauge>,
    changes: Family<ChangeLabel, Gauge>,
    changes_failed: Family<SloLabel, Gauge>,
    /// Held while the gauges are rebuilt and rendered, so a concurrent scrape
    /// never sees them half set.
    scrape: Mutex<()>,
}

impl SloMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "slo_burn_rate",
            "Error-budget burn rate over each configured burn-alert window, at the latest bucket close",
            self.burn_rate.clone(),
        );
        registry.register(
            "slo_error_budget_remaining_ratio",
            "Share of the current UTC month's downtime budget left (below zero once availability_breach fired)",
            self.budget_remaining.clone(),
        );
        registry.register(
            "slo_objective_ratio",
            "The service's availability target as a ratio (availability_target / 100)",
            self.objective.clone(),
        );
        registry.register(
            "sla_credit_pct",
            "Service credit (percent, contract section 13) the current UTC month's contractual availability so far would give, for customers with [[credits]]",
            self.credit.clone(),
        );
        registry.register(
            "slo_ratio",
            "Request SLO (contract section 14): good events / all events over the SLO's own window, ending at the latest bucket close",
            self.request_ratio.clone(),
        );
        registry.register(
            "changes",
            "Changes deployed in the current UTC month of the service (contract section 15), by last outcome",
            self.changes.clone(),
        );
        registry.register(
            "changes_failed",
            "Changes deployed in the current UTC month that failed: an outcome other than success, or an outage attributed to them",
            self.changes_failed.clone(),
        );
        registry.register(
            "request_slo_burn_rate",
            "Request SLO error-budget burn rate over each configured burn-alert window, at the latest bucket close",
            self.request_burn_rate.clone(),
        );
        registry.register(
            "slo_availability_ratio",
            "Availability (measured time not down / measured time) of the current UTC month so far",
            self.availability.clone(),
        );
    }

    /// Sets the gauges for every service `engine` holds state of (its owned
    /// partitions), with burn rates over `windows` (label, ms).
    fn set(&self, engine: &Engine, windows: &[(String, Millis)]) {
        self.burn_rate.clear();
        self.budget_remaining.clear();
        self.availability.clear();
        self.objective.clear();
        self.credit.clear();
        self.set_requests(engine, windows);
        self.set_changes(engine);
        let lengths: Vec<Millis> = windows.iter().map(|w| w.1).collect();
        for t in engine.services().values().filter(|t| t.cursor().is_some()) {
            let (customer, service) = (t.customer().to_owned(), t.id().to_owned());
            for (rate, (window, _)) in t.burn_rates(&lengths).into_iter().zip(windows) {
                if let Some(rate) = rate {
                    let label = BurnLabel {
                        customer: customer.clone(),
                        service: service.clone(),
                        window: window.clone(),
                    };
                    self.burn_rate.get_or_create(&label).set(rate);
                }
            }
            let label = SloLabel {
                customer: customer.clone(),
                service: service.clone(),
            };
            self.objective.get_or_create(&label).set(t.objective());
            if let Some(r) = t.budget_remaining_ratio() {
                self.budget_remaining.get_or_create(&label).set(r);
            }
            let credits = engine.config().credits_for(&customer);
            if let (Some(c), Some(a)) = (credits, t.month_availability_pct()) {
                self.credit.get_or_create(&label).set(c.credit_for(a));
            }
            if let Some(a) = t.month_availability() {
                let period = "month".to_owned();
                let label = PeriodLabel {
                    customer,
                    service,
                    period,
                };
                self.availability.get_or_create(&label).set(a);
            }
        }
    }
}

impl SloMetrics {
    /// The month's changes of each service `engine` holds (section 15).
    fn set_changes(&self, engine: &Engine) {
        self.changes.clear();
        self.changes_failed.clear();
        for t in engine.services().values() {
            let Some(cursor) = t.cursor() else { continue };
            let month = crate::time::month_of(cursor).0;
            let (customer, service) = (t.customer().to_owned(), t.id().to_owned());
            let mut failed = 0;
            for c in t.changes().iter().filter(|c| c.ts >= month) {
                let label = ChangeLabel {
                    customer: customer.clone(),
                    service: service.clone(),
                    outcome: c.outcome.as_str().to_owned(),
                };
                self.changes.get_or_create(&label).inc();
                failed += i64::from(c.failed());
            }
            self.changes_failed
                .get_or_create(&SloLabel { customer, service })
                .set(failed);
        }
    }

    /// The request SLO gauges of the services `engine` holds, at each
    /// service's latest bucket close evaluated.
    fn set_requests(&self, engine: &Engine, windows: &[(String, Millis)]) {
        self.request_ratio.clear();
        self.request_burn_rate.clear();
        let lengths: Vec<Millis> = windows.iter().map(|w| w.1).collect();
        for slo in &engine.config().slos {
            let Some(t) = engine.services().get(slo.service()) else {
                continue;
            };
            let Some(close) = t.requests().evaluated() else {
                continue;
            };
            let label = |window: &str| RequestSloLabel {
                customer: t.customer().to_owned(),
                slo: slo.id().to_owned(),
                window: window.to_owned(),
            };
            let (a, b) = Requests::window_of(slo, close);
            if let Some(r) = t.slo_counts(slo, a, b).ratio_pct() {
                let gauge = self.request_ratio.get_or_create(&label(slo.window.text()));
                gauge.set(r / 100.0);
            }
            let rates = t.slo_burn_rates(slo, close, &lengths);
            for (rate, (window, _)) in rates.into_iter().zip(windows) {
                if let Some(rate) = rate {
                    self.request_burn_rate
                        .get_or_create(&label(window))
                        .set(rate);
                }
            }
        }
    }
}

/// Checkpoint metrics: events by result, and how long a checkpoint round takes.
#[derive(Clone)]
pub struct CheckpointMetrics {
    events: Family<ResultLabel, Counter>,
    duration: Histogram,
    bytes: Gauge,
}

impl Default for CheckpointMetrics {
    fn default() -> Self {
        CheckpointMetrics {
            events: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            bytes: Gauge::default(),
        }
    }
}

impl CheckpointMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "checkpoints",
            "Partition checkpoints by result (written, of them written_delta, failed, restored_local, restored_changelog, rebuilt, corrupt)",
            self.events.clone(),
        );
        registry.register(
            "checkpoint_seconds",
            "Duration of one checkpoint round (snapshot, flush outputs, write to disk, queue on the changelog)",
            self.duration.clone(),
        );
        registry.register(
            "checkpoint_bytes",
            "Size of the last checkpoint round, all partitions (written to disk and to the changelog)",
            self.bytes.clone(),
        );
    }

    /// Counts one event with this result.
    pub fn count(&self, result: &str) {
        self.count_n(result, 1);
    }

    /// Counts `n` events with this result.
    pub fn count_n(&self, result: &str, n: usize) {
        self.events
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc_by(n as u64);
    }

    /// Records the duration and total size of a checkpoint round.
    pub fn observe(&self, d: Duration, bytes: usize) {
        self.duration.observe(d.as_secs_f64());
        self.bytes.set(bytes as i64);
    }
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    read: Counter,
    applied: Counter,
    deadlettered: Family<ReasonLabel, Counter>,
    watermark_lag: Family<StreamLabel, FloatGauge>,
    consumer_lag: Family<StreamLabel, Gauge>,
    incidents: Family<IncidentLabel, Counter>,
    open_incidents: Gauge,
    open_by_rule: Family<RuleLabel, Gauge>,
    open_tickets: Gauge,
    services: Family<StateLabel, Gauge>,
    latency: Histogram,
    watermark: FloatGauge,
    buffered: Gauge,
    dedup_ids: Gauge,
    ingest: Family<IngestLabel, Counter>,
    induced_outages: Family<SloLabel, Counter>,
    /// Incident delivery (PagerDuty, webhooks).
    pub delivery: DeliveryMetrics,
    /// Checkpoints and restores.
    pub checkpoints: CheckpointMetrics,
    slo: SloMetrics,
    /// Counts at the previous observation, to turn totals into counter increments.
    last: Mutex<Counts>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn stream_label(s: StreamId) -> StreamLabel {
    StreamLabel {
        topic: s.topic.as_str().to_owned(),
        partition: s.partition.to_string(),
    }
}

impl Metrics {
    /// Every metric, as `slaflow run` exports them.
    pub fn new() -> Self {
        Self::with(true)
    }

    /// The metrics of a process without a Kafka consumer, checkpoints or
    /// delivery targets (`slaflow demo`): it does not export series it never sets.
    pub fn embedded() -> Self {
        Self::with(false)
    }

    fn with(live: bool) -> Self {
        let mut m = Metrics {
            read: Counter::default(),
            applied: Counter::default(),
            deadlettered: Family::default(),
            watermark_lag: Family::default(),
            consumer_lag: Family::default(),
            incidents: Family::default(),
            open_incidents: Gauge::default(),
            open_by_rule: Family::default(),
            open_tickets: Gauge::default(),
            services: Family::default(),
            latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            watermark: Gauge::default(),
            buffered: Gauge::default(),
            dedup_ids: Gauge::default(),
            ingest: Family::default(),
            induced_outages: Family::default(),
            delivery: DeliveryMetrics::default(),
            checkpoints: CheckpointMetrics::default(),
            slo: SloMetrics::default(),
            last: Mutex::new(Counts::default()),
            registry: Registry::default(),
        };
        m.registry = m.register_all(live);
        m
    }

    /// A registry (prefix `slaflow`) exposing every metric; without the
    /// consumer, checkpoint and delivery ones unless `live`.
    fn register_all(&self, live: bool) -> Registry {
        let m = self;
        let mut registry = Registry::with_prefix("slaflow");
        m.register_records(&mut registry);
        m.register_incidents(&mut registry);
        registry.register("services", "Services by current state", m.services.clone());
        registry.register(
            "processing_latency_seconds",
            "Duration of one processing step",
            m.latency.clone(),
        );
        registry.register(
            "ingest_items",
            "Items posted to /v1/ingest/*, by endpoint and result (accepted, duplicate, ignored, rejected)",
            m.ingest.clone(),
        );
        m.slo.register(&mut registry);
        if live {
            registry.register(
                "consumer_lag_records",
                "Records behind the partition end",
                m.consumer_lag.clone(),
            );
            m.delivery.register(&mut registry);
            m.checkpoints.register(&mut registry);
        }
        registry
    }

    /// Records read, applied, dead-lettered and held; watermarks.
    fn register_records(&self, registry: &mut Registry) {
        let m = self;
        registry.register("records_read", "Input records read", m.read.clone());
        registry.register(
            "records_applied",
            "Input records applied to the engine",
            m.applied.clone(),
        );
        registry.register(
            "records_deadlettered",
            "Input records dead-lettered, by reason",
            m.deadlettered.clone(),
        );
        registry.register(
            "watermark_lag_seconds",
            "Event-time now minus each stream's watermark",
            m.watermark_lag.clone(),
        );
        registry.register(
            "watermark_seconds",
            "Global event-time watermark (Unix seconds)",
            m.watermark.clone(),
        );
        registry.register(
            "records_buffered",
            "Records held until the watermark passes them (grows with input rate × allowed lateness)",
            m.buffered.clone(),
        );
        registry.register(
            "dedup_ids",
            "Event ids remembered for deduplication (grows with input rate × engine.dedup_horizon)",
            m.dedup_ids.clone(),
        );
    }

    /// Incident actions, open incidents and tickets, change-induced outages.
    fn register_incidents(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "incidents",
            "Incident actions, by rule and action",
            m.incidents.clone(),
        );
        registry.register(
            "open_incidents",
            "Incidents triggered and not resolved",
            m.open_incidents.clone(),
        );
        registry.register(
            "open_incidents_by_rule",
            "Incidents triggered and not resolved, by rule",
            m.open_by_rule.clone(),
        );
        registry.register(
            "open_tickets",
            "Tickets whose resolution clock has not stopped",
            m.open_tickets.clone(),
        );
        registry.register(
            "change_induced_outages",
            "Outages whose trigger names the change that induced them (contract section 15)",
            m.induced_outages.clone(),
        );
    }

    /// Updates after a processing step that took `step` and fired `fired`;
    /// `open` incidents (by id) are open and the driver's clock reads `now`.
    pub fn observe(
        &self,
        pipeline: &Pipeline,
        open: &BTreeMap<String, Incident>,
        now: Millis,
        step: Duration,
        fired: &[Incident],
    ) {
        self.latency.observe(step.as_secs_f64());
        self.observe_counts(pipeline.counts());
        self.observe_fired(fired);
        self.observe_open(open);
        self.observe_eventtime(pipeline.eventtime(), now);
        self.observe_engine(pipeline.engine());
    }

    /// The record counters, by what the counts grew since the last step.
    fn observe_counts(&self, c: &crate::pipeline::Counts) {
        if let Ok(mut last) = self.last.lock() {
            self.read.inc_by(c.read.saturating_sub(last.read));
            self.applied.inc_by(c.applied.saturating_sub(last.applied));
            for (reason, n) in &c.deadletter {
                let before = last.deadletter.get(reason).copied().unwrap_or(0);
                self.deadlettered
                    .get_or_create(&ReasonLabel {
                        reason: (*reason).to_owned(),
                    })
                    .inc_by(n.saturating_sub(before));
            }
            *last = c.clone();
        }
    }

    /// The incident action counters, and outages induced by changes.
    fn observe_fired(&self, fired: &[Incident]) {
        for i in fired {
            self.incidents
                .get_or_create(&IncidentLabel {
                    rule: i.rule.as_str().to_owned(),
                    action: i.action.as_str().to_owned(),
                })
                .inc();
            let induced = i.rule == Rule::Outage && i.action == Action::Trigger;
            if let (true, Some(service)) =
                (induced && i.details.get("change_id").is_some(), &i.service)
            {
                let label = SloLabel {
                    customer: i.customer.clone(),
                    service: service.clone(),
                };
                self.induced_outages.get_or_create(&label).inc();
            }
        }
    }

    /// Open incidents, in all and by rule.
    fn observe_open(&self, open: &BTreeMap<String, Incident>) {
        self.open_incidents.set(open.len() as i64);
        let mut by_rule: BTreeMap<Rule, i64> = Rule::VARIANTS.iter().map(|&r| (r, 0)).collect();
        for i in open.values() {
            *by_rule.entry(i.rule).or_default() += 1;
        }
        for (rule, n) in by_rule {
            let label = RuleLabel {
                rule: rule.as_str().to_owned(),
            };
            self.open_by_rule.get_or_create(&label).set(n);
        }
    }

    /// Buffered records, remembered ids and watermarks at the driver's `now`.
    fn observe_eventtime(&self, et: &crate::eventtime::EventTime, now: Millis) {
        self.buffered.set(et.buffered() as i64);
        self.dedup_ids.set(et.dedup_ids() as i64);
        let wm = et.watermark();
        if wm > i64::MIN {
            self.watermark.set(wm as f64 / 1000.0);
        }
        for s in et.streams() {
            if let Some(w) = et.stream_watermark(s) {
                self.watermark_lag
                    .get_or_create(&stream_label(s))
                    .set((now - w) as f64 / 1000.0);
            }
        }
    }

    /// Open tickets and services by state.
    fn observe_engine(&self, engine: &crate::engine::Engine) {
        self.open_tickets.set(engine.tickets().open_count() as i64);
        let mut by_state = BTreeMap::new();
        for t in engine.services().values() {
            *by_state.entry(t.state().as_str()).or_insert(0i64) += 1;
        }
        for s in crate::engine::availability::State::ALL {
            self.services
                .get_or_create(&StateLabel {
                    state: s.as_str().to_owned(),
                })
                .set(by_state.get(s.as_str()).copied().unwrap_or(0));
        }
    }

    /// Records the consumer lag of a partition (live mode).
    pub fn set_consumer_lag(&self, stream: StreamId, lag: i64) {
        self.consumer_lag
            .get_or_create(&stream_label(stream))
            .set(lag);
    }

    /// Counts `n` items of an ingest request with this result.
    pub fn count_ingest(&self, endpoint: &str, result: &str, n: usize) {
        if n > 0 {
            self.ingest
                .get_or_create(&IngestLabel {
                    endpoint: endpoint.to_owned(),
                    result: result.to_owned(),
                })
                .inc_by(n as u64);
        }
    }

    /// The text exposition, with the SLO gauges set from `engine` (burn rates
    /// over each distinct window of `alerts`).
    pub fn render(&self, engine: &Engine, alerts: &[BurnAlert]) -> String {
        let mut windows: Vec<(String, Millis)> = Vec::new();
        for d in alerts.iter().flat_map(|a| [&a.long, &a.short]) {
            if !windows.iter().any(|w| w.1 == d.ms) {
                windows.push((d.text.clone(), d.ms));
            }
        }
        let _scrape = self.slo.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.slo.set(engine, &windows);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
