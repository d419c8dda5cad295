//! File sinks for replay: NDJSON streams and whole JSON documents, written atomically
//! where the file is a final result.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::event::DeadLetter;

/// Error writing an output file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct FileSinkError {
    /// The file.
    pub path: PathBuf,
    /// Underlying error.
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> FileSinkError + '_ {
    move |source| FileSinkError {
        path: path.to_owned(),
        source,
    }
}

/// An NDJSON output file written line by line.
pub struct NdjsonWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl NdjsonWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, FileSinkError> {
        let f = File::create(path).map_err(err(path))?;
        Ok(NdjsonWriter {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 16, f),
        })
    }

    /// Writes one line of already-serialised JSON.
    pub fn write_line(&mut self, json: &str) -> Result<(), FileSinkError> {
        self.out
            .write_all(json.as_bytes())
            .map_err(err(&self.path))?;
        self.out.write_all(b"\n").map_err(err(&self.path))
    }

    /// Writes dead letters, one per line.
    pub fn write_dead_letters(&mut self, dead: &[DeadLetter]) -> Result<(), FileSinkError> {
        for d in dead {
            self.write_line(&d.to_json())?;
        }
        Ok(())
    }

    /// Flushes and syncs the file.
    pub fn close(mut self) -> Result<(), FileSinkError> {
        self.out.flush().map_err(err(&self.path))?;
        self.out.get_ref().sync_all().map_err(err(&self.path))
    }
}

/// A JSON document as slaflow writes it: pretty, with a final newline.
pub fn json_document<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    Ok(text)
}

/// Writes a pretty JSON document atomically (temp file + fsync + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FileSinkError> {
    let text = json_document(value).map_err(|e| FileSinkError {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(err(&tmp))?;
        f.write_all(&text).map_err(err(&tmp))?;
        f.sync_all().map_err(err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(err(path))
}
