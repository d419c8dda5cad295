//! Configuration (contract section 8): TOML schema, defaults and validation.
//!
//! A bad file is refused with the file, line and key at fault: syntax and type
//! errors come from the TOML parser's span plus `serde_path_to_error`'s key path;
//! cross-field errors (an unknown customer, calendar…) name their key path, and
//! the line is that key's in the parsed document ([`line_of_key`]). The file is
//! read into a private `ConfigFile`, checked, then moved into [`Config`].
//!
//! A leaf: it imports only [`crate::model`] and [`crate::time`], never the stages
//! that read it. Each section has its own file.

mod api;
mod burn;
mod delivery;
mod engine;
mod ingest;
mod kafka;
mod report;
mod service;
mod slo;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use api::*;
pub use burn::*;
pub use delivery::*;
pub use engine::*;
pub use ingest::*;
pub use kafka::*;
pub use report::*;
pub use service::*;
pub use slo::*;

/// A config error: where (file, line, key) and what.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// Path given.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file was read but is invalid.
    #[error("bad config {path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// Path given.
        path: PathBuf,
        /// 1-based line of the fault (0 when unknown).
        line: usize,
        /// Dotted key path, e.g. `services[1].stale_after`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file is not TOML (no key to name yet).
    #[error("bad config {path}:{line}: TOML syntax: {message}")]
    Syntax {
        /// Path given.
        path: PathBuf,
        /// 1-based line of the fault (0 when unknown).
        line: usize,
        /// What the parser says.
        message: String,
    },
}

/// The file as written: what serde reads. [`Config::parse`] checks it across
/// fields and builds the [`Config`] the stages use from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    kafka: Option<KafkaConfig>,
    #[serde(default)]
    api: Option<ApiConfig>,
    #[serde(default)]
    customers: Vec<CustomerConfig>,
    #[serde(default)]
    calendars: Vec<CalendarConfig>,
    #[serde(default)]
    services: Vec<ServiceConfig>,
    #[serde(default)]
    slas: Vec<SlaConfig>,
    #[serde(default)]
    credits: Vec<CreditsConfig>,
    #[serde(default)]
    slos: Vec<SloConfig>,
    #[serde(default)]
    ingest: IngestConfig,
    #[serde(default)]
    delivery: DeliveryConfig,
    #[serde(default)]
    deliveries: Vec<DeliveryTarget>,
    /// `None` when the file has no `burn_alerts`: the contract's three apply.
    #[serde(default)]
    burn_alerts: Option<Vec<BurnAlert>>,
    #[serde(default)]
    report: ReportConfig,
}

/// The checked configuration (contract section 8).
#[derive(Debug, Clone)]
pub struct Config {
    /// `[engine]`.
    pub engine: EngineConfig,
    /// `[kafka]`, needed by `run`.
    pub kafka: Option<KafkaConfig>,
    /// `[api]`, needed by `run` and `demo`.
    pub api: Option<ApiConfig>,
    /// Customers.
    pub customers: Vec<CustomerConfig>,
    /// Business calendars.
    pub calendars: Vec<CalendarConfig>,
    /// Services.
    pub services: Vec<ServiceConfig>,
    /// SLAs.
    pub slas: Vec<SlaConfig>,
    /// Service credit tiers, at most one entry per customer (section 13).
    pub credits: Vec<CreditsConfig>,
    /// Request-based SLOs (section 14).
    pub slos: Vec<SloConfig>,
    /// `[ingest]`: mapping of Alertmanager and Jira payloads.
    pub ingest: IngestConfig,
    /// `[delivery]`: outbox and retries.
    pub delivery: DeliveryConfig,
    /// `[[deliveries]]`: incident delivery targets (PagerDuty, webhooks).
    pub deliveries: Vec<DeliveryTarget>,
    /// `[[burn_alerts]]`: error-budget burn-rate alerts (the contract's three
    /// when omitted, none with `burn_alerts = []`).
    pub burn_alerts: Vec<BurnAlert>,
    /// `[report]`: what the customer report points out.
    pub report: ReportConfig,
    /// SHA-256 hex of the file's bytes, quoted in reports.
    pub sha256: String,
    /// The file it was read from (evidence manifests name it).
    pub path: PathBuf,
    /// SHA-256 hex of the settings that shape engine state (everything but
    /// `[kafka]`, `[api]`, `[ingest]`, `[delivery]`, `[[deliveries]]`, `[report]` and
    /// `engine.{data_dir, checkpoint_interval, idle_timeout, max_future,
    /// shutdown_grace, checkpoint_key_env}`): checkpoints are
    /// only valid under the same value, on any instance.
    pub engine_sha256: String,
    service_index: IdIndex,
    customer_index: IdIndex,
}

