//! Starting runs and advancing them from the continuation queue.

use contribot_core::budget::Budget;
use contribot_core::github::GithubAuth;
use contribot_core::list::DEFAULT_SOURCE_ID;
use contribot_core::logrec::{fields, Level, LogBook};
use contribot_core::messages::QueueMessage;
use contribot_core::platform::{apart, Metered};
use contribot_core::scrape::{self, ScrapeConfig, StartOutcome};
use contribot_core::store;
use contribot_edge::{config, logs, new_id, WorkerPlatform};
use serde_json::{json, Value};
use worker::{Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Result};

const SECRETS: [&str; 2] = ["GITHUB_TOKEN", "ADMIN_TOKEN"];

pub(crate) fn log_book(env: &Env, run_id: &str, invocation: &str) -> LogBook {
    let level = Level::parse(&config::var_or(env, "LOG_LEVEL", "info")).unwrap_or(Level::Info);
    LogBook::new(run_id, invocation, level).with_secrets(config::secret_values(env, &SECRETS))
}

pub(crate) fn budget(env: &Env) -> Budget {
    Budget::from_config(config::var(env, "SUBREQUEST_BUDGET").as_deref())
}

fn scrape_config(env: &Env) -> ScrapeConfig {
    ScrapeConfig {
        api_base: config::var_or(env, "GITHUB_API_URL", "https://api.github.com"),
        list_data_url: config::var_or(
            env,
            "LIST_DATA_URL",
            "https://raw.githubusercontent.com/MunGell/awesome-for-beginners/main/data.json",
        ),
        list_readme_url: config::var_or(
            env,
            "LIST_README_URL",
            "https://raw.githubusercontent.com/MunGell/awesome-for-beginners/main/README.md",
        ),
        repos_per_query: config::number_or(
            env,
            "REPOS_PER_QUERY",
            contribot_core::github::DEFAULT_REPOS_PER_QUERY,
        ),
        max_inline_retries: config::number_or(env, "MAX_INLINE_RETRIES", 2),
        send_concurrency: config::number_or(env, "DISCOVERY_CONCURRENCY", 6),
        ai_upgrades_per_run: config::number_or(env, "AI_UPGRADES_PER_RUN", 2000),
        inactive_after_days: config::number_or(
            env,
            "INACTIVE_AFTER_DAYS",
            scrape::DEFAULT_INACTIVE_AFTER_DAYS,
        ),
        issues_per_invocation: config::number_or(
            env,
            "ISSUES_PER_INVOCATION",
            scrape::DEFAULT_ISSUES_PER_INVOCATION,
        ),
        messages_per_invocation: config::number_or(
            env,
            "MESSAGES_PER_INVOCATION",
            scrape::DEFAULT_MESSAGES_PER_INVOCATION,
        ),
    }
    .clamp()
}

/// Start a run (cron or operator): one D1 batch, one queue send, one log.
pub async fn start(env: &Env, trigger: &str) -> Result<StartOutcome> {
    let run_id = new_id("run-");
    let invocation = new_id("inv-");
    let mut platform = WorkerPlatform::from_env(env)?;
    let mut p = Metered::new(&mut platform, budget(env));
    let mut book = log_book(env, &run_id, &invocation);
    let started = p.now_ms();
    let outcome = scrape::start_run(&mut p, &run_id, trigger, DEFAULT_SOURCE_ID, &mut book).await;
    let summary = match &outcome {
        Ok(o) => json!({"outcome": o, "subrequests_used": p.budget.used() + 1}),
        Err(e) => {
            json!({"outcome": "error", "error": e.to_string(), "subrequests_used": p.budget.used() + 1})
        }
    };
    book.push_summary(p.now_ms(), summary);
    let key = contribot_core::logrec::log_key("scraper", &run_id, started);
    let bucket = env.bucket("LOGS").ok();
    logs::write_log(&mut p, bucket.as_ref(), &key, &book).await;
    outcome.map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Consume the continuation queue (one message per invocation) or its
/// dead-letter queue (the run failed: record why).
pub async fn consume(batch: MessageBatch<Value>, env: &Env) -> Result<()> {
    let queue = batch.queue();
    let messages = batch.messages()?;
    if queue.ends_with("-dlq") {
        return apart(dead_letters(&messages, env, &queue)).await;
    }
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            // One continuation per invocation: each needs the whole budget.
            message.retry();
            continue;
        }
        match QueueMessage::parse(message.body()) {
            Ok(QueueMessage::ContinueScraping { cursor, .. }) => {
                match apart(advance(env, &message.id(), cursor)).await {
                    Ok(None) => message.ack(),
                    Ok(Some(delay)) => retry_after(message, delay),
                    Err(e) => {
                        worker::console_error!("scrape invocation failed, will retry: {e}");
                        retry_after(message, 5);
                    }
                }
            }
            Ok(other) => {
                let reason = format!("unexpected `{}` message on the scrape queue", other.kind());
                apart(settle_bad_message(env, &queue, message, &reason)).await;
            }
            Err(e) => apart(settle_bad_message(env, &queue, message, &e.reason())).await,
        }
    }
    Ok(())
}

