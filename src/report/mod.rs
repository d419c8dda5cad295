//! Reports (contract sections 9–10): the engine's state as Arrow tables,
//! queried with DataFusion SQL from `queries/*.sql`.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde::Serialize;

use crate::config::{Config, NoData, ServiceConfig};
use crate::engine::Engine;
use crate::engine::availability::State;
use crate::engine::calendar::Calendar;
use crate::engine::capacity::Forecast;
use crate::engine::contract::{ContractDurations, contract_of, merge_windows, overlap_sums};
use crate::engine::incidents::{Action, Incident};
use crate::engine::tickets::ClockKind;
use crate::model::{Priority, Rule};
use crate::time::{Millis, format_ms, ms_to_s};

/// The availability query, compiled into the binary.
pub const AVAILABILITY_SQL: &str = include_str!("../../queries/availability.sql");
/// The exclusions in force over the period.
pub const EXCLUSIONS_SQL: &str = include_str!("../../queries/exclusions.sql");
/// The ticket SLA query.
pub const TICKETS_SQL: &str = include_str!("../../queries/tickets.sql");

pub mod cache;
pub mod changes;
pub mod html;
pub mod page;
pub mod slo;
pub mod tables;
pub use cache::ReportCache;
pub use page::{CustomerPage, customer_page};
pub use tables::Tables;

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Query planning or execution.
    #[error("report query: {0}")]
    Query(#[from] DataFusionError),
    /// Arrow table construction.
    #[error("report table: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// CSV encoding.
    #[error("report CSV: {0}")]
    Csv(String),
}

/// One clock's results for a priority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClockReport {
    /// Target of that priority, s (null without a target).
    pub target_s: Option<f64>,
    /// Stopped and never breached.
    pub met: i64,
    /// Breached.
    pub breached: i64,
    /// Running or paused.
    pub pending: i64,
    /// Median over stopped clocks, s.
    pub p50_s: Option<f64>,
    /// 90th percentile over stopped clocks, s.
    pub p90_s: Option<f64>,
}

/// Ticket results for one priority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriorityReport {
    /// `P1`..`P4`.
    pub priority: Priority,
    /// Tickets created in the period with this current priority.
    pub count: i64,
    /// Response clock.
    pub response: ClockReport,
    /// Resolution clock.
    pub resolution: ClockReport,
}

/// The tickets part of the SLA report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketsReport {
    /// Every priority, P1 first.
    pub by_priority: Vec<PriorityReport>,
}

/// An exclusion in force that intersects the period (contract section 13).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExclusionReport {
    /// Its id.
    pub exclusion_id: String,
    /// Window start (the version in force).
    pub start: String,
    /// Window end (exclusive).
    pub end: String,
    /// Why.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
    /// Its instants in the period that are not maintenance, s.
    pub excluded_s: f64,
    /// Versions applied.
    pub versions: i64,
}

/// One service's line in the SLA report. Every `*_s` figure but
/// `longest_outage_s` is contractual (section 13): service hours and
/// exclusions applied.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceReport {
    /// Service id.
    pub service: String,
    /// Target, percent.
    pub target_pct: f64,
    /// Contractual availability, percent; null when nothing was measured.
    pub availability_pct: Option<f64>,
    /// The same with exclusions ignored (service hours and maintenance still
    /// apply); null when nothing was measured.
    pub raw_availability_pct: Option<f64>,
    /// Period length, s.
    pub period_s: f64,
    /// Measured time, s.
    pub measured_s: f64,
    /// Up, s.
    pub up_s: f64,
    /// Degraded (counts as available), s.
    pub degraded_s: f64,
    /// Downtime (with `nodata = "down"`, nodata included), s.
    pub downtime_s: f64,
    /// Maintenance, s.
    pub maintenance_s: f64,
    /// No data (in service hours), s.
    pub nodata_s: f64,
    /// Outside the service hours, s.
    pub outside_hours_s: f64,
    /// Excluded, s.
    pub excluded_s: f64,
    /// Error budget, s.
    pub budget_s: f64,
    /// Budget left, s (negative when exceeded).
    pub budget_remaining_s: f64,
    /// Target met; null when nothing was measured.
    pub met: Option<bool>,
    /// Outage incidents started in the period.
    pub outages: u64,
    /// Longest maximal down interval, clipped to the period, s.
    pub longest_outage_s: f64,
    /// Service credit, percent: null without availability or without
    /// `[[credits]]` for the customer.
    pub credit_pct: Option<f64>,
    /// The exclusions in force that intersect the period.
    pub exclusions: Vec<ExclusionReport>,
}

