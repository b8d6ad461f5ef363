//! The processing workflow: one queue batch of repos and issues in, analysed
//! rows in D1 and an ack/retry decision per message out.
//!
//! Per batch: one D1 read (attempts, stored state), one GraphQL enrich query
//! for everything that needs work (languages, topics, bodies), the AI calls,
//! one D1 write, then the shell's R2 log. Invariants:
//! - a message is acked only after its effect is committed to D1;
//! - an item whose stored analysis came from the same content hash and prompt
//!   version is skipped: no AI call, no write (duplicate deliveries are free);
//! - one bad message never retries or drops the others;
//! - AI output is validated strictly; an invalid answer gets one retry, then
//!   the labelled heuristic fallback; a spent daily quota stops AI calls for
//!   the rest of the invocation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::ai::{self, AiFailure, IssueAnalysis, IssueInput, RepoContext};
use crate::budget::Subrequest;
use crate::failure::{classify_network, Failure};
use crate::github::{self, EnrichTarget, Enriched, GithubAuth};
use crate::logrec::{fields, Level, LogBook};
use crate::messages::QueueMessage;
use crate::platform::{Metered, Platform, PlatformError};
use crate::sql::{decode_rows, Statement};
use crate::store::{self, ItemTable, ProcIssueRow, ProcRepoRow, Provenance};

/// Kept back for the closing D1 write and the R2 log.
pub const CLOSING_RESERVE: u32 = 2;
/// A transient enrich failure (5xx, 429, a secondary limit, a cut-off body)
/// is retried in place up to this many times, when its wait is short and
/// the budget still covers the items' AI calls; past that, the queue retries
/// the messages. Without it one blip per delivery would dead-letter a batch.
pub const ENRICH_INLINE_RETRIES: u32 = 2;
/// The longest wait an in-place retry may take.
pub const MAX_INLINE_WAIT_SECS: u64 = 10;

/// Which AI backend analyses.
#[derive(Clone, PartialEq, Eq)]
pub enum AiMode {
    /// The Workers AI binding (production).
    Binding { model: String },
    /// The Cloudflare REST API, for local runs with a user's own account.
    Rest {
        api_base: String,
        account_id: String,
        token: String,
        model: String,
    },
    /// The deterministic heuristic (offline default).
    Heuristic,
}

impl std::fmt::Debug for AiMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AiMode::Binding { model } => write!(f, "Binding({model})"),
            AiMode::Rest { model, .. } => write!(f, "Rest({model})"),
            AiMode::Heuristic => f.write_str("Heuristic"),
        }
    }
}

impl AiMode {
    /// From config: `AI_BACKEND` = binding | rest | heuristic.
    pub fn from_config(
        backend: &str,
        model: Option<String>,
        rest_base: Option<String>,
        account: Option<String>,
        token: Option<String>,
    ) -> Result<AiMode, String> {
        let model = model.unwrap_or_else(|| ai::DEFAULT_MODEL.to_string());
        match backend.trim().to_ascii_lowercase().as_str() {
            "binding" | "" => Ok(AiMode::Binding { model }),
            "heuristic" | "offline" => Ok(AiMode::Heuristic),
            "rest" => match (account, token) {
                (Some(account_id), Some(token)) => Ok(AiMode::Rest {
                    api_base: rest_base.unwrap_or_else(|| "https://api.cloudflare.com".into()),
                    account_id,
                    token,
                    model,
                }),
                _ => Err("AI_BACKEND=rest needs CF_ACCOUNT_ID and the CF_API_TOKEN secret".into()),
            },
            other => Err(format!(
                "unknown AI_BACKEND `{other}` (binding, rest or heuristic)"
            )),
        }
    }

    fn model(&self) -> &str {
        match self {
            AiMode::Binding { model } | AiMode::Rest { model, .. } => model,
            AiMode::Heuristic => ai::HEURISTIC_MODEL,
        }
    }
}

