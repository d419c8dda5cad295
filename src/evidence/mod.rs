//! Evidence packs (contract section 12): `slaflow evidence` writes a customer's
//! month as report files plus a manifest of every input's and output's
//! SHA-256; `slaflow verify` re-derives the outputs from the inputs the
//! manifest names and compares them byte for byte.
//!
//! Replay is deterministic given the inputs, the config and the processing
//! clock of the `future` check, so the pack records that clock: it is the
//! manifest's `generated_at`, and the reports' `generated_at` is the same
//! instant. Re-deriving therefore gives the same bytes, `generated_at` included.

mod annual;
mod diff;
mod pdf;
mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::engine::incidents::Incident;
use crate::eventtime::StreamId;
use crate::model::Topic;
use crate::replay::{self, ReplayError, Replayed};
use crate::report::page::tickets_created;
use crate::report::{ReportError, Tables, html, sla_csv, sla_report};
use crate::sink::file::json_document;
use crate::source::kafka_range::{self, RangeError};
use crate::source::{ChunkSource, Records};
use crate::time::{Millis, format_ms, parse_rfc3339};

pub use annual::{REVIEW_HTML, REVIEW_JSON, YearArgs, evidence_year};
pub use pdf::HEADLESS_ARGS;
use pdf::{find_chromium, print_pdf};
pub use verify::{Verdict, VerifyArgs, verify};

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
    /// An annual pack (section 15): its month folders, `YYYY-MM`, each a
    /// monthly pack; `outputs` then lists every file by its path in the pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<String>>,
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
    let bad = || EvidenceError::Args(format!("month {s:?}: expected YYYY-MM"));
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let start = parse_rfc3339(&format!("{y}-{m}-01T00:00:00Z")).map_err(|_| bad())?;
    Ok(crate::time::month_of(start))
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
        let pdf = print_pdf(&chromium, &args.out, "report.html", PDF)?;
        outputs.push(output_entry(PDF, &pdf));
    } else {
        // A PDF of an earlier pack in the same folder would stay unlisted.
        let stale = args.out.join(PDF);
        if stale.is_file() {
            std::fs::remove_file(&stale).map_err(io_err(&stale))?;
        }
    }
    let config_ref = file_ref(&args.config)?;
    let period = (from, to);
    let manifest = Manifest::new(
        &config,
        &args.customer,
        period,
        config_ref,
        inputs,
        outputs,
        args.now,
    );
    let path = args.out.join(MANIFEST);
    std::fs::write(&path, manifest.document()?).map_err(io_err(&path))?;
    Ok(manifest)
}

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
    let most = usize::try_from(config.evidence_max_records().get()).unwrap_or(usize::MAX);
    let mut budget = most;
    for topic in [Topic::Monitoring, Topic::Tickets] {
        for range in kafka_range::retained(&consumer, kafka.topic_name(topic), READ_TIMEOUT)? {
            // A partition's read knows only what is left: the error names the bound.
            let (input, records) = match read_partition(&consumer, topic, &range, budget) {
                Err(RangeError::TooMany(_)) => return Err(RangeError::TooMany(most).into()),
                read => read?,
            };
            budget -= input.records as usize; // counted from a Vec, so it fits
            inputs.push(Input::Partition(input));
            streams.push(records);
        }
    }
    let files = build(config.clone(), &mut streams, customer, (from, to), now)?;
    let config_ref = file_ref(&config.path).unwrap_or_else(|_| FileRef {
        name: (config.path.file_name())
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        path: config.path.clone(),
    });
    let outputs = files.iter().map(|(n, b)| output_entry(n, b)).collect();
    let manifest = Manifest::new(
        &config,
        customer,
        (from, to),
        config_ref,
        inputs,
        outputs,
        now,
    );
    let document = manifest.document()?;
    let mut out: Vec<(String, Vec<u8>)> = (files.into_iter())
        .map(|(n, b)| (n.to_owned(), b))
        .collect();
    out.push((MANIFEST.to_owned(), document));
    Ok(out)
}

