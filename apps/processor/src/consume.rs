//! Consuming the processing queue and its dead-letter queue.

use contribot_core::budget::Budget;
use contribot_core::github::GithubAuth;
use contribot_core::logrec::{self, fields, Level, LogBook};
use contribot_core::platform::Metered;
use contribot_core::process::{
    self, AiBinding, AiMode, Decision, Delivery, Invocation, NoBinding, Pacing, ProcessConfig,
};
use contribot_edge::ai::WorkerAi;
use contribot_edge::{config, logs, new_id, WorkerPlatform};
use serde_json::{json, Value};
use worker::{Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Result};

const SECRETS: [&str; 3] = ["GITHUB_TOKEN", "ADMIN_TOKEN", "CF_API_TOKEN"];

fn ai_mode(env: &Env) -> std::result::Result<AiMode, String> {
    AiMode::from_config(
        &config::var_or(env, "AI_BACKEND", "binding"),
        config::var(env, "AI_MODEL"),
        config::var(env, "AI_REST_URL"),
        config::var(env, "CF_ACCOUNT_ID"),
        config::var(env, "CF_API_TOKEN"),
    )
}

/// `AI_DAILY_NEURON_CAP`; an unreadable value turns AI off (0) rather than
/// risk the free allocation, and says so in the log.
fn daily_cap(env: &Env, book: &mut LogBook, now: i64) -> f64 {
    contribot_core::ai::parse_daily_cap(config::var(env, "AI_DAILY_NEURON_CAP").as_deref())
        .unwrap_or_else(|e| {
            book.push(
                now,
                Level::Error,
                "ai_config_invalid",
                fields([("error", json!(e))]),
            );
            0.0
        })
}

/// One invocation: process the batch, commit, then ack or retry each message.
pub async fn batch(batch: MessageBatch<Value>, env: &Env) -> Result<()> {
    let messages = batch.messages()?;
    let batch_id = new_id("batch-");
    let level = Level::parse(&config::var_or(env, "LOG_LEVEL", "info")).unwrap_or(Level::Info);
    let mut book = LogBook::new(&batch_id, &batch_id, level)
        .with_secrets(config::secret_values(env, &SECRETS));
    let mut platform = WorkerPlatform::from_env(env)?;
    let mut p = Metered::new(
        &mut platform,
        Budget::from_config(config::var(env, "SUBREQUEST_BUDGET").as_deref()),
    );
    let started = p.now_ms();
    let mode = match ai_mode(env) {
        Ok(mode) => mode,
        Err(e) => {
            book.push(
                started,
                Level::Error,
                "ai_config_invalid",
                fields([("error", json!(e))]),
            );
            AiMode::Heuristic
        }
    };
    let cfg = ProcessConfig {
        api_base: config::var_or(env, "GITHUB_API_URL", "https://api.github.com"),
        ai: mode,
        pacing: Pacing::from_config(
            config::var(env, "AI_CALLS_PER_MINUTE").as_deref(),
            config::var(env, "GITHUB_POINTS_PER_MINUTE").as_deref(),
            config::var(env, "CONSUMER_CONCURRENCY").as_deref(),
        ),
        ai_daily_cap: daily_cap(env, &mut book, started),
    };
    let auth = GithubAuth::new(config::var(env, "GITHUB_TOKEN"));
    let key = logrec::log_key("processor", &batch_id, started);
    let inv = Invocation {
        id: &batch_id,
        started_at: started,
        log_key: &key,
    };
    let deliveries: Vec<Delivery> = messages
        .iter()
        .map(|m| Delivery {
            message_id: m.id(),
            body: m.body().clone(),
        })
        .collect();
    let result = match WorkerAi::from_env(env, "AI") {
        Some(mut ai) => run(&mut p, &mut ai, &cfg, &auth, inv, deliveries, &mut book).await,
        None => {
            run(
                &mut p,
                &mut NoBinding,
                &cfg,
                &auth,
                inv,
                deliveries,
                &mut book,
            )
            .await
        }
    };
    let bucket = env.bucket("LOGS").ok();
    match result {
        Ok(report) => {
            // The ledger row went with the commit; the R2 log is all that is left.
            let summary = process::summary_json(&report, p.budget.used() + process::AFTER_REPORT);
            book.push_summary(p.now_ms(), summary);
            logs::write_log(&mut p, bucket.as_ref(), &key, &book).await;
            for (m, outcome) in messages.iter().zip(&report.outcomes) {
                match outcome.decision {
                    Decision::Ack => m.ack(),
                    Decision::Retry { delay_secs } => m.retry_with_options(
                        &QueueRetryOptionsBuilder::new()
                            .with_delay_seconds(delay_secs.min(43_200) as u32)
                            .build(),
                    ),
                }
            }
            Ok(())
        }
        Err(e) => {
            // Nothing was committed: every message goes back for a retry.
            book.push(
                p.now_ms(),
                Level::Error,
                "batch_failed",
                fields([("error", json!(e.to_string()))]),
            );
            book.push_summary(p.now_ms(), json!({"messages": messages.len(), "acked": 0, "retried": messages.len(), "failed": 0, "ai_calls": 0, "fallbacks": 0, "subrequests_used": p.budget.used() + 1, "error": e.to_string()}));
            logs::write_log(&mut p, bucket.as_ref(), &key, &book).await;
            for m in &messages {
                m.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(30)
                        .build(),
                );
            }
            Ok(())
        }
    }
}

