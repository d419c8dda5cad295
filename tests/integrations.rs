//! Integrations end to end over real HTTP and the real broker: Alertmanager
//! webhooks in → probe events on Kafka → an outage incident out to a local
//! receiver in PagerDuty Events v2 shape and to a signed webhook, with retries
//! (500s), an outbox that survives a restart, and no duplicate events from
//! repeated notifications; Jira webhooks → ticket events; bad payloads → 400 and
//! dead letters, never a 500.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PARTITIONS: i32 = 2;
const INGEST_TOKEN: &str = "ingest-token-for-tests";
const ADMIN_TOKEN: &str = "admin-token-for-tests";
const HOOK_SECRET: &str = "hook-secret-for-tests";

/// One request the receiver got and the status it answered.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
    raw: String,
    status: u16,
}

/// A local HTTP receiver: `/pd` answers 500 while `fail_pd` is set, `/hook`
/// answers 500 to its first request; everything else 202.
struct Receiver {
    addr: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail_pd: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr").to_string();
        let got = Arc::new(Mutex::new(Vec::<Received>::new()));
        let fail_pd = Arc::new(AtomicBool::new(true));
        let (g, f) = (got.clone(), fail_pd.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_lowercase(), v.trim().to_owned());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let raw = String::from_utf8_lossy(&body).into_owned();
                let mut got = g.lock().expect("lock");
                let first_hook = path == "/hook" && !got.iter().any(|r| r.path == "/hook");
                let status = if (path == "/pd" && f.load(Ordering::SeqCst)) || first_hook {
                    500
                } else {
                    202
                };
                got.push(Received {
                    path,
                    headers,
                    body: serde_json::from_str(&raw).unwrap_or(Value::Null),
                    raw,
                    status,
                });
                drop(got);
                let mut stream = stream;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Receiver { addr, got, fail_pd }
    }

    fn got(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The bodies answered 202 on `path`.
    fn delivered(&self, path: &str) -> Vec<Value> {
        self.got(path)
            .into_iter()
            .filter(|r| r.status == 202)
            .map(|r| r.body)
            .collect()
    }
}

fn sha(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

fn config(dir: &Path, brokers: &str, t: &LiveTopics, receiver: &str) -> std::path::PathBuf {
    // No burn-rate alerts: with seconds of history, a bucket close during the
    // outage would fire them or not depending on the wall clock's second, and
    // this test counts exactly the outage's deliveries.
    let text = format!(
        r#"
burn_alerts = []

[engine]
allowed_lateness = "8s"
idle_timeout = "1s"
data_dir = "{data}"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
sha256 = "{admin}"
[[api.tokens]]
sha256 = "{ingest}"
scope = "ingest"

[kafka]
brokers = "{brokers}"
group_id = "{group}"
monitoring_topic = "{mon}"
tickets_topic = "{tkt}"
incidents_topic = "{inc}"
deadletter_topic = "{dl}"
[kafka.options]
"fetch.wait.max.ms" = "100"

[ingest.jira.customers]
SD = "acme"

[delivery]
min_backoff = "200ms"
max_backoff = "1s"
timeout = "5s"

[[deliveries]]
id = "pd"
type = "pagerduty"
url = "http://{receiver}/pd"
routing_key = "R0UTINGKEY"
rules = ["outage"]

[[deliveries]]
id = "hook"
type = "webhook"
url = "http://{receiver}/hook"
secret_env = "SLAFLOW_TEST_HOOK_SECRET"
customers = ["acme"]

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
down_when = "any"
stale_after = "1h"
outage_after = "2s"
resolve_after = "2s"
"#,
        data = dir.join("data").display(),
        admin = sha(ADMIN_TOKEN),
        ingest = sha(INGEST_TOKEN),
        group = t.group,
        mon = t.mon,
        tkt = t.tkt,
        inc = t.inc,
        dl = t.dl,
    );
    let path = dir.join("slaflow.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn start(config: &Path, log: &Path) -> Running {
    // `Running::start` inherits the environment: the webhook secret is read from it.
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("SLAFLOW_TEST_HOOK_SECRET", HOOK_SECRET) };
    Running::start(config, log)
}

/// POSTs `body` and returns (status, JSON answer).
fn post(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body).expect("POST");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An Alertmanager webhook body (version 4, fields as documented for
/// `<webhook_config>`) with one alert for service `web`.
fn alertmanager(status: &str, starts: i64, ends: Option<i64>, group_extra: &str) -> String {
    let ends = ends.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"WebDown\"{group_extra}}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "slaflow",
        "groupLabels": {"alertname": "WebDown"},
        "commonLabels": {"alertname": "WebDown", "service": "web", "severity": "critical"},
        "commonAnnotations": {"summary": "web answers 503"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "WebDown", "service": "web", "severity": "critical", "instance": "web-1:443"},
            "annotations": {"summary": "web answers 503"},
            "startsAt": rfc3339(starts),
            "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=probe_success+%3D%3D+0",
            "fingerprint": "5f1c2d3e4a5b6c7d"
        }]
    })
    .to_string()
}

