//! The scrape workflow: list → repos in batched GraphQL steps → outbox drain.
//!
//! A run spans invocations. Each invocation resumes from a [`ScrapeCursor`],
//! plans every step against its [`Budget`](crate::budget::Budget) so it
//! stops with room left for its closing writes, and hands the rest of the run
//! to a continuation message that the scraper itself consumes (a fresh
//! invocation with a fresh quota).
//!
//! Invariants kept here:
//! - an invocation never spends more than its budget (every call is charged
//!   before it is made, and steps start only when their worst case fits);
//! - unchanged upstream data causes no repo or issue writes and no messages;
//! - an open issue is closed only when a *complete* refresh of its repo did
//!   not return it — never because a fetch failed or was cut short;
//! - work is committed to D1 before it is queued (the outbox), so a failed
//!   send is retried, never lost.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::failure::{classify_json_body, classify_network, Failure};
use crate::github::{
    self, GithubAuth, HttpRequest, IssueMeta, RepoOutcome, RepoQuery, RepoState, ScrapeAnswer,
};
use crate::hash::{self, IssueHashInput, RepoHashInput};
use crate::label::{self, LabelResolution};
use crate::list::{self, ParsedList};
use crate::logrec::{self, fields, Level, LogBook};
use crate::messages::{QueueMessage, ScrapeCursor, ScrapePhase};
use crate::platform::{Metered, Platform, PlatformError, QueueName};
use crate::sql::{decode_rows, Statement};
use crate::store::{
    self, IssueHashRow, IssueWrite, OutboxRow, RepoRow, RepoWrite, RunCounters, RunProgress,
};

/// Subrequests kept back for the end of every invocation: the closing D1
/// write, the continuation send and the R2 log.
pub const CLOSING_RESERVE: u32 = 3;
/// A transient failure is retried in place only if its wait is this short.
pub const MAX_INLINE_WAIT_SECS: u64 = 10;
/// Keep this many GraphQL points in hand; below it, wait for the reset.
pub const RATE_LIMIT_FLOOR: i64 = 50;

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
}

