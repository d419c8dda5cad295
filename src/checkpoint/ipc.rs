//! A checkpoint file as Arrow IPC: one batch of rows (`kind`, `key`, `state`)
//! and the file's facts in the schema metadata. Reading treats the bytes as
//! hostile: every length is checked before arrow trusts it.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use super::Refusal;

use datafusion::arrow::array::{
    Array, AsArray, BinaryArray, BinaryBuilder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;

/// Collects rows and writes them as one IPC file. Builders take each entity's
/// bytes as it is encoded, so a checkpoint is not held twice (entities, then
/// columns) on top of the IPC output.
#[derive(Default)]
pub(super) struct IpcWriter {
    kind: StringBuilder,
    key: StringBuilder,
    state: BinaryBuilder,
}

impl IpcWriter {
    pub(super) fn push(&mut self, kind: &str, key: &str, state: &[u8]) {
        self.kind.append_value(kind);
        self.key.append_value(key);
        self.state.append_value(state);
    }

    pub(super) fn finish(mut self, metadata: HashMap<String, String>) -> Result<Vec<u8>, String> {
        let schema = Arc::new(Schema::new(fields()).with_metadata(metadata));
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(self.kind.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.state.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut w = FileWriter::try_new(&mut out, &schema).map_err(|e| e.to_string())?;
        w.write(&batch).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        drop(w);
        Ok(out)
    }
}

fn fields() -> Vec<Field> {
    vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("state", DataType::Binary, false),
    ]
}

/// The columns [`IpcWriter`] writes; anything else is refused before it is read.
fn schema_ok(schema: &Schema) -> bool {
    let want = fields();
    schema.fields().len() == want.len()
        && schema.fields().iter().zip(&want).all(|(f, w)| {
            f.name() == w.name() && f.data_type() == w.data_type() && !f.is_nullable()
        })
}

/// A file read back: its metadata and its batches' columns.
pub(super) struct IpcFile {
    pub(super) metadata: HashMap<String, String>,
    batches: Vec<RecordBatch>,
}

impl IpcFile {
    /// Reads IPC bytes written by [`IpcWriter`].
    pub(super) fn read(bytes: &[u8]) -> Result<IpcFile, Refusal> {
        // arrow-ipc panics on some malformed flatbuffers (found by fuzzing: a schema
        // message without fields unwraps a None). A checkpoint is untrusted input:
        // such bytes are refused like any corrupt file, never a dead process.
        std::panic::catch_unwind(|| read_unchecked(bytes))
            .unwrap_or_else(|_| Err("not a readable Arrow IPC file".into()))
            .map_err(Refusal::Layout)
    }

    /// A metadata value, required.
    pub(super) fn get(&self, key: &str) -> Result<&str, Refusal> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Refusal::Layout(format!("metadata {key} missing")))
    }

    /// Every row as (kind, key, state), in file order.
    pub(super) fn rows(&self) -> impl Iterator<Item = (&str, &str, &[u8])> {
        self.batches.iter().flat_map(|batch| {
            let (kinds, keys, states): (&StringArray, &StringArray, &BinaryArray) = (
                batch.column(0).as_string::<i32>(),
                batch.column(1).as_string::<i32>(),
                batch.column(2).as_binary::<i32>(),
            );
            (0..batch.num_rows()).map(move |r| (kinds.value(r), keys.value(r), states.value(r)))
        })
    }
}

fn read_unchecked(bytes: &[u8]) -> Result<IpcFile, String> {
    check_ipc_bounds(bytes)?;
    let reader = FileReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| format!("not an Arrow IPC file: {e}"))?;
    if !schema_ok(&reader.schema()) {
        return Err("not the checkpoint schema (kind, key, state)".into());
    }
    let metadata = reader.schema().metadata().clone();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("IPC batch: {e}"))?;
    Ok(IpcFile { metadata, batches })
}

/// Bounds what arrow-ipc will allocate when it reads `bytes`. arrow trusts the
/// lengths in a file's footer and messages, so a corrupt or forged file could make
/// it allocate far more than the file holds, which aborts the process (found by
/// fuzzing). Every block must lie inside the file, every buffer inside its block,
/// and no batch may claim more rows than its body has bytes; no dictionaries, no
/// compression (slaflow writes neither).
fn check_ipc_bounds(bytes: &[u8]) -> Result<(), String> {
    use datafusion::arrow::ipc::{root_as_footer, root_as_message};
    let bad = |what: &str| Err(format!("not a well-formed Arrow IPC file: {what}"));
    let n = bytes.len();
    if n < 10 || &bytes[n - 6..] != b"ARROW1" {
        return bad("no footer");
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[n - 10..n - 6]);
    let Some(footer_len) = usize::try_from(i32::from_le_bytes(len))
        .ok()
        .filter(|l| *l <= n - 10)
    else {
        return bad("footer length");
    };
    let footer = root_as_footer(&bytes[n - 10 - footer_len..n - 10])
        .map_err(|e| format!("not a well-formed Arrow IPC file: footer: {e}"))?;
    if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
        return bad("dictionaries");
    }
    for block in footer.recordBatches().iter().flatten() {
        let (Ok(offset), Ok(meta), Ok(body)) = (
            usize::try_from(block.offset()),
            usize::try_from(block.metaDataLength()),
            usize::try_from(block.bodyLength()),
        ) else {
            return bad("negative block lengths");
        };
        let inside = offset
            .checked_add(meta)
            .and_then(|m| m.checked_add(body))
            .is_some_and(|end| end <= n);
        if !inside || meta < 8 {
            return bad("a block beyond the file");
        }
        let msg = &bytes[offset..offset + meta];
        let fb = if msg[..4] == [0xff; 4] {
            &msg[8..]
        } else {
            &msg[4..]
        };
        let message =
            root_as_message(fb).map_err(|e| format!("not a well-formed Arrow IPC file: {e}"))?;
        let Some(batch) = message.header_as_record_batch() else {
            return bad("a block that is not a record batch");
        };
        let within = |off: i64, len: i64| {
            usize::try_from(off)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| o.checked_add(l))
                .is_some_and(|end| end <= body)
        };
        let rows_ok = usize::try_from(batch.length()).is_ok_and(|rows| rows <= body);
        let nodes_ok = batch.nodes().iter().flatten().all(|f| {
            (0..=batch.length()).contains(&f.length()) && (0..=f.length()).contains(&f.null_count())
        });
        let buffers_ok = batch
            .buffers()
            .iter()
            .flatten()
            .all(|b| within(b.offset(), b.length()));
        if !rows_ok || !nodes_ok || !buffers_ok || batch.compression().is_some() {
            return bad("a batch larger than its block");
        }
    }
    Ok(())
}
