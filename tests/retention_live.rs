//! `engine.retention` inside `slaflow run` (issue 32): once the watermark
//! follows the wall clock, what lies before the horizon is forgotten, a report
//! reaching before it is refused with 400, and a report after it is the same
//! as replay's over the same events.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use slaflow::generate::scenario_config;

const PARTITIONS: i32 = 2;
const H: i64 = 3_600_000;

#[test]
fn retention_in_run_forgets_before_the_horizon_and_keeps_later_reports_unchanged() {
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = prepare(&brokers, &t.mon, &t.tkt, PARTITIONS, 6 * 60, 25.0);
    // The horizon lies 2 h into the traffic as the run starts (the wall clock
    // moves it on by the minutes the test takes); reports from 3 h on.
    let keep_s = (slaflow::time::wall_now() - (START + 2 * H)) / 1000;
    let from = START + 3 * H;
    let window = ["--from", &from.to_string(), "--to", &p.cutoff.to_string()].map(str::to_owned);
    let out = replay(dir.path(), &scenario_config(), &p, &window);

    let cfg = dir.path().join("live.toml");
    let text = t.live_config(
        &brokers,
        &scenario_config(),
        "idle_timeout = \"1s\"",
        &dir.path().join("data"),
    );
    let kept = format!("retention = \"{TEST_RETENTION}\"");
    assert!(text.contains(&kept));
    std::fs::write(
        &cfg,
        text.replace(&kept, &format!("retention = \"{keep_s}s\"")),
    )
    .expect("config");
    let run = Running::start(&cfg, &dir.path().join("run.log"));
    let inputs = [t.mon.as_str(), t.tkt.as_str()];
    assert!(
        wait_until(Duration::from_secs(120), || caught_up(
            &brokers, &t.group, &inputs, PARTITIONS
        )),
        "not caught up; log:\n{}",
        run.log_text()
    );
    let base = format!("http://{}", run.api_addr());
    let horizon = START + 2 * H;
    // Caught up and idle: the watermark follows the wall clock, and the
    // intervals that ended before the horizon are gone (one reaching past it
    // stays whole).
    let sql = format!("SELECT count(*) AS n FROM availability_intervals WHERE end_ms <= {horizon}");
    let before = || {
        let body = serde_json::json!({ "sql": sql });
        let (s, b) = http_post_json(&format!("{base}/v1/query"), ADMIN, &body.to_string());
        assert_eq!(s, 200, "{b}");
        serde_json::from_str::<Value>(&b).expect("json")["rows"][0]["n"].as_i64()
    };
    assert!(
        wait_until(Duration::from_secs(60), || before() == Some(0)),
        "{:?} intervals end before the horizon {horizon}; log:\n{}",
        before(),
        run.log_text()
    );
    // The incident log (every action kept, newest first) starts at the
    // horizon, where replay's reaches back before it.
    let replayed = std::fs::read_to_string(out.join("incidents.ndjson")).expect("incidents");
    let early = (replayed.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|i| slaflow::time::parse_rfc3339(i["at"].as_str()?).ok())
        .filter(|&at| at < horizon)
        .count();
    assert!(early > 0, "replay has incidents before the horizon");
    let (_, body) = http_get(&format!("{base}/v1/incidents?status=all&limit=5000"), ADMIN);
    let incidents: Vec<Value> = serde_json::from_str(&body).expect("incidents");
    assert!(
        (1..5000).contains(&incidents.len()),
        "{} actions",
        incidents.len()
    );
    for i in &incidents {
        let at = slaflow::time::parse_rfc3339(i["at"].as_str().expect("at")).expect("time");
        assert!(at >= horizon, "kept before the horizon: {i}");
    }

    for customer in ["acme", "globex"] {
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("report-{customer}.json"))).expect("report"),
        )
        .expect("json");
        let url = format!(
            "{base}/v1/reports/sla?customer={customer}&from={from}&to={}",
            p.cutoff
        );
        let (s, live) = http_get(&url, ADMIN);
        assert_eq!(s, 200, "{live}");
        let live: Value = serde_json::from_str(&live).expect("json");
        assert_eq!(comparable(live), comparable(want), "{customer}");
        let before = format!(
            "{base}/v1/reports/sla?customer={customer}&from={START}&to={}",
            p.cutoff
        );
        let (s, refused) = http_get(&before, ADMIN);
        assert_eq!(s, 400, "{refused}");
        assert!(refused.contains("engine.retention"), "{refused}");
    }
    assert!(run.terminate().success());
}
