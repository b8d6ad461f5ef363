//! Every D1 statement contribot runs, as SQL plus parameters, and the row
//! types they return. Native tests run each of them on SQLite with
//! `migrations/` applied.

use serde::{Deserialize, Serialize};

use crate::hash::ContentHash;
use crate::sql::{
    chunked_insert, json_rows_insert, packed, placeholders, SqlValue, Statement, MAX_BOUND_PARAMS,
};

/// Processing states of repos and issues.
pub const PROCESSING_STATUSES: [&str; 4] = ["pending", "processing", "completed", "failed"];

// ---------------------------------------------------------------- runs

/// A `running` run whose cursor has not moved for this long is stuck:
/// the next start marks it failed (lack of progress, not only of invocations).
pub const STALE_RUN_MS: i64 = 2 * 60 * 60 * 1000;
/// How long an invocation holds its run's lease. Longer than any invocation
/// lasts; a crashed holder's retry takes over once it expires.
pub const LEASE_MS: i64 = 5 * 60 * 1000;

/// Mark stuck runs failed, re-queue items whose message was lost, then start
/// `run_id` unless another run is active.
pub fn start_run(run_id: &str, trigger: &str, source: &str, now_ms: i64) -> Vec<Statement> {
    let mut out = vec![Statement::new(
        "UPDATE scrape_runs SET status = 'failed', finished_at = ?1, lease_id = NULL, \
         error = 'stalled: no progress for 2 hours' \
         WHERE status = 'running' AND COALESCE(last_progress_at, started_at) < ?2",
        vec![now_ms.into(), (now_ms - STALE_RUN_MS).into()],
    )];
    out.extend(requeue_lost(now_ms));
    out.push(Statement::new(
        "INSERT INTO scrape_runs (id, trigger, data_source, started_at, status, last_progress_at) \
         SELECT ?1, ?2, ?3, ?4, 'running', ?4 \
         WHERE NOT EXISTS (SELECT 1 FROM scrape_runs WHERE status = 'running')",
        vec![run_id.into(), trigger.into(), source.into(), now_ms.into()],
    ));
    out
}

/// Items handed to the queue this long ago and still pending lost their
/// message (Queues keep messages 24 hours on Free; a DLQ write can fail).
pub const REQUEUE_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// The reconciliation pass: forget the queued hash of items pending long
/// after they were queued, so the outbox hands them out again.
pub fn requeue_lost(now_ms: i64) -> Vec<Statement> {
    ["repos", "issues"]
        .into_iter()
        .map(|table| {
            Statement::new(
                format!(
                    "UPDATE {table} SET queued_hash = NULL WHERE processing_status = 'pending' \
                     AND queued_hash IS NOT NULL AND queued_at < ?1"
                ),
                vec![(now_ms - REQUEUE_AFTER_MS).into()],
            )
        })
        .collect()
}

const RUN_COLUMNS: &str = "id, trigger, data_source, started_at, status, cursor, invocations, \
     last_progress_at, lease_id, lease_until, failure_attempts, error";