impl ScrapeConfig {
    pub fn clamp(mut self) -> Self {
        self.repos_per_query = self.repos_per_query.clamp(1, github::MAX_REPOS_PER_QUERY);
        self.send_concurrency = self.send_concurrency.clamp(1, 6);
        self
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

/// Start a run (cron or operator) and queue its first continuation.
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
    let active: Vec<store::RunRow> = rows
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

enum Flow {
    Next,
    Yield { delay_secs: u64, reason: String },
}

struct Ctx<'c> {
    cfg: &'c ScrapeConfig,
    auth: &'c GithubAuth,
    invocation: &'c str,
    cursor: ScrapeCursor,
    /// Everything this invocation did, for its summary.
    counters: RunCounters,
    /// What is not yet persisted on the run row.
    unsaved: RunCounters,
    log: &'c mut LogBook,
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
    /// phase's write, so an invocation cut off later resumes from here and
    /// no count is lost or doubled. Call after the cursor has moved.
    fn progress(&mut self) -> Statement {
        let delta = std::mem::take(&mut self.unsaved);
        store::save_progress(
            &self.cursor.run_id,
            &delta,
            &serde_json::to_string(&self.cursor).unwrap_or_default(),
        )
    }
}

/// One scrape invocation, resuming from `message_cursor`.
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
    let rows = p
        .db(&[
            store::count_delivery("scrape", message_id, started),
            store::run_by_id(&run_id),
            store::data_source(&message_cursor.source),
        ])
        .await?;
    let attempts = rows
        .first()
        .and_then(|r| decode_rows::<store::AttemptsRow>(r).ok())
        .and_then(|v| v.first().map(|a| a.attempts))
        .unwrap_or(1);
    let run: Option<store::RunRow> = rows
        .get(1)
        .and_then(|r| decode_rows(r).ok())
        .and_then(|v| v.into_iter().next());
    let source: Option<store::SourceRow> = rows
        .get(2)
        .and_then(|r| decode_rows(r).ok())
        .and_then(|v| v.into_iter().next());
    let Some(run) = run.filter(|r| r.status == "running") else {
        // A duplicate or late delivery for a finished run: nothing to do.
        log.push(
            started,
            Level::Info,
            "run_not_active",
            fields([("message_cursor", json!(message_cursor))]),
        );
        return Ok(report(
            p,
            &run_id,
            "skipped: run not active",
            ScrapePhase::Done,
            RunCounters::default(),
            None,
            started,
            String::new(),
        ));
    };
    let stored: Option<ScrapeCursor> = run
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let cursor = match stored {
        Some(stored) if stored.seq > message_cursor.seq => {
            if attempts > 1 {
                // A retry of a message whose invocation committed its cursor
                // but may have died before sending the next continuation.
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
                    fields([("cursor", json!(stored)), ("attempts", json!(attempts))]),
                );
                return Ok(report(
                    p,
                    &run_id,
                    "recovered continuation",
                    stored.phase,
                    RunCounters::default(),
                    Some(0),
                    started,
                    String::new(),
                ));
            }
            log.push(
                started,
                Level::Info,
                "duplicate_continuation",
                fields([
                    ("message_seq", json!(message_cursor.seq)),
                    ("stored_seq", json!(stored.seq)),
                ]),
            );
            return Ok(report(
                p,
                &run_id,
                "skipped: duplicate delivery",
                stored.phase,
                RunCounters::default(),
                None,
                started,
                String::new(),
            ));
        }
        // Same continuation, retried after a cut-off: D1 holds its progress.
        Some(stored) if stored.seq == message_cursor.seq => stored,
        _ => message_cursor,
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
        cursor,
        counters: RunCounters::default(),
        unsaved: RunCounters::default(),
        log,
    };
    let mut yielded: Option<(u64, String)> = None;
    while ctx.cursor.phase != ScrapePhase::Done {
        let flow = match ctx.cursor.phase {
            ScrapePhase::List => list_phase(p, &mut ctx, source.as_ref()).await?,
            ScrapePhase::Repos => repos_step(p, &mut ctx).await?,
            ScrapePhase::Drain => drain_step(p, &mut ctx).await?,
            ScrapePhase::Done => Flow::Next,
        };
        if let Flow::Yield { delay_secs, reason } = flow {
            yielded = Some((delay_secs, reason));
            break;
        }
    }

    // Closing: one D1 write, maybe one continuation, then the shell's R2 log.
    let now = p.now_ms();
    let log_key = logrec::log_key("scraper", &run_id, now);
    let continuing = yielded.is_some();
    ctx.cursor.seq += 1;
    let progress = if let Some((_, _)) = &yielded {
        RunProgress::Continuing {
            cursor_json: serde_json::to_string(&ctx.cursor).unwrap_or_default(),
        }
    } else {
        RunProgress::Completed {
            outcome: "completed".into(),
        }
    };
    let subrequests = p.budget.used() + 1 + u32::from(continuing) + 1;
    let outcome = match &yielded {
        Some((delay, reason)) => format!("continuing in {delay}s: {reason}"),
        None => "run completed".to_string(),
    };
    let summary = summary_json(&ctx.counters, subrequests, continuing, now - started);
    let record = store::InvocationRecord {
        id: invocation.to_string(),
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
    p.db(&[
        store::advance_run(&run_id, &ctx.unsaved, subrequests, &progress, now),
        store::record_invocation(&record),
    ])
    .await?;
    let mut delay = 0;
    if let Some((delay_secs, _)) = &yielded {
        delay = *delay_secs;
        p.send(
            QueueName::Scrape,
            &[QueueMessage::continuation(ctx.cursor.clone())],
            delay,
        )
        .await?;
    }
    let phase = ctx.cursor.phase;
    let counters = ctx.counters.clone();
    let mut rep = report(
        p,
        &run_id,
        &outcome,
        phase,
        counters,
        yielded.map(|_| delay),
        started,
        log_key,
    );
    rep.subrequests = subrequests;
    Ok(rep)
}

