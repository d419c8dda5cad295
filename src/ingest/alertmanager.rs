//! Prometheus Alertmanager webhook payloads (version 4) → probe events.
//!
//! Alerts are edge-triggered: a firing alert becomes a `down` (or `degraded`)
//! probe at `startsAt`, its resolution an `up` probe at `endsAt`. Each alert is
//! its own probe source (its fingerprint, unless `source_label` names a label),
//! so two alerts on one service do not overwrite each other. `event_id` derives
//! from the fingerprint and `startsAt`/`endsAt`: Alertmanager re-sends a firing
//! alert at every `repeat_interval` and whenever its group changes, and those
//! repeats carry the same ids.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Rejected, Translated, derived_id};
use crate::config::{AlertStatus, AlertmanagerConfig, Config};
use crate::event::Topic;
use crate::time::parse_rfc3339;

/// The webhook body (only the fields used; unknown ones are ignored as
/// Alertmanager adds fields over time).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    version: String,
    alerts: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: String,
    labels: BTreeMap<String, String>,
    starts_at: String,
    #[serde(default)]
    ends_at: Option<String>,
    fingerprint: String,
}

/// Translates one webhook body. `Err` means the body as a whole is not a
/// version 4 payload; otherwise every alert is accepted, ignored or rejected.
pub fn translate(config: &Config, body: &[u8]) -> Result<Translated, Rejected> {
    let raw = || String::from_utf8_lossy(body).into_owned();
    let payload: Payload = serde_json::from_slice(body).map_err(|e| {
        Rejected::malformed(
            0,
            format!("not an Alertmanager webhook payload: {e}"),
            raw(),
        )
    })?;
    if payload.version != "4" {
        return Err(Rejected::malformed(
            0,
            format!(
                "unsupported Alertmanager payload version {:?} (expected \"4\")",
                payload.version
            ),
            raw(),
        ));
    }
    let map = &config.ingest.alertmanager;
    let mut out = Translated::default();
    for (index, value) in payload.alerts.iter().enumerate() {
        let text = value.to_string();
        match probe(map, value) {
            Ok(Some(json)) => out.push(config, Topic::Monitoring, index, json),
            Ok(None) => out.ignored += 1,
            Err(e) => out.rejected.push(Rejected::malformed(index, e, text)),
        }
    }
    Ok(out)
}