/// The Workers AI binding, as the shell provides it.
#[allow(async_fn_in_trait)]
pub trait AiBinding {
    /// `env.AI.run(model, input)`: the result object, or the error's text.
    async fn run(&mut self, model: &str, input: &Value) -> Result<Value, String>;
}

/// A binding that is not there (REST and heuristic modes).
pub struct NoBinding;

impl AiBinding for NoBinding {
    async fn run(&mut self, _model: &str, _input: &Value) -> Result<Value, String> {
        Err("no AI binding".into())
    }
}

/// Processor settings.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub api_base: String,
    pub ai: AiMode,
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

/// The outcome of one message, for its log line.
#[derive(Debug, Clone, Serialize)]
pub struct MessageOutcome {
    pub message_id: String,
    pub item: String,
    pub outcome: String,
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
    pub ai_calls: u32,
    pub fallbacks: u32,
    pub neurons: f64,
    pub github_requests: u32,
}

enum Item {
    Repo {
        row: ProcRepoRow,
    },
    Issue {
        row: ProcIssueRow,
        repo: Option<ProcRepoRow>,
    },
}

struct Pending {
    delivery: Delivery,
    key: String,
    attempts: i64,
    /// Set when settled: outcome text, decision, reason.
    settled: Option<(String, Decision, Option<String>)>,
    item: Option<Item>,
}

impl Pending {
    fn settle(&mut self, outcome: &str, decision: Decision, reason: Option<String>) {
        if self.settled.is_none() {
            self.settled = Some((outcome.to_string(), decision, reason));
        }
    }
}

struct AiState {
    quota_exhausted: bool,
}

