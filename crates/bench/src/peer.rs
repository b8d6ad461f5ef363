//! Replays of other tools' GitHub request patterns against the simulator, so
//! the simulator's counters can set them beside contribot's.
//!
//! Both read the same list (`data.json`, one request) and then, per listed
//! GitHub repository:
//!
//! - [`Pattern::TsOriginal`], contribot's TypeScript predecessor: one GraphQL
//!   query for the listed label's open-issue count, one REST `languages`
//!   call, REST issue pages (`/issues?labels=<label>&state=open&per_page=100&page=N`
//!   until a short page), and one REST `GET /issues/{n}` for every issue that
//!   was open at the previous replay and is not any more (the previous replay's
//!   issue numbers are kept in a state file).
//! - [`Pattern::GoodFirstIssue`], goodfirstissue.dev's documented "10 calls per
//!   repo": `GET /repos/{o}/{r}` plus one `GET /issues?labels=<L>&state=open&per_page=100`
//!   (first page only) for each of the nine beginner labels in
//!   [`GFI_LABELS`].
//!
//! Every request counts, redirects included (a renamed repo's 301 and its
//! target are two requests, as on GitHub).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use contribot_core::list::parse_data_json;
use reqwest::blocking::{Client, Response};
use reqwest::header::{AUTHORIZATION, LOCATION, USER_AGENT};
use serde::Serialize;
use serde_json::{json, Value};

/// The beginner labels the goodfirstissue.dev replay asks for, one issues
/// call each.
pub const GFI_LABELS: [&str; 9] = [
    "good first issue",
    "good-first-issue",
    "beginner",
    "easy",
    "help wanted",
    "first-timers-only",
    "up-for-grabs",
    "starter",
    "low-hanging-fruit",
];

const LIST_PATH: &str = "/raw/MunGell/awesome-for-beginners/main/data.json";

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
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the list at {url} is unusable: {reason}")]
    List { url: String, reason: String },
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

/// What a replay did, by its own count (the simulator's counters are the
/// authority; this is the cross-check).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerReport {
    pub pattern: Option<Pattern>,
    pub repos: usize,
    pub requests: u64,
    /// Requests by kind: `list`, `graphql`, `rest:repo`, `rest:languages`,
    /// `rest:issues`, `rest:issue`, `redirect`.
    pub by_kind: BTreeMap<String, u64>,
    /// GraphQL points spent, from the last answer's `x-ratelimit-used`
    /// (a fresh token starts at 0).
    pub graphql_points: u64,
    /// Issues that vanished since the previous replay (one GET each).
    pub disappeared: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub duration_ms: u64,
}

struct Driver {
    client: Client,
    base: String,
    token: String,
    report: PeerReport,
}

impl Driver {
    fn send(
        &mut self,
        kind: &str,
        build: impl Fn(&Client, &str) -> reqwest::blocking::RequestBuilder,
        path: &str,
    ) -> Result<Response, PeerError> {
        let mut url = format!("{}{}", self.base, path);
        let mut kind = kind.to_string();
        for _ in 0..4 {
            let response = build(&self.client, &url)
                .header(USER_AGENT, "contribot-bench-peer/0.1")
                .send()
                .map_err(|source| PeerError::Http {
                    url: url.clone(),
                    source,
                })?;
            self.report.requests += 1;
            *self.report.by_kind.entry(kind.clone()).or_default() += 1;
            *self
                .report
                .by_status
                .entry(response.status().as_u16())
                .or_default() += 1;
            if response.status().is_redirection() {
                if let Some(location) = response.headers().get(LOCATION) {
                    let location = location.to_str().unwrap_or_default();
                    url = if location.starts_with("http") {
                        location.to_string()
                    } else {
                        format!("{}{}", self.base, location)
                    };
                    kind = "redirect".into();
                    continue;
                }
            }
            return Ok(response);
        }
        Err(PeerError::List {
            url,
            reason: "too many redirects".into(),
        })
    }

    fn get(&mut self, kind: &str, path: &str) -> Result<Response, PeerError> {
        let auth = format!("token {}", self.token);
        self.send(
            kind,
            move |c, url| c.get(url).header(AUTHORIZATION, auth.clone()),
            path,
        )
    }

