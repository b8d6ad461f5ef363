//! The repos phases: one GraphQL query covers up to 50 repos (aliases), and
//! each step commits its diff together with the run's cursor (in the
//! invocation's next D1 batch). A main-pass
//! step follows up further pages in place, but a repo whose listed label
//! resolved to another name is carried to the retry pass with that name
//! stored, and asked there. A repo whose answer fails does not hold up the
//! others: the cursor moves on and the repo is retried after the main pass,
//! a bounded number of times.

use serde_json::json;

use super::plan::{plan_step, StepPlan};
use super::{retry_in_place, Ctx, Flow, ScrapeConfig, CLOSING_RESERVE, RATE_LIMIT_FLOOR};
use crate::failure::{backoff_secs, classify_network, Failure};
use crate::github::{
    self, HttpRequest, IssueMeta, RepoOutcome, RepoQuery, RepoState, ScrapeAnswer,
};
use crate::label::{self, LabelResolution};
use crate::logrec::{self, fields, Level};
use crate::messages::{RetryRepo, ScrapeCursor, ScrapePhase};
use crate::platform::{Metered, Platform, PlatformError};
use crate::sql::{decode_packed, Statement};
use crate::store::{self, IssueHashRow, RepoRow};

/// A repo's answer is tried this many times in a run before it is recorded
/// as failed (a permanent failure such as FORBIDDEN: once).
pub const MAX_REPO_ATTEMPTS: u32 = 3;
/// Whole queries failing transiently this many times in a row end the run.
pub const MAX_QUERY_FAILURES: u32 = 8;
/// Issues a repo never seen before is expected to bring (for sizing).
pub const EXPECTED_ISSUES_NEW_REPO: usize = 10;

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
    /// Not finished in this invocation (budget, CPU allowance, a wait): the
    /// cursor stops before it and the next invocation starts there.
    Deferred(String),
    /// Its answer failed or came back partial: the cursor moves on and the
    /// repo is retried after the main pass, a bounded number of times.
    Failed(Failure),
    /// Not finished here, and carried on the retry list so the cursor can
    /// move past it: it is asked again (from its first page) after the main
    /// pass, without spending an attempt.
    Carried(String),
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
            RepoOutcome::Failed(f) => self.status = WorkStatus::Failed(f),
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
                    None => {
                        self.status =
                            WorkStatus::Failed(Failure::transient("answer carried no issues"))
                    }
                }
            }
        }
    }

    /// Not finished here: the next invocation starts again at this repo.
    pub fn defer(&mut self, reason: &str) {
        if self.status == WorkStatus::Open {
            self.next = None;
            self.status = WorkStatus::Deferred(reason.to_string());
        }
    }

    fn slug(&self) -> String {
        format!("{}/{}", self.row.owner, self.row.name)
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

/// How the query rounds of a step ended.
enum Rounds {
    /// Every repo is complete, gone, failed or deferred for the allowance.
    Done,
    /// Stop and continue later (rate limit nearly spent, budget, a wait).
    Wait { delay_secs: u64, reason: String },
    /// Whole queries keep failing: transient (count it) or permanent (end).
    Failed(Failure),
}

/// Repos one retry step asks at most: a carried repo is often new to the
/// store (no issue counts to size the step by), and all its issues arrive
/// in that step.
pub const RETRY_REPOS_PER_STEP: usize = 20;

/// Why a main-pass repo whose label was re-resolved waits for the retry pass.
pub const FOLLOW_UP_CARRIED: &str = "re-resolved label: carried to the retry pass";

/// The first query, then follow-ups batched across repos, while the
/// subrequest budget lasts (the issue allowance sized the step). In the main
/// pass the repos whose listed label resolved to another name (their issues
/// came back for the wrong one) are not asked again in the step: they are
/// carried to the retry pass with the resolved label stored, where one
/// query brings their issues, so a step does not decode a second answer
/// that holds most of its issues. Further pages are followed up in place,
/// as is every follow-up when the retry list has no room.
async fn query_rounds<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    work: &mut [RepoWork],
    pass: Pass,
) -> Result<Rounds, PlatformError> {
    let k = ctx.cfg.repos_per_query;
    let mut first = true;
    loop {
        let open: Vec<usize> = (0..work.len())
            .filter(|&i| work[i].next.is_some())
            .collect();
        if open.is_empty() {
            return Ok(Rounds::Done);
        }
        let open = if pass == Pass::Main && !first {
            carry_relabelled(
                work,
                open,
                MAX_CARRIED.saturating_sub(ctx.cursor.retry.len()),
            )
        } else {
            open
        };
        if open.is_empty() {
            return Ok(Rounds::Done);
        }
        // The allowance sized the step (its first query); follow-ups in
        // place finish the repos already asked. Only the subrequest budget
        // stops them.
        if !p.budget.can_afford(2 + CLOSING_RESERVE) {
            defer_all(
                work,
                &open,
                "subrequest budget reached before its next page",
            );
            return Ok(Rounds::Done);
        }
        let chunk: Vec<usize> = open.iter().copied().take(k).collect();
        let queries: Vec<RepoQuery> = chunk.iter().filter_map(|&i| work[i].next.clone()).collect();
        let answer = match graphql(p, ctx, &queries, 1).await? {
            Ok(answer) => answer,
            Err(failure) => {
                defer_all(work, &open, "stopped early: the query failed");
                return Ok(match failure {
                    Failure::Budget { reason } => Rounds::Wait {
                        delay_secs: 0,
                        reason,
                    },
                    Failure::RateLimited { .. } => Rounds::Wait {
                        delay_secs: failure.delay_secs((p.now_ms() / 1000) as u64, 1),
                        reason: failure.reason().to_string(),
                    },
                    f => Rounds::Failed(f),
                });
            }
        };
        ctx.cursor.failures = 0;
        first = false;
        let wait = rate_limit_wait(&answer, p.now_ms());
        for (&i, outcome) in chunk.iter().zip(answer.repos) {
            let before = work[i].issues.len();
            work[i].absorb(outcome);
            ctx.allowance.spend_repo(work[i].issues.len() - before);
        }
        if let Some(secs) = wait {
            let still: Vec<usize> = (0..work.len())
                .filter(|&i| work[i].next.is_some())
                .collect();
            defer_all(work, &still, "stopped early: upstream asked to wait");
            return Ok(Rounds::Wait {
                delay_secs: secs,
                reason: "GraphQL rate limit nearly spent".into(),
            });
        }
    }
}

