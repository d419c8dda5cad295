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

/// The SQL tests take the server's query places; one at a time.
static SQL_PLACES: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    // Availability is null exactly when nothing was measured (contract
    // section 5): the demo's day can lie wholly outside a service's hours
    // (`db` keeps Paris office hours, so from Friday 16:00 UTC to Monday).
    let services = report["services"].as_array().expect("services");
    let measured = |s: &serde_json::Value| s["measured_s"].as_f64().is_some_and(|m| m > 0.0);
    assert!(services.iter().any(measured), "{report}");
    for s in services {
        assert_eq!(
            s["availability_pct"].is_number(),
            measured(s),
            "{}: {report}",
            s["service"]
        );
    }
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
    let _places = SQL_PLACES.lock().unwrap_or_else(|e| e.into_inner());
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

/// SQL runs 2 statements at a time and answers 429 beyond (docs/api.md), and
/// a statement is stopped after 10 s, which frees its place.
#[test]
fn sql_runs_two_at_a_time_answers_429_beyond_and_stops_each_after_10_s() {
    let _places = SQL_PLACES.lock().unwrap_or_else(|e| e.into_inner());
    // Never finishes (three buckets tables joined), and has no statistics to
    // be answered from; it yields between batches, so it can be stopped.
    let endless = serde_json::json!({"sql": "SELECT max(a.bucket_ms + b.bucket_ms + c.bucket_ms) AS m FROM availability_buckets a, availability_buckets b, availability_buckets c"}).to_string();
    let base = server().base.clone();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (base, body, barrier) = (base.clone(), endless.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let mut r = agent()
                    .post(format!("{base}/v1/query"))
                    .header("Authorization", format!("Bearer {ADMIN}"))
                    .header("Content-Type", "application/json")
                    .send(body)
                    .expect("query");
                let status = r.status().as_u16();
                (
                    status,
                    r.body_mut().read_to_string().unwrap_or_default(),
                    started.elapsed(),
                )
            })
        })
        .collect();
    let mut answers: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    answers.sort_by_key(|a| a.0);
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [400, 400, 429, 429], "{answers:?}");
    for (status, body, took) in &answers {
        let error = json(body)["error"].as_str().unwrap_or_default().to_owned();
        if *status == 400 {
            assert!(error.contains("longer than 10s"), "{error}");
            // Stopped at 10 s; the bound above is loose on purpose (a busy machine).
            assert!(*took >= Duration::from_secs(10), "{took:?}");
        } else {
            assert!(error.contains("2 queries are running"), "{error}");
        }
    }
    // The places are free again: a stopped statement ends at its operators'
    // next yield, moments after its 400.
    let stopped = Instant::now();
    let count = r#"{"sql":"SELECT count(*) AS n FROM incidents"}"#;
    let mut answer = post("/v1/query", Some(ADMIN), count);
    while answer.0 == 429 && stopped.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        answer = post("/v1/query", Some(ADMIN), count);
    }
    assert_eq!(
        answer.0,
        200,
        "{answer:?} {:?} after the timeouts",
        stopped.elapsed()
    );
}

/// Sends a query whose 100-byte body never arrives whole, over raw TCP: the
/// headers and `first` bytes of the body, then, while `trickle`, one byte
/// every 2 s. Returns how long the answer took, its status and its JSON body.
fn unfinished_body(first: &str, trickle: bool) -> (Duration, u16, serde_json::Value) {
    use std::io::{ErrorKind, Read, Write};
    let addr = server().base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let head = format!(
        "POST /v1/query HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{first}"
    );
    let started = Instant::now();
    conn.write_all(head.as_bytes()).expect("write");
    let (mut answer, mut buf) = (Vec::new(), [0u8; 4096]);
    // Until the server answers and closes, or long after the request timeout.
    while started.elapsed() < Duration::from_secs(90) {
        if trickle && conn.write_all(b" ").is_err() {
            break;
        }
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = conn.read_to_end(&mut answer);
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    let status: u16 = (answer.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer after {took:?}: {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (took, status, json(body))
}

/// A client that sends its headers and then stalls in the middle of the body
/// is the client's fault: after 10 s without a byte it gets 408 with a JSON
/// error (docs/api.md), not a 5xx and not a connection held forever.
#[test]
fn a_stalled_request_body_is_answered_408_after_10_s() {
    let (took, status, body) = unfinished_body("{\"sql\": \"SEL", false);
    assert_eq!(status, 408, "{body}");
    let secs = Duration::from_secs;
    assert!(
        (secs(10)..secs(20)).contains(&took),
        "after {took:?}: {body}"
    );
    assert!(body["error"].is_string(), "{body}");
}

/// A client that sends its body a byte every 2 s never stalls long enough for
/// the idle timeout, but is still the client's fault: 20 s after its headers
/// it gets 408 with a JSON error (docs/api.md), not the request timeout's 503.
#[test]
fn a_request_body_trickled_past_20_s_is_answered_408() {
    let (took, status, body) = unfinished_body("", true);
    assert_eq!(status, 408, "{body}");
    let secs = Duration::from_secs;
    assert!(
        (secs(20)..secs(30)).contains(&took),
        "after {took:?}: {body}"
    );
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("20 s"), "{body}");
}
