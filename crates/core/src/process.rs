//! The processing workflow: one queue batch of repos and issues in, analysed
//! rows in D1 and an ack/retry decision per message out.
//!
//! [`process_batch`] is a short driver of named stages, each a function of
//! plain data that a test can build by hand:
//!
//! parse → read state → plan → enrich → triage → analyse → commit → settle
//!
//! - [`parse`]: validate every body; an invalid one is recorded and acked.
//! - [`read_state`] / [`decode_state`]: one D1 batch of three statements
//!   counts each delivery and reads the stored rows (packed: one string
//!   across the boundary per table).
//! - [`plan`]: per message, already analysed (skip), unknown, closed, or work.
//! - enrich: one GraphQL query for all the work ([`enrich_targets`]), with
//!   short in-place retries ([`inline_retry`]).
//! - [`triage`]: per item, what its enrichment means: failed, retry later,
//!   closed, the stored analysis still stands, or ask AI.
//! - analyse: [`analyse::analyse`], the one AI path (see that module).
//! - [`commit`]: one D1 batch; analyses are guarded on the content hash
//!   they were made for. It also carries the invocation's ledger row,
//!   counted from [`tally`] (every guarded write landing) and rewritten
//!   after [`settle`] only when one did not.
//! - [`settle`]: ack or retry each message, the report and its log lines.
//!
//! The driver awaits the platform; the stages decide. Invariants:
//! - a message is acked only after its effect is committed to D1;
//! - an analysis is committed only for the content it analysed: when the
//!   scraper stored newer content meanwhile, the write does not land and the
//!   row stays pending for the newer content, which the outbox queues;
//! - an item whose stored analysis came from the same content hash and prompt
//!   version is skipped, and one whose fetched text hashes to what was
//!   analysed keeps its analysis: no AI call either way;
//! - one bad message never retries or drops the others;
//! - a failure that may pass is retried through the queue with exponential
//!   backoff; on a message's last delivery it ends `failed` with the reason
//!   (GitHub) or with a labelled heuristic result (AI), never silently;
//! - the invocation paces itself so all consumers together stay under
//!   GitHub's and Workers AI's per-minute limits.

pub mod analyse;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

pub use analyse::{AiBinding, AiMode, AiState, Analysis, Answer, NoBinding};

use crate::ai::{self, IssueInput, RepoContext};
use crate::failure::{classify_network, Failure};
use crate::github::{
    self, EnrichTarget, Enriched, GithubAuth, HttpRequest, IssueMeta, RepoEnrichment,
};
use crate::hash;
use crate::logrec::{fields, Level, LogBook};
use crate::messages::QueueMessage;
use crate::platform::{Metered, Platform, PlatformError};
use crate::sql::{decode_packed, decode_rows, RowError, Statement};
use crate::store::{self, InvocationRecord, ItemTable, ProcIssueRow, ProcRepoRow, Provenance};

/// Kept back for the closing D1 write and the R2 log.
pub const CLOSING_RESERVE: u32 = 2;
/// A transient enrich failure (5xx, 429, a secondary limit, a cut-off body)
/// is retried in place up to this many times, when its wait is short and
/// the budget still covers the items' AI calls; past that, the queue retries
/// the messages. Without it one blip per delivery would dead-letter a batch.
pub const ENRICH_INLINE_RETRIES: u32 = 2;
/// The longest wait an in-place retry may take.
pub const MAX_INLINE_WAIT_SECS: u64 = 10;
/// Deliveries a message gets: the first and the consumer's `max_retries = 3`
/// (wrangler-processor.toml). On the last one a failure that could still
/// pass ends the item instead of leaving it to the dead-letter queue.
pub const MAX_DELIVERIES: i64 = 4;
/// First queue backoff; it doubles per delivery (10, 20, 40 s), and never
/// undercuts what upstream asked for (`retry-after`, a rate-limit reset).
pub const QUEUE_BACKOFF_BASE_SECS: u64 = 10;
/// The queue name deliveries are counted under.
const QUEUE: &str = "processing";

/// How fast all processor consumers together may go. Each invocation takes
/// its share (`1 / consumers`) by spacing its own calls; sleeping costs no
/// CPU, and an invocation that holds its slot longer keeps the others out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Workers AI text generation allows 300 requests a minute; default 240.
    pub ai_calls_per_minute: u32,
    /// GitHub allows 2,000 GraphQL points a minute per token; the processor
    /// takes 1,500 by default and leaves the rest to the scraper.
    pub github_points_per_minute: u32,
    /// The consumer's `max_concurrency`.
    pub consumers: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            ai_calls_per_minute: 240,
            github_points_per_minute: 1_500,
            consumers: 4,
        }
    }
}

