//! `POST /admin/enqueue`: add repos by hand (data source `manual`) and
//! queue the ones that are new.
//!
//! Request: `{"items": [{"repoUrl": "https://github.com/o/r", "label": "help wanted"}, …]}`,
//! at most [`MAX_ENQUEUE_ITEMS`]. Each item is checked on its own: a bad one
//! is reported in `errors` and skipped, the rest go ahead. New repos are
//! inserted idempotently (an existing repo, from any source, is left alone
//! and counted as skipped), then queued in `send_batch` chunks of ≤ 100, and
//! marked queued so the scraper's outbox does not send them again.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad, close_invocation, json_object, send_to_processing, AdminError, AdminInvocation, ItemKind,
    SentItem, CLOSING_RESERVE,
};
use crate::hash::ContentHash;
use crate::logrec::{fields, Level, LogBook};
use crate::messages::QueueMessage;
use crate::platform::{Metered, Platform};
use crate::slug::{self, clip, RepoSlug};
use crate::sql::{chunked_insert, decode_rows, Statement};

/// At most this many items per request.
pub const MAX_ENQUEUE_ITEMS: usize = 1000;
/// The longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// The label a manual repo is scraped for when the item names none.
pub const DEFAULT_MANUAL_LABEL: &str = "good first issue";
/// The `data_sources` row of operator-added repos.
pub const MANUAL_SOURCE: &str = "manual";
/// Queue priority of operator-added repos: the highest a scraped item gets,
/// since someone asked for these.
pub const MANUAL_PRIORITY: i64 = 100;

const SHAPE: &str =
    r#"{"items": [{"repoUrl": "https://github.com/<owner>/<name>", "label": "<optional>"}]}"#;

/// A valid item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRepo {
    pub slug: RepoSlug,
    pub label: String,
    pub content_hash: ContentHash,
}

/// A validated request: the distinct valid repos, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueRequest {
    /// How many items the request had.
    pub items: usize,
    pub repos: Vec<ManualRepo>,
    /// Valid items naming a repo an earlier item already named.
    pub duplicates: usize,
    /// One message per invalid item: `items[3]: invalid repoUrl: ftp://x`.
    pub errors: Vec<String>,
}

/// The content hash of a never-scraped manual repo: what it is known by
/// until the scraper fetches it (and hashes what GitHub says).
pub fn manual_content_hash(slug: &RepoSlug, label: &str) -> ContentHash {
    ContentHash::of_canonical(&json!(["manual/v1", slug.owner, slug.name, label]))
}

/// Validate a body. `Err` (400) only when the request as a whole is
/// unusable; a bad item is reported and skipped.
pub fn parse_enqueue(body: &[u8]) -> Result<EnqueueRequest, AdminError> {
    let obj = json_object(body, SHAPE)?;
    let items = match obj.get("items") {
        None => return Err(bad(format!("`items` is required: send {SHAPE}"))),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad(format!("`items` must be an array: send {SHAPE}"))),
    };
    if items.len() > MAX_ENQUEUE_ITEMS {
        return Err(bad(format!(
            "`items` has {} entries; at most {MAX_ENQUEUE_ITEMS} per request",
            items.len()
        )));
    }
    let mut out = EnqueueRequest {
        items: items.len(),
        repos: Vec::new(),
        duplicates: 0,
        errors: Vec::new(),
    };
    let mut seen: BTreeSet<RepoSlug> = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        match parse_item(item) {
            Ok((slug, label)) => {
                if seen.insert(slug.clone()) {
                    let content_hash = manual_content_hash(&slug, &label);
                    out.repos.push(ManualRepo {
                        slug,
                        label,
                        content_hash,
                    });
                } else {
                    out.duplicates += 1;
                }
            }
            Err(reason) => out.errors.push(format!("items[{i}]: {reason}")),
        }
    }
    Ok(out)
}

fn parse_item(item: &Value) -> Result<(RepoSlug, String), String> {
    let Some(obj) = item.as_object() else {
        return Err("must be an object {repoUrl, label?}".into());
    };
    let url = match obj.get("repoUrl") {
        None | Some(Value::Null) => return Err("missing repoUrl".into()),
        Some(Value::String(url)) => url,
        Some(_) => return Err("repoUrl must be a string".into()),
    };
    if !slug::is_strict_repo_url(url) {
        return Err(format!(
            "invalid repoUrl: {} (expected https://github.com/<owner>/<name>)",
            clip(url)
        ));
    }
    let slug =
        slug::parse_github_url(url).map_err(|e| format!("invalid repoUrl: {} ({e})", clip(url)))?;
    let label = match obj.get("label") {
        None | Some(Value::Null) => DEFAULT_MANUAL_LABEL.to_string(),
        Some(Value::String(label)) => {
            let label = label.trim();
            if label.is_empty() {
                return Err("label is empty (omit it for \"good first issue\")".into());
            }
            if label.chars().count() > MAX_LABEL_CHARS {
                return Err(format!("label longer than {MAX_LABEL_CHARS} characters"));
            }
            label.to_string()
        }
        Some(_) => return Err("label must be a string".into()),
    };
    Ok((slug, label))
}

/// Insert the repos that are new, as data source `manual`; rows that
/// exist (any source) are left alone. Each statement returns the rows it
/// inserted, so the caller learns which are new from the same batch.
pub fn insert_manual_repos(repos: &[ManualRepo], now_ms: i64) -> Vec<Statement> {
    let rows = repos
        .iter()
        .map(|r| {
            let labels = serde_json::to_string(&[&r.label]).unwrap_or_else(|_| "[]".into());
            vec![
                r.slug.owner.clone().into(),
                r.slug.name.clone().into(),
                MANUAL_SOURCE.into(),
                labels.into(),
                r.content_hash.0.clone().into(),
                MANUAL_PRIORITY.into(),
                now_ms.into(),
                now_ms.into(),
            ]
        })
        .collect();
    chunked_insert(
        "INSERT INTO repos (owner, name, data_source, listed_labels, content_hash, priority, \
         created_at, updated_at)",
        "ON CONFLICT (owner, name) DO NOTHING RETURNING id, owner, name",
        8,
        rows,
    )
}