/// The active run, if any.
pub fn active_run() -> Statement {
    Statement::new(
        format!(
            "SELECT {RUN_COLUMNS} FROM scrape_runs WHERE status = 'running' ORDER BY started_at DESC LIMIT 1"
        ),
        vec![],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunRow {
    pub id: String,
    pub trigger: String,
    pub data_source: String,
    pub started_at: i64,
    pub status: String,
    pub cursor: Option<String>,
    #[serde(default)]
    pub invocations: i64,
    #[serde(default)]
    pub last_progress_at: Option<i64>,
    #[serde(default)]
    pub lease_id: Option<String>,
    #[serde(default)]
    pub lease_until: Option<i64>,
    #[serde(default)]
    pub failure_attempts: i64,
    #[serde(default)]
    pub error: Option<String>,
}

pub fn run_by_id(run_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {RUN_COLUMNS} FROM scrape_runs WHERE id = ?1"),
        vec![run_id.into()],
    )
}

/// Take the run's lease for the continuation `seq`: only if the run is
/// running, its stored cursor is not ahead of `seq`, and no live invocation
/// holds it, or the holder had an earlier delivery of this same message
/// (which has ended: Queues redelivers only then). Returns the lease holder
/// when taken (compare-and-set).
pub fn take_lease(
    run_id: &str,
    invocation: &str,
    message_id: &str,
    seq: u32,
    now_ms: i64,
) -> Statement {
    Statement::new(
        "UPDATE scrape_runs SET lease_id = ?2, lease_until = ?4, lease_message = ?6 \
         WHERE id = ?1 AND status = 'running' \
           AND COALESCE(json_extract(cursor, '$.seq'), 0) <= ?3 \
           AND (lease_id IS NULL OR lease_until < ?5 OR lease_message = ?6) \
         RETURNING lease_id",
        vec![
            run_id.into(),
            invocation.into(),
            seq.into(),
            (now_ms + LEASE_MS).into(),
            now_ms.into(),
            message_id.into(),
        ],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeaseRow {
    pub lease_id: String,
}

/// End the running run, if any, as cancelled by an operator. Its in-flight
/// invocation loses its guarded writes and sends no continuation.
pub fn cancel_run(reason: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE scrape_runs SET status = 'failed', outcome = 'cancelled', error = ?1, \
         finished_at = ?2, lease_id = NULL WHERE status = 'running' RETURNING id",
        vec![reason.into(), now_ms.into()],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunIdRow {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SourceRow {
    pub id: String,
    pub last_good_hash: Option<String>,
}

pub fn data_source(id: &str) -> Statement {
    Statement::new(
        "SELECT id, last_good_hash FROM data_sources WHERE id = ?1",
        vec![id.into()],
    )
}

/// Counters one invocation adds to its run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCounters {
    pub repos_seen: i64,
    pub repos_changed: i64,
    pub repos_skipped: i64,
    pub issues_upserted: i64,
    pub issues_closed: i64,
    pub messages_queued: i64,
    pub github_requests: i64,
    pub graphql_points: i64,
}

impl RunCounters {
    /// `col = col + ?N, …` for every counter, numbered from `first`.
    fn increments(first: usize) -> String {
        Self::COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {c} + ?{}", first + i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    const COLUMNS: [&'static str; 8] = [
        "repos_seen",
        "repos_changed",
        "repos_skipped",
        "issues_upserted",
        "issues_closed",
        "messages_queued",
        "github_requests",
        "graphql_points",
    ];

    fn params(&self) -> [SqlValue; 8] {
        [
            self.repos_seen.into(),
            self.repos_changed.into(),
            self.repos_skipped.into(),
            self.issues_upserted.into(),
            self.issues_closed.into(),
            self.messages_queued.into(),
            self.github_requests.into(),
            self.graphql_points.into(),
        ]
    }
}

/// How an invocation leaves its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunProgress {
    /// More to do: the cursor goes to the next invocation. `failure_attempts`
    /// is the count of consecutive transient failures it waits out.
    Continuing {
        cursor_json: String,
        failure_attempts: i64,
    },
    Completed {
        outcome: String,
    },
    Failed {
        error: String,
    },
}

/// Add one invocation's counters to its run, move the run on and release
/// the lease — only while `invocation` holds it (returns the run id then;
/// no row means the lease was lost or the run cancelled: send nothing).
pub fn advance_run(
    run_id: &str,
    invocation: &str,
    c: &RunCounters,
    subrequests: u32,
    progress: &RunProgress,
    now_ms: i64,
) -> Statement {
    let (status, cursor, outcome, error, finished, continued, failures): (
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<i64>,
        i64,
        i64,
    ) = match progress {
        RunProgress::Continuing {
            cursor_json,
            failure_attempts,
        } => (
            "running",
            Some(cursor_json),
            None,
            None,
            None,
            1,
            *failure_attempts,
        ),
        RunProgress::Completed { outcome } => {
            ("completed", None, Some(outcome), None, Some(now_ms), 0, 0)
        }
        RunProgress::Failed { error } => (
            "failed",
            None,
            Some("failed"),
            Some(error),
            Some(now_ms),
            0,
            0,
        ),
    };
    let mut params: Vec<SqlValue> = vec![run_id.into(), invocation.into()];
    params.extend(c.params()); // ?3 ..= ?10
    params.extend([
        continued.into(),
        subrequests.into(),
        status.into(),
        cursor.into(),
        outcome.into(),
        error.into(),
        finished.into(),
        failures.into(),
        now_ms.into(),
    ]);
    Statement::new(
        format!(
            "UPDATE scrape_runs SET invocations = invocations + 1, continuations = continuations + ?11, \
               {}, subrequests_used = subrequests_used + ?12, max_subrequests = MAX(max_subrequests, ?12), \
               status = CASE WHEN ?13 = 'completed' AND error IS NOT NULL THEN 'failed' ELSE ?13 END, \
               cursor = COALESCE(?14, cursor), outcome = COALESCE(?15, outcome), \
               error = COALESCE(?16, error), finished_at = COALESCE(?17, finished_at), \
               failure_attempts = ?18, lease_id = NULL, lease_until = NULL, \
               last_progress_at = CASE WHEN ?18 = 0 THEN ?19 ELSE last_progress_at END \
             WHERE id = ?1 AND status = 'running' AND lease_id = ?2 RETURNING id",
            RunCounters::increments(3)
        ),
        params,
    )
}

/// Persist a run's cursor and add counters mid-invocation, with a phase's
/// own write in the same batch — only while `invocation` holds the lease.
pub fn save_progress(
    run_id: &str,
    invocation: &str,
    c: &RunCounters,
    cursor_json: &str,
    now_ms: i64,
) -> Statement {
    let mut params: Vec<SqlValue> = vec![run_id.into(), invocation.into()];
    params.extend(c.params()); // ?3 ..= ?10
    params.extend([cursor_json.into(), now_ms.into()]);
    Statement::new(
        format!(
            "UPDATE scrape_runs SET cursor = ?11, last_progress_at = ?12, {} \
             WHERE id = ?1 AND status = 'running' AND lease_id = ?2",
            RunCounters::increments(3)
        ),
        params,
    )
}

/// One invocation's row in the budget ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationRecord {
    pub id: String,
    pub service: &'static str,
    pub run_id: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
    pub subrequests: u32,
    pub budget: u32,
    pub outcome: String,
    pub summary_json: String,
    pub log_key: Option<String>,
}

pub fn record_invocation(r: &InvocationRecord) -> Statement {
    Statement::new(
        "INSERT OR REPLACE INTO invocations \
         (id, service, run_id, started_at, finished_at, subrequests, budget, outcome, summary, log_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        vec![
            r.id.clone().into(),
            r.service.into(),
            r.run_id.clone().into(),
            r.started_at.into(),
            r.finished_at.into(),
            r.subrequests.into(),
            r.budget.into(),
            r.outcome.clone().into(),
            r.summary_json.clone().into(),
            r.log_key.clone().into(),
        ],
    )
}

/// Count a delivery of `message_id`; returns `attempts` (1 on first sight).
pub fn count_delivery(queue: &str, message_id: &str, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO deliveries (queue, message_id, attempts, first_seen_at) VALUES (?1, ?2, 1, ?3) \
         ON CONFLICT (queue, message_id) DO UPDATE SET attempts = deliveries.attempts + 1 \
         RETURNING attempts",
        vec![queue.into(), message_id.into(), now_ms.into()],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttemptsRow {
    pub attempts: i64,
}

/// [`count_delivery`] for a whole batch's messages in one statement; its
/// rows are [`DeliveryRow`]s, in no particular order.
pub fn count_deliveries(queue: &str, message_ids: &[&str], now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO deliveries (queue, message_id, attempts, first_seen_at) \
         SELECT ?1, value, 1, ?2 FROM json_each(?3) WHERE true \
         ON CONFLICT (queue, message_id) DO UPDATE SET attempts = deliveries.attempts + 1 \
         RETURNING message_id, attempts",
        vec![
            queue.into(),
            now_ms.into(),
            serde_json::Value::from(message_ids).to_string().into(),
        ],
    )
}

/// A delivery counted by [`count_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeliveryRow {
    pub message_id: String,
    pub attempts: i64,
}

