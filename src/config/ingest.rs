//! `[ingest]`: how Alertmanager and Jira payloads map to contract events.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Dur;

use crate::model::{Priority, TicketKind};

/// `[ingest]`: how third-party payloads map to contract events.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// `[ingest.alertmanager]`.
    pub alertmanager: AlertmanagerConfig,
    /// `[ingest.jira]`.
    pub jira: JiraConfig,
    /// `[ingest.prometheus]`.
    pub prometheus: PrometheusConfig,
    /// `[ingest.github]`: GitHub `deployment_status` webhooks (section 15).
    pub github: Option<GithubConfig>,
}

/// `[ingest.github]`: how `POST /v1/ingest/github` reads GitHub
/// `deployment_status` webhooks into change events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The webhook's secret: bodies are authenticated by `X-Hub-Signature-256`.
    pub secret: String,
    /// Deployment environments that count (e.g. `["production"]`); empty: all.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Service id by repository `full_name` (`"octo-org/shop" = "shop"`).
    pub repositories: BTreeMap<String, String>,
}

/// `[ingest.prometheus]`: what the remote-write receiver
/// (`POST /v1/ingest/prometheus`) makes of each series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Series whose samples are probe results: 1 is `up`, 0 `down`.
    pub probe_series: String,
    /// Series with the probe's duration in seconds (the probe's labels, another
    /// name): its `latency_ms`, and `degraded` above `degraded_after`.
    pub duration_series: String,
    /// Labels naming the service; the first present wins.
    pub service_labels: Vec<String>,
    /// Label naming the probe source.
    pub source_label: String,
    /// Per service id: a successful probe slower than this is `degraded`.
    pub degraded_after: BTreeMap<String, Dur>,
    /// Series that become capacity metrics.
    pub metrics: Vec<PrometheusMetric>,
    /// Series that become request counters (contract section 14).
    pub counters: Vec<PrometheusCounter>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            probe_series: "probe_success".into(),
            duration_series: "probe_duration_seconds".into(),
            service_labels: vec!["service".into(), "job".into()],
            source_label: "instance".into(),
            degraded_after: BTreeMap::new(),
            metrics: Vec::new(),
            counters: Vec::new(),
        }
    }
}

/// `[[ingest.prometheus.counters]]`: a counter series (or a histogram's
/// bucket series) as counter samples, one slaflow series per Prometheus series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCounter {
    /// The series name (e.g. `http_requests_total`, `http_request_duration_seconds_bucket`).
    pub series: String,
    /// Label → regular expression the whole label value must match (e.g.
    /// `code = "5.."`, `le = "0.3"`); a missing label matches as empty.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, LabelRegex>,
    /// The counter name it feeds (what `[[slos]]` read).
    pub name: String,
}

/// A label regex, anchored like Prometheus's `=~`.
#[derive(Debug, Clone)]
pub struct LabelRegex(pub regex::Regex);

impl<'de> Deserialize<'de> for LabelRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        regex::Regex::new(&format!("^(?:{text})$"))
            .map(LabelRegex)
            .map_err(|e| serde::de::Error::custom(format!("bad regex {text:?}: {e}")))
    }
}

/// `[[ingest.prometheus.metrics]]`: one series as a capacity metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusMetric {
    /// The series name.
    pub series: String,
    /// Label naming the resource (e.g. `instance`, `mountpoint`).
    #[serde(default = "instance_label")]
    pub resource_label: String,
    /// The metric name in slaflow (default: the series name).
    #[serde(default)]
    pub metric: Option<String>,
    /// A series with the capacity, matched by the same labels but the name, at
    /// the same timestamp.
    #[serde(default)]
    pub capacity_series: Option<String>,
    /// A fixed capacity.
    #[serde(default)]
    pub capacity: Option<f64>,
    /// `used` (default): the series is the used amount; `free`: it is what is
    /// left, so used = capacity − value.
    #[serde(default)]
    pub series_is: SeriesIs,
}