/// A row [`insert_manual_repos`] inserted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InsertedRow {
    pub id: i64,
    pub owner: String,
    pub name: String,
}

/// What `POST /admin/enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueReport {
    /// New repos handed to the processing queue.
    pub enqueued: usize,
    /// Valid items not queued because the repo was already in D1 or named
    /// twice in the request.
    pub skipped: usize,
    /// Invalid items (each has an entry in `errors`).
    pub invalid: usize,
    /// New repos saved in D1 but not queued (a send failed); the
    /// scraper's outbox drain queues them on its next run.
    pub unsent: usize,
    pub errors: Vec<String>,
    /// The size of each `send_batch` call made.
    pub batches: Vec<usize>,
    /// Part of the work failed after the rows were committed.
    pub failed: bool,
}

impl EnqueueReport {
    /// 202 when every valid item is queued or skipped; 502 when a send (or
    /// the bookkeeping after it) failed: the body says what was done.
    pub fn status(&self) -> u16 {
        if self.failed {
            502
        } else {
            202
        }
    }

    /// `{ok, enqueued, skipped, invalid, unsent, errors, batches}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": !self.failed,
            "enqueued": self.enqueued,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "unsent": self.unsent,
            "errors": self.errors,
            "batches": self.batches,
        })
    }
}

/// Insert, queue and mark: one D1 batch, ⌈new/100⌉ sends, one D1 batch
/// (the shell's R2 log makes one more subrequest). `Err` only when nothing
/// was written.
pub async fn enqueue<P: Platform>(
    p: &mut Metered<'_, P>,
    request: EnqueueRequest,
    inv: &AdminInvocation,
    book: &mut LogBook,
) -> Result<EnqueueReport, AdminError> {
    let now = p.now_ms();
    book.push(
        now,
        Level::Info,
        "enqueue_request",
        fields([
            ("items", json!(request.items)),
            ("valid", json!(request.repos.len())),
            ("duplicates", json!(request.duplicates)),
            ("invalid", json!(request.errors.len())),
        ]),
    );
    for e in &request.errors {
        book.push(
            now,
            Level::Warn,
            "item_invalid",
            fields([("error", json!(e))]),
        );
    }
    let mut report = EnqueueReport {
        enqueued: 0,
        skipped: request.duplicates,
        invalid: request.errors.len(),
        unsent: 0,
        errors: request.errors,
        batches: Vec::new(),
        failed: false,
    };
    let mut sent_items = Vec::new();
    if !request.repos.is_empty() {
        if !p.budget.can_afford(1 + CLOSING_RESERVE) {
            return Err(AdminError::Unavailable(
                "subrequest budget too small to write the repos".into(),
            ));
        }
        let rows = p
            .db(&insert_manual_repos(&request.repos, now))
            .await
            .map_err(|e| {
                AdminError::Storage(format!(
                    "could not write the repos, nothing was enqueued: {e}"
                ))
            })?;
        let mut inserted: BTreeMap<(String, String), i64> = BTreeMap::new();
        for statement_rows in &rows {
            let decoded: Vec<InsertedRow> =
                decode_rows(statement_rows).map_err(|e| AdminError::Storage(e.to_string()))?;
            for r in decoded {
                inserted.insert((r.owner, r.name), r.id);
            }
        }
        // Request order, whatever order RETURNING produced.
        let new: Vec<(i64, &ManualRepo)> = request
            .repos
            .iter()
            .filter_map(|r| {
                inserted
                    .get(&(r.slug.owner.clone(), r.slug.name.clone()))
                    .map(|id| (*id, r))
            })
            .collect();
        report.skipped += request.repos.len() - new.len();
        book.push(
            p.now_ms(),
            Level::Info,
            "repos_inserted",
            fields([
                ("inserted", json!(new.len())),
                ("existing", json!(request.repos.len() - new.len())),
            ]),
        );
        let messages: Vec<QueueMessage> = new
            .iter()
            .map(|(_, r)| {
                QueueMessage::repo(
                    &r.slug.owner,
                    &r.slug.name,
                    r.content_hash.as_str(),
                    MANUAL_PRIORITY,
                )
            })
            .collect();
        let outcome = send_to_processing(p, &messages, book).await;
        report.enqueued = outcome.sent;
        report.batches = outcome.batches;
        report.unsent = new.len() - outcome.sent;
        if let Some(reason) = outcome.failure {
            report.failed = true;
            report.errors.push(format!(
                "{reason}: {} new repo(s) are saved in D1 but not queued; the scraper's outbox drain queues them on its next run",
                report.unsent
            ));
        }
        sent_items = outcome
            .sent_indexes
            .iter()
            .map(|&i| &new[i])
            .map(|(id, r)| SentItem {
                kind: ItemKind::Repo,
                id: *id,
                content_hash: r.content_hash.0.clone(),
            })
            .collect();
    }
    let outcome = if report.failed { "partial" } else { "enqueued" };
    let summary = json!({
        "outcome": outcome,
        "route": "enqueue",
        "enqueued": report.enqueued,
        "skipped": report.skipped,
        "invalid": report.invalid,
        "unsent": report.unsent,
        "batches": report.batches,
    });
    if let Some(e) = close_invocation(p, inv, &sent_items, outcome, summary, book).await {
        report.failed = true;
        report.errors.push(e);
    }
    Ok(report)
}
