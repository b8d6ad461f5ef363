//! `POST /admin/reprocess`: send items back to the processor.
//!
//! Request: one of `{"repo": "o/r"}`, `{"issue": "o/r#12"}` or
//! `{"status": "failed" | "pending" | "completed", "limit": 500}`. The
//! matched items go back to `pending` with their attempts, last error,
//! analysis hash (so the processor's skip-if-unchanged check does not skip
//! them) and queued hash cleared, in one D1 batch committed before anything
//! is queued; then they are queued (repo messages for repos, issue messages
//! for open issues) and marked queued.
//!
//! A repo target is the repo alone, not its issues; a status target takes
//! repos first, then open issues, up to `limit` in all, from active repos.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad, close_invocation, json_object, send_to_processing, AdminError, AdminInvocation, ItemKind,
    SentItem, CLOSING_RESERVE,
};
use crate::logrec::{fields, Level, LogBook};
use crate::messages::QueueMessage;
use crate::platform::{Metered, Platform};
use crate::slug::{clip, RepoSlug};
use crate::sql::{decode_rows, Statement};

/// The default and the largest `limit` of a status target.
pub const DEFAULT_REPROCESS_LIMIT: usize = 500;
pub const MAX_REPROCESS_LIMIT: usize = 1000;

const SHAPE: &str = r#"{"repo": "owner/name"}, {"issue": "owner/name#number"} or {"status": "failed"|"pending"|"completed", "limit": 500}"#;

/// The processing states a status target may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReprocessStatus {
    Failed,
    Pending,
    Completed,
}

impl ReprocessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReprocessStatus::Failed => "failed",
            ReprocessStatus::Pending => "pending",
            ReprocessStatus::Completed => "completed",
        }
    }
}

/// What to reprocess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprocessTarget {
    Repo(RepoSlug),
    Issue {
        repo: RepoSlug,
        number: i64,
    },
    Status {
        status: ReprocessStatus,
        limit: usize,
    },
}

impl ReprocessTarget {
    /// How the target reads in logs and errors.
    pub fn describe(&self) -> String {
        match self {
            ReprocessTarget::Repo(slug) => format!("repo {slug}"),
            ReprocessTarget::Issue { repo, number } => format!("issue {repo}#{number}"),
            ReprocessTarget::Status { status, limit } => {
                format!("up to {limit} {} item(s)", status.as_str())
            }
        }
    }
}

/// Validate a body: exactly one of `repo`, `issue`, `status`; `limit`
/// only with `status`.
pub fn parse_reprocess(body: &[u8]) -> Result<ReprocessTarget, AdminError> {
    let obj = json_object(body, SHAPE)?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "repo" | "issue" | "status" | "limit"))
    {
        return Err(bad(format!("unknown field `{}`: send {SHAPE}", clip(k))));
    }
    let given: Vec<&str> = ["repo", "issue", "status"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    let [which] = given.as_slice() else {
        return Err(bad(format!(
            "give exactly one of `repo`, `issue` or `status`: send {SHAPE}"
        )));
    };
    let text = |k: &str| -> Result<&str, AdminError> {
        obj.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("`{k}` must be a string: send {SHAPE}")))
    };
    if *which != "status" && obj.contains_key("limit") {
        return Err(bad("`limit` applies only to a `status` target"));
    }
    match *which {
        "repo" => Ok(ReprocessTarget::Repo(parse_slug(text("repo")?, "repo")?)),
        "issue" => {
            let value = text("issue")?;
            let (repo, number) = value.rsplit_once('#').ok_or_else(|| {
                bad(format!(
                    "`issue` must be \"owner/name#number\", got {:?}",
                    clip(value)
                ))
            })?;
            let number = number
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    bad(format!(
                        "`issue` must end in a positive issue number, got {:?}",
                        clip(value)
                    ))
                })?;
            Ok(ReprocessTarget::Issue {
                repo: parse_slug(repo, "issue")?,
                number,
            })
        }
        _ => {
            let status = match text("status")? {
                "failed" => ReprocessStatus::Failed,
                "pending" => ReprocessStatus::Pending,
                "completed" => ReprocessStatus::Completed,
                other => {
                    return Err(bad(format!(
                        "`status` must be \"failed\", \"pending\" or \"completed\", got {:?}",
                        clip(other)
                    )))
                }
            };
            let limit = match obj.get("limit") {
                None | Some(Value::Null) => DEFAULT_REPROCESS_LIMIT,
                Some(v) => v
                    .as_u64()
                    .map(|n| n as usize)
                    .filter(|n| (1..=MAX_REPROCESS_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "`limit` must be an integer from 1 to {MAX_REPROCESS_LIMIT}, got {v}"
                        ))
                    })?,
            };
            Ok(ReprocessTarget::Status { status, limit })
        }
    }
}

fn parse_slug(value: &str, field: &str) -> Result<RepoSlug, AdminError> {
    value
        .parse::<RepoSlug>()
        .map_err(|e| bad(format!("`{field}` must name a repo as \"owner/name\": {e}")))
}

