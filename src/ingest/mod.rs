//! HTTP ingest: what monitoring stacks and ticket tools send (Alertmanager
//! webhooks, Jira Service Management webhooks, batches of contract events) becomes
//! contract events, validated exactly as Kafka input is (same decoder, same
//! config checks), before an [`Intake`] publishes them.
//!
//! Everything here is pure translation; the HTTP handlers live in `api::ingest`.

pub mod alertmanager;
pub mod events;
pub mod github;
pub mod jira;
pub mod prometheus;

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::event::rows::{Corrupt, Rows};
use crate::event::schema::col;
use crate::event::{DeadLetter, Decoder, RawRecord, Reason, Topic};
use crate::time::{Millis, format_ms, wall_now};

/// A validated contract event, ready to publish on its topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the payload it came from (0 for a single event).
    pub index: usize,
    /// Its topic.
    pub topic: Topic,
    /// The message key: service (monitoring) or ticket (tickets).
    pub key: String,
    /// Its `event_id`.
    pub event_id: String,
    /// Its `ts`.
    pub ts: Millis,
    /// The JSON text.
    pub json: String,
}

/// One item of a payload that could not become a valid event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Position in the payload (alert, line or array element; 0 for the whole body).
    pub index: usize,
    /// Dead-letter reason.
    #[schema(value_type = String)]
    pub reason: Reason,
    /// What is wrong.
    pub error: String,
    /// The item's text (the dead letter's `raw`).
    #[serde(skip)]
    pub raw: String,
}

impl Rejected {
    /// A `malformed` item.
    pub fn malformed(index: usize, error: impl Into<String>, raw: impl Into<String>) -> Self {
        Rejected {
            index,
            reason: Reason::Malformed,
            error: error.into(),
            raw: raw.into(),
        }
    }

    /// The dead-letter record; `source` names the endpoint (e.g. `http:/v1/ingest/events`),
    /// partition is -1 and offset the item's index.
    pub fn dead_letter(&self, source: &str) -> DeadLetter {
        DeadLetter {
            reason: self.reason,
            error: self.error.clone(),
            topic: source.to_owned(),
            partition: -1,
            offset: self.index as i64,
            raw: self.raw.clone(),
        }
    }
}

/// What a payload turned into.
#[derive(Debug, Default)]
pub struct Translated {
    /// Valid events.
    pub events: Vec<Event>,
    /// Items that are not valid events.
    pub rejected: Vec<Rejected>,
    /// Items that deliberately produce no event (e.g. an alert mapped to `ignore`).
    pub ignored: usize,
}

impl Translated {
    /// Validates `json` as a `topic` event and files it as accepted or rejected.
    pub fn push(&mut self, config: &Config, topic: Topic, index: usize, json: String) {
        match validate(config, topic, &json) {
            Ok((key, event_id, ts)) => self.events.push(Event {
                index,
                topic,
                key,
                event_id,
                ts,
                json,
            }),
            Err((reason, error)) => self.rejected.push(Rejected {
                index,
                reason,
                error,
                raw: json,
            }),
        }
    }

    /// Refuses, as `future`, the events whose `ts` lies after `limit` (the
    /// processing clock + `engine.max_future`): the engine would dead-letter them.
    pub fn refuse_future(&mut self, limit: Millis) {
        let (future, ok): (Vec<Event>, Vec<Event>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|e| e.ts > limit);
        self.events = ok;
        for e in future {
            self.rejected.push(Rejected {
                index: e.index,
                reason: Reason::Future,
                error: format!(
                    "ts {} is more than max_future past the processing clock",
                    format_ms(e.ts)
                ),
                raw: e.json,
            });
        }
        self.rejected.sort_by_key(|r| r.index);
    }
}

