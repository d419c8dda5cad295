//! OpenSLO v1 (contract section 14): `slaflow openslo import` turns `SLO`
//! documents into `[[slos]]`, `slaflow openslo export` the config's `[[slos]]`
//! into `Service` and `SLO` documents that import back to the same.
//!
//! Only what slaflow computes exactly is accepted: occurrence budgeting of a
//! ratio of counters read by plain metric names, one objective, a rolling
//! window or the UTC calendar month. Everything else is refused with the file,
//! document, field and reason, never approximated.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_norway::Value;

use crate::config::{Config, SloConfig, SloSide, SloWindow};

const API_VERSION: &str = "openslo/v1";
const DAY_MS: i64 = 86_400_000;

/// One `[[slos]]` entry as import writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedSlo {
    /// `metadata.name`.
    pub id: String,
    /// `spec.service`.
    pub service: String,
    /// Percent.
    pub objective: f64,
    /// A humantime duration, or `"month"`.
    pub window: String,
    /// The total counter.
    pub total: String,
    /// `("bad" | "good", counter)`.
    pub side: (&'static str, String),
}

impl ImportedSlo {
    /// The entry as TOML.
    pub fn toml(&self) -> String {
        // A JSON string is a TOML basic string.
        let q = |s: &str| serde_json::Value::from(s).to_string();
        // Debug keeps the decimal point TOML needs for a float (`99.0`).
        format!(
            "[[slos]]\nid = {}\nservice = {}\nobjective = {:?}\nwindow = {}\ntotal = {}\n{} = {}\n",
            q(&self.id),
            q(&self.service),
            self.objective,
            q(&self.window),
            q(&self.total),
            self.side.0,
            q(&self.side.1),
        )
    }
}

/// Where a refusal is: file, document (1-based) and SLO name when known.
struct At<'a> {
    file: &'a str,
    doc: usize,
    name: Option<&'a str>,
}

impl At<'_> {
    fn refuse(&self, field: &str, reason: impl std::fmt::Display) -> String {
        let name = self.name.map_or(String::new(), |n| format!(" (SLO {n:?})"));
        format!(
            "{}: document {}{name}: {field}: {reason}",
            self.file, self.doc
        )
    }
}