/// The repos whose label was re-resolved (their next query starts again on
/// the first page) are carried to the retry pass, while the retry list has
/// room for all of them; the rest, further pages, are followed up in place.
fn carry_relabelled(work: &mut [RepoWork], open: Vec<usize>, room: usize) -> Vec<usize> {
    let (relabelled, pages): (Vec<usize>, Vec<usize>) = open
        .into_iter()
        .partition(|&i| work[i].next.as_ref().is_some_and(|q| q.after.is_none()));
    if relabelled.len() > room {
        return [relabelled, pages].concat();
    }
    defer_all(work, &relabelled, FOLLOW_UP_CARRIED);
    pages
}

fn defer_all(work: &mut [RepoWork], which: &[usize], reason: &str) {
    for &i in which {
        work[i].defer(reason);
    }
}

/// Which pass a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every active repo after the cursor, in `(owner, name)` order.
    Main,
    /// The repos whose answers failed in this run, and those carried to it.
    Retry,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Main => "main",
            Pass::Retry => "retry",
        }
    }
}

/// One step of the main pass: the next repos after the cursor.
pub(super) async fn repos_step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
) -> Result<Flow, PlatformError> {
    if !p.budget.can_afford(3 + CLOSING_RESERVE) {
        return Ok(Flow::yield_now("subrequest budget reached"));
    }
    if ctx.allowance.exhausted() {
        return Ok(Flow::yield_now("one step per invocation (CPU allowance)"));
    }
    let first_step = ctx.cursor.after().is_none();
    let read = main_read(&ctx.cursor, ctx.cfg);
    let rows = super::read_first(p, ctx, read).await?;
    let (repos, known) = decode_step(&rows)?;
    if repos.is_empty() {
        ctx.cursor.phase = if ctx.cursor.retry.is_empty() {
            ScrapePhase::Drain
        } else {
            ScrapePhase::Retry
        };
        return Ok(Flow::Next);
    }
    let mut extra = Vec::new();
    if first_step && ctx.cfg.ai_upgrades_per_run > 0 {
        // Once per run, heuristic fallbacks go back to the outbox so AI can
        // analyse them now it may be available again.
        extra.extend(store::requeue_heuristic_fallbacks(
            ctx.cfg.ai_upgrades_per_run,
            p.now_ms(),
        ));
    }
    step(p, ctx, repos, known, Pass::Main, extra).await
}

