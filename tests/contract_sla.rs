//! The SLA as the contract states it (contract section 13), worked by hand: one
//! Wednesday with an office-hours service and a 24x7 twin, outages inside and
//! outside hours, maintenance, a gap without data, an exclusion announced
//! after the outage and then narrowed by a second version, one overlapping
//! maintenance, and credit tiers. Replay, the HTML page and the evidence pack
//! give exactly the figures computed below; `slaflow verify` verifies the pack.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{Inputs, slaflow};
use serde_json::Value;

const CONFIG: &str = r#"
burn_alerts = []

[[customers]]
id = "acme"

# Wednesdays 09:00-17:00 in Paris: 08:00-16:00Z in November.
[[calendars]]
id = "office"
timezone = "Europe/Paris"
[calendars.hours]
wed = "09:00-17:00"

[[services]]
id = "office"
customer = "acme"
availability_target = 99.0
service_hours = "office"

[[services]]
id = "twin"
customer = "acme"
availability_target = 99.0

[[credits]]
customer = "acme"
tiers = [{ below = 99.0, credit_pct = 10 }, { below = 97.0, credit_pct = 20 }, { below = 90.0, credit_pct = 50 }]
"#;

const DAY: i64 = 1_793_750_400_000; // 2026-11-04T00:00:00Z, a Wednesday
const MIN: i64 = 60_000;

fn at(h: i64, m: i64) -> i64 {
    DAY + (h * 60 + m) * MIN
}