fn instance_label() -> String {
    "instance".into()
}

/// What a metric series measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesIs {
    /// The used amount.
    #[default]
    Used,
    /// The amount left.
    Free,
}

/// What an alert means for its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The service is down while the alert fires.
    Down,
    /// The service is degraded while the alert fires.
    Degraded,
    /// The alert does not affect availability (no event).
    Ignore,
}

impl AlertStatus {
    /// The probe status it maps to (`ignore`: none).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Down => "down",
            AlertStatus::Degraded => "degraded",
            AlertStatus::Ignore => "ignore",
        }
    }
}

/// `[ingest.alertmanager]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Label holding the service id.
    pub service_label: String,
    /// Label naming the probe source; empty = one source per alert (its fingerprint).
    pub source_label: String,
    /// Label holding the severity.
    pub severity_label: String,
    /// Status by severity label value.
    pub severities: BTreeMap<String, AlertStatus>,
    /// Status by `alertname`; takes precedence over the severity.
    pub alertnames: BTreeMap<String, AlertStatus>,
    /// Status of an alert neither map matches.
    pub default_status: AlertStatus,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            service_label: "service".into(),
            source_label: String::new(),
            severity_label: "severity".into(),
            severities: BTreeMap::from([
                ("critical".into(), AlertStatus::Down),
                ("page".into(), AlertStatus::Down),
                ("warning".into(), AlertStatus::Degraded),
                ("info".into(), AlertStatus::Ignore),
                ("none".into(), AlertStatus::Ignore),
            ]),
            alertnames: BTreeMap::new(),
            default_status: AlertStatus::Down,
        }
    }
}

/// `[ingest.jira]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraConfig {
    /// JSON pointer to the value naming the customer.
    pub customer_field: String,
    /// Customer id by that value; a value not listed is used as the id itself.
    pub customers: BTreeMap<String, String>,
    /// JSON pointer to the service id (optional in the payload).
    pub service_field: String,
    /// JSON pointer to the issue type name.
    pub kind_field: String,
    /// Ticket kind (`incident` | `request`) by issue type name.
    pub kinds: BTreeMap<String, TicketKind>,
    /// JSON pointer to the priority name.
    pub priority_field: String,
    /// Priority by Jira priority name.
    pub priorities: BTreeMap<String, Priority>,
    /// slaflow status by Jira status name; others are lower-cased with `_` for spaces.
    pub statuses: BTreeMap<String, String>,
    /// Entering one of these Jira statuses counts as the first response.
    pub responded_statuses: Vec<String>,
    /// A public comment by someone other than the reporter counts as a response.
    pub respond_on_comment: bool,
}

impl Default for JiraConfig {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        JiraConfig {
            customer_field: "/issue/fields/project/key".into(),
            customers: BTreeMap::new(),
            service_field: "/issue/fields/components/0/name".into(),
            kind_field: "/issue/fields/issuetype/name".into(),
            kinds: BTreeMap::from([
                ("Incident".into(), TicketKind::Incident),
                ("Service Request".into(), TicketKind::Request),
                ("Service request".into(), TicketKind::Request),
                ("Service Request with Approvals".into(), TicketKind::Request),
            ]),
            priority_field: "/issue/fields/priority/name".into(),
            priorities: BTreeMap::from([
                ("Highest".into(), Priority::P1),
                ("High".into(), Priority::P2),
                ("Medium".into(), Priority::P3),
                ("Low".into(), Priority::P4),
                ("Lowest".into(), Priority::P4),
            ]),
            statuses: map(&[
                ("Done", "resolved"),
                ("Resolved", "resolved"),
                ("Closed", "closed"),
                ("Canceled", "closed"),
                ("Waiting for customer", "pending_customer"),
                ("Reopened", "reopened"),
            ]),
            responded_statuses: vec!["In Progress".into(), "Work in progress".into()],
            respond_on_comment: true,
        }
    }
}