/// Incident counts in the period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentCounts {
    /// Trigger actions with `at` in the period.
    pub triggered: u64,
    /// The same split by rule.
    pub by_rule: BTreeMap<&'static str, u64>,
}

/// `report-<customer>.json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlaReport {
    /// Customer id.
    pub customer: String,
    /// Period start.
    pub from: String,
    /// Period end (exclusive).
    pub to: String,
    /// When the report was made (the only field that differs between identical runs).
    pub generated_at: String,
    /// SHA-256 of the config file.
    pub config_sha256: String,
    /// One line per service of the customer.
    pub services: Vec<ServiceReport>,
    /// The request SLOs of the customer's services (section 14).
    pub slos: Vec<slo::SloReport>,
    /// Changes of the customer's services (section 15).
    pub changes: changes::ChangesReport,
    /// The largest service credit of the customer's services, percent.
    pub credit_pct_max: Option<f64>,
    /// Ticket SLA results.
    pub tickets: TicketsReport,
    /// Incident counts.
    pub incidents: IncidentCounts,
}

/// Builds the SLA report of every customer for `[from, to)`.
pub async fn sla_reports(
    config: &Config,
    tables: &Tables,
    incidents: &[Incident],
    from: Millis,
    to: Millis,
    generated_at: Millis,
) -> Result<Vec<SlaReport>, ReportError> {
    let ctx = tables.session()?;
    let customers: Vec<&str> = config.customers.iter().map(|c| c.id.as_str()).collect();
    let every = EveryService::read(&ctx, config, &customers, (from, to)).await?;
    let period = (from, to);
    let report =
        |customer| customer_report(config, &every, incidents, customer, period, generated_at);
    Ok(customers.into_iter().map(report).collect())
}

/// Builds the SLA report of one customer for `[from, to)`.
pub async fn sla_report(
    config: &Config,
    tables: &Tables,
    incidents: &[Incident],
    customer: &str,
    from: Millis,
    to: Millis,
    generated_at: Millis,
) -> Result<SlaReport, ReportError> {
    let ctx = tables.session()?;
    let every = EveryService::read(&ctx, config, &[customer], (from, to)).await?;
    let period = (from, to);
    Ok(customer_report(
        config,
        &every,
        incidents,
        customer,
        period,
        generated_at,
    ))
}

/// What the report's queries read of every service, whichever customer a
/// report is for: read once when several customers' reports are built.
struct EveryService {
    times: BTreeMap<String, ServiceTimes>,
    counter_sums: slo::CounterSums,
    /// Every customer's ticket figures, by customer, then priority.
    tickets: BTreeMap<String, BTreeMap<String, TicketFigures>>,
    /// Every customer's changes deployed in the period.
    changes: Vec<changes::ChangeRow>,
}

impl EveryService {
    async fn read(
        ctx: &SessionContext,
        config: &Config,
        customers: &[&str],
        (from, to): (Millis, Millis),
    ) -> Result<Self, ReportError> {
        // Counters are summed only when one of these customers has an SLO.
        let slos = (customers.iter()).any(|c| !slo::slos_of(config, c).is_empty());
        let counter_sums = if slos {
            slo::counter_sums(ctx, from, to).await?
        } else {
            slo::CounterSums::new()
        };
        Ok(EveryService {
            times: service_times(ctx, from, to).await?,
            counter_sums,
            tickets: ticket_figures(ctx, from, to).await?,
            changes: changes::change_rows(ctx, from, to).await?,
        })
    }
}

