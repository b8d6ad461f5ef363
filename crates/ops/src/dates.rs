//! Calendar arithmetic for Unix-millisecond timestamps, in UTC, without a
//! time-zone database: the admin API speaks Unix ms and `YYYY-MM-DD` days.
//! The calendar is chrono's (proleptic Gregorian); instants outside its range
//! (about 262,000 years either side of year 0) are clamped to its ends.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// `(year, month, day)` of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let day = utc(days.saturating_mul(86_400_000)).date_naive();
    (i64::from(day.year()), day.month(), day.day())
}

/// The UTC day of a Unix-ms timestamp, as `YYYY-MM-DD`.
pub fn date_of_ms(ms: i64) -> String {
    utc(ms).format("%Y-%m-%d").to_string()
}

/// A Unix-ms timestamp as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn datetime_of_ms(ms: i64) -> String {
    utc(ms).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A duration in milliseconds, short and readable: `850ms`, `12s`,
/// `3m 05s`, `2h 07m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1_000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3_600, secs % 3_600 / 60),
    }
}

/// Whether `s` is a real calendar day written exactly `YYYY-MM-DD` (chrono's
/// `%Y-%m-%d` alone would also take `2026-1-1` or `+2026-01-01`).
pub fn is_valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shaped && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_days_follow_the_gregorian_rules() {
        assert!(is_valid_date("2000-02-29"), "400-year rule");
        assert!(!is_valid_date("1900-02-29"), "century rule");
        assert!(!is_valid_date("2100-02-29"));
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(civil_from_days(-25_509), (1900, 2, 28));
        assert_eq!(date_of_ms(1_709_251_199_999), "2024-02-29");
        assert_eq!(date_of_ms(1_709_251_200_000), "2024-03-01");
    }

    #[test]
    fn days_must_be_written_in_full() {
        for bad in [
            "",
            "2026-04-31",
            "2026-00-10",
            "2026-01-00",
            "2026-01-1",
            "2026/01/01",
            "2026-01-01 ",
            " 2026-01-01",
            "20260101",
            "２０２６-01-01",
        ] {
            assert!(!is_valid_date(bad), "{bad:?}");
        }
        assert!(is_valid_date("0001-01-01"));
        assert!(is_valid_date("9999-12-31"));
    }

    #[test]
    fn times_before_1970_fall_on_the_earlier_day() {
        assert_eq!(datetime_of_ms(-1), "1969-12-31 23:59:59");
        assert_eq!(datetime_of_ms(-86_400_000), "1969-12-31 00:00:00");
        assert_eq!(datetime_of_ms(999), "1970-01-01 00:00:00");
    }

    #[test]
    fn instants_past_the_calendar_clamp_to_its_ends() {
        assert_eq!(date_of_ms(i64::MIN), date_of_ms(i64::MIN / 2));
        assert_eq!(civil_from_days(i64::MAX).1, 12);
        assert_eq!(civil_from_days(i64::MAX).2, 31);
    }
}
