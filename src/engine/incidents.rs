//! Incident records (contract section 5): deterministic ids, actions, ordering.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Rule, Severity};
use crate::time::{Millis, format_ms, parse_rfc3339};

pub use crate::model::Action;

/// `first 16 hex chars of SHA-256("{rule}|{key}|{started_at_ms}")`: the same on
/// every instance and after every restart.
pub fn incident_id(rule: Rule, key: &str, started_at: Millis) -> String {
    let digest = Sha256::digest(format!("{rule}|{key}|{started_at}").as_bytes());
    hex::encode(&digest[..8])
}

/// One incident action, serialised exactly as the contract's record and read
/// back from it (outbox files, checkpoints), its instants parsed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "IncidentRecord")]
pub struct Incident {
    /// Deterministic id.
    pub incident_id: String,
    /// What happened.
    pub action: Action,
    /// What fired.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// Customer of the service or ticket.
    pub customer: String,
    /// Service, if any.
    pub service: Option<String>,
    /// Ticket, if any.
    pub ticket: Option<String>,
    /// RFC 3339 start.
    pub started_at: String,
    /// RFC 3339 instant of this action.
    pub at: String,
    /// RFC 3339 end (resolve only).
    pub ended_at: Option<String>,
    /// Human summary.
    pub summary: String,
    /// Rule-specific details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// `at` in ms, for ordering.
    #[serde(skip)]
    pub at_ms: Millis,
    /// `started_at` in ms, for reports.
    #[serde(skip)]
    pub started_ms: Millis,
}

impl Incident {
    /// A service incident action.
    #[allow(clippy::too_many_arguments)]
    pub fn service(
        rule: Rule,
        severity: Severity,
        key: &str,
        customer: &str,
        service: &str,
        action: Action,
        started: Millis,
        at: Millis,
        ended: Option<Millis>,
        summary: String,
    ) -> Incident {
        Incident {
            incident_id: incident_id(rule, key, started),
            action,
            rule,
            severity,
            customer: customer.to_owned(),
            service: Some(service.to_owned()),
            ticket: None,
            started_at: format_ms(started),
            at: format_ms(at),
            ended_at: ended.map(format_ms),
            summary,
            details: serde_json::json!({}),
            at_ms: at,
            started_ms: started,
        }
    }

    /// Contract order: by `at`, then `incident_id`, trigger before resolve.
    pub fn sort_key(&self) -> (Millis, &str, Action) {
        (self.at_ms, &self.incident_id, self.action)
    }

    /// One JSON line.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// The contract's incident record as read: [`Incident`] with its instants as
/// text only.
#[derive(Deserialize)]
struct IncidentRecord {
    incident_id: String,
    action: Action,
    rule: Rule,
    severity: Severity,
    customer: String,
    service: Option<String>,
    ticket: Option<String>,
    started_at: String,
    at: String,
    ended_at: Option<String>,
    summary: String,
    #[serde(default)]
    details: serde_json::Value,
}

impl TryFrom<IncidentRecord> for Incident {
    type Error = String;

    fn try_from(r: IncidentRecord) -> Result<Self, String> {
        let instant = |field: &str, text: &str| {
            parse_rfc3339(text).map_err(|e| format!("{field} {text:?}: {e}"))
        };
        Ok(Incident {
            started_ms: instant("started_at", &r.started_at)?,
            at_ms: instant("at", &r.at)?,
            incident_id: r.incident_id,
            action: r.action,
            rule: r.rule,
            severity: r.severity,
            customer: r.customer,
            service: r.service,
            ticket: r.ticket,
            started_at: r.started_at,
            at: r.at,
            ended_at: r.ended_at,
            summary: r.summary,
            details: r.details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_sha256_prefix() {
        // printf 'outage|web|1793613600000' | sha256sum
        let id = incident_id(Rule::Outage, "web", 1_793_613_600_000);
        assert_eq!(id.len(), 16);
        let full = hex::encode(Sha256::digest(b"outage|web|1793613600000"));
        assert_eq!(id, full[..16]);
        assert_ne!(id, incident_id(Rule::Outage, "web", 1_793_613_600_001));
    }

    #[test]
    fn json_round_trip() {
        let i = Incident::service(
            Rule::Outage,
            Severity::Critical,
            "web",
            "acme",
            "web",
            Action::Resolve,
            1_793_613_600_000,
            1_793_613_900_000,
            Some(1_793_613_800_000),
            "web down".into(),
        );
        let line = i.to_json().expect("encodes");
        assert_eq!(serde_json::from_str::<Incident>(&line).expect("reads"), i);
        assert!(serde_json::from_str::<Incident>("{}").is_err());
        let mut bad: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        bad["at"] = "yesterday".into();
        assert!(serde_json::from_value::<Incident>(bad).is_err());
    }
}