/// One round of the retry pass: the failed repos whose attempts remain.
pub(super) async fn retry_step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
) -> Result<Flow, PlatformError> {
    if ctx.cursor.retry.is_empty() {
        ctx.cursor.phase = ScrapePhase::Drain;
        return Ok(Flow::Next);
    }
    if !p.budget.can_afford(3 + CLOSING_RESERVE) || ctx.allowance.exhausted() {
        return Ok(Flow::yield_now("allowance reached before the retry round"));
    }
    let slugs = retry_slugs(&ctx.cursor, ctx.cfg);
    let rows = super::read_first(p, ctx, store::retry_read(&slugs)).await?;
    let (repos, known) = decode_step(&rows)?;
    // Repos no longer active (delisted meanwhile) leave the retry list.
    let active = |o: &str, n: &str| repos.iter().any(|row| row.owner == o && row.name == n);
    ctx.cursor.retry.retain(|r| {
        active(&r.owner, &r.name) || !slugs.iter().any(|(o, n)| *o == r.owner && *n == r.name)
    });
    if repos.is_empty() {
        return Ok(Flow::Next);
    }
    step(p, ctx, repos, known, Pass::Retry, Vec::new()).await
}

/// The repos a retry round asks, from the head of the retry list.
fn retry_slugs(cursor: &ScrapeCursor, cfg: &ScrapeConfig) -> Vec<(String, String)> {
    cursor
        .retry
        .iter()
        .take(cfg.repos_per_query.min(RETRY_REPOS_PER_STEP))
        .map(|r| (r.owner.clone(), r.name.clone()))
        .collect()
}

/// A main-pass step's read: the next repos after the cursor, and their
/// issues' hashes.
fn main_read(cursor: &ScrapeCursor, cfg: &ScrapeConfig) -> Vec<Statement> {
    let after = cursor.after();
    store::step_read(
        after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
        cfg.repos_per_query,
    )
}

/// The D1 read a repos or retry step at `cursor` starts with, so the claim
/// can send it in its own batch (see [`super::first_read`]).
pub(super) fn first_read(cursor: &ScrapeCursor, cfg: &ScrapeConfig) -> Vec<Statement> {
    match cursor.phase {
        ScrapePhase::Repos => main_read(cursor, cfg),
        ScrapePhase::Retry if !cursor.retry.is_empty() => {
            store::retry_read(&retry_slugs(cursor, cfg))
        }
        _ => Vec::new(),
    }
}

fn decode_step(
    rows: &[Vec<serde_json::Value>],
) -> Result<(Vec<RepoRow>, Vec<IssueHashRow>), PlatformError> {
    let err = |e: crate::sql::RowError| PlatformError::Db(e.to_string());
    let repos = decode_packed(rows.first().map(Vec::as_slice).unwrap_or(&[])).map_err(err)?;
    let known = decode_packed(rows.get(1).map(Vec::as_slice).unwrap_or(&[])).map_err(err)?;
    Ok((repos, known))
}

/// Query, diff, settle failures and commit one step's repos.
async fn step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
    repos: Vec<RepoRow>,
    known: Vec<IssueHashRow>,
    pass: Pass,
    mut statements: Vec<Statement>,
) -> Result<Flow, PlatformError> {
    let mut work = size_step(repos, &known, ctx.allowance.issues_left);
    ctx.allowance.steps += 1;
    let asked_before = ctx.counters.github_requests;
    let rounds = query_rounds(p, ctx, &mut work, pass).await?;
    let queries = ctx.counters.github_requests - asked_before;
    carry_deferred(&mut work, ctx.cursor.retry.len());
    let now = p.now_ms();
    let mut plan = plan_step(&work, &known, now, ctx.cfg.inactive_after_days);
    log_repo_outcomes(ctx, &work, now);
    let settled = settle_failures(&work, &ctx.cursor.retry, pass, now);
    ctx.bump(|c| {
        c.repos_seen += plan.repos_seen;
        c.repos_changed += plan.repos_changed;
        c.repos_skipped += plan.repos_skipped + settled.given_up as i64;
        c.issues_upserted += plan.issues_upserted;
        c.issues_closed += plan.issues_closed;
    });
    if pass == Pass::Main && plan.done > 0 {
        let last = &work[plan.done - 1].row;
        ctx.cursor.owner = Some(last.owner.clone());
        ctx.cursor.name = Some(last.name.clone());
        ctx.cursor.position += plan.done as u32;
    }
    ctx.cursor.retry = settled.retry;
    statements.append(&mut plan.statements);
    statements.extend(settled.statements);
    let flow = rounds_flow(ctx, rounds, &plan, work.len(), pass);
    statements.push(ctx.progress());
    ctx.pending.append(&mut statements);
    log_step(ctx, &work, &plan, (pass, queries), now);
    Ok(flow)
}