/// The reset: back to `pending`, nothing carried over that would make the
/// processor skip the item or the outbox think it was queued.
const RESET: &str = "processing_status = 'pending', attempts = 0, last_error = NULL, \
                     analysis_hash = NULL, queued_hash = NULL";

/// The items a status target matches: repos first, then open issues, of
/// active repos, in id order, `?2` in all. `?1` is the status.
const STATUS_TARGETS: &str = "WITH targets AS ( \
       SELECT kind, id, owner, name, number, content_hash, priority, state, grp FROM ( \
         SELECT 'repo' AS kind, id, owner, name, NULL AS number, content_hash, priority, \
                NULL AS state, 0 AS grp \
         FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND processing_status = ?1 \
         UNION ALL \
         SELECT 'issue', i.id, r.owner, r.name, i.number, i.content_hash, i.priority, i.state, 1 \
         FROM issues i JOIN repos r ON r.id = i.repo_id \
         WHERE r.active = 1 AND i.state = 'open' AND i.processing_status = ?1 \
       ) ORDER BY grp, id LIMIT ?2 \
     )";

/// One D1 batch: read the matched items, then reset them. The read comes
/// first and the resets match the same rows (issues are reset before repos,
/// which come first in the order, so the limit splits the same way).
///
/// For a repo or issue target the reset skips what cannot be queued (a
/// repo never scraped, a closed issue); the read still returns it so the
/// caller can say why.
pub fn reprocess_statements(target: &ReprocessTarget, now_ms: i64) -> Vec<Statement> {
    match target {
        ReprocessTarget::Repo(slug) => {
            let key = || vec![slug.owner.clone().into(), slug.name.clone().into()];
            let mut update = key();
            update.push(now_ms.into());
            vec![
                Statement::new(
                    "SELECT 'repo' AS kind, id, owner, name, NULL AS number, content_hash, priority, \
                     NULL AS state FROM repos WHERE owner = ?1 AND name = ?2",
                    key(),
                ),
                Statement::new(
                    format!(
                        "UPDATE repos SET {RESET}, updated_at = ?3 \
                         WHERE owner = ?1 AND name = ?2 AND content_hash IS NOT NULL"
                    ),
                    update,
                ),
            ]
        }
        ReprocessTarget::Issue { repo, number } => {
            let key = || {
                vec![
                    repo.owner.clone().into(),
                    repo.name.clone().into(),
                    (*number).into(),
                ]
            };
            let mut update = key();
            update.push(now_ms.into());
            vec![
                Statement::new(
                    "SELECT 'issue' AS kind, i.id, r.owner, r.name, i.number, i.content_hash, i.priority, \
                     i.state FROM issues i JOIN repos r ON r.id = i.repo_id \
                     WHERE r.owner = ?1 AND r.name = ?2 AND i.number = ?3",
                    key(),
                ),
                Statement::new(
                    format!(
                        "UPDATE issues SET {RESET}, updated_at = ?4 \
                         WHERE number = ?3 AND state = 'open' \
                           AND repo_id = (SELECT id FROM repos WHERE owner = ?1 AND name = ?2)"
                    ),
                    update,
                ),
            ]
        }
        ReprocessTarget::Status { status, limit } => {
            let key = || vec![status.as_str().into(), (*limit as i64).into()];
            let mut update = key();
            update.push(now_ms.into());
            vec![
                Statement::new(
                    format!(
                        "{STATUS_TARGETS} SELECT kind, id, owner, name, number, content_hash, priority, state \
                         FROM targets ORDER BY grp, id"
                    ),
                    key(),
                ),
                Statement::new(
                    format!(
                        "{STATUS_TARGETS} UPDATE issues SET {RESET}, updated_at = ?3 \
                         WHERE id IN (SELECT id FROM targets WHERE kind = 'issue')"
                    ),
                    update.clone(),
                ),
                Statement::new(
                    format!(
                        "{STATUS_TARGETS} UPDATE repos SET {RESET}, updated_at = ?3 \
                         WHERE id IN (SELECT id FROM targets WHERE kind = 'repo')"
                    ),
                    update,
                ),
            ]
        }
    }
}

/// An item a reprocess read matched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TargetRow {
    pub kind: String,
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub number: Option<i64>,
    pub content_hash: Option<String>,
    pub priority: i64,
    pub state: Option<String>,
}

impl TargetRow {
    fn message(&self) -> Option<QueueMessage> {
        let hash = self.content_hash.as_deref()?;
        match (self.kind.as_str(), self.number) {
            ("issue", Some(n)) => Some(QueueMessage::issue(
                &self.owner,
                &self.name,
                n,
                hash,
                self.priority,
            )),
            ("repo", _) => Some(QueueMessage::repo(
                &self.owner,
                &self.name,
                hash,
                self.priority,
            )),
            _ => None,
        }
    }

