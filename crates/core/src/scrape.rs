//! The scrape workflow: list → repos in batched GraphQL steps → retries of
//! failed repos → outbox drain.
//!
//! A run spans invocations. Each invocation is a short pipeline:
//!
//! 1. **claim** — count the delivery and take the run's lease for the
//!    continuation it carries (compare-and-set on the cursor sequence), or
//!    decide it is a duplicate, a retry to recover, or one to try later; the
//!    same D1 batch reads what the cursor's repos or retry step starts from;
//! 2. **work** — run phases ([`list`], [`repos`], [`drain`]) while both the
//!    subrequest [`Budget`](crate::budget::Budget) and the invocation's CPU
//!    [`Allowance`] last; a step's writes are held back for the next D1
//!    call, ahead of its statements in the same batch;
//! 3. **close** — one D1 batch (the held-back writes, then the guarded
//!    write of counters and cursor that releases the lease), the next
//!    continuation if any, and the shell's R2 log.
//!
//! Invariants kept here:
//! - an invocation never spends more than its budget, nor more work than
//!   its CPU allowance;
//! - only one scrape chain per run advances (the lease);
//! - every run ends: permanent failures end it failed with the reason,
//!   transient ones are retried a bounded number of times with backoff, a
//!   run has a ceiling in invocations and hours, and operators can cancel;
//! - unchanged upstream data causes no repo or issue writes and no messages;
//! - an open issue is closed only when a *complete* refresh of its repo did
//!   not return it — never because a fetch failed, was partial or cut short;
//! - work is committed to D1 before it is queued (the outbox).

mod drain;
mod list;
mod plan;
mod repos;

pub use drain::{outbox_messages, MAX_SENDS_PER_DRAIN};
pub use list::{plan_list_sync, plan_list_sync_from, ListAuthority, ListSync};
pub use plan::{
    availability, freshness_priority, plan_step, StepPlan, DEFAULT_INACTIVE_AFTER_DAYS,
};
pub use repos::{
    settle_failures, Pass, RepoWork, Settled, WorkStatus, MAX_QUERY_FAILURES, MAX_REPO_ATTEMPTS,
};

use serde::Serialize;
use serde_json::{json, Value};

use crate::failure::{classify_network, Failure};
use crate::github::{self, GithubAuth};
use crate::logrec::{self, fields, Level, LogBook};
use crate::messages::{QueueMessage, ScrapeCursor, ScrapePhase};
use crate::platform::{apart, Metered, Platform, PlatformError, QueueName};
use crate::sql::{decode_rows, Statement};
use crate::store::{self, RunCounters, RunProgress, RunRow, SourceRow};

/// Subrequests kept back for the end of every invocation: the closing D1
/// write, the continuation send and the R2 log.
pub const CLOSING_RESERVE: u32 = 3;
/// A transient failure is retried in place only if its wait is this short.
pub const MAX_INLINE_WAIT_SECS: u64 = 10;
/// Keep this many GraphQL points in hand; below it, wait for the reset.
pub const RATE_LIMIT_FLOOR: i64 = 50;
/// A run ends failed past this many invocations…
pub const MAX_RUN_INVOCATIONS: i64 = 2_000;
/// …or this long after it started (Free keeps queue messages 24 hours).
pub const MAX_RUN_MS: i64 = 20 * 60 * 60 * 1000;
/// A retried continuation re-sends the stored one only when the run has
/// made no progress for this long (its own continuation was lost).
pub const RECOVERY_GRACE_MS: i64 = 60 * 1000;
/// Issues (decoded, hashed, diffed) per invocation: the CPU cost model's
/// unit. Sized from the V8 profile of the compiled worker (BENCHMARKS.md).
pub const DEFAULT_ISSUES_PER_INVOCATION: usize = 600;
/// Outbox messages read, sent and marked per invocation: sized from the V8
/// profile of the compiled worker (a drain of 500 took 8–10 ms at +10,000
/// repos, BENCHMARKS.md section 7).
pub const DEFAULT_MESSAGES_PER_INVOCATION: usize = 300;

