//! Structured log records and where they are stored.
//!
//! Each invocation collects JSONL lines — `{ts, level, run_id, invocation,
//! event, fields}` — and the shell writes them as one R2 object at
//! `logs/YYYY/MM/DD/{service}-{runId}-{timestamp}.jsonl`, the last line
//! being the invocation's summary. Configured secrets are scrubbed from every
//! line before it leaves the core.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    pub ts: String,
    pub level: Level,
    pub run_id: String,
    pub invocation: String,
    pub event: String,
    pub fields: Value,
}

/// Collects an invocation's records and renders them as JSONL.
#[derive(Debug, Clone)]
pub struct LogBook {
    run_id: String,
    invocation: String,
    min_level: Level,
    secrets: Vec<String>,
    records: Vec<LogRecord>,
}

const REDACTED: &str = "[redacted]";

impl LogBook {
    pub fn new(run_id: &str, invocation: &str, min_level: Level) -> Self {
        LogBook {
            run_id: run_id.to_string(),
            invocation: invocation.to_string(),
            min_level,
            secrets: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Values that must never appear in a log (tokens). Short values are
    /// ignored so that redaction cannot mangle ordinary words.
    pub fn with_secrets<I: IntoIterator<Item = String>>(mut self, secrets: I) -> Self {
        self.secrets = secrets.into_iter().filter(|s| s.len() >= 8).collect();
        self
    }

    pub fn set_run_id(&mut self, run_id: &str) {
        self.run_id = run_id.to_string();
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn push(&mut self, now_ms: i64, level: Level, event: &str, fields: Value) {
        if level < self.min_level {
            return;
        }
        self.records.push(LogRecord {
            ts: iso8601(now_ms),
            level,
            run_id: self.run_id.clone(),
            invocation: self.invocation.clone(),
            event: event.to_string(),
            fields,
        });
    }

    /// Always recorded, whatever the level: the invocation's summary.
    pub fn push_summary(&mut self, now_ms: i64, fields: Value) {
        self.records.push(LogRecord {
            ts: iso8601(now_ms),
            level: Level::Info,
            run_id: self.run_id.clone(),
            invocation: self.invocation.clone(),
            event: "summary".to_string(),
            fields,
        });
    }

    pub fn records(&self) -> &[LogRecord] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The JSONL text, secrets scrubbed.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            let line = serde_json::to_string(r).unwrap_or_else(|_| String::from("{}"));
            out.push_str(&self.scrub(&line));
            out.push('\n');
        }
        out
    }

    fn scrub(&self, line: &str) -> String {
        let mut s = line.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), REDACTED);
            }
            // The JSON-escaped form, should a secret contain escapable chars.
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if escaped != secret && s.contains(escaped) {
                s = s.replace(escaped, REDACTED);
            }
        }
        s
    }
}

/// `fields` helper: a JSON object from pairs.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// `logs/YYYY/MM/DD/{service}-{runId}-{timestamp}.jsonl`, `timestamp` in Unix ms.
pub fn log_key(service: &str, run_id: &str, now_ms: i64) -> String {
    let day = utc(now_ms).format("%Y/%m/%d");
    format!("logs/{day}/{service}-{run_id}-{now_ms}.jsonl")
}

/// The `logs/YYYY/MM/DD/` prefix of a real calendar day written `YYYY-MM-DD`.
pub fn log_prefix_for_date(date: &str) -> Option<String> {
    Some(calendar_day(date)?.format("logs/%Y/%m/%d/").to_string())
}

