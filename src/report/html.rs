//! `report.html` (contract section 12): one self-contained printable page per
//! customer and period, inline CSS and SVG, no scripts, nothing fetched. The
//! same inputs give the same bytes (evidence packs compare them).
//!
//! Every number shown comes from [`CustomerPage`]; cells holding a report field
//! carry it unrounded in `data-value`, so the page can be checked against
//! `report.json`.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::page::{CustomerPage, ServiceDetail, customer_page};
use super::{ClockReport, ServiceReport, SlaReport, capacity_report};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::capacity::Forecast;
use crate::engine::incidents::Incident;
use crate::report::SeriesReport;
use crate::time::Millis;

const CSS: &str = include_str!("report.css");

/// `report.html` of the SLA report's customer and period: gathers the rest of
/// the page (capacity, maintenance, outages, tickets) from `engine` and
/// `incidents` (every incident action, in `incidents.ndjson` order).
pub fn report_html(
    config: &Config,
    engine: &Engine,
    incidents: &[Incident],
    sla: SlaReport,
    (from, to): (Millis, Millis),
) -> String {
    let capacity = capacity_report(engine, incidents, &sla.customer, from, to);
    render(&customer_page(
        config,
        engine,
        incidents,
        sla,
        capacity,
        (from, to),
    ))
}

/// The page as HTML.
pub fn render(page: &CustomerPage) -> String {
    let r = &page.sla;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Service report " (r.customer) " " (r.from) " – " (r.to) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "Service report: " (r.customer) }
                    p.period { "Period " time { (r.from) } " to " time { (r.to) } " (end exclusive, UTC)" }
                    dl.meta {
                        dt { "Generated" } dd { (r.generated_at) }
                        dt { "Config SHA-256" } dd.hash { (r.config_sha256) }
                        dt { "slaflow" } dd { (page.version) }
                    }
                }
                (summary(page))
                @for (line, detail) in r.services.iter().zip(&page.services) {
                    (service_section(line, detail))
                }
                (request_slos(page))
                (changes(page))
                (tickets(page))
                (incidents(page))
                (capacity(page))
            }
        }
    }
    .into_string()
}

fn summary(page: &CustomerPage) -> Markup {
    html! {
        section #summary {
            h2 { "Availability" }
            table {
                thead { tr {
                    th { "Service" } th.n { "Target" } th.n { "Availability" }
                    th.n { "Raw" } th { "Met" }
                    th.n { "Downtime" } th.n { "Maintenance" } th.n { "Excluded" }
                    th.n { "Outside hours" } th.n { "No data" }
                    th.n { "Budget left" } th.n { "Outages" } th.n { "Longest outage" }
                    th.n { "Credit" }
                } }
                tbody {
                    @for s in &page.sla.services {
                        tr data-service=(s.service) {
                            td { (s.service) }
                            td.n data-field="target_pct" data-value=(s.target_pct) { (pct(Some(s.target_pct))) }
                            td.n data-field="availability_pct" data-value=(opt(s.availability_pct)) { (pct(s.availability_pct)) }
                            td.n data-field="raw_availability_pct" data-value=(opt(s.raw_availability_pct)) { (pct(s.raw_availability_pct)) }
                            td data-field="met" data-value=(opt(s.met)) { (met(s.met)) }
                            td.n data-field="downtime_s" data-value=(s.downtime_s) { (dur(s.downtime_s)) }
                            td.n data-field="maintenance_s" data-value=(s.maintenance_s) { (dur(s.maintenance_s)) }
                            td.n data-field="excluded_s" data-value=(s.excluded_s) { (dur(s.excluded_s)) }
                            td.n data-field="outside_hours_s" data-value=(s.outside_hours_s) { (dur(s.outside_hours_s)) }
                            td.n data-field="nodata_s" data-value=(s.nodata_s) { (dur(s.nodata_s)) }
                            td.n data-field="budget_remaining_s" data-value=(s.budget_remaining_s) { (dur(s.budget_remaining_s)) }
                            td.n data-field="outages" data-value=(s.outages) { (s.outages) }
                            td.n data-field="longest_outage_s" data-value=(s.longest_outage_s) { (dur(s.longest_outage_s)) }
                            td.n data-field="credit_pct" data-value=(opt(s.credit_pct)) { (credit(s.credit_pct)) }
                        }
                    }
                }
            }
            p.note {
                "Availability is contractual: measured in the agreed service hours, with maintenance "
                "and approved exclusions left out. Raw is the same with exclusions ignored."
            }
            p #credits data-field="credit_pct_max" data-value=(opt(page.sla.credit_pct_max)) {
                "Service credit owed for the period: " strong { (credit(page.sla.credit_pct_max)) }
                @if page.sla.credit_pct_max.is_none() { " (no credit tiers agreed, or nothing measured)" }
            }
            @if !page.problem_candidates.is_empty() {
                h3 { "Problem candidates" }
                p { "Services with " (page.problem_after) " or more outages in the period (ISO/IEC 20000-1 8.6.3):" }
                ul #problems {
                    @for p in &page.problem_candidates {
                        li data-service=(p.service) {
                            strong { (p.service) } ": " (p.incident_ids.len()) " outages ("
                            @for (i, id) in p.incident_ids.iter().enumerate() {
                                @if i > 0 { ", " } code { (id) }
                            }
                            ")"
                        }
                    }
                }
            }
        }
    }
}

