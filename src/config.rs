//! Configuration (contract section 8): TOML schema, defaults and validation.
//!
//! A bad file is refused with the file, line and key at fault: syntax and type
//! errors come from the TOML parser's span plus `serde_path_to_error`'s key path;
//! cross-reference errors (an unknown customer, calendar…) use `Spanned` fields.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::time::{MAX_DURATION_MS, Millis};

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
}

/// A duration from a humantime string (`"90s"`, `"1d 2h"`), held in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Millis);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let std = humantime::parse_duration(&s)
            .map_err(|e| de::Error::custom(format!("invalid duration {s:?}: {e}")))?;
        match Millis::try_from(std.as_millis()) {
            Ok(ms) if ms <= MAX_DURATION_MS => Ok(Dur(ms)),
            _ => Err(de::Error::custom(format!(
                "duration {s:?} is too large (at most 100 years)"
            ))),
        }
    }
}

impl Dur {
    /// As a `std::time::Duration` (config durations are never negative).
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.unsigned_abs())
    }
}

/// An IANA timezone (`Europe/Paris`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tz(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for Tz {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        chrono_tz::Tz::from_str(&s)
            .map(Tz)
            .map_err(|_| de::Error::custom(format!("unknown timezone {s:?}")))
    }
}

impl Default for Tz {
    fn default() -> Self {
        Tz(chrono_tz::UTC)
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How far behind the highest `ts` of a stream its watermark trails.
    pub allowed_lateness: Dur,
    /// How far past the processing clock a `ts` may lie before the record is
    /// dead-lettered as `future` (a probe with a wrong clock).
    pub max_future: Dur,
    /// How long an `event_id` is remembered for duplicate detection.
    pub dedup_horizon: Dur,
    /// Availability aggregation bucket.
    pub bucket: Dur,
    /// After this long caught up and quiet, a partition stops holding the watermark back.
    pub idle_timeout: Dur,
    /// Where checkpoints live.
    pub data_dir: PathBuf,
    /// How often state is checkpointed.
    pub checkpoint_interval: Dur,
    /// How far back `run` and `demo` keep what reports read (state intervals,
    /// capacity hours, the incident log); older periods come from a replay of the
    /// topics or from evidence packs.
    pub retention: Dur,
    /// How long `run` and `demo` may take to stop after SIGTERM; what was not
    /// acknowledged by then stays uncommitted and is read again after a restart.
    pub shutdown_grace: Dur,
    /// Name of an environment variable holding a secret: when set, checkpoint
    /// manifests and changelog records carry an HMAC-SHA256 under it, and unsigned
    /// or forged ones are refused.
    pub checkpoint_key_env: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            allowed_lateness: Dur(30_000),
            max_future: Dur(600_000),
            dedup_horizon: Dur(24 * 3_600_000),
            bucket: Dur(60_000),
            idle_timeout: Dur(10_000),
            data_dir: PathBuf::from("./slaflow-data"),
            checkpoint_interval: Dur(10_000),
            retention: Dur(400 * 86_400_000),
            shutdown_grace: Dur(30_000),
            checkpoint_key_env: None,
        }
    }
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group.
    pub group_id: String,
    /// Monitoring events topic.
    pub monitoring_topic: String,
    /// Ticket events topic.
    pub tickets_topic: String,
    /// Incident output topic.
    pub incidents_topic: String,
    /// Dead-letter output topic.
    pub deadletter_topic: String,
    /// Compacted changelog of partition checkpoints (state handoff, global reports).
    pub state_topic: String,
    /// Passed to librdkafka as-is (consumer and producer).
    pub options: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// The Kafka topic an input topic is read from.
    pub fn topic_name(&self, topic: crate::event::Topic) -> &str {
        match topic {
            crate::event::Topic::Monitoring => &self.monitoring_topic,
            crate::event::Topic::Tickets => &self.tickets_topic,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "slaflow".into(),
            monitoring_topic: "monitoring.events".into(),
            tickets_topic: "tickets.events".into(),
            incidents_topic: "sla.incidents".into(),
            deadletter_topic: "sla.deadletter".into(),
            state_topic: "slaflow.state".into(),
            options: BTreeMap::new(),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: String,
    /// Bearer tokens (SHA-256 hex of the token).
    pub tokens: Vec<TokenConfig>,
    /// Memory all running `POST /v1/query` statements may hold together; a
    /// query that needs more is refused with 400.
    pub query_memory: bytesize::ByteSize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
            query_memory: bytesize::ByteSize::mib(256),
        }
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Lower-case hex SHA-256 of the bearer token.
    pub sha256: Spanned<String>,
    /// Restricts the token to one customer; absent = admin.
    pub customer: Option<Spanned<String>>,
    /// `"ingest"`: the token may only post to `/v1/ingest/*` (for Alertmanager,
    /// ticket tools, collectors).
    #[serde(default)]
    pub scope: Option<Spanned<TokenScope>>,
    /// With `scope = "ingest"`: the customers whose services and tickets the
    /// token may write (absent = all).
    #[serde(default)]
    pub customers: Option<Spanned<Vec<String>>>,
}

