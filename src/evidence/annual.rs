//! The annual pack (contract section 15): `slaflow evidence … --year YYYY`
//! writes a monthly pack in `YYYY-MM/` for each month from January up to the
//! month of the highest `ts` read, `review.json` and `review.html` (the year
//! month by month, with trends and problem candidates), and a root manifest
//! listing every file.
//!
//! The inputs are read once. A monthly pack replays everything with its
//! month's end as `--to`, so its final watermark is the highest `ts`, or the
//! month's end for the month holding it: the year's replay ends at the highest
//! `ts`, renders every month ending by then, then moves the watermark to the
//! last month's end and renders that one. Each month is byte for byte the pack
//! `slaflow evidence --month` makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

use super::{
    EvidenceError, MANIFEST, Manifest, describe_inputs, file_ref, find_chromium, io_err,
    output_entry, print_pdf, render_month,
};
use crate::config::Config;
use crate::engine::Outputs;
use crate::engine::incidents::{Action, Incident};
use crate::model::Rule;
use crate::replay::{self, Replayed};
use crate::report::{SlaReport, Tables};
use crate::sink::file::json_document;
use crate::source::ChunkSource;
use crate::time::month_of;
use crate::time::{Millis, format_ms, parse_rfc3339};

/// The year's review, as data.
pub const REVIEW_JSON: &str = "review.json";
/// The year's review, as a printable page.
pub const REVIEW_HTML: &str = "review.html";
/// `review.html` printed by Chromium (`--pdf`).
const REVIEW_PDF: &str = "review.pdf";

/// What `slaflow evidence --year` needs.
#[derive(Debug, Clone)]
pub struct YearArgs {
    /// Config file.
    pub config: PathBuf,
    /// Monitoring files.
    pub monitoring: Vec<PathBuf>,
    /// Ticket files.
    pub tickets: Vec<PathBuf>,
    /// Customer id.
    pub customer: String,
    /// The year.
    pub year: i32,
    /// Output folder.
    pub out: PathBuf,
    /// Also print `review.html` to `review.pdf`.
    pub pdf: bool,
    /// Processing clock (default: the wall clock).
    pub now: Millis,
}

