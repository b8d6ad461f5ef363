//! The TypeScript original (ChadRosseau/cf_ai_contribot, HEAD 64fdd38), as
//! its code behaves. Paths and lines are at that commit; `scraper/` stands
//! for `apps/scraper-service/src/`, `consumer/` for `apps/data-service/src/`.
//!
//! **Its scraper.** The cron (`apps/scraper-service/wrangler.jsonc:41-43`,
//! every 12 hours) calls `runDiscovery` (`scraper/index.ts:96-138`, from
//! `scraper/discovery/run.ts:25-78`); `scraper/scraper/run.ts` and
//! `metadata-processor.ts` are not called.
//! - It fetches the list once (`scraper/discovery/run.ts:42-63`; the URL at
//!   `scraper/scraper/adapters/registry.ts:37-43`), matches links with
//!   `/github\.com\/([^/]+)\/([^/\s?#]+)/i` and keeps the label raw
//!   (`scraper/scraper/adapters/awesome-for-beginners.ts:73-86`).
//! - Per listed repo, one GraphQL query,
//!   `repository(owner, name) { issues(labels: ["<label>"], states: OPEN) { totalCount } }`,
//!   the values pasted into the query text (`scraper/utils/github-api.ts:161-174`).
//!   A non-2xx answer, GraphQL errors or a null repository throw
//!   (`scraper/utils/github-api.ts:200-221`): the repo is skipped for this
//!   run after that one request; a message containing "Forbidden" (a 403)
//!   ends the run (`scraper/discovery/processor.ts:56-75`).
//! - The repo is queued as `process_repo` only if it is new, its list
//!   entry's hash (owner, name, label, source: `scraper/utils/hash.ts:17-30`)
//!   changed, or its open count changed
//!   (`scraper/discovery/processor.ts:105-191`). An entry whose label is
//!   not a string is never stored (`good_first_issue_tag` is NOT NULL,
//!   `packages/data-ops/src/drizzle/schema.ts:24`), so it costs its count
//!   query on every run.
//!
//! **Its consumer** (`consumer/index.ts:14-100`). Per `process_repo`
//! (`consumer/processor/repo-processor.ts:53-176`):
//! - 1 `GET /repos/{o}/{r}/languages` (`repo-processor.ts:77-96`;
//!   `consumer/utils/github-api.ts:151-180`: an error gives no languages);
//! - REST pages `?labels=<encodeURIComponent(label)>&state=open&page=N&per_page=100`
//!   until an empty page, at most 100 pages
//!   (`consumer/utils/github-api.ts:228-290`; an error answer reads as an
//!   empty page), pull requests dropped (`repo-processor.ts:124-135`);
//! - every new issue, and every issue whose hash of comments, state and
//!   assignees changed, is queued as `process_issue`
//!   (`repo-processor.ts:200-334`); the hash leaves out the title
//!   (`consumer/utils/hash.ts:37-48`), so a title edit alone is never
//!   picked up;
//! - 1 `GET /repos/{o}/{r}/issues/{n}` per issue open in its D1 but missing
//!   from the pages; a closed answer marks it closed
//!   (`repo-processor.ts:343-431`, `consumer/utils/github-api.ts:199-223`,
//!   `packages/data-ops/src/queries/issues.ts:199-207`).
//!
//! Per `process_issue`: 1 `GET /repos/{o}/{r}/issues/{n}`, then AI
//! (`consumer/processor/issue-processor.ts:61-94`). It keeps the stored
//! hash, so it changes nothing later runs compare.
//!
//! Not replayed: the 2 s pause before each request
//! (`scraper/utils/github-api.ts:46`, `consumer/utils/github-api.ts:16`)
//! and the AI calls, neither a GitHub request. On the Workers Free plan the
//! cron would stop at 50 subrequests; these are the requests its code asks
//! for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{encode_uri_component, list_entries, PeerError, Session};

/// The data source id its adapter stamps on every entry.
const SOURCE_ID: &str = "awesome-for-beginners";
/// `fetchAllIssues`'s safety limit.
const MAX_PAGES: u32 = 100;