/// Forget deliveries older than a week.
pub fn prune_deliveries(now_ms: i64) -> Statement {
    Statement::new(
        "DELETE FROM deliveries WHERE first_seen_at < ?1",
        vec![(now_ms - 7 * 86_400_000).into()],
    )
}

// ---------------------------------------------------------------- list

/// What D1 knows of a listed repo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedRow {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub data_source: String,
    pub list_hash: Option<String>,
    pub active: i64,
}

pub fn repos_of_source(source: &str) -> Statement {
    Statement::new(
        "SELECT id, owner, name, data_source, list_hash, active FROM repos WHERE data_source = ?1",
        vec![source.into()],
    )
}

/// A listed repo as written to D1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedWrite {
    pub owner: String,
    pub name: String,
    pub position: i64,
    pub labels_json: String,
    pub technologies_json: String,
    pub description: Option<String>,
    pub list_hash: ContentHash,
}

/// Insert new listed repos, or refresh their list fields when the list
/// entry changed. Rows whose list hash is unchanged are not written.
pub fn upsert_listed(source: &str, rows: &[ListedWrite], now_ms: i64) -> Vec<Statement> {
    let values = rows
        .iter()
        .map(|r| {
            vec![
                r.owner.clone().into(),
                r.name.clone().into(),
                source.into(),
                r.position.into(),
                r.labels_json.clone().into(),
                r.technologies_json.clone().into(),
                r.description.clone().into(),
                r.list_hash.0.clone().into(),
                now_ms.into(),
                now_ms.into(),
            ]
        })
        .collect();
    chunked_insert(
        "INSERT INTO repos (owner, name, data_source, list_position, listed_labels, technologies, \
         list_description, list_hash, created_at, updated_at)",
        "ON CONFLICT (owner, name) DO UPDATE SET \
           list_position = excluded.list_position, listed_labels = excluded.listed_labels, \
           technologies = excluded.technologies, list_description = excluded.list_description, \
           list_hash = excluded.list_hash, active = 1, \
           label_status = CASE WHEN repos.listed_labels IS NOT excluded.listed_labels \
                               THEN 'unresolved' ELSE repos.label_status END, \
           updated_at = excluded.updated_at \
         WHERE repos.list_hash IS NOT excluded.list_hash OR repos.active = 0",
        10,
        values,
    )
}

/// Repos that left the list stop being scraped (rows are kept).
pub fn deactivate_repos(ids: &[i64], now_ms: i64) -> Vec<Statement> {
    ids.chunks(MAX_BOUND_PARAMS - 1)
        .map(|chunk| {
            let mut params: Vec<SqlValue> = vec![now_ms.into()];
            params.extend(chunk.iter().map(|id| SqlValue::from(*id)));
            Statement::new(
                format!(
                    "UPDATE repos SET active = 0, updated_at = ? WHERE active = 1 AND id IN ({})",
                    placeholders(chunk.len())
                ),
                params,
            )
        })
        .collect()
}

pub fn source_good(source: &str, list_hash: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE data_sources SET last_good_hash = ?2, last_good_at = ?3, last_error = NULL WHERE id = ?1",
        vec![source.into(), list_hash.into(), now_ms.into()],
    )
}

pub fn source_error(source: &str, error: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE data_sources SET last_error = ?2, last_error_at = ?3 WHERE id = ?1",
        vec![source.into(), error.into(), now_ms.into()],
    )
}

// ---------------------------------------------------------------- scrape steps

/// A repo as a scrape step needs it (a row of a packed select, in
/// [`REPO_ROW_COLUMNS`] order).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepoRow {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub listed_labels: String,
    pub label_status: String,
    pub resolved_label: Option<String>,
    pub upstream_status: String,
    pub state_hash: Option<String>,
    pub content_hash: Option<String>,
    #[serde(default)]
    pub scrape_failures: i64,
}

