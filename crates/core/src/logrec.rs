//! Structured log records and where they are stored.
//!
//! Each invocation collects JSONL lines — `{ts, level, run_id, invocation,
//! event, fields}` — and the shell writes them as one R2 object at
//! `logs/YYYY/MM/DD/{service}-{runId}-{timestamp}.jsonl`, the last line
//! being the invocation's summary. Configured secrets are scrubbed from every
//! line before it leaves the core.

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
    let (y, m, d) = civil_date(now_ms);
    format!("logs/{y:04}/{m:02}/{d:02}/{service}-{run_id}-{now_ms}.jsonl")
}

/// The `logs/YYYY/MM/DD/` prefix of a date given as `YYYY-MM-DD`.
pub fn log_prefix_for_date(date: &str) -> Option<String> {
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return None;
    }
    let y: u32 = parts[0].parse().ok()?;
    let m: u32 = parts[1].parse().ok()?;
    let d: u32 = parts[2].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(format!("logs/{y:04}/{m:02}/{d:02}/"))
}

/// ISO-8601 UTC with milliseconds.
pub fn iso8601(ms: i64) -> String {
    let (y, mo, d) = civil_date(ms);
    let day_ms = ms.rem_euclid(86_400_000);
    let (h, mi, s, milli) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parse `YYYY-MM-DDTHH:MM:SS(.fff)Z` into Unix ms (GitHub's timestamps).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400_000 + (h * 3600 + mi * 60 + sec) * 1000)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_date(ms: i64) -> (i64, i64, i64) {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
}
