//! Checkpoints: for each input partition, the state it owns and the offset it
//! covers, so a restart (or another instance taking the partition over) resumes
//! exactly where processing stood.
//!
//! A checkpoint is an Arrow IPC file, one row per entity (`kind`, `key`, `state`:
//! the entity's CBOR encoding), with the stream, the next offset and the engine
//! config hash in the schema metadata. On disk each partition has its directory
//! with the IPC file and a `MANIFEST.json` naming it with its size and SHA-256;
//! both are written with write + fsync + rename, the manifest last. Reading checks
//! the manifest, the size, the checksum, the config hash and the IPC structure:
//! anything wrong is reported as corrupt, never half-used.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, AsArray, BinaryBuilder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, KafkaConfig};
use crate::engine::incidents::Incident;
use crate::event::Topic;
use crate::eventtime::StreamId;
use crate::pipeline::PartitionState;
use crate::sign::{hmac_hex, hmac_matches};
use crate::time::{format_ms, wall_now};

/// Format version, in the manifest and the IPC metadata.
const VERSION: &str = "2";

/// Checkpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Disk I/O.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The state could not be encoded (a bug: every state type serialises).
    #[error("checkpoint of {stream} cannot be encoded: {reason}")]
    Encode {
        /// Which partition.
        stream: String,
        /// What failed.
        reason: String,
    },
    /// The checkpoint exists but cannot be trusted.
    #[error("checkpoint of {stream} is corrupt: {reason}")]
    Corrupt {
        /// Which partition.
        stream: String,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `monitoring-3`, `tickets-0`.
pub fn stream_name(s: StreamId) -> String {
    format!("{}-{}", s.topic.as_str(), s.partition)
}

/// The inverse of [`stream_name`].
pub fn parse_stream_name(name: &str) -> Option<StreamId> {
    let (topic, partition) = name.rsplit_once('-')?;
    Some(StreamId {
        topic: Topic::parse(topic)?,
        partition: partition.parse().ok()?,
    })
}

/// One partition's checkpoint: its state and the incident actions its entities fired.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// State (its `eventtime.next_offset` is where reading resumes).
    pub state: PartitionState,
    /// Incident log entries of the partition's services or tickets.
    pub incidents: Vec<Incident>,
}

impl Checkpoint {
    /// The partition.
    pub fn stream(&self) -> StreamId {
        self.state.eventtime.stream
    }
    /// Where reading resumes.
    pub fn next_offset(&self) -> i64 {
        self.state.eventtime.next_offset
    }
}

/// The per-partition manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: String,
    /// The partition.
    pub stream: StreamId,
    /// Where reading resumes.
    pub next_offset: i64,
    /// Engine config hash the state was computed under.
    pub config_sha256: String,
    /// When written (RFC 3339).
    pub written_at: String,
    /// The IPC file, relative to the partition directory.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// HMAC-SHA256 of `<next_offset>:<sha256>` under the state key, when
    /// `engine.checkpoint_key_env` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
}

/// The key checkpoints are signed with (`engine.checkpoint_key_env`); without
/// one, nothing is signed and nothing is asked to be.
#[derive(Clone, Default)]
pub struct StateKey(Option<Arc<[u8]>>);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StateKey(set)"
        } else {
            "StateKey(none)"
        })
    }
}

impl StateKey {
    /// The key named by `engine.checkpoint_key_env`; an error when that variable
    /// is named but unset or empty (state would silently go unsigned).
    pub fn from_config(config: &Config) -> Result<StateKey, String> {
        let Some(var) = &config.engine.checkpoint_key_env else {
            return Ok(StateKey(None));
        };
        match std::env::var(var) {
            Ok(k) if !k.is_empty() => Ok(StateKey(Some(k.into_bytes().into()))),
            _ => Err(format!(
                "engine.checkpoint_key_env names {var}, which is unset or empty"
            )),
        }
    }

