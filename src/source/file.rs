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

/// A chunk of lines read from a file: (line number, bytes without the newline).
pub type Lines = Vec<(i64, Vec<u8>)>;

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
            let mut buf = Vec::with_capacity(256);
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| FileSourceError {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                self.done = true;
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            out.push((self.next_line, buf));
            self.next_line += 1;
        }
        Ok(())
    }
}