/// Repos carried on the retry list at most: the cursor travels in every
/// continuation message (Queues: 128 KB per message).
pub const MAX_CARRIED: usize = 200;

/// Deferred repos go on the retry list (while it has room) so the cursor
/// passes them; the rest stay deferred and hold the cursor.
fn carry_deferred(work: &mut [RepoWork], carried_already: usize) {
    let mut room = MAX_CARRIED.saturating_sub(carried_already);
    for w in work.iter_mut() {
        if let WorkStatus::Deferred(reason) = &w.status {
            if room == 0 {
                return;
            }
            room -= 1;
            w.status = WorkStatus::Carried(reason.clone());
        }
    }
}

/// Keep the prefix of `repos` whose expected issues fit the allowance
/// (at least one repo, so a step always makes progress).
fn size_step(repos: Vec<RepoRow>, known: &[IssueHashRow], issues_left: usize) -> Vec<RepoWork> {
    let mut expected = 0usize;
    let mut out = Vec::with_capacity(repos.len());
    for row in repos {
        let stored = known
            .iter()
            .filter(|k| k.repo_id == row.id && k.state == "open")
            .count();
        let cost = if row.state_hash.is_none() {
            EXPECTED_ISSUES_NEW_REPO
        } else {
            stored.max(1)
        };
        if !out.is_empty() && expected + cost > issues_left {
            break;
        }
        expected += cost;
        out.push(RepoWork::new(row));
    }
    out
}

/// What a step leaves for the next: continue here, wait, or end the run.
fn rounds_flow(
    ctx: &mut Ctx<'_>,
    rounds: Rounds,
    plan: &StepPlan,
    repos: usize,
    pass: Pass,
) -> Flow {
    match rounds {
        Rounds::Wait { delay_secs, reason } => Flow::Yield { delay_secs, reason },
        Rounds::Failed(f @ Failure::Permanent { .. }) => Flow::Fail {
            reason: format!("GitHub refused the scrape: {}", f.reason()),
        },
        Rounds::Failed(f) => {
            ctx.cursor.failures += 1;
            if ctx.cursor.failures >= MAX_QUERY_FAILURES {
                Flow::Fail {
                    reason: format!(
                        "GitHub kept failing ({} attempts in a row): {}",
                        ctx.cursor.failures,
                        f.reason()
                    ),
                }
            } else {
                Flow::Yield {
                    delay_secs: f
                        .delay_secs(0, ctx.cursor.failures)
                        .max(backoff_secs(ctx.cursor.failures)),
                    reason: format!("transient failure {}: {}", ctx.cursor.failures, f.reason()),
                }
            }
        }
        Rounds::Done if pass == Pass::Main && plan.done < repos => {
            Flow::yield_now("invocation allowance reached mid-step")
        }
        Rounds::Done if pass == Pass::Retry && !ctx.cursor.retry.is_empty() => {
            // Carried repos continue at once; failed ones back off.
            let failed = ctx
                .cursor
                .retry
                .iter()
                .map(|r| r.attempts)
                .filter(|&a| a > 0)
                .min();
            let carried = ctx.cursor.retry.iter().any(|r| r.attempts == 0);
            Flow::Yield {
                delay_secs: if carried {
                    0
                } else {
                    failed.map_or(0, backoff_secs)
                },
                reason: format!("{} repos to retry", ctx.cursor.retry.len()),
            }
        }
        Rounds::Done => Flow::Next,
    }
}

/// The retry list after a step, and the failures recorded on repo rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub retry: Vec<RetryRepo>,
    pub statements: Vec<Statement>,
    /// Repos given up on in this step (recorded as failed with the reason).
    pub given_up: usize,
}