#[allow(clippy::too_many_arguments)]
fn report<P: Platform>(
    p: &Metered<'_, P>,
    run_id: &str,
    outcome: &str,
    phase: ScrapePhase,
    counters: RunCounters,
    delay: Option<u64>,
    started: i64,
    log_key: String,
) -> InvocationReport {
    InvocationReport {
        run_id: run_id.to_string(),
        outcome: outcome.to_string(),
        phase,
        counters,
        subrequests: p.budget.used(),
        budget: p.budget.limit(),
        continued: delay.is_some(),
        continuation_delay_secs: delay.unwrap_or(0),
        log_key,
        duration_ms: p.now_ms() - started,
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

// ------------------------------------------------------------------ list

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

async fn list_phase<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    source: Option<&store::SourceRow>,
) -> Result<Flow, PlatformError> {
    // fetch data.json (+ README) + read + write
    if !p.budget.can_afford(4 + CLOSING_RESERVE) {
        return Ok(Flow::Yield {
            delay_secs: 0,
            reason: "budget spent before the list".into(),
        });
    }
    let source_id = ctx.cursor.source.clone();
    let mut errors: Vec<String> = Vec::new();
    let mut parsed: Option<(ParsedList, String, &str)> = None;
    // A data.json cut off in transit is fetched again, not taken for a broken list.
    let cut_off = |body: &str| classify_json_body("data.json", body);
    match fetch_text(p, ctx, &ctx.cfg.list_data_url.clone(), 3, cut_off).await? {
        Ok(text) => match list::parse_data_json(&text) {
            Ok(list) => parsed = Some((list, text, "data.json")),
            Err(e) => errors.push(format!("data.json unusable: {e}")),
        },
        Err(f) => errors.push(format!("data.json fetch failed: {f}")),
    }
    if parsed.is_none() && p.budget.can_afford(3 + CLOSING_RESERVE) {
        match fetch_text(p, ctx, &ctx.cfg.list_readme_url.clone(), 2, |_| None).await? {
            Ok(text) => match list::parse_readme(&text) {
                Ok(list) if !list.repos.is_empty() => parsed = Some((list, text, "README.md")),
                Ok(_) => errors.push("README fallback lists no GitHub repos".into()),
                Err(e) => errors.push(format!("README fallback unusable: {e}")),
            },
            Err(f) => errors.push(format!("README fetch failed: {f}")),
        }
    }
    let now = p.now_ms();
    let Some((list, text, origin)) = parsed else {
        // Keep the last good repo set; the run still refreshes it, but ends failed.
        let reason = format!(
            "list unavailable, kept the last good repo set: {}",
            errors.join("; ")
        );
        ctx.log(
            now,
            Level::Error,
            "list_failed",
            fields([("reason", json!(reason))]),
        );
        p.db(&[
            store::source_error(&source_id, &reason, now),
            store::note_run_error(&ctx.cursor.run_id, &reason),
        ])
        .await?;
        ctx.cursor.phase = ScrapePhase::Repos;
        return Ok(Flow::Next);
    };
    for e in &errors {
        ctx.log(
            now,
            Level::Warn,
            "list_fallback",
            fields([("reason", json!(e)), ("used", json!(origin))]),
        );
    }
    for s in &list.skipped {
        ctx.log(
            now,
            Level::Warn,
            "list_entry_skipped",
            fields([
                ("entry", json!(s.entry_index)),
                ("name", json!(s.name)),
                ("reason", json!(s.reason.to_string())),
            ]),
        );
    }
    for w in &list.warnings {
        ctx.log(
            now,
            Level::Warn,
            "list_warning",
            fields([("warning", json!(w))]),
        );
    }
    let skipped = list.skipped.len() as i64;
    ctx.bump(|c| c.repos_skipped += skipped);
    let text_hash = hash::text_hash(&text);
    if source.and_then(|s| s.last_good_hash.as_deref()) == Some(text_hash.as_str()) {
        ctx.log(
            now,
            Level::Info,
            "list_unchanged",
            fields([
                ("repos", json!(list.repos.len())),
                ("origin", json!(origin)),
            ]),
        );
    } else {
        let rows = p.db(&[store::repos_of_source(&source_id)]).await?;
        let known: Vec<store::ListedRow> = rows
            .first()
            .map(|r| decode_rows(r))
            .transpose()
            .map_err(|e| PlatformError::Db(e.to_string()))?
            .unwrap_or_default();
        // Only data.json can prove it arrived whole; the README may be cut
        // short anywhere and still parse, so it never delists a repo.
        let authority = if origin == "data.json" {
            ListAuthority::Complete
        } else {
            ListAuthority::Partial
        };
        let mut stmts = plan_list_sync_from(&source_id, &list, &known, now, authority);
        let (new, changed, gone) = (stmts.inserted, stmts.changed, stmts.deactivated);
        if stmts.kept_unlisted > 0 {
            ctx.log(
                now,
                Level::Warn,
                "list_removals_deferred",
                fields([
                    ("origin", json!(origin)),
                    ("repos", json!(stmts.kept_unlisted)),
                    (
                        "reason",
                        json!("the README fallback cannot show it is complete; repos it omits stay active until data.json is read again"),
                    ),
                ]),
            );
        }
        stmts
            .statements
            .push(store::source_good(&source_id, text_hash.as_str(), now));
        ctx.cursor.phase = ScrapePhase::Repos;
        ctx.cursor.position = 0;
        ctx.cursor.owner = None;
        ctx.cursor.name = None;
        stmts.statements.push(ctx.progress());
        p.db(&stmts.statements).await?;
        ctx.log(
            now,
            Level::Info,
            "list_synced",
            fields([
                ("origin", json!(origin)),
                ("repos", json!(list.repos.len())),
                ("new", json!(new)),
                ("changed", json!(changed)),
                ("deactivated", json!(gone)),
                ("skipped", json!(list.skipped.len())),
            ]),
        );
    }
    ctx.cursor.phase = ScrapePhase::Repos;
    ctx.cursor.position = 0;
    ctx.cursor.owner = None;
    ctx.cursor.name = None;
    Ok(Flow::Next)
}

/// The writes that bring D1's listed repos in line with the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSync {
    pub statements: Vec<Statement>,
    pub inserted: usize,
    pub changed: usize,
    pub deactivated: usize,
    /// Active repos the list omits but that stay active (a partial list).
    pub kept_unlisted: usize,
}

