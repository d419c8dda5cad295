//! Event-time primitives: integer milliseconds since the Unix epoch, parsing of the
//! two input formats and the single output format.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch (UTC). All arithmetic in slaflow uses this.
pub type Millis = i64;

/// Error for a time value that is neither RFC 3339 nor epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad time {value:?}: expected RFC 3339 (e.g. 2026-11-02T10:00:00Z) or integer epoch milliseconds"
)]
pub struct TimeError {
    /// The offending text.
    pub value: String,
}

/// Parses an RFC 3339 timestamp with any offset into epoch milliseconds.
/// Sub-millisecond digits are truncated (towards the past).
pub fn parse_rfc3339(s: &str) -> Result<Millis, TimeError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| TimeError {
            value: s.to_owned(),
        })
}

/// Parses a command-line or API time: RFC 3339, integer epoch milliseconds, or a
/// bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_flexible(s: &str) -> Result<Millis, TimeError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    parse_rfc3339(s)
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
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_rfc3339("2026-13-02T10:00:00Z").is_err());
        assert!(parse_rfc3339("2026-11-02 10:00").is_err());
    }
}
