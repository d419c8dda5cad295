//! Incident delivery beyond Kafka: PagerDuty Events API v2 and a generic
//! (optionally HMAC-SHA256-signed) webhook, per `[[deliveries]]` target.
//!
//! Incidents enter a durable [`Outbox`] before the input offsets that produced
//! them are committed; one thread (off the async runtime, blocking HTTP) delivers
//! each target's queue in order, so a `resolve` never overtakes its `trigger`.
//! Failures that may pass (network, timeouts, 408, 429, 5xx) are retried with
//! exponential backoff; other 4xx answers are permanent and counted as rejected.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::outbox::{Outbox, OutboxError};
use crate::config::{Config, DeliveryConfig, DeliveryTarget, DeliveryType};
use crate::engine::incidents::{Action, Incident};
use crate::model::{Rule, Severity};
use crate::sign::hmac_hex;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Delivery failures that stop `run` (disk or configuration).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The outbox could not be written or read.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The delivery thread could not start.
    #[error("cannot start the delivery thread: {0}")]
    Thread(std::io::Error),
    /// A secret named by the config is missing.
    #[error("delivery {target}: environment variable {var} is not set")]
    MissingSecret {
        /// Target id.
        target: String,
        /// Variable name.
        var: String,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    target: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

/// Delivery metrics: attempts by outcome, pending deliveries per target.
#[derive(Clone, Default)]
pub struct DeliveryMetrics {
    attempts: Family<OutcomeLabel, Counter>,
    pending: Family<TargetLabel, Gauge>,
}

impl DeliveryMetrics {
    /// Registers the metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "delivery_attempts",
            "Incident delivery attempts by target and outcome (delivered, retry, rejected, dropped)",
            self.attempts.clone(),
        );
        registry.register(
            "delivery_pending",
            "Incident deliveries waiting in the outbox, by target",
            self.pending.clone(),
        );
    }

    fn count(&self, target: &str, outcome: &str) {
        self.attempts
            .get_or_create(&OutcomeLabel {
                target: target.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    fn set_pending(&self, target: &str, n: usize) {
        self.pending
            .get_or_create(&TargetLabel {
                target: target.to_owned(),
            })
            .set(n as i64);
    }
}

/// How a target formats and authenticates its requests.
#[derive(Debug, Clone)]
enum Format {
    PagerDuty {
        routing_key: String,
    },
    Webhook {
        secret: Option<Vec<u8>>,
        header: String,
    },
}

/// A resolved target.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    url: String,
    format: Format,
    customers: Vec<String>,
    rules: Vec<Rule>,
}

fn env_secret(target: &str, var: &str) -> Result<String, DeliveryError> {
    std::env::var(var).map_err(|_| DeliveryError::MissingSecret {
        target: target.to_owned(),
        var: var.to_owned(),
    })
}

impl Target {
    fn new(c: &DeliveryTarget) -> Result<Target, DeliveryError> {
        let id = c.id.clone();
        let format = match c.kind {
            DeliveryType::Pagerduty => Format::PagerDuty {
                routing_key: match (&c.routing_key, &c.routing_key_env) {
                    (_, Some(var)) => env_secret(&id, var)?,
                    (Some(k), None) => k.clone(),
                    // Refused by config validation.
                    (None, None) => String::new(),
                },
            },
            DeliveryType::Webhook => Format::Webhook {
                secret: c
                    .secret_env
                    .as_deref()
                    .map(|v| env_secret(&id, v).map(String::into_bytes))
                    .transpose()?,
                header: c.signature_header.clone(),
            },
        };
        let url = c
            .url
            .as_ref()
            .map_or(PAGERDUTY_URL, |u| u.as_str())
            .to_owned();
        Ok(Target {
            id,
            url,
            format,
            customers: c.customers.clone(),
            rules: c.rules.clone(),
        })
    }

    fn wants(&self, i: &Incident) -> bool {
        (self.customers.is_empty() || self.customers.contains(&i.customer))
            && (self.rules.is_empty() || self.rules.contains(&i.rule))
    }

    /// Body and extra headers for one incident record, signed at `unix_s`.
    fn request(
        &self,
        incident: &Incident,
        unix_s: i64,
    ) -> Result<(String, Vec<(String, String)>), serde_json::Error> {
        Ok(match &self.format {
            Format::PagerDuty { routing_key } => (
                pagerduty_event(routing_key, incident)?.to_string(),
                Vec::new(),
            ),
            Format::Webhook { secret, header } => {
                let body = incident.to_json()?;
                let headers = secret
                    .as_deref()
                    .map(|s| vec![(header.clone(), sign(s, unix_s, body.as_bytes()))])
                    .unwrap_or_default();
                (body, headers)
            }
        })
    }
}

/// A PagerDuty Events API v2 event for a contract incident record: `dedup_key` is
/// the incident id, so PagerDuty merges repeats and matches the `resolve`.
pub fn pagerduty_event(routing_key: &str, incident: &Incident) -> Result<Value, serde_json::Error> {
    if incident.action == Action::Resolve {
        return Ok(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": incident.incident_id,
        }));
    }
    // PagerDuty knows critical, error, warning, info.
    let severity = match incident.severity {
        Severity::Critical => "critical",
        Severity::Major => "error",
        Severity::Minor | Severity::Warning => "warning",
    };
    let source = (incident.service.as_deref())
        .or(incident.ticket.as_deref())
        .unwrap_or("slaflow");
    let summary: String = incident.summary.chars().take(1024).collect();
    Ok(json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": incident.incident_id,
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity,
            "timestamp": incident.started_at,
            "component": incident.service,
            "group": incident.customer,
            "class": incident.rule.as_str(),
            "custom_details": serde_json::to_value(incident)?,
        },
    }))
}

