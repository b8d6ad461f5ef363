//! The small world a worker's start-up warm-up runs in (`apps/*/warm-up.mjs`).
//!
//! V8 compiles each wasm function on its first call, on the isolate's
//! thread, so an isolate's first invocations spend most of their CPU in that
//! compiler. The warm-up runs the real handlers once at start-up, outside
//! the per-invocation CPU budget, against stand-in bindings that ask this
//! world what D1 and upstream would answer. The world answers by the
//! statements' own SQL (built by [`store`]) and the queries' own variables,
//! so the JS side holds no SQL, row shape or answer format, and a drift here
//! fails the native test that drives a whole run through it.
//!
//! The world is [`REPOS`] new listed repos, `warm/up-000` …, each with
//! [`ISSUES_PER_REPO`] open labelled issues that no run has seen: a run over
//! it goes cron → list → two repos steps (a whole query each) → drain → done,
//! touching every phase's code. The processor's warm-up batch is the first
//! repo and its first issue, new ([`processing`]). A world that size runs each per-repo and
//! per-issue path often enough for V8 to optimise it (wasm's dynamic tiering
//! and JS's) before the first real invocation, which otherwise pays for
//! running and tiering up unoptimised code.

pub mod processing;

use serde_json::{json, Value};

use crate::logrec::iso8601;
use crate::sql::{Statement, PACKED_COLUMN};
use crate::store::{self, OutboxRow};

pub const OWNER: &str = "warm";
pub const LABEL: &str = "good first issue";
/// Repos in the list: two whole GraphQL queries' worth.
pub const REPOS: usize = 2 * crate::github::MAX_REPOS_PER_QUERY;
/// Open labelled issues per repo.
pub const ISSUES_PER_REPO: usize = 3;

/// The name of the `i`th repo (`up-000` …: names sort as their numbers).
pub fn repo_name(i: usize) -> String {
    format!("up-{i:03}")
}
const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the stand-ins have been asked so far.
#[derive(Debug, Clone)]
pub struct World {
    now_ms: i64,
    /// The run the cron's start inserted.
    run_id: Option<String>,
    /// Outbox items marked queued so far: a read returns the ones after them.
    queued: usize,
    /// The processor's neuron reservations.
    ledger: processing::Ledger,
}

impl World {
    /// A world whose clock reads `now_ms` (the run started then).
    pub fn new(now_ms: i64) -> Self {
        World {
            now_ms,
            run_id: None,
            queued: 0,
            ledger: processing::Ledger::default(),
        }
    }

