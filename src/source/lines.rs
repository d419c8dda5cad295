//! A chunk's records in one buffer, as sources hand them to the decoder.

use datafusion::arrow::buffer::Buffer;

use crate::event::RawRecord;

/// A chunk of records of one stream in one buffer: lines of a file (line
/// number, bytes without the newline) or Kafka messages (offset, value). One
/// buffer holds every record's bytes, instead of an allocation per record.
#[derive(Debug, Default)]
pub struct Lines {
    pub(super) bytes: Vec<u8>,
    /// (line number, start and end of its bytes), in order. A file's lines
    /// keep their newlines between them: they stay where they were read.
    pub(super) spans: Vec<(i64, usize, usize)>,
    /// The texts of the last blocks taken, to reuse once no batch points
    /// into them ([`Lines::take_block`]).
    handed: Vec<Buffer>,
}

/// How many blocks [`Lines::take_block`] keeps to reuse: records wait in
/// the event-time buffer for about the allowed lateness, a chunk or two.
const KEPT_BLOCKS: usize = 4;

impl Lines {
    /// No lines.
    pub fn new() -> Self {
        Lines::default()
    }

    /// Forgets every line, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Lines held.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no line is held.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Adds line `number` with `bytes`.
    pub fn push(&mut self, number: i64, bytes: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.spans.push((number, start, self.bytes.len()));
    }

    /// (line number, bytes) in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        numbered(&self.bytes, &self.spans)
    }

    /// The lines as one block: decoded batches keep its bytes (their `raw`
    /// column points into them).
    pub fn into_block(self) -> LineBlock {
        LineBlock {
            text: Buffer::from_vec(self.bytes),
            spans: self.spans,
        }
    }

    /// [`Lines::into_block`], leaving this empty for the next chunk. Its
    /// bytes go on in the bytes of an earlier block no batch points into
    /// any more: a new allocation for each chunk was written cold, page
    /// faults included, and cost what the copy it saves did.
    pub fn take_block(&mut self) -> LineBlock {
        let bytes = self
            .reclaim()
            .unwrap_or_else(|| Vec::with_capacity(self.bytes.capacity()));
        let block = LineBlock {
            text: Buffer::from_vec(std::mem::replace(&mut self.bytes, bytes)),
            spans: self.spans.clone(),
        };
        self.spans.clear();
        if self.handed.len() == KEPT_BLOCKS {
            self.handed.remove(0);
        }
        self.handed.push(block.text.clone());
        block
    }

    /// The bytes of the oldest handed-out block nothing else holds, emptied.
    fn reclaim(&mut self) -> Option<Vec<u8>> {
        for i in 0..self.handed.len() {
            match self.handed.remove(i).into_vec::<u8>() {
                Ok(mut bytes) => {
                    bytes.clear();
                    return Some(bytes);
                }
                Err(text) => self.handed.insert(i, text),
            }
        }
        None
    }
}

/// A chunk of lines ready to decode, their bytes in one Arrow buffer
/// ([`Lines::take_block`]).
#[derive(Debug)]
pub struct LineBlock {
    text: Buffer,
    spans: Vec<(i64, usize, usize)>,
}

impl LineBlock {
    /// Every line's bytes, one after the other.
    pub fn text(&self) -> &Buffer {
        &self.text
    }

    /// The lines as records of `partition`, numbered by line; their payloads
    /// lie in [`LineBlock::text`].
    pub fn records(&self, partition: i32) -> Vec<RawRecord<'_>> {
        (numbered(&self.text, &self.spans))
            .map(|(offset, payload)| RawRecord {
                partition,
                offset,
                payload,
            })
            .collect()
    }
}

/// (line number, bytes) of the lines in `bytes` where `spans` says.
fn numbered<'a>(
    bytes: &'a [u8],
    spans: &'a [(i64, usize, usize)],
) -> impl Iterator<Item = (i64, &'a [u8])> {
    (spans.iter()).map(|&(n, start, end)| (n, &bytes[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(block: &LineBlock) -> Vec<(i64, Vec<u8>)> {
        (block.records(7).iter())
            .map(|r| (r.offset, r.payload.to_vec()))
            .collect()
    }

    /// The bytes of a block go on to hold later lines once nothing points
    /// into them, and not before.
    #[test]
    fn a_block_is_reused_only_once_nothing_points_into_it() {
        let mut lines = Lines::new();
        let mut take = |n: i64, text: &[u8]| {
            lines.push(n, text);
            lines.push(n, b"");
            lines.take_block()
        };
        let first = take(0, b"first");
        let at = first.text().as_ptr();
        let held = first.text().clone();
        drop(first);
        let mut blocks = vec![take(1, b"second"), take(2, b"third")];
        drop(held);
        // Taking the fourth block finds the first free, for the lines after.
        blocks.push(take(3, b"fourth"));
        for b in &blocks {
            assert_ne!(b.text().as_ptr(), at, "a batch still pointed into it");
        }
        let fifth = take(4, b"fifth");
        assert_eq!(fifth.text().as_ptr(), at, "reused once nothing held it");
        for (b, (n, text)) in blocks.iter().chain([&fifth]).zip([
            (1, &b"second"[..]),
            (2, b"third"),
            (3, b"fourth"),
            (4, b"fifth"),
        ]) {
            assert_eq!(records(b), [(n, text.to_vec()), (n, vec![])]);
        }
    }
}
