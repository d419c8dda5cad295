//! Event-time primitives: integer milliseconds since the Unix epoch, parsing of the
//! two input formats and the single output format.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch (UTC). All arithmetic in slaflow uses this.
pub type Millis = i64;

/// The earliest instant slaflow accepts anywhere: 0000-01-01T00:00:00.000Z.
pub const MIN_MS: Millis = -62_167_219_200_000;
/// The latest instant slaflow accepts anywhere: 9999-12-31T23:59:59.999Z.
///
/// Every accepted instant is printable as RFC 3339, and any instant plus or minus
/// any accepted duration (at most [`MAX_DURATION_MS`]) stays far inside `i64`.
pub const MAX_MS: Millis = 253_402_300_799_999;
/// The longest duration accepted from config or a request: 100 years.
pub const MAX_DURATION_MS: Millis = 100 * 366 * 86_400_000;

/// Error for a time value that is neither RFC 3339 nor epoch milliseconds (nor,
/// where accepted, a date), or lies outside years 0000–9999.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    /// The offending text.
    pub value: String,
    /// Whether a bare `YYYY-MM-DD` was accepted too (command line and API).
    pub dates: bool,
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = if self.dates {
            ", a date YYYY-MM-DD"
        } else {
            ""
        };
        write!(
            f,
            "bad time {:?}: expected RFC 3339 (e.g. 2026-11-02T10:00:00Z){date} or integer epoch milliseconds, within years 0000-9999",
            self.value
        )
    }
}

impl std::error::Error for TimeError {}

/// Accepts epoch milliseconds within [`MIN_MS`, `MAX_MS`].
pub fn checked_ms(ms: i64) -> Result<Millis, TimeError> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(TimeError {
            value: ms.to_string(),
            dates: false,
        })
    }
}

/// For checks of restored state: `Err` naming `what` unless `t` is an accepted instant.
pub fn check_instant(what: &str, t: Millis) -> Result<(), String> {
    checked_ms(t)
        .map(|_| ())
        .map_err(|_| format!("{what} {t} is not an instant within years 0000-9999"))
}

/// For checks of restored state: `Err` naming `what` unless `d` is a duration in
/// `[0, MAX_DURATION_MS]`.
pub fn check_duration(what: &str, d: Millis) -> Result<(), String> {
    if (0..=MAX_DURATION_MS).contains(&d) {
        Ok(())
    } else {
        Err(format!("{what} {d} ms is not a duration"))
    }
}

/// Parses an RFC 3339 timestamp with any offset into epoch milliseconds.
/// Sub-millisecond digits are truncated (towards the past).
pub fn parse_rfc3339(s: &str) -> Result<Millis, TimeError> {
    let err = || TimeError {
        value: s.to_owned(),
        dates: false,
    };
    let ms = DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| err())?;
    checked_ms(ms).map_err(|_| err())
}

/// Parses a command-line or API time: RFC 3339, integer epoch milliseconds, or a
/// bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_flexible(s: &str) -> Result<Millis, TimeError> {
    let s = s.trim();
    let with_dates = |e: TimeError| TimeError { dates: true, ..e };
    if let Ok(ms) = s.parse::<i64>() {
        return checked_ms(ms).map_err(with_dates);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    parse_rfc3339(s).map_err(with_dates)
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision,
/// e.g. `2026-11-02T10:00:00.000Z`.
pub fn format_ms(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        // Out of chrono's range: still emit something unambiguous rather than panic.
        None => ms.to_string(),
    }
}

/// Converts a millisecond duration to seconds with millisecond precision, for JSON output.
pub fn ms_to_s(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

/// Current wall-clock time in epoch milliseconds. Only drivers call this; the engine
/// and the event-time layer receive time as an argument.
pub fn wall_now() -> Millis {
    Utc::now().timestamp_millis()
}

/// The UTC calendar month containing `t`: `[start, end)`.
pub fn month_of(t: Millis) -> (Millis, Millis) {
    use chrono::{Datelike, TimeZone, Utc};
    let Some(d) = Utc.timestamp_millis_opt(t).single() else {
        return (t, t.saturating_add(1));
    };
    let start = Utc
        .with_ymd_and_hms(d.year(), d.month(), 1, 0, 0, 0)
        .single();
    let (ny, nm) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    let end = Utc.with_ymd_and_hms(ny, nm, 1, 0, 0, 0).single();
    match (start, end) {
        (Some(s), Some(e)) => (s.timestamp_millis(), e.timestamp_millis()),
        _ => (t, t.saturating_add(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets_agree() {
        let z = parse_rfc3339("2026-11-02T10:00:00Z").unwrap();
        let plus = parse_rfc3339("2026-11-02T11:00:00+01:00").unwrap();
        let frac = parse_rfc3339("2026-11-02T10:00:00.1239Z").unwrap();
        assert_eq!(z, 1_793_613_600_000);
        assert_eq!(z, plus);
        assert_eq!(frac, z + 123);
    }

    #[test]
    fn format_is_utc_millis() {
        assert_eq!(format_ms(1_793_613_600_000), "2026-11-02T10:00:00.000Z");
        assert_eq!(format_ms(1_793_613_600_007), "2026-11-02T10:00:00.007Z");
    }

    #[test]
    fn flexible_accepts_three_forms() {
        assert_eq!(parse_flexible("1793613600000").unwrap(), 1_793_613_600_000);
        assert_eq!(parse_flexible("2026-11-02").unwrap(), 1_793_577_600_000);
        assert_eq!(
            parse_flexible("2026-11-02T10:00:00Z").unwrap(),
            1_793_613_600_000
        );
        assert!(parse_flexible("yesterday").is_err());
        // The error lists every form accepted where it is made.
        let flexible = parse_flexible("2026/11/01").unwrap_err().to_string();
        assert!(flexible.contains("YYYY-MM-DD"), "{flexible}");
        let event = parse_rfc3339("2026-11-01").unwrap_err().to_string();
        assert!(!event.contains("YYYY-MM-DD"), "{event}");
    }

    #[test]
    fn instants_outside_years_0000_to_9999_are_refused() {
        assert_eq!(parse_flexible(&MAX_MS.to_string()), Ok(MAX_MS));
        assert_eq!(parse_flexible(&MIN_MS.to_string()), Ok(MIN_MS));
        for bad in [
            "-9000000000000000000",
            "9000000000000000000",
            "253402300800000",
        ] {
            assert!(parse_flexible(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339("0000-01-01T00:00:00+01:00").is_err());
        assert_eq!(format_ms(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ms(MIN_MS), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_rfc3339("2026-13-02T10:00:00Z").is_err());
        assert!(parse_rfc3339("2026-11-02 10:00").is_err());
    }
}
