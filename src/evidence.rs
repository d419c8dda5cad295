//! Evidence packs (contract section 12): `slaflow evidence` writes a customer's
//! month as report files plus a manifest of every input's and output's
//! SHA-256; `slaflow verify` re-derives the outputs from the inputs the
//! manifest names and compares them byte for byte.
//!
//! Replay is deterministic given the inputs, the config and the processing
//! clock of the `future` check, so the pack records that clock: it is the
//! manifest's `generated_at`, and the reports' `generated_at` is the same
//! instant. Re-deriving therefore gives the same bytes, `generated_at` included.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::engine::incidents::Incident;
use crate::eventtime::StreamId;
use crate::model::Topic;
use crate::replay::{self, ReplayError, Replayed};
use crate::report::page::tickets_created;
use crate::report::{ReportError, Tables, html, sla_csv, sla_report};
use crate::source::kafka_range::{self, OffsetRange, RangeError};
use crate::source::{ChunkSource, Records};
use crate::time::{Millis, format_ms, parse_rfc3339};

/// The manifest's file name in a pack.
pub const MANIFEST: &str = "manifest.json";
/// The PDF rendering of `report.html`, when asked for.
pub const PDF: &str = "report.pdf";
/// How long reading one partition range back may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Customer id.
    pub customer: String,
    /// Month start.
    pub from: String,
    /// Month end (exclusive).
    pub to: String,
    /// Version of the slaflow that made the pack.
    pub slaflow_version: String,
    /// SHA-256 of the config file's bytes.
    pub config_sha256: String,
    /// Where the config was read.
    pub config: FileRef,
    /// Inputs in stream order (monitoring first): files, or (live packs)
    /// topic partition ranges.
    pub inputs: Vec<Input>,
    /// The pack's files.
    pub outputs: Vec<OutputFile>,
    /// When the pack was made: also the processing clock of the `future` check.
    pub generated_at: String,
}

/// A file the pack was derived from, as named on the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// File name.
    pub name: String,
    /// Absolute path when the pack was made.
    pub path: PathBuf,
}

/// An input: a file, or a partition's records read back from Kafka.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// An NDJSON file (`slaflow evidence`).
    File(InputFile),
    /// A topic partition's offset range (`GET /v1/evidence`).
    Partition(InputPartition),
}

/// The records of one topic partition a live pack was derived from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputPartition {
    /// `monitoring` or `tickets`.
    pub topic: String,
    /// The Kafka topic.
    pub kafka_topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset read.
    pub first_offset: i64,
    /// Last offset read (`first_offset - 1` when the partition was empty).
    pub last_offset: i64,
    /// Records read (fewer than the offsets spanned after compaction).
    pub records: u64,
    /// SHA-256 over the records in offset order, each as its offset and its
    /// payload's length (8 bytes big-endian each), then the payload.
    pub sha256: String,
}

/// An input file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// `monitoring` or `tickets`.
    pub topic: String,
    /// Name and path.
    #[serde(flatten)]
    pub file: FileRef,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Lines (a last line without newline counts).
    pub lines: u64,
}

