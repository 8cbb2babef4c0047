//! Time and date options of the command line (`--since`, `--until`, `--as-of`): each takes
//! `YYYY-MM-DD` (UTC), an RFC 3339 date-time (`2025-03-01T12:00:00Z`) or Unix seconds, and a
//! bad value is refused with the option's accepted formats and what is wrong with it. Times
//! shown to a user go through [`iso`] (ISO 8601, UTC).

use paytrace_indexer::labels::Date;

/// The formats every time option accepts, for messages.
pub const FORMATS: &str =
    "YYYY-MM-DD (UTC), an RFC 3339 date-time such as 2025-03-01T12:00:00Z, or Unix seconds";

enum Parsed {
    Day(Date),
    Instant(i64),
}

fn parse(s: &str) -> Result<Parsed, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map(Parsed::Instant)
            .map_err(|e| format!("invalid time {s:?}: {e} (expected {FORMATS})"));
    }
    if t.len() == 10 {
        return t
            .parse::<Date>()
            .map(Parsed::Day)
            .map_err(|e| format!("invalid date {s:?}: {e} (expected {FORMATS})"));
    }
    t.parse::<jiff::Timestamp>()
        .map(|ts| Parsed::Instant(ts.as_second()))
        .map_err(|e| format!("invalid time {s:?}: {e} (expected {FORMATS})"))
}

fn day_start(d: Date, s: &str) -> Result<i64, String> {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .map_err(|e| format!("invalid date {s:?}: {e}"))
}

fn unsigned(secs: i64, s: &str) -> Result<u64, String> {
    u64::try_from(secs).map_err(|_| format!("invalid time {s:?}: before 1970"))
}

/// A window start in Unix seconds: a day means its first second.
pub fn parse_since(s: &str) -> Result<u64, String> {
    match parse(s)? {
        Parsed::Day(d) => unsigned(day_start(d, s)?, s),
        Parsed::Instant(t) => unsigned(t, s),
    }
}

/// A window end in Unix seconds (inclusive): a day means its last second.
pub fn parse_until(s: &str) -> Result<u64, String> {
    match parse(s)? {
        Parsed::Day(d) => unsigned(day_start(d, s)? + 86_399, s),
        Parsed::Instant(t) => unsigned(t, s),
    }
}

/// A day: a date-time or Unix second means its UTC day.
pub fn parse_day(s: &str) -> Result<Date, String> {
    match parse(s)? {
        Parsed::Day(d) => Ok(d),
        Parsed::Instant(t) => paytrace_indexer::labels::date_of_unix(t)
            .ok_or_else(|| format!("invalid time {s:?}: out of range (expected {FORMATS})")),
    }
}

/// A point in time of a data file (a CSV's `block_timestamp`): Unix seconds, RFC 3339, or a
/// date-time without offset taken as UTC (`2025-03-01 12:00:00`, `2025-03-01 12:00:00 UTC`,
/// BigQuery's export form); a day means its first second.
pub fn parse_instant_utc(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(" UTC").unwrap_or(t);
    if let Ok(v) = parse_since(t) {
        return Ok(v);
    }
    let civil = t.strip_suffix('Z').unwrap_or(t).replace(' ', "T");
    let dt: jiff::civil::DateTime = civil
        .parse()
        .map_err(|e| format!("invalid time {s:?}: {e} (expected {FORMATS})"))?;
    let secs = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| format!("invalid time {s:?}: {e}"))?
        .timestamp()
        .as_second();
    unsigned(secs, s)
}

/// A block time as ISO 8601 UTC (the application layer's formatting).
pub use paytrace_app::explain::iso;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests only
mod tests {
    use super::*;
    use paytrace_indexer::Timestamp;

    #[test]
    fn data_file_times_and_iso_output() {
        for s in [
            "1740830400",
            "2025-03-01T12:00:00Z",
            "2025-03-01 12:00:00 UTC",
            "2025-03-01 12:00:00",
            "2025-03-01T12:00:00",
            "2025-03-01 13:00:00+01:00",
        ] {
            assert_eq!(parse_instant_utc(s), Ok(1_740_830_400), "{s}");
        }
        assert!(
            parse_instant_utc("soon")
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        assert_eq!(iso(Timestamp(1_740_830_400)), "2025-03-01T12:00:00Z");
    }

    #[test]
    fn accepts_days_date_times_and_unix_seconds() {
        assert_eq!(parse_since("2025-03-01"), Ok(1_740_787_200));
        assert_eq!(parse_until("2025-03-01"), Ok(1_740_787_200 + 86_399));
        assert_eq!(parse_since("2025-03-01T12:00:00Z"), Ok(1_740_830_400));
        assert_eq!(parse_until("2025-03-01T13:00:00+01:00"), Ok(1_740_830_400));
        assert_eq!(parse_since("1740787200"), Ok(1_740_787_200));
        assert_eq!(parse_day("2025-03-01").unwrap().to_string(), "2025-03-01");
        assert_eq!(parse_day("1740830400").unwrap().to_string(), "2025-03-01");
        assert_eq!(
            parse_day("2025-03-01T23:30:00-01:00").unwrap().to_string(),
            "2025-03-02"
        );
    }

    #[test]
    fn bad_values_say_what_is_wrong_and_the_formats() {
        for (s, what) in [
            ("2025-13-40", "month"),
            ("yesterday", "yesterday"),
            ("2025-03-01T25:00:00Z", "2025-03-01T25:00:00Z"),
            ("1969-12-31", "before 1970"),
        ] {
            let e = parse_since(s).unwrap_err();
            assert!(e.contains(what), "{s}: {e}");
            if what != "before 1970" {
                assert!(
                    e.contains("YYYY-MM-DD") && e.contains("Unix seconds"),
                    "{e}"
                );
            }
            assert!(!e.contains("invalid digit found in string"), "{e}");
        }
    }
}
