//! `GET /admin/logs`: one day's JSONL logs from R2, filtered and bounded.
//!
//! `?date=YYYY-MM-DD` (required, UTC) `&service=scraper|processor`
//! `&level=debug|info|warn|error` `&run=<run or batch id>` `&limit=N`
//! `&cursor=<next_cursor of a truncated answer>`.
//!
//! The listing is narrowed by key prefix (`logs/YYYY/MM/DD/`, then
//! `{service}-`, then `{service}-{run}-`), objects are read in key order,
//! and their lines kept when their level is at least `level` and their
//! `run_id` or `invocation` is `run`. The answer is one
//! `application/x-ndjson` body.
//!
//! Bounds: at most [`MAX_LOG_OBJECTS`] objects read, `limit` lines
//! (default [`DEFAULT_LOG_LINES`], at most [`MAX_LOG_LINES`]), about
//! [`MAX_LOG_OUTPUT_BYTES`] of output, and no R2 call past the subrequest
//! budget. When a bound stops the read before the end, the body ends with
//! one more line, `{"event":"truncated","reason":…,"next_cursor":…}`, and the
//! response carries [`TRUNCATED_HEADER`] (the reason) and
//! [`NEXT_CURSOR_HEADER`]; passing `cursor=<next_cursor>` with the same
//! query continues where the answer stopped.

use std::collections::VecDeque;
use std::fmt;

use serde_json::{json, Value};

use super::{bad, bounded_param, query_map, AdminError};
use crate::logrec::{self, Level};
use crate::slug::clip;

pub const MAX_LOG_OBJECTS: usize = 50;
pub const DEFAULT_LOG_LINES: usize = 1000;
pub const MAX_LOG_LINES: usize = 10_000;
pub const MAX_LOG_OUTPUT_BYTES: usize = 5 * 1024 * 1024;
/// R2 returns at most this many keys per list call.
pub const MAX_LIST_KEYS: u32 = 1000;
/// Set on a truncated answer, to the reason.
pub const TRUNCATED_HEADER: &str = "x-contribot-truncated";
/// Set on a truncated answer that can be continued, to the cursor.
pub const NEXT_CURSOR_HEADER: &str = "x-contribot-next-cursor";

const SERVICES: [&str; 2] = ["scraper", "processor"];

/// A validated `GET /admin/logs` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// `logs/YYYY/MM/DD/`.
    pub date_prefix: String,
    pub service: Option<&'static str>,
    pub level: Option<Level>,
    pub run: Option<String>,
    pub limit: usize,
    pub cursor: Option<LogCursor>,
}

/// Where a truncated answer stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCursor {
    /// At line `line` (0-based, counting every line) of object `key`.
    At { key: String, line: usize },
    /// After object `key` (the objects after it are unread).
    After { key: String },
}

impl LogCursor {
    pub fn key(&self) -> &str {
        match self {
            LogCursor::At { key, .. } | LogCursor::After { key } => key,
        }
    }

    /// `<key>:<line>` or `<key>:end`.
    pub fn parse(text: &str) -> Option<LogCursor> {
        let (key, pos) = text.rsplit_once(':')?;
        if key.is_empty() {
            return None;
        }
        let key = key.to_string();
        if pos == "end" {
            return Some(LogCursor::After { key });
        }
        if pos.is_empty() || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        pos.parse().ok().map(|line| LogCursor::At { key, line })
    }
}

impl fmt::Display for LogCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogCursor::At { key, line } => write!(f, "{key}:{line}"),
            LogCursor::After { key } => write!(f, "{key}:end"),
        }
    }
}

/// Validate the query parameters.
pub fn parse_log_query(pairs: &[(String, String)]) -> Result<LogQuery, AdminError> {
    let q = query_map(
        pairs,
        &["date", "service", "level", "run", "limit", "cursor"],
    )?;
    let date = q
        .get("date")
        .ok_or_else(|| bad("`date` is required: ?date=YYYY-MM-DD (UTC)"))?;
    let date_prefix = logrec::log_prefix_for_date(date).ok_or_else(|| {
        bad(format!(
            "`date` must be a date as YYYY-MM-DD (UTC), got {:?}",
            clip(date)
        ))
    })?;
    let service = match q.get("service") {
        None => None,
        Some(s) => Some(SERVICES.into_iter().find(|x| x == s).ok_or_else(|| {
            bad(format!(
                "`service` must be \"scraper\" or \"processor\", got {:?}",
                clip(s)
            ))
        })?),
    };
    let level = match q.get("level") {
        None => None,
        Some(l) => Some(Level::parse(l).ok_or_else(|| {
            bad(format!(
                "`level` must be debug, info, warn or error, got {:?}",
                clip(l)
            ))
        })?),
    };
    let run = match q.get("run") {
        None => None,
        Some(r) => {
            let ok = !r.is_empty()
                && r.len() <= 64
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !ok {
                return Err(bad(format!(
                    "`run` must be a run or batch id (1-64 of [A-Za-z0-9_-]), got {:?}",
                    clip(r)
                )));
            }
            Some((*r).to_string())
        }
    };
    let limit = bounded_param(
        q.get("limit").copied(),
        "limit",
        DEFAULT_LOG_LINES,
        MAX_LOG_LINES,
    )?;
    let mut query = LogQuery {
        date_prefix,
        service,
        level,
        run,
        limit,
        cursor: None,
    };
    if let Some(c) = q.get("cursor") {
        let cursor = LogCursor::parse(c)
            .filter(|c| query.wants_key(c.key()))
            .ok_or_else(|| {
                bad(format!(
                    "`cursor` must be the next_cursor of an earlier answer to the same query, got {:?}",
                    clip(c)
                ))
            })?;
        query.cursor = Some(cursor);
    }
    Ok(query)
}

