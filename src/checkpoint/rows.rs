//! A checkpoint as rows, one per entity, and the chain of files that holds
//! them: a full file has every row; a delta has the rows whose encoding changed
//! since the file before it, plus a `deleted` row for each entity gone.
//!
//! State that only grows is cut by time, so what no longer changes is not
//! written again: the stream's dedup ids are rows by time bucket (`dedup`,
//! keyed by the bucket's start), a capacity series' hours rows of six hours
//! (`hours`) apart from the series itself.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ipc::{IpcFile, IpcWriter};
use super::{Checkpoint, Refusal, VERSION, stream_name};
use crate::config::Config;
use crate::engine::EngineSlice;
use crate::engine::capacity::{Hour, Series};
use crate::engine::incidents::Incident;
use crate::eventtime::{DedupKey, StreamId, StreamState};
use crate::pipeline::PartitionState;
use crate::time::Millis;

/// Row kinds, in the order a file lists them.
const KINDS: [&str; 8] = [
    "stream", "extents", "dedup", "service", "series", "hours", "ticket", "incident",
];
const STREAM: usize = 0;
const EXTENTS: usize = 1;
const DEDUP: usize = 2;
const SERVICE: usize = 3;
const SERIES: usize = 4;
/// A capacity series' hours of one [`HOURS_ROW`] span, keyed `<series key>@<start>`.
const HOURS: usize = 5;
const TICKET: usize = 6;
const INCIDENT: usize = 7;
/// A delta's row for an entity that no longer exists; its state is the kind.
const DELETED: &str = "deleted";

/// Metadata: the SHA-256 of the file a delta applies to (absent in a full file).
const PREVIOUS: &str = "slaflow.previous";

/// Dedup ids are bucketed by this fraction of the horizon: a checkpoint
/// rewrites the buckets new ids fell into, about 1/64 of them for in-order input.
const DEDUP_BUCKETS_PER_HORIZON: i64 = 64;
/// Capacity hours are rows of six hours: earlier ones no longer change.
const HOURS_ROW: Millis = 6 * 3_600_000;

#[derive(Serialize, Deserialize)]
struct Extents {
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

/// [`StreamState`] without its dedup ids (they are rows of their own); it
/// encodes as a `StreamState` with an empty `dedup`.
#[derive(Serialize)]
struct StreamRow<'a> {
    stream: StreamId,
    max_ts: Option<Millis>,
    next_offset: i64,
    dedup: &'a [(DedupKey, Millis)],
    pending: &'a [(i64, u64, String)],
}

fn de<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    ciborium::from_reader(b).map_err(|e| e.to_string())
}

fn cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// What the last file of a chain holds: per kind, each entity's key and the
/// XXH3-128 of its encoding. A delta is computed against it.
#[derive(Debug, Default)]
pub(super) struct RowHashes([HashMap<Box<str>, u128>; KINDS.len()]);

/// Calls `emit(kind, key, state)` for every entity of `cp`. Keys are unique
/// within a kind (a repeat gets a `#n` suffix), so a delta can address each.
fn for_each_row(
    cp: &Checkpoint,
    dedup_bucket: Millis,
    mut emit: impl FnMut(usize, &str, Vec<u8>),
) -> Result<(), String> {
    let s = &cp.state;
    let et = &s.eventtime;
    let stream = StreamRow {
        stream: et.stream,
        max_ts: et.max_ts,
        next_offset: et.next_offset,
        dedup: &[],
        pending: &et.pending,
    };
    emit(STREAM, &stream_name(cp.stream()), cbor(&stream)?);
    let extents = Extents {
        min_ts: s.min_ts,
        max_ts: s.max_ts,
    };
    emit(EXTENTS, "", cbor(&extents)?);
    let mut buckets: BTreeMap<Millis, Vec<&(DedupKey, Millis)>> = BTreeMap::new();
    for d in &et.dedup {
        let start = d.1.div_euclid(dedup_bucket) * dedup_bucket;
        buckets.entry(start).or_default().push(d);
    }
    for (start, ids) in buckets {
        emit(DEDUP, &start.to_string(), cbor(&ids)?);
    }
    let mut unique = UniqueKeys::default();
    for t in &s.engine.services {
        emit(SERVICE, unique.key(SERVICE, t.id()), cbor(t)?);
    }
    for c in &s.engine.capacity {
        // Tuple-encoded: ids may contain any separator.
        let key = serde_json::to_string(&(&c.service, &c.resource, &c.metric))
            .map_err(|e| e.to_string())?;
        let key = unique.key(SERIES, &key).to_owned();
        emit(SERIES, &key, cbor(&c.without_hours())?);
        let mut spans: BTreeMap<Millis, Vec<(&Millis, &Hour)>> = BTreeMap::new();
        for h in c.hours() {
            spans.entry(h.0.div_euclid(HOURS_ROW)).or_default().push(h);
        }
        for (span, hours) in spans {
            let row = format!("{key}@{}", span * HOURS_ROW);
            emit(HOURS, &row, cbor(&(&key, hours))?);
        }
    }
    for t in &s.engine.tickets {
        emit(TICKET, unique.key(TICKET, &t.id), cbor(t)?);
    }
    for i in &cp.incidents {
        let json = serde_json::to_vec(i).map_err(|e| e.to_string())?;
        let key = format!("{}/{:?}", i.incident_id, i.action);
        emit(INCIDENT, unique.key(INCIDENT, &key), json);
    }
    Ok(())
}