/// Scraper settings, from the worker's vars.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub api_base: String,
    pub list_data_url: String,
    pub list_readme_url: String,
    pub repos_per_query: usize,
    pub max_inline_retries: u32,
    /// `send_batch` calls in flight at once (Workers: 6 connections).
    pub send_concurrency: usize,
    /// Heuristic fallbacks handed back to AI per run (0 turns it off).
    pub ai_upgrades_per_run: u32,
    /// A repo without a push for this many days makes its issues unavailable.
    pub inactive_after_days: i64,
    /// The CPU cost model: issues and messages one invocation may handle.
    pub issues_per_invocation: usize,
    pub messages_per_invocation: usize,
}

impl ScrapeConfig {
    pub fn clamp(mut self) -> Self {
        self.repos_per_query = self.repos_per_query.clamp(1, github::MAX_REPOS_PER_QUERY);
        self.send_concurrency = self.send_concurrency.clamp(1, 6);
        self.issues_per_invocation = self
            .issues_per_invocation
            .max(github::ISSUES_PAGE_SIZE as usize);
        self.messages_per_invocation = self.messages_per_invocation.clamp(100, 1_000);
        self.inactive_after_days = self.inactive_after_days.max(1);
        self
    }
}

/// What one invocation may still do, so its CPU stays inside the Workers
/// limit: each repo answered and each issue decoded spends from `issues_left`;
/// each outbox message from `messages_left`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    pub issues_left: usize,
    pub messages_left: usize,
    /// Repos steps taken: one per invocation, so a step is never split into
    /// smaller queries (fewer GitHub requests) and its CPU is bounded.
    pub steps: u32,
}

impl Allowance {
    pub fn new(cfg: &ScrapeConfig) -> Self {
        Allowance {
            issues_left: cfg.issues_per_invocation,
            messages_left: cfg.messages_per_invocation,
            steps: 0,
        }
    }

    /// One repo answered with `issues` issues (a repo costs as one issue).
    pub fn spend_repo(&mut self, issues: usize) {
        self.issues_left = self.issues_left.saturating_sub(issues + 1);
    }

    pub fn spend_messages(&mut self, n: usize) {
        self.messages_left = self.messages_left.saturating_sub(n);
    }

    pub fn exhausted(&self) -> bool {
        self.issues_left == 0 || self.steps > 0
    }
}

/// What an invocation did, for the summary line, the ledger and the shell.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationReport {
    pub run_id: String,
    pub outcome: String,
    pub phase: ScrapePhase,
    pub counters: RunCounters,
    pub subrequests: u32,
    pub budget: u32,
    pub continued: bool,
    pub continuation_delay_secs: u64,
    /// Retry the delivered message after this many seconds instead of
    /// acknowledging it (another invocation holds the run for now).
    pub retry_message_after_secs: Option<u64>,
    pub log_key: String,
    pub duration_ms: i64,
}

/// Result of asking for a new run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StartOutcome {
    Started { run_id: String },
    AlreadyRunning { run_id: String },
}

/// Start a run (cron or operator) and queue its first continuation. Stuck
/// runs are failed and lost items re-queued first (one D1 batch).
pub async fn start_run<P: Platform>(
    p: &mut Metered<'_, P>,
    run_id: &str,
    trigger: &str,
    source: &str,
    log: &mut LogBook,
) -> Result<StartOutcome, PlatformError> {
    let now = p.now_ms();
    let mut stmts = store::start_run(run_id, trigger, source, now);
    stmts.push(store::prune_deliveries(now));
    stmts.push(store::active_run());
    let rows = p.db(&stmts).await?;
    let active: Vec<RunRow> = rows
        .last()
        .map(|r| decode_rows(r).unwrap_or_default())
        .unwrap_or_default();
    match active.first() {
        Some(run) if run.id == run_id => {
            let cursor = ScrapeCursor::start(run_id, source);
            p.send(QueueName::Scrape, &[QueueMessage::continuation(cursor)], 0)
                .await?;
            log.push(
                now,
                Level::Info,
                "run_started",
                fields([("trigger", json!(trigger)), ("source", json!(source))]),
            );
            Ok(StartOutcome::Started {
                run_id: run_id.to_string(),
            })
        }
        Some(run) => {
            log.push(
                now,
                Level::Info,
                "run_already_active",
                fields([("active_run", json!(run.id))]),
            );
            Ok(StartOutcome::AlreadyRunning {
                run_id: run.id.clone(),
            })
        }
        None => Err(PlatformError::Db(
            "run was neither started nor found active".into(),
        )),
    }
}

