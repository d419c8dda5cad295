//! Input events (contract section 1): the two topics, their Arrow schemas, the
//! JSON → Arrow decoder and the dead-letter record (contract section 2).

pub mod deadletter;
pub mod decode;
mod flat;
pub mod rows;
pub mod schema;

pub use deadletter::{DeadLetter, Reason};
pub use decode::{
    DecodedChunk, Decoder, KEPT_RECORD_BYTES, MAX_RECORD_BYTES, Malformed, RawRecord,
};

pub use crate::model::Topic;
