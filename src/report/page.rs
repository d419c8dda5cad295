//! What the customer report page shows (contract section 12), gathered from the
//! SLA and capacity reports, the engine's retained state and the incidents.
//! [`super::html`] renders it and computes nothing itself, so the page's numbers
//! are the reports' numbers.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::incidents::{Action, Incident};
use crate::engine::tickets::TicketLine;
use crate::model::Rule;
use crate::time::{Millis, format_ms, ms_to_s, parse_rfc3339};

use super::{AvailabilityStep, CapacityReport, ContractTerms, SlaReport, availability_steps};

const DAY: Millis = 86_400_000;

/// One customer's report for a period, ready to render.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    /// The SLA report (`report.json`).
    pub sla: SlaReport,
    /// The capacity report of the same period.
    pub capacity: CapacityReport,
    /// Per service, in the SLA report's order.
    pub services: Vec<ServiceDetail>,
    /// Tickets created in the period with a breached clock, by id.
    pub breached_tickets: Vec<TicketLine>,
    /// The customer's `trigger` actions with `at` in the period (what
    /// `incidents.triggered` counts), in `incidents.ndjson` order.
    pub incidents: Vec<Incident>,
    /// Services with at least `problem_after` outages in the period.
    pub problem_candidates: Vec<ProblemCandidate>,
    /// `report.problem_after`.
    pub problem_after: u32,
    /// `engine.change_window`, as people read it (section 15).
    pub change_window: String,
    /// The slaflow version that made it.
    pub version: &'static str,
}

/// What the page shows of one service besides its report line.
#[derive(Debug, Clone)]
pub struct ServiceDetail {
    /// Service id.
    pub service: String,
    /// Availability per day of the period (the last day may be shorter).
    pub days: Vec<AvailabilityStep>,
    /// Announced windows overlapping the period, by start.
    pub maintenance: Vec<MaintenanceRow>,
    /// Outage incidents started in the period (what `outages` counts).
    pub outages: Vec<OutageRow>,
}

/// A maintenance window as the page lists it.
#[derive(Debug, Clone)]
pub struct MaintenanceRow {
    /// Where it starts counting (never before its announcement).
    pub from: String,
    /// End.
    pub to: String,
    /// Change record.
    pub change_id: Option<String>,
    /// Of it inside the period, s (overlapping windows each count in full here).
    pub in_period_s: f64,
}

/// An outage as the page lists it.
#[derive(Debug, Clone)]
pub struct OutageRow {
    /// Incident id.
    pub incident_id: String,
    /// Episode start.
    pub started_at: String,
    /// Episode end, once resolved.
    pub ended_at: Option<String>,
    /// Episode length once resolved, s.
    pub duration_s: Option<f64>,
}

/// A service whose outages recur (ISO/IEC 20000-1 8.6.3).
#[derive(Debug, Clone)]
pub struct ProblemCandidate {
    /// Service id.
    pub service: String,
    /// Its outage incidents in the period.
    pub incident_ids: Vec<String>,
}

