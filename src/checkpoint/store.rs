//! Checkpoints on disk: per partition a directory with `MANIFEST.json` and the
//! chain it names, `state-<offset>-<n>.arrow` (full) then
//! `delta-<offset>-<n>.arrow` files.
//!
//! A write adds a delta to the chain this store wrote last, or starts a new
//! chain with a full file: after a restart, after a failed write, when the
//! chain has [`MAX_DELTAS`] deltas, or when its deltas together outgrow its
//! full file (so a restore never reads much more than the state).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rows::{self, Base, RowHashes};
use super::{Checkpoint, CheckpointError, Refusal, StateKey, decode_chain, io, stream_name};
use crate::config::{Config, KafkaConfig};
use crate::event::Topic;
use crate::eventtime::StreamId;
use crate::time::{format_ms, wall_now};

/// Manifest version; version 2 (one full file, no deltas) is still read.
const MANIFEST_VERSION: &str = "3";
/// Longest chain of deltas before a full file is written again.
pub const MAX_DELTAS: usize = 64;

/// One file of a chain, as the manifest names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// The IPC file, relative to the partition directory.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
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
    /// The full file of the chain.
    #[serde(flatten)]
    pub full: FileRef,
    /// Its deltas, in order (each names the SHA-256 of the file before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<FileRef>,
    /// HMAC-SHA256 of `<next_offset>:<sha256 of the last file>` under the
    /// state key, when `engine.checkpoint_key_env` is set. Since each delta
    /// names its predecessor's hash, this signs the whole chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
}

impl Manifest {
    /// The chain's files in order.
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        std::iter::once(&self.full).chain(&self.deltas)
    }

    /// The last file of the chain.
    pub fn tip(&self) -> &FileRef {
        self.deltas.last().unwrap_or(&self.full)
    }

    /// The SHA-256 of the file before the last, which a delta names; `None`
    /// when the chain is a full file alone.
    pub fn previous(&self) -> Option<&str> {
        let before = self.deltas.len().checked_sub(2);
        let file = before.map_or(&self.full, |i| &self.deltas[i]);
        (!self.deltas.is_empty()).then_some(file.sha256.as_str())
    }
}

/// What one write put on disk: the chain's last file.
#[derive(Debug)]
pub struct Written {
    /// The manifest now on disk.
    pub manifest: Manifest,
    /// The file written (full or delta).
    pub bytes: Vec<u8>,
}

impl Written {
    /// For a delta, its place in the chain (1 for the first delta); 0 for a full file.
    pub fn delta(&self) -> usize {
        self.manifest.deltas.len()
    }

    /// For a delta, the SHA-256 of the file before it.
    pub fn previous(&self) -> Option<&str> {
        self.manifest.previous()
    }
}

/// The chain this store wrote last for a partition.
struct Chain {
    manifest: Manifest,
    rows: RowHashes,
}

/// Checkpoints on disk (see the module documentation).
pub struct CheckpointStore {
    dir: PathBuf,
    config: Arc<Config>,
    key: StateKey,
    /// Distinguishes successive files (starts at the wall clock, so it also
    /// grows across restarts).
    written: AtomicU64,
    /// Directory names of the two input topics (see [`CheckpointStore::for_kafka`]).
    names: Option<[String; 2]>,
    chains: Mutex<HashMap<StreamId, Chain>>,
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
            chains: Mutex::default(),
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

