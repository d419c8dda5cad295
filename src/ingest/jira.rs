//! Jira (Service Management) webhooks → ticket events.
//!
//! - `jira:issue_created` → `created` (customer, service, kind and priority read
//!   from configurable JSON pointers into the payload and mapped by name);
//! - `jira:issue_updated` → one `status` / `priority` event per changelog item, and
//!   `responded` when the new status is one of `responded_statuses`;
//! - `comment_created` → `responded` for a public comment by someone other than
//!   the reporter (the first response to the customer).
//!
//! Event ids derive from the issue id and the changelog or comment id, so Jira's
//! webhook retries deduplicate. Other webhook events are acknowledged and ignored.

use serde_json::{Value, json};

use super::{Rejected, Translated};
use crate::config::{Config, JiraConfig};
use crate::event::Topic;
use crate::model::{Priority, TicketKind};
use crate::time::Millis;

impl JiraConfig {
    fn status(&self, jira: &str) -> String {
        self.statuses
            .get(jira)
            .cloned()
            .unwrap_or_else(|| jira.trim().to_lowercase().replace(' ', "_"))
    }

    fn priority(&self, issue: &Value) -> Result<Priority, String> {
        let name = text_at(issue, &self.priority_field)?;
        self.priorities.get(name).copied().ok_or_else(|| {
            format!("Jira priority {name:?} is not mapped in [ingest.jira.priorities]")
        })
    }
}

/// The string at `pointer`, or why there is none.
fn text_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no text at {pointer:?}"))
}

/// Jira writes `2026-11-02T10:00:00.000+0100` (no colon in the offset).
fn jira_time(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Translates one webhook body. `Err` when it is not a Jira issue webhook.
pub fn translate(config: &Config, body: &[u8]) -> Result<Translated, Rejected> {
    let raw = || String::from_utf8_lossy(body).into_owned();
    let bad = |e: String| Rejected::malformed(0, e, raw());
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let event = text_at(&v, "/webhookEvent")
        .map_err(|_| bad("not a Jira webhook: no webhookEvent".into()))?;
    let ts = v
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("Jira webhook without a numeric timestamp".into()))?;
    let (issue_id, ticket) = match (text_at(&v, "/issue/id"), text_at(&v, "/issue/key")) {
        (Ok(id), Ok(key)) => (id, key),
        _ => return Err(bad("Jira webhook without issue.id and issue.key".into())),
    };
    let mut hook = Webhook {
        config,
        body,
        v: &v,
        ts,
        issue_id,
        ticket,
        out: Translated::default(),
    };
    let map = &config.ingest.jira;
    match event {
        "jira:issue_created" => hook.issue_created().map_err(bad)?,
        "jira:issue_updated" => hook.issue_updated(),
        "comment_created" if map.respond_on_comment => hook.comment_created().map_err(bad)?,
        _ => hook.out.ignored += 1,
    }
    Ok(hook.out)
}

/// One webhook being translated.
struct Webhook<'a> {
    config: &'a Config,
    body: &'a [u8],
    v: &'a Value,
    ts: Millis,
    issue_id: &'a str,
    ticket: &'a str,
    out: Translated,
}