/// How a phase leaves the invocation.
pub(crate) enum Flow {
    Next,
    Yield {
        delay_secs: u64,
        reason: String,
    },
    /// The run cannot succeed: end it failed with the reason.
    Fail {
        reason: String,
    },
}

impl Flow {
    fn yield_now(reason: &str) -> Flow {
        Flow::Yield {
            delay_secs: 0,
            reason: reason.to_string(),
        }
    }
}

pub(crate) struct Ctx<'c> {
    cfg: &'c ScrapeConfig,
    auth: &'c GithubAuth,
    invocation: &'c str,
    cursor: ScrapeCursor,
    allowance: Allowance,
    /// Everything this invocation did, for its summary.
    counters: RunCounters,
    /// What is not yet persisted on the run row.
    unsaved: RunCounters,
    now_ms: i64,
    log: &'c mut LogBook,
    /// The first step's D1 read, answered with the claim (see
    /// [`first_read`]): the statements and their rows.
    prefetched: Option<(Vec<Statement>, Vec<Vec<Value>>)>,
    /// Writes held back to ride on the invocation's next D1 call (a step's
    /// commit goes with the close): applied first, in the same batch, so
    /// every later read sees them and none costs a round trip of its own.
    pending: Vec<Statement>,
}

impl Ctx<'_> {
    fn log(&mut self, now: i64, level: Level, event: &str, f: Value) {
        self.log.push(now, level, event, f);
    }

    /// Count something in both the invocation's and the unsaved tallies.
    fn bump(&mut self, f: impl Fn(&mut RunCounters)) {
        f(&mut self.counters);
        f(&mut self.unsaved);
    }

    /// The statement that persists the cursor and unsaved counters with a
    /// phase's write (guarded on this invocation's lease), so an invocation
    /// cut off later resumes from here and no count is lost or doubled.
    fn progress(&mut self) -> Statement {
        let delta = std::mem::take(&mut self.unsaved);
        store::save_progress(
            &self.cursor.run_id,
            self.invocation,
            &delta,
            &serde_json::to_string(&self.cursor).unwrap_or_default(),
            self.now_ms,
        )
    }
}

// ------------------------------------------------------------------ claim

/// What a delivered continuation may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation holds the lease: work from this cursor.
    Proceed(ScrapeCursor),
    /// Nothing to do (finished run, duplicate delivery): acknowledge.
    Skip(String),
    /// Another invocation holds the run, or a lost continuation may still
    /// turn up: retry this message later.
    RetryLater { delay_secs: u64, reason: String },
    /// The stored continuation was committed but never sent: send it again.
    Recover(ScrapeCursor),
}