/// What a token is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Only the ingest endpoints.
    Ingest,
}

/// `[[customers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerConfig {
    /// Customer id.
    pub id: Spanned<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Timezone for customer-facing presentation.
    #[serde(default)]
    pub timezone: Tz,
}

/// A day's business hours: half-open minute ranges `[start, end)` from midnight.
pub type DayHours = Vec<(u32, u32)>;

/// `[[calendars]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Calendar id.
    pub id: Spanned<String>,
    /// Timezone of the hours and holidays.
    #[serde(default)]
    pub timezone: Tz,
    /// Days (local dates) without business hours.
    #[serde(default, deserialize_with = "de_dates")]
    pub holidays: Vec<NaiveDate>,
    /// Weekly hours; a missing day has none.
    #[serde(default)]
    pub hours: WeekHours,
}

/// `[calendars.hours]`: `mon = "09:00-17:00"`, several ranges comma-separated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    /// Monday.
    #[serde(default, deserialize_with = "de_hours")]
    pub mon: DayHours,
    /// Tuesday.
    #[serde(default, deserialize_with = "de_hours")]
    pub tue: DayHours,
    /// Wednesday.
    #[serde(default, deserialize_with = "de_hours")]
    pub wed: DayHours,
    /// Thursday.
    #[serde(default, deserialize_with = "de_hours")]
    pub thu: DayHours,
    /// Friday.
    #[serde(default, deserialize_with = "de_hours")]
    pub fri: DayHours,
    /// Saturday.
    #[serde(default, deserialize_with = "de_hours")]
    pub sat: DayHours,
    /// Sunday.
    #[serde(default, deserialize_with = "de_hours")]
    pub sun: DayHours,
}

impl WeekHours {
    /// Hours of a weekday, Monday = 0.
    pub fn day(&self, weekday_from_monday: u32) -> &DayHours {
        match weekday_from_monday {
            0 => &self.mon,
            1 => &self.tue,
            2 => &self.wed,
            3 => &self.thu,
            4 => &self.fri,
            5 => &self.sat,
            _ => &self.sun,
        }
    }
}

/// How a service's probes combine into `down` (contract 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DownWhen {
    /// At least one known source is down.
    Any,
    /// More than half of the known sources are down.
    #[default]
    Majority,
    /// Every known source is down.
    All,
}

/// How `nodata` time counts in availability (contract 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    /// Not measured.
    #[default]
    Exclude,
    /// Counted as downtime.
    Down,
    /// Counted as uptime.
    Up,
}