impl Webhook<'_> {
    /// Event ids are derived from the issue id, so Jira's retries are duplicates.
    fn id(&self, suffix: &str) -> String {
        format!("jira-{}-{suffix}", self.issue_id)
    }

    fn push(&mut self, event: Value) {
        (self.out).push(self.config, Topic::Tickets, 0, event.to_string());
    }

    fn issue_created(&mut self) -> Result<(), String> {
        let (customer, service, kind, priority) = created(&self.config.ingest.jira, self.v)?;
        let at = text_at(self.v, "/issue/fields/created")
            .ok()
            .and_then(jira_time)
            .unwrap_or(self.ts);
        let event = json!({"event_id": self.id("created"), "ts": at, "ticket": self.ticket,
            "type": "created", "customer": customer, "service": service,
            "priority": priority.as_str(), "kind": kind});
        self.push(event);
        Ok(())
    }

    /// Status and priority changes; an unmapped priority is refused, the other
    /// items of the same update are still taken.
    fn issue_updated(&mut self) {
        // Without a changelog id (some automation rules and older servers),
        // the webhook's timestamp and the item's position tell updates apart.
        let change = text_at(self.v, "/changelog/id").map(str::to_owned);
        let items = self.v.pointer("/changelog/items").and_then(Value::as_array);
        for (position, item) in items.into_iter().flatten().enumerate() {
            let change = match &change {
                Ok(id) => id.clone(),
                Err(_) => format!("t{}-{position}", self.ts),
            };
            let to = item
                .get("toString")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match item.get("field").and_then(Value::as_str) {
                Some("status") => self.status_changed(&change, to),
                Some("priority") => self.priority_changed(&change, to),
                _ => self.out.ignored += 1,
            }
        }
    }

    fn status_changed(&mut self, change: &str, to: &str) {
        let map = &self.config.ingest.jira;
        let (ts, ticket) = (self.ts, self.ticket);
        if map.responded_statuses.iter().any(|s| s == to) {
            let id = self.id(&format!("{change}-responded"));
            self.push(json!({"event_id": id, "ts": ts, "ticket": ticket, "type": "responded"}));
        }
        let id = self.id(&format!("{change}-status"));
        let status = map.status(to);
        self.push(
            json!({"event_id": id, "ts": ts, "ticket": ticket, "type": "status", "status": status}),
        );
    }

    fn priority_changed(&mut self, change: &str, to: &str) {
        let Some(p) = self.config.ingest.jira.priorities.get(to) else {
            let why = format!("Jira priority {to:?} is not mapped in [ingest.jira.priorities]");
            let raw = String::from_utf8_lossy(self.body).into_owned();
            self.out.rejected.push(Rejected::malformed(0, why, raw));
            return;
        };
        let id = self.id(&format!("{change}-priority"));
        let (ts, ticket) = (self.ts, self.ticket);
        self.push(json!({"event_id": id, "ts": ts, "ticket": ticket, "type": "priority", "priority": p.as_str()}));
    }

    /// A public comment by someone other than the reporter is the first response.
    fn comment_created(&mut self) -> Result<(), String> {
        let v = self.v;
        let comment = text_at(v, "/comment/id")
            .map_err(|_| "comment_created without comment.id".to_owned())?;
        let public = (v.pointer("/comment/jsdPublic").and_then(Value::as_bool)).unwrap_or(true);
        let author = text_at(v, "/comment/author/accountId").ok();
        let reporter = text_at(v, "/issue/fields/reporter/accountId").ok();
        if public && (author.is_none() || author != reporter) {
            let id = self.id(&format!("comment-{comment}"));
            let (ts, ticket) = (self.ts, self.ticket);
            self.push(json!({"event_id": id, "ts": ts, "ticket": ticket, "type": "responded"}));
        } else {
            self.out.ignored += 1;
        }
        Ok(())
    }
}

