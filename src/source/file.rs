//! NDJSON file source for replay: each file is one stream; records are lines.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::eventtime::StreamId;

/// Error opening or reading an input file.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct FileSourceError {
    /// The file.
    pub path: PathBuf,
    /// Underlying error.
    pub source: std::io::Error,
}

/// One NDJSON file being read line by line.
pub struct NdjsonFile {
    path: PathBuf,
    reader: BufReader<File>,
    /// The stream this file feeds.
    pub stream: StreamId,
    next_line: i64,
    done: bool,
}

/// A chunk of lines read from a file: (line number, bytes without the
/// newline). One buffer holds every line's bytes and is reused chunk after
/// chunk, instead of an allocation per line.
#[derive(Debug, Default)]
pub struct Lines {
    bytes: Vec<u8>,
    /// (line number, end of its bytes); each starts where the previous ends.
    ends: Vec<(i64, usize)>,
}

impl Lines {
    /// No lines.
    pub fn new() -> Self {
        Lines::default()
    }

    /// Forgets every line, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Lines held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no line is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds line `number` with `bytes`.
    pub fn push(&mut self, number: i64, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push((number, self.bytes.len()));
    }

    /// (line number, bytes) in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        (self.ends.iter().zip(starts)).map(|(&(n, end), start)| (n, &self.bytes[start..end]))
    }
}

impl NdjsonFile {
    /// Opens `path` as stream `stream`.
    pub fn open(path: &Path, stream: StreamId) -> Result<Self, FileSourceError> {
        let f = File::open(path).map_err(|source| FileSourceError {
            path: path.to_owned(),
            source,
        })?;
        Ok(NdjsonFile {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 20, f),
            stream,
            next_line: 0,
            done: false,
        })
    }
}

impl super::ChunkSource for NdjsonFile {
    fn stream(&self) -> StreamId {
        self.stream
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Reads up to `max` lines into `out` (cleared first). A blank line is still a
    /// record (it will be dead-lettered as malformed): nothing is skipped silently.
    fn read_chunk(&mut self, max: usize, out: &mut Lines) -> Result<(), FileSourceError> {
        out.clear();
        while out.len() < max {
            let start = out.bytes.len();
            let n = (self.reader)
                .read_until(b'\n', &mut out.bytes)
                .map_err(|source| FileSourceError {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                self.done = true;
                break;
            }
            // Only this line's bytes (from `start`) may lose a line ending.
            if out.bytes.last() == Some(&b'\n') {
                out.bytes.pop();
                if out.bytes.len() > start && out.bytes.last() == Some(&b'\r') {
                    out.bytes.pop();
                }
            }
            out.ends.push((self.next_line, out.bytes.len()));
            self.next_line += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Topic;
    use crate::source::ChunkSource;

    #[test]
    fn lines_keep_their_bytes_and_numbers_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, b"a\r\r\n\nb\r\n\r\n{\"x\":1}\nlast\r").expect("write");
        let stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let mut file = NdjsonFile::open(&path, stream).expect("open");
        let mut lines = Lines::new();
        let mut got: Vec<(i64, Vec<u8>)> = Vec::new();
        while !file.is_done() {
            file.read_chunk(2, &mut lines).expect("read");
            got.extend(lines.iter().map(|(n, l)| (n, l.to_vec())));
        }
        let want: [&[u8]; 6] = [b"a\r", b"", b"b", b"", b"{\"x\":1}", b"last\r"];
        let want: Vec<(i64, Vec<u8>)> = (0..).zip(want.map(<[u8]>::to_vec)).collect();
        assert_eq!(got, want);
    }
}
