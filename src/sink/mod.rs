//! Sinks: where outputs go (NDJSON/JSON files, Kafka topics).

pub mod file;
pub mod kafka;