/// Customer, service, kind and priority of a new issue.
fn created(
    map: &JiraConfig,
    v: &Value,
) -> Result<(String, Option<String>, TicketKind, Priority), String> {
    let customer = text_at(v, &map.customer_field)?;
    let customer = map
        .customers
        .get(customer)
        .map_or(customer, String::as_str)
        .to_owned();
    let service = text_at(v, &map.service_field).ok().map(str::to_owned);
    let issue_type = text_at(v, &map.kind_field)?;
    let kind = map.kinds.get(issue_type).copied().ok_or_else(|| {
        format!("Jira issue type {issue_type:?} is not mapped in [ingest.jira.kinds]")
    })?;
    Ok((customer, service, kind, map.priority(v)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reason;
    use crate::ingest::tests::config;

    /// Shaped like Jira Cloud's `jira:issue_created` webhook (trimmed).
    const CREATED: &str = r#"{"timestamp":1793613600000,"webhookEvent":"jira:issue_created",
        "issue_event_type_name":"issue_created","user":{"accountId":"u-1"},
        "issue":{"id":"10010","key":"SD-42","fields":{"issuetype":{"name":"Incident"},
        "project":{"key":"SD","name":"Service Desk"},"priority":{"name":"High"},
        "status":{"name":"Open"},"created":"2026-11-02T11:00:00.000+0100",
        "reporter":{"accountId":"cust-1"},"components":[{"name":"web"}]}}}"#;

    fn updated(items: &str) -> String {
        format!(
            r#"{{"timestamp":1793614500000,"webhookEvent":"jira:issue_updated",
            "issue":{{"id":"10010","key":"SD-42","fields":{{"reporter":{{"accountId":"cust-1"}}}}}},
            "changelog":{{"id":"20001","items":[{items}]}}}}"#
        )
    }

    fn events(t: &Translated) -> Vec<Value> {
        t.events
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect()
    }

    #[test]
    fn issue_lifecycle() {
        let c = config("[ingest.jira.customers]\nSD = \"acme\"\n");
        let t = translate(&c, CREATED.as_bytes()).unwrap();
        let e = &events(&t)[0];
        assert_eq!(e["customer"], "acme");
        assert_eq!(e["service"], "web");
        assert_eq!(e["priority"], "P2");
        assert_eq!(e["kind"], "incident");
        assert_eq!(e["ts"], 1_793_613_600_000i64); // 11:00+01:00
        assert_eq!(t.events[0].key, "SD-42");

        let body = updated(
            r#"{"field":"status","fromString":"Open","toString":"In Progress"},
               {"field":"priority","fromString":"High","toString":"Highest"},
               {"field":"assignee","toString":"Bob"}"#,
        );
        let t = translate(&c, body.as_bytes()).unwrap();
        let types: Vec<_> = events(&t)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["responded", "status", "priority"]);
        assert_eq!(events(&t)[1]["status"], "in_progress");
        assert_eq!(events(&t)[2]["priority"], "P1");
        assert_eq!(t.ignored, 1);

        let t = translate(
            &c,
            updated(r#"{"field":"status","toString":"Waiting for customer"}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(events(&t)[0]["status"], "pending_customer");
    }

    #[test]
    fn updates_without_a_changelog_id_get_distinct_ids() {
        let c = config("");
        let update = |ts: i64, to: &str| {
            format!(
                r#"{{"timestamp":{ts},"webhookEvent":"jira:issue_updated",
                "issue":{{"id":"10010","key":"SD-42"}},
                "changelog":{{"items":[{{"field":"assignee","toString":"Bob"}},{{"field":"status","toString":"{to}"}}]}}}}"#
            )
        };
        let first = translate(
            &c,
            update(1_793_614_500_000, "Waiting for customer").as_bytes(),
        )
        .unwrap();
        let done = translate(&c, update(1_793_618_100_000, "Done").as_bytes()).unwrap();
        assert_eq!(first.events.len(), 1);
        assert_eq!(
            first.events[0].event_id,
            "jira-10010-t1793614500000-1-status"
        );
        assert_eq!(
            done.events[0].event_id,
            "jira-10010-t1793618100000-1-status"
        );
        // The same webhook delivered twice keeps its ids (retries stay duplicates).
        let again = translate(&c, update(1_793_618_100_000, "Done").as_bytes()).unwrap();
        assert_eq!(again.events[0].event_id, done.events[0].event_id);
    }

    #[test]
    fn comments_count_as_responses_unless_private_or_by_the_reporter() {
        let c = config("");
        let comment = |author: &str, public: bool| {
            format!(
                r#"{{"timestamp":1793614000000,"webhookEvent":"comment_created",
                "comment":{{"id":"77","author":{{"accountId":"{author}"}},"jsdPublic":{public}}},
                "issue":{{"id":"10010","key":"SD-42","fields":{{"reporter":{{"accountId":"cust-1"}}}}}}}}"#
            )
        };
        let t = translate(&c, comment("agent-1", true).as_bytes()).unwrap();
        assert_eq!(events(&t)[0]["type"], "responded");
        assert_eq!(t.events[0].event_id, "jira-10010-comment-77");
        for (who, public) in [("cust-1", true), ("agent-1", false)] {
            let t = translate(&c, comment(who, public).as_bytes()).unwrap();
            assert_eq!((t.events.len(), t.ignored), (0, 1));
        }
    }

    #[test]
    fn unmapped_or_missing_fields_are_rejected() {
        let c = config("");
        // Project key SD is not a configured customer.
        let t = translate(&c, CREATED.as_bytes()).unwrap();
        assert_eq!(t.rejected[0].reason, Reason::UnknownCustomer);
        let c = config("[ingest.jira.customers]\nSD = \"acme\"\n");
        let e = translate(&c, CREATED.replace("\"High\"", "\"Urgent\"").as_bytes()).unwrap_err();
        assert!(e.error.contains("Urgent"), "{e:?}");
        for body in [
            "[]",
            "{}",
            r#"{"webhookEvent":"jira:issue_created","timestamp":1}"#,
        ] {
            assert_eq!(
                translate(&c, body.as_bytes()).unwrap_err().reason,
                Reason::Malformed
            );
        }
        let ignored = CREATED.replace("jira:issue_created", "jira:issue_deleted");
        assert_eq!(translate(&c, ignored.as_bytes()).unwrap().ignored, 1);
    }
}