/// Decide what a delivery does, from whether it took the lease, the run as
/// stored after the attempt, the message's cursor and its delivery count.
pub fn decide_claim(
    leased: bool,
    run: Option<&RunRow>,
    message: &ScrapeCursor,
    attempts: i64,
    now_ms: i64,
) -> Claim {
    let Some(run) = run.filter(|r| r.status == "running") else {
        return Claim::Skip("run not active".into());
    };
    let stored: Option<ScrapeCursor> = run
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    if leased {
        return match stored {
            // Same continuation, retried after a cut-off: D1 holds its progress.
            Some(s) if s.seq == message.seq => Claim::Proceed(s),
            _ => Claim::Proceed(message.clone()),
        };
    }
    let lease_live = run.lease_id.is_some() && run.lease_until.is_some_and(|u| u >= now_ms);
    let stored_seq = stored.as_ref().map_or(0, |s| s.seq);
    if stored_seq <= message.seq {
        // Same continuation, delivered twice at once: wait for the holder.
        let wait = run
            .lease_until
            .map_or(5, |u| ((u - now_ms) / 1000 + 1).max(1) as u64);
        return Claim::RetryLater {
            delay_secs: wait,
            reason: "another invocation holds the run".into(),
        };
    }
    let quiet_for = now_ms - run.last_progress_at.unwrap_or(run.started_at);
    match stored {
        Some(s) if attempts > 1 && s.seq == message.seq + 1 && !lease_live => {
            if quiet_for >= RECOVERY_GRACE_MS {
                Claim::Recover(s)
            } else {
                Claim::RetryLater {
                    delay_secs: ((RECOVERY_GRACE_MS - quiet_for) / 1000 + 1) as u64,
                    reason: "waiting to see whether the next continuation arrives".into(),
                }
            }
        }
        _ => Claim::Skip("duplicate delivery".into()),
    }
}

/// The D1 read the first step at `cursor` starts with, for the claim to
/// send in its own batch: a repos or retry step's repos and hashes, a drain
/// round's outbox (with `budget` subrequests left before the claim). None
/// for the list phase.
fn first_read(cursor: &ScrapeCursor, cfg: &ScrapeConfig, budget: u32) -> Vec<Statement> {
    match cursor.phase {
        ScrapePhase::Drain => drain::first_read(budget, cfg),
        _ => repos::first_read(cursor, cfg),
    }
}

/// A step's read: the rows the claim fetched when it sent exactly these
/// statements (and nothing was written since), else one D1 call.
async fn read_first<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    read: Vec<Statement>,
) -> Result<Vec<Vec<Value>>, PlatformError> {
    match ctx.prefetched.take() {
        Some((sent, rows)) if sent == read && ctx.pending.is_empty() => Ok(rows),
        _ => db(p, ctx, &read).await,
    }
}

/// One D1 call that applies the held-back writes ([`Ctx::pending`]) first,
/// in the same batch; the rows returned are `statements`' own.
async fn db<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    statements: &[Statement],
) -> Result<Vec<Vec<Value>>, PlatformError> {
    let held = ctx.pending.len();
    if held == 0 {
        return p.db(statements).await;
    }
    let mut batch = std::mem::take(&mut ctx.pending);
    batch.extend_from_slice(statements);
    let mut rows = p.db(&batch).await?;
    Ok(rows.split_off(held.min(rows.len())))
}

async fn claim<P: Platform>(
    p: &mut Metered<'_, P>,
    invocation: &str,
    message_id: &str,
    cursor: &ScrapeCursor,
    step_read: &[Statement],
) -> Result<(Claim, Option<RunRow>, Option<SourceRow>, Vec<Vec<Value>>), PlatformError> {
    let now = p.now_ms();
    let mut statements = vec![
        store::count_delivery("scrape", message_id, now),
        store::take_lease(&cursor.run_id, invocation, message_id, cursor.seq, now),
        store::run_by_id(&cursor.run_id),
        store::data_source(&cursor.source),
    ];
    statements.extend_from_slice(step_read);
    let mut rows = p.db(&statements).await?;
    let step_rows = rows.split_off(rows.len().min(4));
    let first = |i: usize| rows.get(i).and_then(|r| r.first()).cloned();
    let attempts = first(0)
        .and_then(|v| serde_json::from_value::<store::AttemptsRow>(v).ok())
        .map_or(1, |a| a.attempts);
    let leased = first(1)
        .and_then(|v| serde_json::from_value::<store::LeaseRow>(v).ok())
        .is_some_and(|l| l.lease_id == invocation);
    let run: Option<RunRow> = first(2).and_then(|v| serde_json::from_value(v).ok());
    let source: Option<SourceRow> = first(3).and_then(|v| serde_json::from_value(v).ok());
    let decision = decide_claim(leased, run.as_ref(), cursor, attempts, now);
    Ok((decision, run, source, step_rows))
}