impl Pacing {
    /// From config strings; anything missing or unparsable keeps its default.
    pub fn from_config(ai: Option<&str>, github: Option<&str>, consumers: Option<&str>) -> Self {
        let d = Pacing::default();
        let num = |v: Option<&str>, default: u32| {
            v.and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Pacing {
            ai_calls_per_minute: num(ai, d.ai_calls_per_minute),
            github_points_per_minute: num(github, d.github_points_per_minute),
            consumers: num(consumers, d.consumers),
        }
    }

    /// The least time between two AI calls of one invocation.
    pub fn ai_interval_ms(&self) -> u64 {
        60_000 * u64::from(self.consumers) / u64::from(self.ai_calls_per_minute.max(1))
    }

    /// How long an invocation that spent `points` holds its slot.
    pub fn github_hold_ms(&self, points: u32) -> u64 {
        60_000 * u64::from(points) * u64::from(self.consumers)
            / u64::from(self.github_points_per_minute.max(1))
    }
}

/// Processor settings.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub api_base: String,
    pub ai: AiMode,
    pub pacing: Pacing,
    /// Neurons the processor may spend per UTC day (`AI_DAILY_NEURON_CAP`,
    /// [`crate::ai::DEFAULT_DAILY_NEURON_CAP`] of the 10,000 free).
    pub ai_daily_cap: f64,
}

/// One delivered queue message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    pub body: Value,
}

/// What to do with a message once the batch is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    Ack,
    Retry { delay_secs: u64 },
}

/// How a message ended, as its log line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The body is not a processing message (recorded in `dead_letters`).
    Invalid,
    /// The same item earlier in this batch does the work.
    DuplicateInBatch,
    /// Already analysed from this content hash and prompt version.
    SkippedUnchanged,
    /// Found closed.
    Closed,
    /// Analysed and committed.
    Completed,
    /// Re-queued, but the fetched text is what was analysed: kept, no AI.
    Reused,
    /// The scraper stored newer content meanwhile: nothing committed; the
    /// newer content has its own message.
    Superseded,
    Failed,
    Retry,
}

/// The outcome of one message, for its log line.
#[derive(Debug, Clone, Serialize)]
pub struct MessageOutcome {
    pub message_id: String,
    pub item: String,
    pub outcome: Outcome,
    pub decision: Decision,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchReport {
    pub outcomes: Vec<MessageOutcome>,
    pub acked: u32,
    pub retried: u32,
    pub failed: u32,
    pub skipped: u32,
    pub completed: u32,
    pub reused: u32,
    pub superseded: u32,
    pub ai_calls: u32,
    pub fallbacks: u32,
    pub neurons: f64,
    /// Prompt and completion tokens the AI calls reported.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub github_requests: u32,
}

/// Who a batch's invocation is, for its row in the `invocations` ledger.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub id: &'a str,
    pub started_at: i64,
    /// Where the shell writes the invocation's R2 log.
    pub log_key: &'a str,
}

/// Subrequests an invocation still makes once its report is final: the
/// R2 log the shell writes.
pub const AFTER_REPORT: u32 = 1;

/// Process one batch of processing-queue messages: the driver.
pub async fn process_batch<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    auth: &GithubAuth,
    inv: Invocation<'_>,
    deliveries: Vec<Delivery>,
    log: &mut LogBook,
) -> Result<BatchReport, PlatformError> {
    let invocation = inv.id;
    let now = p.now_ms();
    let mut report = BatchReport::default();
    let inbound = parse(deliveries);
    let query = read_state(&inbound, now);
    let rows = p.db(&query.statements).await?;
    let stored = decode_state(&query, &rows).map_err(|e| PlatformError::Db(e.to_string()))?;
    let verdicts = plan(&inbound, &stored, now);

    let mut enriched = enrich_stage(p, cfg, auth, invocation, &verdicts, &mut report, log)
        .await?
        .into_iter();
    let mut ai = AiState::default();
    let mut settled: Vec<Settled> = Vec::with_capacity(verdicts.len());
    for (verdict, &attempts) in verdicts.into_iter().zip(&stored.attempts) {
        let item = match verdict {
            Verdict::Settled(s) => s,
            Verdict::Work(work) => {
                let e = enriched.next().unwrap_or_else(no_answer);
                let next = triage(work, e, attempts, &cfg.ai, now);
                let mut run = AiRun {
                    binding: &mut *binding,
                    cfg,
                    invocation,
                    attempts,
                    ai: &mut ai,
                };
                settle_next(p, &mut run, next, now, &mut report, log).await?
            }
        };
        settled.push(item);
    }

    let mut commit = commit(&mut settled);
    commit
        .statements
        .extend(ai.ledger_writes(invocation, p.now_ms()));
    // The ledger row rides in the commit: counted as if every guarded
    // write lands, corrected below in the rare batch where one did not.
    let expected = tally(&report, &settled);
    let written = write_commit(p, &mut commit.statements, inv, &expected, log).await?;
    settle(
        &mut report,
        inbound,
        &stored.attempts,
        settled,
        &commit,
        &written,
        now,
        log,
    );
    correct_ledger(p, inv, &report, &expected, log).await;
    let hold = cfg.pacing.github_hold_ms(report.github_requests);
    let spent = (p.now_ms() - now).max(0) as u64;
    if hold > spent {
        p.sleep(hold - spent).await;
    }
    Ok(report)
}

