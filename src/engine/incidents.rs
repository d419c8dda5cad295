//! Incident records (contract section 5): deterministic ids, actions, ordering.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Rule, Severity};
use crate::time::{Millis, format_ms, parse_rfc3339};

/// `trigger` or `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The incident starts.
    Trigger,
    /// The incident ends.
    Resolve,
}

/// `first 16 hex chars of SHA-256("{rule}|{key}|{started_at_ms}")`: the same on
/// every instance and after every restart.
pub fn incident_id(rule: Rule, key: &str, started_at: Millis) -> String {
    let digest = Sha256::digest(format!("{rule}|{key}|{started_at}").as_bytes());
    hex::encode(&digest[..8])
}

/// One incident action, serialised exactly as the contract's record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a record written by [`Incident::to_json`] back (checkpoints);
    /// `None` if it is not one.
    pub fn from_json(text: &str) -> Option<Incident> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        let opt = |k: &str| s(k).map(str::to_owned);
        let rule = Rule::parse(s("rule")?)?;
        let severity = Severity::parse(s("severity")?)?;
        let action = match s("action")? {
            "trigger" => Action::Trigger,
            "resolve" => Action::Resolve,
            _ => return None,
        };
        let (started_at, at) = (s("started_at")?.to_owned(), s("at")?.to_owned());
        Some(Incident {
            incident_id: s("incident_id")?.to_owned(),
            action,
            rule,
            severity,
            customer: s("customer")?.to_owned(),
            service: opt("service"),
            ticket: opt("ticket"),
            started_ms: parse_rfc3339(&started_at).ok()?,
            at_ms: parse_rfc3339(&at).ok()?,
            started_at,
            at,
            ended_at: opt("ended_at"),
            summary: s("summary")?.to_owned(),
            details: v.get("details").cloned().unwrap_or_default(),
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
        assert_eq!(Incident::from_json(&i.to_json()), Some(i));
        assert_eq!(Incident::from_json("{}"), None);
    }
}
