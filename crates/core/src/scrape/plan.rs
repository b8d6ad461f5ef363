//! The pure part of a scrape step: diff the answers against D1's hashes,
//! decide each issue's availability to a beginner, and plan the writes.

use std::collections::{BTreeMap, BTreeSet};

use super::repos::{RepoWork, WorkStatus};
use crate::github::{IssueMeta, RepoState};
use crate::hash::{self, IssueHashInput, RepoHashInput};
use crate::logrec;
use crate::sql::Statement;
use crate::store::{self, IssueHashRow, IssueWrite, RepoWrite};

/// A repo with no push for this many days counts as inactive (default).
pub const DEFAULT_INACTIVE_AFTER_DAYS: i64 = 365;
const DAY_MS: i64 = 86_400_000;

/// The writes of one step, and how many of its repos (in order) are done.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub statements: Vec<Statement>,
    /// Repos done from the start of the step: the cursor moves past them.
    pub done: usize,
    pub repos_seen: i64,
    pub repos_changed: i64,
    pub repos_skipped: i64,
    pub issues_upserted: i64,
    pub issues_closed: i64,
}

/// 0–100, fresher is higher: 100 minus the age in days.
pub fn freshness_priority(updated_at: Option<&str>, now_ms: i64) -> i64 {
    match updated_at.and_then(logrec::parse_iso8601) {
        Some(t) => 100 - ((now_ms - t).max(0) / DAY_MS).min(100),
        None => 0,
    }
}

/// Why an open issue is or is not something a beginner can take, in order
/// of precedence: `archived_repo`, `inactive_repo`, `assigned`, `linked_pr`,
/// else `ok`.
pub fn availability(
    issue: &IssueMeta,
    repo: &RepoState,
    now_ms: i64,
    inactive_after_days: i64,
) -> &'static str {
    let last_push = repo.pushed_at.as_deref().and_then(logrec::parse_iso8601);
    if repo.is_archived {
        "archived_repo"
    } else if last_push.is_some_and(|t| now_ms - t > inactive_after_days * DAY_MS) {
        "inactive_repo"
    } else if issue.assignee_count > 0 {
        "assigned"
    } else if issue.linked_pr_count > 0 {
        "linked_pr"
    } else {
        "ok"
    }
}

/// Diff a step's answers against D1 and plan its writes. Failed and carried
/// repos do not block the cursor (they are retried after the main pass);
/// deferred ones do (the next invocation starts at the first of them).
pub fn plan_step(
    work: &[RepoWork],
    known: &[IssueHashRow],
    now_ms: i64,
    inactive_after_days: i64,
) -> StepPlan {
    let mut by_repo: BTreeMap<i64, Vec<&IssueHashRow>> = BTreeMap::new();
    for k in known {
        by_repo.entry(k.repo_id).or_default().push(k);
    }
    let mut plan = StepPlan {
        statements: Vec::new(),
        done: 0,
        repos_seen: 0,
        repos_changed: 0,
        repos_skipped: 0,
        issues_upserted: 0,
        issues_closed: 0,
    };
    let mut repo_writes: Vec<RepoWrite> = Vec::new();
    let mut issue_writes: Vec<IssueWrite> = Vec::new();
    let mut blocked = false;
    for w in work {
        match &w.status {
            WorkStatus::Open | WorkStatus::Deferred(_) => blocked = true,
            WorkStatus::Failed(_) => {}
            WorkStatus::Carried(_) => plan.statements.extend(carried_label(w, now_ms)),
            WorkStatus::Missing(message) => {
                plan.repos_skipped += 1;
                if w.row.upstream_status != "not_found" {
                    plan.statements
                        .push(store::mark_repo_upstream_missing(w.row.id, message, now_ms));
                }
            }
            WorkStatus::Complete => {
                plan.repos_seen += 1;
                if let Some(state) = &w.state {
                    repo_writes.extend(plan_complete(
                        &mut plan,
                        &mut issue_writes,
                        w,
                        state,
                        &by_repo,
                        now_ms,
                        inactive_after_days,
                    ));
                }
            }
        }
        if !blocked {
            plan.done += 1;
        }
    }
    plan.repos_changed = repo_writes.len() as i64;
    plan.statements
        .extend(store::update_repos_state(&repo_writes, now_ms));
    plan.issues_upserted = issue_writes.len() as i64;
    plan.statements
        .extend(store::upsert_issues(&issue_writes, now_ms));
    plan
}

/// A carried repo whose label resolved: the name is stored, so the retry
/// pass asks its issues under it in one query.
fn carried_label(w: &RepoWork, now_ms: i64) -> Option<Statement> {
    let label = w.resolution.as_ref()?.label()?;
    let stored = w.row.label_status == "resolved" && w.row.resolved_label.as_deref() == Some(label);
    (!stored).then(|| store::store_resolved_label(w.row.id, label, now_ms))
}

