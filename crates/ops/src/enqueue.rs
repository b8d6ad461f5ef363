//! `ops enqueue`: reading URL lists, cutting them into requests the API
//! accepts, and adding up the answers.
//!
//! A list has one repo per line: `URL`, `URL label words` (the rest of the
//! line is the label) or CSV `url,label` (double quotes allowed, a `url,label`
//! header skipped). Lines starting with `#` and blank lines are ignored.
//! URLs are not judged here: the API says which it rejects and why.

use serde::Serialize;
use serde_json::{json, Value};

/// The API's limit on items per `POST /admin/enqueue`.
pub const MAX_ITEMS_PER_REQUEST: usize = 1000;

/// One repo to enqueue, as the API expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnqueueItem {
    #[serde(rename = "repoUrl")]
    pub repo_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl EnqueueItem {
    pub fn new(repo_url: &str, label: Option<&str>) -> Self {
        EnqueueItem {
            repo_url: repo_url.trim().to_string(),
            label: label
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        }
    }
}

/// A line of a URL list that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ListError {
    pub line: usize,
    pub message: String,
}

/// Parse a URL list (see the module docs).
pub fn parse_url_list(text: &str) -> Result<Vec<EnqueueItem>, ListError> {
    let mut items = Vec::new();
    let mut first_data_line = true;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| ListError {
            line: index + 1,
            message,
        };
        let (url, label) = if line.contains(',') {
            let fields = csv_fields(line).map_err(err)?;
            match fields.as_slice() {
                [url] => (url.clone(), None),
                [url, label] => (url.clone(), Some(label.clone())),
                _ => {
                    return Err(err(format!(
                        "expected `url,label`, found {} comma-separated fields",
                        fields.len()
                    )))
                }
            }
        } else {
            match line.split_once(char::is_whitespace) {
                Some((url, label)) => (url.to_string(), Some(unquote(label.trim()).to_string())),
                None => (line.to_string(), None),
            }
        };
        let header = first_data_line
            && matches!(
                url.to_ascii_lowercase().as_str(),
                "url" | "repourl" | "repo_url" | "repo"
            );
        first_data_line = false;
        if header {
            continue;
        }
        if url.is_empty() {
            return Err(err("no URL before the comma".into()));
        }
        items.push(EnqueueItem::new(&url, label.as_deref()));
    }
    Ok(items)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Split one CSV line: fields trimmed, `"..."` quoting with `""` escapes.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                let c = chars.next().unwrap_or_default();
                if !c.is_whitespace() {
                    return Err(format!("unexpected {c:?} after a quoted field"));
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
            field = field.trim().to_string();
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// The request bodies for `items`, at most [`MAX_ITEMS_PER_REQUEST`] each.
pub fn request_bodies(items: &[EnqueueItem]) -> Vec<Value> {
    items
        .chunks(MAX_ITEMS_PER_REQUEST)
        .map(|chunk| json!({ "items": chunk }))
        .collect()
}

/// The answers of every request, added up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnqueueTotals {
    /// False when any request reported a partial failure.
    pub ok: bool,
    pub enqueued: i64,
    pub skipped: i64,
    pub invalid: i64,
    /// Saved but not queued (a send failed); the next run's outbox drain
    /// queues them.
    pub unsent: i64,
    pub errors: Vec<String>,
    pub batches: Vec<Value>,
    /// How many requests were sent.
    pub requests: usize,
}

impl EnqueueTotals {
    /// Add the answer to request `index` (0-based) of `count`. The API
    /// names bad items `items[i]` within their request; with several
    /// requests that index is renumbered to the whole list's, and other
    /// messages are prefixed `request i/n:`.
    pub fn absorb(&mut self, index: usize, count: usize, reply: &Value) {
        let num = |k: &str| reply.get(k).and_then(Value::as_i64).unwrap_or(0);
        let ok = reply.get("ok").and_then(Value::as_bool).unwrap_or(true);
        self.ok = (self.requests == 0 || self.ok) && ok;
        self.requests += 1;
        self.enqueued += num("enqueued");
        self.skipped += num("skipped");
        self.invalid += num("invalid");
        self.unsent += num("unsent");
        for e in reply
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = e
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            self.errors.push(if count > 1 {
                renumber(&text, index * MAX_ITEMS_PER_REQUEST)
                    .unwrap_or_else(|| format!("request {}/{count}: {text}", index + 1))
            } else {
                text
            });
        }
        if let Some(b) = reply.get("batches").and_then(Value::as_array) {
            self.batches.extend(b.iter().cloned());
        }
    }

    /// What happened, for a person.
    pub fn render(&self) -> String {
        let mut out = format!(
            "enqueued {}, skipped {} (already known or repeated), {} rejected",
            self.enqueued,
            self.skipped,
            self.errors.len().max(self.invalid as usize)
        );
        if self.unsent > 0 {
            out.push_str(&format!(
                ", {} saved but not yet queued (the next run queues them)",
                self.unsent
            ));
        }
        if !self.batches.is_empty() {
            let batches: Vec<String> = self.batches.iter().map(Value::to_string).collect();
            out.push_str(&format!("; queue batches: {}", batches.join(", ")));
        }
        out.push('\n');
        for e in &self.errors {
            out.push_str(&format!("  {e}\n"));
        }
        out
    }
}

/// `items[i]: …` with `i` moved up by `offset`; `None` for other text.
fn renumber(error: &str, offset: usize) -> Option<String> {
    let rest = error.strip_prefix("items[")?;
    let (number, tail) = rest.split_once(']')?;
    let i: usize = number.parse().ok()?;
    Some(format!("items[{}]{tail}", i + offset))
}
