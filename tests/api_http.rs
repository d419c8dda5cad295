//! The HTTP API over real HTTP on an ephemeral loopback port: every endpoint, the
//! auth matrix, CSV parsed back, the OpenAPI document against the routes, a
//! property test asserting no 5xx, and `slaflow demo`'s interfaces. Limits with
//! time and memory bounds are in `api_limits.rs`.

mod api_server;
mod common;

use std::io::{BufRead, BufReader};

use api_server::*;
use proptest::prelude::*;

fn a_ticket_of(customer: &str) -> String {
    let core = server().shared.core();
    core.pipeline
        .engine()
        .tickets()
        .iter()
        .find(|t| t.customer == customer)
        .map(|t| t.id.to_string())
        .expect("a ticket")
}

#[test]
fn auth_matrix_on_every_customer_endpoint() {
    for (customer, service, slo, own, other) in [
        ("acme", "web", "web-requests", ACME, GLOBEX),
        ("globex", "shop", "shop-latency", GLOBEX, ACME),
    ] {
        let ticket = a_ticket_of(customer);
        let paths = [
            format!("/v1/reports/sla?customer={customer}"),
            format!("/v1/reports/capacity?customer={customer}"),
            format!("/v1/services/{service}/availability"),
            format!("/v1/incidents?status=all&customer={customer}"),
            format!("/v1/tickets/{ticket}"),
            format!("/v1/services/{service}/slo"),
            format!("/v1/reports/sla.html?customer={customer}"),
            format!("/v1/slos/{slo}"),
        ];
        for (i, p) in paths.iter().enumerate() {
            let (s, b) = get(p, None);
            assert_eq!(s, 401, "{p} without token");
            assert!(json(&b)["error"].is_string());
            assert_eq!(get(p, Some("not-a-token")).0, 401, "{p} wrong token");
            assert_eq!(get(p, Some(ADMIN)).0, 200, "{p} admin");
            assert_eq!(get(p, Some(own)).0, 200, "{p} own customer");
            let (s, b) = get(p, Some(other));
            // Another customer's service or ticket is indistinguishable from a
            // missing one, so ids cannot be enumerated.
            let hidden = i == 2 || i == 4 || i == 5 || i == 7;
            assert_eq!(s, if hidden { 404 } else { 403 }, "{p} other customer: {b}");
            assert!(json(&b)["error"].is_string());
        }
        let missing = [
            "/v1/services/no-such-service/availability",
            "/v1/tickets/NO-SUCH-TICKET",
            "/v1/services/no-such-service/slo",
        ];
        let hidden = [
            format!("/v1/services/{service}/availability"),
            format!("/v1/tickets/{ticket}"),
            format!("/v1/services/{service}/slo"),
        ];
        for (m, h) in missing.iter().zip(&hidden) {
            let (a, b) = (get(m, Some(other)), get(h, Some(other)));
            assert_eq!(a.0, b.0);
            let shape = |body: &str| {
                json(body)["error"]
                    .as_str()
                    .map(|e| e.split(' ').take(2).collect::<Vec<_>>().join(" "))
            };
            assert_eq!(shape(&a.1), shape(&b.1), "{m} vs {h}");
        }
    }
    for (p, body) in [
        (
            "/v1/maintenance",
            r#"{"service":"web","start":"2026-11-03T00:00:00Z","end":"2026-11-03T01:00:00Z"}"#,
        ),
        ("/v1/query", r#"{"sql":"SELECT 1"}"#),
        (
            "/v1/ingest/events",
            r#"{"event_id":"auth-1","ts":1,"service":"web","kind":"probe","source":"s","status":"up"}"#,
        ),
    ] {
        assert_eq!(post(p, None, body).0, 401);
        assert_eq!(post(p, Some(ACME), body).0, 403);
        assert!(post(p, Some(ADMIN), body).0 < 300, "{p}");
    }
    // A customer token defaults to its own customer; an admin must name one.
    assert_eq!(
        json(&get("/v1/reports/sla", Some(ACME)).1)["customer"],
        "acme"
    );
    assert_eq!(get("/v1/reports/sla", Some(ADMIN)).0, 400);
    // Incident lists are filtered to the token's customer.
    let list = json(&get("/v1/incidents?status=all&limit=5000", Some(GLOBEX)).1);
    assert!(
        list.as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|i| i["customer"] == "globex"))
    );
}

#[test]
fn sla_report_json_and_csv_agree() {
    let q = "/v1/reports/sla?customer=acme&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z";
    let (s, body) = get(q, Some(ADMIN));
    assert_eq!(s, 200);
    let r = json(&body);
    assert_eq!(r["from"], "2026-11-02T00:00:00.000Z");
    assert_eq!(
        r["tickets"]["by_priority"].as_array().map(Vec::len),
        Some(4)
    );
    let services = r["services"].as_array().expect("services");
    assert_eq!(services.len(), 3);
    assert!(services.iter().all(|s| s["availability_pct"].is_number()));
    let (s, csv_text) = get(&format!("{q}&format=csv"), Some(ADMIN));
    assert_eq!(s, 200);
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rd.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), services.len());
    for (row, svc) in rows.iter().zip(services) {
        let col = |name: &str| {
            row.get(headers.iter().position(|h| h == name).expect(name))
                .expect("cell")
                .to_owned()
        };
        assert_eq!(col("service"), svc["service"].as_str().expect("service"));
        let close = |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < 1e-9);
        assert!(close(
            col("downtime_s").parse::<f64>().ok(),
            svc["downtime_s"].as_f64()
        ));
        assert!(close(
            col("availability_pct").parse::<f64>().ok(),
            svc["availability_pct"].as_f64()
        ));
        assert_eq!(col("met"), svc["met"].to_string());
    }
    for bad in [
        "&format=xml",
        "&from=yesterday",
        "&to=2026-11-01",
        "&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (s, b) = get(&format!("{q}{bad}"), Some(ADMIN));
        assert_eq!(s, 400, "{bad}");
        assert!(json(&b)["error"].is_string());
    }
    assert_eq!(get("/v1/reports/sla?customer=nobody", Some(ADMIN)).0, 404);
}