/// Whether a parsed list may delist repos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAuthority {
    /// Known to be whole (data.json: a document cut off in transit does not
    /// parse): repos it omits are deactivated.
    Complete,
    /// May be cut short and still parse (the README fallback): repos are
    /// added and updated, none is deactivated.
    Partial,
}

/// [`plan_list_sync_from`] for a list known to be whole.
pub fn plan_list_sync(
    source: &str,
    list: &ParsedList,
    known: &[store::ListedRow],
    now_ms: i64,
) -> ListSync {
    plan_list_sync_from(source, list, known, now_ms, ListAuthority::Complete)
}

pub fn plan_list_sync_from(
    source: &str,
    list: &ParsedList,
    known: &[store::ListedRow],
    now_ms: i64,
    authority: ListAuthority,
) -> ListSync {
    let by_slug: BTreeMap<(&str, &str), &store::ListedRow> = known
        .iter()
        .map(|r| ((r.owner.as_str(), r.name.as_str()), r))
        .collect();
    let mut writes = Vec::new();
    let (mut inserted, mut changed) = (0, 0);
    let mut listed: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in &list.repos {
        listed.insert((r.slug.owner.as_str(), r.slug.name.as_str()));
        let h = hash::list_entry_hash(&r.labels, &r.technologies, r.description.as_deref());
        match by_slug.get(&(r.slug.owner.as_str(), r.slug.name.as_str())) {
            Some(row) if row.list_hash.as_deref() == Some(h.as_str()) && row.active == 1 => {
                continue
            }
            Some(_) => changed += 1,
            None => inserted += 1,
        }
        writes.push(store::ListedWrite {
            owner: r.slug.owner.clone(),
            name: r.slug.name.clone(),
            position: i64::from(r.position),
            labels_json: serde_json::to_string(&r.labels).unwrap_or_else(|_| "[]".into()),
            technologies_json: serde_json::to_string(&r.technologies)
                .unwrap_or_else(|_| "[]".into()),
            description: r.description.clone(),
            list_hash: h,
        });
    }
    let unlisted: Vec<i64> = known
        .iter()
        .filter(|r| r.active == 1 && !listed.contains(&(r.owner.as_str(), r.name.as_str())))
        .map(|r| r.id)
        .collect();
    let mut statements = store::upsert_listed(source, &writes, now_ms);
    let (deactivated, kept_unlisted) = match authority {
        ListAuthority::Complete => {
            statements.extend(store::deactivate_repos(&unlisted, now_ms));
            (unlisted.len(), 0)
        }
        ListAuthority::Partial => (0, unlisted.len()),
    };
    ListSync {
        statements,
        inserted,
        changed,
        deactivated,
        kept_unlisted,
    }
}

// ------------------------------------------------------------------ repos

/// One repo's progress within a step.
#[derive(Debug, Clone)]
pub struct RepoWork {
    pub row: RepoRow,
    pub listed: Vec<String>,
    pub state: Option<RepoState>,
    pub resolution: Option<LabelResolution>,
    /// The label the issues collected so far were filtered by.
    pub issue_label: Option<String>,
    pub issues: Vec<IssueMeta>,
    pub next: Option<RepoQuery>,
    pub status: WorkStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkStatus {
    /// Needs (more) queries.
    Open,
    /// Every page of its labelled issues is in hand (or it has none to fetch).
    Complete,
    /// GitHub says the repo does not exist.
    Missing(String),
    /// Could not be completed in this invocation; retried later.
    Incomplete(String),
}

impl RepoWork {
    pub fn new(row: RepoRow) -> Self {
        let listed = row.listed_labels();
        let query_label = if row.label_status == "resolved" {
            row.resolved_label.clone()
        } else {
            listed.first().cloned()
        };
        let next = Some(RepoQuery {
            owner: row.owner.clone(),
            name: row.name.clone(),
            issue_label: query_label.clone(),
            after: None,
            label_search: listed.first().map(|l| label::label_search_term(l)),
        });
        RepoWork {
            row,
            listed,
            state: None,
            resolution: None,
            issue_label: query_label,
            issues: Vec::new(),
            next,
            status: WorkStatus::Open,
        }
    }