/// Reads every `SLO` document of `files` (YAML streams; a document may also
/// be a list of objects) into `[[slos]]` entries; `Err` lists every refusal.
pub fn import(files: &[impl AsRef<Path>]) -> Result<Vec<ImportedSlo>, Vec<String>> {
    let mut docs: Vec<(String, usize, Value)> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let path = f.as_ref().display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{path}: cannot read: {e}"));
                continue;
            }
        };
        for (i, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
            match serde::Deserialize::deserialize(doc) {
                Ok(Value::Sequence(items)) => {
                    docs.extend(items.into_iter().map(|v| (path.clone(), i + 1, v)))
                }
                Ok(Value::Null) => {}
                Ok(v) => docs.push((path.clone(), i + 1, v)),
                Err(e) => errors.push(format!("{path}: document {}: not YAML: {e}", i + 1)),
            }
        }
    }
    // SLIs by name, for `indicatorRef`.
    let slis: BTreeMap<&str, &Value> = (docs.iter())
        .filter(|(_, _, v)| v["kind"].as_str() == Some("SLI"))
        .filter_map(|(_, _, v)| Some((v["metadata"]["name"].as_str()?, v)))
        .collect();
    let mut out = Vec::new();
    for (file, doc, v) in &docs {
        let at = At {
            file,
            doc: *doc,
            name: v["metadata"]["name"].as_str(),
        };
        match v["kind"].as_str() {
            Some("SLO") => match slo(&at, v, &slis) {
                Ok(s) => out.push(s),
                Err(e) => errors.push(e),
            },
            // Services, SLIs (read through indicatorRef), data sources and
            // alerting objects carry nothing [[slos]] holds.
            Some(_) => {}
            None => errors.push(at.refuse("kind", "missing: not an OpenSLO object")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One `SLO` document.
fn slo(at: &At, v: &Value, slis: &BTreeMap<&str, &Value>) -> Result<ImportedSlo, String> {
    if v["apiVersion"].as_str() != Some(API_VERSION) {
        return Err(at.refuse(
            "apiVersion",
            format!("{:?} is not {API_VERSION}", v["apiVersion"]),
        ));
    }
    let id = at
        .name
        .ok_or_else(|| at.refuse("metadata.name", "missing"))?;
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(at.refuse("metadata.name", "not an id of [A-Za-z0-9_.-]"));
    }
    let spec = &v["spec"];
    let service = spec["service"]
        .as_str()
        .ok_or_else(|| at.refuse("spec.service", "missing"))?;
    match spec["budgetingMethod"].as_str() {
        Some("Occurrences") => {}
        Some(m) => {
            return Err(at.refuse(
                "spec.budgetingMethod",
                format!(
                    "{m} is not expressible: slaflow budgets request SLOs by occurrences (events)"
                ),
            ));
        }
        None => return Err(at.refuse("spec.budgetingMethod", "missing (Occurrences)")),
    }
    let indicator = match (&spec["indicator"], spec["indicatorRef"].as_str()) {
        (Value::Null, Some(r)) => {
            let sli = slis.get(r).ok_or_else(|| {
                at.refuse(
                    "spec.indicatorRef",
                    format!("no SLI named {r:?} in the files given"),
                )
            })?;
            &sli["spec"]
        }
        (Value::Null, None) => return Err(at.refuse("spec.indicator", "missing (or indicatorRef)")),
        (inline, _) => &inline["spec"],
    };
    let (total, side) = ratio(at, indicator)?;
    Ok(ImportedSlo {
        id: id.to_owned(),
        service: service.to_owned(),
        objective: objective(at, &spec["objectives"])?,
        window: window(at, &spec["timeWindow"])?,
        total,
        side,
    })
}

/// The counters of a `ratioMetric` indicator: (total, (bad | good, name)).
fn ratio(at: &At, indicator: &Value) -> Result<(String, (&'static str, String)), String> {
    let field = "spec.indicator.spec";
    if !indicator["thresholdMetric"].is_null() {
        return Err(at.refuse(
            &format!("{field}.thresholdMetric"),
            "not expressible: slaflow counts good and bad events (ratioMetric)",
        ));
    }
    let r = &indicator["ratioMetric"];
    if r.is_null() {
        return Err(at.refuse(&format!("{field}.ratioMetric"), "missing"));
    }
    if r["counter"].as_bool() != Some(true) {
        return Err(at.refuse(
            &format!("{field}.ratioMetric.counter"),
            "must be true: slaflow reads cumulative counters, not gauges",
        ));
    }
    if !r["raw"].is_null() {
        return Err(at.refuse(
            &format!("{field}.ratioMetric.raw"),
            "not expressible: a precomputed ratio has no events to count",
        ));
    }
    let query = |side: &str| -> Result<Option<String>, String> {
        let m = &r[side];
        if m.is_null() {
            return Ok(None);
        }
        let f = format!("{field}.ratioMetric.{side}.metricSource.spec.query");
        let q = m["metricSource"]["spec"]["query"]
            .as_str()
            .ok_or_else(|| at.refuse(&f, "missing"))?;
        if !plain_metric_name(q) {
            return Err(at.refuse(
                &f,
                format!("{q:?} is not a plain metric name: map the series to a counter with [[ingest.prometheus.counters]] and name that counter here"),
            ));
        }
        Ok(Some(q.to_owned()))
    };
    let total = query("total")?
        .ok_or_else(|| at.refuse(&format!("{field}.ratioMetric.total"), "missing"))?;
    let side = match (query("bad")?, query("good")?) {
        (Some(b), None) => ("bad", b),
        (None, Some(g)) => ("good", g),
        _ => {
            return Err(at.refuse(
                &format!("{field}.ratioMetric"),
                "needs exactly one of `good` and `bad`",
            ));
        }
    };
    Ok((total, side))
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn plain_metric_name(q: &str) -> bool {
    let mut b = q.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// The one objective's target in percent.
fn objective(at: &At, objectives: &Value) -> Result<f64, String> {
    let list = objectives
        .as_sequence()
        .ok_or_else(|| at.refuse("spec.objectives", "missing"))?;
    let [o] = list.as_slice() else {
        return Err(at.refuse(
            "spec.objectives",
            format!(
                "{} objectives: slaflow holds one per SLO (write one document per objective)",
                list.len()
            ),
        ));
    };
    let pct = match (o["target"].as_f64(), o["targetPercent"].as_f64()) {
        (Some(t), None) => t * 100.0,
        (None, Some(p)) => p,
        (Some(_), Some(_)) => {
            return Err(at.refuse(
                "spec.objectives[0]",
                "give `target` or `targetPercent`, not both",
            ));
        }
        (None, None) => {
            return Err(at.refuse("spec.objectives[0]", "needs `target` or `targetPercent`"));
        }
    };
    if !(pct > 0.0 && pct < 100.0) {
        return Err(at.refuse("spec.objectives[0]", format!("{pct} % is not in (0, 100)")));
    }
    Ok(pct)
}

/// The one time window: a rolling duration, or the calendar month in UTC.
fn window(at: &At, windows: &Value) -> Result<String, String> {
    let list = windows
        .as_sequence()
        .ok_or_else(|| at.refuse("spec.timeWindow", "missing"))?;
    let [w] = list.as_slice() else {
        return Err(at.refuse("spec.timeWindow", "needs exactly one window"));
    };
    let duration = w["duration"]
        .as_str()
        .ok_or_else(|| at.refuse("spec.timeWindow[0].duration", "missing"))?;
    let (n, unit) = shorthand(duration).ok_or_else(|| {
        at.refuse(
            "spec.timeWindow[0].duration",
            format!("{duration:?} is not [0-9]+[mhdwMQY]"),
        )
    })?;
    let rolling = w["isRolling"].as_bool().unwrap_or(w["calendar"].is_null());
    if rolling {
        // OpenSLO's month, quarter and year are 30, 90 and 365 days.
        let days = |d: u64| format!("{}d", n * d);
        return Ok(match unit {
            'M' => days(30),
            'Q' => days(90),
            'Y' => days(365),
            _ if n == 0 => {
                return Err(at.refuse("spec.timeWindow[0].duration", "must be longer than 0"));
            }
            u => format!("{n}{u}"),
        });
    }
    let tz = w["calendar"]["timeZone"].as_str().unwrap_or("UTC");
    let start = w["calendar"]["startTime"].as_str().unwrap_or("");
    let month_start = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(start, f).ok())
        .is_some_and(|t| {
            use chrono::{Datelike, Timelike};
            t.day() == 1 && t.num_seconds_from_midnight() == 0
        });
    if (n, unit) != (1, 'M') || !matches!(tz, "UTC" | "Etc/UTC") || !month_start {
        return Err(at.refuse(
            "spec.timeWindow[0]",
            format!("calendar window {duration} from {start:?} in {tz}: slaflow's calendar window is the UTC month (1M, UTC, starting on a 1st at 00:00:00)"),
        ));
    }
    Ok("month".into())
}

/// `[0-9]+[mhdwMQY]`.
fn shorthand(s: &str) -> Option<(u64, char)> {
    let unit = s.chars().last()?;
    let n = s[..s.len() - unit.len_utf8()].parse().ok()?;
    "mhdwMQY".contains(unit).then_some((n, unit))
}

/// The config's `[[slos]]` as OpenSLO v1 YAML: one `Service` per service an
/// SLO reads, then one `SLO` per entry. `Err` names an SLO it cannot express.
pub fn export(config: &Config) -> Result<String, String> {
    let mut out = String::new();
    let mut services: Vec<&str> = config.slos.iter().map(SloConfig::service).collect();
    services.sort_unstable();
    services.dedup();
    for s in services {
        let doc = serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": { "name": s },
            "spec": { "description": format!("slaflow service {s}") },
        });
        push_doc(&mut out, &doc)?;
    }
    for slo in &config.slos {
        push_doc(&mut out, &slo_document(slo)?)?;
    }
    Ok(out)
}

fn push_doc(out: &mut String, doc: &serde_json::Value) -> Result<(), String> {
    let yaml = serde_norway::to_string(doc).map_err(|e| format!("YAML: {e}"))?;
    let _ = write!(out, "---\n{yaml}");
    Ok(())
}

/// One `[[slos]]` entry as an `SLO` document.
fn slo_document(slo: &SloConfig) -> Result<serde_json::Value, String> {
    let refuse = |what: String| format!("SLO {:?}: {what}", slo.id());
    let metric = |name: &str| -> Result<serde_json::Value, String> {
        if !plain_metric_name(name) {
            return Err(refuse(format!(
                "counter {name:?} is not a plain metric name OpenSLO can query"
            )));
        }
        Ok(serde_json::json!({ "metricSource": { "type": "slaflow", "spec": { "query": name } } }))
    };
    let mut ratio = serde_json::json!({ "counter": true, "total": metric(&slo.total)? });
    match slo.side() {
        SloSide::Bad(b) => ratio["bad"] = metric(b)?,
        SloSide::Good(g) => ratio["good"] = metric(g)?,
    }
    let window = match &slo.window {
        SloWindow::Month => serde_json::json!({
            "duration": "1M",
            "isRolling": false,
            "calendar": { "startTime": "2020-01-01 00:00:00", "timeZone": "UTC" },
        }),
        SloWindow::Rolling(d) => {
            let unit = [(DAY_MS, 'd'), (3_600_000, 'h'), (60_000, 'm')]
                .into_iter()
                .find(|(ms, _)| d.ms % ms == 0)
                .ok_or_else(|| {
                    refuse(format!(
                        "window {} is not a whole number of minutes",
                        d.text
                    ))
                })?;
            serde_json::json!({ "duration": format!("{}{}", d.ms / unit.0, unit.1), "isRolling": true })
        }
    };
    Ok(serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": "SLO",
        "metadata": { "name": slo.id() },
        "spec": {
            "service": slo.service(),
            "indicator": {
                "metadata": { "name": format!("{}-sli", slo.id()) },
                "spec": { "ratioMetric": ratio },
            },
            "timeWindow": [window],
            "budgetingMethod": "Occurrences",
            "objectives": [{ "displayName": slo.id(), "targetPercent": slo.objective }],
        },
    }))
}