#[test]
fn live_evidence_packs_need_kafka_and_the_customers_token() {
    let q = "/v1/evidence?customer=acme&month=2026-11";
    assert_eq!(get(q, None).0, 401);
    assert_eq!(get(q, Some(GLOBEX)).0, 403);
    assert_eq!(get(q, Some(INGEST_ACME)).0, 403);
    for bad in ["", "&month=2026-13", "&month=11-2026"] {
        let (s, b) = get(&format!("/v1/evidence?customer=acme{bad}"), Some(ACME));
        assert_eq!(s, 400, "{bad}: {b}");
    }
    // This server has no Kafka input: packs come from files there.
    let (s, b) = get(q, Some(ACME));
    assert_eq!(s, 404);
    assert!(
        json(&b)["error"]
            .as_str()
            .is_some_and(|e| e.contains("slaflow evidence")),
        "{b}"
    );
}

#[test]
fn sla_html_is_the_json_report_as_a_page() {
    let period = "customer=acme&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z";
    let report = json(&get(&format!("/v1/reports/sla?{period}"), Some(ACME)).1);
    let url = format!("{}/v1/reports/sla.html?{period}", server().base);
    let mut r = agent()
        .get(url)
        .header("Authorization", format!("Bearer {ACME}"))
        .call()
        .expect("GET sla.html");
    assert_eq!(r.status().as_u16(), 200);
    let header = |name: &str| {
        (r.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let csp = header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = r.body_mut().read_to_string().expect("body");
    common::check_report_page(&html, &report);
    for bad in ["&format=csv", "&from=yesterday", "&to=2026-11-01"] {
        let (s, b) = get(&format!("/v1/reports/sla.html?{period}{bad}"), Some(ACME));
        assert_eq!(s, 400, "{bad}");
        assert!(json(&b)["error"].is_string());
    }
}

#[test]
fn capacity_availability_incidents_and_tickets() {
    let r = json(
        &get(
            "/v1/reports/capacity?customer=globex&from=2026-11-02&to=2026-11-03",
            Some(ADMIN),
        )
        .1,
    );
    let series = r["series"].as_array().expect("series");
    assert_eq!(series.len(), 6, "2 metrics × 3 services");
    assert_eq!(series[0]["hours"].as_array().map(Vec::len), Some(24));
    let a = json(
        &get(
            "/v1/services/web/availability?from=2026-11-02&to=2026-11-03&step=6h",
            Some(ADMIN),
        )
        .1,
    );
    let steps = a["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4);
    let total: f64 = steps
        .iter()
        .map(|s| {
            ["up_s", "degraded_s", "down_s", "maintenance_s", "nodata_s"]
                .iter()
                .map(|k| s[k].as_f64().unwrap_or(0.0))
                .sum::<f64>()
        })
        .sum();
    assert_eq!(total, 86_400.0);
    assert_eq!(
        get("/v1/services/web/availability?step=1ms", Some(ADMIN)).0,
        400
    );
    assert_eq!(
        get("/v1/services/web/availability?step=banana", Some(ADMIN)).0,
        400
    );
    assert_eq!(get("/v1/services/nope/availability", Some(ADMIN)).0, 404);
    let open = json(&get("/v1/incidents", Some(ADMIN)).1);
    let n_open = server().shared.core().open.len();
    assert_eq!(open.as_array().map(Vec::len), Some(n_open.min(500)));
    assert_eq!(get("/v1/incidents?status=closed", Some(ADMIN)).0, 400);
    let t = a_ticket_of("acme");
    let v = json(&get(&format!("/v1/tickets/{t}"), Some(ACME)).1);
    assert_eq!(v["ticket"], t.as_str());
    assert!(v["incidents"].is_array() && v["kind"].is_string());
    assert_eq!(get("/v1/tickets/NOPE-1", Some(ADMIN)).0, 404);
}

/// A `deployment_status` webhook as GitHub documents it (docs.github.com,
/// "Webhook events and payloads", deployment_status; trimmed to the fields
/// slaflow reads and a few around them).
fn deployment_status(status_id: u64, state: &str, environment: &str, created_at: &str) -> String {
    serde_json::json!({
        "action": "created",
        "deployment_status": {
            "url": format!("https://api.github.com/repos/octo-org/shop/deployments/1042/statuses/{status_id}"),
            "id": status_id,
            "node_id": "DES_kwDOAbc",
            "state": state,
            "description": "",
            "environment": environment,
            "target_url": "",
            "created_at": created_at,
            "updated_at": created_at,
            "deployment_url": "https://api.github.com/repos/octo-org/shop/deployments/1042",
            "repository_url": "https://api.github.com/repos/octo-org/shop"
        },
        "deployment": {
            "url": "https://api.github.com/repos/octo-org/shop/deployments/1042",
            "id": 1042,
            "node_id": "DE_kwDOAbc",
            "sha": "a10867b14bb761a232cd80139fbd4c0d33264240",
            "ref": "main",
            "task": "deploy",
            "environment": environment,
            "created_at": created_at,
            "updated_at": created_at
        },
        "repository": { "id": 1296269, "name": "shop", "full_name": "octo-org/shop" },
        "sender": { "login": "octocat", "id": 1 }
    })
    .to_string()
}

/// Section 15: GitHub's webhooks, signed with the secret, become change events.
#[test]
fn github_deployment_statuses_become_changes_and_need_the_signature() {
    let secret = b"it's a secret to everybody";
    let send = |event: &str, body: &str, signature: Option<String>| {
        let mut r = agent()
            .post(format!("{}/v1/ingest/github", server().base))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", event);
        if let Some(s) = signature {
            r = r.header("X-Hub-Signature-256", s);
        }
        let mut answer = r.send(body).expect("send");
        (
            answer.status().as_u16(),
            answer.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let sign = |body: &str| {
        format!(
            "sha256={}",
            slaflow::sign::hmac_hex(secret, &[body.as_bytes()])
        )
    };
    let now = chrono::Utc::now() - chrono::Duration::seconds(30);
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut published = Vec::new();
    for (id, state, environment, accepted) in [
        (9001, "in_progress", "production", false),
        (9002, "success", "production", true),
        (9003, "failure", "production", true),
        (9004, "error", "production", true),
        (9005, "success", "staging", false),
    ] {
        let body = deployment_status(id, state, environment, &at);
        let (status, answer) = send("deployment_status", &body, Some(sign(&body)));
        assert_eq!(status, 200, "{state} {environment}: {answer}");
        let a = json(&answer);
        assert_eq!(
            a["accepted"],
            u64::from(accepted),
            "{state} {environment}: {a}"
        );
        assert_eq!(
            a["ignored"],
            u64::from(!accepted),
            "{state} {environment}: {a}"
        );
        if accepted {
            published.push(format!("github:{id}"));
        }
        // GitHub redelivers: the same status is a duplicate, not a second change.
        if id == 9002 {
            let again = json(&send("deployment_status", &body, Some(sign(&body))).1);
            assert_eq!(
                (again["accepted"].as_u64(), again["duplicates"].as_u64()),
                (Some(0), Some(1))
            );
        }
    }
    let submitted = server().submitted.lock().expect("lock").clone();
    let changes: Vec<serde_json::Value> = (submitted.iter())
        .map(|l| json(l))
        .filter(|v| v["kind"] == "change")
        .collect();
    let got: Vec<(String, String)> = (changes.iter())
        .map(|v| {
            (
                v["event_id"].as_str().unwrap_or("").to_owned(),
                v["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = published
        .iter()
        .zip(["success", "failed", "failed"])
        .map(|(id, o)| (id.clone(), o.to_owned()))
        .collect();
    assert_eq!(got, want);
    for v in &changes {
        assert_eq!(
            (v["service"].as_str(), v["change_id"].as_str()),
            (Some("shop"), Some("1042")),
            "{v}"
        );
    }
    // A body signed with another secret, an edited body, no signature: 401.
    let body = deployment_status(9010, "success", "production", &at);
    let forged = format!(
        "sha256={}",
        slaflow::sign::hmac_hex(b"guess", &[body.as_bytes()])
    );
    assert_eq!(send("deployment_status", &body, Some(forged)).0, 401);
    let edited = body.replace("1042", "1043");
    assert_eq!(send("deployment_status", &edited, Some(sign(&body))).0, 401);
    assert_eq!(send("deployment_status", &body, None).0, 401);
    // The ping GitHub sends when the webhook is created is answered, not stored.
    let ping = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (status, answer) = send("ping", ping, Some(sign(ping)));
    assert_eq!((status, json(&answer)["ignored"].as_u64()), (200, Some(1)));
    // A repository not mapped to a service is refused, naming it.
    let other = deployment_status(9011, "success", "production", &at)
        .replace("octo-org/shop", "octo-org/blog");
    let (status, answer) = send("deployment_status", &other, Some(sign(&other)));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("octo-org/blog"), "{answer}");
}

#[test]
fn prometheus_remote_write_over_http() {
    use prost::Message;
    use slaflow::ingest::prometheus::{Label, Sample, TimeSeries, WriteRequest};
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let ts = slaflow::time::wall_now() - 5_000;
    let request = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: vec![
                    label("__name__", "probe_success"),
                    label("instance", "https://web.example/prom-test"),
                    label("service", "web"),
                ],
                samples: vec![Sample {
                    value: 0.0,
                    timestamp: ts,
                }],
            },
            TimeSeries {
                labels: vec![label("__name__", "go_goroutines"), label("job", "web")],
                samples: vec![Sample {
                    value: 12.0,
                    timestamp: ts,
                }],
            },
        ],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy");
    let send = |token: &str, encoding: &str, body: &[u8]| {
        let url = format!("{}/v1/ingest/prometheus", server().base);
        let mut r = agent()
            .post(url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", encoding)
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body)
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    };
    assert_eq!(send(INGEST_ACME, "snappy", &body), (204, String::new()));
    let submitted = server().submitted.lock().expect("lock").clone();
    let probe = submitted
        .iter()
        .find(|e| e.contains("prom-test"))
        .expect("the probe was published");
    let probe = json(probe);
    assert_eq!(
        (probe["status"].as_str(), probe["ts"].as_i64()),
        (Some("down"), Some(ts))
    );
    // Prometheus resends after a timeout: a repeat, still 204, not published twice.
    assert_eq!(send(INGEST_ACME, "snappy", &body).0, 204);
    let again = server().submitted.lock().expect("lock");
    assert_eq!(again.iter().filter(|e| e.contains("prom-test")).count(), 1);
    drop(again);
    let (s, b) = send(INGEST_ACME, "snappy", b"not snappy at all");
    assert_eq!(s, 400);
    assert!(
        json(&b)["error"]
            .as_str()
            .is_some_and(|e| e.contains("snappy")),
        "{b}"
    );
    assert_eq!(send(INGEST_ACME, "gzip", &body).0, 400);
    assert_eq!(
        send(ACME, "snappy", &body).0,
        403,
        "a customer token may not ingest"
    );
}

#[test]
fn maintenance_is_validated_and_submitted() {
    let (s, b) = post(
        "/v1/maintenance",
        Some(ADMIN),
        r#"{"service":"db","start":"2026-11-05T22:00:00Z","end":1793919600000,"change_id":"CHG-9"}"#,
    );
    assert_eq!(s, 202, "{b}");
    let ev = json(&b);
    assert_eq!(ev["kind"], "maintenance");
    assert_eq!(ev["end"], 1_793_919_600_000i64);
    assert!(
        server()
            .submitted
            .lock()
            .expect("lock")
            .iter()
            .any(|j| j.contains("CHG-9"))
    );
    for bad in [
        r#"{"service":"nope","start":1,"end":2}"#,
        r#"{"service":"db","start":5,"end":2}"#,
        r#"{"service":"db","start":"soon","end":2}"#,
        r#"{"service":"db"}"#,
        // 200 years (engine.max_window is 31 days).
        r#"{"service":"db","start":"2026-11-05T00:00:00Z","end":"2226-11-05T00:00:00Z"}"#,
        "not json",
    ] {
        let (s, b) = post("/v1/maintenance", Some(ADMIN), bad);
        assert_eq!(s, 400, "{bad}: {b}");
    }
}

#[test]
fn exclusions_are_admin_only_validated_and_submitted() {
    let body = r#"{"service":"db","exclusion_id":"EXC-77","start":"2026-11-02T10:00:00Z","end":"2026-11-02T10:30:00Z","reason":"customer firewall change","approved_by":"j.doe"}"#;
    for (token, want) in [(ACME, 403), (INGEST_ACME, 403), (GLOBEX, 403)] {
        let (s, b) = post("/v1/exclusions", Some(token), body);
        assert_eq!(s, want, "{token}: {b}");
    }
    assert_eq!(post("/v1/exclusions", None, body).0, 401);
    // Not through the generic ingest endpoint either.
    let event = r#"{"event_id":"x1","ts":1793613600000,"service":"db","kind":"exclusion","exclusion_id":"E","start":1793613600000,"end":1793617200000,"reason":"r","approved_by":"a"}"#;
    let (s, b) = post("/v1/ingest/events", Some(INGEST_ACME), event);
    assert_eq!(s, 403, "{b}");
    let (s, b) = post("/v1/exclusions", Some(ADMIN), body);
    assert_eq!(s, 202, "{b}");
    let ev = json(&b);
    assert_eq!(ev["kind"], "exclusion");
    assert_eq!(ev["approved_by"], "j.doe");
    // `api:` and a version 4 UUID.
    let id = ev["event_id"].as_str().expect("event id");
    let uuid = id.strip_prefix("api:").expect("api: prefix");
    let parts: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
    assert_eq!(&uuid[14..15], "4", "{id}");
    assert!(ev["ts"].is_i64());
    assert!((server().submitted.lock().expect("lock").iter()).any(|j| j.contains("EXC-77")));
    for bad in [
        r#"{"service":"db","exclusion_id":"E","start":1793613600000,"end":1793617200000,"reason":"r"}"#,
        r#"{"service":"db","exclusion_id":"E","start":1793613600000,"end":1793617200000,"reason":"","approved_by":"a"}"#,
        r#"{"service":"db","exclusion_id":"","start":1793613600000,"end":1793617200000,"reason":"r","approved_by":"a"}"#,
        r#"{"service":"db","exclusion_id":"E","start":1793617200000,"end":1793613600000,"reason":"r","approved_by":"a"}"#,
        r#"{"service":"db","exclusion_id":"E","start":"2026-11-02T00:00:00Z","end":"2226-11-02T00:00:00Z","reason":"r","approved_by":"a"}"#,
        r#"{"service":"nope","exclusion_id":"E","start":1793613600000,"end":1793617200000,"reason":"r","approved_by":"a"}"#,
    ] {
        let (s, b) = post("/v1/exclusions", Some(ADMIN), bad);
        assert_eq!(s, 400, "{bad}: {b}");
    }
}

/// Section 14: `GET /v1/slos/{id}` over the SLO's own window gives the
/// report's figures for that period; another customer's SLO is a 404 like one
/// that does not exist.
#[test]
fn request_slo_is_the_report_over_its_window_and_customer_scoped() {
    for (id, token, customer) in [
        ("web-requests", ACME, "acme"),
        ("shop-latency", GLOBEX, "globex"),
    ] {
        let (status, body) = get(&format!("/v1/slos/{id}"), Some(token));
        assert_eq!(status, 200, "{body}");
        let b = json(&body);
        assert_eq!(
            (b["slo"].as_str(), b["customer"].as_str()),
            (Some(id), Some(customer))
        );
        let q = format!(
            "/v1/reports/sla?customer={customer}&from={}&to={}",
            b["from"].as_str().expect("from"),
            b["to"].as_str().expect("to")
        );
        let report = json(&get(&q, Some(ADMIN)).1);
        let row = (report["slos"].as_array().expect("slos").iter())
            .find(|s| s["slo"] == id)
            .expect("the SLO in its customer's report")
            .clone();
        assert!(
            row["total"].as_u64().is_some_and(|t| t > 100_000),
            "a day of requests: {row}"
        );
        for field in [
            "slo",
            "service",
            "objective_pct",
            "window",
            "total",
            "bad",
            "met",
        ] {
            assert_eq!(b[field], row[field], "{id} {field}");
        }
        for field in ["ratio_pct", "budget_events", "budget_remaining_events"] {
            let (a, r) = (
                b[field].as_f64().expect("number"),
                row[field].as_f64().expect("number"),
            );
            assert!(
                (a - r).abs() <= 1e-9 * r.abs().max(1.0),
                "{id} {field}: {a} vs {r}"
            );
        }
        let snapshot = server().shared.snapshot();
        let t = &snapshot.engine.services()[b["service"].as_str().expect("service")];
        let open = t.requests().open_alerts(id);
        for a in b["alerts"].as_array().expect("alerts") {
            let name = a["name"].as_str().expect("name");
            assert_eq!(
                a["firing"].as_bool(),
                Some(open.contains(&name)),
                "{id} {name}"
            );
            assert!(a["long_burn"].is_f64(), "{a}");
        }
    }
    let (unknown, body) = get("/v1/slos/nope", Some(ACME));
    assert_eq!(unknown, 404, "{body}");
    let (other, body) = get("/v1/slos/shop-latency", Some(ACME));
    assert_eq!(other, 404, "another customer's SLO: {body}");
    assert_eq!(get("/v1/slos/web-requests", None).0, 401);
}

#[test]
fn slo_status_shows_each_alert_and_the_months_budget() {
    let b = json(&get("/v1/services/web/slo", Some(ACME)).1);
    let snapshot = server().shared.snapshot();
    let t = &snapshot.engine.services()["web"];
    assert_eq!(
        (b["service"].as_str(), b["customer"].as_str()),
        (Some("web"), Some("acme"))
    );
    assert_eq!(
        b["budget_remaining_ratio"].as_f64(),
        t.budget_remaining_ratio()
    );
    let names: Vec<_> = b["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [Some("page-fast"), Some("page-slow"), Some("ticket")]
    );
    for a in b["alerts"].as_array().expect("alerts") {
        let windows = [a["long"].as_str(), a["short"].as_str()];
        assert!(a["long_burn"].is_f64() && a["short_burn"].is_f64(), "{a}");
        let open = t.open_burn_alerts().any(|n| Some(n) == a["name"].as_str());
        assert_eq!(a["firing"].as_bool(), Some(open), "{windows:?}");
    }
    // Hourly from the month's start (the first record here), ending now.
    let budget = b["budget"].as_array().expect("budget");
    assert!(budget.len() >= 24, "{}", budget.len());
    let last = budget.last().map(|p| p["remaining_ratio"].as_f64());
    assert_eq!(last.flatten(), t.budget_remaining_ratio());
}

#[test]
fn sql_query_is_read_only_and_limited() {
    let n = server().shared.core().incidents.len();
    let (s, b) = post(
        "/v1/query",
        Some(ADMIN),
        r#"{"sql":"SELECT count(*) AS n FROM incidents"}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(json(&b)["rows"][0]["n"], n);
    let (s, b) = post(
        "/v1/query",
        Some(ADMIN),
        r#"{"sql":"SELECT service, sum(down_ms) AS down FROM availability_buckets GROUP BY service ORDER BY service","limit":2}"#,
    );
    assert_eq!(s, 200, "{b}");
    let r = json(&b);
    assert_eq!(r["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["truncated"], true);
    assert_eq!(r["columns"], serde_json::json!(["service", "down"]));
    for bad in [
        "DROP TABLE incidents",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO incidents SELECT * FROM incidents",
        "SELEKT 1",
        "SELECT * FROM nowhere",
        "",
    ] {
        let (s, b) = post(
            "/v1/query",
            Some(ADMIN),
            &serde_json::json!({ "sql": bad }).to_string(),
        );
        assert_eq!(s, 400, "{bad}: {b}");
    }
    // The report queries run through the same tables.
    let sql = slaflow::report::AVAILABILITY_SQL
        .replace("$1", "0")
        .replace("$2", "9999999999999");
    let (s, b) = post(
        "/v1/query",
        Some(ADMIN),
        &serde_json::json!({ "sql": sql }).to_string(),
    );
    assert_eq!(s, 200, "{b}");
}

#[test]
fn health_readiness_and_metrics() {
    assert_eq!(json(&get("/healthz", None).1)["status"], "ok");
    assert_eq!(get("/readyz", None).0, 200);
    let (s, m) = get("/metrics", None);
    assert_eq!(s, 200);
    for name in [
        "slaflow_records_read_total ",
        "slaflow_records_applied_total ",
        "slaflow_records_deadlettered_total{reason=\"duplicate\"}",
        "slaflow_records_deadlettered_total{reason=\"future\"}",
        "slaflow_incidents_total{rule=\"outage\",action=\"trigger\"}",
        "slaflow_open_incidents ",
        "slaflow_open_tickets ",
        "slaflow_services{state=\"up\"}",
        "slaflow_watermark_lag_seconds{topic=\"monitoring\",partition=\"0\"}",
        "slaflow_processing_latency_seconds_bucket",
    ] {
        assert!(m.contains(name), "{name} missing from:\n{m}");
    }
    assert!(m.contains("# TYPE slaflow_records_read counter"));
    slo_gauges_match_the_engine(&m);
    promtool_accepts(&m);
    let (s, html) = get("/", None);
    assert_eq!(s, 200);
    assert!(html.contains("<title>slaflow"));
    assert_eq!(get("/nope", None).0, 404);
}

/// The SLO gauges of contract section 11, one per service (and window), equal
/// to what the engine's timelines say.
fn slo_gauges_match_the_engine(m: &str) {
    let value = |prefix: &str| -> Option<f64> {
        let line = m.lines().find(|l| l.starts_with(prefix))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let snapshot = server().shared.live_snapshot();
    for slo in &server().shared.config.slos {
        let t = &snapshot.engine.services()[slo.service()];
        let close = t
            .requests()
            .evaluated()
            .expect("a day of counters was evaluated");
        let (a, b) = slaflow::engine::requests::Requests::window_of(slo, close);
        let want = t.slo_counts(slo, a, b).ratio_pct().map(|r| r / 100.0);
        let c = t.customer();
        let got = value(&format!(
            "slaflow_slo_ratio{{customer=\"{c}\",slo=\"{}\",window=\"{}\"}}",
            slo.id(),
            slo.window.text()
        ));
        assert!(
            got.is_some() && got == want,
            "{}: {got:?} vs {want:?}",
            slo.id()
        );
        let rates = t.slo_burn_rates(slo, close, &[300_000, 259_200_000]);
        for (w, rate) in ["5m", "3d"].iter().zip(rates) {
            let got = value(&format!(
                "slaflow_request_slo_burn_rate{{customer=\"{c}\",slo=\"{}\",window=\"{w}\"}}",
                slo.id()
            ));
            assert_eq!(got, rate, "{} {w}", slo.id());
        }
    }
    let services = snapshot.engine.services();
    assert!(!services.is_empty());
    for (id, t) in services {
        let c = t.customer();
        let ratio = value(&format!(
            "slaflow_slo_error_budget_remaining_ratio{{customer=\"{c}\",service=\"{id}\"}}"
        ));
        assert_eq!(ratio, t.budget_remaining_ratio(), "{id}");
        let avail = value(&format!(
            "slaflow_slo_availability_ratio{{customer=\"{c}\",service=\"{id}\",period=\"month\"}}"
        ));
        assert_eq!(avail, t.month_availability(), "{id}");
        let credit = value(&format!(
            "slaflow_sla_credit_pct{{customer=\"{c}\",service=\"{id}\"}}"
        ));
        let tiers = server()
            .shared
            .config
            .credits_for(c)
            .expect("the scenario has credits");
        assert_eq!(
            credit,
            t.month_availability_pct().map(|a| tiers.credit_for(a)),
            "{id}"
        );
        assert!(
            avail.is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{id}: {avail:?}"
        );
        let windows = ["1h", "5m", "6h", "30m", "3d"];
        let rates = t.burn_rates(&[3_600_000, 300_000, 21_600_000, 1_800_000, 259_200_000]);
        for (w, rate) in windows.iter().zip(rates) {
            let got = value(&format!(
                "slaflow_slo_burn_rate{{customer=\"{c}\",service=\"{id}\",window=\"{w}\"}}"
            ));
            assert_eq!(got, rate, "{id} {w}");
            // A service on office hours may have measured nothing in a short
            // window at night (contract section 13).
            let always = server()
                .shared
                .config
                .service(id)
                .is_some_and(|s| s.service_hours == "24x7");
            assert!(
                got.is_some() || !always,
                "{id} {w}: a day of data measures every window"
            );
        }
    }
}

/// `promtool check metrics` (Debian's `prometheus`, installed by
/// scripts/test.sh) parses the exposition. Its linter reads the classic text
/// format, where a counter's HELP names `x_total`; OpenMetrics names the family
/// `x`, so exactly those reports are expected and nothing else.
fn promtool_accepts(m: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("SLAFLOW_REQUIRE_PEERS").is_none() => {
            eprintln!(
                "SKIPPED promtool check: promtool not runnable ({e}); scripts/test.sh installs it"
            );
            return;
        }
        Err(e) => panic!("promtool is required (SLAFLOW_REQUIRE_PEERS): {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(m.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(3),
        "promtool could not parse /metrics ({code:?}):\n{report}"
    );
    for problem in report.lines().filter(|l| !l.trim().is_empty()) {
        let family = problem.strip_suffix("_total no help text");
        let known = family.is_some_and(|f| {
            m.contains(&format!("# HELP {f} ")) && m.contains(&format!("# TYPE {f} counter"))
        });
        assert!(known, "promtool: {problem}");
    }
}

#[test]
fn openapi_document_matches_the_routes() {
    let (s, b) = get("/openapi.json", None);
    assert_eq!(s, 200);
    let doc = json(&b);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert_eq!(doc["info"]["title"], "slaflow");
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let mut want = vec![
        "/healthz",
        "/metrics",
        "/readyz",
        "/v1/evidence",
        "/v1/exclusions",
        "/v1/incidents",
        "/v1/ingest/alertmanager",
        "/v1/ingest/events",
        "/v1/ingest/github",
        "/v1/ingest/jira",
        "/v1/ingest/prometheus",
        "/v1/maintenance",
        "/v1/overview",
        "/v1/query",
        "/v1/reports/capacity",
        "/v1/reports/sla",
        "/v1/reports/sla.html",
        "/v1/services/{id}/availability",
        "/v1/services/{id}/slo",
        "/v1/slos/{id}",
        "/v1/tickets/{id}",
    ];
    want.sort();
    assert_eq!(paths, want);
    // Every documented operation answers (no route is missing), with documented responses.
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let concrete = path.replace(
                "{id}",
                if path.contains("services") {
                    "web"
                } else {
                    "X-1"
                },
            );
            let (s, b) = if method == "get" {
                get(&concrete, Some(ADMIN))
            } else {
                post(&concrete, Some(ADMIN), "{}")
            };
            let not_routed = s == 404 && b.contains("no such endpoint");
            assert!(!not_routed && s < 500, "{method} {path} → {s} {b}");
        }
    }
    // Referenced schemas exist.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "SlaReport",
        "CapacityReport",
        "Incident",
        "TicketView",
        "QueryRequest",
        "MaintenanceRequest",
        "IngestResponse",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
}

/// The document states where parameters go and what they must be, and the
/// server refuses what it says is wrong (schemathesis checks both at large).
#[test]
fn openapi_parameters_are_query_parameters_with_their_bounds() {
    let doc = json(&get("/openapi.json", None).1);
    let param = |path: &str, name: &str| {
        let params = doc["paths"][path]["get"]["parameters"].as_array().cloned();
        (params.into_iter().flatten())
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))
    };
    for path in ["/v1/reports/sla", "/v1/reports/capacity", "/v1/evidence"] {
        let customer = param(path, "customer");
        assert_eq!(
            (&customer["in"], &customer["required"]),
            (&"query".into(), &true.into()),
            "{path}"
        );
    }
    let from = param("/v1/reports/sla", "from");
    assert_eq!(from["required"], false);
    let pattern = from["schema"]["pattern"].as_str().expect("a time pattern");
    assert!(pattern.contains("[0-9]{4}-[0-9]{2}-[0-9]{2}"), "{pattern}");
    assert_eq!(param("/v1/incidents", "limit")["schema"]["maximum"], 5000);
    let body = &doc["paths"]["/v1/ingest/alertmanager"]["post"]["requestBody"]["content"];
    let required = &body["application/json"]["schema"]["required"];
    assert_eq!(required, &serde_json::json!(["version", "alerts"]));
    // What the document bounds, the server refuses.
    for (q, why) in [
        ("/v1/incidents?limit=5001", "above 5000"),
        ("/v1/reports/sla?customer=acme&form=2026-11-02", "`form`"),
        ("/v1/reports/sla.html?customer=acme&format=csv", "`format`"),
        ("/v1/reports/sla?from=2026-11-02", "missing `customer`"),
    ] {
        let (s, b) = get(q, Some(ADMIN));
        assert_eq!(s, 400, "{q}: {b}");
        assert!(b.contains(why), "{q}: {b}");
    }
    let (s, b) = post(
        "/v1/query",
        Some(ADMIN),
        r#"{"sql":"SELECT 1","limit":10001}"#,
    );
    assert!(s == 400 && b.contains("above 10000"), "{s} {b}");
    let (s, b) = post("/v1/ingest/events", Some(ADMIN), " \n");
    assert!(s == 400 && b.contains("empty body"), "{s} {b}");
}

/// Percent-encodes everything but unreserved characters (the client needs a valid URI).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fuzz_path() -> impl Strategy<Value = String> {
    let endpoint = prop::sample::select(vec![
        "/v1/reports/sla",
        "/v1/reports/sla.html",
        "/v1/reports/capacity",
        "/v1/services/web/availability",
        "/v1/services/%00/availability",
        "/v1/incidents",
        "/v1/tickets/INC-1001",
        "/v1/tickets/..%2f..",
        "/v1/overview",
        "/metrics",
        "/readyz",
        "/",
    ]);
    let key = prop::sample::select(vec![
        "customer", "from", "to", "format", "step", "status", "limit", "month", "x",
    ]);
    let value = prop_oneof![
        Just("acme".to_owned()),
        Just("globex".to_owned()),
        Just("2026-11-02".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9000000000000000000".to_owned()),
        Just("253402300800000".to_owned()),
        Just("9999-12-31T23:59:59.999Z".to_owned()),
        Just("0000-01-01".to_owned()),
        Just("1000000000000000000d".to_owned()),
        Just("18446744073709551615ms".to_owned()),
        Just("1s".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%C0%80%ED%A0%80".to_owned()),
        Just("a".repeat(20_000)),
        Just("1h".to_owned()),
        Just("csv".to_owned()),
        "[ -~]{0,12}".prop_map(|s| percent_encode(&s)),
    ];
    (endpoint, prop::collection::vec((key, value), 0..5)).prop_map(|(e, kv)| {
        let q: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        if q.is_empty() {
            e.to_owned()
        } else {
            format!("{e}?{}", q.join("&"))
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn no_request_gets_a_5xx(path in fuzz_path(), token in prop::sample::select(vec![Some(ADMIN), Some(ACME), None, Some("x")]),
                             body in prop_oneof![Just("{}".to_owned()), Just("[]".to_owned()), "[ -~]{0,40}", Just(r#"{"sql":"SELECT * FROM tickets"}"#.to_owned()),
                                                 Just(r#"{"service":"web","start":-9223372036854775808,"end":9223372036854775807}"#.to_owned()),
                                                 Just(format!(r#"{{"event_id":"{}","ts":1,"service":"web","kind":"probe","source":"s","status":"up"}}"#, "e".repeat(50_000))),
                                                 Just(r#"{"event_id":"x","ts":1e308,"service":"web","kind":"metric","resource":"r","metric":"m","value":1e308,"capacity":-0.0}"#.to_owned()),
                                                 Just(r#"{"service":"web","start":1,"end":"x"}"#.to_owned()), Just(r#"{"sql":"SELECT 1/0"}"#.to_owned()),
                                                 Just(r#"{"version":"4","alerts":[{},{"status":"firing","labels":{"service":"web"},"startsAt":"x","fingerprint":"f"}]}"#.to_owned()),
                                                 Just(r#"{"webhookEvent":"jira:issue_updated","timestamp":1,"issue":{"id":"1","key":"K"},"changelog":{"items":[{"field":"priority","toString":"?"}]}}"#.to_owned())]) {
        let (s, b) = get(&path, token);
        prop_assert!(s < 500, "GET {} → {} {}", path, s, b);
        for p in ["/v1/query", "/v1/maintenance", "/v1/exclusions", "/v1/ingest/alertmanager", "/v1/ingest/events", "/v1/ingest/jira"] {
            let (s, b) = post(p, token, &body);
            prop_assert!(s < 500, "POST {} {} → {} {}", p, body, s, b);
        }
        // The same body with bytes that are not UTF-8, and with extreme numbers.
        let mut bytes = body.clone().into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
        let extreme = body.replace('1', "-9223372036854775808").replace("\"x\"", "18446744073709551615");
        for p in ["/v1/query", "/v1/maintenance", "/v1/exclusions", "/v1/ingest/events", "/v1/ingest/jira"] {
            let (s, b) = post_raw(p, token.unwrap_or("x"), &bytes);
            prop_assert!(s < 500, "POST {} (non-UTF-8) → {} {}", p, s, b);
            let (s, b) = post(p, token, &extreme);
            prop_assert!(s < 500, "POST {} {} → {} {}", p, extreme, s, b);
        }
    }
}

#[test]
fn demo_on_every_interface_warns_and_prints_a_url_a_browser_opens() {
    let mut child = common::slaflow()
        .args(["demo", "--listen", "0.0.0.0:0", "--history-days", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let url = (stdout.lines().map_while(Result::ok))
        .find_map(|l| Some(l.trim().strip_prefix("Dashboard:")?.trim().to_owned()))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        stderr.contains("warning: listening on 0.0.0.0:"),
        "{stderr}"
    );
}

#[test]
fn ingest_refuses_future_items_and_limits_tokens_to_their_customers() {
    let probe = |id: &str, ts: &str, service: &str| {
        format!(
            r#"{{"event_id":"{id}","ts":{ts},"service":"{service}","kind":"probe","source":"s","status":"up"}}"#
        )
    };
    let now = slaflow::time::wall_now();
    let body = [
        probe("fut-1", "\"2099-01-01T00:00:00Z\"", "web"),
        probe("fut-2", &now.to_string(), "web"),
    ]
    .join("\n");
    let (s, b) = post("/v1/ingest/events", Some(ADMIN), &body);
    assert_eq!(s, 400, "{b}");
    let r = json(&b);
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["rejected"][0]["index"], 0);
    assert_eq!(r["rejected"][0]["reason"], "future");
    // An ingest token limited to acme writes acme's services, not globex's.
    let (s, b) = post(
        "/v1/ingest/events",
        Some(INGEST_ACME),
        &probe("ten-1", &now.to_string(), "web"),
    );
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        "/v1/ingest/events",
        Some(INGEST_ACME),
        &probe("ten-2", &now.to_string(), "shop"),
    );
    assert_eq!(s, 403, "{b}");
    assert!(
        json(&b)["error"]
            .as_str()
            .is_some_and(|e| e.contains("shop"))
    );
    // ... nor tickets of another customer (known to the engine or created in the payload).
    let globex_ticket = a_ticket_of("globex");
    let responded = format!(
        r#"{{"event_id":"ten-3","ts":{now},"ticket":"{globex_ticket}","type":"responded"}}"#
    );
    assert_eq!(
        post("/v1/ingest/events", Some(INGEST_ACME), &responded).0,
        403
    );
    let created = format!(
        r#"{{"event_id":"ten-4","ts":{now},"ticket":"NEW-1","type":"created","customer":"acme","priority":"P3","kind":"request"}}"#
    );
    let then = format!(r#"{{"event_id":"ten-5","ts":{now},"ticket":"NEW-1","type":"responded"}}"#);
    let (s, b) = post(
        "/v1/ingest/events",
        Some(INGEST_ACME),
        &format!("{created}\n{then}"),
    );
    assert_eq!(s, 200, "{b}");
    // And it is still refused everywhere but ingest.
    assert_eq!(
        get("/v1/reports/sla?customer=acme", Some(INGEST_ACME)).0,
        403
    );
}

#[test]
fn bodies_up_to_the_documented_limit_are_read_and_larger_ones_get_json_413() {
    let now = slaflow::time::wall_now();
    // 3 MiB: over axum's 2 MiB default, under the documented 8 MiB.
    let line = |i: usize| {
        format!(
            r#"{{"event_id":"big-{i}","ts":{now},"service":"web","kind":"probe","source":"s{}","status":"up","pad":"{}"}}"#,
            i % 3,
            "x".repeat(900)
        )
    };
    let body: Vec<String> = (0..3300).map(line).collect();
    let body = body.join("\n");
    assert!(body.len() > 3 << 20);
    let (s, b) = post("/v1/ingest/events", Some(ADMIN), &body);
    assert_eq!(s, 200, "{}", &b[..b.len().min(300)]);
    let too_big = "x".repeat(9 << 20);
    let (s, b) = post_raw("/v1/ingest/events", ADMIN, too_big.as_bytes());
    assert_eq!(s, 413);
    assert!(json(&b)["error"].is_string(), "{b}");
    let (s, b) = post_raw(
        "/v1/query",
        ADMIN,
        format!(r#"{{"sql":"{}"}}"#, "1".repeat(100_000)).as_bytes(),
    );
    assert_eq!(s, 413);
    assert!(json(&b)["error"].is_string(), "{b}");
    // Every refusal is JSON, a wrong method too.
    let (s, b) = get("/v1/query", Some(ADMIN));
    assert_eq!(s, 405);
    assert!(json(&b)["error"].is_string(), "{b}");
}

/// Issue 32: `/v1/overview` (the dashboard's first call) shows a customer
/// token only its own customer, services and open incidents.
#[test]
fn overview_shows_a_customer_only_its_own() {
    let open = server().shared.snapshot().open.clone();
    let count = |c: Option<&str>| {
        open.values()
            .filter(|i| c.is_none_or(|c| i.customer == c))
            .count()
    };
    assert!(count(None) > 0, "the day has open incidents to filter");
    for (token, ids, customer) in [
        (ADMIN, vec!["acme", "globex"], None),
        (ACME, vec!["acme"], Some("acme")),
        (GLOBEX, vec!["globex"], Some("globex")),
    ] {
        let (s, b) = get("/v1/overview", Some(token));
        assert_eq!(s, 200, "{b}");
        let v = json(&b);
        let shown: Vec<&str> = (v["customers"].as_array().expect("customers").iter())
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(shown, ids, "{b}");
        assert_eq!(
            v["open_incidents"].as_u64(),
            Some(count(customer) as u64),
            "{b}"
        );
    }
    assert_eq!(get("/v1/overview", None).0, 401);
}
