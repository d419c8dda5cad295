//! Sinks: where outputs go (NDJSON/JSON files, Kafka topics) and incident
//! delivery to on-call tools (PagerDuty, webhooks) through a durable outbox.

pub mod delivery;
pub mod file;
pub mod kafka;
pub mod outbox;