/// Process one batch of processing-queue messages.
pub async fn process_batch<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    auth: &GithubAuth,
    invocation: &str,
    deliveries: Vec<Delivery>,
    log: &mut LogBook,
) -> Result<BatchReport, PlatformError> {
    let now = p.now_ms();
    let mut report = BatchReport::default();
    let mut writes: Vec<Statement> = Vec::new();

    // 1. Validate every body; bad ones are recorded and acked.
    let mut pending: Vec<Pending> = Vec::new();
    let mut parsed: Vec<Option<QueueMessage>> = Vec::new();
    for d in deliveries {
        let msg = QueueMessage::parse(&d.body);
        let mut pd = Pending {
            key: String::new(),
            attempts: 1,
            settled: None,
            item: None,
            delivery: d,
        };
        match msg {
            Ok(m @ (QueueMessage::Repo { .. } | QueueMessage::Issue { .. })) => {
                pd.key = m.item_key();
                parsed.push(Some(m));
            }
            Ok(QueueMessage::ContinueScraping { .. }) => {
                let reason = "continue_scraping belongs on the scraper's own queue (contribot-scrape), not the processing queue";
                writes.push(store::record_dead_letter(
                    "processing",
                    &pd.delivery.message_id,
                    &pd.delivery.body.to_string(),
                    reason,
                    1,
                    now,
                ));
                pd.key = "continuation".into();
                pd.settle("invalid", Decision::Ack, Some(reason.into()));
                parsed.push(None);
            }
            Err(e) => {
                writes.push(store::record_dead_letter(
                    "processing",
                    &pd.delivery.message_id,
                    &pd.delivery.body.to_string(),
                    &e.reason(),
                    1,
                    now,
                ));
                pd.key = "invalid".into();
                pd.settle("invalid", Decision::Ack, Some(e.reason()));
                parsed.push(None);
            }
        }
        pending.push(pd);
    }

    // 2. One D1 read: attempts per message, stored state per item.
    let mut read: Vec<Statement> = Vec::new();
    for pd in &pending {
        read.push(store::count_delivery(
            "processing",
            &pd.delivery.message_id,
            now,
        ));
    }
    let mut slugs: Vec<String> = Vec::new();
    let mut issue_keys: Vec<String> = Vec::new();
    for m in parsed.iter().flatten() {
        match m {
            QueueMessage::Repo { owner, name, .. } => slugs.push(format!("{owner}/{name}")),
            QueueMessage::Issue {
                owner,
                name,
                number,
                ..
            } => {
                slugs.push(format!("{owner}/{name}"));
                issue_keys.push(format!("{owner}/{name}#{number}"));
            }
            QueueMessage::ContinueScraping { .. } => {}
        }
    }
    slugs.sort();
    slugs.dedup();
    issue_keys.sort();
    issue_keys.dedup();
    let repo_stmts = store::repos_by_slug(&slugs);
    let issue_stmts = store::issues_by_key(&issue_keys);
    let (n_repo, n_issue) = (repo_stmts.len(), issue_stmts.len());
    read.extend(repo_stmts);
    read.extend(issue_stmts);
    let rows = p.db(&read).await?;
    let db_err = |e: crate::sql::RowError| PlatformError::Db(e.to_string());
    for (i, pd) in pending.iter_mut().enumerate() {
        pd.attempts = rows
            .get(i)
            .and_then(|r| decode_rows::<store::AttemptsRow>(r).ok())
            .and_then(|v| v.first().map(|a| a.attempts))
            .unwrap_or(1);
    }
    let base = pending.len();
    let mut repos: BTreeMap<String, ProcRepoRow> = BTreeMap::new();
    for r in rows.iter().skip(base).take(n_repo) {
        for row in decode_rows::<ProcRepoRow>(r).map_err(db_err)? {
            repos.insert(format!("{}/{}", row.owner, row.name), row);
        }
    }
    let mut issues: BTreeMap<String, ProcIssueRow> = BTreeMap::new();
    for r in rows.iter().skip(base + n_repo).take(n_issue) {
        for row in decode_rows::<ProcIssueRow>(r).map_err(db_err)? {
            issues.insert(format!("{}/{}#{}", row.owner, row.name, row.number), row);
        }
    }

    // 3. Decide per message: unknown item, already analysed, or work.
    let mut seen_keys: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (pd, m)) in pending.iter_mut().zip(&parsed).enumerate() {
        let Some(m) = m else { continue };
        if let Some(&first) = seen_keys.get(&pd.key) {
            // The same item twice in one batch: the first one does the work.
            let _ = first;
            pd.settle("duplicate_in_batch", Decision::Ack, None);
            continue;
        }
        seen_keys.insert(pd.key.clone(), i);
        match m {
            QueueMessage::Repo { .. } => match repos.get(&pd.key) {
                None => {
                    let reason = format!("repo {} is not in D1", pd.key);
                    writes.push(store::record_dead_letter(
                        "processing",
                        &pd.delivery.message_id,
                        &pd.delivery.body.to_string(),
                        &reason,
                        pd.attempts,
                        now,
                    ));
                    pd.settle("failed", Decision::Ack, Some(reason));
                }
                Some(row)
                    if row.content_hash.is_some()
                        && row.analysis_hash == row.content_hash
                        && row.prompt_version.as_deref() == Some(ai::PROMPT_VERSION)
                        && row.processing_status == "completed" =>
                {
                    pd.settle("skipped_unchanged", Decision::Ack, None);
                }
                Some(row) => pd.item = Some(Item::Repo { row: row.clone() }),
            },
            QueueMessage::Issue { owner, name, .. } => match issues.get(&pd.key) {
                None => {
                    let reason = format!("issue {} is not in D1", pd.key);
                    writes.push(store::record_dead_letter(
                        "processing",
                        &pd.delivery.message_id,
                        &pd.delivery.body.to_string(),
                        &reason,
                        pd.attempts,
                        now,
                    ));
                    pd.settle("failed", Decision::Ack, Some(reason));
                }
                Some(row)
                    if row.analysis_hash.as_deref() == Some(row.content_hash.as_str())
                        && row.prompt_version.as_deref() == Some(ai::PROMPT_VERSION)
                        && row.processing_status == "completed" =>
                {
                    pd.settle("skipped_unchanged", Decision::Ack, None);
                }
                Some(row) if row.state == "closed" => {
                    writes.push(store::close_issue_processed(row.id, pd.attempts, now));
                    pd.settle("closed", Decision::Ack, None);
                }
                Some(row) => {
                    pd.item = Some(Item::Issue {
                        row: row.clone(),
                        repo: repos.get(&format!("{owner}/{name}")).cloned(),
                    })
                }
            },
            QueueMessage::ContinueScraping { .. } => {}
        }
    }

    // 4. One GraphQL query enriches everything that needs work.
    let targets: Vec<(usize, EnrichTarget)> = pending
        .iter()
        .enumerate()
        .filter_map(|(i, pd)| match &pd.item {
            Some(Item::Repo { row }) => Some((
                i,
                EnrichTarget::Repo {
                    owner: row.owner.clone(),
                    name: row.name.clone(),
                },
            )),
            Some(Item::Issue { row, .. }) => Some((
                i,
                EnrichTarget::Issue {
                    owner: row.owner.clone(),
                    name: row.name.clone(),
                    number: row.number,
                },
            )),
            None => None,
        })
        .collect();
    let mut enriched: BTreeMap<usize, Enriched> = BTreeMap::new();
    if !targets.is_empty() {
        let only: Vec<EnrichTarget> = targets.iter().map(|(_, t)| t.clone()).collect();
        let body = github::enrich_request_body(&only);
        let req = github::graphql_request(&cfg.api_base, auth, invocation, &body);
        // What must stay affordable after a retry: every item's AI calls
        // (one retry each) and the closing writes.
        let after_enrich = 2 * only.len() as u32 + CLOSING_RESERVE;
        let mut attempt = 0;
        let answer = loop {
            attempt += 1;
            report.github_requests += 1;
            let answer = match p.fetch(&req).await {
                Ok(resp) => github::decode_enrich(&resp, &only),
                Err(PlatformError::Network(m)) => Err(classify_network(&m)),
                Err(e) => return Err(e),
            };
            let Err(f) = &answer else { break answer };
            let now_secs = (p.now_ms() / 1000) as u64;
            let wait = f.delay_secs(now_secs, attempt);
            let retry = matches!(f, Failure::Transient { .. })
                && attempt <= ENRICH_INLINE_RETRIES
                && wait <= MAX_INLINE_WAIT_SECS
                && p.budget.can_afford(1 + after_enrich);
            log.push(
                p.now_ms(),
                Level::Warn,
                "enrich_failed",
                fields([
                    ("items", json!(only.len())),
                    ("attempt", json!(attempt)),
                    ("failure", json!(f)),
                    ("retry_in_secs", json!(retry.then_some(wait.max(1)))),
                ]),
            );
            if !retry {
                break answer;
            }
            p.sleep(wait.max(1) * 1000).await;
        };
        match answer {
            Ok(list) => {
                for ((i, _), e) in targets.iter().zip(list) {
                    enriched.insert(*i, e);
                }
            }
            Err(f) => {
                for (i, _) in &targets {
                    enriched.insert(*i, Enriched::Failed(f.clone()));
                }
            }
        }
    }

    // 5. Analyse, item by item, within the budget.
    let mut ai_state = AiState {
        quota_exhausted: false,
    };
    for (i, pd) in pending.iter_mut().enumerate() {
        let Some(item) = pd.item.take() else { continue };
        let attempts = pd.attempts;
        let (table, id) = match &item {
            Item::Repo { row } => (ItemTable::Repos, row.id),
            Item::Issue { row, .. } => (ItemTable::Issues, row.id),
        };
        match enriched.remove(&i) {
            Some(Enriched::Gone { message }) => {
                let reason = format!("gone upstream: {message}");
                writes.push(store::fail_item(table, id, &reason, attempts, now));
                pd.settle("failed", Decision::Ack, Some(reason));
            }
            Some(Enriched::Failed(f)) if !f.is_retryable() => {
                let reason = f.reason().to_string();
                writes.push(store::fail_item(table, id, &reason, attempts, now));
                pd.settle("failed", Decision::Ack, Some(reason));
            }
            Some(Enriched::Failed(f)) => {
                let delay = f.delay_secs((now / 1000) as u64, attempts.max(1) as u32);
                writes.push(store::note_item_retry(table, id, f.reason(), attempts));
                pd.settle(
                    "retry",
                    Decision::Retry { delay_secs: delay },
                    Some(f.reason().to_string()),
                );
            }
            None => {
                let reason = "no enrichment answer".to_string();
                writes.push(store::note_item_retry(table, id, &reason, attempts));
                pd.settle("retry", Decision::Retry { delay_secs: 10 }, Some(reason));
            }
            Some(Enriched::Repo(e)) => {
                let Item::Repo { row } = item else { continue };
                let ctx = RepoContext {
                    owner: row.owner.clone(),
                    name: row.name.clone(),
                    description: e.description.clone().or(row.description.clone()),
                    primary_language: e.primary_language.clone(),
                    languages: e.languages.iter().map(|(l, _)| l.clone()).collect(),
                    topics: e.topics.clone(),
                    listed_labels: serde_json::from_str(&row.listed_labels).unwrap_or_default(),
                };
                let (summary, prov) = summarise(
                    p,
                    binding,
                    cfg,
                    invocation,
                    &ctx,
                    &mut ai_state,
                    &mut report,
                    row.content_hash.clone().unwrap_or_default(),
                    log,
                )
                .await?;
                let raw: serde_json::Map<String, Value> = e
                    .languages
                    .iter()
                    .map(|(l, b)| (l.clone(), json!(b)))
                    .collect();
                writes.push(store::complete_repo(
                    &store::RepoResult {
                        id: row.id,
                        description: e.description.clone(),
                        languages_json: json!(ctx.languages).to_string(),
                        languages_raw_json: Value::Object(raw).to_string(),
                        topics_json: json!(e.topics).to_string(),
                        summary,
                        provenance: prov,
                        attempts,
                    },
                    now,
                ));
                pd.settle("completed", Decision::Ack, None);
            }
            Some(Enriched::Issue(e)) => {
                let Item::Issue { row, repo } = item else {
                    continue;
                };
                let meta = &e.meta;
                if meta.state == "closed" {
                    writes.push(store::close_issue_processed(row.id, attempts, now));
                    pd.settle("closed", Decision::Ack, None);
                    continue;
                }
                let ctx = repo_context(&row, repo.as_ref());
                let input = IssueInput {
                    repo: &ctx,
                    number: row.number,
                    title: &meta.title,
                    labels: &meta.labels,
                    body: &meta.body,
                    comment_count: meta.comment_count,
                    assignee_count: meta.assignee_count,
                };
                let (analysis, prov) = analyse(
                    p,
                    binding,
                    cfg,
                    invocation,
                    &input,
                    &mut ai_state,
                    &mut report,
                    row.content_hash.clone(),
                    log,
                )
                .await?;
                writes.push(store::complete_issue(
                    &store::IssueResult {
                        id: row.id,
                        title: meta.title.clone(),
                        body: meta.body.clone(),
                        intro: analysis.intro,
                        difficulty: i64::from(analysis.difficulty),
                        first_steps_json: json!(analysis.first_steps).to_string(),
                        skills_json: json!(analysis.skills).to_string(),
                        provenance: prov,
                        attempts,
                    },
                    now,
                ));
                pd.settle("completed", Decision::Ack, None);
            }
        }
    }

    // 6. One D1 write commits everything; only then are messages acked.
    if !writes.is_empty() {
        p.db(&writes).await?;
    }
    for pd in pending {
        let (outcome, decision, reason) = pd.settled.unwrap_or_else(|| {
            (
                "retry".into(),
                Decision::Retry { delay_secs: 10 },
                Some("not settled".into()),
            )
        });
        match (&decision, outcome.as_str()) {
            (Decision::Retry { .. }, _) => report.retried += 1,
            (Decision::Ack, "failed" | "invalid") => {
                report.failed += 1;
                report.acked += 1;
            }
            (Decision::Ack, "skipped_unchanged" | "duplicate_in_batch") => {
                report.skipped += 1;
                report.acked += 1;
            }
            (Decision::Ack, _) => {
                report.completed += 1;
                report.acked += 1;
            }
        }
        log.push(
            now,
            if reason.is_some() {
                Level::Warn
            } else {
                Level::Info
            },
            "message",
            fields([
                ("message_id", json!(pd.delivery.message_id)),
                ("item", json!(pd.key)),
                ("outcome", json!(outcome)),
                ("decision", json!(decision)),
                ("attempts", json!(pd.attempts)),
                ("reason", json!(reason)),
            ]),
        );
        report.outcomes.push(MessageOutcome {
            message_id: pd.delivery.message_id,
            item: pd.key,
            outcome,
            decision,
            attempts: pd.attempts,
            reason,
        });
    }
    Ok(report)
}

