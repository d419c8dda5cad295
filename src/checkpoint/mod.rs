//! Checkpoints: for each input partition, the state it owns and the offset it
//! covers, so a restart (or another instance taking the partition over) resumes
//! exactly where processing stood.
//!
//! A checkpoint is a chain of Arrow IPC files: a full file, one row per entity
//! (`kind`, `key`, `state`: the entity's CBOR encoding), then deltas holding
//! only the rows that changed since the file before them (see [`rows`]). The
//! stream, the next offset and the engine config hash are in each file's
//! schema metadata. On disk each partition has its directory with the files and
//! a `MANIFEST.json` naming them with their sizes and SHA-256s; everything is
//! written with write + fsync + rename, the manifest last. Reading checks the
//! manifest, the sizes, the checksums, the chain's links, the config hash and
//! the IPC structure: anything wrong is reported as corrupt, never half-used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::engine::incidents::Incident;
use crate::event::Topic;
use crate::eventtime::StreamId;
use crate::pipeline::PartitionState;
use crate::sign::{hmac_hex, hmac_matches};

mod ipc;
mod rows;
mod store;

pub use store::{CheckpointStore, FileRef, MAX_DELTAS, Manifest, Written};

/// Format version of a checkpoint file (IPC metadata).
pub(crate) const VERSION: &str = "2";

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
        reason: Refusal,
    },
}

