//! `[[customers]]`, `[[calendars]]`, `[[services]]` and `[[slas]]`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{Dur, Tz};
use crate::model::{Priority, TicketKind};

/// `[[customers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerConfig {
    /// Customer id.
    pub id: String,
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
    pub id: String,
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
    pub id: String,
    /// Owning customer.
    pub customer: String,
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
    /// Calendar id of the agreed service hours (contract section 13): time
    /// outside them is neither measured nor down.
    #[serde(default = "default_calendar")]
    pub service_hours: String,
}

/// `[[credits]]`: service credit tiers of one customer (contract section 13).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditsConfig {
    /// The customer.
    pub customer: String,
    /// Tiers: the largest `credit_pct` among those whose `below` the
    /// availability is under applies.
    pub tiers: Vec<CreditTier>,
}

/// One service credit tier.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditTier {
    /// Applies when the availability is strictly below this percentage.
    pub below: f64,
    /// Credit, percent of the service fee.
    pub credit_pct: f64,
}

impl CreditsConfig {
    /// The credit for an availability (contract section 13): the largest
    /// `credit_pct` among tiers with `availability_pct < below`, 0 if none.
    pub fn credit_for(&self, availability_pct: f64) -> f64 {
        (self.tiers.iter())
            .filter(|t| availability_pct < t.below)
            .map(|t| t.credit_pct)
            .fold(0.0, f64::max)
    }
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
fn default_calendar() -> String {
    BUILTIN_24X7.to_owned()
}

/// The built-in always-open calendar.
pub const BUILTIN_24X7: &str = "24x7";

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
    pub id: String,
    /// Customer it applies to.
    pub customer: String,
    /// Calendar id, or `24x7`.
    #[serde(default = "default_calendar")]
    pub calendar: String,
    /// Ticket kinds it covers (`incident`, `request`).
    pub kinds: Vec<TicketKind>,
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