fn repo_context(issue: &ProcIssueRow, repo: Option<&ProcRepoRow>) -> RepoContext {
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

/// One AI call through the configured backend, charged to the budget.
async fn call_ai<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    input: &Value,
) -> Result<Result<Value, AiFailure>, PlatformError> {
    match &cfg.ai {
        AiMode::Heuristic => Ok(Err(AiFailure::Permanent("heuristic backend".into()))),
        AiMode::Binding { model } => {
            p.charge(Subrequest::Ai)?;
            Ok(binding
                .run(model, input)
                .await
                .map_err(|e| ai::classify_binding_error(&e)))
        }
        AiMode::Rest {
            api_base,
            account_id,
            token,
            model,
        } => {
            let req = ai::rest_request(api_base, account_id, token, model, input, invocation);
            match p.fetch(&req).await {
                Ok(resp) => Ok(ai::parse_rest_response(&resp)),
                Err(PlatformError::Network(m)) => Ok(Err(AiFailure::Transient {
                    reason: format!("network error: {m}"),
                    retry_after_secs: None,
                })),
                Err(e) => Err(e),
            }
        }
    }
}

/// Why the heuristic answered instead of AI, or `None` when AI answered.
enum Asked<T> {
    Ai(T),
    Fallback(String),
}

/// Ask AI (one retry on invalid output), or say why not.
#[allow(clippy::too_many_arguments)]
async fn ask<P: Platform, B: AiBinding, T>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    input: &Value,
    parse: impl Fn(&Value) -> Result<T, ai::InvalidOutput>,
    state: &mut AiState,
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Asked<T>, PlatformError> {
    if cfg.ai == AiMode::Heuristic {
        return Ok(Asked::Fallback(
            "offline heuristic backend (AI_BACKEND=heuristic)".into(),
        ));
    }
    if state.quota_exhausted {
        return Ok(Asked::Fallback(
            "AI daily allocation exhausted earlier in this invocation".into(),
        ));
    }
    let mut invalid: Option<String> = None;
    for attempt in 1..=2 {
        if !p.budget.can_afford(1 + CLOSING_RESERVE) {
            return Ok(Asked::Fallback(
                "subrequest budget reached before the AI call".into(),
            ));
        }
        report.ai_calls += 1;
        let result = call_ai(p, binding, cfg, invocation, input).await?;
        let now = p.now_ms();
        match result {
            Ok(value) => {
                if let Some((pt, ct)) = ai::usage_tokens(&value) {
                    report.neurons += ai::estimate_neurons(cfg.ai.model(), pt, ct);
                }
                match parse(&value) {
                    Ok(out) => return Ok(Asked::Ai(out)),
                    Err(e) => {
                        log.push(
                            now,
                            Level::Warn,
                            "ai_invalid_output",
                            fields([
                                ("attempt", json!(attempt)),
                                ("reason", json!(e.to_string())),
                            ]),
                        );
                        invalid = Some(e.to_string());
                    }
                }
            }
            Err(AiFailure::QuotaExhausted(m)) => {
                state.quota_exhausted = true;
                log.push(
                    now,
                    Level::Warn,
                    "ai_quota_exhausted",
                    fields([("message", json!(m))]),
                );
                return Ok(Asked::Fallback(format!(
                    "AI daily allocation exhausted: {m}"
                )));
            }
            Err(f) => {
                log.push(
                    now,
                    Level::Warn,
                    "ai_failed",
                    fields([("failure", json!(f.to_string()))]),
                );
                return Ok(Asked::Fallback(format!("AI call failed: {f}")));
            }
        }
    }
    Ok(Asked::Fallback(format!(
        "AI returned invalid output twice: {}",
        invalid.unwrap_or_default()
    )))
}

