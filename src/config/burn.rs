//! `[[burn_alerts]]`: multiwindow, multi-burn-rate alerts on each service's
//! error budget (contract section 11).

use serde::Deserialize;
use serde::de::Deserializer;

use super::Dur;
use crate::model::Severity;

/// A duration as written in the config (`"3d"`), kept for incident details and
/// metric labels, with its value in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDur {
    /// Milliseconds.
    pub ms: crate::time::Millis,
    /// The text as written.
    pub text: String,
}

impl<'de> Deserialize<'de> for WrittenDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let Dur(ms) = Dur::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(WrittenDur { ms, text })
    }
}

/// One `[[burn_alerts]]` entry: the alert holds when the burn rate over both
/// windows is at least `factor`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnAlert {
    /// Alert name, part of the incident key `{service}/{name}`.
    pub name: String,
    /// The long window.
    pub long: WrittenDur,
    /// The short window (shorter than `long`).
    pub short: WrittenDur,
    /// Burn rate (multiple of the budget rate) at which it fires.
    pub factor: f64,
    /// Severity of its incidents.
    pub severity: Severity,
}

/// The contract's three alerts, used when `burn_alerts` is omitted: page when
/// 2 % of a 30-day budget burns in 1 h or 5 % in 6 h, open a ticket when 10 %
/// burns in 3 days.
pub(super) fn default_burn_alerts() -> Vec<BurnAlert> {
    const M: i64 = 60_000;
    let written = |(text, ms): (&str, i64)| WrittenDur {
        ms,
        text: text.to_owned(),
    };
    [
        (
            "page-fast",
            ("1h", 60 * M),
            ("5m", 5 * M),
            14.4,
            Severity::Critical,
        ),
        (
            "page-slow",
            ("6h", 360 * M),
            ("30m", 30 * M),
            6.0,
            Severity::Critical,
        ),
        (
            "ticket",
            ("3d", 4320 * M),
            ("6h", 360 * M),
            1.0,
            Severity::Minor,
        ),
    ]
    .into_iter()
    .map(|(name, long, short, factor, severity)| BurnAlert {
        name: name.to_owned(),
        long: written(long),
        short: written(short),
        factor,
        severity,
    })
    .collect()
}
