//! Replays of other tools' GitHub request patterns against the simulator, so
//! the simulator's counters can set them beside contribot's.
//!
//! Each replay follows what its tool's code does, step by step, and sends
//! the requests that code would send:
//!
//! - [`Pattern::TsOriginal`], contribot's TypeScript predecessor
//!   (ChadRosseau/cf_ai_contribot at 64fdd38): its cron scraper and its queue
//!   consumer, with the state they keep in D1 (a state file here, so the
//!   unchanged and changed reruns gate the way the original does). See
//!   [`ts_original`] for the pattern and the lines it follows.
//! - [`Pattern::GoodFirstIssue`], goodfirstissue.dev
//!   (DeepSourceCorp/good-first-issue, `gfi/populate.py`): one repository
//!   call, then one 10-issue call per label of its `data/labels.json`, with
//!   its archived and inactivity skips and its rate limiter's
//!   `GET /rate_limit` refreshes. See [`goodfirstissue`].
//!
//! Both read the same list, the simulator's awesome-for-beginners
//! `data.json`, parsing its links with their own tool's pattern. Every
//! request counts, redirects included: a renamed repository's 301 and its
//! target are two requests, as on GitHub (workerd's `fetch` and Python's
//! `requests` both follow them).
//!
//! The replay logic talks to a [`Transport`]: [`run`] uses HTTP against
//! the simulator; tests use an in-memory world.

pub mod goodfirstissue;
pub mod ts_original;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use serde::Serialize;

pub use goodfirstissue::GFI_LABELS;
pub use ts_original::TsState;

/// Where the simulator serves the list (its stand-in for
/// raw.githubusercontent.com).
pub const LIST_PATH: &str = "/raw/MunGell/awesome-for-beginners/main/data.json";

/// Redirects followed before giving up (workerd's `fetch` follows 20).
const MAX_REDIRECTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    TsOriginal,
    GoodFirstIssue,
}

impl Pattern {
    pub fn parse(name: &str) -> Option<Pattern> {
        match name {
            "ts-original" => Some(Pattern::TsOriginal),
            "goodfirstissue" => Some(Pattern::GoodFirstIssue),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("the list at {url} is unusable: {reason}")]
    List { url: String, reason: String },
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
    #[error("{url}: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { url: String },
    #[error("the simulator's clock is unreadable: {reason}")]
    Clock { reason: String },
    /// The tool paces itself under GitHub's per-minute secondary limits
    /// and the replay does not, so a refusal would skew the figures.
    #[error(
        "{target}: refused by a secondary rate limit; lift the simulator's per-minute \
         limits for the replay (POST /_sim/limits)"
    )]
    SecondaryLimited { target: String },
}

/// What a replay did, by its own count (the simulator's counters are the
/// authority; this is the cross-check).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerReport {
    pub pattern: Option<Pattern>,
    /// GitHub repositories the tool's own link pattern found in the list.
    pub repos: usize,
    /// Every request sent to the simulator, redirect hops included.
    pub requests: u64,
    /// The requests the tool itself would send to GitHub: `requests` less
    /// the list read when the tool reads its list from its own checkout
    /// (goodfirstissue.dev).
    pub github_requests: u64,
    /// Requests by kind: `list`, `graphql`, `rest:repo`, `rest:languages`,
    /// `rest:issues`, `rest:issue`, `rest:rate_limit`, and `redirect` for
    /// each hop after a 3xx.
    pub by_kind: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// GraphQL points spent, from the last answer's `x-ratelimit-used`
    /// (a fresh token starts at 0).
    pub graphql_points: u64,
    /// What the tool decided, by name (`repos_queued`, `issues_queued`,
    /// `vanished_checks`, `skipped_archived`, …).
    pub events: BTreeMap<String, u64>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request as the tool sends it. `target` is a path with its query
/// (`/repos/o/r/issues?…`) or an absolute URL (a `Location`, or a URL the
/// tool took from an answer).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method,
    pub target: &'a str,
    pub body: Option<&'a str>,
}

/// What came back.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    /// `x-ratelimit-used`, when present.
    pub ratelimit_used: Option<u64>,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Sends one request and returns the answer as is (no redirect following).
pub trait Transport {
    fn send(&mut self, request: &Request<'_>) -> Result<Reply, PeerError>;
}

/// What one replay needs besides the transport.
pub enum Replay<'s> {
    /// The TypeScript original, with the D1 state it keeps between runs.
    TsOriginal { state: &'s mut TsState },
    /// goodfirstissue.dev; `now` (Unix seconds) stands in for its
    /// `datetime.now()`, the instant the upstream's data speaks about.
    GoodFirstIssue { now: i64 },
}

/// A transport plus the counts: follows GET redirects and counts each hop.
pub struct Session<'t> {
    transport: &'t mut dyn Transport,
    report: PeerReport,
}