/// ISO-8601 UTC with milliseconds: `2026-11-23T15:40:00.000Z`.
pub fn iso8601(ms: i64) -> String {
    utc(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse an RFC 3339 timestamp into Unix ms: GitHub's `YYYY-MM-DDTHH:MM:SSZ`,
/// with or without a fraction (kept to the millisecond) and with any UTC
/// offset. Anything else, or a day the calendar lacks, is `None`.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A real calendar day written exactly `YYYY-MM-DD` (chrono's `%Y-%m-%d`
/// alone would also take `2026-1-1` or `+2026-01-01`).
fn calendar_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

/// The UTC instant of a Unix-ms timestamp, clamped to chrono's range
/// (about 262,000 years either side of year 0).
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
    fn log_key_follows_the_dated_layout() {
        // 2026-11-23T15:40:00Z
        let ms = 1_795_448_400_000;
        assert_eq!(iso8601(ms), "2026-11-23T15:40:00.000Z");
        assert_eq!(
            log_key("scraper", "run1", ms),
            format!("logs/2026/11/23/scraper-run1-{ms}.jsonl")
        );
        assert_eq!(parse_iso8601("2026-11-23T15:40:00Z"), Some(ms));
    }

    #[test]
    fn secrets_never_reach_the_jsonl() {
        let mut book = LogBook::new("r", "i", Level::Debug)
            .with_secrets(vec!["ghp_supersecret123".to_string()]);
        book.push(
            0,
            Level::Info,
            "auth",
            fields([("header", "Bearer ghp_supersecret123".into())]),
        );
        let text = book.to_jsonl();
        assert!(!text.contains("ghp_supersecret123"));
        assert!(text.contains(REDACTED));
    }

    #[test]
    fn records_below_the_level_are_dropped_but_summary_is_kept() {
        let mut book = LogBook::new("r", "i", Level::Warn);
        book.push(0, Level::Info, "noise", Value::Null);
        book.push_summary(0, Value::Null);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn dates_parse_for_log_prefixes() {
        assert_eq!(
            log_prefix_for_date("2026-11-23").as_deref(),
            Some("logs/2026/11/23/")
        );
        assert_eq!(log_prefix_for_date("2026-13-01"), None);
        assert_eq!(log_prefix_for_date("../etc"), None);
    }

    #[test]
    fn log_prefixes_exist_only_for_real_days() {
        assert_eq!(
            log_prefix_for_date("2024-02-29").as_deref(),
            Some("logs/2024/02/29/")
        );
        assert_eq!(log_prefix_for_date("2023-02-29"), None, "not a leap year");
        assert_eq!(log_prefix_for_date("1900-02-29"), None, "century rule");
        assert_eq!(
            log_prefix_for_date("2000-02-29").as_deref(),
            Some("logs/2000/02/29/"),
            "400-year rule"
        );
        assert_eq!(log_prefix_for_date("2026-04-31"), None);
        assert_eq!(log_prefix_for_date("2026-1-01"), None);
        assert_eq!(log_prefix_for_date("+026-01-01"), None);
        assert_eq!(log_prefix_for_date("2026-01-01/"), None);
        assert_eq!(log_prefix_for_date(""), None);
    }

    #[test]
    fn log_keys_change_day_at_utc_midnight() {
        // 2024-02-29T23:59:59.999Z, then the next millisecond.
        let last = 1_709_251_199_999;
        assert_eq!(
            log_key("processor", "b", last),
            format!("logs/2024/02/29/processor-b-{last}.jsonl")
        );
        assert_eq!(
            log_key("processor", "b", last + 1),
            format!("logs/2024/03/01/processor-b-{}.jsonl", last + 1)
        );
        assert_eq!(
            log_key("scraper", "r", -1),
            "logs/1969/12/31/scraper-r--1.jsonl"
        );
    }

    #[test]
    fn timestamps_keep_milliseconds_and_honour_offsets() {
        let ms = 1_795_448_400_000; // 2026-11-23T15:40:00Z
        assert_eq!(parse_iso8601("2026-11-23T15:40:00.123Z"), Some(ms + 123));
        assert_eq!(
            parse_iso8601("2026-11-23T15:40:00.123999Z"),
            Some(ms + 123),
            "sub-millisecond digits are truncated"
        );
        assert_eq!(parse_iso8601("2026-11-23T17:40:00+02:00"), Some(ms));
        assert_eq!(parse_iso8601("2026-11-23T10:10:00-05:30"), Some(ms));
        assert_eq!(parse_iso8601("2026-11-24T00:40:00.5+09:00"), Some(ms + 500));
        assert_eq!(
            parse_iso8601("2024-02-29T12:00:00Z"),
            Some(1_709_208_000_000)
        );
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn malformed_or_impossible_timestamps_are_rejected() {
        for bad in [
            "",
            "yesterday",
            "2026-11-23",
            "2026-11-23T15:40:00",
            "2026-11-23T15:40Z",
            "2023-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T15:60:00Z",
            "2026-11-23T15:40:00+25:00",
            "2026-11-23T15:40:00Zjunk",
            "20261123T154000Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn iso8601_round_trips_through_the_parser() {
        for ms in [
            0,
            -1,
            951_782_400_000,     // 2000-02-29T00:00:00Z
            1_709_251_199_999,   // 2024-02-29T23:59:59.999Z
            1_795_448_400_123,   // 2026-11-23T15:40:00.123Z
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        ] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms), "{}", iso8601(ms));
        }
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
    }
}