/// The Enrich query for the batch's work, when there is any.
async fn enrich_stage<P: Platform>(
    p: &mut Metered<'_, P>,
    cfg: &ProcessConfig,
    auth: &GithubAuth,
    invocation: &str,
    verdicts: &[Verdict],
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Vec<Enriched>, PlatformError> {
    let targets = enrich_targets(verdicts);
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let req = enrich_request(cfg, auth, invocation, &targets);
    enrich(p, &req, &targets, report, log).await
}

/// What one item's AI call needs beside the platform.
struct AiRun<'a, B> {
    binding: &'a mut B,
    cfg: &'a ProcessConfig,
    invocation: &'a str,
    attempts: i64,
    ai: &'a mut AiState,
}

/// An item after triage: settled already, or summarised / analysed now.
async fn settle_next<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    run: &mut AiRun<'_, B>,
    next: Next,
    now: i64,
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Settled, PlatformError> {
    let attempts = run.attempts;
    Ok(match next {
        Next::Settle(s) => s,
        Next::Summarise(task) => {
            let answer = run.call(p, &task.ctx, report, log).await?;
            summarised(task, answer, attempts, now)
        }
        Next::Analyse(task) => {
            let answer = run.call(p, &task.input(), report, log).await?;
            analysed(task, answer, attempts, now)
        }
    })
}

impl<B: AiBinding> AiRun<'_, B> {
    async fn call<P: Platform, A: analyse::Analysis>(
        &mut self,
        p: &mut Metered<'_, P>,
        input: &A,
        report: &mut BatchReport,
        log: &mut LogBook,
    ) -> Result<analyse::Answer<A::Output>, PlatformError> {
        analyse::analyse(
            p,
            self.binding,
            self.cfg,
            self.invocation,
            input,
            self.attempts,
            self.ai,
            report,
            log,
        )
        .await
    }
}

// ---------------------------------------------------------------- parse

/// One delivered message, parsed: the item it names, or why it is invalid.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub delivery: Delivery,
    /// `owner/name` or `owner/name#number`; `invalid` / `continuation`.
    pub key: String,
    pub item: Result<QueueMessage, String>,
}

const WRONG_QUEUE: &str = "continue_scraping belongs on the scraper's own queue (contribot-scrape), not the processing queue";

/// Validate every body.
pub fn parse(deliveries: Vec<Delivery>) -> Vec<Inbound> {
    deliveries
        .into_iter()
        .map(|delivery| {
            let (key, item) = match QueueMessage::parse(&delivery.body) {
                Ok(m @ (QueueMessage::Repo { .. } | QueueMessage::Issue { .. })) => {
                    (m.item_key(), Ok(m))
                }
                Ok(QueueMessage::ContinueScraping { .. }) => {
                    ("continuation".to_string(), Err(WRONG_QUEUE.to_string()))
                }
                Err(e) => ("invalid".to_string(), Err(e.reason())),
            };
            Inbound {
                delivery,
                key,
                item,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- read state

/// The one D1 batch that counts deliveries and reads stored rows: three
/// statements whatever the batch's size (the deliveries, the repos, the
/// issues), each result crossing into wasm as one string.
#[derive(Debug, Clone)]
pub struct StateQuery {
    pub statements: Vec<Statement>,
    /// The batch's message ids, in order.
    message_ids: Vec<String>,
}

/// Count every delivery; read the repos and issues the messages name.
pub fn read_state(inbound: &[Inbound], now: i64) -> StateQuery {
    let message_ids: Vec<String> = inbound
        .iter()
        .map(|m| m.delivery.message_id.clone())
        .collect();
    let ids: Vec<&str> = message_ids.iter().map(String::as_str).collect();
    let mut slugs = BTreeSet::new();
    let mut issue_keys = BTreeSet::new();
    for m in inbound {
        match &m.item {
            Ok(QueueMessage::Repo { owner, name, .. }) => {
                slugs.insert(format!("{owner}/{name}"));
            }
            Ok(QueueMessage::Issue { owner, name, .. }) => {
                slugs.insert(format!("{owner}/{name}"));
                issue_keys.insert(m.key.clone());
            }
            _ => {}
        }
    }
    let slugs: Vec<String> = slugs.into_iter().collect();
    let issue_keys: Vec<String> = issue_keys.into_iter().collect();
    StateQuery {
        statements: vec![
            store::count_deliveries(QUEUE, &ids, now),
            store::repos_by_slug(&slugs),
            store::issues_by_key(&issue_keys),
        ],
        message_ids,
    }
}

/// What D1 holds for a batch.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Delivery count per message, in batch order (1 on first sight).
    pub attempts: Vec<i64>,
    pub repos: BTreeMap<String, ProcRepoRow>,
    pub issues: BTreeMap<String, ProcIssueRow>,
}

/// Decode the rows of a [`StateQuery`].
pub fn decode_state(q: &StateQuery, rows: &[Vec<Value>]) -> Result<Stored, RowError> {
    let part = |i: usize| rows.get(i).map(Vec::as_slice).unwrap_or(&[]);
    let counted: BTreeMap<String, i64> = decode_rows::<store::DeliveryRow>(part(0))?
        .into_iter()
        .map(|d| (d.message_id, d.attempts))
        .collect();
    let attempts = q
        .message_ids
        .iter()
        .map(|id| counted.get(id).copied().unwrap_or(1))
        .collect();
    let repos = decode_packed::<ProcRepoRow>(part(1))?
        .into_iter()
        .map(|row| (format!("{}/{}", row.owner, row.name), row))
        .collect();
    let issues = decode_packed::<ProcIssueRow>(part(2))?
        .into_iter()
        .map(|row| (format!("{}/{}#{}", row.owner, row.name, row.number), row))
        .collect();
    Ok(Stored {
        attempts,
        repos,
        issues,
    })
}

// ---------------------------------------------------------------- plan

/// A D1 write a message's outcome depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub statement: Statement,
    /// Guarded on the content hash (it returns the row when it lands): a
    /// write that does not land means the scraper stored newer content.
    pub guarded: bool,
}

/// How a message ends, and the write that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub outcome: Outcome,
    pub decision: Decision,
    pub reason: Option<String>,
    pub write: Option<Write>,
}

impl Settled {
    fn ack(outcome: Outcome) -> Self {
        Settled {
            outcome,
            decision: Decision::Ack,
            reason: None,
            write: None,
        }
    }

    fn with(mut self, statement: Statement, guarded: bool) -> Self {
        self.write = Some(Write { statement, guarded });
        self
    }

    fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// An item that needs enriching (and, most likely, AI). At most ten per
/// batch: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Repo(ProcRepoRow),
    Issue {
        row: ProcIssueRow,
        repo: Option<ProcRepoRow>,
    },
}

impl Work {
    pub fn target(&self) -> EnrichTarget {
        match self {
            Work::Repo(row) => EnrichTarget::Repo {
                owner: row.owner.clone(),
                name: row.name.clone(),
            },
            Work::Issue { row, .. } => EnrichTarget::Issue {
                owner: row.owner.clone(),
                name: row.name.clone(),
                number: row.number,
            },
        }
    }

    fn table_id(&self) -> (ItemTable, i64) {
        match self {
            Work::Repo(row) => (ItemTable::Repos, row.id),
            Work::Issue { row, .. } => (ItemTable::Issues, row.id),
        }
    }

    fn content_hash(&self) -> Option<&str> {
        match self {
            Work::Repo(row) => row.content_hash.as_deref(),
            Work::Issue { row, .. } => Some(&row.content_hash),
        }
    }
}

/// Per message: settled now, or work.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Settled(Settled),
    Work(Work),
}

