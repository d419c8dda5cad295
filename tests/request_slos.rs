//! Request-based SLOs (contract section 14), worked by hand: one day of
//! counter samples every minute from two load balancers, an error burst, a
//! counter reset, maintenance, an exclusion announced after the fact, and
//! malformed, duplicate and late samples. Replay gives exactly the `slos`
//! block and the `slo_burn_rate` incidents computed below.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::Inputs;
use serde_json::Value;

const CONFIG: &str = r#"
[[burn_alerts]]
name = "fast"
long = "30m"
short = "5m"
factor = 10
severity = "critical"

[[customers]]
id = "acme"

[[services]]
id = "api"
customer = "acme"

[[slos]]
id = "api-errors"
service = "api"
objective = 99.0
window = "28d"
total = "http_requests_total"
bad = "http_requests_errors_total"

[[slos]]
id = "api-latency"
service = "api"
objective = 90.0
window = "month"
total = "http_requests_total"
good = "http_requests_fast_total"
"#;

const DAY: i64 = 1_793_750_400_000; // 2026-11-04T00:00:00Z
const MIN: i64 = 60_000;

/// The day, minute by minute (sample at minute m has ts = DAY + m min):
/// - lb-1: `http_requests_total` +100 a minute, `…_fast_total` +95,
///   `…_errors_total` +1, but +50 at minutes 601..=620 (10:01-10:20);
/// - lb-2: `http_requests_total` +50 a minute, reset at 12:00 (m = 720) to 30;
///   `…_errors_total` stays 0;
/// - maintenance [14:00, 14:30) announced at 13:30; exclusion EXC-1 for
///   [16:00, 16:10) announced at 18:00;
/// - then a negative value and a sample without `name` (malformed), a repeated
///   event id (duplicate) and a sample dated 00:01 (late).
fn monitoring(path: &Path) {
    let mut s = String::new();
    let mut n = 0;
    let mut line = |s: &mut String, ts: i64, body: &str| {
        n += 1;
        writeln!(
            s,
            r#"{{"event_id":"e{n}","ts":{ts},"service":"api",{body}}}"#
        )
        .expect("write");
    };
    let counter = |source: &str, name: &str, value: i64| {
        format!(r#""kind":"counter","source":"{source}","name":"{name}","value":{value}"#)
    };
    let mut errors = 0;
    for m in 0..1440 {
        let ts = DAY + m * MIN;
        if m > 0 {
            errors += if (601..=620).contains(&m) { 50 } else { 1 };
        }
        let lb2 = if m < 720 { 50 * m } else { 30 + 50 * (m - 720) };
        line(&mut s, ts, &counter("lb-1", "http_requests_total", 100 * m));
        line(
            &mut s,
            ts,
            &counter("lb-1", "http_requests_fast_total", 95 * m),
        );
        line(
            &mut s,
            ts,
            &counter("lb-1", "http_requests_errors_total", errors),
        );
        line(&mut s, ts, &counter("lb-2", "http_requests_total", lb2));
        line(
            &mut s,
            ts,
            &counter("lb-2", "http_requests_errors_total", 0),
        );
        if m == 810 {
            let (a, b) = (DAY + 840 * MIN, DAY + 870 * MIN);
            line(
                &mut s,
                ts,
                &format!(r#""kind":"maintenance","start":{a},"end":{b}"#),
            );
        }
        if m == 1080 {
            let (a, b) = (DAY + 960 * MIN, DAY + 970 * MIN);
            line(
                &mut s,
                ts,
                &format!(
                    r#""kind":"exclusion","exclusion_id":"EXC-1","start":{a},"end":{b},"reason":"customer load test","approved_by":"j.doe""#
                ),
            );
        }
    }
    let end = DAY + 1439 * MIN;
    line(&mut s, end, &counter("lb-1", "http_requests_total", -5));
    line(&mut s, end, r#""kind":"counter","source":"lb-1","value":1"#);
    writeln!(
        s,
        r#"{{"event_id":"e1","ts":{end},"service":"api",{}}}"#,
        counter("lb-1", "http_requests_total", 1)
    )
    .expect("write");
    line(
        &mut s,
        DAY + MIN,
        &counter("lb-1", "http_requests_total", 1),
    );
    std::fs::write(path, s).expect("write monitoring");
}

fn slo<'a>(report: &'a Value, id: &str) -> &'a Value {
    (report["slos"].as_array().expect("slos").iter())
        .find(|s| s["slo"] == id)
        .expect("slo in report")
}

fn close(got: &Value, want: f64) {
    let got = got.as_f64().expect("a number");
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

#[test]
fn a_day_of_counters_gives_the_slos_block_and_burn_alerts() {
    let inputs = Inputs::new(CONFIG, monitoring);
    let day = [
        "--from",
        "2026-11-04",
        "--to",
        "2026-11-05",
        "--now",
        "2026-11-06",
    ];
    inputs.run_to("replay", "out", &day);
    let json = |f: &str| inputs.json(&format!("out/{f}"));

    let summary = json("summary.json");
    assert_eq!(summary["deadletter"]["malformed"], 2, "{summary}");
    assert_eq!(summary["deadletter"]["duplicate"], 1, "{summary}");
    assert_eq!(summary["deadletter"]["late"], 1, "{summary}");

    let report = json("report-acme.json");
    // 1,439 increases a series; 30 dated in maintenance (14:00-14:29) and 10
    // in the exclusion (16:00-16:09) do not count: 1,399 a series.
    // lb-1: 1,399 × 100; lb-2: 1,399 × 50, less 20 for the reset (30, not 50).
    let total = 139_900 + 69_930;
    // Errors: 1,419 × 1 + 20 × 50 over the day, less the 40 dropped (each 1).
    let bad = 2_379;
    let errors = slo(&report, "api-errors");
    assert_eq!(errors["service"], "api");
    assert_eq!(errors["objective_pct"], 99.0);
    assert_eq!(errors["window"], "28d");
    assert_eq!(errors["total"], total, "integer counters give integer sums");
    assert_eq!(errors["bad"], bad);
    close(
        &errors["ratio_pct"],
        100.0 * (total - bad) as f64 / total as f64,
    );
    assert_eq!(errors["met"], false);
    close(&errors["budget_events"], 2_098.3);
    close(&errors["budget_remaining_events"], 2_098.3 - bad as f64);

    // Good = lb-1's fast requests: 1,399 × 95; bad = total − good.
    let good = 132_905;
    let latency = slo(&report, "api-latency");
    assert_eq!(latency["window"], "month");
    assert_eq!(
        (latency["total"].clone(), latency["bad"].clone()),
        (total.into(), (total - good).into())
    );
    close(&latency["ratio_pct"], 100.0 * good as f64 / total as f64);
    assert_eq!(latency["met"], false);
    assert_eq!(latency["budget_events"], 20_983);
    assert_eq!(latency["budget_remaining_events"], 20_983 - (total - good));

    // Burn alert "fast" (30m, 5m, 10x of a 1 % budget) on api-errors: the 30m
    // window needs 9 burst samples (30 + 49k ≥ 450), the 5m one 2 (5 + 49k ≥ 75):
    // trigger at the 10:10 close, resolve at 10:25 (one burst sample left in 5m).
    let text = inputs.text("out/incidents.ndjson");
    let incidents: Vec<Value> = (text.lines())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let burns: Vec<(&str, &str, &str)> = (incidents.iter())
        .filter(|i| i["rule"] == "slo_burn_rate")
        .map(|i| {
            (
                i["action"].as_str().unwrap_or(""),
                i["at"].as_str().unwrap_or(""),
                i["details"]["slo"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        burns,
        vec![
            ("trigger", "2026-11-04T10:10:00.000Z", "api-errors"),
            ("resolve", "2026-11-04T10:25:00.000Z", "api-errors"),
        ]
    );
    let trigger = &incidents
        .iter()
        .find(|i| i["rule"] == "slo_burn_rate")
        .expect("trigger");
    assert_eq!(trigger["service"], "api");
    assert_eq!(trigger["severity"], "critical");
    assert_eq!(trigger["details"]["alert"], "fast");
    // At 10:10 the 30m window holds 21 normal and 9 burst samples of lb-1's
    // errors over 30 × 150 requests; the 5m window only burst samples.
    close(
        &trigger["details"]["long_burn"],
        (21.0 + 450.0) / 4_500.0 / 0.01,
    );
    close(&trigger["details"]["short_burn"], 250.0 / 750.0 / 0.01);
    assert_eq!(report["incidents"]["by_rule"]["slo_burn_rate"], 1);
    assert_eq!(incidents.len(), 2, "nothing else fires: {text}");

    // The month's evidence pack: the same counts (nothing else in November),
    // shown on report.html, and verified from the inputs.
    let month = ["--customer", "acme", "--month", "2026-11"];
    inputs.run_to("evidence", "pack", &month);
    let pack = inputs.json("pack/report.json");
    assert_eq!(pack["slos"], report["slos"]);
    let html = inputs.text("pack/report.html");
    for needle in [
        r#"<tr data-slo="api-errors">"#.to_owned(),
        format!(r#"data-field="total" data-value="{total}""#),
        format!(r#"data-field="bad" data-value="{bad}""#),
        r#"data-field="budget_events" data-value="2098.3""#.to_owned(),
        format!(r#"data-field="bad" data-value="{}""#, total - good),
    ] {
        assert!(html.contains(&needle), "report.html lacks {needle}");
    }
    inputs.verify("pack");
}