fn service_section(line: &ServiceReport, d: &ServiceDetail) -> Markup {
    html! {
        section.service data-service=(d.service) {
            h2 { "Service " (d.service) }
            p {
                "Availability " strong { (pct(line.availability_pct)) } " against a target of "
                (pct(Some(line.target_pct))) " (" (met(line.met)) "); measured "
                (dur(line.measured_s)) ", downtime " (dur(line.downtime_s)) ", maintenance "
                (dur(line.maintenance_s)) "."
            }
            p.raw {
                "With exclusions ignored: " (pct(line.raw_availability_pct)) "; outside service hours "
                (dur(line.outside_hours_s)) ", excluded " (dur(line.excluded_s)) "."
            }
            (day_bars(d, line.target_pct))
            h3 { "Exclusions" }
            @if line.exclusions.is_empty() { p.none { "No exclusions in the period." } } @else {
                table.exclusions {
                    thead { tr {
                        th { "Exclusion" } th { "From" } th { "To" } th { "Reason" }
                        th { "Approved by" } th.n { "Versions" } th.n { "Excluded in period" }
                    } }
                    tbody { @for e in &line.exclusions { tr data-exclusion=(e.exclusion_id) {
                        td { code { (e.exclusion_id) } } td { (e.start) } td { (e.end) }
                        td { (e.reason) } td { (e.approved_by) }
                        td.n { (e.versions) }
                        td.n data-field="excluded_s" data-value=(e.excluded_s) { (dur(e.excluded_s)) }
                    } } }
                }
            }
            h3 { "Maintenance" }
            @if d.maintenance.is_empty() { p.none { "No maintenance in the period." } } @else {
                table.maintenance {
                    thead { tr { th { "From" } th { "To" } th { "Change" } th.n { "In period" } } }
                    tbody { @for m in &d.maintenance { tr {
                        td { (m.from) } td { (m.to) }
                        td { (m.change_id.as_deref().unwrap_or("none given")) }
                        td.n { (dur(m.in_period_s)) }
                    } } }
                }
            }
            h3 { "Outages" }
            @if d.outages.is_empty() { p.none { "No outages in the period." } } @else {
                table.outages {
                    thead { tr { th { "Incident" } th { "Started" } th { "Ended" } th.n { "Duration" } } }
                    tbody { @for o in &d.outages { tr {
                        td { code { (o.incident_id) } } td { (o.started_at) }
                        td { (o.ended_at.as_deref().unwrap_or("open")) }
                        td.n { @match o.duration_s { Some(s) => (dur(s)), None => "–" } }
                    } } }
                }
            }
        }
    }
}

/// One bar per day on a scale from just below the lowest day (or the target)
/// to 100 %, so 99.9 and 99.5 look different; days below target in red.
fn day_bars(d: &ServiceDetail, target: f64) -> Markup {
    const W: usize = 20;
    const H: f64 = 100.0;
    let lowest = (d.days.iter().filter_map(|s| s.availability_pct)).fold(target, f64::min);
    let lo = (100.0 - (100.0 - lowest).max(0.01) * 1.25).max(0.0);
    let y = |pct: f64| H - (pct - lo) / (100.0 - lo) * H;
    let width = d.days.len().max(1) * W + 40;
    html! {
        svg.days xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} 130"))
            role="img" aria-label=(format!("Availability of {} per day", d.service)) {
            text x="36" y="8" text-anchor="end" { (pct(Some(100.0))) }
            text x="36" y=(H) text-anchor="end" { (pct(Some(lo))) }
            @for (i, s) in d.days.iter().enumerate() {
                @let x = 40 + i * W;
                @match s.availability_pct {
                    Some(a) => rect x=(x + 2) y=(fmt2(y(a))) width=(W - 4)
                        height=(fmt2(H - y(a)).to_string()) class=(if a >= target { "ok" } else { "bad" }) {
                        title { (s.from.get(..10).unwrap_or(&s.from)) ": " (pct(Some(a))) }
                    },
                    None => rect x=(x + 2) y="0" width=(W - 4) height=(H) class="nodata" {
                        title { (s.from.get(..10).unwrap_or(&s.from)) ": nothing measured" }
                    },
                }
                text x=(x + W / 2) y="122" text-anchor="middle" { (s.from.get(8..10).unwrap_or("")) }
            }
            line.target x1="40" x2=(width) y1=(fmt2(y(target))) y2=(fmt2(y(target))) {}
        }
    }
}