/// Position of each configured id. Looked up for every record with ids from
/// input, but its keys come only from the config (lookups never insert).
/// A few ids, the usual case, are scanned in place: a length compare per id
/// and a byte compare where the lengths agree, about half the instructions
/// of hashing the id (callgrind, the generated week's six services). More
/// go to a map with a fast seeded hash (SipHash was 1.5 % of a replay's
/// instructions).
#[derive(Debug, Clone)]
pub(crate) enum IdIndex {
    /// The ids in position order.
    Few(Vec<String>),
    /// Position by id.
    Many(IdMap),
}

/// [`IdIndex`]'s map, for more than [`FEW_IDS`] ids.
type IdMap = HashMap<String, usize, foldhash::fast::RandomState>;

/// The most ids [`IdIndex`] scans in place.
const FEW_IDS: usize = 8;

impl IdIndex {
    /// The position of `id`; of two equal ids the last.
    // Inlined, with the map's lookup out of line: as a call, its frame cost
    // as much as the scan.
    #[inline(always)]
    pub(crate) fn get(&self, id: &str) -> Option<usize> {
        match self {
            IdIndex::Few(ids) => ids.iter().rposition(|k| crate::ids::same(k, id)),
            IdIndex::Many(map) => Self::look_up(map, id),
        }
    }

    #[inline(never)]
    fn look_up(map: &IdMap, id: &str) -> Option<usize> {
        map.get(id).copied()
    }
}

/// Each id's position.
pub(crate) fn index<'a>(ids: impl ExactSizeIterator<Item = &'a String>) -> IdIndex {
    if ids.len() <= FEW_IDS {
        IdIndex::Few(ids.cloned().collect())
    } else {
        IdIndex::Many(ids.enumerate().map(|(i, id)| (id.clone(), i)).collect())
    }
}

/// Hash of the engine-relevant sections, independent of formatting, comments and
/// key order (the parsed table, serialised canonically).
fn engine_sha256(text: &str) -> String {
    let mut table: toml::Table = text.parse().unwrap_or_default();
    for k in [
        "kafka",
        "api",
        "ingest",
        "delivery",
        "deliveries",
        "report",
        "credits",
    ] {
        table.remove(k);
    }
    // Where and how often state is saved, how stopping and signing work, and the
    // guards against idle partitions and wrong clocks differ between instances
    // without changing what state means.
    if let Some(toml::Value::Table(engine)) = table.get_mut("engine") {
        for k in [
            "data_dir",
            "checkpoint_interval",
            "idle_timeout",
            "max_future",
            "shutdown_grace",
            "checkpoint_key_env",
            "retention",
        ] {
            engine.remove(k);
        }
    }
    hex::encode(Sha256::digest(
        serde_json::to_vec(&table).unwrap_or_default(),
    ))
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line of a key path (`services[1].customer`, `api.tokens[0].sha256`) in
/// the document, or of the deepest part of it written there (line 1 when none
/// is: a default is at fault).
fn line_of_key(text: &str, key: &str) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 0;
    };
    let root = DeValue::Table(root.into_inner());
    let (mut start, mut node) = (0, &root);
    for part in key_parts(key) {
        let next = match (node, part) {
            (DeValue::Table(t), KeyPart::Name(name)) => (t.iter())
                .find(|(k, _)| k.get_ref() == name)
                .map(|(k, v)| (k.span().start, v.get_ref())),
            (DeValue::Array(a), KeyPart::Index(i)) => {
                (a.get(i)).map(|v| (v.span().start, v.get_ref()))
            }
            _ => None,
        };
        let Some(found) = next else { break };
        (start, node) = found;
    }
    line_of(text, start)
}

/// A step of a key path: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyPart<'a> {
    Name(&'a str),
    Index(usize),
}

