//! Batches of contract events: NDJSON (one event per line) or a JSON array.
//! An object with a `ticket` field is a ticket event, any other a monitoring event.

use serde_json::Value;

use super::{Rejected, Translated};
use crate::config::Config;
use crate::event::Topic;

/// Translates one body. `Err` when the body is empty, or starts with `[` and is
/// not a JSON array; a bad NDJSON line is rejected on its own (index = 0-based line number).
pub fn translate(config: &Config, body: &[u8]) -> Result<Translated, Rejected> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(Rejected::malformed(0, "empty body: no event", ""));
    }
    let mut out = Translated::default();
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| Rejected::malformed(0, format!("not a JSON array: {e}"), text.as_ref()))?;
        for (index, item) in items.into_iter().enumerate() {
            let topic = topic_of(&item);
            out.push(config, topic, index, item.to_string());
        }
    } else {
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let topic = serde_json::from_str::<Value>(line)
                .map(|v| topic_of(&v))
                .unwrap_or(Topic::Monitoring);
            out.push(config, topic, index, line.to_owned());
        }
    }
    Ok(out)
}

fn topic_of(v: &Value) -> Topic {
    if v.get("ticket").is_some() {
        Topic::Tickets
    } else {
        Topic::Monitoring
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reason;
    use crate::ingest::tests::config;

    const PROBE: &str = r#"{"event_id":"m1","ts":"2026-11-02T10:00:00Z","service":"web","kind":"probe","source":"eu-1","status":"up"}"#;
    const TICKET: &str = r#"{"event_id":"t1","ts":1793613600000,"ticket":"INC-1","type":"created","customer":"acme","priority":"P2","kind":"incident"}"#;

    #[test]
    fn ndjson_and_arrays_route_by_topic() {
        let c = config("");
        let nd = format!("{PROBE}\n\n{TICKET}\nnot json\n");
        let t = translate(&c, nd.as_bytes()).unwrap();
        let topics: Vec<_> = t.events.iter().map(|e| (e.topic, e.key.as_str())).collect();
        assert_eq!(
            topics,
            [(Topic::Monitoring, "web"), (Topic::Tickets, "INC-1")]
        );
        assert_eq!(
            (t.rejected[0].index, t.rejected[0].reason),
            (3, Reason::Malformed)
        );
        assert_eq!(t.rejected[0].raw, "not json");

        let arr = format!("[{PROBE}, {TICKET}, 42]");
        let t = translate(&c, arr.as_bytes()).unwrap();
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.rejected[0].index, 2);
        assert_eq!(translate(&c, b"[{").unwrap_err().reason, Reason::Malformed);
    }
}