    /// Take one alias's answer.
    pub fn absorb(&mut self, outcome: RepoOutcome) {
        let Some(asked) = self.next.take() else {
            return;
        };
        match outcome {
            RepoOutcome::NotFound { message } => self.status = WorkStatus::Missing(message),
            RepoOutcome::Failed(f) => self.status = WorkStatus::Incomplete(f.reason().to_string()),
            RepoOutcome::Found(state) => {
                let mut state = *state;
                let page = state.issues.take();
                if let Some(labels) = state.labels.take() {
                    // A first answer: resolve (or re-verify) the listed label.
                    let resolution = label::resolve_label(&self.listed, &labels);
                    let resolved = resolution.label().map(str::to_string);
                    self.resolution = Some(resolution);
                    self.state = Some(state);
                    match resolved {
                        None => {
                            self.status = WorkStatus::Complete;
                            return;
                        }
                        Some(l) if Some(&l) != asked.issue_label.as_ref() => {
                            // The issues came back for the wrong name: ask again.
                            self.issue_label = Some(l.clone());
                            self.next = Some(RepoQuery {
                                issue_label: Some(l),
                                after: None,
                                label_search: None,
                                ..asked
                            });
                            return;
                        }
                        Some(_) => {}
                    }
                } else if self.state.is_none() {
                    self.state = Some(state);
                }
                match page {
                    Some(page) => {
                        self.issues.extend(page.nodes);
                        if page.has_next_page && page.end_cursor.is_some() {
                            self.next = Some(RepoQuery {
                                after: page.end_cursor,
                                label_search: None,
                                ..asked
                            });
                        } else {
                            self.status = WorkStatus::Complete;
                        }
                    }
                    None if asked.issue_label.is_none() => self.status = WorkStatus::Complete,
                    None => self.status = WorkStatus::Incomplete("answer carried no issues".into()),
                }
            }
        }
    }

    fn fail(&mut self, reason: &str) {
        if self.status == WorkStatus::Open {
            self.next = None;
            self.status = WorkStatus::Incomplete(reason.to_string());
        }
    }
}

async fn graphql<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    queries: &[RepoQuery],
    needed_after: u32,
) -> Result<Result<ScrapeAnswer, Failure>, PlatformError> {
    let body = github::scrape_request_body(queries);
    let req: HttpRequest =
        github::graphql_request(&ctx.cfg.api_base, ctx.auth, ctx.invocation, &body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        ctx.bump(|c| c.github_requests += 1);
        let result = match p.fetch(&req).await {
            Ok(resp) => github::decode_scrape(&resp, queries.len()),
            Err(PlatformError::Network(m)) => Err(classify_network(&m)),
            Err(e) => return Err(e),
        };
        let now = p.now_ms();
        match result {
            Ok(answer) => {
                if let Some(rl) = &answer.rate_limit {
                    let cost = rl.cost;
                    ctx.bump(|c| c.graphql_points += cost);
                }
                ctx.log(
                    now,
                    Level::Debug,
                    "graphql",
                    fields([
                        ("repos", json!(queries.len())),
                        ("attempt", json!(attempt)),
                        (
                            "rate_limit",
                            json!(answer
                                .rate_limit
                                .as_ref()
                                .map(|r| json!({"cost": r.cost, "remaining": r.remaining}))),
                        ),
                    ]),
                );
                return Ok(Ok(answer));
            }
            Err(failure) => {
                ctx.log(
                    now,
                    Level::Warn,
                    "graphql_failed",
                    fields([
                        ("repos", json!(queries.len())),
                        ("attempt", json!(attempt)),
                        ("failure", json!(failure)),
                    ]),
                );
                if !retry_in_place(p, ctx.cfg, &failure, attempt, needed_after) {
                    return Ok(Err(failure));
                }
                let wait = failure.delay_secs((now / 1000) as u64, attempt);
                p.sleep(wait.max(1) * 1000).await;
            }
        }
    }
}

fn rate_limit_wait(answer: &ScrapeAnswer, now_ms: i64) -> Option<u64> {
    let rl = answer.rate_limit.as_ref()?;
    if rl.remaining >= RATE_LIMIT_FLOOR.max(rl.cost * 2) {
        return None;
    }
    let reset = logrec::parse_iso8601(&rl.reset_at)?;
    Some(((reset - now_ms) / 1000).max(1) as u64)
}

