//! NDJSON file source for replay: each file is one stream; records are lines.

use std::fs::File;
use std::io::{BufRead, BufReader};
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

/// One NDJSON file being read line by line.
pub struct NdjsonFile {
    path: PathBuf,
    reader: BufReader<File>,
    /// The stream this file feeds.
    pub stream: StreamId,
    next_line: i64,
    done: bool,
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
    /// A line keeps at most its first [`KEPT_RECORD_BYTES`].
    fn read_chunk(&mut self, max: usize, out: &mut Lines) -> Result<(), FileSourceError> {
        out.clear();
        // Bytes of the line being read so far, kept or not, and where it
        // starts in `out`.
        let (mut line_len, mut line_start) = (0usize, 0usize);
        while out.len() < max {
            let buf = (self.reader.fill_buf()).map_err(|source| FileSourceError {
                path: self.path.clone(),
                source,
            })?;
            if line_len == 0 {
                let taken = whole_lines(buf, max, &mut self.next_line, out);
                if taken > 0 {
                    self.reader.consume(taken);
                    continue;
                }
            }
            // A line that does not end in the buffered block.
            let (content, taken) = match memchr::memchr(b'\n', buf) {
                Some(at) => (at, at + 1),
                None => (buf.len(), buf.len()),
            };
            if taken == 0 {
                // End of file: a last line without a newline is still a line.
                if line_len == 0 {
                    self.done = true;
                    break;
                }
            } else {
                if line_len == 0 {
                    line_start = out.bytes.len();
                }
                let room = KEPT_RECORD_BYTES.saturating_sub(line_len);
                out.bytes.extend_from_slice(&buf[..content.min(room)]);
                line_len = line_len.saturating_add(content);
                self.reader.consume(taken);
                if taken == content {
                    continue;
                }
                // A `\r` before the newline is not the line's, unless bytes
                // were dropped: the line is refused as too long either way.
                if line_len > 0 && line_len <= KEPT_RECORD_BYTES && out.bytes.last() == Some(&b'\r')
                {
                    out.bytes.pop();
                }
            }
            out.spans
                .push((self.next_line, line_start, out.bytes.len()));
            self.next_line += 1;
            line_len = 0;
        }
        Ok(())
    }
}

/// The lines of `buf` that end in it, up to `max` in `out` and up to the
/// first one longer than [`KEPT_RECORD_BYTES`] (the caller cuts that one,
/// so that long lines never fill `out`): their bytes, newlines included,
/// copied at once (a copy per line was a call per line), each line's span
/// without its newline or a `\r` before it. Returns the bytes of `buf` taken.
fn whole_lines(buf: &[u8], max: usize, next_line: &mut i64, out: &mut Lines) -> usize {
    let base = out.bytes.len();
    let mut taken = 0;
    for at in memchr::memchr_iter(b'\n', buf) {
        if out.len() == max || at - taken > KEPT_RECORD_BYTES {
            break;
        }
        let end = if at > taken && buf[at - 1] == b'\r' {
            at - 1
        } else {
            at
        };
        out.spans.push((*next_line, base + taken, base + end));
        *next_line += 1;
        taken = at + 1;
    }
    out.bytes.extend_from_slice(&buf[..taken]);
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Topic;
    use crate::source::ChunkSource;

    /// Every line of a file holding `text`, read `max` lines a chunk.
    fn read_back(text: &[u8], max: usize) -> Vec<(i64, Vec<u8>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, text).expect("write");
        let stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let mut file = NdjsonFile::open(&path, stream).expect("open");
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
        // Over the limit (by one, and by megabytes across the read buffer),
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
        /// Random lines (blank, short, at the record limit, past the 1 MiB
        /// read buffer) with every line ending, in chunks of any size.
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

    /// Long lines that end in the read buffer are cut as they are copied:
    /// a chunk holds at most the kept bytes of each.
    #[test]
    fn long_lines_never_fill_a_chunk_past_their_kept_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.ndjson");
        let line = [vec![b'a'; 300_000], b"\n".to_vec()].concat();
        std::fs::write(&path, line.repeat(8)).expect("write");
        let stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let mut file = NdjsonFile::open(&path, stream).expect("open");
        let mut lines = Lines::new();
        file.read_chunk(8, &mut lines).expect("read");
        assert_eq!(lines.len(), 8);
        assert!(
            lines.bytes.len() <= 8 * KEPT_RECORD_BYTES,
            "{}",
            lines.bytes.len()
        );
    }

    #[test]
    fn lines_across_the_read_buffer_edges_are_whole() {
        // Over 3 MiB of lines of every length up to 700 bytes, some ending in
        // `\r\n`, so lines straddle the 1 MiB read buffer's refills.
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
