//! The operator surface's decisions: bearer-token auth in constant time,
//! routing and request limits, validation of every request, the statements
//! and workflows behind each route, and the shapes of their answers.
//!
//! The scraper's `admin` module only moves bytes: it reads the request
//! (bounded), calls into here, performs the I/O these functions plan and
//! writes the response they shape.
//!
//! - [`enqueue`]: `POST /admin/enqueue`, bulk-add repos as data source
//!   `manual` and queue the new ones.
//! - [`reprocess`]: `POST /admin/reprocess`, send items back to the processor.
//! - [`logs`]: `GET /admin/logs`, the R2 JSONL logs of a day, filtered and
//!   bounded.
//! - this module: auth, routes, errors, `GET /admin/status`, and what the
//!   routes that queue messages share (chunked sends, the outbox mark, the
//!   invocation's ledger row).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::ai;
use crate::logrec::{self, fields, Level, LogBook};
use crate::messages::QueueMessage;
use crate::platform::{Metered, Platform, QueueName, DEFAULT_SEND_CONCURRENCY};
use crate::sql::{SqlValue, Statement, MAX_BOUND_PARAMS};
use crate::store::{self, InvocationRecord};

pub mod enqueue;
pub mod logs;
pub mod reprocess;

pub use enqueue::{parse_enqueue, EnqueueReport, EnqueueRequest, ManualRepo};
pub use logs::{parse_log_query, LogCursor, LogPage, LogQuery, LogScan, LogStep};
pub use reprocess::{parse_reprocess, ReprocessReport, ReprocessTarget};

/// The largest admin request body accepted.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

// ------------------------------------------------------------------ auth

/// The verdict on an admin request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Allowed,
    /// 401: the header is missing or the token is wrong.
    Unauthorized,
    /// 503: no `ADMIN_TOKEN` is configured, so the admin API is off.
    Disabled,
}

impl AuthVerdict {
    pub fn status(self) -> u16 {
        match self {
            AuthVerdict::Allowed => 200,
            AuthVerdict::Unauthorized => 401,
            AuthVerdict::Disabled => 503,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthVerdict::Allowed => "ok",
            AuthVerdict::Unauthorized => "missing or wrong bearer token: check ADMIN_TOKEN",
            AuthVerdict::Disabled => "admin API disabled: no ADMIN_TOKEN secret is configured",
        }
    }
}

/// Check `Authorization: Bearer <token>` against the configured token.
pub fn authorize(header: Option<&str>, configured: Option<&str>) -> AuthVerdict {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return AuthVerdict::Disabled;
    };
    let presented = header
        .and_then(|h| {
            h.trim()
                .strip_prefix("Bearer ")
                .or_else(|| h.trim().strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        AuthVerdict::Allowed
    } else {
        AuthVerdict::Unauthorized
    }
}

/// Compare without an early exit on the first differing byte. The length
/// is not secret (a token's length is fixed by whoever made it).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

// ------------------------------------------------------------------ errors

/// Why an admin request was refused or failed, with its HTTP status.
/// Every message says what was wrong and, where it helps, what to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404: the named repo or issue is not in D1.
    #[error("{0}")]
    NotFound(String),
    /// 409: the item exists but cannot be handled as asked.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over [`MAX_BODY_BYTES`].
    #[error("request body over {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// 500: D1 failed; nothing was queued.
    #[error("{0}")]
    Storage(String),
    /// 503: a binding or the subrequest budget is missing.
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    pub fn status(&self) -> u16 {
        match self {
            AdminError::BadRequest(_) => 400,
            AdminError::NotFound(_) => 404,
            AdminError::Conflict(_) => 409,
            AdminError::PayloadTooLarge => 413,
            AdminError::Storage(_) => 500,
            AdminError::Unavailable(_) => 503,
        }
    }

    /// The `{ok: false, error}` body.
    pub fn to_json(&self) -> Value {
        json!({"ok": false, "error": self.to_string()})
    }
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadRequest(message.into())
}

