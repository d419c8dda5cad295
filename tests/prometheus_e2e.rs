//! Prometheus feeding `slaflow run` directly: Debian's `prometheus` scrapes
//! `prometheus-blackbox-exporter` every second, which probes a local HTTP
//! target, and remote-writes `probe_success` to `/v1/ingest/prometheus`. The
//! target fails for ~20 s: one outage incident must start within a scrape of
//! the failure and resolve, and the report's downtime must match.
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
    if !have("prometheus") || !have("prometheus-blackbox-exporter") {
        assert!(
            std::env::var_os("SLAFLOW_REQUIRE_PEERS").is_none(),
            "prometheus and prometheus-blackbox-exporter are required (SLAFLOW_REQUIRE_PEERS)"
        );
        eprintln!("skipped: apt-get install prometheus prometheus-blackbox-exporter");
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
    let ingest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(INGEST.as_bytes()));
    let text = t.live_config(
        &brokers,
        config_text,
        "idle_timeout = \"1s\"",
        &dir.path().join("data"),
    ) + &format!("\n[[api.tokens]]\nsha256 = \"{ingest}\"\nscope = \"ingest\"\n");
    let cfg = dir.path().join("live.toml");
    std::fs::write(&cfg, text).expect("config");
    let run = Running::start(&cfg, &dir.path().join("run.log"));
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
    let prometheus_yml = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: blackbox
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
remote_write:
  - url: http://{api}/v1/ingest/prometheus
    authorization:
      credentials: {INGEST}
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
    write_relabel_configs:
      - source_labels: [__name__]
        regex: probe_success|probe_duration_seconds
        action: keep
"#
    );
    std::fs::write(dir.path().join("prometheus.yml"), prometheus_yml).expect("prometheus.yml");
    let _prometheus = spawn(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port())),
        &dir.path().join("prometheus.log"),
    );
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
    let scrape = 1_000;
    let started = ms(&triggers[0]["started_at"]);
    assert!(
        (down_at..=down_at + scrape + 500).contains(&started),
        "started {started}, target failed at {down_at}"
    );
    let resolve = outage
        .iter()
        .find(|i| i["action"] == "resolve")
        .expect("resolve");
    let ended = ms(&resolve["ended_at"]);
    assert!(
        (up_at - 500..=up_at + scrape + 500).contains(&ended),
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