/// A pack's files by name.
type Files = Vec<(&'static str, Vec<u8>)>;

/// A month: its folder (`YYYY-MM`) and `[from, to)`.
type Month = (String, (Millis, Millis));

/// The derived files of a year: each month's (folder, period, files), then
/// the review's.
pub(super) struct YearFiles {
    pub months: Vec<(String, (Millis, Millis), Files)>,
    pub review: Files,
}

/// `[from, to)` of every UTC month of `year`.
fn months_of(year: i32) -> Result<Vec<Month>, EvidenceError> {
    (1..=12)
        .map(|m| {
            let start = parse_rfc3339(&format!("{year:04}-{m:02}-01T00:00:00Z"))
                .map_err(|e| EvidenceError::Args(format!("year {year}: {e}")))?;
            Ok((format!("{year:04}-{m:02}"), month_of(start)))
        })
        .collect()
}

/// Replays `streams` once and renders the year of `customer`.
pub(super) fn build_year<S: ChunkSource>(
    config: Arc<Config>,
    streams: &mut [S],
    customer: &str,
    year: i32,
    now: Millis,
) -> Result<YearFiles, EvidenceError> {
    let all = months_of(year)?;
    let Replayed {
        mut pipeline,
        mut incidents,
    } = replay::run(config.clone(), streams, None, now, &mut |_| Ok(()))?;
    let highest = pipeline
        .max_ts()
        .ok_or_else(|| EvidenceError::Args("the inputs hold no record".into()))?;
    let months: Vec<_> = all
        .into_iter()
        .filter(|(_, (from, _))| *from <= highest)
        .collect();
    if months.is_empty() {
        return Err(EvidenceError::Args(format!(
            "the inputs end at {} (highest ts read), before {year}",
            format_ms(highest)
        )));
    }
    let mut out = Vec::new();
    let mut reports = Vec::new();
    // The months that ended by the highest ts share one snapshot of the tables.
    let mut tables = Tables::for_sla_report(pipeline.engine())?;
    for (name, (from, to)) in months {
        if to > highest {
            // The month holding the highest ts: its own pack ends at its end.
            let mut fired = Outputs::default();
            (pipeline.finish(Some(to), &mut fired)).map_err(crate::replay::ReplayError::from)?;
            incidents.append(&mut fired.incidents);
            incidents.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
            tables = Tables::for_sla_report(pipeline.engine())?;
        }
        let state = (pipeline.engine(), &tables);
        let (files, sla) = render_month(&config, state, &incidents, customer, (from, to), now)?;
        reports.push((name.clone(), (from, to), sla));
        out.push((name, (from, to), files));
    }
    let review = Review::new(
        &config, &pipeline, &incidents, customer, year, &reports, now,
    );
    let json = json_document(&review)
        .map_err(|e| EvidenceError::Args(format!("cannot encode the review: {e}")))?;
    let page = review_html(&review).into_string();
    Ok(YearFiles {
        months: out,
        review: vec![(REVIEW_JSON, json), (REVIEW_HTML, page.into_bytes())],
    })
}

/// Writes the annual pack of `args.customer` and `args.year` into `args.out`.
pub fn evidence_year(args: &YearArgs) -> Result<Manifest, EvidenceError> {
    let config = Arc::new(Config::load(&args.config)?);
    if config.customer(&args.customer).is_none() {
        return Err(EvidenceError::Args(format!(
            "unknown customer {:?}",
            args.customer
        )));
    }
    let chromium = if args.pdf {
        Some(find_chromium()?)
    } else {
        None
    };
    let inputs = describe_inputs(&args.monitoring, &args.tickets)?;
    let mut streams = replay::open_inputs(&args.monitoring, &args.tickets)?;
    let year = build_year(
        config.clone(),
        &mut streams,
        &args.customer,
        args.year,
        args.now,
    )?;
    let config_ref = file_ref(&args.config)?;
    let mut listed = Vec::new();
    let mut names = Vec::new();
    for (name, period, files) in &year.months {
        let dir = args.out.join(name);
        let outputs = write_all(&dir, files)?;
        let manifest = Manifest::new(
            &config,
            &args.customer,
            *period,
            config_ref.clone(),
            inputs.clone(),
            outputs,
            args.now,
        );
        let doc = manifest.document()?;
        write(&dir.join(MANIFEST), &doc)?;
        for (file, bytes) in files
            .iter()
            .map(|(f, b)| (*f, b.as_slice()))
            .chain([(MANIFEST, doc.as_slice())])
        {
            listed.push(output_entry(&format!("{name}/{file}"), bytes));
        }
        names.push(name.clone());
    }
    listed.extend(write_all(&args.out, &year.review)?);
    if let Some(chromium) = chromium {
        let pdf = print_pdf(&chromium, &args.out, REVIEW_HTML, REVIEW_PDF)?;
        listed.push(output_entry(REVIEW_PDF, &pdf));
    }
    let first = year.months.first().map_or(0, |m| m.1.0);
    let last = year.months.last().map_or(0, |m| m.1.1);
    let mut manifest = Manifest::new(
        &config,
        &args.customer,
        (first, last),
        config_ref,
        inputs,
        listed,
        args.now,
    );
    manifest.months = Some(names);
    write(&args.out.join(MANIFEST), &manifest.document()?)?;
    Ok(manifest)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

fn write_all(
    dir: &Path,
    files: &[(&'static str, Vec<u8>)],
) -> Result<Vec<super::OutputFile>, EvidenceError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut out = Vec::new();
    for (name, bytes) in files {
        write(&dir.join(name), bytes)?;
        out.push(output_entry(name, bytes));
    }
    Ok(out)
}

/// `review.json`: the year month by month (section 15).
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// Customer id.
    pub customer: String,
    /// The year.
    pub year: i32,
    /// When it was made.
    pub generated_at: String,
    /// SHA-256 of the config.
    pub config_sha256: String,
    /// One entry per month of the pack.
    pub months: Vec<ReviewMonth>,
    /// Services with `report.problem_after` or more outages started in the year.
    pub problem_candidates: Vec<ReviewProblem>,
}

/// One month of the review.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Per service.
    pub services: Vec<ReviewService>,
    /// Ticket SLA met % by priority: 100 × met / (met + breached).
    pub tickets: Vec<ReviewTickets>,
    /// The customer's change failure rate (the report's `changes` block).
    pub change_failure_rate_pct: Option<f64>,
    /// The customer's MTTR, seconds.
    pub mttr_s: Option<f64>,
    /// The largest service credit.
    pub credit_pct_max: Option<f64>,
}

/// One service in one month.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewService {
    /// Service id.
    pub service: String,
    /// Contractual availability.
    pub availability_pct: Option<f64>,
    /// Availability with exclusions ignored.
    pub raw_availability_pct: Option<f64>,
    /// Outages started in the month.
    pub outages: u64,
    /// Longest outage, seconds.
    pub longest_outage_s: f64,
    /// Mean time to restore of its outages ended in the month, seconds.
    pub mttr_s: Option<f64>,
    /// Its changes deployed in the month that failed, percent.
    pub change_failure_rate_pct: Option<f64>,
    /// Its service credit.
    pub credit_pct: Option<f64>,
}