/// The stateless checks Kafka input goes through: decoding (`malformed`) and the
/// config admission (`unknown_service`, `unknown_customer`). The stateful ones
/// (`late`, `duplicate`, `unknown_ticket`, `conflict`) happen when the engine
/// consumes the event; `future` depends on the clock ([`Translated::refuse_future`]).
/// Returns the message key, the event id and the `ts`.
pub fn validate(
    config: &Config,
    topic: Topic,
    json: &str,
) -> Result<(String, String, Millis), (Reason, String)> {
    let record = RawRecord {
        partition: -1,
        offset: 0,
        payload: json.as_bytes(),
    };
    let chunk = (Decoder::new(topic, "http").with_max_window(config.engine.max_window.0))
        .decode(-1, &[record]);
    if let Some(m) = chunk.malformed.into_iter().next() {
        return Err((m.dead.reason, m.dead.error));
    }
    // A row the decoder built that its own view refuses is a bug, reported in
    // the refusal rather than accepted unchecked.
    let internal = |e: Corrupt| (Reason::Malformed, e.to_string());
    let rows = Rows::new(topic, &chunk.batch).map_err(internal)?;
    if let Some(rejection) = crate::pipeline::admit(config, &rows, 0).map_err(internal)? {
        return Err(rejection);
    }
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let text = |c: usize| chunk.batch.column(c).as_string::<i32>().value(0).to_owned();
    let ts = chunk
        .batch
        .column(col::TS)
        .as_primitive::<Int64Type>()
        .value(0);
    Ok((text(col::KEY), text(col::EVENT_ID), ts))
}

/// A short, stable event id: `prefix` + the first 16 hex chars of SHA-256 of `parts`
/// joined by `|`, so a payload sent twice yields the same ids.
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("|").as_bytes());
    format!("{prefix}-{}", hex::encode(&digest[..8]))
}

/// Events that could not be handed on (Kafka unavailable, the demo's queue
/// poisoned): the API answers 503, so the sender retries.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct IntakeError(pub Box<dyn std::error::Error + Send + Sync>);

impl IntakeError {
    /// An error from a message.
    pub fn msg(message: impl Into<String>) -> Self {
        IntakeError(message.into().into())
    }
}

/// Where ingested events go: Kafka in `run`, the engine directly in `demo`.
pub trait Intake: Send + Sync {
    /// The processing clock of the `future` check: the wall clock, or the demo's
    /// simulated clock.
    fn now(&self) -> Millis {
        wall_now()
    }
    /// Publishes validated events to their topics; returns once they are durable.
    fn publish(&self, events: &[Event]) -> Result<(), IntakeError>;
    /// Records dead letters for items that never became events.
    fn dead_letter(&self, dead: &[DeadLetter]) -> Result<(), IntakeError>;
}

/// An intake that takes nothing, for a core no event may be posted to
/// (benchmarks, tests): every post is refused as unavailable.
pub struct NoIntake;

impl Intake for NoIntake {
    fn publish(&self, _: &[Event]) -> Result<(), IntakeError> {
        Err(IntakeError::msg("this server takes no events"))
    }
    fn dead_letter(&self, _: &[DeadLetter]) -> Result<(), IntakeError> {
        Err(IntakeError::msg("this server takes no events"))
    }
}

type IdKey = (Topic, String);

/// Event ids published recently, per topic, so that webhook retries and
/// Alertmanager's repeated notifications are not published twice (the engine's
/// dedup set would catch them, but as `duplicate` dead letters). Bounded: the
/// oldest ids are forgotten first.
pub struct RecentIds {
    inner: Mutex<(HashSet<IdKey>, VecDeque<IdKey>)>,
    capacity: usize,
}

