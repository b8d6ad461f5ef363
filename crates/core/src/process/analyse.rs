//! The AI step of the processing workflow.
//!
//! Every AI call of the processor goes through [`call_ai`], the one place
//! that charges the budget and talks to a backend (the binding or the REST
//! API). [`analyse`] asks for one [`Analysis`] — an issue's or a repo's, the
//! same code for both — with one retry on invalid output, and says what to
//! store or when to try again:
//! - valid output is stored as the model's;
//! - invalid output twice, a permanent error or a spent daily allocation
//!   gives the labelled heuristic result, with the reason;
//! - a transient failure (429, capacity, timeouts) sends the message back to
//!   the queue with backoff, and the rest of the batch with it, unless this
//!   is the message's last delivery: then the heuristic answers, labelled;
//! - a call whose worst case (prompt tokens + `max_tokens`) would take the
//!   UTC day past the neuron cap never starts: the heuristic answers now,
//!   labelled, and the scraper hands the item back to AI on a later day
//!   ([`ai::DailyAllowance`]). Every call's reported usage is recorded and
//!   the day's ledger row is written with the batch's commit
//!   ([`AiState::ledger_writes`]).

use serde_json::{json, Value};

use crate::ai::{
    self, AiFailure, CallEstimate, DailyAllowance, InvalidOutput, IssueAnalysis, IssueInput,
    RepoContext,
};
use crate::budget::Subrequest;
use crate::logrec::{fields, Level, LogBook};
use crate::platform::{Metered, Platform, PlatformError};
use crate::sql::Statement;

use super::{BatchReport, ProcessConfig, CLOSING_RESERVE};

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

    /// The model this backend's output is stored under.
    pub fn model(&self) -> &str {
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

/// One thing the processor asks AI: its input, the check its answer must
/// pass, and the heuristic that stands in for it.
pub trait Analysis {
    type Output;
    /// What logs call it.
    const KIND: &'static str;
    fn input(&self) -> Value;
    fn parse(&self, result: &Value) -> Result<Self::Output, InvalidOutput>;
    fn heuristic(&self) -> Self::Output;
}

/// A repo's summary.
impl Analysis for RepoContext {
    type Output = String;
    const KIND: &'static str = "repo_summary";
    fn input(&self) -> Value {
        ai::repo_summary_input(self)
    }
    fn parse(&self, result: &Value) -> Result<String, InvalidOutput> {
        ai::parse_repo_summary(result)
    }
    fn heuristic(&self) -> String {
        ai::heuristic_repo_summary(self)
    }
}

/// An issue's analysis.
impl Analysis for IssueInput<'_> {
    type Output = IssueAnalysis;
    const KIND: &'static str = "issue_analysis";
    fn input(&self) -> Value {
        ai::issue_analysis_input(self)
    }
    fn parse(&self, result: &Value) -> Result<IssueAnalysis, InvalidOutput> {
        ai::parse_issue_analysis(result)
    }
    fn heuristic(&self) -> IssueAnalysis {
        ai::heuristic_issue_analysis(self)
    }
}

/// What [`analyse`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// Store this, under `model`; `fallback_reason` says why the heuristic
    /// answered, when it did.
    Done {
        output: T,
        model: String,
        fallback_reason: Option<String>,
    },
    /// Nothing to store yet: the message goes back to the queue.
    Later { delay_secs: u64, reason: String },
}

/// What earlier calls of this invocation learned.
#[derive(Debug, Clone, Default)]
pub struct AiState {
    /// The daily allocation is spent: no more calls in this invocation.
    quota_exhausted: Option<String>,
    /// AI failed transiently: the rest of the batch waits this long too.
    backing_off: Option<(u64, String)>,
    /// When the last call started, for pacing.
    last_call_ms: Option<i64>,
    /// This invocation's share of the day's neuron cap, from its first call.
    allowance: Option<DailyAllowance>,
}

impl AiState {
    /// Whether a call of `estimate` needs a D1 reservation first.
    fn needs_reservation(&self, estimate: &CallEstimate) -> bool {
        self.allowance
            .as_ref()
            .is_none_or(|a| a.needs_reservation(estimate))
    }

    /// The neuron ledger's statements for the batch's commit: the calls'
    /// neurons, tokens and refusals added to the day's row, the
    /// invocation's reservation dropped. Empty when no call was considered.
    pub fn ledger_writes(&self, invocation: &str, now_ms: i64) -> Vec<Statement> {
        self.allowance
            .as_ref()
            .map(|a| a.settle(invocation, now_ms))
            .unwrap_or_default()
    }
}

/// How a message's turn with AI ends before or after a call.
enum Verdict<T> {
    Answer(Answer<T>),
    /// Invalid output: ask once more.
    Invalid(String),
}

/// The heuristic's answer, labelled with why it answered.
fn heuristic<A: Analysis>(task: &A, reason: String) -> Answer<A::Output> {
    Answer::Done {
        output: task.heuristic(),
        model: ai::HEURISTIC_MODEL.to_string(),
        fallback_reason: Some(reason),
    }
}