impl LogQuery {
    /// The narrowest R2 prefix for the query.
    pub fn list_prefix(&self) -> String {
        match (self.service, &self.run) {
            (Some(s), Some(r)) => format!("{}{s}-{r}-", self.date_prefix),
            (Some(s), None) => format!("{}{s}-", self.date_prefix),
            (None, _) => self.date_prefix.clone(),
        }
    }

    /// Whether a listed key belongs to the query (the run, when the
    /// service is not given, is not part of the prefix).
    pub fn wants_key(&self, key: &str) -> bool {
        let Some(name) = key.strip_prefix(&self.list_prefix()) else {
            return false;
        };
        if !key.ends_with(".jsonl") || name.contains('/') {
            return false;
        }
        match (&self.run, self.service) {
            (Some(run), None) => SERVICES
                .iter()
                .any(|s| name.starts_with(&format!("{s}-{run}-"))),
            _ => true,
        }
    }

    /// Whether a listing of this query needs every key of the date (the
    /// run cannot be put in the prefix without the service).
    fn filters_keys(&self) -> bool {
        self.run.is_some() && self.service.is_none()
    }

    /// Whether one JSONL line passes the level and run filters. Without
    /// filters every line passes; with one, a line that is not a JSON
    /// object does not.
    pub fn wants_line(&self, line: &str) -> bool {
        if self.level.is_none() && self.run.is_none() {
            return true;
        }
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            return false;
        };
        if let Some(min) = self.level {
            let level = record
                .get("level")
                .and_then(Value::as_str)
                .and_then(Level::parse);
            if level.is_none_or(|l| l < min) {
                return false;
            }
        }
        if let Some(run) = &self.run {
            let is = |field: &str| record.get(field).and_then(Value::as_str) == Some(run);
            if !is("run_id") && !is("invocation") {
                return false;
            }
        }
        true
    }
}

/// Why an answer stopped before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationReason {
    /// `limit` lines written.
    Limit,
    /// [`MAX_LOG_OUTPUT_BYTES`] written.
    MaxBytes,
    /// [`MAX_LOG_OBJECTS`] objects read.
    MaxObjects,
    /// No subrequest left for the next R2 call.
    SubrequestBudget,
}

impl TruncationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TruncationReason::Limit => "limit",
            TruncationReason::MaxBytes => "max_bytes",
            TruncationReason::MaxObjects => "max_objects",
            TruncationReason::SubrequestBudget => "subrequest_budget",
        }
    }
}

/// A truncated answer's reason and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub reason: TruncationReason,
    pub next_cursor: Option<LogCursor>,
}

/// The next R2 call a [`LogScan`] wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStep {
    /// List keys under `prefix`, after `start_after`, at most `limit`.
    List {
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    },
    /// Read object `key`, then call [`LogScan::on_object`].
    Get { key: String },
    /// Nothing more: call [`LogScan::finish`].
    Done,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The kept lines, each ending in `\n`, then the truncation line if any.
    pub body: String,
    pub lines: usize,
    pub objects: usize,
    pub truncation: Option<Truncation>,
}

/// The read of one `GET /admin/logs`, as a state machine: ask it for the
/// next step (given the subrequests left), perform it, hand back the
/// result, until it says [`LogStep::Done`].
#[derive(Debug, Clone)]
pub struct LogScan {
    query: LogQuery,
    /// Listed keys not yet read.
    queue: VecDeque<String>,
    /// An object to read first, from line `.1` (a cursor's position).
    resume: Option<(String, usize)>,
    /// The object being read.
    reading: Option<(String, usize)>,
    /// The last key listed: the next list starts after it.
    last_listed: Option<String>,
    listing_done: bool,
    objects: usize,
    lines: usize,
    out: String,
    truncation: Option<Truncation>,
}