/// Makes keys unique within their kind.
#[derive(Default)]
struct UniqueKeys {
    seen: [HashSet<String>; KINDS.len()],
    last: String,
}

impl UniqueKeys {
    fn key(&mut self, kind: usize, key: &str) -> &str {
        let seen = &mut self.seen[kind];
        self.last = key.to_owned();
        let mut n = 1;
        while !seen.insert(self.last.clone()) {
            n += 1;
            self.last = format!("{key}#{n}");
        }
        &self.last
    }
}

/// The width of a dedup bucket under `config`.
fn dedup_bucket(config: &Config) -> Millis {
    (config.engine.dedup_horizon.0 / DEDUP_BUCKETS_PER_HORIZON).max(1_000)
}

fn metadata(cp: &Checkpoint, config: &Config) -> HashMap<String, String> {
    HashMap::from([
        ("slaflow.version".to_owned(), VERSION.to_owned()),
        ("slaflow.stream".to_owned(), stream_name(cp.stream())),
        (
            "slaflow.next_offset".to_owned(),
            cp.next_offset().to_string(),
        ),
        (
            "slaflow.config_sha256".to_owned(),
            config.engine_sha256.clone(),
        ),
    ])
}

/// The file a delta applies to: its rows' hashes and its SHA-256.
pub(super) struct Base<'a> {
    pub(super) rows: &'a RowHashes,
    pub(super) sha256: &'a str,
}

/// A file of `cp`: a delta against `base`, or without one a full file; and
/// the hashes of what the chain holds with it.
pub(super) fn encode(
    cp: &Checkpoint,
    config: &Config,
    base: Option<Base>,
) -> Result<(Vec<u8>, RowHashes), String> {
    let mut w = IpcWriter::default();
    let mut hashes = RowHashes::default();
    for_each_row(cp, dedup_bucket(config), |kind, key, state| {
        let h = xxhash_rust::xxh3::xxh3_128(&state);
        if base
            .as_ref()
            .is_none_or(|b| b.rows.0[kind].get(key) != Some(&h))
        {
            w.push(KINDS[kind], key, &state);
        }
        hashes.0[kind].insert(key.into(), h);
    })?;
    let mut meta = metadata(cp, config);
    if let Some(base) = base {
        for (kind, keys) in base.rows.0.iter().enumerate() {
            for key in keys.keys().filter(|k| !hashes.0[kind].contains_key(*k)) {
                w.push(DELETED, key, KINDS[kind].as_bytes());
            }
        }
        meta.insert(PREVIOUS.to_owned(), base.sha256.to_owned());
    }
    Ok((w.finish(meta)?, hashes))
}

/// The rows of a chain as they stand after its last file.
#[derive(Default)]
struct Merged {
    /// Per kind, (key, state) in first-seen order; `None` once deleted.
    rows: [Vec<(String, Option<Vec<u8>>)>; KINDS.len()],
    index: [HashMap<String, usize>; KINDS.len()],
}

impl Merged {
    /// Sets a row. In the first file a repeated key is another entity
    /// (checkpoints written before keys were unique repeat incident ids).
    fn set(&mut self, kind: usize, key: &str, state: Option<Vec<u8>>, first: bool) {
        match self.index[kind].get(key) {
            Some(&i) if !first => self.rows[kind][i].1 = state,
            _ => {
                self.index[kind].insert(key.to_owned(), self.rows[kind].len());
                self.rows[kind].push((key.to_owned(), state));
            }
        }
    }

    fn apply(&mut self, file: &IpcFile, first: bool) -> Result<(), Refusal> {
        let kind_of = |k: &str| KINDS.iter().position(|&x| x == k);
        for (kind, key, state) in file.rows() {
            if kind == DELETED && !first {
                let gone = std::str::from_utf8(state).ok().and_then(kind_of);
                let unknown = || Refusal::Row(format!("deleted {key:?}: unknown kind"));
                let gone = gone.ok_or_else(unknown)?;
                if !self.index[gone].contains_key(key) {
                    let what = format!("deleted {key:?}: no such {}", KINDS[gone]);
                    return Err(Refusal::Row(what));
                }
                self.set(gone, key, None, false);
            } else {
                let unknown = || Refusal::Row(format!("unknown row kind {kind:?}"));
                let k = kind_of(kind).ok_or_else(unknown)?;
                self.set(k, key, Some(state.to_vec()), first);
            }
        }
        Ok(())
    }