/// A repo answered whole: its issues' diff and the sweep; returns its row
/// rewrite, when its state or label status changed.
fn plan_complete(
    plan: &mut StepPlan,
    issue_writes: &mut Vec<IssueWrite>,
    w: &RepoWork,
    state: &RepoState,
    by_repo: &BTreeMap<i64, Vec<&IssueHashRow>>,
    now_ms: i64,
    inactive_after_days: i64,
) -> Option<RepoWrite> {
    let found = w
        .resolution
        .as_ref()
        .and_then(|r| r.label().map(str::to_string));
    let write = repo_write(w, state, found.as_deref(), now_ms);
    if found.is_none() {
        plan.repos_skipped += 1;
        return write;
    }
    let stored = by_repo.get(&w.row.id).map(Vec::as_slice).unwrap_or(&[]);
    let diff = diff_issues(w, state, stored, now_ms, inactive_after_days);
    issue_writes.extend(diff.writes);
    if !diff.vanished.is_empty() {
        // The stale sweep: only on a complete refresh.
        plan.issues_closed += diff.vanished.len() as i64;
        plan.statements
            .extend(store::close_issues(w.row.id, &diff.vanished, now_ms));
    }
    write
}

/// The repo's row rewrite, when its state or label status changed.
fn repo_write(
    w: &RepoWork,
    state: &RepoState,
    found: Option<&str>,
    now_ms: i64,
) -> Option<RepoWrite> {
    let label_status = if found.is_some() {
        "resolved"
    } else {
        "not_found"
    };
    let input = RepoHashInput {
        name_with_owner: &state.name_with_owner,
        description: state.description.as_deref(),
        primary_language: state.primary_language.as_deref(),
        stars: state.stars,
        is_archived: state.is_archived,
        pushed_at: state.pushed_at.as_deref(),
        resolved_label: found,
    };
    let state_hash = hash::repo_state_hash(&input);
    if w.row.state_hash.as_deref() == Some(state_hash.as_str())
        && w.row.label_status == label_status
    {
        return None;
    }
    Some(RepoWrite {
        id: w.row.id,
        name_with_owner: state.name_with_owner.clone(),
        description: state.description.clone(),
        primary_language: state.primary_language.clone(),
        stars: state.stars,
        is_archived: state.is_archived,
        pushed_at: state.pushed_at.clone(),
        label_status: label_status.to_string(),
        resolved_label: found.map(str::to_string),
        state_hash,
        content_hash: hash::repo_content_hash(&input),
        priority: freshness_priority(state.pushed_at.as_deref(), now_ms),
    })
}

struct IssueDiff {
    writes: Vec<IssueWrite>,
    /// Stored open issues the complete refresh did not return.
    vanished: Vec<i64>,
}

fn diff_issues(
    w: &RepoWork,
    repo: &RepoState,
    stored: &[&IssueHashRow],
    now_ms: i64,
    inactive_after_days: i64,
) -> IssueDiff {
    let stored: BTreeMap<i64, &IssueHashRow> = stored.iter().map(|r| (r.number, *r)).collect();
    let mut seen = BTreeSet::new();
    let mut writes = Vec::new();
    for issue in &w.issues {
        if !seen.insert(issue.number) {
            continue;
        }
        let verdict = availability(issue, repo, now_ms, inactive_after_days);
        let state = if issue.state == "closed" {
            "closed"
        } else {
            "open"
        };
        let input = IssueHashInput {
            title: &issue.title,
            state,
            labels: &issue.labels,
            assignee_count: issue.assignee_count,
            comment_count: issue.comment_count,
            linked_pr_count: issue.linked_pr_count,
            created_at: &issue.created_at,
            updated_at: &issue.updated_at,
            last_edited_at: issue.last_edited_at.as_deref(),
            availability: verdict,
        };
        let state_hash = hash::issue_state_hash(&input);
        if stored.get(&issue.number).is_some_and(|r| {
            r.state_hash.as_deref() == Some(state_hash.as_str()) && r.state == state
        }) {
            continue;
        }
        writes.push(IssueWrite {
            repo_id: w.row.id,
            number: issue.number,
            title: issue.title.clone(),
            url: issue.url.clone(),
            state: state.to_string(),
            labels_json: serde_json::to_string(&issue.labels).unwrap_or_else(|_| "[]".into()),
            assignee_count: issue.assignee_count,
            comment_count: issue.comment_count,
            linked_pr_count: issue.linked_pr_count,
            created_at: issue.created_at.clone(),
            updated_at: issue.updated_at.clone(),
            last_edited_at: issue.last_edited_at.clone(),
            content_hash: hash::issue_content_hash(&input),
            state_hash,
            priority: freshness_priority(Some(&issue.updated_at), now_ms),
            availability: verdict.to_string(),
        });
    }
    let vanished = stored
        .values()
        .filter(|r| r.state == "open" && !seen.contains(&r.number))
        .map(|r| r.number)
        .collect();
    IssueDiff { writes, vanished }
}
