//! Input events (contract section 1): the two topics, their Arrow schemas, the
//! JSON → Arrow decoder and the dead-letter record (contract section 2).

pub mod deadletter;
pub mod decode;
pub mod schema;

pub use deadletter::{DeadLetter, Reason};
pub use decode::{DecodedChunk, Decoder, Malformed, RawRecord};

use serde::{Deserialize, Serialize};

/// Which input topic (or replay file kind) a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// `monitoring.events`: probes, metrics, maintenance; key = service.
    Monitoring,
    /// `tickets.events`: ticket lifecycle; key = ticket.
    Tickets,
}

impl Topic {
    /// Both topics, in a fixed order.
    pub const ALL: [Topic; 2] = [Topic::Monitoring, Topic::Tickets];

    /// Stable index, for per-topic arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `monitoring` or `tickets` (metric labels, checkpoint names).
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Monitoring => "monitoring",
            Topic::Tickets => "tickets",
        }
    }

    /// The inverse of [`Topic::as_str`].
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }
}
