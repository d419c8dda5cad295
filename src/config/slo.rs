//! `[[slos]]`: request-based SLOs counted in events (contract section 14).

use serde::Deserialize;
use serde::de::Deserializer;

use super::WrittenDur;
use crate::time::Millis;

/// The window an SLO is judged over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SloWindow {
    /// The last `ms` before the watermark (`"28d"`).
    Rolling(WrittenDur),
    /// The UTC calendar month of the watermark (`"month"`).
    Month,
}

impl SloWindow {
    /// The window as written in the config (also the metrics' `window` label).
    pub fn text(&self) -> &str {
        match self {
            SloWindow::Rolling(d) => &d.text,
            SloWindow::Month => "month",
        }
    }

    /// Its length in ms for a rolling window.
    pub fn rolling_ms(&self) -> Option<Millis> {
        match self {
            SloWindow::Rolling(d) => Some(d.ms),
            SloWindow::Month => None,
        }
    }
}

impl<'de> Deserialize<'de> for SloWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "month" {
            return Ok(SloWindow::Month);
        }
        let ms = super::Dur::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or \"month\"")))?
            .0;
        Ok(SloWindow::Rolling(WrittenDur { ms, text }))
    }
}

/// One `[[slos]]` entry: the share of good events among all events of a
/// service's counters must reach `objective` percent over `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// SLO id (letters, digits, `-_.`), part of the incident key `{slo}/{alert}`.
    pub id: String,
    /// The service whose counters it reads.
    pub service: String,
    /// Objective, percent of good events.
    pub objective: f64,
    /// Rolling duration or `"month"`.
    pub window: SloWindow,
    /// Counter name of all events.
    pub total: String,
    /// Counter name of bad events (exactly one of `bad` and `good`).
    #[serde(default)]
    pub bad: Option<String>,
    /// Counter name of good events.
    #[serde(default)]
    pub good: Option<String>,
}

/// Which counter an SLO's good/bad side reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloSide<'a> {
    /// Bad events counted directly.
    Bad(&'a str),
    /// Good events counted: bad = clamp(total − good, 0, total).
    Good(&'a str),
}

impl SloConfig {
    /// The SLO's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its service's id.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Its bad or good counter (validation guarantees exactly one).
    pub fn side(&self) -> SloSide<'_> {
        match (&self.bad, &self.good) {
            (Some(b), _) => SloSide::Bad(b),
            (None, Some(g)) => SloSide::Good(g),
            (None, None) => SloSide::Bad(""),
        }
    }

    /// `1 − objective/100`: the share of events allowed to be bad.
    pub fn budget_ratio(&self) -> f64 {
        1.0 - self.objective / 100.0
    }
}