fn retry_after(message: &worker::Message<Value>, delay_secs: u64) {
    message.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(delay_secs.min(43_200) as u32)
            .build(),
    );
}

/// Record a message that cannot be a continuation; ack it only once the
/// record is written, else it comes back (and ends in the DLQ, recorded).
async fn settle_bad_message(
    env: &Env,
    queue: &str,
    message: &worker::Message<Value>,
    reason: &str,
) {
    if record_bad_message(env, queue, &message.id(), message.body(), reason).await {
        message.ack();
    } else {
        retry_after(message, 30);
    }
}

/// One invocation; `Some(delay)` asks to retry the message after `delay`
/// seconds instead of acknowledging it.
async fn advance(
    env: &Env,
    message_id: &str,
    cursor: contribot_core::messages::ScrapeCursor,
) -> Result<Option<u64>> {
    let invocation = new_id("inv-");
    let mut platform = WorkerPlatform::from_env(env)?;
    let mut p = Metered::new(&mut platform, budget(env));
    let mut book = log_book(env, &cursor.run_id, &invocation);
    let auth = GithubAuth::new(config::var(env, "GITHUB_TOKEN"));
    let cfg = scrape_config(env);
    let started = p.now_ms();
    let result = scrape::run_invocation(
        &mut p,
        &cfg,
        &auth,
        &invocation,
        message_id,
        cursor.clone(),
        &mut book,
    )
    .await;
    let bucket = env.bucket("LOGS").ok();
    match result {
        Ok(report) => {
            let key = if report.log_key.is_empty() {
                contribot_core::logrec::log_key("scraper", &report.run_id, started)
            } else {
                report.log_key.clone()
            };
            let mut summary = scrape::summary_json(
                &report.counters,
                report.subrequests.max(p.budget.used() + 1),
                report.continued,
                report.duration_ms,
            );
            summary["outcome"] = json!(report.outcome);
            summary["phase"] = json!(report.phase);
            book.push_summary(p.now_ms(), summary);
            logs::write_log(&mut p, bucket.as_ref(), &key, &book).await;
            Ok(report.retry_message_after_secs)
        }
        Err(e) => {
            book.push(
                p.now_ms(),
                Level::Error,
                "invocation_failed",
                fields([("error", json!(e.to_string()))]),
            );
            book.push_summary(p.now_ms(), json!({"outcome": "error", "error": e.to_string(), "subrequests_used": p.budget.used() + 1, "continued": false}));
            let key = contribot_core::logrec::log_key("scraper", &cursor.run_id, started);
            logs::write_log(&mut p, bucket.as_ref(), &key, &book).await;
            Err(worker::Error::RustError(e.to_string()))
        }
    }
}

/// D1 writes of the dead-letter and bad-message paths: tried this often,
/// in place, before the message is handed back to the queue.
const RECORD_ATTEMPTS: u32 = 3;

async fn write_with_retries(
    db: &worker::D1Database,
    stmts: &[contribot_core::sql::Statement],
) -> std::result::Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=RECORD_ATTEMPTS {
        match contribot_edge::platform::run_batch(db, stmts).await {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        if attempt < RECORD_ATTEMPTS {
            worker::Delay::from(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Err(last)
}

/// A dead-lettered continuation fails its run — unless the run moved past
/// it (a duplicate) — and every dead letter is recorded. A message is
/// acknowledged only once its record is written.
async fn dead_letters(messages: &[worker::Message<Value>], env: &Env, queue: &str) -> Result<()> {
    let platform = WorkerPlatform::from_env(env)?;
    let now = contribot_edge::now_ms();
    for m in messages {
        let mut stmts = Vec::new();
        let reason = match QueueMessage::parse(m.body()) {
            Ok(QueueMessage::ContinueScraping { cursor, .. }) => {
                stmts.push(store::fail_run_at_seq(
                    &cursor.run_id,
                    cursor.seq,
                    "a continuation failed on every retry (dead-lettered)",
                    now,
                ));
                "continuation dead-lettered after its retries".to_string()
            }
            Ok(other) => format!("`{}` message dead-lettered", other.kind()),
            Err(e) => e.reason(),
        };
        stmts.push(store::record_dead_letter(
            queue,
            &m.id(),
            &m.body().to_string(),
            &reason,
            0,
            now,
        ));
        match write_with_retries(platform.db(), &stmts).await {
            Ok(()) => m.ack(),
            Err(e) => {
                worker::console_error!("could not record dead letter {}: {e}", m.id());
                retry_after(m, 60);
            }
        }
    }
    Ok(())
}

/// Record a bad message; `false` when the record could not be written.
async fn record_bad_message(env: &Env, queue: &str, id: &str, body: &Value, reason: &str) -> bool {
    let Ok(platform) = WorkerPlatform::from_env(env) else {
        return false;
    };
    let stmt = store::record_dead_letter(
        queue,
        id,
        &body.to_string(),
        reason,
        1,
        contribot_edge::now_ms(),
    );
    match write_with_retries(platform.db(), &[stmt]).await {
        Ok(()) => true,
        Err(e) => {
            worker::console_error!("could not record bad message {id}: {e}");
            false
        }
    }
}