/// Decide per message from what D1 holds. Pure.
pub fn plan(inbound: &[Inbound], stored: &Stored, now: i64) -> Vec<Verdict> {
    let mut seen = BTreeSet::new();
    inbound
        .iter()
        .zip(&stored.attempts)
        .map(|(m, &attempts)| {
            let dead_letter = |reason: &str| {
                store::record_dead_letter(
                    QUEUE,
                    &m.delivery.message_id,
                    &m.delivery.body.to_string(),
                    reason,
                    attempts,
                    now,
                )
            };
            let msg = match &m.item {
                Err(reason) => {
                    return Verdict::Settled(
                        Settled::ack(Outcome::Invalid)
                            .with(dead_letter(reason), false)
                            .because(reason.as_str()),
                    )
                }
                Ok(msg) => msg,
            };
            if !seen.insert(m.key.as_str()) {
                return Verdict::Settled(Settled::ack(Outcome::DuplicateInBatch));
            }
            let found = match msg {
                QueueMessage::Issue { owner, name, .. } => plan_issue(
                    stored.issues.get(&m.key),
                    &stored.repos,
                    owner,
                    name,
                    attempts,
                    now,
                ),
                _ => plan_repo(stored.repos.get(&m.key)),
            };
            found.unwrap_or_else(|| {
                let reason = format!("{} {} is not in D1", msg.kind(), m.key);
                Verdict::Settled(
                    Settled::ack(Outcome::Failed)
                        .with(dead_letter(&reason), false)
                        .because(reason),
                )
            })
        })
        .collect()
}

fn plan_repo(row: Option<&ProcRepoRow>) -> Option<Verdict> {
    let row = row?;
    let analysed = row.content_hash.is_some()
        && row.analysis_hash == row.content_hash
        && row.prompt_version.as_deref() == Some(ai::PROMPT_VERSION)
        && row.processing_status == "completed";
    Some(if analysed {
        Verdict::Settled(Settled::ack(Outcome::SkippedUnchanged))
    } else {
        Verdict::Work(Work::Repo(row.clone()))
    })
}

fn plan_issue(
    row: Option<&ProcIssueRow>,
    repos: &BTreeMap<String, ProcRepoRow>,
    owner: &str,
    name: &str,
    attempts: i64,
    now: i64,
) -> Option<Verdict> {
    let row = row?;
    let analysed = row.analysis_hash.as_deref() == Some(row.content_hash.as_str())
        && row.prompt_version.as_deref() == Some(ai::PROMPT_VERSION)
        && row.processing_status == "completed";
    Some(if analysed {
        Verdict::Settled(Settled::ack(Outcome::SkippedUnchanged))
    } else if row.state == "closed" {
        Verdict::Settled(
            Settled::ack(Outcome::Closed)
                .with(store::close_issue_processed(row.id, attempts, now), false),
        )
    } else {
        Verdict::Work(Work::Issue {
            row: row.clone(),
            repo: repos.get(&format!("{owner}/{name}")).cloned(),
        })
    })
}