/// The incidents topic read to its end once it holds at least `want`
/// records (they fire when the wall-clock watermark passes their deadline).
fn incidents(brokers: &str, topic: &str, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until(Duration::from_secs(60), || {
        got = values(brokers, topic, PARTITIONS, Duration::from_secs(30));
        got.len() >= want
    });
    (got.into_iter())
        .map(|(_, v)| serde_json::from_str(&v).expect("incident JSON"))
        .collect()
}

#[test]
fn alertmanager_to_pagerduty_with_retries_restart_and_no_duplicates() {
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, PARTITIONS);
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &brokers, &t, &receiver.addr);
    let run = start(&cfg, &dir.path().join("run1.log"));
    let base = format!("http://{}", run.api_addr());
    let am = format!("{base}/v1/ingest/alertmanager");
    assert!(
        wait_until(Duration::from_secs(60), || http_get(
            &format!("{base}/readyz"),
            ADMIN_TOKEN
        )
        .0 == 200),
        "not ready:\n{}",
        run.log_text()
    );

    // Firing, as Alertmanager sends it after group_wait; then the repeats it
    // sends on group changes and repeat_interval.
    let starts = slaflow::time::wall_now() - 3_000;
    let firing = alertmanager("firing", starts, None, "");
    let (status, first) = post(&am, Some(INGEST_TOKEN), &firing);
    assert_eq!(
        (status, first["accepted"].as_u64()),
        (200, Some(1)),
        "{first}"
    );
    for extra in ["", ",instance=\"web-1:443\""] {
        let (status, again) = post(
            &am,
            Some(INGEST_TOKEN),
            &alertmanager("firing", starts, None, extra),
        );
        assert_eq!(
            (
                status,
                again["accepted"].as_u64(),
                again["duplicates"].as_u64()
            ),
            (200, Some(0), Some(1)),
            "{again}"
        );
        assert_eq!(again["event_ids"], first["event_ids"]);
    }
    // The ingest token may post, not read.
    assert_eq!(
        http_get(&format!("{base}/v1/incidents"), INGEST_TOKEN).0,
        403
    );
    assert_eq!(post(&am, None, &firing).0, 401);

    // Malformed payloads: 400 and a dead letter each, never a 500.
    let (status, bad) = post(&am, Some(INGEST_TOKEN), "not json");
    assert_eq!(
        (status, bad["rejected"][0]["reason"].as_str()),
        (400, Some("malformed")),
        "{bad}"
    );
    let (status, _) = post(
        &am,
        Some(INGEST_TOKEN),
        &firing.replace("\"version\":\"4\"", "\"version\":\"3\""),
    );
    assert_eq!(status, 400);
    let mut no_service: Value = serde_json::from_str(&firing).expect("JSON");
    no_service["alerts"][0]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("service");
    let no_service = no_service.to_string();
    let (status, bad) = post(&am, Some(INGEST_TOKEN), &no_service);
    assert_eq!((status, bad["accepted"].as_u64()), (400, Some(0)), "{bad}");
    for body in ["", "[]", "{\"version\":\"4\",\"alerts\":[null]}", "\u{0}"] {
        let status = post(&am, Some(INGEST_TOKEN), body).0;
        assert_eq!(status, 400, "body {body:?}");
    }
    // Each refusal was dead-lettered (and flushed) before its answer.
    let dead = values(&brokers, &t.dl, PARTITIONS, Duration::from_secs(60));
    assert_eq!(dead.len(), 7, "dead letters: {dead:?}");
    let first_dead: Value = serde_json::from_str(
        &dead
            .iter()
            .find(|(_, v)| v.contains("not json"))
            .expect("dead letter of `not json`")
            .1,
    )
    .expect("JSON");
    assert_eq!(first_dead["topic"], "http:/v1/ingest/alertmanager");
    assert_eq!(first_dead["raw"], "not json");

    // The outage fires; the webhook target gets it after one 500, PagerDuty keeps failing.
    let trig = incidents(&brokers, &t.inc, 1);
    assert_eq!(trig.len(), 1, "no outage incident:\n{}", run.log_text());
    assert_eq!(
        (trig[0]["rule"].as_str(), trig[0]["action"].as_str()),
        (Some("outage"), Some("trigger"))
    );
    let id = trig[0]["incident_id"].as_str().expect("id").to_owned();
    assert!(wait_until(Duration::from_secs(30), || receiver
        .delivered("/hook")
        .len()
        == 1));
    let hook = receiver.got("/hook");
    assert_eq!(hook[0].status, 500);
    let signed = &hook[1];
    assert_eq!(
        signed.body, trig[0],
        "the webhook carries the contract's incident record"
    );
    // `t=<unix>,v1=<HMAC of "<t>.<body>">`, with a fresh timestamp.
    let header = signed.headers["x-slaflow-signature"].as_str();
    let signed_at: i64 = header
        .strip_prefix("t=")
        .and_then(|h| h.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("signature header {header:?}"));
    assert!(
        (slaflow::time::wall_now() / 1000 - signed_at).abs() < 120,
        "{header}"
    );
    assert_eq!(
        header,
        slaflow::sink::delivery::sign(HOOK_SECRET.as_bytes(), signed_at, signed.raw.as_bytes())
    );
    assert!(
        wait_until(Duration::from_secs(30), || receiver.got("/pd").len() >= 2),
        "PagerDuty is retried"
    );

    // Resolved: the outage resolves; PagerDuty still down.
    let ends = slaflow::time::wall_now();
    for _ in 0..2 {
        let (status, r) = post(
            &am,
            Some(INGEST_TOKEN),
            &alertmanager("resolved", starts, Some(ends), ""),
        );
        assert_eq!(status, 200, "{r}");
    }
    let all = incidents(&brokers, &t.inc, 2);
    assert_eq!(all.len(), 2, "no resolve:\n{}", run.log_text());
    assert_eq!(
        (all[1]["incident_id"].as_str(), all[1]["action"].as_str()),
        (Some(id.as_str()), Some("resolve"))
    );
    assert!(wait_until(Duration::from_secs(30), || receiver
        .delivered("/hook")
        .len()
        == 2));

    // Exactly two probe events on the topic: repeats were not published.
    let probes = values(&brokers, &t.mon, PARTITIONS, Duration::from_secs(60));
    assert_eq!(probes.len(), 2, "{probes:?}");
    let (_, metrics) = http_get(&format!("{base}/metrics"), ADMIN_TOKEN);
    assert!(
        metrics.contains("slaflow_delivery_attempts_total{target=\"pd\",outcome=\"retry\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("slaflow_delivery_pending{target=\"pd\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("slaflow_ingest_items_total{endpoint=\"/v1/ingest/alertmanager\",result=\"duplicate\"} 3"), "{metrics}");

    // Stop with PagerDuty still failing: both actions wait in the outbox.
    assert!(run.terminate().success());
    let pending = std::fs::read_dir(dir.path().join("data/outbox"))
        .expect("outbox")
        .count();
    assert_eq!(pending, 2);

    // PagerDuty recovers; after a restart the outbox delivers in order, once.
    receiver.fail_pd.store(false, Ordering::SeqCst);
    let run = start(&cfg, &dir.path().join("run2.log"));
    assert!(
        wait_until(Duration::from_secs(60), || receiver.delivered("/pd").len()
            == 2),
        "log:\n{}",
        run.log_text()
    );
    let pd = receiver.delivered("/pd");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["routing_key"], "R0UTINGKEY");
    assert_eq!(pd[0]["dedup_key"], id.as_str());
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["payload"]["source"], "web");
    assert_eq!(pd[0]["payload"]["timestamp"], trig[0]["started_at"]);
    assert!(
        pd[0]["payload"]["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        pd[1],
        json!({"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": id})
    );
    // Nothing left to deliver: no second copy can come later.
    let drained = |m: &str| {
        m.contains("slaflow_delivery_pending{target=\"pd\"} 0")
            && m.contains("slaflow_delivery_pending{target=\"hook\"} 0")
    };
    let base = format!("http://{}", run.api_addr());
    assert!(
        wait_until(Duration::from_secs(60), || drained(
            &http_get(&format!("{base}/metrics"), ADMIN_TOKEN).1
        )),
        "outbox not drained; log:\n{}",
        run.log_text()
    );
    assert_eq!(
        receiver.delivered("/pd").len(),
        2,
        "nothing delivered twice"
    );
    assert_eq!(receiver.delivered("/hook").len(), 2);
    assert!(run.terminate().success());
    assert_eq!(
        std::fs::read_dir(dir.path().join("data/outbox"))
            .expect("outbox")
            .count(),
        0
    );
}