/// `[[services]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Service id (the monitoring message key).
    pub id: Spanned<String>,
    /// Owning customer.
    pub customer: Spanned<String>,
    /// Availability target, percent.
    #[serde(default = "default_target")]
    pub availability_target: f64,
    /// Probe quorum rule.
    #[serde(default)]
    pub down_when: DownWhen,
    /// A probe result holds this long.
    #[serde(default = "default_stale_after")]
    pub stale_after: Dur,
    /// Continuous down time before an outage fires.
    #[serde(default = "default_outage_after")]
    pub outage_after: Dur,
    /// Non-down time that ends an outage episode.
    #[serde(default = "default_resolve_after")]
    pub resolve_after: Dur,
    /// How nodata time counts.
    #[serde(default)]
    pub nodata: NoData,
    /// Utilisation that counts as saturated.
    #[serde(default = "default_capacity_threshold")]
    pub capacity_threshold: f64,
    /// How long saturation must last before a capacity incident.
    #[serde(default = "default_capacity_sustain")]
    pub capacity_sustain: Dur,
    /// Window of hourly means used for the exhaustion forecast.
    #[serde(default = "default_forecast_window")]
    pub forecast_window: Dur,
}

fn default_target() -> f64 {
    99.9
}
fn default_stale_after() -> Dur {
    Dur(120_000)
}
fn default_outage_after() -> Dur {
    Dur(60_000)
}
fn default_resolve_after() -> Dur {
    Dur(120_000)
}
fn default_capacity_threshold() -> f64 {
    0.9
}
fn default_capacity_sustain() -> Dur {
    Dur(300_000)
}
fn default_forecast_window() -> Dur {
    Dur(7 * 86_400_000)
}
fn default_warn_at() -> f64 {
    0.75
}
fn default_calendar() -> Spanned<String> {
    Spanned::new(0..0, BUILTIN_24X7.to_owned())
}

/// The built-in always-open calendar.
pub const BUILTIN_24X7: &str = "24x7";

/// Ticket priorities.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    utoipa::ToSchema,
)]
pub enum Priority {
    /// Highest.
    P1,
    /// High.
    P2,
    /// Medium.
    P3,
    /// Low.
    P4,
}

impl Priority {
    /// Parses `P1`..`P4`.
    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "P1" => Some(Priority::P1),
            "P2" => Some(Priority::P2),
            "P3" => Some(Priority::P3),
            "P4" => Some(Priority::P4),
            _ => None,
        }
    }
    /// `"P1"`..`"P4"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Targets for one priority.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Business time to first response.
    pub response: Option<Dur>,
    /// Business time to resolution.
    pub resolution: Option<Dur>,
}

/// `[[slas]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// SLA id.
    pub id: Spanned<String>,
    /// Customer it applies to.
    pub customer: Spanned<String>,
    /// Calendar id, or `24x7`.
    #[serde(default = "default_calendar")]
    pub calendar: Spanned<String>,
    /// Ticket kinds it covers (`incident`, `request`).
    pub kinds: Spanned<Vec<String>>,
    /// Statuses that pause the resolution clock.
    #[serde(default)]
    pub pause_statuses: Vec<String>,
    /// Fraction of the target at which a warning fires.
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
    /// Targets by priority.
    #[serde(default)]
    pub targets: BTreeMap<Priority, Targets>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[engine]`.
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[kafka]`, needed by `run`.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// `[api]`, needed by `run` and `demo`.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// Customers.
    #[serde(default)]
    pub customers: Vec<CustomerConfig>,
    /// Business calendars.
    #[serde(default)]
    pub calendars: Vec<CalendarConfig>,
    /// Services.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// SLAs.
    #[serde(default)]
    pub slas: Vec<SlaConfig>,
    /// `[ingest]`: mapping of Alertmanager and Jira payloads.
    #[serde(default)]
    pub ingest: crate::ingest::IngestConfig,
    /// `[delivery]`: outbox and retries.
    #[serde(default)]
    pub delivery: crate::sink::delivery::DeliverySettings,
    /// `[[deliveries]]`: incident delivery targets (PagerDuty, webhooks).
    #[serde(default)]
    pub deliveries: Vec<crate::sink::delivery::DeliveryConfig>,
    /// SHA-256 hex of the file's bytes, quoted in reports.
    #[serde(skip)]
    pub sha256: String,
    /// SHA-256 hex of the settings that shape engine state (everything but
    /// `[kafka]`, `[api]`, `[ingest]`, `[delivery]`, `[[deliveries]]` and
    /// `engine.{data_dir, checkpoint_interval, idle_timeout, max_future,
    /// shutdown_grace, checkpoint_key_env}`): checkpoints are
    /// only valid under the same value, on any instance.
    #[serde(skip)]
    pub engine_sha256: String,
    #[serde(skip)]
    service_index: HashMap<String, usize>,
    #[serde(skip)]
    customer_index: HashMap<String, usize>,
}