/// Gathers the page of `sla.customer` over the SLA report's period; `incidents`
/// are every incident action in `incidents.ndjson` order.
pub fn customer_page(
    config: &Config,
    engine: &Engine,
    incidents: &[Incident],
    sla: SlaReport,
    capacity: CapacityReport,
    (from, to): (Millis, Millis),
) -> CustomerPage {
    let customer = sla.customer.clone();
    let services: Vec<ServiceDetail> = (sla.services.iter())
        .map(|s| service_detail(config, engine, incidents, &s.service, (from, to)))
        .collect();
    let problem_after = config.report.problem_after.get();
    let problem_candidates = (services.iter())
        .filter(|s| s.outages.len() >= problem_after as usize)
        .map(|s| ProblemCandidate {
            service: s.service.clone(),
            incident_ids: s.outages.iter().map(|o| o.incident_id.clone()).collect(),
        })
        .collect();
    let breached_tickets = (tickets_created(engine, &customer, (from, to)).into_iter())
        .filter(|l| l.response_met == Some(false) || l.resolution_met == Some(false))
        .collect();
    let incidents = (incidents.iter())
        .filter(|i| i.action == Action::Trigger && i.customer == customer)
        .filter(|i| (from..to).contains(&i.at_ms))
        .cloned()
        .collect();
    CustomerPage {
        sla,
        capacity,
        services,
        breached_tickets,
        incidents,
        problem_candidates,
        problem_after,
        change_window: humantime::format_duration(std::time::Duration::from_millis(
            config.engine.change_window.0.unsigned_abs(),
        ))
        .to_string(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The `tickets.ndjson` lines of the customer's tickets created in the period
/// (the tickets its SLA report counts), by id.
pub fn tickets_created(
    engine: &Engine,
    customer: &str,
    (from, to): (Millis, Millis),
) -> Vec<TicketLine> {
    let mut lines: Vec<TicketLine> = (engine.tickets().iter())
        .filter(|t| t.customer == customer && (from..to).contains(&t.created))
        .map(|t| t.line())
        .collect();
    lines.sort_by(|a, b| a.ticket.cmp(&b.ticket));
    lines
}

fn service_detail(
    config: &Config,
    engine: &Engine,
    incidents: &[Incident],
    id: &str,
    (from, to): (Millis, Millis),
) -> ServiceDetail {
    let timeline = engine.services().get(id);
    let days = match (timeline, config.service(id)) {
        (Some(t), Some(cfg)) => {
            let intervals: Vec<_> = t.intervals().collect();
            let hours = crate::engine::service_hours(config, cfg);
            let terms = ContractTerms {
                policy: cfg.nodata,
                hours: &hours,
                excluded: t.exclusions().union(),
            };
            availability_steps(&terms, &intervals, from, to, DAY)
        }
        _ => Vec::new(),
    };
    let mut maintenance: Vec<MaintenanceRow> = (timeline.into_iter())
        .flat_map(|t| t.maintenance_log())
        .filter_map(|m| {
            let (a, b) = m.effective();
            let inside = b.min(to) - a.max(from);
            (inside > 0).then(|| MaintenanceRow {
                from: format_ms(a),
                to: format_ms(b),
                change_id: m.change_id.clone(),
                in_period_s: ms_to_s(inside),
            })
        })
        .collect();
    maintenance.sort_by(|a, b| a.from.cmp(&b.from));
    ServiceDetail {
        service: id.to_owned(),
        days,
        maintenance,
        outages: outages(incidents, id, (from, to)),
    }
}

/// The service's outage incidents started in the period, with their resolves.
fn outages(incidents: &[Incident], service: &str, (from, to): (Millis, Millis)) -> Vec<OutageRow> {
    let outage = |i: &&Incident| i.rule == Rule::Outage && i.service.as_deref() == Some(service);
    let ends: BTreeMap<&str, &str> = (incidents.iter().filter(outage))
        .filter(|i| i.action == Action::Resolve)
        .filter_map(|i| Some((i.incident_id.as_str(), i.ended_at.as_deref()?)))
        .collect();
    let mut rows: Vec<(Millis, OutageRow)> = (incidents.iter().filter(outage))
        .filter(|i| i.action == Action::Trigger && (from..to).contains(&i.started_ms))
        .map(|i| {
            let ended_at = ends.get(i.incident_id.as_str()).map(|e| e.to_string());
            let duration_s = (ended_at.as_deref())
                .and_then(|e| parse_rfc3339(e).ok())
                .map(|e| ms_to_s(e - i.started_ms));
            let row = OutageRow {
                incident_id: i.incident_id.clone(),
                started_at: i.started_at.clone(),
                ended_at,
                duration_s,
            };
            (i.started_ms, row)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1.incident_id).cmp(&(b.0, &b.1.incident_id)));
    rows.into_iter().map(|(_, r)| r).collect()
}