/// Why no call is made for this message, if none is: the offline backend,
/// a spent allocation, or a transient failure earlier in the batch.
fn before_call<A: Analysis>(
    task: &A,
    cfg: &ProcessConfig,
    state: &AiState,
    last_delivery: bool,
) -> Option<Answer<A::Output>> {
    if cfg.ai == AiMode::Heuristic {
        return Some(heuristic(
            task,
            "offline heuristic backend (AI_BACKEND=heuristic)".into(),
        ));
    }
    if let Some(m) = &state.quota_exhausted {
        return Some(heuristic(
            task,
            format!("AI daily allocation exhausted: {m}"),
        ));
    }
    match &state.backing_off {
        Some((_, reason)) if last_delivery => Some(heuristic(
            task,
            format!("AI kept failing on the message's last delivery: {reason}"),
        )),
        Some((delay_secs, reason)) => Some(Answer::Later {
            delay_secs: *delay_secs,
            reason: reason.clone(),
        }),
        None => None,
    }
}

/// What one call's result means. Pure: the state it updates is passed in.
fn judge<A: Analysis>(
    task: &A,
    result: Result<Value, AiFailure>,
    model: &str,
    state: &mut AiState,
    attempts: i64,
    last_delivery: bool,
    now_secs: u64,
) -> Verdict<A::Output> {
    match result {
        Ok(value) => match task.parse(&value) {
            Ok(output) => Verdict::Answer(Answer::Done {
                output,
                model: model.to_string(),
                fallback_reason: None,
            }),
            Err(e) => Verdict::Invalid(e.to_string()),
        },
        Err(AiFailure::QuotaExhausted(m)) => {
            let answer = heuristic(task, format!("AI daily allocation exhausted: {m}"));
            state.quota_exhausted = Some(m);
            Verdict::Answer(answer)
        }
        Err(AiFailure::CapReached(reason)) => Verdict::Answer(heuristic(task, reason)),
        Err(f @ AiFailure::Transient { .. }) => {
            let delay = super::queue_delay_secs(&f.to_failure(now_secs), attempts, now_secs);
            state.backing_off = Some((delay, f.to_string()));
            Verdict::Answer(if last_delivery {
                heuristic(
                    task,
                    format!("AI kept failing on the message's last delivery: {f}"),
                )
            } else {
                Answer::Later {
                    delay_secs: delay,
                    reason: f.to_string(),
                }
            })
        }
        Err(f) => Verdict::Answer(heuristic(task, format!("AI call failed: {f}"))),
    }
}

/// Ask AI for `task`: at most two calls (one retry on invalid output),
/// paced, within the budget. `attempts` is the message's delivery count.
#[allow(clippy::too_many_arguments)]
pub async fn analyse<P: Platform, B: AiBinding, A: Analysis>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    task: &A,
    attempts: i64,
    state: &mut AiState,
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Answer<A::Output>, PlatformError> {
    let answer = ask(
        p, binding, cfg, invocation, task, attempts, state, report, log,
    )
    .await?;
    if let Answer::Done {
        fallback_reason: Some(_),
        ..
    } = &answer
    {
        report.fallbacks += 1;
    }
    Ok(answer)
}

#[allow(clippy::too_many_arguments)]
async fn ask<P: Platform, B: AiBinding, A: Analysis>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    task: &A,
    attempts: i64,
    state: &mut AiState,
    report: &mut BatchReport,
    log: &mut LogBook,
) -> Result<Answer<A::Output>, PlatformError> {
    let last_delivery = attempts >= super::MAX_DELIVERIES;
    if let Some(answer) = before_call(task, cfg, state, last_delivery) {
        return Ok(answer);
    }
    let input = task.input();
    let estimate = ai::estimate_call(cfg.ai.model(), &input);
    let mut invalid = String::new();
    for attempt in 1..=2 {
        let reservation = u32::from(state.needs_reservation(&estimate));
        if !p.budget.can_afford(1 + reservation + CLOSING_RESERVE) {
            let reason = "subrequest budget reached before the AI call".to_string();
            return Ok(if last_delivery {
                heuristic(task, reason)
            } else {
                Answer::Later {
                    delay_secs: 1,
                    reason,
                }
            });
        }
        pace(p, cfg, state).await;
        let result = call_ai(
            p, binding, cfg, invocation, &input, &estimate, state, report,
        )
        .await?;
        let now = p.now_ms();
        let now_secs = (now / 1000) as u64;
        let had_quota = state.quota_exhausted.is_some();
        match judge(
            task,
            result,
            cfg.ai.model(),
            state,
            attempts,
            last_delivery,
            now_secs,
        ) {
            Verdict::Answer(answer) => {
                match &state.quota_exhausted {
                    Some(m) if !had_quota => log.push(
                        now,
                        Level::Warn,
                        "ai_quota_exhausted",
                        fields([("message", json!(m))]),
                    ),
                    _ => log_failure(log, now, A::KIND, &answer),
                }
                return Ok(answer);
            }
            Verdict::Invalid(reason) => {
                log.push(
                    now,
                    Level::Warn,
                    "ai_invalid_output",
                    fields([
                        ("task", json!(A::KIND)),
                        ("attempt", json!(attempt)),
                        ("reason", json!(reason)),
                    ]),
                );
                invalid = reason;
            }
        }
    }
    Ok(heuristic(
        task,
        format!("AI returned invalid output twice: {invalid}"),
    ))
}