    fn sent_item(&self) -> SentItem {
        SentItem {
            kind: if self.kind == "issue" {
                ItemKind::Issue
            } else {
                ItemKind::Repo
            },
            id: self.id,
            content_hash: self.content_hash.clone().unwrap_or_default(),
        }
    }
}

/// Decide from the read whether a repo or issue target can go ahead:
/// 404 when it is not in D1, 409 when it cannot be queued.
pub fn check_target(target: &ReprocessTarget, rows: &[TargetRow]) -> Result<(), AdminError> {
    match target {
        ReprocessTarget::Status { .. } => Ok(()),
        ReprocessTarget::Repo(slug) => match rows.first() {
            None => Err(AdminError::NotFound(format!(
                "repo {slug} is not in D1: add it with POST /admin/enqueue"
            ))),
            Some(r) if r.content_hash.is_none() => Err(AdminError::Conflict(format!(
                "repo {slug} has not been scraped yet (no content hash); the next scrape run queues it"
            ))),
            Some(_) => Ok(()),
        },
        ReprocessTarget::Issue { repo, number } => match rows.first() {
            None => Err(AdminError::NotFound(format!(
                "issue {repo}#{number} is not in D1 (only open labelled issues the scraper found are stored)"
            ))),
            Some(r) if r.state.as_deref() != Some("open") => Err(AdminError::Conflict(format!(
                "issue {repo}#{number} is closed; only open issues are processed"
            ))),
            Some(_) => Ok(()),
        },
    }
}

/// What `POST /admin/reprocess` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReprocessReport {
    /// Items reset to `pending`.
    pub matched: usize,
    /// Items handed to the processing queue.
    pub requeued: usize,
    /// Items reset but not queued (a send failed); the scraper's outbox
    /// drain queues them on its next run.
    pub unsent: usize,
    pub batches: Vec<usize>,
    pub errors: Vec<String>,
    pub failed: bool,
}

impl ReprocessReport {
    /// 202, or 502 when a send (or the bookkeeping after it) failed.
    pub fn status(&self) -> u16 {
        if self.failed {
            502
        } else {
            202
        }
    }

    /// `{ok, matched, requeued, unsent, batches, errors}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": !self.failed,
            "matched": self.matched,
            "requeued": self.requeued,
            "unsent": self.unsent,
            "batches": self.batches,
            "errors": self.errors,
        })
    }
}

/// Read and reset (one D1 batch), queue, mark (one D1 batch).
pub async fn reprocess<P: Platform>(
    p: &mut Metered<'_, P>,
    target: &ReprocessTarget,
    inv: &AdminInvocation,
    book: &mut LogBook,
) -> Result<ReprocessReport, AdminError> {
    let now = p.now_ms();
    book.push(
        now,
        Level::Info,
        "reprocess_request",
        fields([("target", json!(target.describe()))]),
    );
    if !p.budget.can_afford(1 + CLOSING_RESERVE) {
        return Err(AdminError::Unavailable(
            "subrequest budget too small to reset the items".into(),
        ));
    }
    let rows = p
        .db(&reprocess_statements(target, now))
        .await
        .map_err(|e| {
            AdminError::Storage(format!(
                "could not reset the items, nothing was queued: {e}"
            ))
        })?;
    let targets: Vec<TargetRow> = decode_rows(rows.first().map(Vec::as_slice).unwrap_or(&[]))
        .map_err(|e| AdminError::Storage(e.to_string()))?;
    check_target(target, &targets)?;
    let queueable: Vec<(&TargetRow, QueueMessage)> = targets
        .iter()
        .filter_map(|t| t.message().map(|m| (t, m)))
        .collect();
    book.push(
        p.now_ms(),
        Level::Info,
        "items_reset",
        fields([("matched", json!(queueable.len()))]),
    );
    let messages: Vec<QueueMessage> = queueable.iter().map(|(_, m)| m.clone()).collect();
    let outcome = send_to_processing(p, &messages, book).await;
    let mut report = ReprocessReport {
        matched: queueable.len(),
        requeued: outcome.sent,
        unsent: queueable.len() - outcome.sent,
        batches: outcome.batches,
        errors: Vec::new(),
        failed: false,
    };
    if let Some(reason) = outcome.failure {
        report.failed = true;
        report.errors.push(format!(
            "{reason}: {} item(s) are reset to pending in D1 but not queued; the scraper's outbox drain queues them on its next run",
            report.unsent
        ));
    }
    let sent: Vec<SentItem> = outcome
        .sent_indexes
        .iter()
        .map(|&i| queueable[i].0.sent_item())
        .collect();
    let outcome = if report.failed { "partial" } else { "requeued" };
    let summary = json!({
        "outcome": outcome,
        "route": "reprocess",
        "target": target.describe(),
        "matched": report.matched,
        "requeued": report.requeued,
        "unsent": report.unsent,
        "batches": report.batches,
    });
    if let Some(e) = close_invocation(p, inv, &sent, outcome, summary, book).await {
        report.failed = true;
        report.errors.push(e);
    }
    Ok(report)
}