/// `services[1].customer` → `services`, 1, `customer`.
fn key_parts(key: &str) -> Vec<KeyPart<'_>> {
    let mut parts = Vec::new();
    for segment in key.split('.') {
        let (name, indexes) = segment.split_once('[').unwrap_or((segment, ""));
        if !name.is_empty() {
            parts.push(KeyPart::Name(name));
        }
        let indexes = indexes.split(['[', ']']).filter(|i| !i.is_empty());
        parts.extend(indexes.filter_map(|i| i.parse().ok()).map(KeyPart::Index));
    }
    parts
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |line: usize, key: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line,
            key,
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().trim().to_owned(),
        })?;
        let file: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map_or(0, |s| line_of(text, s.start));
            invalid(line, key, inner.message().to_owned())
        })?;
        file.validate()
            .map_err(|f| invalid(line_of_key(text, &f.key), f.key, f.message))?;
        Ok(Config::checked(file, text, path))
    }

    /// The configuration of a file that passed [`ConfigFile::validate`].
    fn checked(file: ConfigFile, text: &str, path: &Path) -> Config {
        Config {
            service_index: index(file.services.iter().map(|s| &s.id)),
            customer_index: index(file.customers.iter().map(|c| &c.id)),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            path: path.to_owned(),
            engine_sha256: engine_sha256(text),
            burn_alerts: (file.burn_alerts).unwrap_or_else(burn::default_burn_alerts),
            engine: file.engine,
            kafka: file.kafka,
            api: file.api,
            customers: file.customers,
            calendars: file.calendars,
            services: file.services,
            slas: file.slas,
            credits: file.credits,
            slos: file.slos,
            ingest: file.ingest,
            delivery: file.delivery,
            deliveries: file.deliveries,
            report: file.report,
        }
    }

    /// The service with this id, if configured.
    pub fn service(&self, id: &str) -> Option<&ServiceConfig> {
        self.service_index.get(id).map(|i| &self.services[i])
    }

    /// A configured SLO by id.
    pub fn slo(&self, id: &str) -> Option<&SloConfig> {
        self.slos.iter().find(|s| s.id() == id)
    }

    /// The service credit tiers of a customer, if it has any (section 13).
    pub fn credits_for(&self, customer: &str) -> Option<&CreditsConfig> {
        (self.credits.iter()).find(|c| c.customer == customer)
    }

    /// The customer with this id, if configured.
    pub fn customer(&self, id: &str) -> Option<&CustomerConfig> {
        self.customer_index.get(id).map(|i| &self.customers[i])
    }

    /// The `[kafka]` section, or its defaults.
    pub fn kafka_or_default(&self) -> KafkaConfig {
        self.kafka.clone().unwrap_or_default()
    }

    /// `api.evidence_max_records`, or its default.
    pub fn evidence_max_records(&self) -> std::num::NonZeroU64 {
        (self.api.as_ref()).map_or(api::EVIDENCE_MAX_RECORDS, |a| a.evidence_max_records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Priority;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn an_index_of_few_ids_answers_as_one_of_many() {
        for n in [0, 1, 3, FEW_IDS - 1, FEW_IDS, 40] {
            // Ids of equal and different lengths, one repeated (the last
            // wins); with the repeat, `FEW_IDS - 1` gives the most scanned.
            let mut ids: Vec<String> = (0..n).map(|i| format!("s{}", i % 12)).collect();
            ids.extend((n > 2).then(|| "s1".to_owned()));
            let index = index(ids.iter());
            assert_eq!(matches!(index, IdIndex::Few(_)), ids.len() <= FEW_IDS);
            for probe in ids
                .iter()
                .map(String::as_str)
                .chain(["", "s", "s100", "x1"])
            {
                let expected = ids.iter().rposition(|id| id == probe);
                assert_eq!(index.get(probe), expected, "{probe:?} among {n} ids");
            }
        }
    }

    #[test]
    fn engine_hash_ignores_what_does_not_shape_state() {
        let base = parse(GOOD).unwrap().engine_sha256;
        let same = [
            GOOD.replace(
                "[engine]\n",
                "[engine]\ndata_dir = \"/elsewhere\"\nidle_timeout = \"1s\"\n",
            ),
            format!(
                "# a comment\n{GOOD}\n[api]\nlisten = \"127.0.0.1:1\"\n[kafka]\ngroup_id = \"x\"\n"
            ),
        ];
        for text in same {
            assert_eq!(parse(&text).unwrap().engine_sha256, base, "{text}");
        }
        let different = GOOD.replace("\"45s\"", "\"46s\"");
        assert_ne!(parse(&different).unwrap().engine_sha256, base);
    }

    const GOOD: &str = r#"
[engine]
allowed_lateness = "45s"

[[customers]]
id = "acme"
name = "ACME Corp"
timezone = "Europe/Paris"

[[calendars]]
id = "office"
timezone = "Europe/Paris"
holidays = ["2026-12-25"]
[calendars.hours]
mon = "09:00-17:00"
wed = "09:00-12:00,13:00-17:00"

[[services]]
id = "web"
customer = "acme"
down_when = "any"

[[slas]]
id = "gold"
customer = "acme"
calendar = "office"
kinds = ["incident"]
[slas.targets.P1]
response = "15m"
resolution = "4h"
"#;

    #[test]
    fn a_syntax_error_names_the_line_not_an_empty_key() {
        let err = parse("[engine\nbucket = \"1m\"\n").unwrap_err().to_string();
        assert!(
            err.starts_with("bad config test.toml:1: TOML syntax: "),
            "{err}"
        );
        assert!(!err.contains("key ``"), "{err}");
    }

    #[test]
    fn credit_tiers_edges_and_refusals() {
        let text = format!(
            "{GOOD}\n[[credits]]\ncustomer = \"acme\"\ntiers = [{{ below = 99.9, credit_pct = 10 }}, {{ below = 99.0, credit_pct = 25 }}]\n"
        );
        let c = parse(&text).unwrap();
        let tiers = c.credits_for("acme").unwrap();
        // Strictly below: exactly at `below` gives nothing from that tier.
        assert_eq!(tiers.credit_for(99.9), 0.0);
        assert_eq!(tiers.credit_for(99.899), 10.0);
        assert_eq!(tiers.credit_for(99.0), 10.0);
        assert_eq!(tiers.credit_for(98.99), 25.0);
        assert_eq!(tiers.credit_for(100.0), 0.0);
        assert!(c.credits_for("globex").is_none());
        // Credits do not shape engine state: checkpoints stay valid.
        assert_eq!(c.engine_sha256, parse(GOOD).unwrap().engine_sha256);
        for (bad, key) in [
            (
                "customer = \"nobody\"\ntiers = [{ below = 99, credit_pct = 1 }]",
                "credits[0].customer",
            ),
            ("customer = \"acme\"\ntiers = []", "credits[0].tiers"),
            (
                "customer = \"acme\"\ntiers = [{ below = 120, credit_pct = 1 }]",
                "credits[0].tiers[0].below",
            ),
            (
                "customer = \"acme\"\ntiers = [{ below = 99, credit_pct = -1 }]",
                "credits[0].tiers[0].credit_pct",
            ),
        ] {
            let err = parse(&format!("{GOOD}\n[[credits]]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let twice = format!(
            "{text}\n[[credits]]\ncustomer = \"acme\"\ntiers = [{{ below = 99, credit_pct = 1 }}]\n"
        );
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.contains("credits[1].customer"), "{err}");
    }

    #[test]
    fn good_config_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.engine.allowed_lateness, Dur(45_000));
        assert_eq!(c.engine.bucket, Dur(60_000));
        assert_eq!(c.engine.dedup_horizon, Dur(86_400_000));
        let web = c.service("web").unwrap();
        assert_eq!(web.down_when, DownWhen::Any);
        assert_eq!(web.stale_after, Dur(120_000));
        assert_eq!(web.availability_target, 99.9);
        assert_eq!(c.calendars[0].hours.wed, vec![(540, 720), (780, 1020)]);
        assert!(c.calendars[0].hours.tue.is_empty());
        assert_eq!(
            c.slas[0].targets[&Priority::P1].response,
            Some(Dur(900_000))
        );
        assert_eq!(c.slas[0].warn_at, 0.75);
        assert_eq!(c.sha256.len(), 64);
        assert!(c.customer("acme").is_some() && c.customer("nope").is_none());
    }

    fn err_of(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn bad_duration_names_line_and_key() {
        let text = GOOD.replace(
            "down_when = \"any\"",
            "down_when = \"any\"\nstale_after = \"5 parsecs\"",
        );
        let (line, key, msg) = err_of(&text);
        assert_eq!(key, "services[0].stale_after");
        assert_eq!(
            line,
            text.lines().position(|l| l.contains("parsecs")).unwrap() + 1
        );
        assert!(msg.contains("invalid duration"), "{msg}");
    }

    #[test]
    fn unknown_customer_reference_names_line_and_key() {
        let text = GOOD.replace(
            "customer = \"acme\"\ndown_when",
            "customer = \"globex\"\ndown_when",
        );
        let (line, key, msg) = err_of(&text);
        assert_eq!(key, "services[0].customer");
        assert_eq!(
            line,
            text.lines().position(|l| l.contains("globex")).unwrap() + 1
        );
        assert!(msg.contains("unknown customer"));
    }

    #[test]
    fn unknown_key_and_enum_and_syntax_are_refused() {
        let (_, key, msg) = err_of(&GOOD.replace("down_when = \"any\"", "down_whenn = \"any\""));
        assert!(
            key.starts_with("services[0]") && msg.contains("down_whenn"),
            "{key} {msg}"
        );
        let (_, key, _) = err_of(&GOOD.replace("\"any\"", "\"most\""));
        assert_eq!(key, "services[0].down_when");
        let syntax = parse("[engine]\nbucket = \n");
        assert!(
            matches!(syntax, Err(ConfigError::Syntax { line: 2, .. })),
            "{syntax:?}"
        );
        let (_, key, _) =
            err_of(&GOOD.replace("Europe/Paris\"\nholidays", "Mars/Olympus\"\nholidays"));
        assert_eq!(key, "calendars[0].timezone");
        let (_, key, _) = err_of(&GOOD.replace("\"09:00-17:00\"", "\"17:00-09:00\""));
        assert_eq!(key, "calendars[0].hours.mon");
        let (_, key, _) = err_of(&GOOD.replace("calendar = \"office\"", "calendar = \"night\""));
        assert_eq!(key, "slas[0].calendar");
        let (_, key, _) = err_of(&format!(
            "{GOOD}\n[api]\n[[api.tokens]]\nsha256 = \"abc\"\n"
        ));
        assert_eq!(key, "api.tokens[0].sha256");
        let (line, key, _) = err_of(&format!("{GOOD}\n[report]\nproblem_after = 0\n"));
        assert_eq!(key, "report.problem_after");
        assert_eq!(line, GOOD.lines().count() + 3);
    }

    #[test]
    fn domain_names_are_checked_at_load() {
        let jira = format!("{GOOD}\n[ingest.jira.kinds]\n\"Bug\" = \"incidnet\"\n");
        let (line, key, msg) = err_of(&jira);
        assert_eq!(key, "ingest.jira.kinds.Bug");
        let bug_line = jira
            .lines()
            .position(|l| l.starts_with("\"Bug\""))
            .map(|i| i + 1);
        assert_eq!(Some(line), bug_line, "{msg}");
        assert!(msg.contains("incidnet"), "{msg}");
        let (_, key, _) = err_of(&GOOD.replace("kinds = [\"incident\"]", "kinds = [\"bug\"]"));
        assert_eq!(key, "slas[0].kinds[0]");
        let rules = format!(
            "{GOOD}\n[[deliveries]]\nid = \"w\"\ntype = \"webhook\"\nurl = \"http://x\"\nrules = [\"outages\"]\n"
        );
        let (_, key, msg) = err_of(&rules);
        assert!(key.starts_with("deliveries[0].rules"), "{key} {msg}");
    }

    #[test]
    fn burn_alerts_default_to_the_contracts_three_and_are_checked_at_load() {
        let c = parse(GOOD).unwrap();
        let got: Vec<_> = (c.burn_alerts.iter())
            .map(|a| {
                (
                    a.name.as_str(),
                    a.long.ms,
                    a.short.text.as_str(),
                    a.factor,
                    a.severity,
                )
            })
            .collect();
        use crate::model::Severity::{Critical, Minor};
        assert_eq!(
            got,
            vec![
                ("page-fast", 3_600_000, "5m", 14.4, Critical),
                ("page-slow", 21_600_000, "30m", 6.0, Critical),
                ("ticket", 259_200_000, "6h", 1.0, Minor),
            ]
        );
        let (_, key, msg) = err_of(&GOOD.replace("[engine]\n", "[engine]\nbucket = \"7m\"\n"));
        assert_eq!(key, "engine.bucket", "{msg}");
        assert!(msg.contains("default burn alerts"), "{msg}");
        assert!(
            parse(&format!("burn_alerts = []\n{GOOD}"))
                .unwrap()
                .burn_alerts
                .is_empty()
        );
        let alert = |body: &str| {
            format!(
                "{GOOD}\n[[burn_alerts]]\nname = \"a\"\nseverity = \"major\"\nfactor = 2.0\n{body}\n"
            )
        };
        let ok = parse(&alert("long = \"2h\"\nshort = \"10m\"")).unwrap();
        assert_eq!(
            (ok.burn_alerts.len(), ok.burn_alerts[0].long.text.as_str()),
            (1, "2h")
        );
        let faults = [
            (
                "long = \"10m\"\nshort = \"10m\"",
                "burn_alerts[0].short",
                "shorter",
            ),
            (
                "long = \"1h\"\nshort = \"90s\"",
                "burn_alerts[0].short",
                "multiple of engine.bucket",
            ),
            (
                "long = \"1h\"\nshort = \"0s\"",
                "burn_alerts[0].short",
                "positive",
            ),
            (
                "long = \"1h\"\nshort = \"5m\"\n[[burn_alerts]]\nname = \"a\"\nseverity = \"minor\"\nfactor = 1.0\nlong = \"2h\"\nshort = \"5m\"",
                "burn_alerts[1].name",
                "duplicate",
            ),
        ];
        for (body, want_key, want_msg) in faults {
            let text = alert(body);
            let (line, key, msg) = err_of(&text);
            assert_eq!(key, want_key, "{msg}");
            assert!(msg.contains(want_msg), "{msg}");
            // The line is the faulty key's own; for the duplicate, the second name's.
            let field = want_key.rsplit('.').next().unwrap_or_default();
            let at = text.lines().nth(line - 1).unwrap_or_default();
            assert!(at.starts_with(&format!("{field} =")), "line {line}: {at}");
            if want_key.starts_with("burn_alerts[1]") {
                assert!(text.lines().take(line - 1).any(|l| l == "name = \"a\""));
            }
        }
        let (_, key, msg) =
            err_of(&alert("long = \"1h\"\nshort = \"5m\"").replace("factor = 2.0", "factor = 0.0"));
        assert_eq!(key, "burn_alerts[0].factor", "{msg}");
        let (line, key, msg) =
            err_of(&alert("long = \"1h\"\nshort = \"5m\"").replace("\"major\"", "\"urgent\""));
        assert_eq!(key, "burn_alerts[0].severity", "{msg} {line}");
    }

    #[test]
    fn a_fault_names_the_line_of_its_key_or_of_the_nearest_part_written() {
        assert_eq!(
            key_parts("api.tokens[2].sha256"),
            vec![
                KeyPart::Name("api"),
                KeyPart::Name("tokens"),
                KeyPart::Index(2),
                KeyPart::Name("sha256")
            ]
        );
        let text = format!(
            "{GOOD}\n[[services]]\nid = \"shop\"\ncustomer = \"acme\"\navailability_target = 120\n"
        );
        let (line, key, _) = err_of(&text);
        assert_eq!(key, "services[1].availability_target");
        assert_eq!(
            text.lines().nth(line - 1),
            Some("availability_target = 120")
        );
        // A key not written (a default at fault) points at what is: its table.
        let header = line_of_key(&text, "services[1].stale_after");
        assert_eq!(text.lines().nth(header - 1), Some("[[services]]"));
        assert_eq!(header, line - 3);
        assert_eq!(line_of_key(&text, "nothing.here"), 1);
    }

    #[test]
    fn builtin_calendar_is_default() {
        let c = parse(&GOOD.replace("calendar = \"office\"\n", "")).unwrap();
        assert_eq!(c.slas[0].calendar, BUILTIN_24X7);
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = Config::load(Path::new("/nonexistent/slaflow.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read config /nonexistent/slaflow.toml")
        );
    }
}