// ---------------------------------------------------------------- enrich

/// The enrich targets, in the order the work appears in the batch.
pub fn enrich_targets(verdicts: &[Verdict]) -> Vec<EnrichTarget> {
    verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Work(w) => Some(w.target()),
            Verdict::Settled(_) => None,
        })
        .collect()
}

/// The one GraphQL request that enriches the batch.
pub fn enrich_request(
    cfg: &ProcessConfig,
    auth: &GithubAuth,
    invocation: &str,
    targets: &[EnrichTarget],
) -> HttpRequest {
    let body = github::enrich_request_body(targets);
    github::graphql_request(&cfg.api_base, auth, invocation, &body)
}

/// Whether to retry a failed enrichment in place, and after how many
/// seconds: only a transient failure with a short wait, a few times, and
/// only while the budget still covers the rest of the batch.
pub fn inline_retry(f: &Failure, attempt: u32, now_secs: u64, affordable: bool) -> Option<u64> {
    let wait = f.delay_secs(now_secs, attempt);
    (matches!(f, Failure::Transient { .. })
        && attempt <= ENRICH_INLINE_RETRIES
        && wait <= MAX_INLINE_WAIT_SECS
        && affordable)
        .then_some(wait.max(1))
}

/// Fetch the enrichment: one request, retried in place per [`inline_retry`].
/// A failure of the whole query becomes every item's failure.
async fn enrich<P: Platform>(
    p: &mut Metered<'_, P>,
    req: &HttpRequest,
    targets: &[EnrichTarget],
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Vec<Enriched>, PlatformError> {
    // What must stay affordable after a retry: every item's AI calls (one
    // retry each) and the closing writes.
    let after = 2 * targets.len() as u32 + CLOSING_RESERVE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        report.github_requests += 1;
        let failure = match p.fetch(req).await {
            Ok(resp) => match github::decode_enrich(&resp, targets) {
                Ok(list) => return Ok(list),
                Err(f) => f,
            },
            Err(PlatformError::Network(m)) => classify_network(&m),
            Err(e) => return Err(e),
        };
        let now_secs = (p.now_ms() / 1000) as u64;
        let retry = inline_retry(&failure, attempt, now_secs, p.budget.can_afford(1 + after));
        log.push(
            p.now_ms(),
            Level::Warn,
            "enrich_failed",
            fields([
                ("items", json!(targets.len())),
                ("attempt", json!(attempt)),
                ("failure", json!(failure)),
                ("retry_in_secs", json!(retry)),
            ]),
        );
        match retry {
            Some(wait) => p.sleep(wait * 1000).await,
            None => {
                return Ok(targets
                    .iter()
                    .map(|_| Enriched::Failed(failure.clone()))
                    .collect())
            }
        }
    }
}

fn no_answer() -> Enriched {
    Enriched::Failed(Failure::transient("no enrichment answer for this item"))
}

// ---------------------------------------------------------------- triage

/// A repo to summarise.
#[derive(Debug, Clone)]
pub struct SummaryTask {
    pub row: ProcRepoRow,
    pub enrichment: RepoEnrichment,
    pub ctx: RepoContext,
}

/// An issue to analyse.
#[derive(Debug, Clone)]
pub struct IssueTask {
    pub row: ProcIssueRow,
    pub ctx: RepoContext,
    pub meta: IssueMeta,
    /// [`hash::analysed_text_hash`] of the fetched title and body.
    pub text_hash: String,
}

impl IssueTask {
    pub fn input(&self) -> IssueInput<'_> {
        IssueInput {
            repo: &self.ctx,
            number: self.row.number,
            title: &self.meta.title,
            labels: &self.meta.labels,
            body: &self.meta.body,
            comment_count: self.meta.comment_count,
            assignee_count: self.meta.assignee_count,
        }
    }
}

/// What an item's enrichment leads to.
#[derive(Debug, Clone)]
pub enum Next {
    Settle(Settled),
    Summarise(Box<SummaryTask>),
    Analyse(Box<IssueTask>),
}

/// Decide what an item's enrichment means. Pure.
pub fn triage(work: Work, enriched: Enriched, attempts: i64, mode: &AiMode, now: i64) -> Next {
    let (table, id) = work.table_id();
    let fail = |reason: String| {
        Settled::ack(Outcome::Failed)
            .with(
                store::fail_item(table, id, work.content_hash(), &reason, attempts, now),
                false,
            )
            .because(reason)
    };
    match (enriched, work.clone()) {
        (Enriched::Gone { message }, _) => Next::Settle(fail(format!("gone upstream: {message}"))),
        (Enriched::Failed(f), _) if !f.is_retryable() => Next::Settle(fail(f.reason().to_string())),
        (Enriched::Failed(f), _) if attempts >= MAX_DELIVERIES => Next::Settle(fail(format!(
            "gave up after {attempts} deliveries: {}",
            f.reason()
        ))),
        (Enriched::Failed(f), _) => {
            let delay = queue_delay_secs(&f, attempts, (now / 1000) as u64);
            Next::Settle(Settled {
                outcome: Outcome::Retry,
                decision: Decision::Retry { delay_secs: delay },
                reason: Some(f.reason().to_string()),
                write: Some(Write {
                    statement: store::note_item_retry(table, id, f.reason(), attempts),
                    guarded: false,
                }),
            })
        }
        (Enriched::Repo(e), Work::Repo(row)) => Next::Summarise(Box::new(SummaryTask {
            ctx: summary_context(&row, &e),
            row,
            enrichment: *e,
        })),
        (Enriched::Issue(e), Work::Issue { row, repo }) => {
            triage_issue(row, repo, e.meta, attempts, mode, now)
        }
        (_, _) => Next::Settle(fail(
            "enrichment answered for the wrong kind of item".into(),
        )),
    }
}

