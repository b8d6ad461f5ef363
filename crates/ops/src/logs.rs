//! `ops logs`: the query, reading the NDJSON answer, one readable line per
//! record, truncation, and `--follow`'s de-duplication.
//!
//! Records are `{ts, level, run_id, invocation, event, fields}`; a `service`
//! field is shown when the API adds one, else the `--service` filter. A bound
//! being hit is signalled by a last line `{"event":"truncated", reason,
//! next_cursor, …}`, by the `x-contribot-truncated` (reason) and
//! `x-contribot-next-cursor` headers, or by both; either is enough.

use std::collections::HashMap;

use serde_json::Value;

use crate::client::{TextReply, TRUNCATED_HEADER};

/// The filters of one `/admin/logs` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub date: String,
    pub service: Option<String>,
    pub level: Option<String>,
    pub run: Option<String>,
    pub limit: Option<u32>,
    /// Where a truncated answer stopped (its `next_cursor`).
    pub cursor: Option<String>,
}

impl LogQuery {
    /// The query-string pairs, omitting unset filters.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("date", self.date.clone())];
        let optional = [
            ("service", self.service.clone()),
            ("level", self.level.clone()),
            ("run", self.run.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
            ("cursor", self.cursor.clone()),
        ];
        pairs.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        pairs
    }
}

/// One line of the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LogLine {
    /// A log record (kept as JSON: its fields are open-ended).
    Record(Value),
    /// The API's notice that a bound cut the answer short.
    Truncated(Value),
    /// A line that is not a JSON object, shown as it is.
    Raw(String),
}

/// Split an NDJSON answer into lines; blank lines are skipped.
pub fn parse_ndjson(text: &str) -> Vec<LogLine> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v @ Value::Object(_))
                if v.get("event").and_then(Value::as_str) == Some("truncated") =>
            {
                LogLine::Truncated(v)
            }
            Ok(v @ Value::Object(_)) => LogLine::Record(v),
            _ => LogLine::Raw(l.to_string()),
        })
        .collect()
}

fn text<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `ts LEVEL service/run event key=value …`; `-` stands for an absent
/// part; `service` is the record's own, else `default_service`.
pub fn format_record(record: &Value, default_service: Option<&str>) -> String {
    let ts = text(record, "ts").unwrap_or("-");
    let level = text(record, "level").unwrap_or("-").to_ascii_uppercase();
    let service = text(record, "service").or(default_service).unwrap_or("-");
    let run = text(record, "run_id").unwrap_or("-");
    let event = text(record, "event").unwrap_or("-");
    let fields = format_fields(record.get("fields").unwrap_or(&Value::Null));
    let line = format!("{ts} {level:<5} {service}/{run} {event} {fields}");
    line.trim_end().to_string()
}

/// `key=value` pairs in the object's key order; strings are quoted only
/// when they need it; nested values are compact JSON. A non-object is shown
/// as `fields=<json>`.
pub fn format_fields(fields: &Value) -> String {
    match fields {
        Value::Null => String::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", format_value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("fields={}", format_value(other)),
    }
}

fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) if needs_quotes(s) => format!("{s:?}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
}

/// An answer cut short by a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// What the API said about it: `reason=limit lines=5 …`.
    pub details: String,
    /// Where to continue, when the answer can be continued.
    pub next_cursor: Option<String>,
}

impl Truncation {
    /// Read the marker line and the headers; `None` when neither says the
    /// answer was cut short.
    pub fn of(lines: &[LogLine], reply: &TextReply) -> Option<Truncation> {
        let marker = lines.iter().rev().find_map(|l| match l {
            LogLine::Truncated(v) => Some(v),
            _ => None,
        });
        let header = reply.truncated_header.as_deref().map(str::trim);
        if marker.is_none() && header.is_none() {
            return None;
        }
        let mut details = Vec::new();
        if let Some(Value::Object(map)) = marker {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("event" | "next_cursor", _) | (_, Value::Null) => {}
                    ("fields", Value::Object(_)) => details.push(format_fields(v)),
                    _ => details.push(format!("{k}={}", format_value(v))),
                }
            }
        }
        if let (Some(h), true) = (header, details.is_empty()) {
            details.push(format!("{TRUNCATED_HEADER}: {h}"));
        }
        let next_cursor = marker
            .and_then(|m| text(m, "next_cursor"))
            .map(str::to_string)
            .or_else(|| reply.next_cursor_header.clone())
            .filter(|c| !c.trim().is_empty());
        Some(Truncation {
            details: details.join(" "),
            next_cursor,
        })
    }

    /// What to tell the operator.
    pub fn note(&self) -> String {
        let details = if self.details.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.details)
        };
        let more = match &self.next_cursor {
            Some(c) => format!(", or read on with --cursor '{c}'"),
            None => String::new(),
        };
        format!(
            "truncated: a bound on the logs answer was hit{details}; narrow it with --run, --service or --level, raise --limit{more}"
        )
    }
}

/// `--follow`'s memory. Each poll re-reads the day (every page of it) and
/// counts each record — keyed by its whole JSON, canonical — within that
/// poll; a record is printed only when its count passes the most ever
/// printed for it. So a line shows once however often it is re-read, a
/// genuine repeat of a line still shows, and a line that drops out of an
/// answer and comes back is not printed again.
#[derive(Debug, Default)]
pub struct FollowState {
    printed: HashMap<String, usize>,
    this_poll: HashMap<String, usize>,
}

impl FollowState {
    /// Start counting a new poll (which may span several pages).
    pub fn begin_poll(&mut self) {
        self.this_poll.clear();
    }

    /// The lines of one page not printed before, in order; marks them
    /// printed. The truncation marker is never part of the result.
    pub fn fresh<'a>(&mut self, lines: &'a [LogLine]) -> Vec<&'a LogLine> {
        let mut out = Vec::new();
        for line in lines {
            let key = match line {
                LogLine::Truncated(_) => continue,
                LogLine::Record(v) => v.to_string(),
                LogLine::Raw(s) => s.clone(),
            };
            let n = self.this_poll.entry(key.clone()).or_default();
            *n += 1;
            let printed = self.printed.entry(key).or_default();
            if *n > *printed {
                *printed = *n;
                out.push(line);
            }
        }
        out
    }
}