impl RecentIds {
    /// Remembers up to `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        RecentIds {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity,
        }
    }

    /// Splits `events` into those not seen recently (in order) and a count of
    /// repeats, and remembers the fresh ones in the same step, so two concurrent
    /// identical posts publish once. A caller that fails to publish them gives
    /// them back with [`RecentIds::forget`].
    pub fn claim(&self, events: Vec<Event>) -> (Vec<Event>, usize) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, order) = &mut *guard;
        let mut repeats = 0;
        let fresh: Vec<Event> = events
            .into_iter()
            .filter(|e| {
                let key = (e.topic, e.event_id.clone());
                let new = seen.insert(key.clone());
                if new {
                    order.push_back(key);
                }
                repeats += usize::from(!new);
                new
            })
            .collect();
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                seen.remove(&old);
            }
        }
        (fresh, repeats)
    }

    /// Forgets claimed events that could not be published, so a retry publishes them.
    pub fn forget(&self, events: &[Event]) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, order) = &mut *guard;
        for e in events {
            seen.remove(&(e.topic, e.event_id.clone()));
        }
        order.retain(|k| seen.contains(k));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) const CONFIG: &str =
        "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n";

    pub(crate) fn config(extra: &str) -> Config {
        Config::parse(&format!("{CONFIG}{extra}"), Path::new("t.toml")).unwrap()
    }

    #[test]
    fn validation_matches_kafka_input() {
        let c = config("");
        let ok =
            r#"{"event_id":"m1","ts":1,"service":"web","kind":"probe","source":"a","status":"up"}"#;
        assert_eq!(
            validate(&c, Topic::Monitoring, ok),
            Ok(("web".into(), "m1".into(), 1))
        );
        let unknown = ok.replace("\"web\"", "\"db\"");
        assert_eq!(
            validate(&c, Topic::Monitoring, &unknown).unwrap_err().0,
            Reason::UnknownService
        );
        let bad = ok.replace("\"up\"", "\"sideways\"");
        assert_eq!(
            validate(&c, Topic::Monitoring, &bad).unwrap_err().0,
            Reason::Malformed
        );
        let created = r#"{"event_id":"t1","ts":1,"ticket":"T-1","type":"created","customer":"globex","priority":"P1","kind":"incident"}"#;
        assert_eq!(
            validate(&c, Topic::Tickets, created).unwrap_err().0,
            Reason::UnknownCustomer
        );
    }

    #[test]
    fn future_events_are_refused_in_payload_order() {
        let c = config("");
        let probe = |id: &str, ts: i64| {
            format!(
                r#"{{"event_id":"{id}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"up"}}"#
            )
        };
        let mut t = Translated::default();
        t.push(&c, Topic::Monitoring, 0, probe("a", 4_070_908_800_000));
        t.push(&c, Topic::Monitoring, 1, "{".into());
        t.push(&c, Topic::Monitoring, 2, probe("b", 1000));
        t.refuse_future(1000);
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.events[0].event_id, "b");
        let fates: Vec<(usize, Reason)> = t.rejected.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(fates, [(0, Reason::Future), (1, Reason::Malformed)]);
        assert!(t.rejected[0].error.contains("2099-01-01"));
    }

    #[test]
    fn recent_ids_skip_repeats_within_and_across_requests() {
        let ev = |id: &str| Event {
            index: 0,
            ts: 0,
            topic: Topic::Monitoring,
            key: "web".into(),
            event_id: id.into(),
            json: String::new(),
        };
        let recent = RecentIds::new(2);
        let (fresh, repeats) = recent.claim(vec![ev("a"), ev("a"), ev("b")]);
        assert_eq!((fresh.len(), repeats), (2, 1));
        let (fresh, repeats) = recent.claim(vec![ev("a"), ev("c")]);
        assert_eq!((fresh.len(), repeats), (1, 1));
        // Capacity 2: "a" was forgotten once "c" arrived.
        assert_eq!(recent.claim(vec![ev("a")]).1, 0);
        // A failed publication is given back: the retry is fresh again.
        recent.forget(&[ev("a")]);
        assert_eq!(recent.claim(vec![ev("a")]).1, 0);
    }

    #[test]
    fn concurrent_identical_claims_publish_once() {
        let recent = std::sync::Arc::new(RecentIds::new(1000));
        let ev = |i: usize| Event {
            index: i,
            ts: 0,
            topic: Topic::Monitoring,
            key: "web".into(),
            event_id: format!("e{i}"),
            json: String::new(),
        };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let recent = recent.clone();
                std::thread::spawn(move || recent.claim((0..200).map(ev).collect()).0.len())
            })
            .collect();
        let published: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(published, 200);
    }
}
