//! Arrow schemas of decoded events, one per topic. Times are Int64 epoch
//! milliseconds; `partition`/`offset`/`raw` keep each row's provenance so a row
//! dead-lettered later (e.g. `unknown_ticket`) still carries its original text.
//! Enum values are stored as their codes and read back through [`super::rows`].

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::Topic;

/// Column names shared by both schemas.
pub mod col {
    /// Kafka partition or replay file index (Int32).
    pub const PARTITION: usize = 0;
    /// Kafka offset or replay line number (Int64).
    pub const OFFSET: usize = 1;
    /// Event id (Utf8).
    pub const EVENT_ID: usize = 2;
    /// Event time, epoch ms (Int64).
    pub const TS: usize = 3;
    /// Original JSON text (Utf8View: views into the records' own buffer
    /// where the source has one).
    pub const RAW: usize = 4;
    /// The key: service (monitoring) or ticket (tickets) (Utf8).
    pub const KEY: usize = 5;
}

/// Monitoring-only columns (after the shared ones).
pub mod mon {
    /// [`crate::model::MonitoringKind`] code (UInt8).
    pub const KIND: usize = 6;
    /// Probe or counter source.
    pub const SOURCE: usize = 7;
    /// Probe status, a [`crate::model::ProbeStatus`] code (UInt8).
    pub const STATUS: usize = 8;
    /// Probe latency.
    pub const LATENCY_MS: usize = 9;
    /// Metric resource.
    pub const RESOURCE: usize = 10;
    /// Metric name (metric) or counter name (counter).
    pub const METRIC: usize = 11;
    /// Metric value or cumulative counter value.
    pub const VALUE: usize = 12;
    /// Metric capacity.
    pub const CAPACITY: usize = 13;
    /// Maintenance or exclusion window start (epoch ms).
    pub const START: usize = 14;
    /// Maintenance or exclusion window end (epoch ms).
    pub const END: usize = 15;
    /// `change_id` of a maintenance (a label) or a change.
    pub const CHANGE_ID: usize = 16;
    /// Exclusion id (exclusion).
    pub const EXCLUSION_ID: usize = 17;
    /// Why it is excluded (exclusion).
    pub const REASON: usize = 18;
    /// Who approved it (exclusion).
    pub const APPROVED_BY: usize = 19;
    /// A change's outcome, a [`crate::model::ChangeOutcome`] code (UInt8).
    pub const OUTCOME: usize = 20;
}

/// Ticket-only columns (after the shared ones).
pub mod tkt {
    /// [`crate::model::TicketEventType`] code (UInt8).
    pub const TYPE: usize = 6;
    /// Customer (created).
    pub const CUSTOMER: usize = 7;
    /// Service (created, optional).
    pub const SERVICE: usize = 8;
    /// [`crate::model::Priority`] code (UInt8; created, priority).
    pub const PRIORITY: usize = 9;
    /// [`crate::model::TicketKind`] code (UInt8; created).
    pub const KIND: usize = 10;
    /// New status (status).
    pub const STATUS: usize = 11;
}

fn shared(key: &str) -> Vec<Field> {
    vec![
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("event_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("raw", DataType::Utf8View, false),
        Field::new(key, DataType::Utf8, false),
    ]
}

static MONITORING: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = shared("service");
    f.extend([
        Field::new("kind", DataType::UInt8, false),
        Field::new("source", DataType::Utf8, true),
        Field::new("status", DataType::UInt8, true),
        Field::new("latency_ms", DataType::Float64, true),
        Field::new("resource", DataType::Utf8, true),
        Field::new("metric", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
        Field::new("capacity", DataType::Float64, true),
        Field::new("start", DataType::Int64, true),
        Field::new("end", DataType::Int64, true),
        Field::new("change_id", DataType::Utf8, true),
        Field::new("exclusion_id", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("approved_by", DataType::Utf8, true),
        Field::new("outcome", DataType::UInt8, true),
    ]);
    Arc::new(Schema::new(f))
});

static TICKETS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut f = shared("ticket");
    f.extend([
        Field::new("type", DataType::UInt8, false),
        Field::new("customer", DataType::Utf8, true),
        Field::new("service", DataType::Utf8, true),
        Field::new("priority", DataType::UInt8, true),
        Field::new("kind", DataType::UInt8, true),
        Field::new("status", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(f))
});

/// The decoded schema of a topic.
pub fn schema(topic: Topic) -> SchemaRef {
    match topic {
        Topic::Monitoring => MONITORING.clone(),
        Topic::Tickets => TICKETS.clone(),
    }
}
