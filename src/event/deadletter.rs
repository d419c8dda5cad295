//! Dead-letter records: every record that is not applied gets exactly one reason.

use serde::{Deserialize, Serialize};

/// Why a record was not applied, in the contract's check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not JSON, missing or ill-typed field, unknown kind/type/status, bad time.
    Malformed,
    /// `ts` later than the processing clock + `engine.max_future` (a wrong clock).
    Future,
    /// Older than its stream's watermark on arrival.
    Late,
    /// `event_id` already seen on the topic within the dedup horizon.
    Duplicate,
    /// Monitoring event for a service not in the config.
    UnknownService,
    /// Ticket `created` for a customer not in the config.
    UnknownCustomer,
    /// Ticket event without a `created` at or before it.
    UnknownTicket,
    /// Second `created` for an existing ticket.
    Conflict,
}

impl Reason {
    /// Every reason, in check order.
    pub const ALL: [Reason; 8] = [
        Reason::Malformed,
        Reason::Future,
        Reason::Late,
        Reason::Duplicate,
        Reason::UnknownService,
        Reason::UnknownCustomer,
        Reason::UnknownTicket,
        Reason::Conflict,
    ];

    /// The usual cause, for a person reading why much of an input was refused.
    pub fn hint(self) -> &'static str {
        match self {
            Reason::Malformed => {
                "records that are not contract events; each dead letter's `error` says why"
            }
            Reason::Future => {
                "`ts` later than the processing clock + engine.max_future: a wrong clock, or replay without --now"
            }
            Reason::Late => {
                "records behind their stream's watermark by more than engine.allowed_lateness"
            }
            Reason::Duplicate => "an `event_id` already read within engine.dedup_horizon",
            Reason::UnknownService => {
                "services missing from the config's [[services]]: is this the config the data was made for?"
            }
            Reason::UnknownCustomer => {
                "customers missing from the config's [[customers]]: is this the config the data was made for?"
            }
            Reason::UnknownTicket => {
                "ticket events read before (or without) their ticket's `created`"
            }
            Reason::Conflict => "a second `created` for the same ticket",
        }
    }

    /// The contract's name, e.g. `unknown_service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Future => "future",
            Reason::Late => "late",
            Reason::Duplicate => "duplicate",
            Reason::UnknownService => "unknown_service",
            Reason::UnknownCustomer => "unknown_customer",
            Reason::UnknownTicket => "unknown_ticket",
            Reason::Conflict => "conflict",
        }
    }
}

/// One dead-letter record: `{"reason","error","topic","partition","offset","raw"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why.
    pub reason: Reason,
    /// Human-readable detail.
    pub error: String,
    /// Source topic name (the configured Kafka topic, or `monitoring`/`tickets` in replay).
    pub topic: String,
    /// Kafka partition, or the replay file index.
    pub partition: i32,
    /// Kafka offset, or the 0-based line number in replay.
    pub offset: i64,
    /// The original text (lossy UTF-8 for invalid bytes).
    pub raw: String,
}

impl DeadLetter {
    /// The Kafka message key: `topic/partition/offset`, the same for every
    /// re-publication of this record's dead letter.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }

    /// Serialises to one JSON line (without newline).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl DeadLetter {
    /// A dead letter for row `row` of a decoded batch (either topic's schema).
    pub fn from_row(
        batch: &datafusion::arrow::record_batch::RecordBatch,
        row: usize,
        topic: &str,
        reason: Reason,
        error: String,
    ) -> DeadLetter {
        use super::schema::col;
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Int32Type, Int64Type};
        DeadLetter {
            reason,
            error,
            topic: topic.to_owned(),
            partition: batch
                .column(col::PARTITION)
                .as_primitive::<Int32Type>()
                .value(row),
            offset: batch
                .column(col::OFFSET)
                .as_primitive::<Int64Type>()
                .value(row),
            raw: batch
                .column(col::RAW)
                .as_string_view()
                .value(row)
                .to_owned(),
        }
    }
}