/// One priority's ticket SLA results in one month.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewTickets {
    /// `P1`..`P4`.
    pub priority: String,
    /// Response clocks met, percent of those decided.
    pub response_met_pct: Option<f64>,
    /// Resolution clocks met, percent of those decided.
    pub resolution_met_pct: Option<f64>,
}

/// A service whose outages recur over the year.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewProblem {
    /// Service id.
    pub service: String,
    /// Its outage incidents started in the year.
    pub incident_ids: Vec<String>,
}

fn met_pct(met: i64, breached: i64) -> Option<f64> {
    (met + breached > 0).then(|| 100.0 * met as f64 / (met + breached) as f64)
}

impl Review {
    fn new(
        config: &Config,
        pipeline: &crate::pipeline::Pipeline,
        incidents: &[Incident],
        customer: &str,
        year: i32,
        reports: &[(String, (Millis, Millis), SlaReport)],
        now: Millis,
    ) -> Review {
        let engine = pipeline.engine();
        let months = (reports.iter())
            .map(|(month, (from, to), r)| {
                let (from, to) = (*from, *to);
                let services = (r.services.iter())
                    .map(|s| {
                        let changes: Vec<_> = (engine.services().get(&s.service).into_iter())
                            .flat_map(|t| t.changes().iter())
                            .filter(|c| (from..to).contains(&c.ts))
                            .collect();
                        let failed = changes.iter().filter(|c| c.failed()).count();
                        ReviewService {
                            service: s.service.clone(),
                            availability_pct: s.availability_pct,
                            raw_availability_pct: s.raw_availability_pct,
                            outages: s.outages,
                            longest_outage_s: s.longest_outage_s,
                            mttr_s: mttr(
                                incidents,
                                |i| i.service.as_deref() == Some(&s.service),
                                (from, to),
                            ),
                            change_failure_rate_pct: (!changes.is_empty())
                                .then(|| 100.0 * failed as f64 / changes.len() as f64),
                            credit_pct: s.credit_pct,
                        }
                    })
                    .collect();
                let tickets = (r.tickets.by_priority.iter())
                    .map(|p| ReviewTickets {
                        priority: p.priority.as_str().to_owned(),
                        response_met_pct: met_pct(p.response.met, p.response.breached),
                        resolution_met_pct: met_pct(p.resolution.met, p.resolution.breached),
                    })
                    .collect();
                ReviewMonth {
                    month: month.clone(),
                    services,
                    tickets,
                    change_failure_rate_pct: r.changes.failure_rate_pct,
                    mttr_s: r.changes.mttr_s,
                    credit_pct_max: r.credit_pct_max,
                }
            })
            .collect();
        let year_span = (
            reports.first().map_or(0, |(_, p, _)| p.0),
            reports.last().map_or(0, |(_, p, _)| p.1),
        );
        Review {
            customer: customer.to_owned(),
            year,
            generated_at: format_ms(now),
            config_sha256: config.sha256.clone(),
            months,
            problem_candidates: problems(config, incidents, customer, year_span),
        }
    }
}