impl<'t> Session<'t> {
    fn new(transport: &'t mut dyn Transport, pattern: Pattern) -> Session<'t> {
        Session {
            transport,
            report: PeerReport {
                pattern: Some(pattern),
                ..PeerReport::default()
            },
        }
    }

    fn count(&mut self, kind: &str, target: &str, reply: &Reply) -> Result<(), PeerError> {
        self.report.requests += 1;
        self.report.github_requests += 1;
        *self.report.by_kind.entry(kind.to_string()).or_default() += 1;
        *self.report.by_status.entry(reply.status).or_default() += 1;
        let refused = matches!(reply.status, 403 | 429)
            && reply
                .body
                .to_ascii_lowercase()
                .contains("secondary rate limit");
        if refused {
            return Err(PeerError::SecondaryLimited {
                target: target.to_string(),
            });
        }
        Ok(())
    }

    /// A GET, following redirects as `fetch` and `requests` do; the first
    /// hop counts under `kind`, the others under `redirect`.
    pub fn get(&mut self, kind: &str, target: &str) -> Result<Reply, PeerError> {
        let mut target = target.to_string();
        let mut kind = kind;
        for _ in 0..=MAX_REDIRECTS {
            let reply = self.transport.send(&Request {
                method: Method::Get,
                target: &target,
                body: None,
            })?;
            self.count(kind, &target, &reply)?;
            match (&reply.location, reply.status) {
                (Some(location), 301 | 302 | 303 | 307 | 308) => {
                    target = location.clone();
                    kind = "redirect";
                }
                _ => return Ok(reply),
            }
        }
        Err(PeerError::TooManyRedirects { url: target })
    }

    /// A GraphQL POST (never redirected on GitHub).
    pub fn graphql(&mut self, body: &str) -> Result<Reply, PeerError> {
        let reply = self.transport.send(&Request {
            method: Method::Post,
            target: "/graphql",
            body: Some(body),
        })?;
        self.count("graphql", "/graphql", &reply)?;
        if let Some(used) = reply.ratelimit_used {
            self.report.graphql_points = used;
        }
        Ok(reply)
    }

    /// Marks the last `kind` request as one the tool would not have sent
    /// to GitHub (a stand-in for a file it reads from its checkout).
    fn not_github(&mut self) {
        self.report.github_requests -= 1;
    }

    pub fn note(&mut self, event: &str) {
        *self.report.events.entry(event.to_string()).or_default() += 1;
    }

    /// Reads the list; any answer but a 2xx is an error.
    fn list(&mut self) -> Result<String, PeerError> {
        let reply = self.get("list", LIST_PATH)?;
        if !reply.is_success() {
            return Err(PeerError::List {
                url: LIST_PATH.into(),
                reason: format!("HTTP {}", reply.status),
            });
        }
        Ok(reply.body)
    }
}

/// The `repositories` entries of a `data.json`.
fn list_entries(text: &str) -> Result<Vec<serde_json::Value>, PeerError> {
    let root: serde_json::Value = serde_json::from_str(text).map_err(|e| PeerError::List {
        url: LIST_PATH.into(),
        reason: e.to_string(),
    })?;
    match root.get("repositories") {
        Some(serde_json::Value::Array(entries)) => Ok(entries.clone()),
        _ => Err(PeerError::List {
            url: LIST_PATH.into(),
            reason: "no `repositories` array".into(),
        }),
    }
}

/// Runs one replay over `transport`.
pub fn replay(transport: &mut dyn Transport, replay: Replay<'_>) -> Result<PeerReport, PeerError> {
    let started = Instant::now();
    let mut report = match replay {
        Replay::TsOriginal { state } => {
            let mut session = Session::new(transport, Pattern::TsOriginal);
            ts_original::replay(&mut session, state)?;
            session.report
        }
        Replay::GoodFirstIssue { now } => {
            let mut session = Session::new(transport, Pattern::GoodFirstIssue);
            goodfirstissue::replay(&mut session, now)?;
            session.report
        }
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Runs one replay of `pattern` against the simulator at `sim`. The TS
/// original's state is read from and written back to `state` (none: a
/// first run, not kept).
pub fn run(
    pattern: Pattern,
    sim: &str,
    token: &str,
    state: Option<&Path>,
) -> Result<PeerReport, PeerError> {
    let mut transport = HttpTransport::new(sim, token)?;
    match pattern {
        Pattern::TsOriginal => {
            let mut kept = TsState::load(state)?;
            let report = replay(&mut transport, Replay::TsOriginal { state: &mut kept })?;
            if let Some(path) = state {
                kept.save(path)?;
            }
            Ok(report)
        }
        Pattern::GoodFirstIssue => {
            let now = transport.sim_clock()?;
            replay(&mut transport, Replay::GoodFirstIssue { now })
        }
    }
}

/// HTTP to the simulator, with the tool's token on every request
/// (`token …` for REST, `bearer …` for GraphQL, as both tools send it).
pub struct HttpTransport {
    client: Client,
    base: String,
    token: String,
}

impl HttpTransport {
    pub fn new(sim: &str, token: &str) -> Result<HttpTransport, PeerError> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| PeerError::Http {
                url: sim.to_string(),
                reason: e.to_string(),
            })?;
        Ok(HttpTransport {
            client,
            base: sim.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{target}", self.base)
        }
    }

    /// The simulator's "now" from its (uncounted) control API.
    pub fn sim_clock(&self) -> Result<i64, PeerError> {
        let url = format!("{}/_sim/truth", self.base);
        let failed = |reason: String| PeerError::Clock { reason };
        let truth: serde_json::Value = self
            .client
            .get(&url)
            .send()
            .and_then(|r| r.json())
            .map_err(|e| failed(e.to_string()))?;
        let clock = truth["clock"].as_str().unwrap_or_default();
        parse_iso8601(clock).ok_or_else(|| failed(format!("`{clock}` is not a timestamp")))
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, request: &Request<'_>) -> Result<Reply, PeerError> {
        let url = self.url(request.target);
        let builder = match request.method {
            Method::Get => self
                .client
                .get(&url)
                .header(AUTHORIZATION, format!("token {}", self.token)),
            Method::Post => self
                .client
                .post(&url)
                .header(AUTHORIZATION, format!("bearer {}", self.token))
                .header(CONTENT_TYPE, "application/json")
                .body(request.body.unwrap_or_default().to_string()),
        };
        let failed = |e: reqwest::Error| PeerError::Http {
            url: url.clone(),
            reason: e.to_string(),
        };
        let response = builder
            .header(USER_AGENT, "contribot-bench-peer/0.1")
            .send()
            .map_err(failed)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header(LOCATION.as_str());
        let ratelimit_used = header("x-ratelimit-used").and_then(|v| v.parse().ok());
        let status = response.status().as_u16();
        let body = response.text().map_err(failed)?;
        Ok(Reply {
            status,
            location,
            ratelimit_used,
            body,
        })
    }
}

/// JavaScript's `encodeURIComponent`: UTF-8 bytes percent-encoded except
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
pub fn encode_uri_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as Unix seconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = match time.strip_suffix('Z') {
        Some(clock) => (clock, 0),
        None => {
            let at = time.rfind(['+', '-'])?;
            let (clock, off) = time.split_at(at);
            let (h, mi) = off[1..].split_once(':')?;
            let secs = h.parse::<i64>().ok()? * 3600 + mi.parse::<i64>().ok()? * 60;
            (clock, if off.starts_with('-') { -secs } else { secs })
        }
    };
    let mut t = clock
        .split('.')
        .next()?
        .splitn(3, ':')
        .map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_encoded_as_encode_uri_component_does() {
        assert_eq!(
            encode_uri_component("good first issue"),
            "good%20first%20issue"
        );
        assert_eq!(
            encode_uri_component("Good First Issue, Difficulty/1:Easy"),
            "Good%20First%20Issue%2C%20Difficulty%2F1%3AEasy"
        );
        assert_eq!(
            encode_uri_component("up-for-grabs (easy!)"),
            "up-for-grabs%20(easy!)"
        );
        assert_eq!(encode_uri_component("débutant"), "d%C3%A9butant");
    }

    #[test]
    fn pattern_names_round_trip() {
        assert_eq!(Pattern::parse("ts-original"), Some(Pattern::TsOriginal));
        assert_eq!(
            Pattern::parse("goodfirstissue"),
            Some(Pattern::GoodFirstIssue)
        );
        assert_eq!(Pattern::parse("other"), None);
    }

    #[test]
    fn timestamps_parse_to_unix_seconds() {
        assert_eq!(parse_iso8601("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(
            parse_iso8601("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800)
        );
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.5Z"), Some(0));
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(parse_iso8601("2024-13-01T00:00:00Z"), None);
    }
}
