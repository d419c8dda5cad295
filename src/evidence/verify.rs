//! `slaflow verify`: the inputs a manifest names, checked against their hashes,
//! re-derived into the pack's files and compared with what the pack holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diff::first_difference;
use super::{
    EvidenceError, FileRef, Input, InputFile, MANIFEST, Manifest, PDF, build, hash_file, io_err,
    output_entry, read_partition,
};
use crate::config::Config;
use crate::model::Topic;
use crate::replay;
use crate::source::Records;
use crate::source::kafka_range::{self, OffsetRange, RangeError};
use crate::time::parse_rfc3339;

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
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| EvidenceError::Manifest(format!("in {}: {e}", args.dir.display())))?;
    if m.months.is_some() {
        return verify_year(&m, args);
    }
    let derived = match rederive(&m, args)? {
        Ok(derived) => derived,
        Err(differs) => return Ok(Verdict::Differs(differs)),
    };
    if let Some(differs) = compare_outputs(&m, &derived, &args.dir)? {
        return Ok(Verdict::Differs(differs));
    }
    Ok(match unlisted_file(&m, &args.dir)? {
        Some(name) => Verdict::Differs(format!("{name}: in the pack but not in {MANIFEST}")),
        None => Verdict::Verified,
    })
}

/// An annual pack (section 15): the inputs replayed once into every month's
/// files and the review, each month compared with its own manifest and
/// folder, the review with the root's files, and every file the root lists
/// with its hash.
fn verify_year(m: &Manifest, args: &VerifyArgs) -> Result<Verdict, EvidenceError> {
    let (config, year, now) = match year_inputs(m, args)? {
        Ok(found) => found,
        Err(differs) => return Ok(Verdict::Differs(differs)),
    };
    let files = input_files(m);
    let (monitoring, tickets) = match check_files(&files, args)? {
        Ok(paths) => paths,
        Err(differs) => return Ok(Verdict::Differs(differs)),
    };
    let mut streams = replay::open_inputs(&monitoring, &tickets)?;
    let derived = super::annual::build_year(config, &mut streams, &m.customer, year, now)?;
    let months: Vec<&String> = derived.months.iter().map(|(name, _, _)| name).collect();
    if m.months.as_ref().map(|v| v.iter().collect::<Vec<_>>()) != Some(months) {
        return Ok(Verdict::Differs(format!(
            "{MANIFEST}: months {:?} are not the months the inputs cover",
            m.months
        )));
    }
    for (name, _, files) in &derived.months {
        let dir = args.dir.join(name);
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(io_err(&path))?;
        let month: Manifest = serde_json::from_slice(&text)
            .map_err(|e| EvidenceError::Manifest(format!("in {}: {e}", dir.display())))?;
        if let Some(differs) = compare_outputs(&month, files, &dir)? {
            return Ok(Verdict::Differs(format!("{name}/{differs}")));
        }
    }
    for (name, expected) in &derived.review {
        let Some(found) = read_pack_file(&args.dir.join(name))? else {
            return Ok(Verdict::Differs(format!("{name}: missing from the pack")));
        };
        if let Some(diff) = first_difference(name, expected, &found) {
            return Ok(Verdict::Differs(format!("{name}: {diff}")));
        }
    }
    for o in &m.outputs {
        // Names are input: only paths inside the pack, one folder deep.
        let inside = o
            .name
            .split('/')
            .all(|p| !p.is_empty() && p != ".." && p != ".");
        let found = match inside {
            true => read_pack_file(&args.dir.join(&o.name))?,
            false => None,
        };
        if found.is_none_or(|f| output_entry(&o.name, &f).sha256 != o.sha256) {
            return Ok(Verdict::Differs(format!(
                "{}: missing, or its SHA-256 differs from the root {MANIFEST}",
                o.name
            )));
        }
    }
    Ok(Verdict::Verified)
}

/// The input files a manifest names (none for a live pack).
fn input_files(m: &Manifest) -> Vec<&InputFile> {
    (m.inputs.iter())
        .filter_map(|i| match i {
            Input::File(f) => Some(f),
            Input::Partition(_) => None,
        })
        .collect()
}

/// The config, year and processing clock an annual manifest names, or what
/// differs.
fn year_inputs(
    m: &Manifest,
    args: &VerifyArgs,
) -> Checked<(Arc<Config>, i32, crate::time::Millis)> {
    let now = parse_rfc3339(&m.generated_at)
        .map_err(|e| EvidenceError::Manifest(format!("generated_at: {e}")))?;
    let year: i32 = (m.from.get(..4).and_then(|y| y.parse().ok()))
        .ok_or_else(|| EvidenceError::Manifest(format!("from: {:?} is not a date", m.from)))?;
    Ok(manifest_config(m, args)?.map(|config| (config, year, now)))
}

/// The config the manifest names (or `--config`), or how its hash differs.
fn manifest_config(m: &Manifest, args: &VerifyArgs) -> Checked<Arc<Config>> {
    let config_path = (args.config.clone()).unwrap_or_else(|| locate(&m.config, &args.dir));
    let config = Arc::new(Config::load(&config_path)?);
    if config.sha256 != m.config_sha256 {
        return Ok(Err(format!(
            "config {}: SHA-256 {} differs from the manifest's config_sha256 {}",
            config_path.display(),
            config.sha256,
            m.config_sha256
        )));
    }
    Ok(Ok(config))
}