const REPO_ROW_COLUMNS: [&str; 10] = [
    "id",
    "owner",
    "name",
    "listed_labels",
    "label_status",
    "resolved_label",
    "upstream_status",
    "state_hash",
    "content_hash",
    "scrape_failures",
];

impl RepoRow {
    pub fn listed_labels(&self) -> Vec<String> {
        serde_json::from_str(&self.listed_labels).unwrap_or_default()
    }
}

/// An issue's stored hashes, for diffing (a row of a packed select).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueHashRow {
    pub repo_id: i64,
    pub number: i64,
    pub state_hash: Option<String>,
    pub content_hash: String,
    pub state: String,
}

const ISSUE_HASH_COLUMNS: [&str; 5] = ["repo_id", "number", "state_hash", "content_hash", "state"];

const STEP_REPOS_WHERE: &str =
    "active = 1 AND (owner > ?1 OR (owner = ?1 AND name > ?2)) ORDER BY owner, name LIMIT ?3";

/// The next `limit` active repos after `(owner, name)`, and their issues'
/// hashes: one D1 batch, one subrequest, each result one packed string
/// (decode with [`crate::sql::decode_packed`]).
pub fn step_read(after: Option<(&str, &str)>, limit: usize) -> Vec<Statement> {
    let (o, n) = after.unwrap_or(("", ""));
    let params = vec![o.into(), n.into(), (limit as i64).into()];
    vec![
        Statement::new(
            packed(
                &REPO_ROW_COLUMNS,
                &format!("FROM repos WHERE {STEP_REPOS_WHERE}"),
            ),
            params.clone(),
        ),
        Statement::new(
            packed(
                &ISSUE_HASH_COLUMNS,
                &format!(
                    "FROM issues WHERE repo_id IN (SELECT id FROM repos WHERE {STEP_REPOS_WHERE})"
                ),
            ),
            params,
        ),
    ]
}

/// Repos (and their issues' hashes) by `owner/name`, for a retry round.
pub fn retry_read(slugs: &[(String, String)]) -> Vec<Statement> {
    let slugs: Vec<String> = slugs.iter().map(|(o, n)| format!("{o}/{n}")).collect();
    let list = serde_json::Value::from(slugs).to_string();
    let repos_where = "active = 1 AND (owner || '/' || name) IN (SELECT value FROM json_each(?1))";
    vec![
        Statement::new(
            packed(
                &REPO_ROW_COLUMNS,
                &format!("FROM repos WHERE {repos_where} ORDER BY owner, name"),
            ),
            vec![list.clone().into()],
        ),
        Statement::new(
            packed(
                &ISSUE_HASH_COLUMNS,
                &format!("FROM issues WHERE repo_id IN (SELECT id FROM repos WHERE {repos_where})"),
            ),
            vec![list.into()],
        ),
    ]
}

/// A repo whose alias failed: its attempts, and GitHub's reason. `failed`
/// repos were given up on for this run; their stored issues stay as they are.
pub fn record_repo_failure(id: i64, attempts: i64, reason: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE repos SET scrape_failures = ?2, scrape_error = ?3, scrape_error_at = ?4 WHERE id = ?1",
        vec![id.into(), attempts.into(), reason.into(), now_ms.into()],
    )
}

/// A repo answered whole again: forget its failures.
pub fn clear_repo_failure(id: i64) -> Statement {
    Statement::new(
        "UPDATE repos SET scrape_failures = 0, scrape_error = NULL, scrape_error_at = NULL \
         WHERE id = ?1 AND scrape_failures > 0",
        vec![id.into()],
    )
}

/// A repo's scraped state, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoWrite {
    pub id: i64,
    pub name_with_owner: String,
    pub description: Option<String>,
    pub primary_language: Option<String>,
    pub stars: i64,
    pub is_archived: bool,
    pub pushed_at: Option<String>,
    pub label_status: String,
    pub resolved_label: Option<String>,
    pub state_hash: ContentHash,
    pub content_hash: ContentHash,
    pub priority: i64,
}

/// Repo rows per state update (one JSON parameter each).
pub const REPOS_PER_UPDATE: usize = 500;

/// Write a repo's scraped state: [`update_repos_state`] of one.
pub fn update_repo_state(r: &RepoWrite, now_ms: i64) -> Statement {
    update_repos_state(std::slice::from_ref(r), now_ms)
        .pop()
        .expect("one row makes one statement")
}

