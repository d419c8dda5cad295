//! Limits whose checks bound time or memory: hostile periods answered 400 at
//! once, SQL that could hurt the process refused while the API keeps
//! answering, the demo end to end. In a test binary of their own, so the
//! whole-process RSS and the clocks they read are not shared with the
//! property tests and joins of `api_http.rs`.

mod api_server;
mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use api_server::*;

#[test]
fn demo_starts_serves_a_report_and_stops_on_sigterm() {
    let mut child = common::slaflow()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--history-days",
            "1",
            "--speed",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn demo");
    let started = Instant::now();
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut admin) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(rest) = line.trim().strip_prefix("Dashboard:") {
            url = rest.trim().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("Tokens:") {
            admin = rest.split_whitespace().nth(1).unwrap_or("").to_owned();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let base = url.split("/#").next().unwrap_or("").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{url}");
    let mut r = agent()
        .get(format!("{base}/v1/reports/sla?customer=acme"))
        .header("Authorization", format!("Bearer {admin}"))
        .call()
        .expect("report");
    assert_eq!(r.status().as_u16(), 200);
    let report = json(&r.body_mut().read_to_string().expect("body"));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "report took {:?}",
        started.elapsed()
    );
    let services = report["services"].as_array().expect("services");
    assert!(
        !services.is_empty() && services.iter().all(|s| s["availability_pct"].is_number()),
        "{report}"
    );
    // Issue 31: the demo has no consumer, checkpoints or delivery targets and
    // does not export their series (docs/api.md: only `run` sets them).
    let mut r = agent()
        .get(format!("{base}/metrics"))
        .call()
        .expect("metrics");
    let metrics = r.body_mut().read_to_string().expect("body");
    assert!(metrics.contains("slaflow_records_read_total"), "{metrics}");
    for live_only in ["consumer_lag", "checkpoint", "deliver"] {
        assert!(
            !metrics.contains(live_only),
            "{live_only} in the demo's /metrics"
        );
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "demo did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Periods, steps and instants that once wrapped `to - from` and allocated until
/// the process died now answer 400, before any work. (The bound is loose on
/// purpose: the point is "no huge loop", not a latency target.)
#[test]
fn extreme_periods_and_steps_answer_400_at_once() {
    let huge = "from=-9000000000000000000&to=9000000000000000000";
    for path in [
        format!("/v1/services/web/availability?{huge}&step=1s"),
        format!("/v1/reports/sla?customer=acme&{huge}"),
        format!("/v1/reports/capacity?customer=acme&{huge}"),
        "/v1/services/web/availability?from=0&to=9223372036854775807&step=1s".to_owned(),
        "/v1/services/web/availability?from=2026-11-01&to=2026-11-02&step=1000000000000000000d"
            .to_owned(),
        "/v1/services/web/availability?from=2026-11-01&to=2026-11-02&step=18446744073709551615s"
            .to_owned(),
        "/v1/services/web/availability?from=1970-01-01&to=2026-11-02&step=1s".to_owned(),
        "/v1/reports/sla?customer=acme&from=-62167219200001&to=0".to_owned(),
        "/v1/reports/sla?customer=acme&from=0&to=253402300800000".to_owned(),
        // Before what engine.retention (400 days) keeps.
        "/v1/reports/sla?customer=acme&from=2025-01-01&to=2025-12-31".to_owned(),
        "/v1/services/web/availability?from=2025-01-01&to=2025-01-02".to_owned(),
    ] {
        let started = Instant::now();
        let (s, b) = get(&path, Some(ACME));
        assert_eq!(s, 400, "{path}: {b}");
        assert!(json(&b)["error"].is_string());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    // A negative period length is never reported.
    let (s, b) = get(
        "/v1/reports/sla?customer=acme&from=2026-11-02&to=2026-11-01",
        Some(ACME),
    );
    assert_eq!(s, 400, "{b}");
}

fn rss_mib() -> u64 {
    slaflow::bench::rss_bytes().map_or(0, |b| b >> 20)
}

#[test]
fn sql_that_could_hurt_the_process_is_refused_and_the_api_keeps_answering() {
    let sql = |s: &str| serde_json::json!({ "sql": s }).to_string();
    // 2,000 terms: the parser builds a deep tree without recursing.
    let deep = format!("SELECT {}", vec!["1"; 2000].join("+"));
    let (s, b) = post("/v1/query", Some(ADMIN), &sql(&deep));
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("deeper"), "{b}");
    let nested = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
    assert_eq!(post("/v1/query", Some(ADMIN), &sql(&nested)).0, 400);
    let long = format!("SELECT 1 {}", " ".repeat(20_000));
    assert_eq!(post("/v1/query", Some(ADMIN), &sql(&long)).0, 400);
    let fine = format!("SELECT {}", vec!["1"; 40].join("+"));
    let (s, b) = post("/v1/query", Some(ADMIN), &sql(&fine));
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        json(&b)["rows"][0]
            .as_object()
            .and_then(|o| o.values().next().cloned()),
        Some(40.into())
    );

    // A join far bigger than query_memory (64 MiB here): refused, the process lives.
    let before = rss_mib();
    let huge = "SELECT a.summary || b.summary || c.summary AS s, count(*) AS n FROM incidents a, incidents b, incidents c GROUP BY s";
    let base = server().base.clone();
    let join = std::thread::spawn(move || {
        let started = Instant::now();
        let mut r = agent()
            .post(format!("{base}/v1/query"))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .header("Content-Type", "application/json")
            .send(sql(huge))
            .expect("query");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
            started.elapsed(),
        )
    });
    // Meanwhile health and reports answer.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get("/healthz", None).0, 200);
    assert_eq!(get("/v1/reports/sla?customer=acme", Some(ACME)).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "API blocked {:?}",
        started.elapsed()
    );
    let (s, b, took) = join.join().expect("join thread");
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("Resources exhausted") || b.contains("longer than"),
        "{b}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        rss_mib() < before + 1024,
        "RSS {before} → {} MiB",
        rss_mib()
    );
    assert_eq!(get("/healthz", None).0, 200);
}