/// The pack's files made anew from the manifest's config and inputs (files
/// or topic partitions), or the first of those that differs from its record.
fn rederive(m: &Manifest, args: &VerifyArgs) -> Checked<Vec<(&'static str, Vec<u8>)>> {
    let instant = |what: &str, v: &str| {
        parse_rfc3339(v).map_err(|e| EvidenceError::Manifest(format!("{what}: {e}")))
    };
    let (from, to, now) = (
        instant("from", &m.from)?,
        instant("to", &m.to)?,
        instant("generated_at", &m.generated_at)?,
    );
    let config = match manifest_config(m, args)? {
        Ok(config) => config,
        Err(differs) => return Ok(Err(differs)),
    };
    let files = input_files(m);
    let period = (from, to);
    if files.len() == m.inputs.len() {
        let (monitoring, tickets) = match check_files(&files, args)? {
            Ok(paths) => paths,
            Err(differs) => return Ok(Err(differs)),
        };
        let mut streams = replay::open_inputs(&monitoring, &tickets)?;
        build(config, &mut streams, &m.customer, period, now).map(Ok)
    } else if files.is_empty() {
        let mut streams = match read_partitions(m, &config, args.brokers.as_deref())? {
            Ok(streams) => streams,
            Err(differs) => return Ok(Err(differs)),
        };
        build(config, &mut streams, &m.customer, period, now).map(Ok)
    } else {
        Err(EvidenceError::Manifest(
            "inputs mix files and topic partitions".into(),
        ))
    }
}

/// The first difference between the pack in `dir`, its manifest and the
/// `derived` files: a listed file no pack holds, a file that differs (naming
/// the field), a hash the manifest records wrongly, a PDF whose hash changed.
fn compare_outputs(
    m: &Manifest,
    derived: &[(&'static str, Vec<u8>)],
    dir: &Path,
) -> Result<Option<String>, EvidenceError> {
    let version_note = if m.slaflow_version == env!("CARGO_PKG_VERSION") {
        String::new()
    } else {
        format!(
            " (the pack was made by slaflow {}, this is {})",
            m.slaflow_version,
            env!("CARGO_PKG_VERSION")
        )
    };
    // A manifest is input: a name other than the pack's files (say
    // `../../dev/zero`) is refused unread.
    let known = |name: &str| name == PDF || derived.iter().any(|(n, _)| *n == name);
    if let Some(o) = m.outputs.iter().find(|o| !known(&o.name)) {
        return Ok(Some(format!(
            "{MANIFEST}: lists an output {:?} that no pack holds",
            o.name
        )));
    }
    for (name, expected) in derived {
        let Some(found) = read_pack_file(&dir.join(name))? else {
            return Ok(Some(format!("{name}: missing from the pack")));
        };
        if let Some(diff) = first_difference(name, expected, &found) {
            return Ok(Some(format!("{name}: {diff}{version_note}")));
        }
        let sha256 = output_entry(name, &found).sha256;
        match m.outputs.iter().find(|o| o.name == *name) {
            None => return Ok(Some(format!("{MANIFEST}: lists no {name}"))),
            Some(o) if o.sha256 != sha256 => {
                return Ok(Some(format!(
                    "{MANIFEST}: outputs[{name}]: SHA-256 differs from the file"
                )));
            }
            Some(_) => {}
        }
    }
    // The PDF comes from Chromium, not slaflow: only its hash is checked.
    for o in m.outputs.iter().filter(|o| o.name == PDF) {
        let found = read_pack_file(&dir.join(PDF))?.unwrap_or_default();
        if output_entry(PDF, &found).sha256 != o.sha256 {
            return Ok(Some(format!("{PDF}: SHA-256 differs from the manifest")));
        }
    }
    Ok(None)
}

/// A file in the pack's folder that the manifest names neither as an output
/// nor as an input or the config (kept beside the outputs): nobody checked it.
fn unlisted_file(m: &Manifest, dir: &Path) -> Result<Option<String>, EvidenceError> {
    let inputs = (m.inputs.iter()).filter_map(|i| match i {
        Input::File(f) => Some(f.file.name.as_str()),
        Input::Partition(_) => None,
    });
    let listed: Vec<&str> = (m.outputs.iter().map(|o| o.name.as_str()))
        .chain(inputs)
        .chain([m.config.name.as_str(), MANIFEST])
        .collect();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !listed.contains(&name.as_str()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// A file of the pack, `None` when missing. Only regular files up to
/// [`MAX_PACK_FILE`] are read: a pack is input, and a link to a device never ends.
fn read_pack_file(path: &Path) -> Result<Option<Vec<u8>>, EvidenceError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() > MAX_PACK_FILE {
        let what = format!("not a regular file of at most {MAX_PACK_FILE} bytes");
        return Err(io_err(path)(std::io::Error::other(what)));
    }
    std::fs::read(path).map(Some).map_err(io_err(path))
}

/// Largest pack file `verify` reads.
const MAX_PACK_FILE: u64 = 1 << 30;

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
                "--{topic}: {} given, the manifest lists {}",
                crate::text::count(given.len() as u64, "file"),
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
        let (found, records) = match read_partition(&consumer, topic, &range, budget) {
            Err(RangeError::TooMany(_)) => {
                return Ok(Err(format!(
                    "input {}[{}]: more records than the manifest's {}",
                    p.kafka_topic, p.partition, p.records
                )));
            }
            other => other?,
        };
        if found.sha256 != p.sha256 || found.records != p.records {
            return Ok(Err(format!(
                "input {}[{}] offsets {}..={}: SHA-256 {} differs from the manifest's {} ({} records, the manifest says {})",
                p.kafka_topic,
                p.partition,
                p.first_offset,
                p.last_offset,
                found.sha256,
                p.sha256,
                found.records,
                p.records
            )));
        }
        streams.push(records);
    }
    Ok(Ok(streams))
}