fn de_dates<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NaiveDate>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| de::Error::custom(format!("invalid date {s:?}, expected YYYY-MM-DD")))
        })
        .collect()
}

fn de_hours<'de, D: Deserializer<'de>>(d: D) -> Result<DayHours, D::Error> {
    let s = String::deserialize(d)?;
    parse_day_hours(&s).map_err(de::Error::custom)
}

/// Parses `"09:00-12:00,13:00-17:00"` into sorted, non-overlapping minute ranges.
pub fn parse_day_hours(s: &str) -> Result<DayHours, String> {
    let mut out: DayHours = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let bad = || format!("invalid hours {part:?}, expected HH:MM-HH:MM");
        let (a, b) = part.trim().split_once('-').ok_or_else(bad)?;
        let start = parse_hhmm(a).ok_or_else(bad)?;
        let end = parse_hhmm(b).ok_or_else(bad)?;
        if end <= start {
            return Err(format!("hours {part:?} end before they start"));
        }
        out.push((start, end));
    }
    out.sort_unstable();
    if out.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(format!("hours {s:?} overlap"));
    }
    Ok(out)
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 24 * 60).then_some(total)
}

/// Hash of the engine-relevant sections, independent of formatting, comments and
/// key order (the parsed table, serialised canonically).
fn engine_sha256(text: &str) -> String {
    let mut table: toml::Table = text.parse().unwrap_or_default();
    for k in ["kafka", "api", "ingest", "delivery", "deliveries"] {
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
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            invalid(line, String::new(), e.message().to_owned())
        })?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map_or(0, |s| line_of(text, s.start));
            invalid(line, key, inner.message().to_owned())
        })?;
        config.sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        config.engine_sha256 = engine_sha256(text);
        config
            .validate()
            .map_err(|(span, key, message)| invalid(line_of(text, span.start), key, message))?;
        Ok(config)
    }

    /// Cross-field checks; returns the span, key path and message of the first fault.
    fn validate(&mut self) -> Result<(), (std::ops::Range<usize>, String, String)> {
        let e = |span: std::ops::Range<usize>, key: String, msg: String| Err((span, key, msg));
        let eng = &self.engine;
        for (name, d) in [
            ("engine.bucket", eng.bucket),
            ("engine.checkpoint_interval", eng.checkpoint_interval),
            ("engine.idle_timeout", eng.idle_timeout),
            ("engine.dedup_horizon", eng.dedup_horizon),
            ("engine.shutdown_grace", eng.shutdown_grace),
            ("engine.retention", eng.retention),
        ] {
            if d.0 <= 0 {
                return e(0..0, name.into(), "must be greater than zero".into());
            }
        }
        let mut customers = HashSet::new();
        for (i, c) in self.customers.iter().enumerate() {
            if c.id.get_ref().is_empty() || !customers.insert(c.id.get_ref().clone()) {
                return e(
                    c.id.span(),
                    format!("customers[{i}].id"),
                    format!("empty or duplicate customer id {:?}", c.id.get_ref()),
                );
            }
        }
        let mut calendars: HashSet<String> = HashSet::from([BUILTIN_24X7.to_owned()]);
        for (i, c) in self.calendars.iter().enumerate() {
            if !calendars.insert(c.id.get_ref().clone()) {
                return e(
                    c.id.span(),
                    format!("calendars[{i}].id"),
                    format!("duplicate calendar id {:?}", c.id.get_ref()),
                );
            }
        }
        let mut services = HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let key = |k: &str| format!("services[{i}].{k}");
            if s.id.get_ref().is_empty() || !services.insert(s.id.get_ref().clone()) {
                return e(
                    s.id.span(),
                    key("id"),
                    format!("empty or duplicate service id {:?}", s.id.get_ref()),
                );
            }
            if !customers.contains(s.customer.get_ref()) {
                return e(
                    s.customer.span(),
                    key("customer"),
                    format!("unknown customer {:?}", s.customer.get_ref()),
                );
            }
            if !(0.0..=100.0).contains(&s.availability_target) {
                return e(
                    s.id.span(),
                    key("availability_target"),
                    "must be between 0 and 100".into(),
                );
            }
            if !(s.capacity_threshold > 0.0 && s.capacity_threshold.is_finite()) {
                return e(
                    s.id.span(),
                    key("capacity_threshold"),
                    "must be a positive number".into(),
                );
            }
            for (k, d) in [
                ("stale_after", s.stale_after),
                ("forecast_window", s.forecast_window),
            ] {
                if d.0 <= 0 {
                    return e(s.id.span(), key(k), "must be greater than zero".into());
                }
            }
        }
        let mut slas = HashSet::new();
        for (i, s) in self.slas.iter().enumerate() {
            let key = |k: &str| format!("slas[{i}].{k}");
            if !slas.insert(s.id.get_ref().clone()) {
                return e(
                    s.id.span(),
                    key("id"),
                    format!("duplicate SLA id {:?}", s.id.get_ref()),
                );
            }
            if !customers.contains(s.customer.get_ref()) {
                return e(
                    s.customer.span(),
                    key("customer"),
                    format!("unknown customer {:?}", s.customer.get_ref()),
                );
            }
            if !calendars.contains(s.calendar.get_ref()) {
                return e(
                    s.calendar.span(),
                    key("calendar"),
                    format!("unknown calendar {:?}", s.calendar.get_ref()),
                );
            }
            if let Some(k) = s
                .kinds
                .get_ref()
                .iter()
                .find(|k| !matches!(k.as_str(), "incident" | "request"))
            {
                return e(
                    s.kinds.span(),
                    key("kinds"),
                    format!("unknown ticket kind {k:?} (incident | request)"),
                );
            }
            if !(s.warn_at > 0.0 && s.warn_at <= 1.0) {
                return e(s.id.span(), key("warn_at"), "must be in (0, 1]".into());
            }
        }
        if let Some(api) = &self.api {
            for (i, t) in api.tokens.iter().enumerate() {
                let h = t.sha256.get_ref();
                if h.len() != 64
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return e(
                        t.sha256.span(),
                        format!("api.tokens[{i}].sha256"),
                        "must be 64 lower-case hex characters (SHA-256 of the token)".into(),
                    );
                }
                if let Some(c) = &t.customer
                    && !customers.contains(c.get_ref())
                {
                    return e(
                        c.span(),
                        format!("api.tokens[{i}].customer"),
                        format!("unknown customer {:?}", c.get_ref()),
                    );
                }
                if let (Some(s), Some(_)) = (&t.scope, &t.customer) {
                    return e(
                        s.span(),
                        format!("api.tokens[{i}].scope"),
                        "an ingest token cannot also be limited to a customer (use `customers`)"
                            .into(),
                    );
                }
                if let Some(list) = &t.customers {
                    let key = format!("api.tokens[{i}].customers");
                    if t.scope.is_none() {
                        return e(
                            list.span(),
                            key,
                            "only an ingest token (scope = \"ingest\") takes `customers`".into(),
                        );
                    }
                    if let Some(c) = list.get_ref().iter().find(|c| !customers.contains(*c)) {
                        return e(list.span(), key, format!("unknown customer {c:?}"));
                    }
                }
            }
        }
        self.validate_deliveries(&customers)?;
        self.service_index = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.get_ref().clone(), i))
            .collect();
        self.customer_index = self
            .customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.get_ref().clone(), i))
            .collect();
        Ok(())
    }

    /// `[[deliveries]]` and `[delivery]` checks.
    fn validate_deliveries(
        &self,
        customers: &HashSet<String>,
    ) -> Result<(), (std::ops::Range<usize>, String, String)> {
        use crate::engine::incidents::RULES;
        use crate::sink::delivery::DeliveryType;
        let d = &self.delivery;
        if d.max_pending == 0
            || d.timeout.0 <= 0
            || d.min_backoff.0 <= 0
            || d.max_backoff < d.min_backoff
        {
            return Err((
                0..0,
                "delivery".into(),
                "max_pending, timeout and min_backoff must be positive, max_backoff ≥ min_backoff"
                    .into(),
            ));
        }
        let mut ids = HashSet::new();
        for (i, t) in self.deliveries.iter().enumerate() {
            let key = |k: &str| format!("deliveries[{i}].{k}");
            let id = t.id.get_ref();
            let id_ok = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok || !ids.insert(id.clone()) {
                return Err((
                    t.id.span(),
                    key("id"),
                    format!("empty, duplicate or not [A-Za-z0-9_-]: {id:?}"),
                ));
            }
            match &t.url {
                Some(u)
                    if !(u.get_ref().starts_with("http://")
                        || u.get_ref().starts_with("https://")) =>
                {
                    return Err((
                        u.span(),
                        key("url"),
                        "must be an http:// or https:// URL".into(),
                    ));
                }
                None if t.kind == DeliveryType::Webhook => {
                    return Err((t.id.span(), key("url"), "a webhook needs a url".into()));
                }
                _ => {}
            }
            if t.kind == DeliveryType::Pagerduty
                && t.routing_key.is_none() == t.routing_key_env.is_none()
            {
                return Err((
                    t.id.span(),
                    key("routing_key"),
                    "pagerduty needs exactly one of routing_key and routing_key_env".into(),
                ));
            }
            if let Some(c) = t
                .customers
                .iter()
                .find(|c| !customers.contains(c.get_ref()))
            {
                return Err((
                    c.span(),
                    key("customers"),
                    format!("unknown customer {:?}", c.get_ref()),
                ));
            }
            if let Some(r) = t
                .rules
                .iter()
                .find(|r| !RULES.contains(&r.get_ref().as_str()))
            {
                return Err((
                    r.span(),
                    key("rules"),
                    format!(
                        "unknown rule {:?} (one of {})",
                        r.get_ref(),
                        RULES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The service with this id, if configured.
    pub fn service(&self, id: &str) -> Option<&ServiceConfig> {
        self.service_index.get(id).map(|&i| &self.services[i])
    }

    /// The customer with this id, if configured.
    pub fn customer(&self, id: &str) -> Option<&CustomerConfig> {
        self.customer_index.get(id).map(|&i| &self.customers[i])
    }

    /// The `[kafka]` section, or its defaults.
    pub fn kafka_or_default(&self) -> KafkaConfig {
        self.kafka.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
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
        let (line, _, _) = err_of("[engine]\nbucket = \n");
        assert_eq!(line, 2);
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
    }

    #[test]
    fn builtin_calendar_is_default() {
        let c = parse(&GOOD.replace("calendar = \"office\"\n", "")).unwrap();
        assert_eq!(c.slas[0].calendar.get_ref(), BUILTIN_24X7);
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