/// Why checkpoint bytes are not used. Checkpoint files and changelog records
/// are untrusted input: each refusal names its class and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A store's manifest that is unreadable, or disagrees with its files.
    #[error("{0}")]
    Manifest(String),
    /// Not an Arrow IPC file of the checkpoint layout, or its metadata is missing.
    #[error("{0}")]
    Layout(String),
    /// Written by another version of slaflow, or under another engine config.
    #[error("{0}")]
    Foreign(&'static str),
    /// Files of a chain that do not follow one another.
    #[error("{0}")]
    Chain(String),
    /// A row whose state does not decode, or rows that do not fit together.
    #[error("{0}")]
    Row(String),
    /// State no run under this configuration could have produced.
    #[error("{0}")]
    State(String),
    /// Unsigned or forged under `engine.checkpoint_key_env`.
    #[error("{0}")]
    Signature(&'static str),
}

/// `engine.checkpoint_key_env` names a variable that holds no key.
#[derive(Debug, thiserror::Error)]
#[error("engine.checkpoint_key_env names {0}, which is unset or empty")]
pub struct MissingKey(pub String);

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
    pub fn from_config(config: &Config) -> Result<StateKey, MissingKey> {
        let Some(var) = &config.engine.checkpoint_key_env else {
            return Ok(StateKey(None));
        };
        match std::env::var(var) {
            Ok(k) if !k.is_empty() => Ok(StateKey(Some(k.into_bytes().into()))),
            _ => Err(MissingKey(var.clone())),
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
    pub fn verify(&self, next_offset: i64, sha256: &str, tag: Option<&str>) -> Result<(), Refusal> {
        let Some(key) = self.0.as_deref() else {
            return Ok(());
        };
        let offset = next_offset.to_string();
        let parts: [&[u8]; 3] = [offset.as_bytes(), b":", sha256.as_bytes()];
        match tag {
            Some(t) if hmac_matches(key, &parts, t) => Ok(()),
            Some(_) => Err(Refusal::Signature("signature does not match the state key")),
            None => Err(Refusal::Signature(
                "unsigned, but engine.checkpoint_key_env is set",
            )),
        }
    }
}

/// Encodes a checkpoint as one full Arrow IPC file.
pub fn encode(cp: &Checkpoint, config: &Config) -> Result<Vec<u8>, CheckpointError> {
    rows::encode(cp, config, None)
        .map(|(bytes, _)| bytes)
        .map_err(|reason| CheckpointError::Encode {
            stream: stream_name(cp.stream()),
            reason,
        })
}

/// Decodes one full file written by [`encode`] under `config`.
pub fn decode(bytes: &[u8], config: &Config) -> Result<Checkpoint, Refusal> {
    decode_chain(&[bytes], config)
}

/// Decodes a chain (a full file, then its deltas) written under `config` (its
/// engine hash must match) and checks every entity against it, so nothing a
/// run under this config could not have produced is ever used.
pub fn decode_chain<B: AsRef<[u8]>>(files: &[B], config: &Config) -> Result<Checkpoint, Refusal> {
    let cp = rows::decode_unchecked(files, &config.engine_sha256)?;
    cp.state.eventtime.check().map_err(Refusal::State)?;
    cp.state.engine.check(config).map_err(Refusal::State)?;
    for t in [cp.state.min_ts, cp.state.max_ts].into_iter().flatten() {
        crate::time::check_instant("extent", t).map_err(Refusal::State)?;
    }
    if cp.state.min_ts > cp.state.max_ts {
        return Err(Refusal::State("extents out of order".into()));
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::ipc::writer::FileWriter;

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
            .ingest(MON, &RawRecord::numbered(&lines, 2, 100), 0, &mut out)
            .expect("decoded rows");
        core.pipeline.advance(None, &mut out).expect("decoded rows");
        core.record(&out.incidents);
        (core.checkpoint(MON).unwrap(), config)
    }

    #[test]
    fn round_trip_on_disk() {
        let (cp, config) = checkpoint();
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
        let first = store.write(&cp).unwrap().manifest;
        let bytes = encode(&cp, &config).unwrap();
        let manifest = store.write(&cp).unwrap().manifest;
        assert_eq!(manifest.next_offset, 121);
        assert_ne!(
            first.tip().file,
            manifest.tip().file,
            "never rewrite the file a manifest names"
        );
        let back = store.read(MON).unwrap().unwrap();
        assert_eq!(
            encode(&back, &config).expect("encodes"),
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
        let written = store.write(&cp).unwrap();
        let (m, bytes) = (written.manifest, written.bytes);
        let file = dir
            .path()
            .join("checkpoints")
            .join(stream_name(MON))
            .join(&m.full.file);
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
            &include_bytes!("../../fuzz/corpus/checkpoint/regression-arrow-schema-without-fields")
                [..],
            // A block claiming more bytes than the file holds: arrow would allocate
            // them, and an allocation failure aborts rather than panics.
            &include_bytes!("../../fuzz/corpus/checkpoint/regression-arrow-block-larger-than-file")
                [..],
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
        assert!(matches!(decode(&ints, &config), Err(Refusal::Layout(m)) if m.contains("schema")));
        let one_column = ipc(
            &config,
            vec![Field::new("kind", DataType::Utf8, false)],
            vec![Arc::new(StringArray::from(vec!["stream"]))],
        );
        assert!(
            matches!(decode(&one_column, &config), Err(Refusal::Layout(m)) if m.contains("schema"))
        );
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
        encode(&cp, config).expect("encodes")
    }

    #[test]
    fn impossible_values_are_refused() {
        let (cp, config) = checkpoint();
        assert!(decode(&encode(&cp, &config).expect("encodes"), &config).is_ok());
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: [(&str, Edit); 4] = [
            ("bucket 0", Box::new(|t| t["bucket"] = 0.into())),
            (
                "exclusion ending before it starts",
                Box::new(|t| {
                    t["exclusions"] = serde_json::json!({"by_id": {"X": {
                        "start": 5, "end": 1, "reason": "r", "approved_by": "a",
                        "versions": 1, "ts": 0
                    }}})
                }),
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
        assert!(decode(&encode(&bad, &config).expect("encodes"), &config).is_err());
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
        // From the running test's environment, not the build's: a build cache
        // shared with another checkout may hand over a binary built there.
        let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
        let dir = Path::new(&root).join("fuzz/corpus/checkpoint");
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = encode(&cp, &config).expect("encodes");
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
            .ingest(tkt, &RawRecord::numbered(&lines, 1, 0), 0, &mut out)
            .expect("decoded rows");
        core.pipeline.advance(None, &mut out).expect("decoded rows");
        core.record(&out.incidents);
        let bytes = encode(&core.checkpoint(tkt).unwrap(), &config).expect("encodes");
        assert!(decode(&bytes, &config).is_ok());
        std::fs::write(dir.join("seed-tickets"), bytes).unwrap();

        // A chain, as the fuzz target reads one: `CHAIN`, then per file its
        // length (u32, little-endian) and its bytes. The tickets state as a
        // full file, then a delta after one more event.
        let scratch = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(scratch.path(), config.clone(), StateKey::default());
        let full = store.write(&core.checkpoint(tkt).unwrap()).unwrap().bytes;
        let more = [r#"{"event_id":"r","ts":3000,"ticket":"T-1","type":"responded"}"#];
        core.pipeline
            .ingest(tkt, &RawRecord::numbered(&more, 1, 3), 0, &mut out)
            .expect("decoded rows");
        core.pipeline.advance(None, &mut out).expect("decoded rows");
        let delta = store.write(&core.checkpoint(tkt).unwrap()).unwrap();
        assert_eq!(delta.delta(), 1);
        assert!(decode_chain(&[&full, &delta.bytes], &config).is_ok());
        let mut framed = b"CHAIN".to_vec();
        for file in [&full, &delta.bytes] {
            framed.extend_from_slice(&(file.len() as u32).to_le_bytes());
            framed.extend_from_slice(file);
        }
        std::fs::write(dir.join("seed-chain"), framed).unwrap();
    }

    #[test]
    fn with_a_state_key_unsigned_or_forged_checkpoints_are_refused() {
        let (cp, config) = checkpoint();
        let dir = tempfile::tempdir().unwrap();
        let signed = CheckpointStore::new(dir.path(), config.clone(), StateKey::new(b"k1"));
        let m = signed.write(&cp).unwrap().manifest;
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