/// Write repos' scraped state, many rows per statement (one JSON parameter,
/// as [`upsert_issues`], so a step's repos cross to D1 as one string). A
/// repo is rewritten only when its state hash or label status changed, and
/// becomes `pending` only when its content hash changed.
pub fn update_repos_state(rows: &[RepoWrite], now_ms: i64) -> Vec<Statement> {
    const COLUMNS: [&str; 12] = [
        "id",
        "name_with_owner",
        "description",
        "primary_language",
        "stars",
        "is_archived",
        "pushed_at",
        "label_status",
        "resolved_label",
        "state_hash",
        "content_hash",
        "priority",
    ];
    let fields: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("json_extract(value, '$[{i}]') AS {c}"))
        .collect();
    let sql = format!(
        "WITH w AS (SELECT {} FROM json_each(?1)) \
         UPDATE repos SET name_with_owner = w.name_with_owner, description = w.description, \
           primary_language = w.primary_language, stars = w.stars, is_archived = w.is_archived, \
           pushed_at = w.pushed_at, upstream_status = 'ok', label_status = w.label_status, \
           resolved_label = w.resolved_label, label_checked_at = ?2, state_hash = w.state_hash, \
           processing_status = CASE WHEN repos.content_hash IS NOT w.content_hash \
                                    THEN 'pending' ELSE repos.processing_status END, \
           attempts = CASE WHEN repos.content_hash IS NOT w.content_hash THEN 0 ELSE repos.attempts END, \
           content_hash = w.content_hash, priority = w.priority, updated_at = ?2 \
         FROM w WHERE repos.id = w.id \
           AND (repos.state_hash IS NOT w.state_hash OR repos.label_status IS NOT w.label_status)",
        fields.join(", ")
    );
    rows.chunks(REPOS_PER_UPDATE)
        .map(|chunk| {
            let values: Vec<serde_json::Value> = chunk
                .iter()
                .map(|r| {
                    serde_json::json!([
                        r.id,
                        r.name_with_owner,
                        r.description,
                        r.primary_language,
                        r.stars,
                        i64::from(r.is_archived),
                        r.pushed_at,
                        r.label_status,
                        r.resolved_label,
                        r.state_hash.0,
                        r.content_hash.0,
                        r.priority,
                    ])
                })
                .collect();
            Statement::new(
                sql.clone(),
                vec![
                    serde_json::Value::from(values).to_string().into(),
                    now_ms.into(),
                ],
            )
        })
        .collect()
}

/// A repo GitHub no longer has (NOT_FOUND).
/// It cannot be processed, so it is `failed` with GitHub's reason.
/// A repo's listed label resolved to `label` before its issues were read
/// (the scraper carries it to the retry pass, which asks under this name).
pub fn store_resolved_label(id: i64, label: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE repos SET label_status = 'resolved', resolved_label = ?2, label_checked_at = ?3, \
         updated_at = ?3 WHERE id = ?1",
        vec![id.into(), label.into(), now_ms.into()],
    )
}

pub fn mark_repo_upstream_missing(id: i64, reason: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE repos SET upstream_status = 'not_found', processing_status = 'failed', \
         last_error = ?3, processed_at = ?2, updated_at = ?2 \
         WHERE id = ?1 AND upstream_status IS NOT 'not_found'",
        vec![
            id.into(),
            now_ms.into(),
            format!("not found on GitHub: {reason}").into(),
        ],
    )
}

/// An open labelled issue's metadata as written by the scraper (no body:
/// the processor fetches and stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueWrite {
    pub repo_id: i64,
    pub number: i64,
    pub title: String,
    pub url: String,
    pub state: String,
    pub labels_json: String,
    pub assignee_count: i64,
    pub comment_count: i64,
    pub linked_pr_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub last_edited_at: Option<String>,
    pub state_hash: ContentHash,
    pub content_hash: ContentHash,
    pub priority: i64,
    /// The availability verdict's reason (`ok` when available).
    pub availability: String,
}

/// One issue row as the upsert's JSON array, borrowed from its write (a
/// tuple struct serialises as an array: no `Value` tree, no copies).
#[derive(Serialize)]
struct IssueColumns<'a>(
    i64,
    i64,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    i64,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    i64,
    i64,
    &'a str,
);

impl<'a> IssueColumns<'a> {
    fn of(r: &'a IssueWrite) -> Self {
        IssueColumns(
            r.repo_id,
            r.number,
            &r.title,
            &r.url,
            &r.state,
            &r.labels_json,
            r.assignee_count,
            r.comment_count,
            r.linked_pr_count,
            &r.created_at,
            &r.updated_at,
            r.last_edited_at.as_deref(),
            r.state_hash.as_str(),
            r.content_hash.as_str(),
            r.priority,
            i64::from(r.availability == "ok"),
            &r.availability,
        )
    }
}

/// Issue rows per upsert statement (one JSON parameter each).
pub const ISSUES_PER_UPSERT: usize = 500;

/// Insert new issues or rewrite changed ones (by state hash or state). An
/// issue whose *content* hash changed goes back to `pending`; one whose
/// comments, assignees, labels or availability changed is rewritten but
/// keeps its analysis and is not queued. Unchanged rows are not written.
pub fn upsert_issues(rows: &[IssueWrite], now_ms: i64) -> Vec<Statement> {
    let values: Vec<IssueColumns<'_>> = rows.iter().map(IssueColumns::of).collect();
    json_rows_insert(
        "INSERT INTO issues (repo_id, number, title, url, state, labels, assignee_count, \
         comment_count, linked_pr_count, gh_created_at, gh_updated_at, gh_last_edited_at, state_hash, \
         content_hash, priority, available, availability, created_at, updated_at)",
        17,
        &[now_ms.into(), now_ms.into()],
        "ON CONFLICT (repo_id, number) DO UPDATE SET \
           title = excluded.title, url = excluded.url, state = excluded.state, \
           labels = excluded.labels, assignee_count = excluded.assignee_count, \
           comment_count = excluded.comment_count, linked_pr_count = excluded.linked_pr_count, \
           gh_created_at = excluded.gh_created_at, gh_updated_at = excluded.gh_updated_at, \
           gh_last_edited_at = excluded.gh_last_edited_at, state_hash = excluded.state_hash, \
           content_hash = excluded.content_hash, priority = excluded.priority, \
           available = excluded.available, availability = excluded.availability, \
           processing_status = CASE WHEN issues.content_hash IS NOT excluded.content_hash \
                                    THEN 'pending' ELSE issues.processing_status END, \
           attempts = CASE WHEN issues.content_hash IS NOT excluded.content_hash THEN 0 ELSE issues.attempts END, \
           last_error = CASE WHEN issues.content_hash IS NOT excluded.content_hash THEN NULL ELSE issues.last_error END, \
           updated_at = excluded.updated_at \
         WHERE issues.state_hash IS NOT excluded.state_hash OR issues.state IS NOT excluded.state",
        &values,
        ISSUES_PER_UPSERT,
    )
}