    fn live(&self, kind: usize) -> impl Iterator<Item = (&str, &[u8])> {
        self.rows[kind]
            .iter()
            .filter_map(|(k, s)| Some((k.as_str(), s.as_deref()?)))
    }

    /// Every live row of `kind`, decoded.
    fn all<T: DeserializeOwned>(&self, kind: usize) -> Result<Vec<T>, Refusal> {
        self.live(kind)
            .map(|(key, s)| {
                de(s).map_err(|e| Refusal::Row(format!("{} {key:?}: {e}", KINDS[kind])))
            })
            .collect()
    }

    /// The capacity series with their hours rows put back.
    fn series(&self) -> Result<Vec<Series>, Refusal> {
        let mut series: Vec<Series> = self.all(SERIES)?;
        let index: HashMap<&str, usize> = (self.live(SERIES).enumerate())
            .map(|(i, (key, _))| (key, i))
            .collect();
        for (key, hours) in self.all::<(String, Vec<(Millis, Hour)>)>(HOURS)? {
            let i = index.get(key.as_str());
            let orphan = || Refusal::Row(format!("hours of {key:?}, which is no series"));
            let i = i.ok_or_else(orphan)?;
            series[*i].restore_hours(hours);
        }
        Ok(series)
    }

    fn into_checkpoint(self, next_offset: &str) -> Result<Checkpoint, Refusal> {
        let one = |kind: usize| -> Result<&[u8], Refusal> {
            let mut rows = self.live(kind);
            match (rows.next(), rows.next()) {
                (Some((_, s)), None) => Ok(s),
                (None, _) => Err(Refusal::Row(format!("no {} row", KINDS[kind]))),
                _ => Err(Refusal::Row(format!("more than one {} row", KINDS[kind]))),
            }
        };
        let row = |what: &'static str| move |e: String| Refusal::Row(format!("{what}: {e}"));
        let mut eventtime: StreamState = de(one(STREAM)?).map_err(row("stream"))?;
        let extents: Extents = de(one(EXTENTS)?).map_err(row("extents"))?;
        for ids in self.all(DEDUP)? {
            let ids: Vec<(DedupKey, Millis)> = ids;
            eventtime.dedup.extend(ids);
        }
        if next_offset != eventtime.next_offset.to_string() {
            let what = "next offset in metadata and state differ";
            return Err(Refusal::Row(what.into()));
        }
        let incidents = self
            .live(INCIDENT)
            .map(|(key, s)| {
                serde_json::from_slice::<Incident>(s).map_err(|e| {
                    Refusal::Row(format!("incident {key:?}: not an incident record: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            state: PartitionState {
                eventtime,
                engine: EngineSlice {
                    services: self.all(SERVICE)?,
                    capacity: self.series()?,
                    tickets: self.all(TICKET)?,
                },
                min_ts: extents.min_ts,
                max_ts: extents.max_ts,
            },
            incidents,
        })
    }
}

/// Decodes a chain (a full file, then its deltas in order) written under a
/// config whose engine hash is `config_sha256`. Each delta must name the
/// SHA-256 of the file before it, so files of different chains never mix.
pub(super) fn decode_unchecked<B: AsRef<[u8]>>(
    files: &[B],
    config_sha256: &str,
) -> Result<Checkpoint, Refusal> {
    let mut merged = Merged::default();
    let mut previous: Option<String> = None;
    let mut next_offset = String::new();
    let mut stream = String::new();
    for (i, bytes) in files.iter().enumerate() {
        let bytes = bytes.as_ref();
        let file = IpcFile::read(bytes)?;
        if file.get("slaflow.version")? != VERSION {
            return Err(Refusal::Foreign("unknown checkpoint version"));
        }
        if file.get("slaflow.config_sha256")? != config_sha256 {
            return Err(Refusal::Foreign("written under a different engine config"));
        }
        if file.metadata.get(PREVIOUS) != previous.as_ref() {
            return Err(Refusal::Chain(match i {
                0 => "a delta without its full checkpoint".into(),
                _ => format!("delta {i} does not follow the file before it"),
            }));
        }
        let this_stream = file.get("slaflow.stream")?;
        if i > 0 && this_stream != stream {
            return Err(Refusal::Chain(format!("delta {i} is of another stream")));
        }
        stream = this_stream.to_owned();
        next_offset = file.get("slaflow.next_offset")?.to_owned();
        merged.apply(&file, i == 0)?;
        previous = Some(hex::encode(Sha256::digest(bytes)));
    }
    merged.into_checkpoint(&next_offset)
}