/// The SLA report of `customer` for `[from, to)`.
fn customer_report(
    config: &Config,
    every: &EveryService,
    incidents: &[Incident],
    customer: &str,
    (from, to): (Millis, Millis),
    generated_at: Millis,
) -> SlaReport {
    let none = ServiceTimes::default();
    let services: Vec<ServiceReport> = (config.services.iter())
        .filter(|s| s.customer == customer)
        .map(|svc| {
            let times = every.times.get(&svc.id).unwrap_or(&none);
            service_report(config, svc, times, incidents, from, to)
        })
        .collect();
    let credit_pct_max = (services.iter().filter_map(|s| s.credit_pct)).reduce(f64::max);
    let tickets = tickets_report(config, customer, every.tickets.get(customer));
    let slos = slo::slos_report(config, customer, &every.counter_sums);
    let changes = changes::changes_report(config, &every.changes, incidents, customer, (from, to));
    let mut by_rule = BTreeMap::new();
    let mut triggered = 0;
    for i in incidents.iter().filter(|i| {
        i.action == Action::Trigger && i.customer == customer && (from..to).contains(&i.at_ms)
    }) {
        triggered += 1;
        *by_rule.entry(i.rule.as_str()).or_insert(0) += 1;
    }
    SlaReport {
        customer: customer.to_owned(),
        from: format_ms(from),
        to: format_ms(to),
        generated_at: format_ms(generated_at),
        config_sha256: config.sha256.clone(),
        services,
        slos,
        changes,
        credit_pct_max,
        tickets,
        incidents: IncidentCounts { triggered, by_rule },
    }
}

/// One row of the SLA report as CSV.
#[derive(Serialize)]
struct CsvRow<'a> {
    customer: &'a str,
    from: &'a str,
    to: &'a str,
    service: &'a str,
    target_pct: f64,
    availability_pct: Option<f64>,
    raw_availability_pct: Option<f64>,
    period_s: f64,
    measured_s: f64,
    up_s: f64,
    degraded_s: f64,
    downtime_s: f64,
    maintenance_s: f64,
    nodata_s: f64,
    outside_hours_s: f64,
    excluded_s: f64,
    budget_s: f64,
    budget_remaining_s: f64,
    met: Option<bool>,
    outages: u64,
    longest_outage_s: f64,
    credit_pct: Option<f64>,
    exclusions: usize,
}

/// The SLA report as CSV, one row per service (`format=csv`, `report.csv`).
pub fn sla_csv(r: &SlaReport) -> Result<String, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for s in &r.services {
        w.serialize(CsvRow {
            customer: &r.customer,
            from: &r.from,
            to: &r.to,
            service: &s.service,
            target_pct: s.target_pct,
            availability_pct: s.availability_pct,
            raw_availability_pct: s.raw_availability_pct,
            period_s: s.period_s,
            measured_s: s.measured_s,
            up_s: s.up_s,
            degraded_s: s.degraded_s,
            downtime_s: s.downtime_s,
            maintenance_s: s.maintenance_s,
            nodata_s: s.nodata_s,
            outside_hours_s: s.outside_hours_s,
            excluded_s: s.excluded_s,
            budget_s: s.budget_s,
            budget_remaining_s: s.budget_remaining_s,
            met: s.met,
            outages: s.outages,
            longest_outage_s: s.longest_outage_s,
            credit_pct: s.credit_pct,
            exclusions: s.exclusions.len(),
        })
        .map_err(|e| ReportError::Csv(e.to_string()))?;
    }
    let bytes = (w.into_inner()).map_err(|e| ReportError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Csv(e.to_string()))
}

/// What the report reads of one service over the period: its operational
/// intervals (clipped, in time order) and its exclusions in force.
#[derive(Default)]
struct ServiceTimes {
    intervals: Vec<(Millis, Millis, State)>,
    exclusions: Vec<ExclusionRow>,
}

struct ExclusionRow {
    id: String,
    start: Millis,
    end: Millis,
    reason: String,
    approved_by: String,
    versions: i64,
}

pub(crate) async fn query(
    ctx: &SessionContext,
    sql: &str,
    from: Millis,
    to: Millis,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>, ReportError> {
    let params = vec![ScalarValue::Int64(Some(from)), ScalarValue::Int64(Some(to))];
    Ok(ctx
        .sql(sql)
        .await?
        .with_param_values(params)?
        .collect()
        .await?)
}

/// Every service's intervals and exclusions over `[from, to)`, from
/// `AVAILABILITY_SQL` and `EXCLUSIONS_SQL`.
async fn service_times(
    ctx: &SessionContext,
    from: Millis,
    to: Millis,
) -> Result<BTreeMap<String, ServiceTimes>, ReportError> {
    let mut per: BTreeMap<String, ServiceTimes> = BTreeMap::new();
    for b in &query(ctx, AVAILABILITY_SQL, from, to).await? {
        let svc = b.column(0).as_string::<i32>();
        let st = b.column(1).as_string::<i32>();
        let start = b.column(2).as_primitive::<Int64Type>();
        let end = b.column(3).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            // The table is written from `State::as_str`.
            let Some(state) = State::parse(st.value(r)) else {
                continue;
            };
            let times = per.entry(svc.value(r).to_owned()).or_default();
            times.intervals.push((start.value(r), end.value(r), state));
        }
    }
    for b in &query(ctx, EXCLUSIONS_SQL, from, to).await? {
        let text = |c: usize, r: usize| b.column(c).as_string::<i32>().value(r).to_owned();
        let int = |c: usize, r: usize| b.column(c).as_primitive::<Int64Type>().value(r);
        for r in 0..b.num_rows() {
            let times = per.entry(text(0, r)).or_default();
            times.exclusions.push(ExclusionRow {
                id: text(1, r),
                start: int(2, r),
                end: int(3, r),
                reason: text(4, r),
                approved_by: text(5, r),
                versions: int(6, r),
            });
        }
    }
    Ok(per)
}