/// Open issues a complete refresh of their repo did not return: closed.
pub fn close_issues(repo_id: i64, numbers: &[i64], now_ms: i64) -> Vec<Statement> {
    numbers
        .chunks(MAX_BOUND_PARAMS - 2)
        .map(|chunk| {
            let mut params: Vec<SqlValue> = vec![repo_id.into(), now_ms.into()];
            params.extend(chunk.iter().map(|n| SqlValue::from(*n)));
            Statement::new(
                format!(
                    "UPDATE issues SET state = 'closed', updated_at = ?2 \
                     WHERE repo_id = ?1 AND state = 'open' AND number IN ({})",
                    (0..chunk.len())
                        .map(|i| format!("?{}", i + 3))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                params,
            )
        })
        .collect()
}

// ---------------------------------------------------------------- outbox

/// AI upgrades for this run: up to `limit` heuristic fallbacks (AI failed,
/// was capped or out of quota — not the offline backend by choice), as many
/// as the UTC day's remaining neuron allowance covers, go back to `pending`
/// in value order to a beginner (see [`crate::ai::requeue_upgrades`]).
/// `limit` bounds one run's queue operations.
pub fn requeue_heuristic_fallbacks(limit: u32, now_ms: i64) -> Vec<Statement> {
    crate::ai::requeue_upgrades(limit, now_ms)
}

/// An item committed to D1 but not yet handed to the processing queue (a
/// row of a packed select, in [`OUTBOX_COLUMNS`] order).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutboxRow {
    pub kind: String,
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub number: Option<i64>,
    pub content_hash: String,
    pub priority: i64,
}

const OUTBOX_COLUMNS: [&str; 7] = [
    "kind",
    "id",
    "owner",
    "name",
    "number",
    "content_hash",
    "priority",
];

/// Up to `limit` unqueued items: repos first, then issues, freshest first
/// (decode with [`crate::sql::decode_packed`]).
pub fn outbox(limit: usize) -> Statement {
    Statement::new(
        packed(
            &OUTBOX_COLUMNS,
            "FROM ( \
               SELECT 'repo' AS kind, r.id AS id, r.owner AS owner, r.name AS name, NULL AS number, \
                      r.content_hash AS content_hash, r.priority AS priority, 0 AS grp \
               FROM repos r \
               WHERE r.active = 1 AND r.content_hash IS NOT NULL AND r.queued_hash IS NOT r.content_hash \
                 AND r.processing_status IN ('pending', 'failed') \
               UNION ALL \
               SELECT 'issue', i.id, r.owner, r.name, i.number, i.content_hash, i.priority, 1 \
               FROM issues i JOIN repos r ON r.id = i.repo_id \
               WHERE r.active = 1 AND i.state = 'open' AND i.queued_hash IS NOT i.content_hash \
                 AND i.processing_status IN ('pending', 'failed') \
             ) ORDER BY grp, priority DESC, id LIMIT ?1",
        ),
        vec![(limit as i64).into()],
    )
}

/// Remember that these items were handed to the queue, with the content
/// hash each message carried: one statement per table, one JSON parameter.
pub fn mark_queued(items: &[OutboxRow], now_ms: i64) -> Vec<Statement> {
    let mut out = Vec::new();
    for (table, kind) in [("repos", "repo"), ("issues", "issue")] {
        let sent: Vec<serde_json::Value> = items
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| serde_json::json!([i.id, i.content_hash]))
            .collect();
        if sent.is_empty() {
            continue;
        }
        out.push(Statement::new(
            format!(
                "UPDATE {table} SET queued_hash = json_extract(sent.value, '$[1]'), queued_at = ?2 \
                 FROM json_each(?1) AS sent WHERE {table}.id = json_extract(sent.value, '$[0]')"
            ),
            vec![
                serde_json::Value::from(sent).to_string().into(),
                now_ms.into(),
            ],
        ));
    }
    out
}

// ---------------------------------------------------------------- failures

/// Note why a run will end failed, while it carries on (e.g. the list was
/// unusable and the last good repo set is refreshed instead).
pub fn note_run_error(run_id: &str, error: &str) -> Statement {
    Statement::new(
        "UPDATE scrape_runs SET error = ?2 WHERE id = ?1",
        vec![run_id.into(), error.into()],
    )
}

/// End a run as failed, with the reason.
pub fn fail_run(run_id: &str, error: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE scrape_runs SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1 AND status = 'running'",
        vec![run_id.into(), error.into(), now_ms.into()],
    )
}

/// End a run as failed because its continuation `seq` was dead-lettered —
/// only while the run still depends on it (its cursor is not past `seq`):
/// a duplicate that dead-letters never fails the run that moved on.
pub fn fail_run_at_seq(run_id: &str, seq: u32, error: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE scrape_runs SET status = 'failed', error = ?2, finished_at = ?3, lease_id = NULL \
         WHERE id = ?1 AND status = 'running' AND COALESCE(json_extract(cursor, '$.seq'), 0) <= ?4",
        vec![run_id.into(), error.into(), now_ms.into(), seq.into()],
    )
}

