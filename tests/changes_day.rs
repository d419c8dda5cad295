//! Changes (contract section 15), worked by hand: one day of probes with four
//! outages and six changes around them (before, inside and after the window,
//! two before one outage, one exactly at an outage's start, a failed one, a
//! rolled-back one later marked successful). Replay gives exactly the
//! `changes` block and each outage trigger's `details.change_id`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::Inputs;
use serde_json::Value;

const CONFIG: &str = r#"
burn_alerts = []

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
"#;

const DAY: i64 = 1_793_750_400_000; // 2026-11-04T00:00:00Z
const MIN: i64 = 60_000;

fn at(h: i64, m: i64) -> i64 {
    DAY + (h * 60 + m) * MIN
}

/// Probes every minute, down [03:00, 03:10), [10:00, 10:20), [15:00, 15:05)
/// and [22:00, 22:30). Changes: CHG-1 01:30 (2 h before the 03:00 outage),
/// CHG-2 09:10 and CHG-3 09:40 (both within the hour before 10:00: the latest
/// wins), CHG-4 15:00 failed (at the outage's start: inside), CHG-5 21:00
/// rolled back then success at 21:05 (exactly an hour before 22:00: outside),
/// CHG-6 23:00 (after). A maintenance with change_id CHG-M is a label only.
/// Then a change with an unknown outcome and one without an id (malformed).
fn monitoring(path: &Path) {
    let mut s = String::new();
    let mut n = 0;
    let mut line = |s: &mut String, ts: i64, body: &str| {
        n += 1;
        writeln!(
            s,
            r#"{{"event_id":"e{n}","ts":{ts},"service":"web",{body}}}"#
        )
        .expect("write");
    };
    let change = |id: &str, outcome: &str| {
        format!(r#""kind":"change","change_id":"{id}","outcome":"{outcome}""#)
    };
    for minute in 0..1440 {
        let ts = DAY + minute * MIN;
        let (h, m) = (minute / 60, minute % 60);
        let down =
            (h == 3 && m < 10) || (h == 10 && m < 20) || (h == 15 && m < 5) || (h == 22 && m < 30);
        let status = if down { "down" } else { "up" };
        let changes: &[(i64, i64, &str, &str)] = &[
            (1, 30, "CHG-1", "success"),
            (9, 10, "CHG-2", "success"),
            (9, 40, "CHG-3", "success"),
            (15, 0, "CHG-4", "failed"),
            (21, 0, "CHG-5", "rolled_back"),
            (21, 5, "CHG-5", "success"),
            (23, 0, "CHG-6", "success"),
        ];
        // A change deployed at the minute comes before that minute's probe.
        for &(ch, cm, id, outcome) in changes {
            if (ch, cm) == (h, m) {
                line(&mut s, ts, &change(id, outcome));
            }
        }
        line(
            &mut s,
            ts,
            &format!(r#""kind":"probe","source":"a","status":"{status}""#),
        );
        if (h, m) == (12, 0) {
            let (a, b) = (at(13, 0), at(13, 30));
            line(
                &mut s,
                ts,
                &format!(r#""kind":"maintenance","start":{a},"end":{b},"change_id":"CHG-M""#),
            );
        }
    }
    let end = at(23, 59);
    line(&mut s, end, &change("CHG-9", "exploded"));
    line(&mut s, end, r#""kind":"change","outcome":"success""#);
    std::fs::write(path, s).expect("write monitoring");
}

#[test]
fn a_day_of_changes_gives_the_changes_block_and_the_induced_outages() {
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

    let text = inputs.text("out/incidents.ndjson");
    let incidents: Vec<Value> = (text.lines())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let triggers: Vec<(String, Value)> = (incidents.iter())
        .filter(|i| i["rule"] == "outage" && i["action"] == "trigger")
        .map(|i| {
            (
                i["started_at"].as_str().unwrap_or("").to_owned(),
                i["details"].clone(),
            )
        })
        .collect();
    let details = |id: Option<&str>| match id {
        Some(id) => serde_json::json!({ "change_id": id }),
        None => serde_json::json!({}),
    };
    assert_eq!(
        triggers,
        vec![
            ("2026-11-04T03:00:00.000Z".to_owned(), details(None)),
            (
                "2026-11-04T10:00:00.000Z".to_owned(),
                details(Some("CHG-3"))
            ),
            (
                "2026-11-04T15:00:00.000Z".to_owned(),
                details(Some("CHG-4"))
            ),
            ("2026-11-04T22:00:00.000Z".to_owned(), details(None)),
        ]
    );
    for i in incidents.iter().filter(|i| i["action"] == "resolve") {
        assert_eq!(
            i["details"],
            details(None),
            "only the trigger names the change"
        );
    }

    // Six changes (CHG-M is a label); CHG-3 induced an outage, CHG-4 failed
    // and induced one, CHG-5's last outcome is success. MTTR: (600 + 1200 +
    // 300 + 1800) / 4 s.
    let report = json("report-acme.json");
    assert_eq!(
        report["changes"],
        serde_json::json!({
            "total": 6,
            "failed": 2,
            "induced_outages": 2,
            "failure_rate_pct": 100.0 * 2.0 / 6.0,
            "mttr_s": 975.0,
        })
    );

    // [03:05, 12:00): CHG-2 and CHG-3 were deployed in it (CHG-3 induced the
    // 10:00 outage); the 03:00 outage started before the period but ended in
    // it, the 10:00 one too; those ending after 12:00 do not count.
    let period = [
        "--from",
        "2026-11-04T03:05:00Z",
        "--to",
        "2026-11-04T12:00:00Z",
        "--now",
        "2026-11-06",
    ];
    inputs.run_to("replay", "part", &period);
    assert_eq!(
        inputs.json("part/report-acme.json")["changes"],
        serde_json::json!({
            "total": 2,
            "failed": 1,
            "induced_outages": 1,
            "failure_rate_pct": 50.0,
            "mttr_s": 900.0,
        })
    );

    // The month's pack carries the same block and verifies.
    let month = ["--customer", "acme", "--month", "2026-11"];
    inputs.run_to("evidence", "pack", &month);
    let pack = inputs.json("pack/report.json");
    assert_eq!(pack["changes"], report["changes"]);
    let html = inputs.text("pack/report.html");
    for needle in [
        r#"data-field="changes_total" data-value="6""#,
        r#"data-field="changes_failed" data-value="2""#,
        r#"data-field="mttr_s" data-value="975""#,
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    inputs.verify("pack");
}