/// The probe event for one alert, `None` when its status maps to `ignore`.
fn probe(map: &AlertmanagerConfig, value: &serde_json::Value) -> Result<Option<String>, String> {
    let alert = Alert::deserialize(value).map_err(|e| format!("alert: {e}"))?;
    let label = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty());
    let service = label(&map.service_label).ok_or_else(|| {
        format!(
            "alert has no {:?} label naming the service",
            map.service_label
        )
    })?;
    let starts = parse_rfc3339(&alert.starts_at).map_err(|e| format!("startsAt: {e}"))?;
    let status = label("alertname")
        .and_then(|n| map.alertnames.get(n))
        .or_else(|| label(&map.severity_label).and_then(|s| map.severities.get(s)))
        .copied()
        .unwrap_or(map.default_status);
    if status == AlertStatus::Ignore {
        return Ok(None);
    }
    let source = match label(&map.source_label) {
        Some(s) => s.clone(),
        None => format!("alertmanager/{}", alert.fingerprint),
    };
    let (ts, probe_status, id) = match alert.status.as_str() {
        "firing" => (
            starts,
            status.as_str(),
            derived_id("am", &[&alert.fingerprint, &starts.to_string(), "firing"]),
        ),
        "resolved" => {
            let ends = alert
                .ends_at
                .as_deref()
                .ok_or("resolved alert without endsAt")
                .and_then(|s| parse_rfc3339(s).map_err(|_| "endsAt is not RFC 3339"))?;
            (
                ends,
                "up",
                derived_id(
                    "am",
                    &[&alert.fingerprint, &starts.to_string(), &ends.to_string()],
                ),
            )
        }
        other => {
            return Err(format!(
                "alert status {other:?} is neither firing nor resolved"
            ));
        }
    };
    Ok(Some(
        serde_json::json!({
            "event_id": id,
            "ts": ts,
            "service": service,
            "kind": "probe",
            "source": source,
            "status": probe_status,
        })
        .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reason;
    use crate::ingest::tests::config;

    /// The example from Alertmanager's documentation (`docs/configuration.md`,
    /// `<webhook_config>`), with concrete values.
    fn payload(status: &str, ends_at: &str) -> String {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"WebDown\"}}","truncatedAlerts":0,
            "status":"{status}","receiver":"slaflow","groupLabels":{{"alertname":"WebDown"}},
            "commonLabels":{{"alertname":"WebDown","service":"web","severity":"critical"}},
            "commonAnnotations":{{"summary":"web is down"}},"externalURL":"http://am:9093",
            "alerts":[{{"status":"{status}","labels":{{"alertname":"WebDown","service":"web","severity":"critical","instance":"eu-1"}},
            "annotations":{{"summary":"web is down"}},"startsAt":"2026-11-02T10:00:00.000Z",
            "endsAt":"{ends_at}","generatorURL":"http://prom:9090/graph","fingerprint":"c6a2d3f0e1b2a3c4"}}]}}"#
        )
    }

    fn event(t: &Translated) -> serde_json::Value {
        serde_json::from_str(&t.events[0].json).unwrap()
    }

    #[test]
    fn firing_then_resolved() {
        let c = config("");
        let firing = translate(&c, payload("firing", "0001-01-01T00:00:00Z").as_bytes()).unwrap();
        assert_eq!(firing.events.len(), 1);
        let e = event(&firing);
        assert_eq!(e["status"], "down");
        assert_eq!(e["ts"], 1_793_613_600_000i64);
        assert_eq!(e["source"], "alertmanager/c6a2d3f0e1b2a3c4");
        assert_eq!(firing.events[0].key, "web");
        let resolved =
            translate(&c, payload("resolved", "2026-11-02T10:05:00Z").as_bytes()).unwrap();
        let r = event(&resolved);
        assert_eq!(
            (r["status"].as_str(), r["ts"].as_i64()),
            (Some("up"), Some(1_793_613_900_000))
        );
        assert_ne!(firing.events[0].event_id, resolved.events[0].event_id);
        // A repeated notification carries the same id.
        let again = translate(&c, payload("firing", "0001-01-01T00:00:00Z").as_bytes()).unwrap();
        assert_eq!(again.events[0].event_id, firing.events[0].event_id);
    }

    #[test]
    fn mapping_is_configurable() {
        let c = config(
            "[ingest.alertmanager]\nsource_label = \"instance\"\n[ingest.alertmanager.alertnames]\nWebDown = \"degraded\"\n",
        );
        let t = translate(&c, payload("firing", "0001-01-01T00:00:00Z").as_bytes()).unwrap();
        let e = event(&t);
        assert_eq!(
            (e["status"].as_str(), e["source"].as_str()),
            (Some("degraded"), Some("eu-1"))
        );
        let c = config("[ingest.alertmanager.severities]\ncritical = \"ignore\"\n");
        let t = translate(&c, payload("firing", "0001-01-01T00:00:00Z").as_bytes()).unwrap();
        assert_eq!((t.events.len(), t.ignored), (0, 1));
    }

    #[test]
    fn bad_payloads_and_alerts_are_rejected() {
        let c = config("");
        for body in ["not json", "{}", r#"{"version":"3","alerts":[]}"#, "[1,2]"] {
            let e = translate(&c, body.as_bytes()).unwrap_err();
            assert_eq!((e.reason, e.raw.as_str()), (Reason::Malformed, body));
        }
        let no_service = payload("firing", "x").replace(
            "\"service\":\"web\",\"severity\":\"critical\",\"instance\"",
            "\"instance\"",
        );
        let t = translate(&c, no_service.as_bytes()).unwrap();
        assert_eq!(t.rejected.len(), 1);
        assert!(t.rejected[0].error.contains("service"), "{:?}", t.rejected);
        let unknown = payload("firing", "x").replace("\"service\":\"web\"", "\"service\":\"db\"");
        let t = translate(&c, unknown.as_bytes()).unwrap();
        assert_eq!(t.rejected[0].reason, Reason::UnknownService);
        let bad_end = payload("resolved", "yesterday");
        assert!(
            translate(&c, bad_end.as_bytes()).unwrap().rejected[0]
                .error
                .contains("endsAt")
        );
    }
}
