//! Prometheus feeding `slaflow run` directly: Debian's `prometheus` scrapes
//! `prometheus-blackbox-exporter` every second, which probes a local HTTP
//! target, and remote-writes `probe_success` to `/v1/ingest/prometheus`. The
//! target fails for ~20 s: one outage incident must start within a scrape of
//! the failure and resolve, and the report's downtime must match.
//!
//! And request SLOs (contract section 14): Prometheus scrapes its own
//! `prometheus_http_requests_total` and remote-writes it as counters; slaflow's
//! totals over a closed window equal the increases computed from the raw
//! samples Prometheus's HTTP API returns, and a burst of bad queries raises and
//! resolves `slo_burn_rate`.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use serde_json::Value;

const INGEST: &str = "ingest-token-for-prometheus";

/// A local HTTP target answering 200 while `up`, 503 otherwise.
fn target(up: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0; 1024];
            let _ = s.read(&mut buf);
            let status = if up.load(Ordering::SeqCst) {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A peer process, killed when the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Peer {
    let f = std::fs::File::create(log).expect("log");
    Peer(
        cmd.stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("start peer"),
    )
}

/// `slaflow run` on `t`'s topics with `config_text`, a 1 s idle timeout and
/// the [`INGEST`] token, its files in `dir`.
fn run_with_ingest(
    t: &LiveTopics,
    brokers: &str,
    config_text: &str,
    dir: &std::path::Path,
) -> Running {
    let ingest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(INGEST.as_bytes()));
    let text = t.live_config(
        brokers,
        config_text,
        "idle_timeout = \"1s\"",
        &dir.join("data"),
    ) + &format!("\n[[api.tokens]]\nsha256 = \"{ingest}\"\nscope = \"ingest\"\n");
    let cfg = dir.join("live.toml");
    std::fs::write(&cfg, text).expect("config");
    Running::start(&cfg, &dir.join("run.log"))
}

/// A Prometheus config scraping every second with `scrape_configs` (YAML list
/// items) and remote-writing the series `keep` matches to slaflow at `api`.
fn prometheus_yml(api: &impl std::fmt::Display, scrape_configs: &str, keep: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
{scrape_configs}remote_write:
  - url: http://{api}/v1/ingest/prometheus
    authorization:
      credentials: {INGEST}
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
    write_relabel_configs:
      - source_labels: [__name__]
        regex: {keep}
        action: keep
"#
    )
}

/// Debian's `prometheus` with `yml` as its config, listening on `port`.
fn prometheus(dir: &std::path::Path, yml: &str, port: u16) -> Peer {
    std::fs::write(dir.join("prometheus.yml"), yml).expect("prometheus.yml");
    spawn(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &dir.join("prometheus.log"),
    )
}

/// Whether the peers are installed; without them the test is skipped, unless
/// `SLAFLOW_REQUIRE_PEERS` says they must be (as scripts/test.sh does).
fn peers_installed(binaries: &[&str]) -> bool {
    if binaries.iter().all(|b| have(b)) {
        return true;
    }
    assert!(
        std::env::var_os("SLAFLOW_REQUIRE_PEERS").is_none(),
        "{binaries:?} are required (SLAFLOW_REQUIRE_PEERS)"
    );
    eprintln!("skipped: apt-get install prometheus prometheus-blackbox-exporter");
    false
}

fn have(binary: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(binary).is_file())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
        .expect("an RFC 3339 instant")
}