// ------------------------------------------------------------------ driver

/// One scrape invocation, resuming from `message_cursor`: claim → work → close.
pub async fn run_invocation<P: Platform>(
    p: &mut Metered<'_, P>,
    cfg: &ScrapeConfig,
    auth: &GithubAuth,
    invocation: &str,
    message_id: &str,
    message_cursor: ScrapeCursor,
    log: &mut LogBook,
) -> Result<InvocationReport, PlatformError> {
    let started = p.now_ms();
    let run_id = message_cursor.run_id.clone();
    log.set_run_id(&run_id);
    // The step's read rides on the claim's batch: a declined claim only
    // discards its rows.
    let step_read = first_read(&message_cursor, cfg, p.budget.remaining());
    let (decision, run, source, step_rows) = apart(claim(
        p,
        invocation,
        message_id,
        &message_cursor,
        &step_read,
    ))
    .await?;
    let (cursor, run) = match (decision, run) {
        (Claim::Proceed(cursor), Some(run)) => (cursor, run),
        (other, _) => {
            return apart(settle_without_work(p, other, &message_cursor, started, log)).await
        }
    };
    log.push(
        started,
        Level::Info,
        "invocation_started",
        fields([("cursor", json!(cursor))]),
    );
    let mut ctx = Ctx {
        cfg,
        auth,
        invocation,
        allowance: Allowance::new(cfg),
        cursor,
        counters: RunCounters::default(),
        unsaved: RunCounters::default(),
        now_ms: started,
        log,
        prefetched: (!step_read.is_empty()).then_some((step_read, step_rows)),
        pending: Vec::new(),
    };
    let flow = work(p, &mut ctx, &run, source.as_ref()).await?;
    apart(close(p, ctx, flow, started)).await
}

/// A delivery that does no work: skip, retry later, or re-send the stored
/// continuation (one queue send, no D1 write).
async fn settle_without_work<P: Platform>(
    p: &mut Metered<'_, P>,
    decision: Claim,
    message: &ScrapeCursor,
    started: i64,
    log: &mut LogBook,
) -> Result<InvocationReport, PlatformError> {
    let mut report = InvocationReport {
        run_id: message.run_id.clone(),
        outcome: String::new(),
        phase: message.phase,
        counters: RunCounters::default(),
        subrequests: 0,
        budget: p.budget.limit(),
        continued: false,
        continuation_delay_secs: 0,
        retry_message_after_secs: None,
        log_key: String::new(),
        duration_ms: 0,
    };
    match decision {
        Claim::Skip(reason) => {
            log.push(
                started,
                Level::Info,
                "continuation_skipped",
                fields([
                    ("reason", json!(reason)),
                    ("message_seq", json!(message.seq)),
                ]),
            );
            report.outcome = format!("skipped: {reason}");
        }
        Claim::RetryLater { delay_secs, reason } => {
            log.push(
                started,
                Level::Info,
                "continuation_deferred",
                fields([("reason", json!(reason)), ("delay_secs", json!(delay_secs))]),
            );
            report.outcome = format!("retry in {delay_secs}s: {reason}");
            report.retry_message_after_secs = Some(delay_secs);
        }
        Claim::Recover(stored) => {
            p.send(
                QueueName::Scrape,
                &[QueueMessage::continuation(stored.clone())],
                0,
            )
            .await?;
            log.push(
                started,
                Level::Warn,
                "continuation_recovered",
                fields([("cursor", json!(stored))]),
            );
            report.outcome = "recovered continuation".into();
            report.phase = stored.phase;
            report.continued = true;
        }
        Claim::Proceed(_) => report.outcome = "skipped: run vanished".into(),
    }
    report.subrequests = p.budget.used();
    report.duration_ms = p.now_ms() - started;
    Ok(report)
}