    /// A key from raw bytes (tests, tools).
    pub fn new(key: &[u8]) -> StateKey {
        StateKey(Some(key.into()))
    }

    /// The tag of a checkpoint with this `sha256` and `next_offset`, if signing.
    pub fn tag(&self, next_offset: i64, sha256: &str) -> Option<String> {
        let key = self.0.as_deref()?;
        Some(hmac_hex(
            key,
            &[next_offset.to_string().as_bytes(), b":", sha256.as_bytes()],
        ))
    }

    /// `Err` when signing and `tag` is missing or forged.
    pub fn verify(&self, next_offset: i64, sha256: &str, tag: Option<&str>) -> Result<(), String> {
        let Some(key) = self.0.as_deref() else {
            return Ok(());
        };
        let offset = next_offset.to_string();
        let parts: [&[u8]; 3] = [offset.as_bytes(), b":", sha256.as_bytes()];
        match tag {
            Some(t) if hmac_matches(key, &parts, t) => Ok(()),
            Some(_) => Err("signature does not match the state key".into()),
            None => Err("unsigned, but engine.checkpoint_key_env is set".into()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Extents {
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Encodes a checkpoint as Arrow IPC file bytes.
pub fn encode(cp: &Checkpoint, config_sha256: &str) -> Result<Vec<u8>, CheckpointError> {
    encode_ipc(cp, config_sha256).map_err(|reason| CheckpointError::Encode {
        stream: stream_name(cp.stream()),
        reason,
    })
}

fn encode_ipc(cp: &Checkpoint, config_sha256: &str) -> Result<Vec<u8>, String> {
    // Builders take each entity's bytes as it is encoded, so a checkpoint is not
    // held twice (entities, then columns) on top of the IPC output.
    let mut kind = StringBuilder::new();
    let mut key = StringBuilder::new();
    let mut state = BinaryBuilder::new();
    let mut row = |k: &str, id: &str, bytes: Vec<u8>| {
        kind.append_value(k);
        key.append_value(id);
        state.append_value(bytes);
    };
    let s = &cp.state;
    row("stream", &stream_name(cp.stream()), cbor(&s.eventtime)?);
    row(
        "extents",
        "",
        cbor(&Extents {
            min_ts: s.min_ts,
            max_ts: s.max_ts,
        })?,
    );
    for t in &s.engine.services {
        row("service", t.id(), cbor(t)?);
    }
    for c in &s.engine.capacity {
        row("series", &c.key(), cbor(c)?);
    }
    for t in &s.engine.tickets {
        row("ticket", &t.id, cbor(t)?);
    }
    for i in &cp.incidents {
        let json = serde_json::to_vec(i).map_err(|e| e.to_string())?;
        row("incident", &i.incident_id, json);
    }
    let metadata = HashMap::from([
        ("slaflow.version".to_owned(), VERSION.to_owned()),
        ("slaflow.stream".to_owned(), stream_name(cp.stream())),
        (
            "slaflow.next_offset".to_owned(),
            cp.next_offset().to_string(),
        ),
        ("slaflow.config_sha256".to_owned(), config_sha256.to_owned()),
    ]);
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("kind", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("state", DataType::Binary, false),
        ])
        .with_metadata(metadata),
    );
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(kind.finish()),
        Arc::new(key.finish()),
        Arc::new(state.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut w = FileWriter::try_new(&mut out, &schema).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    drop(w);
    Ok(out)
}

/// The columns [`encode`] writes; anything else is refused before it is read.
fn schema_ok(schema: &Schema) -> bool {
    let want = [
        ("kind", DataType::Utf8),
        ("key", DataType::Utf8),
        ("state", DataType::Binary),
    ];
    schema.fields().len() == want.len()
        && schema
            .fields()
            .iter()
            .zip(want)
            .all(|(f, (name, ty))| f.name() == name && *f.data_type() == ty && !f.is_nullable())
}

/// Decodes IPC bytes written by [`encode`] under `config` (its engine hash must
/// match) and checks every entity against it, so nothing a run under this
/// config could not have produced is ever used.
pub fn decode(bytes: &[u8], config: &Config) -> Result<Checkpoint, String> {
    let cp = decode_unchecked(bytes, &config.engine_sha256)?;
    cp.state.eventtime.check()?;
    cp.state.engine.check(config)?;
    for t in [cp.state.min_ts, cp.state.max_ts].into_iter().flatten() {
        crate::time::check_instant("extent", t)?;
    }
    if cp.state.min_ts > cp.state.max_ts {
        return Err("extents out of order".into());
    }
    Ok(cp)
}

fn decode_unchecked(bytes: &[u8], config_sha256: &str) -> Result<Checkpoint, String> {
    // arrow-ipc panics on some malformed flatbuffers (found by fuzzing: a schema
    // message without fields unwraps a None). A checkpoint is untrusted input: such
    // bytes are refused like any corrupt file, never a dead process.
    std::panic::catch_unwind(|| read_ipc(bytes, config_sha256))
        .unwrap_or_else(|_| Err("not a readable Arrow IPC file".into()))
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

fn read_ipc(bytes: &[u8], config_sha256: &str) -> Result<Checkpoint, String> {
    check_ipc_bounds(bytes)?;
    let reader = FileReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| format!("not an Arrow IPC file: {e}"))?;
    if !schema_ok(&reader.schema()) {
        return Err("not the checkpoint schema (kind, key, state)".into());
    }
    let meta = reader.schema().metadata().clone();
    let get = |k: &str| {
        meta.get(k)
            .cloned()
            .ok_or_else(|| format!("metadata {k} missing"))
    };
    if get("slaflow.version")? != VERSION {
        return Err("unknown checkpoint version".into());
    }
    if get("slaflow.config_sha256")? != config_sha256 {
        return Err("written under a different engine config".into());
    }
    let mut stream = None;
    let mut extents = None;
    let mut engine = crate::engine::EngineSlice::default();
    let mut incidents = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("IPC batch: {e}"))?;
        let col = |i: usize| batch.column(i);
        let (kinds, keys, states) = (
            col(0).as_string::<i32>(),
            col(1).as_string::<i32>(),
            col(2).as_binary::<i32>(),
        );
        for r in 0..batch.num_rows() {
            let bytes = states.value(r);
            let bad = |e: String| format!("{} {:?}: {e}", kinds.value(r), keys.value(r));
            fn de<T: for<'a> Deserialize<'a>>(b: &[u8]) -> Result<T, String> {
                ciborium::from_reader(b).map_err(|e| e.to_string())
            }
            match kinds.value(r) {
                "stream" => stream = Some(de(bytes).map_err(bad)?),
                "extents" => extents = Some(de::<Extents>(bytes).map_err(bad)?),
                "service" => engine.services.push(de(bytes).map_err(bad)?),
                "series" => engine.capacity.push(de(bytes).map_err(bad)?),
                "ticket" => engine.tickets.push(de(bytes).map_err(bad)?),
                "incident" => incidents.push(
                    std::str::from_utf8(bytes)
                        .ok()
                        .and_then(Incident::from_json)
                        .ok_or_else(|| bad("not an incident record".into()))?,
                ),
                other => return Err(format!("unknown row kind {other:?}")),
            }
        }
    }
    let eventtime: crate::eventtime::StreamState = stream.ok_or("no stream row")?;
    let extents = extents.ok_or("no extents row")?;
    if get("slaflow.next_offset")? != eventtime.next_offset.to_string() {
        return Err("next offset in metadata and state differ".into());
    }
    Ok(Checkpoint {
        state: PartitionState {
            eventtime,
            engine,
            min_ts: extents.min_ts,
            max_ts: extents.max_ts,
        },
        incidents,
    })
}

/// Checkpoints on disk: `<stream dir>/{MANIFEST.json, state-<offset>-<n>.arrow}`.
pub struct CheckpointStore {
    dir: PathBuf,
    config: Arc<Config>,
    key: StateKey,
    /// Distinguishes successive files (starts at the wall clock, so it also
    /// grows across restarts).
    written: AtomicU64,
    /// Directory names of the two input topics (see [`CheckpointStore::for_kafka`]).
    names: Option<[String; 2]>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl CheckpointStore {
    /// A store under `data_dir` for state computed under `config`, signed with `key`.
    pub fn new(data_dir: &Path, config: Arc<Config>, key: StateKey) -> Self {
        CheckpointStore {
            dir: data_dir.join("checkpoints"),
            config,
            key,
            written: AtomicU64::new(wall_now().max(0) as u64 * 1000),
            names: None,
        }
    }

    /// The store of one deployment: checkpoints live under
    /// `<data_dir>/checkpoints/<group>/<input topic>-<partition>/`, so deployments
    /// (or topics) sharing a data directory never restore each other's state.
    pub fn for_kafka(config: Arc<Config>, key: StateKey, kafka: &KafkaConfig) -> Self {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let data_dir = config.engine.data_dir.clone();
        let mut store = CheckpointStore::new(&data_dir, config, key);
        store.dir = store.dir.join(safe(&kafka.group_id));
        store.names = Some(Topic::ALL.map(|t| safe(kafka.topic_name(t))));
        store
    }

    fn stream_dir(&self, s: StreamId) -> PathBuf {
        match &self.names {
            Some(names) => self
                .dir
                .join(format!("{}-{}", names[s.topic.index()], s.partition)),
            None => self.dir.join(stream_name(s)),
        }
    }

    /// The config checkpoints are written and accepted under.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The key checkpoints are signed with.
    pub fn key(&self) -> &StateKey {
        &self.key
    }

    /// Writes a checkpoint atomically and returns its manifest and IPC bytes.
    pub fn write(&self, cp: &Checkpoint) -> Result<(Manifest, Vec<u8>), CheckpointError> {
        let dir = self.stream_dir(cp.stream());
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let bytes = encode(cp, &self.config.engine_sha256)?;
        // A fresh name every time: rewriting the file the current manifest names
        // would break that manifest if the process died before the new one lands.
        let seq = self.written.fetch_add(1, Ordering::Relaxed);
        let file = format!("state-{:020}-{seq:020}.arrow", cp.next_offset());
        write_atomic(&dir.join(&file), &bytes)?;
        let manifest = Manifest {
            version: VERSION.to_owned(),
            stream: cp.stream(),
            next_offset: cp.next_offset(),
            config_sha256: self.config.engine_sha256.clone(),
            written_at: format_ms(wall_now()),
            file: file.clone(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            hmac: None,
        };
        let manifest = Manifest {
            hmac: self.key.tag(manifest.next_offset, &manifest.sha256),
            ..manifest
        };
        let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        write_atomic(&dir.join("MANIFEST.json"), &text)?;
        sync_dir(&dir)?;
        // Older state files are no longer referenced.
        for entry in fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("state-") && *name != *file {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok((manifest, bytes))
    }

    /// Reads a partition's checkpoint: `Ok(None)` when there is none,
    /// `Err(Corrupt)` when there is one that cannot be trusted.
    pub fn read(&self, s: StreamId) -> Result<Option<Checkpoint>, CheckpointError> {
        let dir = self.stream_dir(s);
        let corrupt = |reason: String| CheckpointError::Corrupt {
            stream: stream_name(s),
            reason,
        };
        let manifest_path = dir.join("MANIFEST.json");
        let text = match fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&manifest_path)(e)),
        };
        let m: Manifest =
            serde_json::from_slice(&text).map_err(|e| corrupt(format!("manifest: {e}")))?;
        if m.stream != s || m.version != VERSION {
            return Err(corrupt("manifest names another stream or version".into()));
        }
        if m.file.contains('/') || m.file.contains("..") {
            return Err(corrupt(
                "manifest names a file outside its directory".into(),
            ));
        }
        let bytes = fs::read(dir.join(&m.file)).map_err(|e| corrupt(format!("{}: {e}", m.file)))?;
        if bytes.len() as u64 != m.bytes {
            return Err(corrupt(format!(
                "{} has {} bytes, manifest says {}",
                m.file,
                bytes.len(),
                m.bytes
            )));
        }
        if hex::encode(Sha256::digest(&bytes)) != m.sha256 {
            return Err(corrupt(format!("{} does not match its SHA-256", m.file)));
        }
        self.key
            .verify(m.next_offset, &m.sha256, m.hmac.as_deref())
            .map_err(|e| corrupt(format!("manifest: {e}")))?;
        let cp = decode(&bytes, &self.config).map_err(corrupt)?;
        if cp.stream() != s || cp.next_offset() != m.next_offset {
            return Err(corrupt("state and manifest disagree".into()));
        }
        Ok(Some(cp))
    }

    /// Moves a corrupt checkpoint aside (kept for inspection, never read again).
    pub fn set_aside(&self, s: StreamId) -> Result<PathBuf, CheckpointError> {
        let dir = self.stream_dir(s);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = dir.with_file_name(format!("{name}.corrupt-{}", wall_now()));
        fs::rename(&dir, &to).map_err(io(&dir))?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::Outputs;
    use crate::event::RawRecord;
    use crate::model::Rule;
    use crate::pipeline::Pipeline;
    use crate::state::Core;

    const MON: StreamId = StreamId {
        topic: Topic::Monitoring,
        partition: 2,
    };

    fn checkpoint() -> (Checkpoint, Arc<Config>) {
        let text =
            "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n";
        let config = Arc::new(Config::parse(text, Path::new("t.toml")).unwrap());
        let mut core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
        let lines: Vec<String> = (0..20)
            .map(|i| {
                let status = if i < 10 { "up" } else { "down" };
                format!(
                    r#"{{"event_id":"e{i}","ts":{},"service":"web","kind":"probe","source":"a","status":"{status}"}}"#,
                    i * 30_000
                )
            })
            .chain([r#"{"event_id":"m","ts":1,"service":"web","kind":"metric","resource":"db","metric":"disk","value":1.5,"capacity":2}"#.to_owned()])
            .collect();
        let mut out = Outputs::default();
        core.pipeline
            .ingest(MON, &RawRecord::numbered(&lines, 2, 100), 0, &mut out);
        core.pipeline.advance(None, &mut out);
        core.record(&out.incidents);
        (core.checkpoint(MON).unwrap(), config)
    }

    #[test]
    fn round_trip_on_disk() {
        let (cp, config) = checkpoint();
        let sha = config.engine_sha256.clone();
        assert_eq!(cp.next_offset(), 121);
        assert!(
            !cp.state.eventtime.pending.is_empty(),
            "records wait for the watermark"
        );
        let fired = |rule| cp.incidents.iter().filter(|i| i.rule == rule).count();
        assert_eq!(fired(Rule::Outage), 1, "the outage fired");
        assert!(fired(Rule::BurnRate) > 0, "burn-rate state goes round too");
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path(), config.clone(), StateKey::default());
        assert!(store.read(MON).unwrap().is_none());
        let (first, _) = store.write(&cp).unwrap();
        let (manifest, bytes) = store.write(&cp).unwrap();
        assert_eq!(manifest.next_offset, 121);
        assert_ne!(
            first.file, manifest.file,
            "never rewrite the file a manifest names"
        );
        let back = store.read(MON).unwrap().unwrap();
        assert_eq!(
            encode(&back, &sha).expect("encodes"),
            bytes,
            "a restored checkpoint encodes identically"
        );
        // A different engine config does not accept it.
        let other = Config::parse(
            "[engine]\nbucket = \"5m\"\n[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(matches!(
            CheckpointStore::new(dir.path(), Arc::new(other), StateKey::default()).read(MON),
            Err(CheckpointError::Corrupt { .. })
        ));
    }

    #[test]
    fn truncated_or_altered_files_are_corrupt() {
        let (cp, config) = checkpoint();
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path(), config.clone(), StateKey::default());
        let (m, bytes) = store.write(&cp).unwrap();
        let file = dir
            .path()
            .join("checkpoints")
            .join(stream_name(MON))
            .join(&m.file);
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = store.read(MON).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        std::fs::write(&file, &flipped).unwrap();
        assert!(store.read(MON).unwrap_err().to_string().contains("SHA-256"));
        std::fs::write(file.with_file_name("MANIFEST.json"), b"{").unwrap();
        assert!(
            store
                .read(MON)
                .unwrap_err()
                .to_string()
                .contains("manifest")
        );
        let aside = store.set_aside(MON).unwrap();
        assert!(aside.exists());
        assert!(store.read(MON).unwrap().is_none());
        // Even with a matching checksum, bytes that are not a checkpoint are refused.
        assert!(decode(b"not arrow", &config).is_err());
    }

    /// Arrow IPC bytes of one batch with `columns`, under the right metadata.
    fn ipc(config: &Config, fields: Vec<Field>, columns: Vec<Arc<dyn Array>>) -> Vec<u8> {
        let meta = HashMap::from([
            ("slaflow.version".to_owned(), VERSION.to_owned()),
            ("slaflow.stream".to_owned(), stream_name(MON)),
            ("slaflow.next_offset".to_owned(), "1".to_owned()),
            (
                "slaflow.config_sha256".to_owned(),
                config.engine_sha256.clone(),
            ),
        ]);
        let schema = Arc::new(Schema::new(fields).with_metadata(meta));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut out = Vec::new();
        let mut w = FileWriter::try_new(&mut out, &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        out
    }

    #[test]
    fn bytes_that_make_arrow_ipc_panic_are_refused() {
        let (_, config) = checkpoint();
        for fuzzed in [
            &include_bytes!("../fuzz/corpus/checkpoint/regression-arrow-schema-without-fields")[..],
            // A block claiming more bytes than the file holds: arrow would allocate
            // them, and an allocation failure aborts rather than panics.
            &include_bytes!("../fuzz/corpus/checkpoint/regression-arrow-block-larger-than-file")[..],
        ] {
            assert!(decode(fuzzed, &config).is_err());
        }
    }

    #[test]
    fn a_wrong_schema_is_refused_not_a_panic() {
        use datafusion::arrow::array::{BinaryArray, Int64Array, StringArray};
        let (_, config) = checkpoint();
        let ints = ipc(
            &config,
            vec![
                Field::new("kind", DataType::Int64, false),
                Field::new("key", DataType::Utf8, false),
                Field::new("state", DataType::Binary, false),
            ],
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["x"])),
                Arc::new(BinaryArray::from_vec(vec![b"x"])),
            ],
        );
        assert!(decode(&ints, &config).unwrap_err().contains("schema"));
        let one_column = ipc(
            &config,
            vec![Field::new("kind", DataType::Utf8, false)],
            vec![Arc::new(StringArray::from(vec!["stream"]))],
        );
        assert!(decode(&one_column, &config).unwrap_err().contains("schema"));
    }