#[test]
fn a_target_down_for_20s_is_one_outage_from_prometheus() {
    if !peers_installed(&["prometheus", "prometheus-blackbox-exporter"]) {
        return;
    }
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_text = r#"
[engine]
allowed_lateness = "2s"

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
stale_after = "10s"
outage_after = "3s"
resolve_after = "5s"
"#;
    let run = run_with_ingest(&t, &brokers, config_text, dir.path());
    let api = run.api_addr();

    let up = Arc::new(AtomicBool::new(true));
    let target_port = target(up.clone());
    let blackbox_port = free_port();
    std::fs::write(
        dir.path().join("blackbox.yml"),
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 800ms\n",
    )
    .expect("blackbox config");
    let _blackbox = spawn(
        Command::new("prometheus-blackbox-exporter")
            .arg(format!(
                "--config.file={}",
                dir.path().join("blackbox.yml").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{blackbox_port}")),
        &dir.path().join("blackbox.log"),
    );
    let scrapes = format!(
        r#"  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
      - targets: ["http://127.0.0.1:{target_port}/"]
        labels:
          service: web
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:{blackbox_port}
"#
    );
    let yml = prometheus_yml(&api, &scrapes, "probe_success|probe_duration_seconds");
    let _prometheus = prometheus(dir.path(), &yml, free_port());
    let base = format!("http://{api}");
    let prometheus_log =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let flowing = wait_until(Duration::from_secs(60), || {
        let (s, body) = http_get(
            &format!("{base}/v1/services/web/availability?step=1m"),
            ADMIN,
        );
        s == 200 && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["state"] == "up")
    });
    assert!(
        flowing,
        "no probes arrived:\n{}\n{}",
        prometheus_log(),
        run.log_text()
    );
    // The scenario: 5 s more up, 20 s failing, then up again (durations of
    // the story, not waits for a condition).
    std::thread::sleep(Duration::from_secs(5));

    let down_at = now_ms();
    up.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(20));
    let up_at = now_ms();
    up.store(true, Ordering::SeqCst);

    let mut outage = Vec::new();
    let resolved = wait_until(Duration::from_secs(60), || {
        let (_, body) = http_get(&format!("{base}/v1/incidents?status=all"), ADMIN);
        let all: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        outage = all.into_iter().filter(|i| i["rule"] == "outage").collect();
        outage.iter().any(|i| i["action"] == "resolve")
    });
    assert!(
        resolved,
        "no resolved outage: {outage:?}\n{}",
        run.log_text()
    );
    let triggers: Vec<&Value> = outage.iter().filter(|i| i["action"] == "trigger").collect();
    assert_eq!(triggers.len(), 1, "one outage: {outage:?}");
    // Prometheus stamps a sample with its scrape's start, and the blackbox
    // exporter reaches the target during the scrape (within scrape_timeout):
    // a sample stamped up to that much before a flip may already see it. The
    // first scrape starting after the flip comes within one interval.
    let (scrape, stamped_early) = (1_000, 900);
    let started = ms(&triggers[0]["started_at"]);
    assert!(
        (down_at - stamped_early..=down_at + scrape + 500).contains(&started),
        "started {started}, target failed at {down_at}"
    );
    let resolve = outage
        .iter()
        .find(|i| i["action"] == "resolve")
        .expect("resolve");
    let ended = ms(&resolve["ended_at"]);
    assert!(
        (up_at - stamped_early..=up_at + scrape + 500).contains(&ended),
        "ended {ended}, target back at {up_at}"
    );

    // The report's downtime is the time the target was failing, within two scrapes.
    let (from, to) = (down_at - 60_000, up_at + 5_000);
    let (s, body) = http_get(
        &format!("{base}/v1/reports/sla?customer=acme&from={from}&to={to}"),
        ADMIN,
    );
    assert_eq!(s, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("report");
    let downtime = report["services"][0]["downtime_s"]
        .as_f64()
        .expect("downtime");
    let failing = (up_at - down_at) as f64 / 1000.0;
    eprintln!(
        "outage started {} ms after the failure, ended {} ms after the recovery; downtime {downtime} s for {failing} s failing",
        started - down_at,
        ended - up_at
    );
    assert!(
        (downtime - failing).abs() <= 2.0 * scrape as f64 / 1000.0,
        "downtime {downtime} s, target failing {failing} s"
    );
    assert!(run.terminate().success());
}

/// The raw samples of `selector` over the last 10 minutes at Prometheus's
/// `http://127.0.0.1:{port}`, per series: (labels, [(ts ms, value)]).
fn raw_samples(port: u16, selector: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
    let url = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        percent_encode(&format!("{selector}[10m]"))
    );
    let (s, body) = http_get(&url, "");
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    (v["data"]["result"]
        .as_array()
        .expect("a range vector")
        .iter())
    .map(|series| {
        let samples = (series["values"].as_array().expect("values").iter())
            .map(|p| {
                let ts = (p[0].as_f64().expect("time") * 1000.0).round() as i64;
                (
                    ts,
                    p[1].as_str().and_then(|v| v.parse().ok()).expect("value"),
                )
            })
            .collect();
        (series["metric"].clone(), samples)
    })
    .collect()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Section 14's sum of increases dated in `[a, b)` over every series: each
/// sample after a series' first adds value − previous, or the value itself
/// after a fall (a reset).
fn increases(series: &[(Value, Vec<(i64, f64)>)], (a, b): (i64, i64)) -> f64 {
    let mut sum = 0.0;
    for (_, samples) in series {
        for w in samples.windows(2) {
            let ((_, prev), (ts, v)) = (w[0], w[1]);
            if (a..b).contains(&ts) {
                sum += if v < prev { v } else { v - prev };
            }
        }
    }
    sum
}

#[test]
fn request_slo_from_prometheus_counters_equals_prometheus_and_burns_on_errors() {
    if !peers_installed(&["prometheus"]) {
        return;
    }
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_text = r#"
[engine]
allowed_lateness = "5s"
bucket = "1s"

[[burn_alerts]]
name = "fast"
long = "30s"
short = "10s"
factor = 2.0
severity = "critical"

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"

[[slos]]
id = "web-queries"
service = "web"
objective = 90.0
window = "1h"
total = "queries"
bad = "query_errors"

[[ingest.prometheus.counters]]
series = "prometheus_http_requests_total"
match = { handler = "/api/v1/query" }
name = "queries"

[[ingest.prometheus.counters]]
series = "prometheus_http_requests_total"
match = { handler = "/api/v1/query", code = "4..|5.." }
name = "query_errors"
"#;
    let run = run_with_ingest(&t, &brokers, config_text, dir.path());
    let api = run.api_addr();
    let port = free_port();
    let scrapes = format!(
        r#"  - job_name: self
    static_configs:
      - targets: ["127.0.0.1:{port}"]
        labels:
          service: web
"#
    );
    let yml = prometheus_yml(&api, &scrapes, "prometheus_http_requests_total");
    let _prometheus = prometheus(dir.path(), &yml, port);
    let query = |q: &str| {
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            percent_encode(q)
        );
        http_get(&url, "").0
    };
    assert!(
        wait_until(Duration::from_secs(60), || query("up") == 200),
        "prometheus did not start"
    );
    let base = format!("http://{api}");
    let slo = || -> Value {
        let (_, body) = http_get(&format!("{base}/v1/slos/web-queries"), ADMIN);
        serde_json::from_str(&body).unwrap_or_default()
    };
    // Good queries (10 a second) until slaflow counts them, then 10 s of one bad
    // query per good one (50 % bad: 5× a 10 % budget), then good ones again.
    let traffic = |seconds: u64, bad: bool| {
        for _ in 0..seconds * 10 {
            assert_eq!(query("up"), 200);
            if bad {
                assert_eq!(query("sum("), 400);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let counting = wait_until(Duration::from_secs(60), || {
        traffic(1, false);
        slo()["total"].as_f64().is_some_and(|t| t > 0.0)
    });
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        counting,
        "no counter arrived:\n{}\n{}",
        log(),
        run.log_text()
    );
    traffic(10, false);
    traffic(10, true);
    let mut burns = Vec::new();
    let resolved = wait_until(Duration::from_secs(90), || {
        traffic(1, false);
        let (_, body) = http_get(&format!("{base}/v1/incidents?status=all"), ADMIN);
        let all: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        burns = all
            .into_iter()
            .filter(|i| i["rule"] == "slo_burn_rate")
            .collect();
        burns.iter().any(|i| i["action"] == "resolve")
    });
    assert!(
        resolved,
        "no resolved slo_burn_rate: {burns:?}\n{}",
        run.log_text()
    );
    let triggers: Vec<&Value> = burns.iter().filter(|i| i["action"] == "trigger").collect();
    assert_eq!(triggers.len(), 1, "{burns:?}");
    assert_eq!(triggers[0]["details"]["slo"], "web-queries");
    assert_eq!(triggers[0]["service"], "web");

    // A window slaflow has closed (its watermark is past it): the same totals
    // as the increases of Prometheus's own raw samples.
    let to = now_ms() - 10_000;
    let from = to - 60_000;
    let closed = wait_until(Duration::from_secs(30), || {
        let (_, body) = http_get(&format!("{base}/v1/overview"), ADMIN);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["watermark"]
            .as_str()
            .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
            .is_some_and(|w| w.timestamp_millis() > to)
    });
    assert!(closed, "the watermark never passed the window");
    let (s, body) = http_get(
        &format!("{base}/v1/reports/sla?customer=acme&from={from}&to={to}"),
        ADMIN,
    );
    assert_eq!(s, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("report");
    let got = &report["slos"][0];
    let all = raw_samples(
        port,
        r#"prometheus_http_requests_total{handler="/api/v1/query"}"#,
    );
    let bad = raw_samples(
        port,
        r#"prometheus_http_requests_total{handler="/api/v1/query",code=~"4..|5.."}"#,
    );
    let (want_total, want_bad) = (increases(&all, (from, to)), increases(&bad, (from, to)));
    eprintln!(
        "window of 60 s: {want_total} queries, {want_bad} bad, per Prometheus; slaflow {got}"
    );
    assert!(want_total > 100.0, "{want_total}");
    assert_eq!(got["total"].as_f64(), Some(want_total), "{got}");
    assert_eq!(got["bad"].as_f64(), Some(want_bad), "{got}");
    let summary = run.log_text();
    assert!(run.terminate().success(), "{summary}");
}