fn triage_issue(
    row: ProcIssueRow,
    repo: Option<ProcRepoRow>,
    meta: IssueMeta,
    attempts: i64,
    mode: &AiMode,
    now: i64,
) -> Next {
    if meta.state == "closed" {
        return Next::Settle(
            Settled::ack(Outcome::Closed)
                .with(store::close_issue_processed(row.id, attempts, now), false),
        );
    }
    let text_hash = hash::analysed_text_hash(&meta.title, &meta.body).0;
    if analysis_still_stands(&row, &text_hash, mode) {
        let write =
            store::keep_issue_analysis(row.id, &row.content_hash, &meta.body, attempts, now);
        return Next::Settle(Settled::ack(Outcome::Reused).with(write, true));
    }
    Next::Analyse(Box::new(IssueTask {
        ctx: issue_context(&row, repo.as_ref()),
        row,
        meta,
        text_hash,
    }))
}

/// The stored analysis was made from exactly this text with this prompt,
/// and is not a fallback that AI should now replace.
pub fn analysis_still_stands(row: &ProcIssueRow, text_hash: &str, mode: &AiMode) -> bool {
    row.body_hash.as_deref() == Some(text_hash)
        && row.prompt_version.as_deref() == Some(ai::PROMPT_VERSION)
        && row.analysis_model.is_some()
        && (row.fallback_reason.is_none() || *mode == AiMode::Heuristic)
}

/// How long a message waits in the queue before its next delivery:
/// exponential in its deliveries, never less than upstream asked for.
pub fn queue_delay_secs(f: &Failure, attempts: i64, now_secs: u64) -> u64 {
    let n = attempts.clamp(1, 10) as u32;
    let backoff = QUEUE_BACKOFF_BASE_SECS << (n - 1);
    f.delay_secs(now_secs, n)
        .max(backoff)
        .min(crate::failure::MAX_DELAY_SECS)
}

fn summary_context(row: &ProcRepoRow, e: &RepoEnrichment) -> RepoContext {
    RepoContext {
        owner: row.owner.clone(),
        name: row.name.clone(),
        description: e.description.clone().or(row.description.clone()),
        primary_language: e.primary_language.clone(),
        languages: e.languages.iter().map(|(l, _)| l.clone()).collect(),
        topics: e.topics.clone(),
        listed_labels: serde_json::from_str(&row.listed_labels).unwrap_or_default(),
    }
}

fn issue_context(issue: &ProcIssueRow, repo: Option<&ProcRepoRow>) -> RepoContext {
    let parse = |s: Option<&String>| -> Vec<String> {
        s.and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    };
    RepoContext {
        owner: issue.owner.clone(),
        name: issue.name.clone(),
        description: repo.and_then(|r| r.description.clone()),
        primary_language: repo.and_then(|r| r.primary_language.clone()),
        languages: parse(repo.and_then(|r| r.languages.as_ref())),
        topics: parse(repo.and_then(|r| r.topics.as_ref())),
        listed_labels: repo
            .map(|r| serde_json::from_str(&r.listed_labels).unwrap_or_default())
            .unwrap_or_default(),
    }
}

// ---------------------------------------------------------------- analysed

fn provenance(
    model: String,
    input_hash: String,
    fallback_reason: Option<String>,
    now: i64,
) -> Provenance {
    Provenance {
        model,
        prompt_version: ai::PROMPT_VERSION.to_string(),
        input_hash,
        analyzed_at: now,
        fallback_reason,
    }
}

fn later(table: ItemTable, id: i64, delay_secs: u64, reason: String, attempts: i64) -> Settled {
    Settled {
        outcome: Outcome::Retry,
        decision: Decision::Retry { delay_secs },
        write: Some(Write {
            statement: store::note_item_retry(table, id, &reason, attempts),
            guarded: false,
        }),
        reason: Some(reason),
    }
}