    /// Re-encodes `cp` after editing one entity's CBOR as a JSON value.
    fn with_edited(
        cp: &Checkpoint,
        config: &Config,
        edit: impl Fn(&mut serde_json::Value),
    ) -> Vec<u8> {
        let mut t: serde_json::Value = serde_json::to_value(&cp.state.engine.services[0]).unwrap();
        edit(&mut t);
        let mut cp = cp.clone();
        cp.state.engine.services[0] = serde_json::from_value(t).unwrap();
        encode(&cp, &config.engine_sha256).expect("encodes")
    }

    #[test]
    fn impossible_values_are_refused() {
        let (cp, config) = checkpoint();
        assert!(
            decode(
                &encode(&cp, &config.engine_sha256).expect("encodes"),
                &config
            )
            .is_ok()
        );
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: [(&str, Edit); 4] = [
            ("bucket 0", Box::new(|t| t["bucket"] = 0.into())),
            (
                "negative duration",
                Box::new(|t| t["month_acc"][0] = (-5).into()),
            ),
            ("far cursor", Box::new(|t| t["cursor"] = i64::MAX.into())),
            (
                "unordered runs",
                Box::new(|t| {
                    let first = t["runs"][0].clone();
                    t["runs"].as_array_mut().unwrap().push(first);
                }),
            ),
        ];
        for (what, edit) in cases {
            let bytes = with_edited(&cp, &config, edit);
            assert!(decode(&bytes, &config).is_err(), "{what} was accepted");
        }
        // A negative offset.
        let mut bad = cp.clone();
        bad.state.eventtime.next_offset = -1;
        assert!(
            decode(
                &encode(&bad, &config.engine_sha256).expect("encodes"),
                &config
            )
            .is_err()
        );
    }