    /// Writes a checkpoint (a delta when the chain allows one, else a full
    /// file), then the manifest naming the chain, and removes files no longer
    /// named.
    pub fn write(&self, cp: &Checkpoint) -> Result<Written, CheckpointError> {
        let dir = self.stream_dir(cp.stream());
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        // Taken out: a write that fails part-way leaves the next one to start
        // a new chain, whatever is on disk.
        let chain = chains
            .remove(&cp.stream())
            .filter(|c| Self::extendable(c, &dir));
        let base = chain.as_ref().map(|c| Base {
            rows: &c.rows,
            sha256: &c.manifest.tip().sha256,
        });
        let encoded = rows::encode(cp, &self.config, base);
        let (bytes, rows) = encoded.map_err(|reason| CheckpointError::Encode {
            stream: stream_name(cp.stream()),
            reason,
        })?;
        // A fresh name every time: rewriting a file the current manifest names
        // would break that manifest if the process died before the new one lands.
        let seq = self.written.fetch_add(1, Ordering::Relaxed);
        let kind = if chain.is_some() { "delta" } else { "state" };
        let file = format!("{kind}-{:020}-{seq:020}.arrow", cp.next_offset());
        write_atomic(&dir.join(&file), &bytes)?;
        let written = FileRef {
            file,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        let (full, deltas) = match chain {
            Some(c) => {
                let mut deltas = c.manifest.deltas;
                deltas.push(written);
                (c.manifest.full, deltas)
            }
            None => (written, Vec::new()),
        };
        let manifest = self.write_manifest(cp, &dir, full, deltas)?;
        let chain = Chain {
            manifest: manifest.clone(),
            rows,
        };
        chains.insert(cp.stream(), chain);
        Ok(Written { manifest, bytes })
    }

    /// Makes the next write of `s` a full file. The live loop asks for it when
    /// a partition is assigned: its state may then come from another
    /// instance's chain on the changelog, which a delta against this store's
    /// chain would not follow there.
    pub fn start_over(&self, s: StreamId) {
        let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        chains.remove(&s);
    }

    /// Whether the next write may add a delta to `chain`: it is short, its
    /// deltas are smaller than its full file, and its full file is still there
    /// (a corrupt directory may have been set aside).
    fn extendable(chain: &Chain, dir: &Path) -> bool {
        let m = &chain.manifest;
        let delta_bytes: u64 = m.deltas.iter().map(|d| d.bytes).sum();
        m.deltas.len() < MAX_DELTAS
            && delta_bytes < m.full.bytes
            && dir.join(&m.full.file).is_file()
    }

    fn write_manifest(
        &self,
        cp: &Checkpoint,
        dir: &Path,
        full: FileRef,
        deltas: Vec<FileRef>,
    ) -> Result<Manifest, CheckpointError> {
        let mut manifest = Manifest {
            version: MANIFEST_VERSION.to_owned(),
            stream: cp.stream(),
            next_offset: cp.next_offset(),
            config_sha256: self.config.engine_sha256.clone(),
            written_at: format_ms(wall_now()),
            full,
            deltas,
            hmac: None,
        };
        manifest.hmac = self.key.tag(manifest.next_offset, &manifest.tip().sha256);
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| CheckpointError::Encode {
            stream: stream_name(cp.stream()),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join("MANIFEST.json"), &text)?;
        sync_dir(dir)?;
        // Files the manifest no longer names belong to older chains.
        let named: Vec<&str> = manifest.files().map(|f| f.file.as_str()).collect();
        for entry in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with("state-") || name.starts_with("delta-");
            if ours && !named.contains(&name.as_ref()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(manifest)
    }

    /// Reads a partition's checkpoint: `Ok(None)` when there is none,
    /// `Err(Corrupt)` when there is one that cannot be trusted.
    pub fn read(&self, s: StreamId) -> Result<Option<Checkpoint>, CheckpointError> {
        let dir = self.stream_dir(s);
        let corrupt = |reason: Refusal| CheckpointError::Corrupt {
            stream: stream_name(s),
            reason,
        };
        let manifest = |what: String| corrupt(Refusal::Manifest(what));
        let manifest_path = dir.join("MANIFEST.json");
        let text = match fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&manifest_path)(e)),
        };
        let m: Manifest =
            serde_json::from_slice(&text).map_err(|e| manifest(format!("manifest: {e}")))?;
        let known = m.version == MANIFEST_VERSION || (m.version == "2" && m.deltas.is_empty());
        if m.stream != s || !known {
            return Err(manifest("manifest names another stream or version".into()));
        }
        let files = m
            .files()
            .map(|f| read_named(&dir, f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(manifest)?;
        (self.key)
            .verify(m.next_offset, &m.tip().sha256, m.hmac.as_deref())
            .map_err(corrupt)?;
        let cp = decode_chain(&files, &self.config).map_err(corrupt)?;
        if cp.stream() != s || cp.next_offset() != m.next_offset {
            return Err(manifest("state and manifest disagree".into()));
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

/// A file the manifest names, checked against its size and SHA-256.
fn read_named(dir: &Path, f: &FileRef) -> Result<Vec<u8>, String> {
    if f.file.contains('/') || f.file.contains("..") {
        return Err("manifest names a file outside its directory".into());
    }
    let bytes = fs::read(dir.join(&f.file)).map_err(|e| format!("{}: {e}", f.file))?;
    if bytes.len() as u64 != f.bytes {
        return Err(format!(
            "{} has {} bytes, manifest says {}",
            f.file,
            bytes.len(),
            f.bytes
        ));
    }
    if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
        return Err(format!("{} does not match its SHA-256", f.file));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::super::ipc::IpcFile;
    use super::*;
    use crate::engine::Outputs;
    use crate::event::RawRecord;
    use crate::pipeline::Pipeline;
    use crate::state::Core;

    const TKT: StreamId = StreamId {
        topic: Topic::Tickets,
        partition: 0,
    };
    const CONFIG: &str = "[engine]\ndedup_horizon = \"1h\"\nallowed_lateness = \"1s\"\n[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n[[slas]]\nid = \"gold\"\ncustomer = \"acme\"\nkinds = [\"incident\"]\npause_statuses = [\"on_hold\"]\n[slas.targets.P1]\nresponse = \"15m\"\n";

    /// A tickets partition fed line by line, checkpointed through a store.
    struct Fixture {
        stream: StreamId,
        config: Arc<Config>,
        core: Core,
        next: i64,
        store: CheckpointStore,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new(key: StateKey) -> Fixture {
            let config = Arc::new(Config::parse(CONFIG, Path::new("t.toml")).unwrap());
            let dir = tempfile::tempdir().unwrap();
            let store = CheckpointStore::new(dir.path(), config.clone(), key);
            Fixture {
                stream: TKT,
                core: Self::core(&config),
                config,
                next: 0,
                store,
                _dir: dir,
            }
        }

        fn core(config: &Arc<Config>) -> Core {
            Core::new(Pipeline::new(config.clone(), ["m".into(), "t".into()]))
        }

        fn feed(&mut self, lines: &[String]) {
            let mut out = Outputs::default();
            let records = RawRecord::numbered(lines, self.stream.partition, self.next);
            // A processing clock past every record.
            let wall = crate::time::MAX_MS / 2;
            (self.core.pipeline)
                .ingest(self.stream, &records, wall, &mut out)
                .expect("decoded rows");
            self.core
                .pipeline
                .advance(None, &mut out)
                .expect("decoded rows");
            self.core.record(&out.incidents);
            assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
            self.next += lines.len() as i64;
        }

        fn write(&self) -> Written {
            let cp = self.core.checkpoint(self.stream).unwrap();
            self.store.write(&cp).unwrap()
        }

        /// The state read back from disk restores like the checkpoint it was
        /// written from (compared as both restored and checkpointed again).
        fn assert_restores(&self) {
            let restored = |cp: Checkpoint| {
                let mut core = Self::core(&self.config);
                core.restore(cp, 0);
                encode(&core.checkpoint(self.stream).unwrap(), &self.config).unwrap()
            };
            let back = self.store.read(self.stream).unwrap().expect("a checkpoint");
            let direct = self.core.checkpoint(self.stream).unwrap();
            assert!(
                restored(back) == restored(direct),
                "the chain restores another state"
            );
        }

        fn arrow_files(&self) -> usize {
            let dir = self.store.stream_dir(self.stream);
            let files = fs::read_dir(dir).unwrap().flatten();
            files
                .filter(|f| f.file_name().to_string_lossy().ends_with(".arrow"))
                .count()
        }
    }

    fn created(id: usize, ts: i64) -> String {
        format!(
            r#"{{"event_id":"c{id}","ts":{ts},"ticket":"T-{id}","type":"created","customer":"acme","priority":"P1","kind":"incident"}}"#
        )
    }

    fn status(n: usize, id: usize, ts: i64, status: &str) -> String {
        format!(
            r#"{{"event_id":"s{n}","ts":{ts},"ticket":"T-{id}","type":"status","status":"{status}"}}"#
        )
    }

    fn kinds(bytes: &[u8]) -> Vec<String> {
        let file = IpcFile::read(bytes).unwrap();
        file.rows().map(|(kind, _, _)| kind.to_owned()).collect()
    }

    #[test]
    fn a_delta_holds_what_changed_and_restores_the_same_state() {
        let mut f = Fixture::new(StateKey::default());
        let lines: Vec<String> = (0..2_000).map(|i| created(i, i as i64 * 1_000)).collect();
        f.feed(&lines);
        let full = f.write();
        assert_eq!((full.delta(), full.previous()), (0, None));
        f.assert_restores();

        // Five tickets change status, and the watermark brings others to
        // their deadlines: the delta has exactly the tickets that changed.
        let before = f.core.checkpoint(TKT).unwrap();
        let mut lines: Vec<String> = (0..5)
            .map(|n| status(n, n * 300, 2_000_000 + n as i64, "on_hold"))
            .collect();
        // Moves the watermark past them.
        lines.push(status(5, 0, 2_010_000, "in_progress"));
        f.feed(&lines);
        let delta = f.write();
        assert_eq!(delta.delta(), 1);
        assert_eq!(delta.previous(), Some(full.manifest.full.sha256.as_str()));
        assert!(
            delta.bytes.len() * 20 < full.bytes.len(),
            "delta {} B, full {} B",
            delta.bytes.len(),
            full.bytes.len()
        );
        let after = f.core.checkpoint(TKT).unwrap();
        let json = |t| serde_json::to_string(t).unwrap();
        let old: HashMap<&str, String> = (before.state.engine.tickets.iter())
            .map(|t| (t.id.as_str(), json(t)))
            .collect();
        let changed = (after.state.engine.tickets.iter())
            .filter(|t| old.get(t.id.as_str()) != Some(&json(t)))
            .count();
        let rows = kinds(&delta.bytes);
        assert!((5..100).contains(&changed), "{changed} tickets changed");
        assert_eq!(rows.iter().filter(|k| *k == "ticket").count(), changed);
        f.assert_restores();

        // Two hours on, the sweep forgets the first hour's ids: their dedup
        // buckets are deleted rows.
        f.feed(&[created(5_000, 2 * 3_600_000)]);
        let swept = f.write();
        assert_eq!(swept.delta(), 2);
        assert_eq!(swept.previous(), Some(delta.manifest.tip().sha256.as_str()));
        assert!(kinds(&swept.bytes).iter().any(|k| k == "deleted"));
        f.assert_restores();
        assert_eq!(f.arrow_files(), 3, "the full file and two deltas");
    }

    #[test]
    fn capacity_hours_already_written_are_not_written_again() {
        let mut f = Fixture::new(StateKey::default());
        f.stream = StreamId {
            topic: Topic::Monitoring,
            partition: 0,
        };
        let sample = |n: i64| {
            format!(
                r#"{{"event_id":"m{n}","ts":{},"service":"web","kind":"metric","resource":"db","metric":"disk","value":1.5,"capacity":2}}"#,
                n * 600_000
            )
        };
        // Two days and twenty minutes of samples every ten minutes: nine rows
        // of six hours.
        let lines: Vec<String> = (0..=290).map(sample).collect();
        f.feed(&lines);
        let full = f.write();
        assert_eq!(
            kinds(&full.bytes).iter().filter(|k| *k == "hours").count(),
            9
        );
        f.feed(&[sample(291), sample(292)]);
        let delta = f.write();
        let rows = kinds(&delta.bytes);
        let hours = rows.iter().filter(|k| *k == "hours").count();
        assert_eq!(hours, 1, "only the span the new sample fell into: {rows:?}");
        f.assert_restores();
    }

    #[test]
    fn a_chain_is_compacted_into_a_new_full_file() {
        let mut f = Fixture::new(StateKey::default());
        let lines: Vec<String> = (0..500).map(|i| created(i, i as i64 * 1_000)).collect();
        f.feed(&lines);
        assert_eq!(f.write().delta(), 0);
        let mut deltas = 0;
        for n in 0..=MAX_DELTAS {
            f.feed(&[status(n, n, 600_000 + n as i64, "on_hold")]);
            match f.write().delta() {
                0 => break,
                d => deltas = d,
            }
        }
        assert!((1..=MAX_DELTAS).contains(&deltas), "{deltas} deltas");
        assert_eq!(f.arrow_files(), 1, "the old chain is removed");
        f.assert_restores();
    }

    #[test]
    fn a_broken_chain_is_corrupt_and_the_next_write_starts_anew() {
        let mut f = Fixture::new(StateKey::new(b"k"));
        let lines: Vec<String> = (0..300).map(|i| created(i, i as i64 * 1_000)).collect();
        f.feed(&lines);
        f.write();
        f.feed(&[status(1, 1, 400_000, "on_hold")]);
        f.write();
        f.feed(&[status(2, 2, 500_000, "on_hold")]);
        let last = f.write();
        assert_eq!(last.delta(), 2);
        f.assert_restores();

        // Deltas in the wrong order (the manifest re-signed, as by someone
        // holding the key): the links say so.
        let mut m = last.manifest.clone();
        m.deltas.swap(0, 1);
        m.hmac = f.store.key.tag(m.next_offset, &m.tip().sha256);
        let path = f.store.stream_dir(TKT).join("MANIFEST.json");
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let err = f.store.read(TKT).unwrap_err().to_string();
        assert!(err.contains("does not follow"), "{err}");

        // Without its last delta the manifest's signature no longer matches.
        let mut m = last.manifest.clone();
        m.deltas.pop();
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let err = f.store.read(TKT).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");

        f.store.set_aside(TKT).unwrap();
        f.feed(&[status(3, 1, 600_000, "in_progress")]);
        assert_eq!(
            f.write().delta(),
            0,
            "a full file after the chain was set aside"
        );
        f.assert_restores();
    }
}