    /// D1's rows for each statement of one batch, in order.
    pub fn d1(&mut self, batch: &[(String, Vec<Value>)]) -> Vec<Vec<Value>> {
        batch
            .iter()
            .map(|(sql, params)| self.rows(sql, params))
            .collect()
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Vec<Value> {
        let param = |i: usize| params.get(i).cloned().unwrap_or(Value::Null);
        let is = |s: Statement| s.sql == sql;
        if is(start_insert()) {
            self.run_id = param(0).as_str().map(str::to_string);
            vec![]
        } else if is(store::active_run()) {
            let id = self.run_id.clone().map_or(Value::Null, Value::from);
            vec![self.run_row(id)]
        } else if is(store::run_by_id("")) {
            vec![self.run_row(param(0))]
        } else if is(store::count_delivery("", "", 0)) {
            vec![json!({"attempts": 1})]
        } else if is(store::count_deliveries("", &[], 0)) {
            // `?3` is the batch's message ids: each seen for the first time.
            let ids = param(2)
                .as_str()
                .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
                .unwrap_or_default();
            ids.into_iter()
                .map(|id| json!({"message_id": id, "attempts": 1}))
                .collect()
        } else if is(store::take_lease("", "", "", 0, 0)) {
            vec![json!({"lease_id": param(1)})]
        } else if is(store::data_source("")) {
            vec![json!({"id": param(0), "last_good_hash": null})]
        } else if sql == step_read(0) {
            // The next `limit` repos after (owner, name), as the store orders them.
            let after = (param(0), param(1));
            let limit = param(2).as_f64().unwrap_or(0.0) as usize;
            let (owner, name) = (
                after.0.as_str().unwrap_or(""),
                after.1.as_str().unwrap_or(""),
            );
            packed(repo_rows(owner, name, limit))
        } else if sql == step_read(1) {
            packed(vec![]) // new repos: no issue hashes stored
        } else if sql == store::outbox(0).sql {
            let limit = param(0).as_f64().unwrap_or(0.0) as usize;
            packed(
                outbox_rows()
                    .into_iter()
                    .skip(self.queued)
                    .take(limit)
                    .collect(),
            )
        } else if mark_queued().iter().any(|s| s.sql == sql) {
            // `?1` is the sent items' JSON: `[[id, hash], …]`.
            let sent = param(0)
                .as_str()
                .and_then(|t| serde_json::from_str::<Vec<Value>>(t).ok());
            self.queued += sent.map_or(0, |items| items.len());
            vec![]
        } else if let Some(rows) = self.ledger.rows(sql, params) {
            rows
        } else {
            returning(sql)
        }
    }

    fn run_row(&self, id: Value) -> Value {
        json!({
            "id": id, "trigger": "warm-up", "data_source": crate::list::DEFAULT_SOURCE_ID,
            "started_at": self.now_ms, "status": "running", "cursor": null, "invocations": 0,
            "last_progress_at": self.now_ms, "lease_id": null, "lease_until": null,
            "failure_attempts": 0, "error": null,
        })
    }

    /// Upstream's answer to one request: `(status, body)`.
    pub fn http(&self, url: &str, body: Option<&str>) -> (u16, String) {
        match body {
            None if url.ends_with(".json") => (200, data_json()),
            None => (200, readme()),
            Some(body) => match serde_json::from_str::<Value>(body) {
                Ok(request) => (200, self.graphql(&request).to_string()),
                Err(e) => (400, json!({"message": e.to_string()}).to_string()),
            },
        }
    }

    fn graphql(&self, request: &Value) -> Value {
        let vars = &request["variables"];
        if let Some(answer) = processing::enrich(vars, self.now_ms) {
            return answer;
        }
        let mut data = rate_limited(self.now_ms);
        for (i, owner, name) in aliases(vars, "o", "n") {
            let with_labels = vars[format!("wl{i}")].as_bool().unwrap_or(false);
            let with_issues = vars[format!("wi{i}")].as_bool().unwrap_or(false);
            data.insert(
                format!("r{i}"),
                self.repo(owner, name, with_labels, with_issues),
            );
        }
        json!({ "data": data })
    }

    fn repo(&self, owner: &str, name: &str, with_labels: bool, with_issues: bool) -> Value {
        let mut repo = json!({
            "nameWithOwner": format!("{owner}/{name}"), "isArchived": false,
            "description": "A small library for reading configuration files.",
            "stargazerCount": 42, "pushedAt": iso8601(self.now_ms - 86_400_000),
            "primaryLanguage": {"name": "Rust"},
        });
        if with_labels {
            repo["labels"] = json!({"nodes": [{"name": LABEL}]});
        }
        if with_issues {
            let nodes: Vec<Value> = (1..=ISSUES_PER_REPO)
                .map(|n| self.issue(owner, name, n))
                .collect();
            repo["issues"] = json!({
                "totalCount": ISSUES_PER_REPO,
                "pageInfo": {"hasNextPage": false, "endCursor": null},
                "nodes": nodes,
            });
        }
        repo
    }

    fn issue(&self, owner: &str, name: &str, number: usize) -> Value {
        let day_ago = iso8601(self.now_ms - 86_400_000);
        json!({
            "number": number, "title": format!("Add a test for empty input, case {number}"),
            "url": format!("https://github.com/{owner}/{name}/issues/{number}"), "state": "OPEN",
            "createdAt": day_ago, "updatedAt": day_ago, "lastEditedAt": null,
            "labels": {"nodes": [{"name": LABEL}]},
            "assignees": {"totalCount": 0}, "comments": {"totalCount": 1},
            "closedByPullRequestsReferences": {"totalCount": 0},
        })
    }
}

/// A GraphQL answer's `data`, holding its `rateLimit` so far.
fn rate_limited(now_ms: i64) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    data.insert(
        "rateLimit".into(),
        json!({"cost": 1, "remaining": 4999, "resetAt": iso8601(now_ms + 3_600_000)}),
    );
    data
}