/// Parse a request body as one JSON object.
pub(crate) fn json_object(
    body: &[u8],
    shape: &str,
) -> Result<serde_json::Map<String, Value>, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(format!("request body is empty: send {shape}")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad(format!("request body must be a JSON object: {shape}"))),
        Err(e) => Err(bad(format!(
            "request body is not valid JSON ({e}): send {shape}"
        ))),
    }
}

// ------------------------------------------------------------------ routes

/// The admin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /admin/run`: start a scrape run.
    Run,
    /// `POST /admin/run/cancel`: end the running run as cancelled.
    CancelRun,
    /// `GET /admin/status`: counts, runs, failures, backlog.
    Status,
    /// `POST /admin/enqueue`: bulk-add manual repos and queue them.
    Enqueue,
    /// `POST /admin/reprocess`: send items back to the processor.
    Reprocess,
    /// `GET /admin/logs`: the R2 JSONL logs of a day.
    Logs,
}

impl Route {
    /// Whether the route reads a request body (read with a bound).
    pub fn reads_body(self) -> bool {
        matches!(self, Route::Enqueue | Route::Reprocess)
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    Found(Route),
    /// 405, with the method the route takes (for `Allow`).
    MethodNotAllowed {
        allow: &'static str,
    },
    /// 404.
    NotFound,
}

/// Route an authenticated `/admin/...` request.
pub fn route(method: &str, path: &str) -> Routing {
    let (route, allow) = match path {
        "/admin/run" => (Route::Run, "POST"),
        "/admin/run/cancel" => (Route::CancelRun, "POST"),
        "/admin/status" => (Route::Status, "GET"),
        "/admin/enqueue" => (Route::Enqueue, "POST"),
        "/admin/reprocess" => (Route::Reprocess, "POST"),
        "/admin/logs" => (Route::Logs, "GET"),
        _ => return Routing::NotFound,
    };
    if method.eq_ignore_ascii_case(allow) {
        Routing::Found(route)
    } else {
        Routing::MethodNotAllowed { allow }
    }
}

/// Whether a body of `len` bytes (read so far, or declared) is over the limit.
pub fn body_too_large(len: usize) -> bool {
    len > MAX_BODY_BYTES
}

/// How much of a too-large body is read (and dropped) before the 413 goes
/// out. A server that answers while the client is still sending closes on
/// unread data, and the client sees a reset instead of the 413; draining a
/// bounded amount first lets an ordinary oversized request read its answer,
/// while a huge one is still cut off.
pub const MAX_DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

/// Whether to keep reading (and dropping) a too-large body after `read` bytes.
pub fn keep_draining(read: usize) -> bool {
    read <= MAX_DRAIN_BYTES
}

/// One query parameter as an integer in `1..=max`, or its default.
pub(crate) fn bounded_param(
    value: Option<&str>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, AdminError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad(format!(
            "`{name}` must be an integer from 1 to {max}, got {:?}",
            crate::slug::clip(v)
        ))),
    }
}

/// Query parameters as a map, refusing unknown and repeated names.
pub(crate) fn query_map<'a>(
    pairs: &'a [(String, String)],
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<&'a str, &'a str>, AdminError> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown query parameter `{}` (allowed: {})",
                crate::slug::clip(k),
                allowed.join(", ")
            )));
        }
        if out.insert(k.as_str(), v.as_str()).is_some() {
            return Err(bad(format!("query parameter `{k}` given more than once")));
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ status

/// How much of each list `GET /admin/status` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusQuery {
    /// `?runs=N`: the last N scrape runs (1..=100, default 10).
    pub runs: usize,
    /// `?failed=N`: the N most recent failures (1..=500, default 50).
    pub failed: usize,
}

pub const DEFAULT_STATUS_RUNS: usize = 10;
pub const MAX_STATUS_RUNS: usize = 100;
pub const DEFAULT_STATUS_FAILED: usize = 50;
pub const MAX_STATUS_FAILED: usize = 500;

pub fn parse_status_query(pairs: &[(String, String)]) -> Result<StatusQuery, AdminError> {
    let q = query_map(pairs, &["runs", "failed"])?;
    Ok(StatusQuery {
        runs: bounded_param(
            q.get("runs").copied(),
            "runs",
            DEFAULT_STATUS_RUNS,
            MAX_STATUS_RUNS,
        )?,
        failed: bounded_param(
            q.get("failed").copied(),
            "failed",
            DEFAULT_STATUS_FAILED,
            MAX_STATUS_FAILED,
        )?,
    })
}