/// What the original keeps in D1 between runs, as far as its requests
/// depend on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TsState {
    /// `repos`, by `owner/name` as listed.
    repos: BTreeMap<String, StoredRepo>,
    /// `issues`, by `owner/name` then issue number.
    issues: BTreeMap<String, BTreeMap<u64, StoredIssue>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredRepo {
    /// The list-entry hash's input (equal inputs, equal hashes).
    list_entry: String,
    open_count: u64,
    label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredIssue {
    open: bool,
    /// The issue hash's input: comments, state, assignee logins.
    hash: String,
}

impl TsState {
    /// The state at `path`; empty when there is no path or no file yet.
    pub fn load(path: Option<&Path>) -> Result<TsState, PeerError> {
        let Some(path) = path else {
            return Ok(TsState::default());
        };
        let failed = |reason: String| PeerError::State {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| failed(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TsState::default()),
            Err(e) => Err(failed(e.to_string())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), PeerError> {
        let text = serde_json::to_string(self).expect("state serialises");
        std::fs::write(path, text).map_err(|e| PeerError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// One list entry as its adapter reads it.
struct Listed {
    owner: String,
    name: String,
    /// `None` when the entry's `label` is not a string.
    label: Option<String>,
}

enum Message {
    ProcessRepo(String),
    ProcessIssue { repo: String, number: u64 },
}

pub(super) fn replay(s: &mut Session<'_>, state: &mut TsState) -> Result<(), PeerError> {
    let text = s.list()?;
    let listed: Vec<Listed> = list_entries(&text)?.iter().filter_map(listed).collect();
    s.report.repos = listed.len();
    let mut queue = discover(s, state, &listed)?;
    while let Some(message) = queue.pop_front() {
        match message {
            Message::ProcessRepo(repo) => process_repo(s, state, &repo, &mut queue)?,
            Message::ProcessIssue { repo, number } => {
                s.get("rest:issue", &format!("/repos/{repo}/issues/{number}"))?;
            }
        }
    }
    Ok(())
}

/// The adapter's reading of one entry: its link must match
/// `github\.com\/([^/]+)\/([^/\s?#]+)` (case-insensitive, anywhere).
fn listed(entry: &Value) -> Option<Listed> {
    let link = entry.get("link")?.as_str()?;
    let (owner, name) = ts_link_slug(link)?;
    Some(Listed {
        owner,
        name,
        label: entry
            .get("label")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `owner` and `name` by the adapter's link pattern.
pub fn ts_link_slug(link: &str) -> Option<(String, String)> {
    let lower = link.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("github.com/") {
        let rest = &link[from + at + "github.com/".len()..];
        from += at + 1;
        let Some((owner, tail)) = rest.split_once('/') else {
            continue;
        };
        let name: String = tail
            .chars()
            .take_while(|c| !(*c == '/' || *c == '?' || *c == '#' || c.is_whitespace()))
            .collect();
        if !owner.is_empty() && !name.is_empty() {
            return Some((owner.to_string(), name));
        }
    }
    None
}

/// The scraper's pass: one count query per entry, and the gating.
fn discover(
    s: &mut Session<'_>,
    state: &mut TsState,
    listed: &[Listed],
) -> Result<VecDeque<Message>, PeerError> {
    let mut queue = VecDeque::new();
    for entry in listed {
        let count = match count_query(s, entry)? {
            Count::Open(n) => n,
            Count::Skip => {
                s.note("count_failed");
                continue;
            }
            Count::Abort => {
                s.note("run_aborted");
                break;
            }
        };
        let Some(label) = &entry.label else {
            s.note("insert_failed");
            continue;
        };
        let key = format!("{}/{}", entry.owner, entry.name);
        let list_entry = serde_json::to_string(&(&entry.owner, &entry.name, label, SOURCE_ID))
            .expect("strings serialise");
        let stored = StoredRepo {
            list_entry,
            open_count: count,
            label: label.clone(),
        };
        if state.repos.get(&key) == Some(&stored) {
            s.note("repos_unchanged");
            continue;
        }
        state.repos.insert(key.clone(), stored);
        s.note("repos_queued");
        queue.push_back(Message::ProcessRepo(key));
    }
    Ok(queue)
}

enum Count {
    Open(u64),
    Skip,
    Abort,
}

/// `fetchIssueLabelCount`: the query with the values pasted in, and what
/// its caller makes of the answer.
fn count_query(s: &mut Session<'_>, entry: &Listed) -> Result<Count, PeerError> {
    let label = entry.label.as_deref().unwrap_or("undefined");
    let query = format!(
        "query {{ repository(owner: \"{}\", name: \"{}\") {{ issues(labels: [\"{label}\"], states: OPEN) {{ totalCount }} }} }}",
        entry.owner, entry.name
    );
    let reply = s.graphql(&serde_json::json!({ "query": query }).to_string())?;
    if reply.status == 403 {
        return Ok(Count::Abort);
    }
    if !reply.is_success() {
        return Ok(Count::Skip);
    }
    let Some(answer) = reply.json() else {
        return Ok(Count::Skip);
    };
    if let Some(errors) = answer.get("errors").filter(|e| !e.is_null()) {
        let forbidden = errors.to_string().contains("Forbidden");
        return Ok(if forbidden { Count::Abort } else { Count::Skip });
    }
    let total = &answer["data"]["repository"]["issues"]["totalCount"];
    Ok(total.as_u64().map_or(Count::Skip, Count::Open))
}

/// The consumer's `processRepo`.
fn process_repo(
    s: &mut Session<'_>,
    state: &mut TsState,
    repo: &str,
    queue: &mut VecDeque<Message>,
) -> Result<(), PeerError> {
    let label = state.repos[repo].label.clone();
    s.get("rest:languages", &format!("/repos/{repo}/languages"))?;
    let Some(issues) = issue_pages(s, repo, &label)? else {
        s.note("repo_failed");
        return Ok(());
    };
    let stored = state.issues.entry(repo.to_string()).or_default();
    for issue in &issues {
        let Some(number) = issue["number"].as_u64() else {
            continue;
        };
        let seen = StoredIssue {
            open: issue["state"] == "open",
            hash: issue_hash(issue),
        };
        if stored
            .get(&number)
            .is_some_and(|known| known.hash == seen.hash)
        {
            continue;
        }
        stored.insert(number, seen);
        s.note("issues_queued");
        queue.push_back(Message::ProcessIssue {
            repo: repo.to_string(),
            number,
        });
    }
    let current: BTreeSet<u64> = issues.iter().filter_map(|i| i["number"].as_u64()).collect();
    let vanished: Vec<u64> = stored
        .iter()
        .filter(|(n, known)| known.open && !current.contains(n))
        .map(|(n, _)| *n)
        .collect();
    for number in vanished {
        s.note("vanished_checks");
        let reply = s.get("rest:issue", &format!("/repos/{repo}/issues/{number}"))?;
        let fetched = reply.is_success().then(|| reply.json()).flatten();
        if let Some(issue) = fetched.filter(|i| i["state"] == "closed") {
            let stored = state.issues.get_mut(repo).expect("entry made above");
            stored.insert(
                number,
                StoredIssue {
                    open: false,
                    hash: issue_hash(&issue),
                },
            );
        }
    }
    Ok(())
}

/// `fetchAllIssues` and the pull-request filter: the open issues of the
/// label, or `None` when a page is JSON but not an array (its spread
/// throws and the message is dropped).
fn issue_pages(
    s: &mut Session<'_>,
    repo: &str,
    label: &str,
) -> Result<Option<Vec<Value>>, PeerError> {
    let mut all = Vec::new();
    for page in 1..=MAX_PAGES {
        let path = format!(
            "/repos/{repo}/issues?labels={}&state=open&page={page}&per_page=100",
            encode_uri_component(label)
        );
        let reply = s.get("rest:issues", &path)?;
        let items = match reply.is_success().then(|| reply.json()).flatten() {
            None => break,
            Some(Value::Array(items)) => items,
            Some(_) => return Ok(None),
        };
        if items.is_empty() {
            break;
        }
        all.extend(items);
    }
    all.retain(|i| i.get("pull_request").is_none_or(Value::is_null));
    Ok(Some(all))
}

/// `hashIssueMetadata`'s input: comment count, state, assignee logins
/// (null when none). No title, no body.
fn issue_hash(issue: &Value) -> String {
    let logins: Vec<&str> = issue["assignees"]
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["login"].as_str()).collect())
        .unwrap_or_default();
    let assignees = (!logins.is_empty()).then_some(logins);
    serde_json::json!([issue["comments"], issue["state"], assignees]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_read_with_the_adapters_pattern() {
        let slug = |l: &str| ts_link_slug(l);
        let pair = |o: &str, n: &str| Some((o.to_string(), n.to_string()));
        assert_eq!(
            slug("https://github.com/vercel/next.js"),
            pair("vercel", "next.js")
        );
        assert_eq!(slug("https://GitHub.com/a/b/issues?q=1"), pair("a", "b"));
        assert_eq!(slug("https://github.com/a/b#readme"), pair("a", "b"));
        assert_eq!(slug("https://github.com/octocat"), None);
        assert_eq!(slug("https://gitlab.com/a/b"), None);
    }

    #[test]
    fn the_issue_hash_ignores_title_and_body() {
        let a = serde_json::json!({"title": "a", "body": "x", "comments": 2, "state": "open", "assignees": []});
        let b = serde_json::json!({"title": "b", "body": "y", "comments": 2, "state": "open", "assignees": []});
        let c = serde_json::json!({"title": "a", "body": "x", "comments": 3, "state": "open", "assignees": []});
        assert_eq!(issue_hash(&a), issue_hash(&b));
        assert_ne!(issue_hash(&a), issue_hash(&c));
    }
}