/// Probes every minute of the day on both services: down 02:00-02:30,
/// 10:00-10:40 and 14:00-14:40 (maintenance 14:00-14:30, announced 13:30);
/// none 15:00-15:29 (nodata from 15:01, when the 14:59 probe goes stale).
/// EXC-1 for [09:50, 10:40) at 12:00, narrowed to [10:00, 10:30) at 13:00 (both
/// services); EXC-2 for [14:20, 14:40) at 14:50 (office only).
fn monitoring(path: &Path) {
    let mut s = String::new();
    let mut n = 0;
    let mut line = |s: &mut String, ts: i64, body: &str| {
        n += 1;
        writeln!(s, r#"{{"event_id":"e{n}","ts":{ts},{body}}}"#).expect("write");
    };
    for minute in 0..1440 {
        let ts = DAY + minute * MIN;
        let (h, m) = (minute / 60, minute % 60);
        if h == 15 && m < 30 {
            continue;
        }
        let down = (h == 2 && m < 30) || (h == 10 && m < 40) || (h == 14 && m < 40);
        let status = if down { "down" } else { "up" };
        for svc in ["office", "twin"] {
            line(
                &mut s,
                ts,
                &format!(r#""service":"{svc}","kind":"probe","source":"a","status":"{status}""#),
            );
            let exclusion = |id: &str, from: i64, to: i64| {
                format!(
                    r#""service":"{svc}","kind":"exclusion","exclusion_id":"{id}","start":{from},"end":{to},"reason":"customer firewall change","approved_by":"j.doe""#
                )
            };
            match (h, m) {
                (12, 0) => line(&mut s, ts, &exclusion("EXC-1", at(9, 50), at(10, 40))),
                (13, 0) => line(&mut s, ts, &exclusion("EXC-1", at(10, 0), at(10, 30))),
                (13, 30) => line(
                    &mut s,
                    ts,
                    &format!(
                        r#""service":"{svc}","kind":"maintenance","start":{},"end":{},"change_id":"CHG-9""#,
                        at(14, 0),
                        at(14, 30)
                    ),
                ),
                (14, 50) if svc == "office" => {
                    line(&mut s, ts, &exclusion("EXC-2", at(14, 20), at(14, 40)))
                }
                _ => {}
            }
        }
    }
    std::fs::write(path, s).expect("write monitoring");
}

/// `100 × available / measured`, both in seconds, computed as reports do (in ms).
fn pct(available_s: i64, measured_s: i64) -> f64 {
    100.0 * (available_s * 1000) as f64 / (measured_s * 1000) as f64
}

/// serde_json (without `float_roundtrip`) may read a float one ulp off what
/// was written: percentages are compared to 1e-9.
fn assert_pct(got: &Value, want: f64) {
    let got = got.as_f64().expect("a number");
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

fn service<'a>(report: &'a Value, id: &str) -> &'a Value {
    (report["services"].as_array().expect("services").iter())
        .find(|s| s["service"] == id)
        .expect("service in report")
}

/// The figures of section 13 for the day (and, with only Wednesday hours, for
/// the month: the other Wednesdays are in-hours nodata, the rest outside).
/// `tail` adjusts the twin's accounted time at the day's end: −60 when the
/// period runs past midnight, where the 23:59 probe holds until 00:01 (the
/// office service is outside hours then).
fn check_figures(report: &Value, days_outside: f64, extra_nodata: f64, tail: i64) {
    let office = service(report, "office");
    // Outside hours: [00:00, 08:00) and [16:00, 24:00).
    assert_eq!(office["outside_hours_s"], 57_600.0 + days_outside);
    assert_eq!(office["maintenance_s"], 1800.0);
    // EXC-1 [10:00, 10:30) and EXC-2's [14:30, 14:40) (its first half is maintenance).
    assert_eq!(office["excluded_s"], 2400.0);
    assert_eq!(office["nodata_s"], 1740.0 + extra_nodata);
    // In hours and counted: only [10:30, 10:40) given back by EXC-1's second version.
    assert_eq!(office["downtime_s"], 600.0);
    assert_eq!(office["up_s"], 22_260.0);
    assert_eq!(office["measured_s"], 22_860.0);
    assert_pct(&office["availability_pct"], pct(22_260, 22_860));
    // Raw: the excluded down time counts again ([10:00, 10:40) and [14:30, 14:40)).
    assert_pct(&office["raw_availability_pct"], pct(22_260, 25_260));
    assert_eq!(office["budget_s"], 228.6);
    assert_eq!(office["budget_remaining_s"], -371.4);
    assert_eq!(office["met"], false);
    // Outages are operational: the one at 02:00 outside hours still counts.
    assert_eq!(office["outages"], 3);
    assert_eq!(office["longest_outage_s"], 2400.0);
    assert_eq!(
        office["credit_pct"], 10.0,
        "97.38 % is below 99, not below 97"
    );
    let excl = office["exclusions"].as_array().expect("exclusions");
    assert_eq!(excl.len(), 2);
    assert_eq!(excl[0]["exclusion_id"], "EXC-1");
    assert_eq!(excl[0]["start"], "2026-11-04T10:00:00.000Z");
    assert_eq!(excl[0]["end"], "2026-11-04T10:30:00.000Z");
    assert_eq!(excl[0]["versions"], 2);
    assert_eq!(excl[0]["excluded_s"], 1800.0);
    assert_eq!(excl[0]["reason"], "customer firewall change");
    assert_eq!(excl[0]["approved_by"], "j.doe");
    assert_eq!(excl[1]["exclusion_id"], "EXC-2");
    assert_eq!(
        (excl[1]["excluded_s"].clone(), excl[1]["versions"].clone()),
        (600.0.into(), 1.into())
    );

    let twin = service(report, "twin");
    assert_eq!(twin["outside_hours_s"], 0.0);
    assert_eq!(twin["excluded_s"], 1800.0);
    assert_eq!(
        twin["nodata_s"],
        1740.0 + extra_nodata + days_outside + tail as f64
    );
    // [02:00, 02:30), [10:30, 10:40), [14:30, 14:40).
    assert_eq!(twin["downtime_s"], 3000.0);
    assert_eq!(twin["measured_s"], (81_060 - tail) as f64);
    assert_pct(&twin["availability_pct"], pct(78_060 - tail, 81_060 - tail));
    assert_pct(
        &twin["raw_availability_pct"],
        pct(78_060 - tail, 82_860 - tail),
    );
    assert_eq!(twin["credit_pct"], 20.0, "96.30 % is below 97");
    assert_eq!(twin["exclusions"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["credit_pct_max"], 20.0);
}

#[test]
fn a_day_with_service_hours_exclusions_and_credits() {
    let inputs = Inputs::new(CONFIG, monitoring);
    let out = inputs.path("out");
    let (from, to, now) = ("2026-11-04", "2026-11-05", "2026-11-06");
    let args = ["--out", &out, "--from", from, "--to", to, "--now", now];
    inputs.run("replay", &args);
    let report = inputs.json("out/report-acme.json");
    check_figures(&report, 0.0, 0.0, 0);
    // `--now` pins the processing clock, `generated_at` included.
    assert_eq!(report["generated_at"], "2026-11-06T00:00:00.000Z");
    let summary = inputs.json("out/summary.json");
    assert_eq!(summary["read"], summary["applied"], "{summary}");

    // The month's pack: Wednesdays 11, 18 and 25 are in-hours nodata (3 × 8 h),
    // the rest of November is outside hours for the office service and nodata
    // for its twin.
    let pack = inputs.path("pack");
    let args = ["--out", &pack, "--customer", "acme", "--month", "2026-11"];
    inputs.run("evidence", &args);
    let month = inputs.json("pack/report.json");
    let other_days = 29.0 * 86_400.0;
    check_figures(&month, other_days - 3.0 * 28_800.0, 3.0 * 28_800.0, -60);
    let pack = Path::new(&pack);
    let html = std::fs::read_to_string(pack.join("report.html")).expect("html");
    common::check_report_page(&html, &month);
    for needle in [
        r#"data-field="raw_availability_pct""#,
        "EXC-1",
        "customer firewall change",
        "j.doe",
        r#"data-field="credit_pct_max" data-value="20""#,
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    let csv = std::fs::read_to_string(pack.join("report.csv")).expect("csv");
    assert!(
        csv.lines()
            .next()
            .is_some_and(|h| h.contains("raw_availability_pct")
                && h.contains("outside_hours_s")
                && h.contains("excluded_s")
                && h.contains("credit_pct"))
    );
    let verify = || slaflow().arg("verify").arg(pack).output().expect("verify");
    let o = verify();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // A file nobody listed is named; an older PDF left by an earlier pack in
    // the same folder is removed when the new one has none.
    std::fs::write(pack.join("notes.txt"), "unchecked").expect("write");
    let o = verify();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success() && said.contains("notes.txt"), "{said}");
    std::fs::remove_file(pack.join("notes.txt")).expect("remove");
    std::fs::write(pack.join("report.pdf"), "%PDF- an older one").expect("write");
    inputs.run("evidence", &args);
    assert!(!pack.join("report.pdf").exists());
    assert!(verify().status.success());
    // An unreadable manifest names the pack's folder.
    std::fs::write(pack.join("manifest.json"), "{").expect("write");
    let o = verify();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && said.contains(&pack.display().to_string()),
        "{said}"
    );
}

#[test]
fn bad_windows_and_exclusions_are_malformed() {
    let t = DAY;
    let year = 365 * 86_400_000i64;
    let lines = [
        // A 200-year maintenance window.
        format!(
            r#"{{"event_id":"a","ts":{t},"service":"office","kind":"maintenance","start":{t},"end":{}}}"#,
            t + 200 * year
        ),
        // 31 days and a millisecond.
        format!(
            r#"{{"event_id":"b","ts":{t},"service":"office","kind":"exclusion","exclusion_id":"X","start":{t},"end":{},"reason":"r","approved_by":"a"}}"#,
            t + 31 * 86_400_000 + 1
        ),
        // End before start.
        format!(
            r#"{{"event_id":"c","ts":{t},"service":"office","kind":"exclusion","exclusion_id":"X","start":{t},"end":{},"reason":"r","approved_by":"a"}}"#,
            t - 1
        ),
        // No approver; an empty reason; no id.
        format!(
            r#"{{"event_id":"d","ts":{t},"service":"office","kind":"exclusion","exclusion_id":"X","start":{t},"end":{},"reason":"r"}}"#,
            t + 1
        ),
        format!(
            r#"{{"event_id":"e","ts":{t},"service":"office","kind":"exclusion","exclusion_id":"X","start":{t},"end":{},"reason":"","approved_by":"a"}}"#,
            t + 1
        ),
        format!(
            r#"{{"event_id":"f","ts":{t},"service":"office","kind":"exclusion","start":{t},"end":{},"reason":"r","approved_by":"a"}}"#,
            t + 1
        ),
        // Exactly 31 days: fine.
        format!(
            r#"{{"event_id":"g","ts":{t},"service":"office","kind":"exclusion","exclusion_id":"X","start":{t},"end":{},"reason":"r","approved_by":"a"}}"#,
            t + 31 * 86_400_000
        ),
    ];
    let inputs = Inputs::new(CONFIG, |mon| {
        std::fs::write(mon, lines.join("\n") + "\n").expect("monitoring");
    });
    let out = inputs.path("out");
    inputs.run("replay", &["--out", &out, "--now", "2026-11-06"]);
    let out = Path::new(&out);
    let dead = std::fs::read_to_string(out.join("deadletter.ndjson")).expect("dead letters");
    let dead: Vec<Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let malformed: Vec<i64> = (dead.iter())
        .filter(|d| d["reason"] == "malformed")
        .map(|d| d["offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(malformed, [0, 1, 2, 3, 4, 5], "{dead:?}");
    assert!(
        dead[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("engine.max_window"))
    );
    assert!(
        dead[3]["error"]
            .as_str()
            .is_some_and(|e| e.contains("approved_by"))
    );
}

#[test]
fn an_unknown_service_hours_calendar_is_refused_with_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\nservice_hours = \"offfice\"\n",
    )
    .expect("config");
    let o = slaflow()
        .args(["replay", "--config", &cfg.to_string_lossy()])
        .args([
            "--monitoring",
            "/dev/null",
            "--tickets",
            "/dev/null",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .expect("replay");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("c.toml:6")
            && err.contains("services[0].service_hours")
            && err.contains("offfice"),
        "{err}"
    );
}