/// One service's line of the SLA report over `[from, to)` (sections 4, 10 and 13).
fn service_report(
    config: &Config,
    svc: &ServiceConfig,
    times: &ServiceTimes,
    incidents: &[Incident],
    from: Millis,
    to: Millis,
) -> ServiceReport {
    let id = &svc.id;
    let hours = crate::engine::service_hours(config, svc);
    let excluded = merge_windows(times.exclusions.iter().map(|e| (e.start, e.end)));
    let iv = &times.intervals;
    // Contractual durations of `[a, b)` with the exclusions `excluded`.
    let over = |excluded: &[(Millis, Millis)], a, b| {
        let terms = ContractTerms {
            policy: svc.nodata,
            hours: &hours,
            excluded,
        };
        contract_over(&terms, iv, a, b)
    };
    let contract = over(&excluded, from, to);
    let raw = over(&[], from, to);
    let (measured, downtime) = contract.measured_and_downtime(svc.nodata);
    let availability_pct = contract.availability_pct(svc.nodata);
    let budget_ms = (1.0 - svc.availability_target / 100.0) * measured as f64;
    let outages = incidents
        .iter()
        .filter(|i| {
            i.rule == Rule::Outage
                && i.action == Action::Trigger
                && i.service.as_deref() == Some(id.as_str())
        })
        .filter(|i| (from..to).contains(&i.started_ms))
        .count() as u64;
    let longest = (times.intervals.iter())
        .filter(|i| i.2 == State::Down)
        .map(|i| i.1 - i.0)
        .max()
        .unwrap_or(0);
    let credits = config.credits_for(&svc.customer);
    let exclusions = (times.exclusions.iter())
        .map(|e| {
            let (a, b) = (e.start.max(from), e.end.min(to));
            let alone = over(&[(a, b)], a, b);
            ExclusionReport {
                exclusion_id: e.id.clone(),
                start: format_ms(e.start),
                end: format_ms(e.end),
                reason: e.reason.clone(),
                approved_by: e.approved_by.clone(),
                excluded_s: ms_to_s(alone.excluded),
                versions: e.versions,
            }
        })
        .collect();
    ServiceReport {
        service: id.clone(),
        target_pct: svc.availability_target,
        availability_pct,
        raw_availability_pct: raw.availability_pct(svc.nodata),
        period_s: ms_to_s(to - from),
        measured_s: ms_to_s(measured),
        up_s: ms_to_s(contract.up),
        degraded_s: ms_to_s(contract.degraded),
        downtime_s: ms_to_s(downtime),
        maintenance_s: ms_to_s(contract.maintenance),
        nodata_s: ms_to_s(contract.nodata),
        outside_hours_s: ms_to_s(contract.outside_hours),
        excluded_s: ms_to_s(contract.excluded),
        budget_s: round_ms(budget_ms / 1000.0),
        budget_remaining_s: round_ms((budget_ms - downtime as f64) / 1000.0),
        met: availability_pct.map(|a| a >= svc.availability_target),
        outages,
        longest_outage_s: ms_to_s(longest),
        credit_pct: (credits.zip(availability_pct)).map(|(c, a)| c.credit_for(a)),
        exclusions,
    }
}

/// How many figures `TICKETS_SQL` gives per (customer, priority), after
/// its two key columns.
const TICKET_FIGURES: usize = 11;

/// The ticket query's figures of one (customer, priority): count, then each
/// clock's met, breached, pending, p50 and p90 (`TICKETS_SQL`'s columns).
type TicketFigures = [Option<i64>; TICKET_FIGURES];