/// Record a queue message that cannot be tied to a row, with its reason.
/// The body is kept (bounded) so an operator can see what arrived.
pub fn record_dead_letter(
    queue: &str,
    message_id: &str,
    body: &str,
    reason: &str,
    attempts: i64,
    now_ms: i64,
) -> Statement {
    let body: String = body.chars().take(4096).collect();
    Statement::new(
        "INSERT INTO dead_letters (queue, message_id, body, reason, attempts, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (queue, message_id) DO UPDATE SET reason = excluded.reason, attempts = excluded.attempts",
        vec![queue.into(), message_id.into(), body.into(), reason.into(), attempts.into(), now_ms.into()],
    )
}

// ---------------------------------------------------------------- processor

/// What the processor needs to know of a queued repo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcRepoRow {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub description: Option<String>,
    pub primary_language: Option<String>,
    pub languages: Option<String>,
    pub topics: Option<String>,
    pub listed_labels: String,
    pub content_hash: Option<String>,
    pub analysis_hash: Option<String>,
    pub prompt_version: Option<String>,
    pub processing_status: String,
    pub attempts: i64,
}

/// What the processor needs to know of a queued issue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcIssueRow {
    pub id: i64,
    pub repo_id: i64,
    pub owner: String,
    pub name: String,
    pub number: i64,
    pub state: String,
    pub content_hash: String,
    pub analysis_hash: Option<String>,
    pub prompt_version: Option<String>,
    pub processing_status: String,
    pub attempts: i64,
    /// [`crate::hash::analysed_text_hash`] of the title and body the stored
    /// analysis was made from.
    #[serde(default)]
    pub body_hash: Option<String>,
    #[serde(default)]
    pub analysis_model: Option<String>,
    #[serde(default)]
    pub fallback_reason: Option<String>,
}

const PROC_REPO_COLUMNS: [&str; 13] = [
    "id",
    "owner",
    "name",
    "description",
    "primary_language",
    "languages",
    "topics",
    "listed_labels",
    "content_hash",
    "analysis_hash",
    "prompt_version",
    "processing_status",
    "attempts",
];

/// Repos by `owner/name` keys, [`packed`] in [`ProcRepoRow`] order.
pub fn repos_by_slug(slugs: &[String]) -> Statement {
    Statement::new(
        packed(
            &PROC_REPO_COLUMNS,
            "FROM repos WHERE owner || '/' || name IN (SELECT value FROM json_each(?1))",
        ),
        vec![serde_json::Value::from(slugs).to_string().into()],
    )
}

const PROC_ISSUE_COLUMNS: [&str; 14] = [
    "id",
    "repo_id",
    "owner",
    "name",
    "number",
    "state",
    "content_hash",
    "analysis_hash",
    "prompt_version",
    "processing_status",
    "attempts",
    "body_hash",
    "analysis_model",
    "fallback_reason",
];

/// Issues by `owner/name#number` keys, [`packed`] in [`ProcIssueRow`] order.
pub fn issues_by_key(keys: &[String]) -> Statement {
    Statement::new(
        packed(
            &PROC_ISSUE_COLUMNS,
            "FROM (SELECT i.*, r.owner AS owner, r.name AS name \
             FROM issues i JOIN repos r ON r.id = i.repo_id \
             WHERE r.owner || '/' || r.name || '#' || i.number IN (SELECT value FROM json_each(?1)))",
        ),
        vec![serde_json::Value::from(keys).to_string().into()],
    )
}

/// Provenance stored with every analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub model: String,
    pub prompt_version: String,
    /// The content hash the analysis was made for: the one the processor
    /// read. The write only lands while the row still has it.
    pub input_hash: String,
    pub analyzed_at: i64,
    pub fallback_reason: Option<String>,
}

/// A repo's enrichment and summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoResult {
    pub id: i64,
    pub description: Option<String>,
    pub languages_json: String,
    pub languages_raw_json: String,
    pub topics_json: String,
    pub summary: String,
    pub provenance: Provenance,
    pub attempts: i64,
}

/// Commit a repo's summary, guarded on the content hash it was made for: if
/// the scraper stored newer content meanwhile, nothing is written and the
/// row stays `pending` for it (its `queued_hash` still names the old hash,
/// so the outbox sends it again). Returns the id when it landed.
pub fn complete_repo(r: &RepoResult, now_ms: i64) -> Statement {
    let p = &r.provenance;
    Statement::new(
        "UPDATE repos SET description = COALESCE(?2, description), languages = ?3, languages_raw = ?4, topics = ?5, \
         summary = ?6, analysis_model = ?7, prompt_version = ?8, analysis_hash = ?9, analyzed_at = ?10, \
         fallback_reason = ?11, processing_status = 'completed', processed_at = ?12, attempts = ?13, \
         last_error = NULL, updated_at = ?12 WHERE id = ?1 AND content_hash IS ?9 RETURNING id",
        vec![
            r.id.into(),
            r.description.clone().into(),
            r.languages_json.clone().into(),
            r.languages_raw_json.clone().into(),
            r.topics_json.clone().into(),
            r.summary.clone().into(),
            p.model.clone().into(),
            p.prompt_version.clone().into(),
            p.input_hash.clone().into(),
            p.analyzed_at.into(),
            p.fallback_reason.clone().into(),
            now_ms.into(),
            r.attempts.into(),
        ],
    )
}