/// Mean `ended_at − started_at` (s, ms precision) of the outages `mine` picks
/// whose resolve has `ended_at` in `[from, to)`.
fn mttr(
    incidents: &[Incident],
    mine: impl Fn(&Incident) -> bool,
    (from, to): (Millis, Millis),
) -> Option<f64> {
    let restored: Vec<i128> = (incidents.iter())
        .filter(|i| i.rule == Rule::Outage && i.action == Action::Resolve && mine(i))
        .filter_map(|i| {
            let ended = parse_rfc3339(i.ended_at.as_deref()?).ok()?;
            (from <= ended && ended < to).then_some(i128::from(ended - i.started_ms))
        })
        .collect();
    (!restored.is_empty()).then(|| {
        let mean = restored.iter().sum::<i128>() as f64 / restored.len() as f64;
        (mean).round() / 1000.0
    })
}

/// Section 12's problem rule over the year: services with at least
/// `report.problem_after` outage incidents started in it.
fn problems(
    config: &Config,
    incidents: &[Incident],
    customer: &str,
    (from, to): (Millis, Millis),
) -> Vec<ReviewProblem> {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in incidents.iter().filter(|i| {
        i.rule == Rule::Outage
            && i.action == Action::Trigger
            && i.customer == customer
            && (from..to).contains(&i.started_ms)
    }) {
        if let Some(s) = &i.service {
            by.entry(s).or_default().push(i.incident_id.clone());
        }
    }
    let after = config.report.problem_after.get() as usize;
    (by.into_iter())
        .filter(|(_, ids)| ids.len() >= after)
        .map(|(s, ids)| ReviewProblem {
            service: s.to_owned(),
            incident_ids: ids,
        })
        .collect()
}

const CSS: &str = "body{font:13px/1.4 system-ui,sans-serif;margin:24px;color:#111}h1{font-size:20px}h2{font-size:15px;margin-top:22px}table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ccc;padding:3px 6px}td.n,th.n{text-align:right}.bad{color:#b00}.muted{color:#777}svg{display:block;margin:6px 0}@media print{body{margin:0}}";

fn pct(p: Option<f64>) -> String {
    p.map_or("n/a".into(), |p| format!("{p:.3} %"))
}

fn opt(p: Option<f64>) -> String {
    p.map_or("null".into(), |p| p.to_string())
}