/// Failed repos join (or stay on) the retry list with one more attempt;
/// permanent failures and repos out of attempts are recorded as failed;
/// repos that answered whole leave the list and forget their failures.
pub fn settle_failures(work: &[RepoWork], retry: &[RetryRepo], pass: Pass, now_ms: i64) -> Settled {
    let mut out = Settled {
        retry: Vec::new(),
        statements: Vec::new(),
        given_up: 0,
    };
    let attempted: Vec<String> = work.iter().map(RepoWork::slug).collect();
    // Retry entries this step did not touch stay as they are.
    out.retry.extend(
        retry
            .iter()
            .filter(|r| !attempted.contains(&format!("{}/{}", r.owner, r.name)))
            .cloned(),
    );
    for w in work {
        let before = retry
            .iter()
            .find(|r| r.owner == w.row.owner && r.name == w.row.name)
            .map_or(0, |r| r.attempts);
        match &w.status {
            WorkStatus::Failed(f) => {
                let attempts = before + 1;
                let permanent = !f.is_retryable();
                if permanent || attempts >= MAX_REPO_ATTEMPTS {
                    out.given_up += 1;
                    let reason = format!("gave up after {attempts} attempt(s): {}", f.reason());
                    out.statements.push(store::record_repo_failure(
                        w.row.id,
                        i64::from(attempts),
                        &reason,
                        now_ms,
                    ));
                } else {
                    out.statements.push(store::record_repo_failure(
                        w.row.id,
                        i64::from(attempts),
                        f.reason(),
                        now_ms,
                    ));
                    out.retry.push(RetryRepo {
                        owner: w.row.owner.clone(),
                        name: w.row.name.clone(),
                        attempts,
                        reason: f.reason().to_string(),
                    });
                }
            }
            WorkStatus::Carried(reason) => out.retry.push(RetryRepo {
                owner: w.row.owner.clone(),
                name: w.row.name.clone(),
                attempts: before,
                reason: reason.clone(),
            }),
            WorkStatus::Deferred(_) | WorkStatus::Open if pass == Pass::Retry => {
                out.retry.push(RetryRepo {
                    owner: w.row.owner.clone(),
                    name: w.row.name.clone(),
                    attempts: before,
                    reason: "not reached".into(),
                });
            }
            WorkStatus::Complete | WorkStatus::Missing(_) if w.row.scrape_failures > 0 => {
                out.statements.push(store::clear_repo_failure(w.row.id));
            }
            _ => {}
        }
    }
    out
}

fn log_repo_outcomes(ctx: &mut Ctx<'_>, work: &[RepoWork], now: i64) {
    for w in work {
        let repo = json!(w.slug());
        match &w.status {
            WorkStatus::Missing(m) => ctx.log(
                now,
                Level::Warn,
                "repo_not_found",
                fields([("repo", repo), ("message", json!(m))]),
            ),
            WorkStatus::Failed(f) => ctx.log(
                now,
                Level::Warn,
                "repo_failed",
                fields([("repo", repo), ("failure", json!(f))]),
            ),
            WorkStatus::Deferred(r) | WorkStatus::Carried(r) => ctx.log(
                now,
                Level::Debug,
                "repo_deferred",
                fields([("repo", repo), ("reason", json!(r))]),
            ),
            WorkStatus::Complete if w.resolution.as_ref().is_some_and(|r| !r.is_found()) => ctx
                .log(
                    now,
                    Level::Warn,
                    "label_not_found",
                    fields([("repo", repo), ("listed", json!(w.listed))]),
                ),
            _ => {}
        }
    }
}

fn log_step(
    ctx: &mut Ctx<'_>,
    work: &[RepoWork],
    plan: &StepPlan,
    (pass, queries): (Pass, i64),
    now: i64,
) {
    let relabelled = work
        .iter()
        .filter(|w| matches!(&w.status, WorkStatus::Carried(r) if r == FOLLOW_UP_CARRIED))
        .count();
    ctx.log(
        now,
        Level::Info,
        "step",
        fields([
            ("pass", json!(pass.name())),
            ("queries", json!(queries)),
            ("relabel_carried", json!(relabelled)),
            ("repos", json!(work.len())),
            ("done", json!(plan.done)),
            ("repos_changed", json!(plan.repos_changed)),
            ("issues_upserted", json!(plan.issues_upserted)),
            ("issues_closed", json!(plan.issues_closed)),
            ("retry", json!(ctx.cursor.retry.len())),
        ]),
    );
}
