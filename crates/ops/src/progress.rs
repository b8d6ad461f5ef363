//! Following a run: what changed between two polls of `/admin/status`, as
//! one progress line, and how the run ended.

use crate::dates;
use crate::status::{Backlog, RunRow, StatusReport};

/// The counters of a run that an operator watches, plus the backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub status: String,
    pub invocations: i64,
    pub continuations: i64,
    pub repos_seen: i64,
    pub repos_changed: i64,
    pub issues_upserted: i64,
    pub issues_closed: i64,
    pub messages_queued: i64,
    pub backlog_repos: i64,
    pub backlog_issues: i64,
    pub backlog_unqueued: i64,
}

impl RunProgress {
    pub fn of(run: &RunRow, backlog: &Backlog) -> Self {
        RunProgress {
            status: run.status.clone(),
            invocations: run.invocations.int(),
            continuations: run.continuations.int(),
            repos_seen: run.repos_seen.int(),
            repos_changed: run.repos_changed.int(),
            issues_upserted: run.issues_upserted.int(),
            issues_closed: run.issues_closed.int(),
            messages_queued: run.messages_queued.int(),
            backlog_repos: backlog.repos.int(),
            backlog_issues: backlog.issues.int(),
            backlog_unqueued: backlog.unqueued.int(),
        }
    }
}

/// The run `run_id` in a status report, if the report lists it.
pub fn find_run<'a>(report: &'a StatusReport, run_id: &str) -> Option<&'a RunRow> {
    report.runs.iter().find(|r| r.id == run_id)
}

/// A progress line when something changed since `prev` (always for the
/// first poll), `None` otherwise. Changed counters show their increase.
pub fn progress_line(
    prev: Option<&RunProgress>,
    cur: &RunProgress,
    elapsed_ms: i64,
) -> Option<String> {
    if prev == Some(cur) {
        return None;
    }
    let show = |now: i64, before: Option<i64>| match before {
        Some(b) if now > b => format!("{now} (+{})", now - b),
        Some(b) if now < b => format!("{now} (-{})", b - now),
        _ => now.to_string(),
    };
    let p = |f: fn(&RunProgress) -> i64| prev.map(f);
    Some(format!(
        "[{:>6}] {}: {} invocations, {} continuations | repos {} seen, {} changed | issues {} upserted, {} closed | {} messages queued | backlog {} repos, {} issues, {} unqueued",
        dates::duration(elapsed_ms),
        cur.status,
        show(cur.invocations, p(|x| x.invocations)),
        show(cur.continuations, p(|x| x.continuations)),
        show(cur.repos_seen, p(|x| x.repos_seen)),
        show(cur.repos_changed, p(|x| x.repos_changed)),
        show(cur.issues_upserted, p(|x| x.issues_upserted)),
        show(cur.issues_closed, p(|x| x.issues_closed)),
        show(cur.messages_queued, p(|x| x.messages_queued)),
        show(cur.backlog_repos, p(|x| x.backlog_repos)),
        show(cur.backlog_issues, p(|x| x.backlog_issues)),
        show(cur.backlog_unqueued, p(|x| x.backlog_unqueued)),
    ))
}

/// Where a followed run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Still going: poll again.
    Running,
    /// The run completed but `--wait-processing` waits for the backlog.
    Draining,
    /// Completed (and drained, when asked).
    Done,
    /// Ended in any status but `completed`, with the reason.
    Failed(String),
}

/// Decide what a poll means for the followed run.
pub fn run_state(run: &RunRow, backlog: &Backlog, wait_processing: bool) -> RunState {
    if run.is_running() {
        return RunState::Running;
    }
    if run.status != "completed" {
        return RunState::Failed(format!("{} ({})", run.reason(), run.status));
    }
    if wait_processing && !backlog.is_empty() {
        RunState::Draining
    } else {
        RunState::Done
    }
}