/// A repo's summary answer, as the write that commits it. Pure.
pub fn summarised(
    task: Box<SummaryTask>,
    answer: Answer<String>,
    attempts: i64,
    now: i64,
) -> Settled {
    let SummaryTask {
        row,
        enrichment: e,
        ctx,
    } = *task;
    let (summary, model, fallback_reason) = match answer {
        Answer::Later { delay_secs, reason } => {
            return later(ItemTable::Repos, row.id, delay_secs, reason, attempts)
        }
        Answer::Done {
            output,
            model,
            fallback_reason,
        } => (output, model, fallback_reason),
    };
    let raw: serde_json::Map<String, Value> = e
        .languages
        .iter()
        .map(|(l, b)| (l.clone(), json!(b)))
        .collect();
    let result = store::RepoResult {
        id: row.id,
        description: e.description,
        languages_json: json!(ctx.languages).to_string(),
        languages_raw_json: Value::Object(raw).to_string(),
        topics_json: json!(e.topics).to_string(),
        summary,
        provenance: provenance(
            model,
            row.content_hash.unwrap_or_default(),
            fallback_reason,
            now,
        ),
        attempts,
    };
    Settled::ack(Outcome::Completed).with(store::complete_repo(&result, now), true)
}

/// An issue's analysis answer, as the write that commits it. Pure.
pub fn analysed(
    task: Box<IssueTask>,
    answer: Answer<ai::IssueAnalysis>,
    attempts: i64,
    now: i64,
) -> Settled {
    let IssueTask {
        row,
        meta,
        text_hash,
        ..
    } = *task;
    let (analysis, model, fallback_reason) = match answer {
        Answer::Later { delay_secs, reason } => {
            return later(ItemTable::Issues, row.id, delay_secs, reason, attempts)
        }
        Answer::Done {
            output,
            model,
            fallback_reason,
        } => (output, model, fallback_reason),
    };
    let result = store::IssueResult {
        id: row.id,
        body: meta.body,
        body_hash: text_hash,
        intro: analysis.intro,
        difficulty: i64::from(analysis.difficulty),
        first_steps_json: json!(analysis.first_steps).to_string(),
        skills_json: json!(analysis.skills).to_string(),
        provenance: provenance(model, row.content_hash, fallback_reason, now),
        attempts,
    };
    Settled::ack(Outcome::Completed).with(store::complete_issue(&result, now), true)
}

// ---------------------------------------------------------------- commit

/// The batch's one D1 write.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub statements: Vec<Statement>,
    /// Per message: the index of its guarded statement, if it has one.
    guarded: Vec<Option<usize>>,
}

/// Gather every message's write into one batch.
pub fn commit(settled: &mut [Settled]) -> Commit {
    let mut c = Commit::default();
    for s in settled.iter_mut() {
        let mut guarded = None;
        if let Some(w) = s.write.take() {
            if w.guarded {
                guarded = Some(c.statements.len());
            }
            c.statements.push(w.statement);
        }
        c.guarded.push(guarded);
    }
    c
}

/// Run the commit, its last statement the ledger row of `expected`, once
/// more in place after a D1 error: the batch is one transaction (a failed
/// one wrote nothing) and every write in it is idempotent, so a blip does
/// not cost the batch's AI calls again. Each try's row counts that try.
async fn write_commit<P: Platform>(
    p: &mut Metered<'_, P>,
    statements: &mut Vec<Statement>,
    inv: Invocation<'_>,
    expected: &BatchReport,
    log: &mut LogBook,
) -> Result<Vec<Vec<Value>>, PlatformError> {
    let ledger = |p: &Metered<'_, P>| {
        store::record_invocation(&ledger_record(
            inv,
            expected,
            p.budget.used() + 1 + AFTER_REPORT,
            p,
        ))
    };
    statements.push(ledger(p));
    match p.db(statements).await {
        Err(PlatformError::Db(e)) if p.budget.can_afford(1 + CLOSING_RESERVE) => {
            log.push(
                p.now_ms(),
                Level::Warn,
                "commit_retry",
                fields([("error", json!(e))]),
            );
            p.sleep(500).await;
            if let Some(last) = statements.last_mut() {
                *last = ledger(p);
            }
            p.db(statements).await
        }
        other => other,
    }
}

// ---------------------------------------------------------------- ledger

/// The counts the batch will report if every write in its commit lands.
pub fn tally(report: &BatchReport, settled: &[Settled]) -> BatchReport {
    let mut expected = report.clone();
    settled.iter().for_each(|s| count(&mut expected, s));
    expected
}

/// The invocation's ledger row from `report`, which will have made
/// `subrequests` subrequests in all.
pub fn ledger_record<P: Platform>(
    inv: Invocation<'_>,
    report: &BatchReport,
    subrequests: u32,
    p: &Metered<'_, P>,
) -> InvocationRecord {
    InvocationRecord {
        id: inv.id.to_string(),
        service: "processor",
        run_id: None,
        started_at: inv.started_at,
        finished_at: p.now_ms(),
        subrequests,
        budget: p.budget.limit(),
        outcome: format!("{} acked, {} retried", report.acked, report.retried),
        summary_json: summary_json(report, subrequests).to_string(),
        log_key: Some(inv.log_key.to_string()),
    }
}

/// Rewrite the ledger row when the final report differs from the one the
/// commit wrote (`expected`: a guarded write was superseded). Both count
/// the same subrequests, the commit's retry included. A failed rewrite
/// leaves the commit's row, and says so in the log.
async fn correct_ledger<P: Platform>(
    p: &mut Metered<'_, P>,
    inv: Invocation<'_>,
    report: &BatchReport,
    expected: &BatchReport,
    log: &mut LogBook,
) {
    let total = p.budget.used() + AFTER_REPORT;
    if summary_json(report, total) == summary_json(expected, total) {
        return;
    }
    let fixed = ledger_record(inv, report, total + 1, p);
    if let Err(e) = p.db(&[store::record_invocation(&fixed)]).await {
        log.push(
            p.now_ms(),
            Level::Warn,
            "ledger_write_failed",
            fields([("error", json!(e.to_string()))]),
        );
    }
}