async fn run<B: AiBinding>(
    p: &mut Metered<'_, WorkerPlatform>,
    ai: &mut B,
    cfg: &ProcessConfig,
    auth: &GithubAuth,
    inv: Invocation<'_>,
    deliveries: Vec<Delivery>,
    book: &mut LogBook,
) -> std::result::Result<process::BatchReport, contribot_core::platform::PlatformError> {
    process::process_batch(p, ai, cfg, auth, inv, deliveries, book).await
}

/// Dead letters: each message's item ends `failed`, with its last error.
/// The write is retried in place; if the whole batch still fails, each
/// message is written on its own, so one bad record never holds up the
/// others. A message whose record was not written is never acked: it goes
/// back to the queue.
pub async fn dead_letters(batch: MessageBatch<Value>, env: &Env) -> Result<()> {
    let messages = batch.messages()?;
    let platform = WorkerPlatform::from_env(env)?;
    let now = contribot_edge::now_ms();
    let records: Vec<Vec<_>> = messages
        .iter()
        .map(|m| process::dead_letter_statements(&m.id(), m.body(), now))
        .collect();
    let all: Vec<_> = records.iter().flatten().cloned().collect();
    if write_with_retries(&platform, &all).await.is_ok() {
        messages.iter().for_each(|m| m.ack());
        return Ok(());
    }
    for (m, stmts) in messages.iter().zip(&records) {
        match write_with_retries(&platform, stmts).await {
            Ok(()) => m.ack(),
            Err(e) => {
                worker::console_error!("dead letter {} not recorded, retried later: {e}", m.id());
                m.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(process::DLQ_RETRY_DELAY_SECS)
                        .build(),
                );
            }
        }
    }
    Ok(())
}

/// One D1 batch, tried up to `process::DLQ_WRITE_ATTEMPTS` times with a
/// short exponential pause between tries.
async fn write_with_retries(
    platform: &WorkerPlatform,
    stmts: &[contribot_core::sql::Statement],
) -> std::result::Result<(), String> {
    let mut attempt = 1;
    loop {
        match contribot_edge::platform::run_batch(platform.db(), stmts).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= process::DLQ_WRITE_ATTEMPTS => return Err(e),
            Err(_) => {
                worker::Delay::from(std::time::Duration::from_millis(
                    process::dlq_write_pause_ms(attempt),
                ))
                .await;
                attempt += 1;
            }
        }
    }
}