/// The webhook signature header's value: `t=<unix_s>,v1=<hex HMAC-SHA256(secret,
/// "<unix_s>.<body>")>`. The timestamp is signed with the body, so a receiver that
/// rejects stale `t` (say, older than 5 minutes) cannot be sent a replayed request.
pub fn sign(secret: &[u8], unix_s: i64, body: &[u8]) -> String {
    format!(
        "t={unix_s},v1={}",
        hmac_hex(secret, &[unix_s.to_string().as_bytes(), b".", body])
    )
}

enum Outcome {
    Delivered,
    Retry(String),
    Rejected(String),
}

fn post(agent: &ureq::Agent, url: &str, body: &str, headers: &[(String, String)]) -> Outcome {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send(body) {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match status {
                200..=299 => Outcome::Delivered,
                // Redirects are not followed: a redirected POST would become a GET
                // (losing the incident), or carry it to a host nobody configured.
                300..=399 => Outcome::Rejected(format!(
                    "HTTP {status} redirect to {:?} not followed: configure the final URL",
                    resp.headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                )),
                408 | 429 | 500..=599 => Outcome::Retry(format!("HTTP {status}")),
                _ => Outcome::Rejected(format!("HTTP {status}")),
            }
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

struct Queue {
    outbox: Outbox,
    /// Failed attempts in a row and when the head may be tried again, per target.
    backoff: HashMap<String, (u32, Instant)>,
    stop: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    wake: Condvar,
    targets: Vec<Target>,
    settings: DeliveryConfig,
    metrics: DeliveryMetrics,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running delivery: enqueue from the processing loop, a thread delivers.
pub struct Delivery {
    inner: Arc<Inner>,
    worker: Option<JoinHandle<()>>,
}

impl Delivery {
    /// Opens the outbox and starts delivering; `None` when no target is configured.
    pub fn start(
        config: &Config,
        metrics: DeliveryMetrics,
    ) -> Result<Option<Delivery>, DeliveryError> {
        if config.deliveries.is_empty() {
            return Ok(None);
        }
        let targets = config
            .deliveries
            .iter()
            .map(Target::new)
            .collect::<Result<Vec<_>, _>>()?;
        let settings = config.delivery.clone();
        let dir = settings
            .outbox_dir
            .clone()
            .unwrap_or_else(|| config.engine.data_dir.join("outbox"));
        let (outbox, corrupt) = Outbox::open(&dir, settings.max_pending)?;
        for path in corrupt {
            tracing::error!(path = %path.display(), "unreadable outbox entry set aside, not delivered");
        }
        for t in &targets {
            metrics.set_pending(&t.id, outbox.pending(&t.id));
        }
        tracing::info!(targets = targets.len(), pending = outbox.len(), outbox = %dir.display(), "incident delivery started");
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue {
                outbox,
                backoff: HashMap::new(),
                stop: false,
            }),
            wake: Condvar::new(),
            targets,
            settings,
            metrics,
        });
        let worker = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("slaflow-delivery".into())
                .spawn(move || deliver(&inner))
                .map_err(DeliveryError::Thread)?
        };
        Ok(Some(Delivery {
            inner,
            worker: Some(worker),
        }))
    }

    /// Durably queues each incident action for every target that selects it.
    pub fn enqueue(&self, incidents: &[Incident]) -> Result<(), DeliveryError> {
        if incidents.is_empty() {
            return Ok(());
        }
        let mut q = self.inner.lock();
        for i in incidents {
            for t in self.inner.targets.iter().filter(|t| t.wants(i)) {
                let (_, dropped) = q.outbox.push(&t.id, i.clone())?;
                for d in dropped {
                    tracing::error!(target = %d.target, incident = %d.incident.incident_id, action = ?d.incident.action, "outbox full: oldest incident dropped (trigger with its resolve)");
                    self.inner.metrics.count(&d.target, "dropped");
                    self.inner
                        .metrics
                        .set_pending(&d.target, q.outbox.pending(&d.target));
                }
                self.inner
                    .metrics
                    .set_pending(&t.id, q.outbox.pending(&t.id));
            }
        }
        self.inner.wake.notify_all();
        Ok(())
    }

    /// Deliveries still pending.
    pub fn pending(&self) -> usize {
        self.inner.lock().outbox.len()
    }
}