// ---------------------------------------------------------------- settle

/// Each message's final outcome (a guarded write that did not land means
/// it was superseded), the report's counts and one log line per message.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    report: &mut BatchReport,
    inbound: Vec<Inbound>,
    attempts: &[i64],
    settled: Vec<Settled>,
    commit: &Commit,
    written: &[Vec<Value>],
    now: i64,
    log: &mut LogBook,
) {
    for (i, (m, mut s)) in inbound.into_iter().zip(settled).enumerate() {
        let landed = commit
            .guarded
            .get(i)
            .copied()
            .flatten()
            .map(|idx| written.get(idx).is_some_and(|rows| !rows.is_empty()));
        if landed == Some(false) {
            s.outcome = Outcome::Superseded;
            s.reason =
                Some("the scraper stored newer content meanwhile; it is queued on its own".into());
        }
        count(report, &s);
        let attempts = attempts.get(i).copied().unwrap_or(1);
        log.push(
            now,
            if s.reason.is_some() {
                Level::Warn
            } else {
                Level::Info
            },
            "message",
            fields([
                ("message_id", json!(m.delivery.message_id)),
                ("item", json!(m.key)),
                ("outcome", json!(s.outcome)),
                ("decision", json!(s.decision)),
                ("attempts", json!(attempts)),
                ("reason", json!(s.reason)),
            ]),
        );
        report.outcomes.push(MessageOutcome {
            message_id: m.delivery.message_id,
            item: m.key,
            outcome: s.outcome,
            decision: s.decision,
            attempts,
            reason: s.reason,
        });
    }
}

fn count(report: &mut BatchReport, s: &Settled) {
    if let Decision::Retry { .. } = s.decision {
        report.retried += 1;
        return;
    }
    report.acked += 1;
    match s.outcome {
        Outcome::Failed | Outcome::Invalid => report.failed += 1,
        Outcome::SkippedUnchanged | Outcome::DuplicateInBatch => report.skipped += 1,
        Outcome::Superseded => report.superseded += 1,
        Outcome::Reused => {
            report.reused += 1;
            report.completed += 1;
        }
        Outcome::Completed | Outcome::Closed | Outcome::Retry => report.completed += 1,
    }
}

// ---------------------------------------------------------------- summary, DLQ

/// The summary line of a processor invocation.
pub fn summary_json(r: &BatchReport, subrequests: u32) -> Value {
    json!({
        // Every message is either acked or retried, also before settling.
        "messages": r.acked + r.retried,
        "acked": r.acked,
        "retried": r.retried,
        "failed": r.failed,
        "skipped": r.skipped,
        "completed": r.completed,
        "reused": r.reused,
        "superseded": r.superseded,
        "ai_calls": r.ai_calls,
        "fallbacks": r.fallbacks,
        "neurons": r.neurons,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "github_requests": r.github_requests,
        "subrequests_used": subrequests,
    })
}

/// The dead-letter consumer tries its D1 write this many times in place
/// before it sends the message back to its queue (never acking it).
pub const DLQ_WRITE_ATTEMPTS: u32 = 3;
/// Delay before a dead letter whose record could not be written comes back.
pub const DLQ_RETRY_DELAY_SECS: u32 = 60;

/// The pause before in-place try `attempt + 1` of a dead letter's write:
/// 250 ms, then 500 ms.
pub fn dlq_write_pause_ms(attempt: u32) -> u64 {
    250u64 << attempt.saturating_sub(1).min(4)
}

/// Statements for a dead-lettered processing message: its item ends
/// `failed` with its last error, or the body is recorded when it names none.
pub fn dead_letter_statements(message_id: &str, body: &Value, now_ms: i64) -> Vec<Statement> {
    match QueueMessage::parse(body) {
        Ok(QueueMessage::Repo { owner, name, .. }) => {
            vec![store::dead_letter_repo(&owner, &name, now_ms)]
        }
        Ok(QueueMessage::Issue {
            owner,
            name,
            number,
            ..
        }) => vec![store::dead_letter_issue(&owner, &name, number, now_ms)],
        Ok(other) => vec![store::record_dead_letter(
            "processing-dlq",
            message_id,
            &body.to_string(),
            &format!("`{}` message dead-lettered", other.kind()),
            0,
            now_ms,
        )],
        Err(e) => vec![store::record_dead_letter(
            "processing-dlq",
            message_id,
            &body.to_string(),
            &e.reason(),
            0,
            now_ms,
        )],
    }
}

/// Whether a failure is worth a queue retry (used by the shell on errors
/// that escaped the workflow, e.g. a D1 outage).
pub fn retry_delay_for(f: &Failure, attempts: u32, now_secs: u64) -> u64 {
    f.delay_secs(now_secs, attempts)
}