/// Run phases until the run is done, a phase yields or fails, or the run
/// passed its ceiling.
async fn work<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    run: &RunRow,
    source: Option<&SourceRow>,
) -> Result<Flow, PlatformError> {
    if let Some(reason) = past_ceiling(run, ctx.now_ms) {
        return Ok(Flow::Fail { reason });
    }
    while ctx.cursor.phase != ScrapePhase::Done {
        let flow = match ctx.cursor.phase {
            ScrapePhase::List => apart(list::list_phase(p, ctx, source)).await?,
            ScrapePhase::Repos => apart(repos::repos_step(p, ctx)).await?,
            ScrapePhase::Retry => apart(repos::retry_step(p, ctx)).await?,
            ScrapePhase::Drain => apart(drain::drain_step(p, ctx)).await?,
            ScrapePhase::Done => Flow::Next,
        };
        if !matches!(flow, Flow::Next) {
            return Ok(flow);
        }
    }
    Ok(Flow::Next)
}

/// Why a run must end now, if it passed its ceiling.
pub fn past_ceiling(run: &RunRow, now_ms: i64) -> Option<String> {
    if run.invocations >= MAX_RUN_INVOCATIONS {
        Some(format!(
            "run ceiling: {} invocations without finishing",
            run.invocations
        ))
    } else if now_ms - run.started_at > MAX_RUN_MS {
        Some(format!(
            "run ceiling: still running {} hours after it started",
            (now_ms - run.started_at) / 3_600_000
        ))
    } else {
        None
    }
}

/// One guarded D1 write (counters, cursor or final status, lease released),
/// then the next continuation if this invocation still held the run.
async fn close<P: Platform>(
    p: &mut Metered<'_, P>,
    mut ctx: Ctx<'_>,
    flow: Flow,
    started: i64,
) -> Result<InvocationReport, PlatformError> {
    let now = p.now_ms();
    let run_id = ctx.cursor.run_id.clone();
    let log_key = logrec::log_key("scraper", &run_id, now);
    ctx.cursor.seq += 1;
    let (progress, outcome, delay) = closing(&mut ctx, &flow, now);
    let subrequests = p.budget.used() + 1 + u32::from(delay.is_some()) + 1;
    let summary = summary_json(&ctx.counters, subrequests, delay.is_some(), now - started);
    let record = store::InvocationRecord {
        id: ctx.invocation.to_string(),
        service: "scraper",
        run_id: Some(run_id.clone()),
        started_at: started,
        finished_at: now,
        subrequests,
        budget: p.budget.limit(),
        outcome: outcome.clone(),
        summary_json: summary.to_string(),
        log_key: Some(log_key.clone()),
    };
    let closing = [
        store::advance_run(
            &run_id,
            ctx.invocation,
            &ctx.unsaved,
            subrequests,
            &progress,
            now,
        ),
        store::record_invocation(&record),
    ];
    let rows = db(p, &mut ctx, &closing).await?;
    let held = rows.first().is_some_and(|r| !r.is_empty());
    let mut report = InvocationReport {
        run_id,
        outcome,
        phase: ctx.cursor.phase,
        counters: ctx.counters.clone(),
        subrequests,
        budget: p.budget.limit(),
        continued: false,
        continuation_delay_secs: 0,
        retry_message_after_secs: None,
        log_key,
        duration_ms: now - started,
    };
    match (held, delay) {
        (true, Some(delay)) => {
            p.send(
                QueueName::Scrape,
                &[QueueMessage::continuation(ctx.cursor.clone())],
                delay,
            )
            .await?;
            report.continued = true;
            report.continuation_delay_secs = delay;
        }
        (false, _) => {
            // Cancelled, or the lease expired and another invocation took over.
            ctx.log(
                now,
                Level::Warn,
                "lease_lost",
                fields([("cursor_seq", json!(ctx.cursor.seq - 1))]),
            );
            report.outcome = "stopped: the run was cancelled or taken over".into();
        }
        _ => {}
    }
    Ok(report)
}