impl Drop for Delivery {
    /// Stops the worker; what is pending stays in the outbox for the next start.
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The HTTP client of deliveries: every status is an answer to judge (not an
/// error), and redirects are answers too, never followed.
fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// The worker: deliver each target's head when due, sleep until the next is due.
fn deliver(inner: &Inner) {
    let agent = http_agent(Duration::from_millis(inner.settings.timeout.0.max(1) as u64));
    let mut rng = rand::rngs::SmallRng::seed_from_u64(std::process::id().into());
    let mut q = inner.lock();
    while !q.stop {
        let now = Instant::now();
        let due = inner.targets.iter().find_map(|t| {
            let ready = q.backoff.get(&t.id).is_none_or(|&(_, at)| at <= now);
            let head = q.outbox.head(&t.id).filter(|_| ready)?;
            Some((t, head.seq, head.incident.clone()))
        });
        let Some((target, seq, incident)) = due else {
            let next = q
                .backoff
                .values()
                .map(|&(_, at)| at)
                .filter(|&at| at > now)
                .min();
            let wait = next.map_or(Duration::from_secs(1), |at| at - now);
            q = inner
                .wake
                .wait_timeout(q, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        };
        drop(q);
        let outcome = match target.request(&incident, crate::time::wall_now().div_euclid(1000)) {
            Ok((body, headers)) => post(&agent, &target.url, &body, &headers),
            // Every incident serialises; were one not to, it is not sent.
            Err(e) => Outcome::Rejected(format!("cannot encode the incident: {e}")),
        };
        q = inner.lock();
        let id = &target.id;
        let finished = match outcome {
            Outcome::Delivered => {
                inner.metrics.count(id, "delivered");
                true
            }
            Outcome::Rejected(why) => {
                tracing::error!(target = %id, incident = %incident.incident_id, error = %why, "delivery rejected by the receiver; not retried");
                inner.metrics.count(id, "rejected");
                true
            }
            Outcome::Retry(why) => {
                let attempts = q.backoff.get(id).map_or(0, |b| b.0) + 1;
                let base =
                    inner.settings.min_backoff.0.max(1) as f64 * 2f64.powi(attempts as i32 - 1);
                let delay =
                    base.min(inner.settings.max_backoff.0 as f64) * rng.random_range(0.8..1.2);
                tracing::warn!(target = %id, incident = %incident.incident_id, error = %why, attempts, retry_in_ms = delay as u64, "delivery failed; will retry");
                inner.metrics.count(id, "retry");
                q.backoff.insert(
                    id.clone(),
                    (
                        attempts,
                        Instant::now() + Duration::from_millis(delay as u64),
                    ),
                );
                false
            }
        };
        if finished {
            q.backoff.remove(id);
            if q.outbox.head(id).is_some_and(|h| h.seq == seq)
                && let Err(e) = q.outbox.pop(id)
            {
                tracing::error!(error = %e, "outbox");
            }
            inner.metrics.set_pending(id, q.outbox.pending(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(action: &str) -> Incident {
        let record = json!({"incident_id":"3f2a9c0b1d4e5f60","action":action,"rule":"outage","severity":"critical",
            "customer":"acme","service":"web","ticket":null,"started_at":"2026-11-02T10:00:00.000Z",
            "at":"2026-11-02T10:01:00.000Z","ended_at":null,"summary":"web down since 10:00","details":{}});
        serde_json::from_value(record).expect("a contract incident record")
    }

    #[test]
    fn pagerduty_shape() {
        let e = pagerduty_event("R1", &incident("trigger")).expect("encodes");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "3f2a9c0b1d4e5f60");
        assert_eq!(e["payload"]["severity"], "critical");
        assert_eq!(e["payload"]["source"], "web");
        assert_eq!(e["payload"]["timestamp"], "2026-11-02T10:00:00.000Z");
        assert_eq!(e["payload"]["summary"], "web down since 10:00");
        let r = pagerduty_event("R1", &incident("resolve")).expect("encodes");
        assert_eq!(
            r,
            json!({"routing_key":"R1","event_action":"resolve","dedup_key":"3f2a9c0b1d4e5f60"})
        );
    }

    #[test]
    fn burn_rate_incidents_page_with_their_alerts_severity() {
        let mut i = incident("trigger");
        i.rule = Rule::BurnRate;
        i.severity = Severity::Minor;
        i.details = json!({"alert":"ticket","factor":1.0,"long":"3d","short":"6h","long_burn":1.5,"short_burn":2.0});
        let e = pagerduty_event("R1", &i).expect("encodes");
        assert_eq!(e["payload"]["severity"], "warning");
        assert_eq!(e["payload"]["class"], "burn_rate");
        assert_eq!(e["payload"]["custom_details"]["details"]["alert"], "ticket");
    }

    /// A one-shot HTTP server on loopback answering `response` to one request.
    fn answer_once(response: &str) -> String {
        use std::io::{Read, Write};
        let response = response.to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(response.as_bytes());
            }
        });
        url
    }

    #[test]
    fn a_redirect_is_a_rejection_not_a_get() {
        let agent = http_agent(Duration::from_secs(5));
        let url = answer_once(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n",
        );
        match post(&agent, &url, "{}", &[]) {
            Outcome::Rejected(why) => {
                assert!(why.contains("302") && why.contains("elsewhere"), "{why}")
            }
            Outcome::Delivered | Outcome::Retry(_) => panic!("a redirect must be rejected"),
        }
    }

    /// Issue 32: what may pass is retried (408, 429, 5xx), other 4xx are
    /// permanent, 2xx delivered: answered by a real socket, read by ureq.
    #[test]
    fn status_codes_decide_retry_or_rejection() {
        let agent = http_agent(Duration::from_secs(5));
        for (status, want) in [
            ("200 OK", "delivered"),
            ("202 Accepted", "delivered"),
            ("408 Request Timeout", "retry"),
            ("429 Too Many Requests", "retry"),
            ("500 Internal Server Error", "retry"),
            ("503 Service Unavailable", "retry"),
            ("400 Bad Request", "rejected"),
            ("401 Unauthorized", "rejected"),
            ("404 Not Found", "rejected"),
            ("422 Unprocessable Entity", "rejected"),
        ] {
            let url = answer_once(&format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n"));
            let got = match post(&agent, &url, "{}", &[]) {
                Outcome::Delivered => "delivered",
                Outcome::Retry(_) => "retry",
                Outcome::Rejected(_) => "rejected",
            };
            assert_eq!(got, want, "{status}");
        }
    }

    #[test]
    fn signature_covers_the_timestamp() {
        let sig = sign(b"s3cret", 1_793_613_600, b"{}");
        let expected = hmac_hex(b"s3cret", &[b"1793613600.{}"]);
        assert_eq!(sig, format!("t=1793613600,v1={expected}"));
        assert_ne!(sign(b"s3cret", 1_793_613_601, b"{}"), sig);
    }
}