/// An output file of the pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// File name in the pack.
    pub name: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// Why a pack could not be made or checked (a mismatch is a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Arguments that cannot work.
    #[error("{0}")]
    Args(String),
    /// The config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Replaying the inputs.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// Building a report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A file.
    #[error("{}: {source}", path.display())]
    Io {
        /// Which.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// Reading a live pack's records back from Kafka.
    #[error("cannot read the input topics: {0}")]
    Kafka(#[from] RangeError),
    /// An unreadable manifest.
    #[error("manifest.json: {0}")]
    Manifest(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `slaflow evidence` needs.
#[derive(Debug, Clone)]
pub struct EvidenceArgs {
    /// Config file.
    pub config: PathBuf,
    /// Monitoring files.
    pub monitoring: Vec<PathBuf>,
    /// Ticket files.
    pub tickets: Vec<PathBuf>,
    /// Customer id.
    pub customer: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Output folder.
    pub out: PathBuf,
    /// Also print `report.html` to `report.pdf` with a headless Chromium.
    pub pdf: bool,
    /// Processing clock (default: the wall clock).
    pub now: Millis,
}

/// `[from, to)` of a `YYYY-MM` month, UTC.
pub fn parse_month(s: &str) -> Result<(Millis, Millis), EvidenceError> {
    let bad = || EvidenceError::Args(format!("--month {s:?}: expected YYYY-MM"));
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let start = parse_rfc3339(&format!("{y}-{m}-01T00:00:00Z")).map_err(|_| bad())?;
    Ok(crate::engine::availability::month_of(start))
}

/// Writes the pack of `args.customer` and `args.month` into `args.out`.
pub fn evidence(args: &EvidenceArgs) -> Result<Manifest, EvidenceError> {
    let (from, to) = parse_month(&args.month)?;
    let config = Arc::new(Config::load(&args.config)?);
    if config.customer(&args.customer).is_none() {
        return Err(EvidenceError::Args(format!(
            "unknown customer {:?} (not in {})",
            args.customer,
            args.config.display()
        )));
    }
    let chromium = if args.pdf {
        Some(find_chromium()?)
    } else {
        None
    };
    let inputs = describe_inputs(&args.monitoring, &args.tickets)?;
    let mut streams = replay::open_inputs(&args.monitoring, &args.tickets)?;
    let files = build(
        config.clone(),
        &mut streams,
        &args.customer,
        (from, to),
        args.now,
    )?;
    std::fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;
    let mut outputs = Vec::new();
    for (name, bytes) in &files {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
        outputs.push(output_entry(name, bytes));
    }
    if let Some(chromium) = chromium {
        let pdf = print_pdf(&chromium, &args.out)?;
        outputs.push(output_entry(PDF, &pdf));
    }
    let manifest = Manifest {
        customer: args.customer.clone(),
        from: format_ms(from),
        to: format_ms(to),
        slaflow_version: env!("CARGO_PKG_VERSION").to_owned(),
        config_sha256: config.sha256.clone(),
        config: file_ref(&args.config)?,
        inputs,
        outputs,
        generated_at: format_ms(args.now),
    };
    let path = args.out.join(MANIFEST);
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(io_other(&path))?;
    text.push(b'\n');
    std::fs::write(&path, text).map_err(io_err(&path))?;
    Ok(manifest)
}

/// Most records a live pack reads back from Kafka (both topics together):
/// bounds the memory and time one `GET /v1/evidence` can take.
pub const LIVE_MAX_RECORDS: usize = 5_000_000;

/// A live pack (`GET /v1/evidence`): every record both input topics retain now
/// is read back by offset and replayed like files; the manifest lists each
/// partition's range and hash instead of files. Returns the pack's files,
/// `manifest.json` last.
pub fn live_pack(
    config: Arc<Config>,
    customer: &str,
    month: &str,
    now: Millis,
) -> Result<Vec<(String, Vec<u8>)>, EvidenceError> {
    let (from, to) = parse_month(month)?;
    let kafka = config.kafka_or_default();
    let consumer = kafka_range::reader(&kafka)?;
    let (mut inputs, mut streams) = (Vec::new(), Vec::new());
    let mut budget = LIVE_MAX_RECORDS;
    for topic in [Topic::Monitoring, Topic::Tickets] {
        let name = kafka.topic_name(topic).to_owned();
        for range in kafka_range::retained(&consumer, &name, READ_TIMEOUT)? {
            let records = kafka_range::read(&consumer, &range, budget, READ_TIMEOUT)?;
            budget -= records.len();
            inputs.push(Input::Partition(InputPartition {
                topic: topic.as_str().to_owned(),
                kafka_topic: name.clone(),
                partition: range.partition,
                first_offset: range.first,
                last_offset: range.end - 1,
                records: records.len() as u64,
                sha256: hash_records(&records),
            }));
            let stream = StreamId {
                topic,
                partition: range.partition,
            };
            streams.push(Records::new(stream, records));
        }
    }
    let files = build(config.clone(), &mut streams, customer, (from, to), now)?;
    let manifest = Manifest {
        customer: customer.to_owned(),
        from: format_ms(from),
        to: format_ms(to),
        slaflow_version: env!("CARGO_PKG_VERSION").to_owned(),
        config_sha256: config.sha256.clone(),
        config: file_ref(&config.path).unwrap_or_else(|_| FileRef {
            name: (config.path.file_name())
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            path: config.path.clone(),
        }),
        inputs,
        outputs: files.iter().map(|(n, b)| output_entry(n, b)).collect(),
        generated_at: format_ms(now),
    };
    let mut text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| EvidenceError::Args(format!("cannot encode the manifest: {e}")))?;
    text.push(b'\n');
    let mut out: Vec<(String, Vec<u8>)> = (files.into_iter())
        .map(|(n, b)| (n.to_owned(), b))
        .collect();
    out.push((MANIFEST.to_owned(), text));
    Ok(out)
}

/// The files as a gzipped tar in folder `dir`, every entry stamped `mtime`
/// (seconds), so the same files give the same archive.
pub fn tar_gz(dir: &str, files: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{dir}/{name}"), bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

fn io_other(path: &Path) -> impl FnOnce(serde_json::Error) -> EvidenceError + '_ {
    move |e| io_err(path)(std::io::Error::other(e))
}

fn output_entry(name: &str, bytes: &[u8]) -> OutputFile {
    OutputFile {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    }
}

fn file_ref(path: &Path) -> Result<FileRef, EvidenceError> {
    let abs = std::fs::canonicalize(path).map_err(io_err(path))?;
    let name = (abs.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(FileRef { name, path: abs })
}

/// Hashes and counts every input, monitoring files first (stream order).
fn describe_inputs(
    monitoring: &[PathBuf],
    tickets: &[PathBuf],
) -> Result<Vec<Input>, EvidenceError> {
    let all = (monitoring.iter().map(|p| ("monitoring", p)))
        .chain(tickets.iter().map(|p| ("tickets", p)));
    all.map(|(topic, path)| {
        let (sha256, lines) = hash_file(path)?;
        Ok(Input::File(InputFile {
            topic: topic.to_owned(),
            file: file_ref(path)?,
            sha256,
            lines,
        }))
    })
    .collect()
}

/// SHA-256 of a partition's records as [`InputPartition::sha256`] defines it.
fn hash_records(records: &[(i64, Vec<u8>)]) -> String {
    let mut hash = Sha256::new();
    for (offset, payload) in records {
        hash.update(offset.to_be_bytes());
        hash.update((payload.len() as u64).to_be_bytes());
        hash.update(payload);
    }
    hex::encode(hash.finalize())
}

/// SHA-256 and line count of a file, streamed.
fn hash_file(path: &Path) -> Result<(String, u64), EvidenceError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok((
        hex::encode(hash.finalize()),
        lines + u64::from(last != b'\n'),
    ))
}

/// The pack's derived files, by name: replays the streams and renders the
/// customer's month.
fn build<S: ChunkSource>(
    config: Arc<Config>,
    streams: &mut [S],
    customer: &str,
    (from, to): (Millis, Millis),
    now: Millis,
) -> Result<Vec<(&'static str, Vec<u8>)>, EvidenceError> {
    let Replayed {
        pipeline,
        incidents,
    } = replay::run(config.clone(), streams, Some(to), now, &mut |_| Ok(()))?;
    let engine = pipeline.engine();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| EvidenceError::Args(format!("runtime: {e}")))?;
    let tables = Tables::for_sla_report(engine)?;
    let sla = runtime.block_on(sla_report(
        &config, &tables, &incidents, customer, from, to, now,
    ))?;
    let theirs = |i: &&Incident| i.customer == customer && (from..to).contains(&i.at_ms);
    let incident_lines = (incidents.iter().filter(theirs)).map(Incident::to_json);
    let ticket_lines = tickets_created(engine, customer, (from, to))
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvidenceError::Args(format!("cannot encode a ticket line: {e}")))?;
    let mut report = serde_json::to_vec_pretty(&sla)
        .map_err(|e| EvidenceError::Args(format!("cannot encode the report: {e}")))?;
    report.push(b'\n');
    let csv = sla_csv(&sla)?.into_bytes();
    let html = html::report_html(&config, engine, &incidents, sla, (from, to));
    Ok(vec![
        ("report.json", report),
        ("report.csv", csv),
        ("report.html", html.into_bytes()),
        ("incidents.ndjson", ndjson(incident_lines)),
        ("tickets.ndjson", ndjson(ticket_lines.into_iter())),
    ])
}