#[allow(clippy::too_many_arguments)]
async fn analyse<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    input: &IssueInput<'_>,
    state: &mut AiState,
    report: &mut BatchReport,
    content_hash: String,
    log: &mut LogBook,
) -> Result<(IssueAnalysis, Provenance), PlatformError> {
    let request = ai::issue_analysis_input(input);
    let asked = ask(
        p,
        binding,
        cfg,
        invocation,
        &request,
        ai::parse_issue_analysis,
        state,
        report,
        log,
    )
    .await?;
    Ok(with_provenance(
        p.now_ms(),
        cfg,
        content_hash,
        asked,
        || ai::heuristic_issue_analysis(input),
        report,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn summarise<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    ctx: &RepoContext,
    state: &mut AiState,
    report: &mut BatchReport,
    content_hash: String,
    log: &mut LogBook,
) -> Result<(String, Provenance), PlatformError> {
    let request = ai::repo_summary_input(ctx);
    let asked = ask(
        p,
        binding,
        cfg,
        invocation,
        &request,
        ai::parse_repo_summary,
        state,
        report,
        log,
    )
    .await?;
    Ok(with_provenance(
        p.now_ms(),
        cfg,
        content_hash,
        asked,
        || ai::heuristic_repo_summary(ctx),
        report,
    ))
}

fn with_provenance<T>(
    now: i64,
    cfg: &ProcessConfig,
    input_hash: String,
    asked: Asked<T>,
    fallback: impl FnOnce() -> T,
    report: &mut BatchReport,
) -> (T, Provenance) {
    let (out, model, reason) = match asked {
        Asked::Ai(out) => (out, cfg.ai.model().to_string(), None),
        Asked::Fallback(reason) => {
            report.fallbacks += 1;
            (fallback(), ai::HEURISTIC_MODEL.to_string(), Some(reason))
        }
    };
    (
        out,
        Provenance {
            model,
            prompt_version: ai::PROMPT_VERSION.to_string(),
            input_hash,
            analyzed_at: now,
            fallback_reason: reason,
        },
    )
}

/// The summary line of a processor invocation.
pub fn summary_json(r: &BatchReport, subrequests: u32) -> Value {
    json!({
        "messages": r.outcomes.len(),
        "acked": r.acked,
        "retried": r.retried,
        "failed": r.failed,
        "skipped": r.skipped,
        "completed": r.completed,
        "ai_calls": r.ai_calls,
        "fallbacks": r.fallbacks,
        "neurons": r.neurons,
        "github_requests": r.github_requests,
        "subrequests_used": subrequests,
    })
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