    /// Writes the fuzzer's seed checkpoints (`scripts/fuzz.sh` runs it when the
    /// seeds are missing): `cargo test --lib write_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore = "tool: writes fuzz/corpus/checkpoint seeds"]
    fn write_fuzz_seeds() {
        let (cp, _) = checkpoint();
        // The fuzz target's config: the same service, plus an SLA.
        let text = "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n[[slas]]\nid = \"gold\"\ncustomer = \"acme\"\nkinds = [\"incident\"]\npause_statuses = [\"on_hold\"]\n[slas.targets.P1]\nresponse = \"15m\"\n";
        let config = Config::parse(text, Path::new("fuzz.toml")).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/checkpoint");
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = encode(&cp, &config.engine_sha256).expect("encodes");
        assert!(decode(&bytes, &config).is_ok());
        std::fs::write(dir.join("seed-monitoring"), bytes).unwrap();
        let config = Arc::new(config);
        let mut core = Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]));
        let tkt = StreamId {
            topic: Topic::Tickets,
            partition: 1,
        };
        let lines = [
            r#"{"event_id":"c","ts":1000,"ticket":"T-1","type":"created","customer":"acme","priority":"P1","kind":"incident"}"#,
            r#"{"event_id":"s","ts":2000,"ticket":"T-1","type":"status","status":"on_hold"}"#,
            r#"{"event_id":"x","ts":1000000,"ticket":"T-2","type":"created","customer":"acme","priority":"P1","kind":"incident"}"#,
        ];
        let mut out = Outputs::default();
        core.pipeline
            .ingest(tkt, &RawRecord::numbered(&lines, 1, 0), 0, &mut out);
        core.pipeline.advance(None, &mut out);
        core.record(&out.incidents);
        let bytes = encode(&core.checkpoint(tkt).unwrap(), &config.engine_sha256).expect("encodes");
        assert!(decode(&bytes, &config).is_ok());
        std::fs::write(dir.join("seed-tickets"), bytes).unwrap();
    }

    #[test]
    fn with_a_state_key_unsigned_or_forged_checkpoints_are_refused() {
        let (cp, config) = checkpoint();
        let dir = tempfile::tempdir().unwrap();
        let signed = CheckpointStore::new(dir.path(), config.clone(), StateKey::new(b"k1"));
        let (m, _) = signed.write(&cp).unwrap();
        assert!(m.hmac.is_some());
        assert!(signed.read(MON).unwrap().is_some());
        let forged = CheckpointStore::new(dir.path(), config.clone(), StateKey::new(b"k2"));
        assert!(
            forged
                .read(MON)
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let unsigned = CheckpointStore::new(dir.path(), config.clone(), StateKey::default());
        unsigned.write(&cp).unwrap();
        assert!(
            signed
                .read(MON)
                .unwrap_err()
                .to_string()
                .contains("unsigned")
        );
    }
}