/// Reads `range` of `topic` back: its manifest entry, and its records as one
/// replay stream. At most `budget` records.
fn read_partition(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: Topic,
    range: &kafka_range::OffsetRange,
    budget: usize,
) -> Result<(InputPartition, Records), RangeError> {
    let records = kafka_range::read(consumer, range, budget, READ_TIMEOUT)?;
    let input = InputPartition {
        topic: topic.as_str().to_owned(),
        kafka_topic: range.topic.clone(),
        partition: range.partition,
        first_offset: range.first,
        last_offset: range.end - 1,
        records: records.len() as u64,
        sha256: hash_records(&records),
    };
    let stream = StreamId {
        topic,
        partition: range.partition,
    };
    Ok((input, Records::new(stream, records)))
}

impl Manifest {
    /// The manifest of a pack made at `now` (also its processing clock).
    fn new(
        config: &Config,
        customer: &str,
        (from, to): (Millis, Millis),
        config_ref: FileRef,
        inputs: Vec<Input>,
        outputs: Vec<OutputFile>,
        now: Millis,
    ) -> Manifest {
        Manifest {
            customer: customer.to_owned(),
            from: format_ms(from),
            to: format_ms(to),
            slaflow_version: env!("CARGO_PKG_VERSION").to_owned(),
            config_sha256: config.sha256.clone(),
            config: config_ref,
            inputs,
            outputs,
            generated_at: format_ms(now),
            months: None,
        }
    }

    /// `manifest.json`'s bytes.
    fn document(&self) -> Result<Vec<u8>, EvidenceError> {
        json_document(self)
            .map_err(|e| EvidenceError::Args(format!("cannot encode the manifest: {e}")))
    }
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
    // A device or a pipe never ends (a manifest is input: it may name /dev/zero).
    if !f.metadata().map_err(io_err(path))?.is_file() {
        let what = std::io::Error::other("not a regular file");
        return Err(io_err(path)(what));
    }
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
    let tables = Tables::for_sla_report(engine)?;
    let (files, _) = render_month(
        &config,
        (engine, &tables),
        &incidents,
        customer,
        (from, to),
        now,
    )?;
    Ok(files)
}

/// A month's files, and its SLA report.
type MonthFiles = (Vec<(&'static str, Vec<u8>)>, crate::report::SlaReport);

/// The files of the customer's month from replayed state and its report
/// tables (`incidents`: every action in contract order).
fn render_month(
    config: &Arc<Config>,
    (engine, tables): (&crate::engine::Engine, &Tables),
    incidents: &[Incident],
    customer: &str,
    (from, to): (Millis, Millis),
    now: Millis,
) -> Result<MonthFiles, EvidenceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| EvidenceError::Args(format!("runtime: {e}")))?;
    let sla = runtime.block_on(sla_report(
        config, tables, incidents, customer, from, to, now,
    ))?;
    let theirs = |i: &&Incident| i.customer == customer && (from..to).contains(&i.at_ms);
    let incident_lines = (incidents.iter().filter(theirs))
        .map(Incident::to_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvidenceError::Args(format!("cannot encode an incident: {e}")))?;
    let ticket_lines = tickets_created(engine, customer, (from, to))
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EvidenceError::Args(format!("cannot encode a ticket line: {e}")))?;
    let report = json_document(&sla)
        .map_err(|e| EvidenceError::Args(format!("cannot encode the report: {e}")))?;
    let csv = sla_csv(&sla)?.into_bytes();
    let kept = sla.clone();
    let html = html::report_html(config, engine, incidents, sla, (from, to));
    let files = vec![
        ("report.json", report),
        ("report.csv", csv),
        ("report.html", html.into_bytes()),
        ("incidents.ndjson", ndjson(incident_lines.into_iter())),
        ("tickets.ndjson", ndjson(ticket_lines.into_iter())),
    ];
    Ok((files, kept))
}

fn ndjson(lines: impl Iterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}
