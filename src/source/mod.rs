//! Sources: where raw records come from (NDJSON files, Kafka).

pub mod file;
pub mod kafka;
pub mod kafka_range;
mod lines;

pub use lines::{LineBlock, Lines};

use crate::eventtime::StreamId;
use file::FileSourceError;

/// One stream of records that replay reads chunk by chunk: an NDJSON file, or
/// a topic partition read back (evidence packs).
pub trait ChunkSource {
    /// The stream it feeds.
    fn stream(&self) -> StreamId;
    /// True once every record was read.
    fn is_done(&self) -> bool;
    /// Reads up to `max` records (offset or line number, payload) into `out`,
    /// cleared first.
    fn read_chunk(&mut self, max: usize, out: &mut Lines) -> Result<(), FileSourceError>;
}

/// Records already in memory (a partition range read back from Kafka).
pub struct Records {
    stream: StreamId,
    records: std::vec::IntoIter<(i64, Vec<u8>)>,
}

impl Records {
    /// `records` in offset order, as stream `stream`.
    pub fn new(stream: StreamId, records: Vec<(i64, Vec<u8>)>) -> Self {
        Records {
            stream,
            records: records.into_iter(),
        }
    }
}

impl ChunkSource for Records {
    fn stream(&self) -> StreamId {
        self.stream
    }

    fn is_done(&self) -> bool {
        self.records.len() == 0
    }

    fn read_chunk(&mut self, max: usize, out: &mut Lines) -> Result<(), FileSourceError> {
        out.clear();
        for (offset, payload) in self.records.by_ref().take(max) {
            out.push(offset, &payload);
        }
        Ok(())
    }
}