async fn repos_step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
) -> Result<Flow, PlatformError> {
    // read + query + write, before any follow-up page
    if !p.budget.can_afford(3 + CLOSING_RESERVE) {
        return Ok(Flow::Yield {
            delay_secs: 0,
            reason: "subrequest budget reached".into(),
        });
    }
    let k = ctx.cfg.repos_per_query;
    let after = ctx.cursor.after();
    let first_step = after.is_none();
    let rows = p
        .db(&store::step_read(
            after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
            k,
        ))
        .await?;
    let decode_err = |e: crate::sql::RowError| PlatformError::Db(e.to_string());
    let repos: Vec<RepoRow> =
        decode_rows(rows.first().map(Vec::as_slice).unwrap_or(&[])).map_err(decode_err)?;
    let known: Vec<IssueHashRow> =
        decode_rows(rows.get(1).map(Vec::as_slice).unwrap_or(&[])).map_err(decode_err)?;
    if repos.is_empty() {
        ctx.cursor.phase = ScrapePhase::Drain;
        return Ok(Flow::Next);
    }
    let mut work: Vec<RepoWork> = repos.into_iter().map(RepoWork::new).collect();
    let mut wait: Option<(u64, String)> = None;

    // The first query, then follow-ups (other pages, re-resolved labels)
    // batched across repos, while the budget allows.
    let mut first = true;
    loop {
        let open: Vec<usize> = (0..work.len())
            .filter(|&i| work[i].next.is_some())
            .collect();
        if open.is_empty() {
            break;
        }
        if !first && !p.budget.can_afford(2 + CLOSING_RESERVE) {
            for &i in &open {
                work[i].fail("budget reached before its next page");
            }
            break;
        }
        first = false;
        let mut failed_batch = false;
        for chunk in open.chunks(k) {
            if failed_batch || !p.budget.can_afford(2 + CLOSING_RESERVE) {
                for &i in chunk {
                    work[i].fail("budget reached before its next page");
                }
                continue;
            }
            let queries: Vec<RepoQuery> =
                chunk.iter().filter_map(|&i| work[i].next.clone()).collect();
            match graphql(p, ctx, &queries, 1).await? {
                Ok(answer) => {
                    if let Some(secs) = rate_limit_wait(&answer, p.now_ms()) {
                        wait = Some((secs, "GraphQL rate limit nearly spent".into()));
                    }
                    for (&i, outcome) in chunk.iter().zip(answer.repos) {
                        work[i].absorb(outcome);
                    }
                }
                Err(failure) => {
                    let secs = failure.delay_secs((p.now_ms() / 1000) as u64, 1);
                    for &i in chunk {
                        work[i].fail(failure.reason());
                    }
                    wait = Some((secs, failure.reason().to_string()));
                    failed_batch = true;
                }
            }
        }
        if wait.is_some() {
            for w in work.iter_mut() {
                w.fail("stopped early: upstream asked to wait");
            }
            break;
        }
    }

    let now = p.now_ms();
    let plan = plan_step(&work, &known, now);
    for w in &work {
        match &w.status {
            WorkStatus::Missing(m) => ctx.log(
                now,
                Level::Warn,
                "repo_not_found",
                fields([
                    ("repo", json!(format!("{}/{}", w.row.owner, w.row.name))),
                    ("message", json!(m)),
                ]),
            ),
            WorkStatus::Incomplete(r) => ctx.log(
                now,
                Level::Warn,
                "repo_incomplete",
                fields([
                    ("repo", json!(format!("{}/{}", w.row.owner, w.row.name))),
                    ("reason", json!(r)),
                ]),
            ),
            WorkStatus::Complete if w.resolution.as_ref().is_some_and(|r| !r.is_found()) => ctx
                .log(
                    now,
                    Level::Warn,
                    "label_not_found",
                    fields([
                        ("repo", json!(format!("{}/{}", w.row.owner, w.row.name))),
                        ("listed", json!(w.listed)),
                    ]),
                ),
            _ => {}
        }
    }
    ctx.bump(|c| {
        c.repos_seen += plan.repos_seen;
        c.repos_changed += plan.repos_changed;
        c.repos_skipped += plan.repos_skipped;
        c.issues_upserted += plan.issues_upserted;
        c.issues_closed += plan.issues_closed;
    });
    if plan.done > 0 {
        let last = &work[plan.done - 1].row;
        ctx.cursor.owner = Some(last.owner.clone());
        ctx.cursor.name = Some(last.name.clone());
        ctx.cursor.position += plan.done as u32;
    }
    // The step's changes and the run's progress commit together.
    let mut statements = plan.statements.clone();
    if first_step && ctx.cfg.ai_upgrades_per_run > 0 {
        // Once per run, a bounded number of heuristic fallbacks go back to
        // the outbox so AI can analyse them now it may be available again.
        statements.extend(store::requeue_heuristic_fallbacks(
            ctx.cfg.ai_upgrades_per_run,
            now,
        ));
    }
    statements.push(ctx.progress());
    p.db(&statements).await?;
    ctx.log(
        now,
        Level::Info,
        "step",
        fields([
            ("repos", json!(work.len())),
            ("done", json!(plan.done)),
            ("repos_changed", json!(plan.repos_changed)),
            ("issues_upserted", json!(plan.issues_upserted)),
            ("issues_closed", json!(plan.issues_closed)),
        ]),
    );
    match wait {
        Some((delay_secs, reason)) => Ok(Flow::Yield { delay_secs, reason }),
        None if plan.done < work.len() => Ok(Flow::Yield {
            delay_secs: 0,
            reason: "budget reached mid-step".into(),
        }),
        None => Ok(Flow::Next),
    }
}

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
        Some(t) => 100 - ((now_ms - t).max(0) / 86_400_000).min(100),
        None => 0,
    }
}