/// The status report's queries, as one D1 batch. `now_ms` picks the UTC
/// day whose AI neurons the report sets against the cap.
pub fn status_queries(runs: usize, failed: usize, now_ms: i64) -> Vec<Statement> {
    let mut out = vec![
        Statement::new(
            "SELECT processing_status AS status, COUNT(*) AS n FROM repos WHERE active = 1 GROUP BY processing_status",
            vec![],
        ),
        Statement::new(
            "SELECT processing_status AS status, COUNT(*) AS n FROM issues WHERE state = 'open' GROUP BY processing_status",
            vec![],
        ),
        Statement::new(
            "SELECT id, trigger, started_at, finished_at, status, invocations, continuations, repos_seen, \
             repos_changed, repos_skipped, issues_upserted, issues_closed, messages_queued, subrequests_used, \
             max_subrequests, github_requests, graphql_points, outcome, error \
             FROM scrape_runs ORDER BY started_at DESC LIMIT ?1",
            vec![(runs as i64).into()],
        ),
        Statement::new(
            "SELECT 'repo' AS kind, owner || '/' || name AS item, attempts, last_error, processed_at FROM repos \
             WHERE processing_status = 'failed' \
             UNION ALL \
             SELECT 'issue', r.owner || '/' || r.name || '#' || i.number, i.attempts, i.last_error, i.processed_at \
             FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.processing_status = 'failed' \
             UNION ALL \
             SELECT 'message', queue || ':' || message_id, attempts, reason, received_at FROM dead_letters \
             ORDER BY processed_at DESC LIMIT ?1",
            vec![(failed as i64).into()],
        ),
        Statement::new(
            "SELECT owner || '/' || name AS repo, listed_labels FROM repos \
             WHERE active = 1 AND label_status = 'not_found' ORDER BY owner, name",
            vec![],
        ),
        Statement::new(
            "SELECT \
               (SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND processing_status IN ('pending', 'processing')) AS repos, \
               (SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status IN ('pending', 'processing')) AS issues, \
               (SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND queued_hash IS NOT content_hash \
                  AND processing_status IN ('pending', 'failed')) \
               + (SELECT COUNT(*) FROM issues WHERE state = 'open' AND queued_hash IS NOT content_hash \
                  AND processing_status IN ('pending', 'failed')) AS unqueued",
            vec![],
        ),
        Statement::new(
            "SELECT service, COUNT(*) AS invocations, MAX(subrequests) AS max_subrequests, \
             AVG(subrequests) AS mean_subrequests FROM invocations GROUP BY service",
            vec![],
        ),
    ];
    out.extend(ai::budget_queries(now_ms));
    out
}

/// Where the AI budget's rows start in [`status_queries`].
const AI_ROWS: usize = 7;

/// One row of a `GROUP BY status` count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub n: i64,
}

/// Counts by processing status, every status present (zero when absent).
fn status_counts(rows: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for s in store::PROCESSING_STATUSES {
        out.insert(s.to_string(), json!(0));
    }
    for r in rows {
        if let (Some(s), Some(n)) = (r.get("status").and_then(Value::as_str), r.get("n")) {
            out.insert(s.to_string(), n.clone());
        }
    }
    Value::Object(out)
}

/// The `GET /admin/status` body from the rows of [`status_queries`]:
/// `{ok, repos, issues, runs, failed, label_not_found, backlog, invocations,
/// ai}`; `ai` is today's neurons against the cap, the AI backlog and its
/// estimated completion day ([`ai::budget_status`]).
pub fn status_report(rows: &[Vec<Value>], now_ms: i64) -> Value {
    let get = |i: usize| rows.get(i).cloned().unwrap_or_default();
    let label_not_found: Vec<Value> = get(4)
        .into_iter()
        .map(|r| {
            let labels: Value = r
                .get("listed_labels")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(json!([]));
            json!({"repo": r.get("repo"), "listed_labels": labels})
        })
        .collect();
    json!({
        "ok": true,
        "repos": status_counts(&get(0)),
        "issues": status_counts(&get(1)),
        "runs": get(2),
        "failed": get(3),
        "label_not_found": label_not_found,
        "backlog": get(5).into_iter().next().unwrap_or(json!({})),
        "invocations": get(6),
        "ai": ai::budget_status(rows.get(AI_ROWS..).unwrap_or_default(), now_ms),
    })
}