/// `review.html`: one self-contained printable page.
fn review_html(r: &Review) -> Markup {
    let services: Vec<&str> = r.months.first().map_or_else(Vec::new, |m| {
        m.services.iter().map(|s| s.service.as_str()).collect()
    });
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Annual service review " (r.customer) " " (r.year) } style { (PreEscaped(CSS)) } }
            body {
                h1 { "Annual service review: " (r.customer) ", " (r.year) }
                p.muted { "Generated " (r.generated_at) " · config SHA-256 " (r.config_sha256) }
                h2 { "Availability by month (contractual; raw with exclusions ignored)" }
                (trend(r, &services))
                table #availability {
                    thead { tr { th { "Month" } @for s in &services { th.n { (s) } th.n.muted { "raw" } } th.n { "Credit" } } }
                    tbody { @for m in &r.months { tr data-month=(m.month) {
                        td { (m.month) }
                        @for s in &m.services {
                            td.n data-service=(s.service) data-field="availability_pct" data-value=(opt(s.availability_pct)) { (pct(s.availability_pct)) }
                            td.n.muted { (pct(s.raw_availability_pct)) }
                        }
                        td.n { (m.credit_pct_max.map_or("n/a".into(), |c| format!("{c} %"))) }
                    } } }
                }
                h2 { "Outages, restore time and changes" }
                table #outages {
                    thead { tr { th { "Month" } th { "Service" } th.n { "Outages" } th.n { "Longest" } th.n { "MTTR" } th.n { "Change failure rate" } } }
                    tbody { @for m in &r.months { @for s in &m.services { tr {
                        td { (m.month) } td { (s.service) } td.n { (s.outages) }
                        td.n { (format!("{:.0} s", s.longest_outage_s)) }
                        td.n { (s.mttr_s.map_or("–".into(), |v| format!("{v:.0} s"))) }
                        td.n { (pct(s.change_failure_rate_pct)) }
                    } } } }
                }
                h2 { "Ticket SLAs met (of decided clocks)" }
                table #tickets {
                    thead { tr { th { "Month" } th { "Priority" } th.n { "Response" } th.n { "Resolution" } } }
                    tbody { @for m in &r.months { @for t in &m.tickets { tr {
                        td { (m.month) } td { (t.priority) } td.n { (pct(t.response_met_pct)) } td.n { (pct(t.resolution_met_pct)) }
                    } } } }
                }
                h2 { "Problem candidates of the year" }
                @if r.problem_candidates.is_empty() { p { "No service had recurring outages." } } @else {
                    ul #problems { @for p in &r.problem_candidates {
                        li { strong { (p.service) } ": " (p.incident_ids.len()) " outages" }
                    } }
                }
            }
        }
    }
}

/// Contractual availability per service per month as inline SVG lines.
fn trend(r: &Review, services: &[&str]) -> Markup {
    let (w, h, pad) = (640.0, 160.0, 30.0);
    let values: Vec<f64> = (r.months.iter())
        .flat_map(|m| m.services.iter().filter_map(|s| s.availability_pct))
        .collect();
    let low = values
        .iter()
        .copied()
        .fold(100.0, f64::min)
        .min(99.0)
        .floor();
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / 11.0;
    let y = |v: f64| pad + (h - 2.0 * pad) * (100.0 - v) / (100.0 - low).max(0.001);
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    html! {
        svg #trend width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) {
            line x1=(pad) x2=(w - pad) y1=(y(100.0)) y2=(y(100.0)) stroke="#ccc" {}
            line x1=(pad) x2=(w - pad) y1=(y(low)) y2=(y(low)) stroke="#ccc" {}
            text x="2" y=(y(100.0) + 4.0) font-size="10" { "100%" }
            text x="2" y=(y(low) + 4.0) font-size="10" { (format!("{low}%")) }
            @for (i, m) in ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().enumerate() {
                text x=(x(i) - 8.0) y=(h - 8.0) font-size="10" fill="#777" { (m) }
            }
            @for (k, s) in services.iter().enumerate() {
                @let points: Vec<String> = (r.months.iter().enumerate())
                    .filter_map(|(i, m)| m.services.get(k).and_then(|v| v.availability_pct).map(|a| format!("{:.1},{:.1}", x(i), y(a))))
                    .collect();
                polyline points=(points.join(" ")) fill="none" stroke=(colors[k % colors.len()]) stroke-width="1.5" {}
                text x=(w - pad + 4.0) y=(pad + 12.0 * k as f64) font-size="10" fill=(colors[k % colors.len()]) { (s) }
            }
        }
    }
}