#[test]
fn jira_webhooks_become_ticket_events() {
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, PARTITIONS);
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &brokers, &t, &receiver.addr);
    let run = start(&cfg, &dir.path().join("run.log"));
    let base = format!("http://{}", run.api_addr());
    let now = slaflow::time::wall_now();
    let created = json!({
        "timestamp": now - 2_000, "webhookEvent": "jira:issue_created", "issue_event_type_name": "issue_created",
        "user": {"accountId": "557058:agent"},
        "issue": {"id": "10042", "key": "SD-7", "fields": {
            "issuetype": {"name": "Incident"}, "project": {"key": "SD", "name": "Service Desk"},
            "priority": {"name": "High"}, "status": {"name": "Open"},
            "reporter": {"accountId": "557058:customer"}, "components": [{"name": "web"}]}}
    });
    // Jira's system webhooks cannot set headers: the token goes in the query.
    let url = format!("{base}/v1/ingest/jira?token={INGEST_TOKEN}");
    let (status, r) = post(&url, None, &created.to_string());
    assert_eq!((status, r["accepted"].as_u64()), (200, Some(1)), "{r}");
    let progress = json!({
        "timestamp": now - 1_000, "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10042", "key": "SD-7", "fields": {}},
        "changelog": {"id": "30001", "items": [{"field": "status", "fromString": "Open", "toString": "In Progress"}]}
    });
    for _ in 0..2 {
        assert_eq!(post(&url, None, &progress.to_string()).0, 200);
    }
    let (status, _) = post(&url, None, "{\"webhookEvent\":\"jira:issue_created\"}");
    assert_eq!(status, 400);
    // Published before the answers: the topic read to its end holds them all.
    let events = values(&brokers, &t.tkt, PARTITIONS, Duration::from_secs(60));
    assert_eq!(
        events.len(),
        3,
        "created, responded, status once each: {events:?}"
    );
    assert!(events.iter().all(|(k, _)| k == "SD-7"));
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (status, body) = http_get(&format!("{base}/v1/tickets/SD-7"), ADMIN_TOKEN);
            status == 200
                && body.contains("\"response_s\":")
                && !body.contains("\"response_s\":null")
        }),
        "ticket SD-7 never showed a response; log:\n{}",
        run.log_text()
    );
    assert!(run.terminate().success());
}