/// Diff a step's answers against D1 and plan its writes.
pub fn plan_step(work: &[RepoWork], known: &[IssueHashRow], now_ms: i64) -> StepPlan {
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
    let mut issue_writes: Vec<IssueWrite> = Vec::new();
    let mut blocked = false;
    for w in work {
        match &w.status {
            WorkStatus::Open | WorkStatus::Incomplete(_) => {
                blocked = true;
                continue;
            }
            WorkStatus::Missing(message) => {
                plan.repos_skipped += 1;
                if w.row.upstream_status != "not_found" {
                    plan.statements
                        .push(store::mark_repo_upstream_missing(w.row.id, message, now_ms));
                }
            }
            WorkStatus::Complete => {
                plan.repos_seen += 1;
                let Some(state) = &w.state else { continue };
                let found = w
                    .resolution
                    .as_ref()
                    .and_then(|r| r.label().map(str::to_string));
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
                    resolved_label: found.as_deref(),
                };
                let state_hash = hash::repo_state_hash(&input);
                if w.row.state_hash.as_deref() != Some(state_hash.as_str())
                    || w.row.label_status != label_status
                {
                    plan.repos_changed += 1;
                    plan.statements.push(store::update_repo_state(
                        &RepoWrite {
                            id: w.row.id,
                            name_with_owner: state.name_with_owner.clone(),
                            description: state.description.clone(),
                            primary_language: state.primary_language.clone(),
                            stars: state.stars,
                            is_archived: state.is_archived,
                            pushed_at: state.pushed_at.clone(),
                            label_status: label_status.to_string(),
                            resolved_label: found.clone(),
                            state_hash,
                            content_hash: hash::repo_content_hash(&input),
                            priority: freshness_priority(state.pushed_at.as_deref(), now_ms),
                        },
                        now_ms,
                    ));
                }
                if found.is_none() {
                    plan.repos_skipped += 1;
                } else {
                    let stored: BTreeMap<i64, &IssueHashRow> = by_repo
                        .get(&w.row.id)
                        .map(|v| v.iter().map(|r| (r.number, *r)).collect())
                        .unwrap_or_default();
                    let mut seen = BTreeSet::new();
                    for issue in &w.issues {
                        if !seen.insert(issue.number) {
                            continue;
                        }
                        let h = hash::issue_hash(&IssueHashInput {
                            title: &issue.title,
                            body: &issue.body,
                            state: &issue.state,
                            labels: &issue.labels,
                            assignee_count: issue.assignee_count,
                            comment_count: issue.comment_count,
                            updated_at: &issue.updated_at,
                        });
                        let state = if issue.state == "closed" {
                            "closed"
                        } else {
                            "open"
                        };
                        if stored
                            .get(&issue.number)
                            .is_some_and(|r| r.content_hash == h.as_str() && r.state == state)
                        {
                            continue;
                        }
                        issue_writes.push(IssueWrite {
                            repo_id: w.row.id,
                            number: issue.number,
                            title: issue.title.clone(),
                            body: issue.body.clone(),
                            url: issue.url.clone(),
                            state: state.to_string(),
                            labels_json: serde_json::to_string(&issue.labels)
                                .unwrap_or_else(|_| "[]".into()),
                            assignee_count: issue.assignee_count,
                            comment_count: issue.comment_count,
                            created_at: issue.created_at.clone(),
                            updated_at: issue.updated_at.clone(),
                            content_hash: h,
                            priority: freshness_priority(Some(&issue.updated_at), now_ms),
                        });
                    }
                    // The stale sweep: only on a complete refresh.
                    let vanished: Vec<i64> = stored
                        .values()
                        .filter(|r| r.state == "open" && !seen.contains(&r.number))
                        .map(|r| r.number)
                        .collect();
                    if !vanished.is_empty() {
                        plan.issues_closed += vanished.len() as i64;
                        plan.statements
                            .extend(store::close_issues(w.row.id, &vanished, now_ms));
                    }
                }
            }
        }
        if !blocked {
            plan.done += 1;
        }
    }
    plan.issues_upserted = issue_writes.len() as i64;
    plan.statements
        .extend(store::upsert_issues(&issue_writes, now_ms));
    plan
}