fn log_failure<T>(log: &mut LogBook, now: i64, kind: &str, answer: &Answer<T>) {
    let (event, reason, delay) = match answer {
        Answer::Later { delay_secs, reason } => {
            ("ai_retry_later", reason.as_str(), Some(*delay_secs))
        }
        Answer::Done {
            fallback_reason: Some(reason),
            ..
        } => ("ai_fallback", reason.as_str(), None),
        Answer::Done { .. } => return,
    };
    log.push(
        now,
        Level::Warn,
        event,
        fields([
            ("task", json!(kind)),
            ("reason", json!(reason)),
            ("retry_in_secs", json!(delay)),
        ]),
    );
}

/// Space this invocation's AI calls by the pacing interval: together, the
/// consumers stay under Workers AI's per-minute limit. Sleeping costs no CPU.
async fn pace<P: Platform>(p: &mut Metered<'_, P>, cfg: &ProcessConfig, state: &mut AiState) {
    let now = p.now_ms();
    if let Some(last) = state.last_call_ms {
        let wait = cfg
            .pacing
            .ai_interval_ms()
            .saturating_sub((now - last).max(0) as u64);
        if wait > 0 {
            p.sleep(wait).await;
        }
    }
    state.last_call_ms = Some(p.now_ms());
}

/// The day's neuron cap on a call of `estimate`: a D1 reservation first
/// when this invocation holds too little for its worst case, then admit it
/// or say why not.
async fn within_cap<P: Platform>(
    p: &mut Metered<'_, P>,
    cfg: &ProcessConfig,
    invocation: &str,
    estimate: &CallEstimate,
    state: &mut AiState,
) -> Result<Result<(), String>, PlatformError> {
    let now = p.now_ms();
    let allowance = state
        .allowance
        .get_or_insert_with(|| DailyAllowance::new(now, cfg.ai_daily_cap, cfg.ai.model()));
    if allowance.needs_reservation(estimate) {
        let rows = p.db(&allowance.reserve(invocation, estimate, now)).await?;
        allowance.absorb_reservation(rows.get(1).map_or(&[], Vec::as_slice), estimate);
    }
    Ok(allowance.admit(estimate).map_err(|r| r.to_string()))
}

/// One AI call through the configured backend, charged to the budget and
/// to the day's neuron cap ([`within_cap`]); its reported usage is recorded
/// in the invocation's allowance. Every AI call the processor makes goes
/// through here.
#[allow(clippy::too_many_arguments)]
pub async fn call_ai<P: Platform, B: AiBinding>(
    p: &mut Metered<'_, P>,
    binding: &mut B,
    cfg: &ProcessConfig,
    invocation: &str,
    input: &Value,
    estimate: &CallEstimate,
    state: &mut AiState,
    report: &mut BatchReport,
) -> Result<Result<Value, AiFailure>, PlatformError> {
    if cfg.ai != AiMode::Heuristic {
        if let Err(reason) = within_cap(p, cfg, invocation, estimate, state).await? {
            return Ok(Err(AiFailure::CapReached(reason)));
        }
    }
    // Counted once the call is admitted: a refusal by the cap is no call.
    report.ai_calls += 1;
    let result = match &cfg.ai {
        AiMode::Heuristic => Err(AiFailure::Permanent("heuristic backend".into())),
        AiMode::Binding { model } => {
            p.charge(Subrequest::Ai)?;
            binding
                .run(model, input)
                .await
                .map_err(|e| ai::classify_binding_error(&e))
        }
        AiMode::Rest {
            api_base,
            account_id,
            token,
            model,
        } => {
            let req = ai::rest_request(api_base, account_id, token, model, input, invocation);
            match p.fetch(&req).await {
                Ok(resp) => ai::parse_rest_response(&resp),
                Err(PlatformError::Network(m)) => Err(AiFailure::Transient {
                    reason: format!("network error: {m}"),
                    retry_after_secs: None,
                }),
                Err(e) => return Err(e),
            }
        }
    };
    if let Some(allowance) = state.allowance.as_mut() {
        match &result {
            Ok(value) => {
                let usage = ai::usage_tokens(value);
                report.neurons += allowance.record(usage, estimate);
                if let Some((prompt, completion)) = usage {
                    report.prompt_tokens += prompt;
                    report.completion_tokens += completion;
                }
            }
            Err(AiFailure::QuotaExhausted(_)) => allowance.platform_exhausted(p.now_ms()),
            Err(_) => {}
        }
    }
    Ok(result)
}