/// The `(i, owner, name)` a query's variables alias, `{owner}0`/`{name}0` on,
/// up to the first index either is missing at.
fn aliases<'a>(
    vars: &'a Value,
    owner: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (usize, &'a str, &'a str)> + 'a {
    (0..).map_while(move |i| {
        let o = vars[format!("{owner}{i}")].as_str()?;
        let n = vars[format!("{name}{i}")].as_str()?;
        Some((i, o, n))
    })
}

fn start_insert() -> Statement {
    store::start_run("", "", "", 0)
        .pop()
        .expect("start_run ends with its insert")
}

fn step_read(i: usize) -> String {
    store::step_read(None, 0).swap_remove(i).sql
}

pub(crate) fn packed(rows: Vec<Value>) -> Vec<Value> {
    vec![json!({ PACKED_COLUMN: Value::from(rows).to_string() })]
}

/// The first `limit` repos after `(owner, name)` as a step reads them
/// (store's `REPO_ROW_COLUMNS` order); ids from 1.
fn repo_rows(owner: &str, name: &str, limit: usize) -> Vec<Value> {
    let labels = json!([LABEL]).to_string();
    (0..REPOS)
        .filter(|&i| (OWNER, repo_name(i).as_str()) > (owner, name))
        .take(limit)
        .map(|i| {
            json!([
                i + 1,
                OWNER,
                repo_name(i),
                labels,
                "unresolved",
                null,
                "unknown",
                null,
                null,
                0
            ])
        })
        .collect()
}

/// Every repo and issue, as the outbox holds them after the step.
fn outbox_items() -> Vec<OutboxRow> {
    let item = |kind: &str, id: usize, number: Option<usize>| OutboxRow {
        kind: kind.into(),
        id: id as i64,
        owner: OWNER.into(),
        name: repo_name((id - 1) % REPOS),
        number: number.map(|n| n as i64),
        content_hash: HASH.into(),
        priority: 1,
    };
    let repos = (1..=REPOS).map(|id| item("repo", id, None));
    let issues =
        (1..=REPOS).flat_map(|id| (1..=ISSUES_PER_REPO).map(move |n| item("issue", id, Some(n))));
    repos.chain(issues).collect()
}

/// The outbox rows (store's `OUTBOX_COLUMNS` order).
fn outbox_rows() -> Vec<Value> {
    outbox_items()
        .into_iter()
        .map(|r| {
            json!([
                r.kind,
                r.id,
                r.owner,
                r.name,
                r.number,
                r.content_hash,
                r.priority
            ])
        })
        .collect()
}

fn mark_queued() -> Vec<Statement> {
    store::mark_queued(&outbox_items(), 0)
}

/// A guarded write (`… RETURNING col`) that took effect: one row.
fn returning(sql: &str) -> Vec<Value> {
    let Some((_, tail)) = sql.rsplit_once("RETURNING ") else {
        return vec![];
    };
    let column: String = tail
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    vec![json!({ column: 1 })]
}

/// The list, in data.json's shape.
fn data_json() -> String {
    let repos: Vec<Value> = (0..REPOS)
        .map(|i| {
            json!({
                "name": format!("Warm up {i}"),
                "link": format!("https://github.com/{OWNER}/{}", repo_name(i)),
                "label": LABEL, "technologies": ["Rust"],
                "description": "A small library for reading configuration files.",
            })
        })
        .collect();
    json!({ "repositories": repos }).to_string()
}

/// The README fallback, for the same repos.
fn readme() -> String {
    let entries: String = (0..REPOS)
        .map(|i| {
            format!(
                "- [Warm up {i}](https://github.com/{OWNER}/{}) _(label: {LABEL})_ <br> \
                 A small library for reading configuration files.\n",
                repo_name(i)
            )
        })
        .collect();
    format!("# Awesome for beginners\n\n## Rust\n\n{entries}")
}