/// An issue's fetched body and its analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueResult {
    pub id: i64,
    pub body: String,
    /// [`crate::hash::analysed_text_hash`] of the title and body analysed.
    pub body_hash: String,
    pub intro: String,
    pub difficulty: i64,
    pub first_steps_json: String,
    pub skills_json: String,
    pub provenance: Provenance,
    pub attempts: i64,
}

/// Commit an issue's analysis, guarded on the content hash it was made for
/// (see [`complete_repo`]). The title and every other scraped field stay
/// the scraper's: only the fetched body and the analysis are written.
/// Returns the id when it landed.
pub fn complete_issue(r: &IssueResult, now_ms: i64) -> Statement {
    let p = &r.provenance;
    Statement::new(
        "UPDATE issues SET body = ?2, body_hash = ?3, intro = ?4, difficulty = ?5, first_steps = ?6, skills = ?7, \
         analysis_model = ?8, prompt_version = ?9, analysis_hash = ?10, analyzed_at = ?11, fallback_reason = ?12, \
         processing_status = 'completed', processed_at = ?13, attempts = ?14, last_error = NULL, updated_at = ?13 \
         WHERE id = ?1 AND content_hash = ?10 RETURNING id",
        vec![
            r.id.into(),
            r.body.clone().into(),
            r.body_hash.clone().into(),
            r.intro.clone().into(),
            r.difficulty.into(),
            r.first_steps_json.clone().into(),
            r.skills_json.clone().into(),
            p.model.clone().into(),
            p.prompt_version.clone().into(),
            p.input_hash.clone().into(),
            p.analyzed_at.into(),
            p.fallback_reason.clone().into(),
            now_ms.into(),
            r.attempts.into(),
        ],
    )
}

/// The issue was queued for new content (its title or `lastEditedAt`
/// changed) but the text fetched hashes to what was already analysed: the
/// stored analysis now stands for `content_hash` too, with no AI call. The
/// fetched body is stored. Guarded like [`complete_issue`].
pub fn keep_issue_analysis(
    id: i64,
    content_hash: &str,
    body: &str,
    attempts: i64,
    now_ms: i64,
) -> Statement {
    Statement::new(
        "UPDATE issues SET body = ?3, analysis_hash = ?2, processing_status = 'completed', processed_at = ?5, \
         attempts = ?4, last_error = NULL, updated_at = ?5 WHERE id = ?1 AND content_hash = ?2 RETURNING id",
        vec![
            id.into(),
            content_hash.into(),
            body.into(),
            attempts.into(),
            now_ms.into(),
        ],
    )
}

/// An issue found closed upstream when the processor reached it.
pub fn close_issue_processed(id: i64, attempts: i64, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE issues SET state = 'closed', processing_status = 'completed', processed_at = ?2, attempts = ?3, \
         last_error = NULL, updated_at = ?2 WHERE id = ?1",
        vec![id.into(), now_ms.into(), attempts.into()],
    )
}

/// Which table a processed item lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemTable {
    Repos,
    Issues,
}

impl ItemTable {
    fn name(self) -> &'static str {
        match self {
            ItemTable::Repos => "repos",
            ItemTable::Issues => "issues",
        }
    }
}

/// A failure that ends the item: `failed`, with the reason and attempt
/// count, for the content it was queued with (newer content stays pending).
pub fn fail_item(
    table: ItemTable,
    id: i64,
    content_hash: Option<&str>,
    reason: &str,
    attempts: i64,
    now_ms: i64,
) -> Statement {
    Statement::new(
        format!(
            "UPDATE {} SET processing_status = 'failed', last_error = ?2, attempts = ?3, processed_at = ?4, \
             updated_at = ?4 WHERE id = ?1 AND content_hash IS ?5",
            table.name()
        ),
        vec![
            id.into(),
            reason.into(),
            attempts.into(),
            now_ms.into(),
            content_hash.into(),
        ],
    )
}

/// A transient failure: still pending, with the last error, to be retried.
pub fn note_item_retry(table: ItemTable, id: i64, reason: &str, attempts: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {} SET last_error = ?2, attempts = ?3 WHERE id = ?1",
            table.name()
        ),
        vec![id.into(), reason.into(), attempts.into()],
    )
}

/// A message that exhausted its retries: its item ends `failed` with the
/// last error it recorded.
pub fn dead_letter_repo(owner: &str, name: &str, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE repos SET processing_status = 'failed', \
         last_error = 'dead-lettered after ' || attempts || ' attempt(s): ' || COALESCE(last_error, 'no error recorded'), \
         processed_at = ?3, updated_at = ?3 \
         WHERE owner = ?1 AND name = ?2 AND processing_status != 'completed'",
        vec![owner.into(), name.into(), now_ms.into()],
    )
}

pub fn dead_letter_issue(owner: &str, name: &str, number: i64, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE issues SET processing_status = 'failed', \
         last_error = 'dead-lettered after ' || attempts || ' attempt(s): ' || COALESCE(last_error, 'no error recorded'), \
         processed_at = ?4, updated_at = ?4 \
         WHERE number = ?3 AND processing_status != 'completed' \
           AND repo_id = (SELECT id FROM repos WHERE owner = ?1 AND name = ?2)",
        vec![owner.into(), name.into(), number.into(), now_ms.into()],
    )
}