fn ndjson(lines: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The outcome of `slaflow verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every input hash matches and every output re-derives byte for byte.
    Verified,
    /// The first thing that differs: file, and line or field.
    Differs(String),
}

/// Where `slaflow verify` finds what the manifest names: given paths win over
/// the recorded ones.
#[derive(Debug, Clone, Default)]
pub struct VerifyArgs {
    /// The pack.
    pub dir: PathBuf,
    /// Config file, instead of the recorded path.
    pub config: Option<PathBuf>,
    /// Monitoring files, instead of the recorded paths.
    pub monitoring: Vec<PathBuf>,
    /// Ticket files, instead of the recorded paths.
    pub tickets: Vec<PathBuf>,
    /// Kafka brokers for a live pack, instead of the config's `[kafka].brokers`.
    pub brokers: Option<String>,
}

/// Re-derives the pack in `args.dir` and compares it with what is there.
pub fn verify(args: &VerifyArgs) -> Result<Verdict, EvidenceError> {
    let path = args.dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io_err(&path))?;
    let m: Manifest =
        serde_json::from_slice(&text).map_err(|e| EvidenceError::Manifest(e.to_string()))?;
    let instant = |what: &str, v: &str| {
        parse_rfc3339(v).map_err(|e| EvidenceError::Manifest(format!("{what}: {e}")))
    };
    let (from, to, now) = (
        instant("from", &m.from)?,
        instant("to", &m.to)?,
        instant("generated_at", &m.generated_at)?,
    );
    let config_path = (args.config.clone()).unwrap_or_else(|| locate(&m.config, &args.dir));
    let config = Arc::new(Config::load(&config_path)?);
    if config.sha256 != m.config_sha256 {
        return Ok(Verdict::Differs(format!(
            "config {}: SHA-256 {} differs from the manifest's config_sha256 {}",
            config_path.display(),
            config.sha256,
            m.config_sha256
        )));
    }
    let files: Vec<&InputFile> = (m.inputs.iter())
        .filter_map(|i| match i {
            Input::File(f) => Some(f),
            Input::Partition(_) => None,
        })
        .collect();
    let derived = if files.len() == m.inputs.len() {
        let (monitoring, tickets) = match check_files(&files, args)? {
            Ok(paths) => paths,
            Err(differs) => return Ok(Verdict::Differs(differs)),
        };
        let mut streams = replay::open_inputs(&monitoring, &tickets)?;
        build(config, &mut streams, &m.customer, (from, to), now)?
    } else if files.is_empty() {
        let mut streams = match read_partitions(&m, &config, args.brokers.as_deref())? {
            Ok(streams) => streams,
            Err(differs) => return Ok(Verdict::Differs(differs)),
        };
        build(config, &mut streams, &m.customer, (from, to), now)?
    } else {
        return Err(EvidenceError::Manifest(
            "inputs mix files and topic partitions".into(),
        ));
    };
    let version_note = if m.slaflow_version == env!("CARGO_PKG_VERSION") {
        String::new()
    } else {
        format!(
            " (the pack was made by slaflow {}, this is {})",
            m.slaflow_version,
            env!("CARGO_PKG_VERSION")
        )
    };
    for (name, expected) in &derived {
        let path = args.dir.join(name);
        let Ok(found) = std::fs::read(&path) else {
            return Ok(Verdict::Differs(format!("{name}: missing from the pack")));
        };
        if let Some(diff) = first_difference(name, expected, &found) {
            return Ok(Verdict::Differs(format!("{name}: {diff}{version_note}")));
        }
        let listed = m.outputs.iter().find(|o| o.name == *name);
        if listed.is_none_or(|o| o.sha256 != output_entry(name, &found).sha256) {
            return Ok(Verdict::Differs(format!(
                "{MANIFEST}: outputs[{name}]: SHA-256 differs from the file"
            )));
        }
    }
    // Files the manifest lists but that are not re-derived (the PDF comes from
    // Chromium, not slaflow): their hashes must still match.
    for o in (m.outputs.iter()).filter(|o| derived.iter().all(|(n, _)| *n != o.name)) {
        let path = args.dir.join(&o.name);
        let found = std::fs::read(&path).map_err(io_err(&path))?;
        if output_entry(&o.name, &found).sha256 != o.sha256 {
            return Ok(Verdict::Differs(format!(
                "{}: SHA-256 differs from the manifest",
                o.name
            )));
        }
    }
    Ok(Verdict::Verified)
}

/// A recorded file: at its recorded path, else beside the pack or in it.
fn locate(f: &FileRef, dir: &Path) -> PathBuf {
    let candidates = [
        Some(f.path.clone()),
        dir.parent().map(|p| p.join(&f.name)),
        Some(dir.join(&f.name)),
    ];
    (candidates.iter().flatten())
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| f.path.clone())
}

/// Inputs checked against the manifest: `Ok(Err(what))` names the first that
/// differs (a verdict, not an error).
type Checked<T> = Result<Result<T, String>, EvidenceError>;

/// The input files' paths (monitoring, tickets), each checked against its
/// hash: `Ok(Err(what))` names the first that differs.
fn check_files(listed: &[&InputFile], args: &VerifyArgs) -> Checked<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut paths = (Vec::new(), Vec::new());
    for (topic, given, out) in [
        ("monitoring", &args.monitoring, &mut paths.0),
        ("tickets", &args.tickets, &mut paths.1),
    ] {
        let listed: Vec<&&InputFile> = listed.iter().filter(|i| i.topic == topic).collect();
        if !given.is_empty() && given.len() != listed.len() {
            return Err(EvidenceError::Args(format!(
                "--{topic}: {} files given, the manifest lists {}",
                given.len(),
                listed.len()
            )));
        }
        for (k, want) in listed.into_iter().enumerate() {
            let path = (given.get(k).cloned()).unwrap_or_else(|| locate(&want.file, &args.dir));
            let (sha256, lines) = hash_file(&path)?;
            if sha256 != want.sha256 {
                return Ok(Err(format!(
                    "input {}: SHA-256 {sha256} differs from the manifest's {} ({lines} lines, the manifest says {})",
                    path.display(),
                    want.sha256,
                    want.lines
                )));
            }
            out.push(path);
        }
    }
    Ok(Ok(paths))
}

/// A live pack's partitions read back from Kafka (`brokers` instead of the
/// config's), each checked against its hash: `Ok(Err(what))` names the first
/// that differs; records no longer retained are an error that says so.
fn read_partitions(m: &Manifest, config: &Config, brokers: Option<&str>) -> Checked<Vec<Records>> {
    let mut kafka = config.kafka_or_default();
    if let Some(b) = brokers {
        kafka.brokers = b.to_owned();
    }
    let consumer = kafka_range::reader(&kafka)?;
    let mut streams = Vec::new();
    for input in &m.inputs {
        let Input::Partition(p) = input else { continue };
        let topic = Topic::parse(&p.topic)
            .ok_or_else(|| EvidenceError::Manifest(format!("unknown topic {:?}", p.topic)))?;
        let range = OffsetRange {
            topic: p.kafka_topic.clone(),
            partition: p.partition,
            first: p.first_offset,
            end: p.last_offset.saturating_add(1),
        };
        let budget = usize::try_from(p.records).unwrap_or(usize::MAX);
        let records = match kafka_range::read(&consumer, &range, budget, READ_TIMEOUT) {
            Err(RangeError::TooMany(_)) => {
                return Ok(Err(format!(
                    "input {}[{}]: more records than the manifest's {}",
                    p.kafka_topic, p.partition, p.records
                )));
            }
            other => other?,
        };
        let sha256 = hash_records(&records);
        if sha256 != p.sha256 || records.len() as u64 != p.records {
            return Ok(Err(format!(
                "input {}[{}] offsets {}..={}: SHA-256 {sha256} differs from the manifest's {} ({} records, the manifest says {})",
                p.kafka_topic,
                p.partition,
                p.first_offset,
                p.last_offset,
                p.sha256,
                records.len(),
                p.records
            )));
        }
        let stream = StreamId {
            topic,
            partition: p.partition,
        };
        streams.push(Records::new(stream, records));
    }
    Ok(Ok(streams))
}

/// Where `found` first differs from `expected`, or `None` if they are the same
/// apart from `generated_at`: a JSON field path, a line, or a CSV column.
fn first_difference(name: &str, expected: &[u8], found: &[u8]) -> Option<String> {
    if expected == found {
        return None;
    }
    if name.ends_with(".json") {
        return json_difference(expected, found, "");
    }
    let (e, f) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(found),
    );
    let mut lines = e.lines().zip(f.lines()).enumerate();
    let header = e.lines().next().unwrap_or("");
    if let Some((n, (a, b))) = lines.find(|(_, (a, b))| a != b) {
        let at = format!("line {}", n + 1);
        return Some(if name.ends_with(".ndjson") {
            (json_difference(a.as_bytes(), b.as_bytes(), &format!("{at}: ")))
                .unwrap_or_else(|| format!("{at} differs"))
        } else if name.ends_with(".csv") {
            csv_difference(header, a, b, &at)
        } else {
            text_difference(a, b, &at)
        });
    }
    let (ne, nf) = (e.lines().count(), f.lines().count());
    Some(if ne == nf {
        "bytes differ (line endings)".into()
    } else {
        format!("{nf} lines, re-derived {ne}")
    })
}

/// Where two lines of text first differ, with some context; in HTML, also the
/// report field of the enclosing cell (its `data-field`), if any.
fn text_difference(expected: &str, found: &str, at: &str) -> String {
    let i = (expected.char_indices().zip(found.chars()))
        .find(|((_, a), b)| a != b)
        .map_or(expected.len().min(found.len()), |((i, _), _)| i);
    let around = |s: &str| -> String {
        let start = s.floor_char_boundary(i.saturating_sub(40));
        let end = s.ceil_char_boundary((i + 40).min(s.len()));
        s[start..end].to_owned()
    };
    let before = &expected[..expected.floor_char_boundary(i)];
    let attr = |name: &str| {
        let key = format!("{name}=\"");
        let from = before.rfind(&key)? + key.len();
        let len = before[from..].find('"')?;
        Some(before[from..from + len].to_owned())
    };
    // A cell's field only while still inside that cell.
    let cell = attr("data-field")
        .filter(|_| !before[before.rfind("data-field=").unwrap_or(0)..].contains("</td>"));
    let field = match (attr("data-service"), cell) {
        (Some(s), Some(f)) => format!(" (service {s}, field {f})"),
        (Some(s), None) => format!(" (service {s})"),
        _ => String::new(),
    };
    format!(
        "{at}, character {}{field}: expected {:?}, found {:?}",
        i + 1,
        around(expected),
        around(found)
    )
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

fn json_difference(expected: &[u8], found: &[u8], prefix: &str) -> Option<String> {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b);
    let (Ok(e), Ok(f)) = (parse(expected), parse(found)) else {
        return Some(format!("{prefix}not the JSON re-derived (unreadable)"));
    };
    json_path_difference(&e, &f, String::new()).map(|(path, e, f)| {
        let path = if path.is_empty() {
            "(document)".into()
        } else {
            path
        };
        format!("{prefix}field {path} is {f}, re-derived {e}")
    })
}

/// The first path where two JSON values differ, skipping `generated_at`.
fn json_path_difference(e: &Value, f: &Value, path: String) -> Option<(String, String, String)> {
    let show = |v: Option<&Value>| v.map_or("missing".into(), |v| clip(&v.to_string()));
    let children: Vec<(String, Option<&Value>, Option<&Value>)> = match (e, f) {
        (Value::Object(a), Value::Object(b)) => (a.keys())
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .filter(|k| *k != "generated_at")
            .map(|k| {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                (sub, a.get(k), b.get(k))
            })
            .collect(),
        (Value::Array(a), Value::Array(b)) => (0..a.len().max(b.len()))
            .map(|i| (format!("{path}[{i}]"), a.get(i), b.get(i)))
            .collect(),
        _ => return (e != f).then(|| (path, show(Some(e)), show(Some(f)))),
    };
    for (sub, x, y) in children {
        match (x, y) {
            (Some(x), Some(y)) => {
                if let Some(d) = json_path_difference(x, y, sub) {
                    return Some(d);
                }
            }
            (x, y) => return Some((sub, show(x), show(y))),
        }
    }
    None
}

/// Names the first CSV column of a line that differs.
fn csv_difference(header: &str, expected: &str, found: &str, at: &str) -> String {
    let fields = |s: &str| -> Vec<String> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(s.as_bytes());
        (r.records().next())
            .and_then(Result::ok)
            .map(|rec| rec.iter().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (h, e, f) = (fields(header), fields(expected), fields(found));
    match (0..e.len().max(f.len())).find(|&i| e.get(i) != f.get(i)) {
        Some(i) => format!(
            "{at}, column {} is {:?}, re-derived {:?}",
            h.get(i).map_or("?", String::as_str),
            f.get(i).map_or("", String::as_str),
            e.get(i).map_or("", String::as_str)
        ),
        None => format!("{at} differs"),
    }
}

/// The Chromium binaries tried for `--pdf`, in order.
const CHROMIUMS: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "chrome"];

fn find_chromium() -> Result<PathBuf, EvidenceError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    (std::env::split_paths(&path))
        .flat_map(|dir| CHROMIUMS.map(|c| dir.join(c)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            EvidenceError::Args(format!(
                "--pdf needs a headless Chromium on PATH ({}); install one (Debian: apt install chromium) or leave out --pdf",
                CHROMIUMS.join(", ")
            ))
        })
}

/// Prints `dir/report.html` to `dir/report.pdf` and returns the PDF's bytes.
fn print_pdf(chromium: &Path, dir: &Path) -> Result<Vec<u8>, EvidenceError> {
    let dir = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    let (html, pdf) = (dir.join("report.html"), dir.join(PDF));
    let profile = tempfile_dir(&dir)?;
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(io_err(chromium));
    let _ = std::fs::remove_dir_all(&profile);
    let status = status?;
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    if !status.success() || !bytes.starts_with(b"%PDF") {
        return Err(EvidenceError::Args(format!(
            "{} could not print {} ({status})",
            chromium.display(),
            html.display()
        )));
    }
    Ok(bytes)
}

/// A fresh Chromium profile folder, so printing never touches the user's.
fn tempfile_dir(dir: &Path) -> Result<PathBuf, EvidenceError> {
    let p = std::env::temp_dir().join(format!(
        "slaflow-chromium-{}-{}",
        std::process::id(),
        hex::encode(&Sha256::digest(dir.as_os_str().as_encoded_bytes())[..4])
    ));
    std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    Ok(p)
}
