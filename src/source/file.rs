//! NDJSON file source for replay: each file is one stream; records are lines.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Lines;
use crate::event::KEPT_RECORD_BYTES;
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

/// Bytes read from the file at a time, straight into the chunk's buffer.
/// What a chunk does not take (at most this much) is copied once to the
/// next: reading through a 1 MiB `BufReader` copied every byte once more.
const READ_BYTES: usize = 64 * 1024;

/// One NDJSON file being read line by line.
pub struct NdjsonFile {
    path: PathBuf,
    file: File,
    /// The stream this file feeds.
    pub stream: StreamId,
    next_line: i64,
    /// Bytes read past the last chunk's last line, for the next chunk.
    pending: Vec<u8>,
    done: bool,
}

impl NdjsonFile {
    /// Opens `path` as stream `stream`.
    pub fn open(path: &Path, stream: StreamId) -> Result<Self, FileSourceError> {
        let file = File::open(path).map_err(|source| FileSourceError {
            path: path.to_owned(),
            source,
        })?;
        Ok(NdjsonFile {
            path: path.to_owned(),
            file,
            stream,
            next_line: 0,
            pending: Vec::new(),
            done: false,
        })
    }

    /// Appends up to [`READ_BYTES`] of the file to `bytes`; 0 at its end.
    fn read_more(&mut self, bytes: &mut Vec<u8>) -> Result<usize, FileSourceError> {
        bytes.reserve(READ_BYTES);
        // `read_to_end` reads into the spare capacity without zeroing it.
        (&mut self.file)
            .take(READ_BYTES as u64)
            .read_to_end(bytes)
            .map_err(|source| FileSourceError {
                path: self.path.clone(),
                source,
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
    /// A line keeps at most its first [`KEPT_RECORD_BYTES`]; a `\r` before
    /// its newline is dropped, unless bytes were (the line is refused as
    /// too long either way).
    fn read_chunk(&mut self, max: usize, out: &mut Lines) -> Result<(), FileSourceError> {
        out.clear();
        out.bytes.append(&mut self.pending);
        // The current line starts at `start`; `scan` is where its newline
        // search goes on; `cut` when bytes past its kept ones were dropped.
        let (mut start, mut scan, mut cut) = (0, 0, false);
        while out.len() < max {
            let Some(at) = memchr::memchr(b'\n', &out.bytes[scan..]).map(|i| scan + i) else {
                if out.bytes.len() - start > KEPT_RECORD_BYTES {
                    out.bytes.truncate(start + KEPT_RECORD_BYTES);
                    cut = true;
                }
                scan = out.bytes.len();
                if self.read_more(&mut out.bytes)? == 0 {
                    // End of file: a last line without a newline is still a line.
                    if scan > start {
                        out.spans.push((self.next_line, start, scan));
                        self.next_line += 1;
                        start = scan;
                    }
                    self.done = true;
                    break;
                }
                continue;
            };
            // Past its kept bytes, a line loses the rest (so that long lines
            // never fill a chunk), and keeps a `\r` at its end.
            let long = cut || at - start > KEPT_RECORD_BYTES;
            let newline = if long {
                out.bytes.drain(start + KEPT_RECORD_BYTES..at);
                start + KEPT_RECORD_BYTES
            } else {
                at
            };
            let cr = newline > start && !long && out.bytes[newline - 1] == b'\r';
            let end = if cr { newline - 1 } else { newline };
            out.spans.push((self.next_line, start, end));
            self.next_line += 1;
            start = newline + 1;
            (scan, cut) = (start, false);
        }
        self.pending.extend_from_slice(&out.bytes[start..]);
        out.bytes.truncate(start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Topic;
    use crate::source::ChunkSource;

    /// A file holding `text`, opened (with the directory that keeps it).
    fn file_of(text: &[u8]) -> (tempfile::TempDir, NdjsonFile) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, text).expect("write");
        let stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let file = NdjsonFile::open(&path, stream).expect("open");
        (dir, file)
    }

    /// Every line of a file holding `text`, read `max` lines a chunk.
    fn read_back(text: &[u8], max: usize) -> Vec<(i64, Vec<u8>)> {
        let (_dir, mut file) = file_of(text);
        let mut lines = Lines::new();
        let mut got = Vec::new();
        while !file.is_done() {
            file.read_chunk(max, &mut lines).expect("read");
            got.extend(lines.iter().map(|(n, l)| (n, l.to_vec())));
        }
        got
    }

    #[test]
    fn lines_keep_their_bytes_and_numbers_across_chunks() {
        let got = read_back(b"a\r\r\n\nb\r\n\r\n{\"x\":1}\nlast\r", 2);
        let want: [&[u8]; 6] = [b"a\r", b"", b"b", b"", b"{\"x\":1}", b"last\r"];
        let want: Vec<(i64, Vec<u8>)> = (0..).zip(want.map(<[u8]>::to_vec)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lines_over_the_record_limit_keep_one_byte_past_it() {
        let limit = crate::event::MAX_RECORD_BYTES;
        let long = |n: usize| vec![b'a'; n];
        // Over the limit (by one, and by megabytes across many reads),
        // and lines whose `\r` is the byte past the limit.
        let mut text = Vec::new();
        for (line, end) in [
            (long(limit + 1), &b"\n"[..]),
            (long(3 << 20), b"\r\n"),
            (long(limit), b"\r\n"),
            ([long(limit), b"\r".to_vec()].concat(), b"\r\n"),
            (b"next".to_vec(), b"\n"),
            (long(limit + 7), b""),
        ] {
            text.extend_from_slice(&line);
            text.extend_from_slice(end);
        }
        let got = read_back(&text, 4);
        let lens: Vec<(i64, usize)> = got.iter().map(|(n, l)| (*n, l.len())).collect();
        let want = [limit + 1, limit + 1, limit, limit + 1, 4, limit + 1];
        assert_eq!(lens, (0..).zip(want).collect::<Vec<_>>());
        assert_eq!(got[3].1.last(), Some(&b'\r'));
        assert_eq!(got[4].1, b"next");
    }

    /// The lines of `text` as the contract reads them: split at `\n`, a
    /// `\r` before it dropped, at most [`KEPT_RECORD_BYTES`] kept (then the
    /// `\r` stays); a last line without a newline is a line as it is.
    fn reference(text: &[u8]) -> Vec<(i64, Vec<u8>)> {
        let mut parts: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
        let last = parts.pop().filter(|l| !l.is_empty());
        let whole = parts.into_iter().map(|l| match l {
            [head @ .., b'\r'] if l.len() <= KEPT_RECORD_BYTES => head,
            l => &l[..l.len().min(KEPT_RECORD_BYTES)],
        });
        let last = last.map(|l| &l[..l.len().min(KEPT_RECORD_BYTES)]);
        (0..).zip(whole.chain(last).map(<[u8]>::to_vec)).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Random lines (blank, short, at the record limit and the read
        /// size, over a megabyte) with every line ending, in chunks of any size.
        #[test]
        fn lines_are_read_as_the_reference_splits_them(
            lines in proptest::collection::vec((
                proptest::prop_oneof![
                    8 => 0usize..300,
                    2 => KEPT_RECORD_BYTES - 2..KEPT_RECORD_BYTES + 2,
                    1 => (1usize << 20) - 10..(1 << 20) + 300_000,
                ],
                proptest::sample::select(vec![&b"\n"[..], b"\r\n", b"\r\r\n", b"\r", b""]),
            ), 0..40),
            max in 1usize..20,
        ) {
            let mut text = Vec::new();
            for (i, (len, end)) in lines.iter().enumerate() {
                text.extend((0..*len).map(|k| b'a' + ((i + k) % 26) as u8));
                text.extend_from_slice(end);
            }
            proptest::prop_assert_eq!(read_back(&text, max), reference(&text));
        }
    }

    /// Long lines are cut as they are read: a chunk holds at most the kept
    /// bytes of each, and its newline.
    #[test]
    fn long_lines_never_fill_a_chunk_past_their_kept_bytes() {
        let line = [vec![b'a'; 300_000], b"\n".to_vec()].concat();
        let (_dir, mut file) = file_of(&line.repeat(8));
        let mut lines = Lines::new();
        file.read_chunk(8, &mut lines).expect("read");
        assert_eq!(lines.len(), 8);
        assert!(
            lines.bytes.len() <= 8 * (KEPT_RECORD_BYTES + 1),
            "{}",
            lines.bytes.len()
        );
    }

    #[test]
    fn lines_across_the_reads_edges_are_whole() {
        // Over 3 MiB of lines of every length up to 700 bytes, some ending in
        // `\r\n`, so lines straddle the reads' edges.
        let mut text = Vec::new();
        let mut want: Vec<(i64, Vec<u8>)> = Vec::new();
        for n in 0..12_000i64 {
            let line: Vec<u8> = (0..(n * 37) % 701).map(|i| b'a' + (i % 26) as u8).collect();
            text.extend_from_slice(&line);
            text.extend_from_slice(if n % 3 == 0 { b"\r\n" } else { b"\n" });
            want.push((n, line));
        }
        assert!(text.len() > 3 << 20);
        assert_eq!(read_back(&text, 1000), want);
    }
}
