//! Hand-worked report figures (issue 32): one day of probes and tickets whose
//! report was computed on paper from contract sections 4, 6 and 10, checked
//! in the evidence pack's JSON, CSV and HTML. No figure here comes from
//! slaflow's own code: a wrong formula (nodata counted as measured, a nearest
//! rank off by one, pending counted as breached) fails this test.

mod common;

use std::fmt::Write as _;

use common::slaflow;
use serde_json::{Value, json};

/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

const CONFIG: &str = r#"
burn_alerts = []

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
availability_target = 99.9
stale_after = "2m"
outage_after = "1m"

[[services]]
id = "api"
customer = "acme"
availability_target = 99.0
stale_after = "2m"
nodata = "down"

[[slas]]
id = "acme-24x7"
customer = "acme"
calendar = "24x7"
kinds = ["incident"]
pause_statuses = ["pending_customer"]
[slas.targets.P1]
response = "15m"
resolution = "4h"
[slas.targets.P2]
response = "1h"
resolution = "8h"
"#;

/// The day, for `web` and `api` alike (one source, a probe a minute):
/// - 00:00–01:00 no probe yet: nodata 3600 s;
/// - 06:00–06:30 down: 1800 s, one outage;
/// - 10:00–10:20 degraded: 1200 s;
/// - 12:00–13:00 maintenance, announced at 11:00: 3600 s;
/// - no probe 18:00–18:09: the 17:59 probe holds until 18:01 (stale_after
///   2m), so nodata 18:01–18:10, 540 s;
/// - the last probe, 23:58, holds until 24:00.
fn monitoring() -> String {
    let mut s = String::new();
    // In time order (one stream: a record behind the watermark would be late).
    for m in (60..=1438).filter(|m| !(1080..=1089).contains(m)) {
        for service in ["web", "api"] {
            let status = match m {
                360..=389 => "down",
                600..=619 => "degraded",
                _ => "up",
            };
            let ts = T0 + m * MIN;
            writeln!(s, r#"{{"event_id":"{service}-{m}","ts":{ts},"service":"{service}","kind":"probe","source":"a","status":"{status}"}}"#).expect("write");
            if m == 660 {
                writeln!(s, r#"{{"event_id":"{service}-mw","ts":{ts},"service":"{service}","kind":"maintenance","start":{},"end":{},"change_id":"CHG-1"}}"#, T0 + 12 * HOUR, T0 + 13 * HOUR).expect("write");
            }
        }
    }
    s
}

/// Tickets (offsets from 2026-11-02T00:00Z, minutes):
/// - OLD (P1) created on 31 October: not in November's report;
/// - T1 (P1): responded after 5 min, resolved after 2 h: both met;
/// - T2 (P1): responded after 20 min, resolved after 6 h: both breached;
/// - T3 (P1): responded after 1 min, paused after 30 min, never resumed: response met, resolution pending;
/// - T4 (P1): responded after 14m59s, resolved after exactly 4 h: both met (a stop at the breach instant is met);
/// - T5 (P2): responded after 30 min, paused from 1 h to 2 h, resolved after 4 h: 3 h of resolution, both met.
fn tickets() -> String {
    let at = |min: f64| T0 + (min * 60_000.0) as i64;
    let rows: [(&str, f64, &str); 20] = [
        (
            "OLD",
            -1500.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P1","kind":"incident""#,
        ),
        ("OLD", -1490.0, r#""type":"responded""#),
        (
            "T1",
            60.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P1","kind":"incident""#,
        ),
        ("T1", 65.0, r#""type":"responded""#),
        ("T1", 180.0, r#""type":"status","status":"resolved""#),
        (
            "T2",
            120.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P1","kind":"incident""#,
        ),
        ("T2", 140.0, r#""type":"responded""#),
        ("T2", 480.0, r#""type":"status","status":"resolved""#),
        (
            "T3",
            1380.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P1","kind":"incident""#,
        ),
        ("T3", 1381.0, r#""type":"responded""#),
        (
            "T3",
            1410.0,
            r#""type":"status","status":"pending_customer""#,
        ),
        (
            "T4",
            240.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P1","kind":"incident""#,
        ),
        ("T4", 254.0 + 59.0 / 60.0, r#""type":"responded""#),
        ("T4", 480.0, r#""type":"status","status":"resolved""#),
        (
            "T5",
            300.0,
            r#""type":"created","customer":"acme","service":"web","priority":"P2","kind":"incident""#,
        ),
        ("T5", 330.0, r#""type":"responded""#),
        (
            "T5",
            360.0,
            r#""type":"status","status":"pending_customer""#,
        ),
        ("T5", 420.0, r#""type":"status","status":"in_progress""#),
        ("T5", 540.0, r#""type":"status","status":"resolved""#),
        ("T5", 541.0, r#""type":"status","status":"closed""#),
    ];
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| at(r.1));
    let mut s = String::new();
    for (i, (ticket, min, body)) in rows.iter().enumerate() {
        writeln!(
            s,
            r#"{{"event_id":"t{i}","ts":{},"ticket":"{ticket}",{body}}}"#,
            at(*min)
        )
        .expect("write");
    }
    s
}

/// November's pack for acme: (report.json, report.csv, report.html).
fn pack() -> (Value, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |f: &str| dir.path().join(f);
    std::fs::write(p("c.toml"), CONFIG).expect("config");
    std::fs::write(p("m.ndjson"), monitoring()).expect("monitoring");
    std::fs::write(p("t.ndjson"), tickets()).expect("tickets");
    let out = slaflow()
        .args([
            "evidence",
            "--customer",
            "acme",
            "--month",
            "2026-11",
            "--config",
        ])
        .arg(p("c.toml"))
        .arg("--monitoring")
        .arg(p("m.ndjson"))
        .arg("--tickets")
        .arg(p("t.ndjson"))
        .arg("--out")
        .arg(p("pack"))
        .output()
        .expect("run evidence");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(p("pack").join(f)).expect(f);
    let report = serde_json::from_str(&read("report.json")).expect("report json");
    (report, read("report.csv"), read("report.html"))
}

const MONTH_S: f64 = 30.0 * 86_400.0;
/// Every second of November but the 86,400 − 3,600 − 540 the day had a probe for.
const NODATA_S: f64 = MONTH_S - 86_400.0 + 3_600.0 + 540.0;

/// The figures worked by hand (section 4 and 10), per service.
fn expected_services() -> Value {
    json!([
        {
            "service": "web", "target_pct": 99.9, "period_s": MONTH_S,
            "maintenance_s": 3600.0, "nodata_s": NODATA_S,
            // measured = period − maintenance − nodata (nodata = "exclude")
            "measured_s": 78_660.0, "downtime_s": 1800.0, "degraded_s": 1200.0, "up_s": 75_660.0,
            // 100 × (78,660 − 1,800) / 78,660
            "availability_pct": 97.711_670_480_549_2, "raw_availability_pct": 97.711_670_480_549_2,
            "budget_s": 78.66, "budget_remaining_s": -1721.34, "met": false,
            "outages": 1, "longest_outage_s": 1800.0, "outside_hours_s": 0.0, "excluded_s": 0.0
        },
        {
            "service": "api", "target_pct": 99.0, "period_s": MONTH_S,
            "maintenance_s": 3600.0, "nodata_s": NODATA_S,
            // nodata = "down": measured = period − maintenance, nodata is downtime
            "measured_s": MONTH_S - 3600.0, "downtime_s": 1800.0 + NODATA_S,
            "degraded_s": 1200.0, "up_s": 75_660.0,
            // 100 × (2,588,400 − 2,511,540) / 2,588,400
            "availability_pct": 2.969_401_947_148_818, "raw_availability_pct": 2.969_401_947_148_818,
            "budget_s": 25_884.0, "budget_remaining_s": 25_884.0 - 1800.0 - NODATA_S, "met": false,
            "outside_hours_s": 0.0, "excluded_s": 0.0
        }
    ])
}

/// The ticket figures worked by hand (section 6): nearest rank over stopped
/// clocks, sorted[ceil(p × n) − 1].
fn expected_tickets() -> Value {
    json!([
        {"priority": "P1", "count": 4,
         // stopped: 60, 300, 899, 1200 → p50 = [1] = 300, p90 = [3] = 1200
         "response": {"target_s": 900.0, "met": 3, "breached": 1, "pending": 0, "p50_s": 300.0, "p90_s": 1200.0},
         // stopped: 7200, 14400, 21600 (T3 paused: pending) → p50 = [1], p90 = [2]
         "resolution": {"target_s": 14_400.0, "met": 2, "breached": 1, "pending": 1, "p50_s": 14_400.0, "p90_s": 21_600.0}},
        {"priority": "P2", "count": 1,
         "response": {"target_s": 3600.0, "met": 1, "breached": 0, "pending": 0, "p50_s": 1800.0, "p90_s": 1800.0},
         "resolution": {"target_s": 28_800.0, "met": 1, "breached": 0, "pending": 0, "p50_s": 10_800.0, "p90_s": 10_800.0}}
    ])
}

/// `actual` holds every field of `expected` with the same value (numbers
/// within 1e-9 relative: the JSON writer may round a float's last digit).
fn assert_fields(what: &str, expected: &Value, actual: &Value) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(_)) => {
            for (k, v) in e {
                assert_fields(&format!("{what}.{k}"), v, &actual[k]);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (
                e.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (e - a).abs() <= 1e-9 * e.abs().max(1.0),
                "{what}: expected {e}, got {a}"
            );
        }
        _ => assert_eq!(expected, actual, "{what}"),
    }
}

#[test]
fn a_hand_worked_month_in_json_csv_and_html() {
    let (report, csv, html) = pack();
    let services = report["services"].as_array().expect("services");
    for e in expected_services().as_array().expect("list") {
        let id = e["service"].as_str().expect("id");
        let s = services
            .iter()
            .find(|s| s["service"] == id)
            .expect("service in the report");
        assert_fields(&format!("services.{id}"), e, s);
    }
    let by_priority = report["tickets"]["by_priority"]
        .as_array()
        .expect("by_priority");
    for e in expected_tickets().as_array().expect("list") {
        let p = &e["priority"];
        let row = by_priority
            .iter()
            .find(|r| r["priority"] == *p)
            .expect("priority row");
        assert_fields(&format!("tickets.{p}"), e, row);
    }
    // Priorities without tickets: zero counts, no percentiles.
    for row in by_priority
        .iter()
        .filter(|r| r["priority"] == "P3" || r["priority"] == "P4")
    {
        assert_eq!(row["count"], 0, "{row}");
        assert_eq!(row["resolution"]["p50_s"], Value::Null, "{row}");
    }

    // CSV: the same figures, one row per service.
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let web: Vec<&str> = lines
        .find(|l| l.split(',').nth(3) == Some("web"))
        .expect("web row")
        .split(',')
        .collect();
    let web_expected = &expected_services()[0];
    for (k, v) in web_expected.as_object().expect("object") {
        let at = header
            .iter()
            .position(|h| h == k)
            .unwrap_or_else(|| panic!("no column {k}"));
        let cell = web[at];
        match v {
            Value::Number(n) => {
                let (e, a) = (
                    n.as_f64().unwrap_or(f64::NAN),
                    cell.parse::<f64>().expect("number"),
                );
                assert!(
                    (e - a).abs() <= 1e-9 * e.abs().max(1.0),
                    "csv {k}: expected {e}, got {cell}"
                );
            }
            Value::Bool(b) => assert_eq!(cell, b.to_string(), "csv {k}"),
            Value::String(s) => assert_eq!(cell, s, "csv {k}"),
            _ => unreachable!("no other kind of value in the expectations"),
        }
    }

    // HTML: what the customer reads.
    let row_at = html.find(r#"<tr data-service="web">"#).expect("web row");
    let row = &html[row_at..row_at + html[row_at..].find("</tr>").expect("row end")];
    for shown in [">97.712 %<", ">missed<", ">30m 0s<", ">1h 0m 0s<", ">1<"] {
        assert!(row.contains(shown), "web row lacks {shown}: {row}");
    }
    let p1_at = html.find(r#"<tr data-priority="P1">"#).expect("P1 row");
    let p1 = &html[p1_at..p1_at + html[p1_at..].find("</tr>").expect("row end")];
    let cells: Vec<&str> = p1
        .split("</td>")
        .filter_map(|c| c.rsplit('>').next())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "P1", "4", "15m 0s", "3", "1", "0", "5m 0s", "20m 0s", "4h 0m 0s", "2", "1", "1",
            "4h 0m 0s", "6h 0m 0s"
        ],
        "{p1}"
    );
}