/// `TICKETS_SQL`'s rows over `[from, to)`, by customer, then priority.
async fn ticket_figures(
    ctx: &SessionContext,
    from: Millis,
    to: Millis,
) -> Result<BTreeMap<String, BTreeMap<String, TicketFigures>>, ReportError> {
    let mut rows: BTreeMap<String, BTreeMap<String, TicketFigures>> = BTreeMap::new();
    for b in &query(ctx, TICKETS_SQL, from, to).await? {
        let customer = b.column(0).as_string::<i32>();
        let prio = b.column(1).as_string::<i32>();
        // Each figure column as Int64, cast once per batch (not once per row).
        let cast = (2..2 + TICKET_FIGURES)
            .map(|i| datafusion::arrow::compute::cast(b.column(i), &DataType::Int64))
            .collect::<Result<Vec<_>, _>>()?;
        let figures: Vec<_> = cast.iter().map(|c| c.as_primitive::<Int64Type>()).collect();
        for r in (0..b.num_rows()).filter(|&r| customer.is_valid(r)) {
            let mut vals: TicketFigures = [None; TICKET_FIGURES];
            for (v, c) in vals.iter_mut().zip(&figures) {
                *v = c.is_valid(r).then(|| c.value(r));
            }
            let of_customer = rows.entry(customer.value(r).to_owned()).or_default();
            of_customer.insert(prio.value(r).to_owned(), vals);
        }
    }
    Ok(rows)
}

/// The ticket block of `customer` from its query `rows` (none without tickets).
fn tickets_report(
    config: &Config,
    customer: &str,
    rows: Option<&BTreeMap<String, TicketFigures>>,
) -> TicketsReport {
    let secs = |ms: Option<i64>| ms.map(ms_to_s);
    let by_priority = [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
        .into_iter()
        .map(|p| {
            let v = (rows.and_then(|r| r.get(p.as_str()))).copied();
            let v = v.unwrap_or([None; TICKET_FIGURES]);
            let clock = |k: ClockKind, o: usize| ClockReport {
                target_s: secs(report_target(config, customer, p, k)),
                met: v[o].unwrap_or(0),
                breached: v[o + 1].unwrap_or(0),
                pending: v[o + 2].unwrap_or(0),
                p50_s: secs(v[o + 3]),
                p90_s: secs(v[o + 4]),
            };
            PriorityReport {
                priority: p,
                count: v[0].unwrap_or(0),
                response: clock(ClockKind::Response, 1),
                resolution: clock(ClockKind::Resolution, 6),
            }
        })
        .collect();
    TicketsReport { by_priority }
}

/// Utilisation statistics of one hour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UtilisationStats {
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// One hour of a series.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HourReport {
    /// Hour start.
    pub hour: String,
    /// Samples.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Null for series without capacity.
    pub utilisation: Option<UtilisationStats>,
}

/// One series in the capacity report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeriesReport {
    /// Service.
    pub service: String,
    /// Resource.
    pub resource: String,
    /// Metric.
    pub metric: String,
    /// Hours whose start is in the period.
    pub hours: Vec<HourReport>,
    /// Exhaustion forecast over `[to − forecast_window, to)`.
    pub forecast: Forecast,
    /// Capacity incidents triggered in the period.
    pub incidents: u64,
}

/// `capacity-<customer>.json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CapacityReport {
    /// Customer id.
    pub customer: String,
    /// Period start.
    pub from: String,
    /// Period end (exclusive).
    pub to: String,
    /// The customer's series.
    pub series: Vec<SeriesReport>,
}