// ------------------------------------------------------------------ shared by the queueing routes

/// An admin call that writes and queues is an invocation of the scraper:
/// it has an id, a run id (`admin-…`) naming its log, and a ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminInvocation {
    pub id: String,
    /// `admin-<id>`: the log key's run part, and the `run=` filter of `/admin/logs`.
    pub run_id: String,
    pub started_at: i64,
}

impl AdminInvocation {
    /// `logs/YYYY/MM/DD/scraper-admin-<id>-<ts>.jsonl`.
    pub fn log_key(&self) -> String {
        logrec::log_key("scraper", &self.run_id, self.started_at)
    }
}

/// Subrequests kept for closing an admin invocation: the D1 write that
/// marks what was sent (and records the invocation) and the R2 log.
pub const CLOSING_RESERVE: u32 = 2;

/// Which table an item lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Repo,
    Issue,
}

/// An item handed to the processing queue, with the hash it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentItem {
    pub kind: ItemKind,
    pub id: i64,
    pub content_hash: String,
}

/// Remember that these items were queued: `queued_hash = content_hash`,
/// only where the row still has the hash that was sent (a scrape that
/// changed it in between leaves the new content in the outbox).
pub fn mark_sent(items: &[SentItem]) -> Vec<Statement> {
    let mut out = Vec::new();
    for (table, kind) in [("repos", ItemKind::Repo), ("issues", ItemKind::Issue)] {
        let pairs: Vec<&SentItem> = items.iter().filter(|i| i.kind == kind).collect();
        for chunk in pairs.chunks(MAX_BOUND_PARAMS / 2) {
            let tuples = vec!["(?, ?)"; chunk.len()].join(", ");
            let params = chunk
                .iter()
                .flat_map(|i| [SqlValue::from(i.id), SqlValue::from(&i.content_hash)])
                .collect();
            out.push(Statement::new(
                format!(
                    "UPDATE {table} SET queued_hash = content_hash \
                     WHERE (id, content_hash) IN (VALUES {tuples})"
                ),
                params,
            ));
        }
    }
    out
}

/// What happened to the messages of one admin call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// How many messages were sent.
    pub sent: usize,
    /// Which of the given messages were sent (indexes into the input).
    pub sent_indexes: Vec<usize>,
    /// The size of each `send_batch` call that succeeded.
    pub batches: Vec<usize>,
    /// Why sending stopped early.
    pub failure: Option<String>,
}

/// Send `messages` to the processing queue in `send_batch` chunks (≤ 100
/// messages, ≤ 256 KB), keeping [`CLOSING_RESERVE`] subrequests for the
/// close. Logs each call. Stops at the first failure.
pub async fn send_to_processing<P: Platform>(
    p: &mut Metered<'_, P>,
    messages: &[QueueMessage],
    book: &mut LogBook,
) -> SendOutcome {
    let report = p
        .send_all(
            QueueName::Processing,
            messages,
            CLOSING_RESERVE,
            DEFAULT_SEND_CONCURRENCY,
        )
        .await;
    let mut out = SendOutcome {
        sent_indexes: report.sent_indexes().collect(),
        ..SendOutcome::default()
    };
    for chunk in &report.chunks {
        let size = chunk.len;
        match &chunk.result {
            Ok(()) => {
                out.sent += size;
                out.batches.push(size);
                book.push(
                    p.now_ms(),
                    Level::Info,
                    "send_batch",
                    fields([("queue", json!("processing")), ("size", json!(size))]),
                );
            }
            Err(e) => {
                let reason = format!("send_batch of {size} message(s) failed: {e}");
                book.push(
                    p.now_ms(),
                    Level::Error,
                    "send_batch_failed",
                    fields([
                        ("queue", json!("processing")),
                        ("size", json!(size)),
                        ("error", json!(reason)),
                    ]),
                );
                out.failure.get_or_insert(reason);
            }
        }
    }
    if out.failure.is_none() && report.unsent_for_budget > 0 {
        out.failure = Some(format!(
            "subrequest budget reached after {} send_batch call(s) ({} of {} used)",
            report.chunks.len(),
            p.budget.used(),
            p.budget.limit()
        ));
    }
    out
}

