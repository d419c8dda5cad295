//! `[delivery]` (outbox and retries) and `[[deliveries]]` (incident targets).

use std::path::PathBuf;

use serde::Deserialize;

use super::Dur;
use crate::model::Rule;

/// Target type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryType {
    /// PagerDuty Events API v2.
    Pagerduty,
    /// POST of the contract's incident JSON.
    Webhook,
}

/// One `[[deliveries]]` target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTarget {
    /// Target id (letters, digits, `-`, `_`): metrics label and outbox key.
    pub id: String,
    /// `pagerduty` or `webhook`.
    #[serde(rename = "type")]
    pub kind: DeliveryType,
    /// Endpoint; PagerDuty's by default for `pagerduty`.
    #[serde(default)]
    pub url: Option<String>,
    /// PagerDuty integration (routing) key.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Environment variable holding the routing key instead.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// Environment variable holding the webhook's HMAC-SHA256 secret (unsigned if absent).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Only incidents of these customers (all if empty).
    #[serde(default)]
    pub customers: Vec<String>,
    /// Only incidents of these rules (all if empty).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn default_signature_header() -> String {
    "X-Slaflow-Signature".into()
}

/// `[delivery]`: outbox and retry settings shared by all targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Outbox directory; default `<engine.data_dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// Pending deliveries kept at most; beyond, the oldest is dropped (and counted).
    pub max_pending: usize,
    /// Per-request timeout.
    pub timeout: Dur,
    /// First retry delay; doubles per failed attempt.
    pub min_backoff: Dur,
    /// Longest retry delay.
    pub max_backoff: Dur,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            outbox_dir: None,
            max_pending: 10_000,
            timeout: Dur(10_000),
            min_backoff: Dur(1_000),
            max_backoff: Dur(300_000),
        }
    }
}