/// Builds the capacity report of `customer` for `[from, to)`.
pub fn capacity_report(
    engine: &Engine,
    incidents: &[Incident],
    customer: &str,
    from: Millis,
    to: Millis,
) -> CapacityReport {
    let series = engine
        .capacity()
        .values()
        .filter(|s| s.customer == customer)
        .map(|s| {
            let key = s.key();
            let hours = s
                .hours()
                .range(from..to)
                .map(|(h, st)| HourReport {
                    hour: format_ms(*h),
                    count: st.value.count(),
                    min: st.value.min(),
                    max: st.value.max(),
                    mean: st.value.mean(),
                    p50: st.value.quantile(0.5),
                    p95: st.value.quantile(0.95),
                    p99: st.value.quantile(0.99),
                    utilisation: st.util.as_ref().map(|u| UtilisationStats {
                        min: u.min(),
                        max: u.max(),
                        mean: u.mean(),
                        p95: u.quantile(0.95),
                    }),
                })
                .collect();
            let incidents = incidents
                .iter()
                .filter(|i| {
                    i.rule == Rule::Capacity
                        && i.action == Action::Trigger
                        && (from..to).contains(&i.at_ms)
                })
                .filter(|i| {
                    i.incident_id
                        == crate::engine::incidents::incident_id(Rule::Capacity, &key, i.started_ms)
                })
                .count() as u64;
            SeriesReport {
                service: s.service.clone(),
                resource: s.resource.clone(),
                metric: s.metric.clone(),
                hours,
                forecast: s.forecast(to),
                incidents,
            }
        })
        .collect();
    CapacityReport {
        customer: customer.to_owned(),
        from: format_ms(from),
        to: format_ms(to),
        series,
    }
}

/// The target of the customer's first SLA that defines one for `priority`.
fn report_target(
    config: &Config,
    customer: &str,
    priority: Priority,
    kind: ClockKind,
) -> Option<Millis> {
    config
        .slas
        .iter()
        .filter(|s| s.customer == customer)
        .find_map(|s| {
            let t = s.targets.get(&priority)?;
            match kind {
                ClockKind::Response => t.response,
                ClockKind::Resolution => t.resolution,
            }
            .map(|d| d.0)
        })
}

/// Rounds seconds to millisecond precision.
pub(crate) fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// One step of an availability series: contractual figures (section 13),
/// as in reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AvailabilityStep {
    /// Step start.
    pub from: String,
    /// Step end.
    pub to: String,
    /// Availability under the service's `nodata` policy, hours and exclusions,
    /// as in reports; null when nothing was measured.
    pub availability_pct: Option<f64>,
    /// Up (in service hours, not excluded), s.
    pub up_s: f64,
    /// Degraded, s.
    pub degraded_s: f64,
    /// Down, s.
    pub down_s: f64,
    /// Maintenance, s.
    pub maintenance_s: f64,
    /// No data, s.
    pub nodata_s: f64,
    /// Outside the service hours, s.
    pub outside_hours_s: f64,
    /// Excluded, s.
    pub excluded_s: f64,
}

/// What decides a service's contractual figures besides its intervals: its
/// `nodata` policy, service hours and the exclusions in force (merged).
pub struct ContractTerms<'a> {
    /// `nodata` policy.
    pub policy: NoData,
    /// Service hours.
    pub hours: &'a Calendar,
    /// Exclusions in force, merged and in time order.
    pub excluded: &'a [(Millis, Millis)],
}

/// Contractual durations of `[a, b)` from a service's sorted, disjoint
/// operational `intervals` (time they do not cover is `nodata`).
pub fn contract_over(
    terms: &ContractTerms,
    intervals: &[(Millis, Millis, State)],
    a: Millis,
    b: Millis,
) -> ContractDurations {
    let ops = |x: Millis, y: Millis| {
        let first = intervals.partition_point(|i| i.1 <= x);
        overlap_sums(intervals[first..].iter().copied(), x, y)
    };
    contract_of(a, b, &terms.hours.spans(a, b), terms.excluded, ops)
}