// ------------------------------------------------------------------ drain

/// Messages for outbox rows, in order.
pub fn outbox_messages(rows: &[OutboxRow]) -> Vec<QueueMessage> {
    rows.iter()
        .map(|r| match r.number {
            Some(n) if r.kind == "issue" => {
                QueueMessage::issue(&r.owner, &r.name, n, &r.content_hash, r.priority)
            }
            _ => QueueMessage::repo(&r.owner, &r.name, &r.content_hash, r.priority),
        })
        .collect()
}

/// At most this many `send_batch` calls per drain round.
pub const MAX_SENDS_PER_DRAIN: u32 = 10;

async fn drain_step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
) -> Result<Flow, PlatformError> {
    // read + ≥ 1 send + mark
    if !p.budget.can_afford(3 + CLOSING_RESERVE) {
        return Ok(Flow::Yield {
            delay_secs: 0,
            reason: "subrequest budget reached while queueing".into(),
        });
    }
    let sends = (p.budget.remaining() - CLOSING_RESERVE - 2).min(MAX_SENDS_PER_DRAIN);
    let rows = p.db(&[store::outbox(sends as usize * 100)]).await?;
    let items: Vec<OutboxRow> = decode_rows(rows.first().map(Vec::as_slice).unwrap_or(&[]))
        .map_err(|e| PlatformError::Db(e.to_string()))?;
    if items.is_empty() {
        ctx.cursor.phase = ScrapePhase::Done;
        return Ok(Flow::Next);
    }
    let messages = outbox_messages(&items);
    // Keep one call for marking them queued, plus the closing reserve.
    let report = p
        .send_all(
            QueueName::Processing,
            &messages,
            1 + CLOSING_RESERVE,
            ctx.cfg.send_concurrency,
        )
        .await;
    let sent_items: Vec<OutboxRow> = report.sent_indexes().map(|i| items[i].clone()).collect();
    let sent = sent_items.len();
    let failure = report.first_error().map(str::to_string);
    ctx.bump(|c| c.messages_queued += sent as i64);
    if sent > 0 {
        let mut statements = store::mark_queued(&sent_items);
        statements.push(ctx.progress());
        p.db(&statements).await?;
    }
    let now = p.now_ms();
    ctx.log(
        now,
        Level::Info,
        "queued",
        fields([("messages", json!(sent)), ("of", json!(items.len()))]),
    );
    if let Some(e) = failure {
        ctx.log(
            now,
            Level::Error,
            "queue_send_failed",
            fields([("error", json!(e))]),
        );
        return Ok(Flow::Yield {
            delay_secs: crate::failure::backoff_secs(2),
            reason: format!("queue send failed: {e}"),
        });
    }
    Ok(Flow::Next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: i64, owner: &str, name: &str) -> store::ListedRow {
        store::ListedRow {
            id,
            owner: owner.into(),
            name: name.into(),
            data_source: "awesome-for-beginners".into(),
            list_hash: None,
            active: 1,
        }
    }

    fn deactivations(sync: &ListSync) -> usize {
        sync.statements
            .iter()
            .filter(|s| s.sql.contains("SET active = 0"))
            .count()
    }

    #[test]
    fn only_a_complete_list_delists_the_repos_it_omits() {
        let list = list::parse_data_json(
            r#"{"repositories": [{"name": "a", "link": "https://github.com/o/a", "label": "good first issue"}]}"#,
        )
        .unwrap();
        let known = [
            listed(1, "o", "a"),
            listed(2, "o", "b"),
            listed(3, "o", "c"),
        ];

        let whole = plan_list_sync(DEFAULT_SOURCE, &list, &known, 0);
        assert_eq!((whole.deactivated, whole.kept_unlisted), (2, 0));
        assert_eq!(deactivations(&whole), 1);

        let partial = plan_list_sync_from(DEFAULT_SOURCE, &list, &known, 0, ListAuthority::Partial);
        assert_eq!((partial.deactivated, partial.kept_unlisted), (0, 2));
        assert_eq!(deactivations(&partial), 0, "a partial list delists nothing");
        // It still writes what it lists.
        assert_eq!(
            partial.inserted + partial.changed,
            whole.inserted + whole.changed
        );
    }

    const DEFAULT_SOURCE: &str = crate::list::DEFAULT_SOURCE_ID;
}