/// Close an admin invocation: one D1 batch marks what was sent and records
/// the invocation in the ledger; the summary line ends the log book.
/// Returns the D1 error, if any (the sends already happened).
pub(crate) async fn close_invocation<P: Platform>(
    p: &mut Metered<'_, P>,
    inv: &AdminInvocation,
    sent: &[SentItem],
    outcome: &str,
    mut summary: Value,
    book: &mut LogBook,
) -> Option<String> {
    // This batch and the shell's R2 log are still to come.
    let subrequests = p.budget.used() + CLOSING_RESERVE;
    summary["subrequests_used"] = json!(subrequests);
    let now = p.now_ms();
    let record = InvocationRecord {
        id: inv.id.clone(),
        service: "scraper",
        run_id: Some(inv.run_id.clone()),
        started_at: inv.started_at,
        finished_at: now,
        subrequests,
        budget: p.budget.limit(),
        outcome: outcome.to_string(),
        summary_json: summary.to_string(),
        log_key: Some(inv.log_key()),
    };
    let mut statements = mark_sent(sent);
    statements.push(store::record_invocation(&record));
    let error = match p.db(&statements).await {
        Ok(_) => None,
        Err(e) => {
            let e = format!("could not record the queued items in D1 ({e}); the scraper's outbox may queue them again");
            book.push(
                now,
                Level::Error,
                "close_failed",
                fields([("error", json!(e))]),
            );
            Some(e)
        }
    };
    book.push_summary(now, summary);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_distinguishes_missing_wrong_and_disabled() {
        assert_eq!(
            authorize(Some("Bearer s3cret-token"), Some("s3cret-token")),
            AuthVerdict::Allowed
        );
        assert_eq!(
            authorize(Some("Bearer nope"), Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(
            authorize(None, Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(
            authorize(Some("s3cret-token"), Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(authorize(Some("Bearer x"), None), AuthVerdict::Disabled);
        assert_eq!(authorize(Some("Bearer "), Some("")), AuthVerdict::Disabled);
    }

    #[test]
    fn constant_time_eq_matches_plain_equality() {
        for (a, b) in [
            ("", ""),
            ("a", ""),
            ("abc", "abc"),
            ("abc", "abd"),
            ("abc", "abcd"),
        ] {
            assert_eq!(constant_time_eq(a.as_bytes(), b.as_bytes()), a == b);
        }
    }

    #[test]
    fn routes_answer_405_with_the_allowed_method_and_404_otherwise() {
        assert_eq!(
            route("POST", "/admin/enqueue"),
            Routing::Found(Route::Enqueue)
        );
        assert_eq!(route("get", "/admin/logs"), Routing::Found(Route::Logs));
        assert_eq!(
            route("GET", "/admin/reprocess"),
            Routing::MethodNotAllowed { allow: "POST" }
        );
        assert_eq!(
            route("POST", "/admin/status"),
            Routing::MethodNotAllowed { allow: "GET" }
        );
        assert_eq!(route("GET", "/admin/nope"), Routing::NotFound);
        assert_eq!(route("GET", "/admin/logs/"), Routing::NotFound);
    }

    #[test]
    fn bounded_params_refuse_zero_and_over_the_max() {
        assert_eq!(bounded_param(None, "runs", 10, 100), Ok(10));
        assert_eq!(bounded_param(Some("7"), "runs", 10, 100), Ok(7));
        for bad in ["0", "101", "-1", "x", ""] {
            assert!(bounded_param(Some(bad), "runs", 10, 100).is_err(), "{bad}");
        }
    }
}