/// Section 14: each request SLO over the report period.
fn request_slos(page: &CustomerPage) -> Markup {
    html! {
        @if !page.sla.slos.is_empty() {
            section #slos {
                h2 { "Request SLOs" }
                table {
                    thead { tr {
                        th { "SLO" } th { "Service" } th.n { "Objective" } th.n { "Good events" } th { "Met" }
                        th.n { "Events" } th.n { "Bad" } th.n { "Budget (events)" } th.n { "Budget left" }
                    } }
                    tbody { @for s in &page.sla.slos { tr data-slo=(s.slo) {
                        td { (s.slo) } td { (s.service) }
                        td.n data-field="objective_pct" data-value=(s.objective_pct) { (pct(Some(s.objective_pct))) }
                        td.n data-field="ratio_pct" data-value=(opt(s.ratio_pct)) { (pct(s.ratio_pct)) }
                        td data-field="met" data-value=(opt(s.met)) { (met(s.met)) }
                        td.n data-field="total" data-value=(s.total) { (s.total) }
                        td.n data-field="bad" data-value=(s.bad) { (s.bad) }
                        td.n data-field="budget_events" data-value=(s.budget_events) { (s.budget_events) }
                        td.n data-field="budget_remaining_events" data-value=(s.budget_remaining_events) { (s.budget_remaining_events) }
                    } } }
                }
                p.note {
                    "Events counted by the service's request counters in the period, "
                    "without those dated in maintenance, exclusions or outside service hours."
                }
            }
        }
    }
}

/// Section 15: changes deployed in the period and what they did to the service.
fn changes(page: &CustomerPage) -> Markup {
    let c = &page.sla.changes;
    html! {
        section #changes {
            h2 { "Changes" }
            table {
                thead { tr {
                    th.n { "Deployed" } th.n { "Failed" } th.n { "Outages induced" }
                    th.n { "Change failure rate" } th.n { "Mean time to restore" }
                } }
                tbody { tr {
                    td.n data-field="changes_total" data-value=(c.total) { (c.total) }
                    td.n data-field="changes_failed" data-value=(c.failed) { (c.failed) }
                    td.n data-field="induced_outages" data-value=(c.induced_outages) { (c.induced_outages) }
                    td.n data-field="failure_rate_pct" data-value=(opt(c.failure_rate_pct)) { (pct(c.failure_rate_pct)) }
                    td.n data-field="mttr_s" data-value=(opt(c.mttr_s)) { (c.mttr_s.map_or("n/a".into(), dur)) }
                } }
            }
            p.note {
                "A change failed when its outcome was not success or an outage started within "
                (page.change_window) " after it (the latest such change is the one induced). "
                "Mean time to restore: outages that ended in the period."
            }
        }
    }
}

fn tickets(page: &CustomerPage) -> Markup {
    let clock = |c: &ClockReport| {
        html! {
            td.n { (c.target_s.map_or("–".into(), dur)) }
            td.n { (c.met) } td.n.bad { (c.breached) } td.n { (c.pending) }
            td.n { (c.p50_s.map_or("–".into(), dur)) } td.n { (c.p90_s.map_or("–".into(), dur)) }
        }
    };
    html! {
        section #tickets {
            h2 { "Ticket SLAs" }
            table {
                thead {
                    tr { th rowspan="2" { "Priority" } th.n rowspan="2" { "Tickets" }
                        th colspan="6" { "Response" } th colspan="6" { "Resolution" } }
                    tr { @for _ in 0..2 {
                        th.n { "Target" } th.n { "Met" } th.n { "Breached" } th.n { "Pending" }
                        th.n { "p50" } th.n { "p90" }
                    } }
                }
                tbody { @for p in &page.sla.tickets.by_priority { tr data-priority=(p.priority.as_str()) {
                    td { (p.priority.as_str()) } td.n { (p.count) }
                    (clock(&p.response)) (clock(&p.resolution))
                } } }
            }
            h3 { "Breached tickets" }
            @if page.breached_tickets.is_empty() { p.none { "No ticket breached its SLA." } } @else {
                table #breached {
                    thead { tr { th { "Ticket" } th { "Priority" } th { "Created" } th { "Status" }
                        th { "Response" } th { "Resolution" } } }
                    tbody { @for t in &page.breached_tickets { tr {
                        td { (t.ticket) } td { (t.priority.as_str()) } td { (t.created) } td { (t.status) }
                        td { (verdict(t.response_met, t.response_s)) }
                        td { (verdict(t.resolution_met, t.resolution_s)) }
                    } } }
                }
            }
        }
    }
}

