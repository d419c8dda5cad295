//! Sources: where raw records come from (NDJSON files, Kafka).

pub mod file;
pub mod kafka;