/// What the run becomes after this invocation: the progress to store, the
/// outcome to report, and the continuation's delay when it goes on.
fn closing(ctx: &mut Ctx<'_>, flow: &Flow, now: i64) -> (RunProgress, String, Option<u64>) {
    match flow {
        Flow::Yield { delay_secs, reason } => (
            RunProgress::Continuing {
                cursor_json: serde_json::to_string(&ctx.cursor).unwrap_or_default(),
                failure_attempts: i64::from(ctx.cursor.failures),
            },
            format!("continuing in {delay_secs}s: {reason}"),
            Some(*delay_secs),
        ),
        Flow::Fail { reason } => {
            ctx.log(
                now,
                Level::Error,
                "run_failed",
                fields([("reason", json!(reason))]),
            );
            (
                RunProgress::Failed {
                    error: reason.clone(),
                },
                format!("run failed: {reason}"),
                None,
            )
        }
        Flow::Next => (
            RunProgress::Completed {
                outcome: "completed".into(),
            },
            "run completed".to_string(),
            None,
        ),
    }
}

/// The summary line's fields.
pub fn summary_json(c: &RunCounters, subrequests: u32, continued: bool, duration_ms: i64) -> Value {
    json!({
        "repos_seen": c.repos_seen,
        "repos_changed": c.repos_changed,
        "repos_skipped": c.repos_skipped,
        "issues_upserted": c.issues_upserted,
        "issues_closed": c.issues_closed,
        "messages_queued": c.messages_queued,
        "github_requests": c.github_requests,
        "graphql_points": c.graphql_points,
        "subrequests_used": subrequests,
        "continued": continued,
        "duration_ms": duration_ms,
    })
}

// ------------------------------------------------------------------ fetching

/// GET a list document, retrying transient failures in place. `check`
/// classifies a successful body (e.g. one cut off in transit) as a failure.
async fn fetch_text<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    url: &str,
    needed_after: u32,
    check: impl Fn(&str) -> Option<Failure>,
) -> Result<Result<String, Failure>, PlatformError> {
    let req = github::get_request(url, None, ctx.invocation, None);
    let mut attempt = 0;
    loop {
        attempt += 1;
        ctx.bump(|c| c.github_requests += 1);
        let failure = match p.fetch(&req).await {
            Ok(resp) => match resp.failure().or_else(|| check(&resp.body)) {
                None => return Ok(Ok(resp.body)),
                Some(f) => f,
            },
            Err(PlatformError::Network(m)) => classify_network(&m),
            Err(e) => return Err(e),
        };
        let now = p.now_ms();
        ctx.log(
            now,
            Level::Warn,
            "list_fetch_failed",
            fields([
                ("url", json!(url)),
                ("attempt", json!(attempt)),
                ("failure", json!(failure)),
            ]),
        );
        if !retry_in_place(p, ctx.cfg, &failure, attempt, needed_after) {
            return Ok(Err(failure));
        }
        let wait = failure.delay_secs((now / 1000) as u64, attempt);
        p.sleep(wait * 1000).await;
    }
}

fn retry_in_place<P: Platform>(
    p: &Metered<'_, P>,
    cfg: &ScrapeConfig,
    f: &Failure,
    attempt: u32,
    needed_after: u32,
) -> bool {
    let now_secs = (p.now_ms() / 1000) as u64;
    matches!(f, Failure::Transient { .. })
        && attempt <= cfg.max_inline_retries
        && f.delay_secs(now_secs, attempt) <= MAX_INLINE_WAIT_SECS
        && p.budget.can_afford(1 + needed_after + CLOSING_RESERVE)
}
