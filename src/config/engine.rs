//! `[engine]` and the value types every section uses (durations, timezones).

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::time::{MAX_DURATION_MS, Millis};

/// A duration from a humantime string (`"90s"`, `"1d 2h"`), held in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Millis);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Dur::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Dur {
    /// Parses a humantime string, refusing more than 100 years.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let std =
            humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))?;
        match Millis::try_from(std.as_millis()) {
            Ok(ms) if ms <= MAX_DURATION_MS => Ok(Dur(ms)),
            _ => Err(format!("duration {s:?} is too large (at most 100 years)")),
        }
    }

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
    /// Longest maintenance or exclusion window; a longer one is `malformed`
    /// (contract section 13).
    pub max_window: Dur,
    /// An outage starting this soon after a change on its service is induced
    /// by it (contract section 15).
    pub change_window: Dur,
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
            max_window: Dur(31 * 86_400_000),
            change_window: Dur(3_600_000),
            idle_timeout: Dur(10_000),
            data_dir: PathBuf::from("./slaflow-data"),
            checkpoint_interval: Dur(10_000),
            retention: Dur(400 * 86_400_000),
            shutdown_grace: Dur(30_000),
            checkpoint_key_env: None,
        }
    }
}