/// An availability series of one service: `[from, to)` in steps of `step`,
/// from its sorted, disjoint `intervals`, contractual as in reports. One sweep
/// over steps and intervals.
pub fn availability_steps(
    terms: &ContractTerms,
    intervals: &[(Millis, Millis, State)],
    from: Millis,
    to: Millis,
    step: Millis,
) -> Vec<AvailabilityStep> {
    let mut steps = Vec::new();
    let mut s = from;
    while s < to {
        let e = s.saturating_add(step).min(to);
        let c = contract_over(terms, intervals, s, e);
        steps.push(AvailabilityStep {
            from: format_ms(s),
            to: format_ms(e),
            availability_pct: c.availability_pct(terms.policy),
            up_s: ms_to_s(c.up),
            degraded_s: ms_to_s(c.degraded),
            down_s: ms_to_s(c.down),
            maintenance_s: ms_to_s(c.maintenance),
            nodata_s: ms_to_s(c.nodata),
            outside_hours_s: ms_to_s(c.outside_hours),
            excluded_s: ms_to_s(c.excluded),
        });
        s = e;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outputs;
    use crate::event::{RawRecord, Topic};
    use crate::eventtime::StreamId;
    use crate::pipeline::Pipeline;
    use std::path::Path;
    use std::sync::Arc;

    const M: Millis = 60_000;
    const CONFIG: &str = r#"
burn_alerts = []
[[customers]]
id = "acme"
[[services]]
id = "web"
customer = "acme"
[[services]]
id = "web2"
customer = "acme"
nodata = "down"
[[services]]
id = "web3"
customer = "acme"
nodata = "up"
"#;

    /// A pipeline of `config` fed `lines` (in time order) on one partition of
    /// `topic`, finished at `end`.
    fn fed(
        config: &Arc<Config>,
        topic: Topic,
        lines: &[String],
        end: Millis,
    ) -> (Pipeline, Outputs) {
        let mut p = Pipeline::new(config.clone(), ["m".into(), "t".into()]);
        let mut out = Outputs::default();
        let s = StreamId {
            topic,
            partition: 0,
        };
        let recs = RawRecord::numbered(lines, 0, 0);
        p.ingest(s, &recs, end, &mut out).expect("decoded rows");
        p.finish(Some(end), &mut out).expect("decoded rows");
        (p, out)
    }

    fn reports(from: Millis, to: Millis) -> (SlaReport, Vec<Incident>) {
        let config = Arc::new(Config::parse(CONFIG, Path::new("t.toml")).expect("config"));
        let mut lines = Vec::new();
        // One stream, in time order.
        for i in 0..30 {
            for svc in ["web", "web2", "web3"] {
                let status = match i {
                    0..=9 => "up",
                    20..=29 => "down",
                    _ => continue,
                };
                lines.push(format!(r#"{{"event_id":"{svc}-{i}","ts":{},"service":"{svc}","kind":"probe","source":"a","status":"{status}"}}"#, i * M));
            }
        }
        let (p, out) = fed(&config, Topic::Monitoring, &lines, 40 * M);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let tables = Tables::from_engine(p.engine(), &out.incidents).expect("tables");
        let r = rt
            .block_on(sla_reports(&config, &tables, &out.incidents, from, to, 0))
            .expect("report");
        (r.into_iter().next().expect("acme"), out.incidents)
    }

    /// The ticket query runs once for every customer: each customer's block
    /// counts and ranks its own tickets only.
    #[test]
    fn each_customers_ticket_block_holds_its_own_tickets() {
        let config = format!(
            "{CONFIG}[[customers]]\nid = \"beta\"\n[[services]]\nid = \"b\"\ncustomer = \"beta\"\n\
             [[slas]]\nid = \"a\"\ncustomer = \"acme\"\nkinds = [\"incident\"]\n[slas.targets.P1]\nresponse = \"1h\"\nresolution = \"4h\"\n\
             [[slas]]\nid = \"b\"\ncustomer = \"beta\"\nkinds = [\"incident\"]\n[slas.targets.P1]\nresponse = \"1h\"\nresolution = \"4h\"\n"
        );
        let config = Arc::new(Config::parse(&config, Path::new("t.toml")).expect("config"));
        // acme: responses after 2 and 4 minutes; beta: one after 10 minutes.
        let tickets = [("A1", "acme", 2), ("A2", "acme", 4), ("B1", "beta", 10)];
        // In time order: every ticket is created at 0.
        let mut lines: Vec<String> = (tickets.iter())
            .map(|(t, customer, _)| format!(r#"{{"event_id":"{t}c","ts":0,"ticket":"{t}","type":"created","customer":"{customer}","priority":"P1","kind":"incident"}}"#))
            .collect();
        for (t, _, responded) in tickets {
            let ts = responded * M;
            lines.push(format!(
                r#"{{"event_id":"{t}r","ts":{ts},"ticket":"{t}","type":"responded"}}"#
            ));
        }
        let (p, out) = fed(&config, Topic::Tickets, &lines, 20 * M);
        let tables = Tables::for_sla_report(p.engine()).expect("tables");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let all = rt
            .block_on(sla_reports(&config, &tables, &out.incidents, 0, 20 * M, 0))
            .expect("reports");
        let one = rt
            .block_on(sla_report(
                &config,
                &tables,
                &out.incidents,
                "beta",
                0,
                20 * M,
                0,
            ))
            .expect("report");
        let p1 = |r: &SlaReport| {
            let p1 = &r.tickets.by_priority[0];
            (
                r.customer.clone(),
                p1.count,
                p1.response.met,
                p1.response.p50_s,
                p1.response.p90_s,
            )
        };
        let got: Vec<_> = all.iter().map(p1).collect();
        let want = vec![
            ("acme".to_owned(), 2, 2, Some(120.0), Some(240.0)),
            ("beta".to_owned(), 1, 1, Some(600.0), Some(600.0)),
        ];
        assert_eq!(got, want);
        assert_eq!(p1(&one), want[1]);
    }

    #[test]
    fn series_steps_follow_each_services_nodata_policy_like_reports() {
        let config = Arc::new(Config::parse(CONFIG, Path::new("t.toml")).expect("config"));
        let (r, _) = reports(0, 40 * M);
        let lines: Vec<String> = (0..30)
            .filter(|i| !(10..20).contains(i))
            .flat_map(|i| {
                let status = if i < 10 { "up" } else { "down" };
                ["web", "web2", "web3"].map(|svc| format!(r#"{{"event_id":"{svc}-{i}","ts":{},"service":"{svc}","kind":"probe","source":"a","status":"{status}"}}"#, i * M))
            })
            .collect();
        let (p, _) = fed(&config, Topic::Monitoring, &lines, 40 * M);
        for svc in ["web", "web2", "web3"] {
            let t = &p.engine().services()[svc];
            let iv: Vec<_> = t.intervals().collect();
            let policy = config.service(svc).expect("service").nodata;
            let terms = ContractTerms {
                policy,
                hours: &Calendar::Always,
                excluded: &[],
            };
            let one = availability_steps(&terms, &iv, 0, 40 * M, 40 * M);
            let report = r
                .services
                .iter()
                .find(|s| s.service == svc)
                .expect("in report");
            assert_eq!(one[0].availability_pct, report.availability_pct, "{svc}");
            // Steps add up to the whole period.
            let steps = availability_steps(&terms, &iv, 0, 40 * M, 7 * M);
            assert_eq!(steps.len(), 6);
            let nodata: f64 = steps.iter().map(|s| s.nodata_s).sum();
            assert_eq!(nodata, report.nodata_s, "{svc}");
        }
    }

    #[test]
    fn nodata_policies_period_clipping_and_outages() {
        // up [0, 11m), nodata [11m, 20m), down [20m, 31m), nodata [31m, 40m).
        let (r, incidents) = reports(0, 40 * M);
        let by = |id: &str| {
            r.services
                .iter()
                .find(|s| s.service == id)
                .cloned()
                .expect("service")
        };
        let web = by("web");
        assert_eq!(
            (web.up_s, web.downtime_s, web.nodata_s, web.measured_s),
            (660.0, 660.0, 1080.0, 1320.0)
        );
        assert_eq!(web.availability_pct, Some(50.0));
        assert_eq!(web.budget_s, 1.32);
        assert_eq!(web.budget_remaining_s, -658.68);
        assert_eq!(web.met, Some(false));
        assert_eq!((web.outages, web.longest_outage_s), (1, 660.0));
        let down = by("web2");
        assert_eq!(
            (down.measured_s, down.downtime_s, down.availability_pct),
            (2400.0, 1740.0, Some(27.5))
        );
        let up = by("web3");
        assert_eq!(
            (up.measured_s, up.downtime_s, up.availability_pct),
            (2400.0, 660.0, Some(72.5))
        );
        assert_eq!(r.incidents.triggered, 3);
        assert_eq!(r.incidents.by_rule.get("outage"), Some(&3));
        assert!(incidents.iter().all(|i| i.rule == Rule::Outage));

        let (r, _) = reports(25 * M, 40 * M);
        let web = r
            .services
            .iter()
            .find(|s| s.service == "web")
            .cloned()
            .expect("web");
        assert_eq!(
            (
                web.period_s,
                web.downtime_s,
                web.longest_outage_s,
                web.outages
            ),
            (900.0, 360.0, 360.0, 0)
        );
        assert_eq!(
            r.incidents.triggered, 0,
            "triggers at 21m are before the period"
        );

        let (r, _) = reports(50 * M, 60 * M);
        let web = r
            .services
            .iter()
            .find(|s| s.service == "web")
            .cloned()
            .expect("web");
        assert_eq!(
            (web.nodata_s, web.measured_s, web.availability_pct, web.met),
            (600.0, 0.0, None, None)
        );
    }
}