impl LogScan {
    pub fn new(query: LogQuery) -> Self {
        let (resume, last_listed) = match &query.cursor {
            Some(LogCursor::At { key, line }) => (Some((key.clone(), *line)), Some(key.clone())),
            Some(LogCursor::After { key }) => (None, Some(key.clone())),
            None => (None, None),
        };
        LogScan {
            query,
            queue: VecDeque::new(),
            resume,
            reading: None,
            last_listed,
            listing_done: false,
            objects: 0,
            lines: 0,
            out: String::new(),
            truncation: None,
        }
    }

    /// Where an answer stopped now would continue.
    fn resume_point(&self) -> Option<LogCursor> {
        if let Some((key, line)) = &self.resume {
            return Some(LogCursor::At {
                key: key.clone(),
                line: *line,
            });
        }
        if let Some(key) = self.queue.front() {
            return Some(LogCursor::At {
                key: key.clone(),
                line: 0,
            });
        }
        self.last_listed
            .as_ref()
            .map(|key| LogCursor::After { key: key.clone() })
    }

    fn truncate(&mut self, reason: TruncationReason) -> LogStep {
        self.truncation = Some(Truncation {
            reason,
            next_cursor: self.resume_point(),
        });
        LogStep::Done
    }

    /// The next R2 call, or `Done`. `remaining` is the subrequest budget
    /// left; a call is asked for only when it fits (a list only when a read
    /// after it fits too).
    pub fn next_step(&mut self, remaining: u32) -> LogStep {
        if self.truncation.is_some() {
            return LogStep::Done;
        }
        let more = self.resume.is_some() || !self.queue.is_empty() || !self.listing_done;
        if !more {
            return LogStep::Done;
        }
        if self.lines >= self.query.limit {
            return self.truncate(TruncationReason::Limit);
        }
        if self.objects >= MAX_LOG_OBJECTS {
            return self.truncate(TruncationReason::MaxObjects);
        }
        let next = match self.resume.take() {
            Some(r) => Some(r),
            None => self.queue.pop_front().map(|k| (k, 0)),
        };
        if let Some((key, skip)) = next {
            if remaining < 1 {
                self.resume = Some((key, skip));
                return self.truncate(TruncationReason::SubrequestBudget);
            }
            self.reading = Some((key.clone(), skip));
            return LogStep::Get { key };
        }
        if remaining < 2 {
            return self.truncate(TruncationReason::SubrequestBudget);
        }
        let limit = if self.query.filters_keys() {
            MAX_LIST_KEYS
        } else {
            // One more than can be read, to learn whether more exist.
            (MAX_LOG_OBJECTS - self.objects + 1) as u32
        };
        LogStep::List {
            prefix: self.query.list_prefix(),
            start_after: self.last_listed.clone(),
            limit,
        }
    }

    /// The keys a list returned, in order, and whether more remain.
    pub fn on_list(&mut self, keys: Vec<String>, truncated: bool) {
        self.listing_done = !truncated || keys.is_empty();
        for key in keys {
            if self.query.wants_key(&key) {
                self.queue.push_back(key.clone());
            }
            self.last_listed = Some(key);
        }
    }

    /// The text of the object of the last `Get` (`None` if it is gone).
    pub fn on_object(&mut self, text: Option<&str>) {
        let Some((key, skip)) = self.reading.take() else {
            return;
        };
        self.objects += 1;
        let Some(text) = text else {
            return;
        };
        for (index, line) in text.lines().enumerate().skip(skip) {
            if line.trim().is_empty() || !self.query.wants_line(line) {
                continue;
            }
            if self.out.is_empty() && line.len() + 1 > MAX_LOG_OUTPUT_BYTES {
                // A line no answer can hold: skipped, or the cursor would
                // point at it forever. (The workers' lines are far smaller.)
                continue;
            }
            let full = self.lines >= self.query.limit;
            if full || self.out.len() + line.len() + 1 > MAX_LOG_OUTPUT_BYTES {
                self.truncation = Some(Truncation {
                    reason: if full {
                        TruncationReason::Limit
                    } else {
                        TruncationReason::MaxBytes
                    },
                    next_cursor: Some(LogCursor::At { key, line: index }),
                });
                return;
            }
            self.out.push_str(line);
            self.out.push('\n');
            self.lines += 1;
        }
    }

    /// The answer, with the truncation line appended when a bound hit.
    pub fn finish(self) -> LogPage {
        let mut body = self.out;
        if let Some(t) = &self.truncation {
            let line = json!({
                "event": "truncated",
                "reason": t.reason.as_str(),
                "next_cursor": t.next_cursor.as_ref().map(ToString::to_string),
                "lines": self.lines,
                "objects": self.objects,
            });
            body.push_str(&line.to_string());
            body.push('\n');
        }
        LogPage {
            body,
            lines: self.lines,
            objects: self.objects,
            truncation: self.truncation,
        }
    }
}