    fn graphql(&mut self, body: &Value) -> Result<Response, PeerError> {
        let auth = format!("bearer {}", self.token);
        let body = body.to_string();
        let response = self.send(
            "graphql",
            move |c, url| {
                c.post(url)
                    .header(AUTHORIZATION, auth.clone())
                    .header("content-type", "application/json")
                    .body(body.clone())
            },
            "/graphql",
        )?;
        if let Some(used) = response
            .headers()
            .get("x-ratelimit-used")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            self.report.graphql_points = used;
        }
        Ok(response)
    }

    /// The issue numbers of a REST issues page, if it is a JSON array.
    fn issue_numbers(response: Response) -> Option<Vec<i64>> {
        if !response.status().is_success() {
            return None;
        }
        let page: Value = response.json().ok()?;
        Some(
            page.as_array()?
                .iter()
                .filter_map(|i| i.get("number").and_then(Value::as_i64))
                .collect(),
        )
    }
}

const LABEL_COUNT_QUERY: &str = "query LabelCount($o: String!, $n: String!, $l: String!) {
  repository(owner: $o, name: $n) { label(name: $l) { issues(states: [OPEN]) { totalCount } } }
}";

/// Percent-encodes a query-string value (RFC 3986 unreserved kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Previous replay's open issues: `"owner/name" -> numbers`.
type Seen = BTreeMap<String, BTreeSet<i64>>;

fn load_state(path: Option<&Path>) -> Result<Seen, PeerError> {
    let Some(path) = path else {
        return Ok(Seen::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| PeerError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Seen::new()),
        Err(e) => Err(PeerError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Runs one replay of `pattern` against the simulator at `sim`.
pub fn run(
    pattern: Pattern,
    sim: &str,
    token: &str,
    state: Option<&Path>,
) -> Result<PeerReport, PeerError> {
    let started = Instant::now();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| PeerError::Http {
            url: sim.to_string(),
            source,
        })?;
    let mut d = Driver {
        client,
        base: sim.trim_end_matches('/').to_string(),
        token: token.to_string(),
        report: PeerReport {
            pattern: Some(pattern),
            ..PeerReport::default()
        },
    };
    let list_url = format!("{}{LIST_PATH}", d.base);
    let text = d
        .get("list", LIST_PATH)?
        .text()
        .map_err(|source| PeerError::Http {
            url: list_url.clone(),
            source,
        })?;
    let list = parse_data_json(&text).map_err(|e| PeerError::List {
        url: list_url,
        reason: e.to_string(),
    })?;
    d.report.repos = list.repos.len();
    let previous = load_state(state)?;
    let mut seen = Seen::new();
    for repo in &list.repos {
        let (owner, name) = (repo.slug.owner.as_str(), repo.slug.name.as_str());
        let base = format!("/repos/{owner}/{name}");
        match pattern {
            Pattern::TsOriginal => {
                let label = repo.labels.first().cloned().unwrap_or_default();
                d.graphql(&json!({
                    "query": LABEL_COUNT_QUERY,
                    "variables": {"o": owner, "n": name, "l": label},
                }))?;
                d.get("rest:languages", &format!("{base}/languages"))?;
                let mut numbers = BTreeSet::new();
                for page in 1.. {
                    let path = format!(
                        "{base}/issues?labels={}&state=open&per_page=100&page={page}",
                        encode(&label)
                    );
                    let response = d.get("rest:issues", &path)?;
                    match Driver::issue_numbers(response) {
                        Some(found) => {
                            let short = found.len() < 100;
                            numbers.extend(found);
                            if short {
                                break;
                            }
                        }
                        None => break,
                    }
                }
                let key = format!("{owner}/{name}");
                if let Some(before) = previous.get(&key) {
                    for gone in before.difference(&numbers) {
                        d.report.disappeared += 1;
                        d.get("rest:issue", &format!("{base}/issues/{gone}"))?;
                    }
                }
                seen.insert(key, numbers);
            }
            Pattern::GoodFirstIssue => {
                d.get("rest:repo", &base)?;
                for label in GFI_LABELS {
                    let path = format!(
                        "{base}/issues?labels={}&state=open&per_page=100",
                        encode(label)
                    );
                    d.get("rest:issues", &path)?;
                }
            }
        }
    }
    if let (Some(path), Pattern::TsOriginal) = (state, pattern) {
        let text = serde_json::to_string(&seen).expect("state serialises");
        std::fs::write(path, text).map_err(|e| PeerError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    d.report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(d.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_percent_encoded_for_the_query_string() {
        assert_eq!(encode("good first issue"), "good%20first%20issue");
        assert_eq!(encode("Difficulty/1:Easy"), "Difficulty%2F1%3AEasy");
        assert_eq!(encode("up-for-grabs"), "up-for-grabs");
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
}