fn incidents(page: &CustomerPage) -> Markup {
    let counts = &page.sla.incidents;
    html! {
        section #incidents {
            h2 { "Incidents" }
            p { (counts.triggered) " incidents triggered in the period." }
            @if !counts.by_rule.is_empty() {
                table #by-rule {
                    thead { tr { th { "Rule" } th.n { "Triggered" } } }
                    tbody { @for (rule, n) in &counts.by_rule {
                        tr data-rule=(rule) { td { (rule) } td.n { (n) } }
                    } }
                }
            }
            @if !page.incidents.is_empty() {
                table #incident-list {
                    thead { tr { th { "At" } th { "Rule" } th { "Severity" } th { "Subject" } th { "Summary" } th { "Id" } } }
                    tbody { @for i in &page.incidents { tr {
                        td { (i.at) } td { (i.rule.as_str()) } td { (i.severity.as_str()) }
                        td { (i.service.as_deref().or(i.ticket.as_deref()).unwrap_or("")) }
                        td { (i.summary) } td { code { (i.incident_id) } }
                    } } }
                }
            }
        }
    }
}

fn capacity(page: &CustomerPage) -> Markup {
    html! {
        section #capacity {
            h2 { "Capacity" }
            @if page.capacity.series.is_empty() { p.none { "No capacity series." } } @else {
                table {
                    thead { tr { th { "Service" } th { "Resource" } th { "Metric" } th.n { "Peak" }
                        th.n { "Peak utilisation" } th.n { "Trend per day" } th { "Exhausted at" } th.n { "Incidents" } } }
                    tbody { @for s in &page.capacity.series { (series_row(s)) } }
                }
            }
        }
    }
}

fn series_row(s: &SeriesReport) -> Markup {
    let peak = s.hours.iter().map(|h| h.max).reduce(f64::max);
    let util = (s.hours.iter().filter_map(|h| h.utilisation.as_ref())).map(|u| u.max);
    let Forecast {
        slope_per_day,
        exhausted_at,
    } = &s.forecast;
    html! {
        tr {
            td { (s.service) } td { (s.resource) } td { (s.metric) }
            td.n { (peak.map_or("–".into(), |p| format!("{p:.2}"))) }
            td.n { (util.reduce(f64::max).map_or("–".into(), |u| pct(Some(100.0 * u)))) }
            td.n { (slope_per_day.map_or("–".into(), |d| format!("{:+.3} %", 100.0 * d))) }
            td { (exhausted_at.as_deref().unwrap_or("not forecast")) }
            td.n { (s.incidents) }
        }
    }
}

fn verdict(met: Option<bool>, s: Option<f64>) -> String {
    let took = s.map_or(String::new(), |s| format!(" ({})", dur(s)));
    match met {
        Some(true) => format!("met{took}"),
        Some(false) => format!("breached{took}"),
        None => "pending".into(),
    }
}

fn pct(p: Option<f64>) -> String {
    p.map_or("n/a".into(), |p| format!("{p:.3} %"))
}

fn credit(c: Option<f64>) -> String {
    c.map_or("n/a".into(), |c| format!("{c} %"))
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "missed",
        None => "n/a",
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

fn fmt2(v: f64) -> String {
    format!("{v:.2}")
}

/// Seconds as `1d 2h 3m 4s` (to the second from a minute up, else `12.345s`),
/// signed; the exact value is in the cell's `data-value`.
fn dur(s: f64) -> String {
    let sign = if s < 0.0 { "-" } else { "" };
    let ms = (s.abs() * 1000.0).round() as u64;
    if ms < 60_000 {
        return format!("{sign}{}s", ms as f64 / 1000.0);
    }
    let secs = (ms + 500) / 1000;
    let units = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    let first = units.iter().position(|u| u.0 > 0).unwrap_or(3);
    let parts: Vec<String> = units[first..]
        .iter()
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::dur;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(dur(0.0), "0s");
        assert_eq!(dur(12.3456), "12.346s");
        assert_eq!(dur(-3.5), "-3.5s");
        assert_eq!(dur(60.0), "1m 0s");
        assert_eq!(dur(3600.4), "1h 0m 0s");
        assert_eq!(dur(-(86_400.0 * 22.0 + 3599.6)), "-22d 1h 0m 0s");
    }
}
