//! The warm-up world (`contribot_core::warm_up`) carries a whole scrape run
//! through every phase: the scraper's start-up warm-up relies on that, and a
//! drift between the world and the store's SQL or the GraphQL decoder shows
//! here, natively, instead of as a warm-up that quietly warms less.

#[allow(dead_code)]
mod support;

use contribot_core::budget::Budget;
use contribot_core::github::{GithubAuth, HttpRequest, HttpResponse};
use contribot_core::logrec::{Level, LogBook};
use contribot_core::messages::{QueueMessage, ScrapePhase};
use contribot_core::platform::{Metered, Platform, QueueName};
use contribot_core::process::{self, AiBinding, AiMode, Delivery, Pacing, ProcessConfig};
use contribot_core::scrape::{self, ScrapeConfig, StartOutcome};
use contribot_core::sql::{SqlValue, Statement};
use contribot_core::store;
use contribot_core::warm_up::{processing, World, ISSUES_PER_REPO, REPOS};
use serde_json::Value;
use support::block_on;

const NOW: i64 = 1_790_000_000_000;

/// The warm-up's stand-ins, natively: D1 and upstream answer from the
/// world (through JSON, as the JS stand-ins cross), and the queues record.
struct WarmUp {
    world: World,
    /// Every D1 batch, as its statements' SQL.
    batches: Vec<Vec<String>>,
    fetches: Vec<String>,
    scrape: Vec<QueueMessage>,
    processing: Vec<QueueMessage>,
}

fn param(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::from(*i as f64),
        SqlValue::Real(f) => Value::from(*f),
        SqlValue::Text(s) => Value::from(s.as_str()),
    }
}

impl Platform for WarmUp {
    async fn db_batch(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String> {
        let batch: Vec<(String, Vec<Value>)> = statements
            .iter()
            .map(|s| (s.sql.clone(), s.params.iter().map(param).collect()))
            .collect();
        self.batches
            .push(batch.iter().map(|(sql, _)| sql.clone()).collect());
        Ok(self.world.d1(&batch))
    }

    async fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
        self.fetches.push(request.url.clone());
        let (status, body) = self.world.http(&request.url, request.body.as_deref());
        Ok(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        })
    }

    async fn send_batch(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        _delay_secs: u64,
    ) -> Result<(), String> {
        match queue {
            QueueName::Scrape => self.scrape.extend_from_slice(messages),
            QueueName::Processing => self.processing.extend_from_slice(messages),
        }
        Ok(())
    }

    async fn sleep(&mut self, _ms: u64) {}

    fn now_ms(&self) -> i64 {
        NOW
    }
}

fn config() -> ScrapeConfig {
    ScrapeConfig {
        api_base: "https://api.github.com".into(),
        list_data_url:
            "https://raw.githubusercontent.com/MunGell/awesome-for-beginners/main/data.json".into(),
        list_readme_url:
            "https://raw.githubusercontent.com/MunGell/awesome-for-beginners/main/README.md".into(),
        repos_per_query: 50,
        max_inline_retries: 2,
        send_concurrency: 6,
        ai_upgrades_per_run: 2000,
        inactive_after_days: scrape::DEFAULT_INACTIVE_AFTER_DAYS,
        issues_per_invocation: scrape::DEFAULT_ISSUES_PER_INVOCATION,
        messages_per_invocation: scrape::DEFAULT_MESSAGES_PER_INVOCATION,
    }
    .clamp()
}

#[test]
fn a_whole_run_goes_cron_list_repos_drain_done_in_the_world() {
    let mut w = WarmUp {
        world: World::new(NOW),
        batches: Vec::new(),
        fetches: Vec::new(),
        scrape: Vec::new(),
        processing: Vec::new(),
    };
    let mut book = LogBook::new("run-w", "inv-w0", Level::Debug);
    let started = {
        let mut p = Metered::new(&mut w, Budget::new(45));
        block_on(scrape::start_run(
            &mut p,
            "run-w",
            "warm-up",
            "awesome-for-beginners",
            &mut book,
        ))
    };
    assert!(
        matches!(started, Ok(StartOutcome::Started { .. })),
        "{started:?}"
    );

    let auth = GithubAuth::new(Some("warm-up".into()));
    let mut phases = Vec::new();
    let mut totals = (0, 0, 0);
    let mut steps_prefetched = 0;
    let mut drains_prefetched = 0;
    for n in 1..=8 {
        let Some(QueueMessage::ContinueScraping { cursor, .. }) = w.scrape.pop() else {
            break;
        };
        phases.push(cursor.phase);
        let continued_repos = cursor.phase == ScrapePhase::Repos && cursor.after().is_some();
        let draining = cursor.phase == ScrapePhase::Drain;
        let batches_before = w.batches.len();
        let invocation = format!("inv-w{n}");
        let mut p = Metered::new(&mut w, Budget::new(45));
        let report = block_on(scrape::run_invocation(
            &mut p,
            &config(),
            &auth,
            &invocation,
            &format!("msg-{n}"),
            cursor,
            &mut book,
        ))
        .expect("invocation");
        totals.0 += report.counters.repos_seen;
        totals.1 += report.counters.issues_upserted;
        totals.2 += report.counters.messages_queued;
        if !report.continued {
            assert_eq!(report.outcome, "run completed", "{report:?}");
        }
        if continued_repos && report.counters.issues_upserted > 0 {
            // Two D1 calls: the claim, which carries the step's read, and
            // the close, which carries the step's commit.
            let mine = &w.batches[batches_before..];
            assert_eq!(mine.len(), 2, "{mine:?}");
            let read = store::step_read(Some(("warm", "")), 50);
            let claim = &mine[0];
            assert_eq!(claim.len(), 4 + read.len(), "{claim:?}");
            for (sent, want) in claim[4..].iter().zip(&read) {
                assert_eq!(sent, &want.sql);
            }
            let close = &mine[1];
            assert!(
                close.iter().any(|s| s.starts_with("INSERT INTO issues")),
                "the step's upsert: {close:?}"
            );
            assert!(
                close
                    .iter()
                    .rev()
                    .nth(1)
                    .is_some_and(|s| s.contains("UPDATE scrape_runs")),
                "{close:?}"
            );
            steps_prefetched += 1;
        }
        if draining && report.counters.messages_queued > 0 {
            // The outbox read rides on the claim, the marks on the close.
            let mine = &w.batches[batches_before..];
            assert_eq!(mine.len(), 2, "{mine:?}");
            assert!(
                mine[0]
                    .last()
                    .is_some_and(|s| s.contains("queued_hash IS NOT")),
                "{mine:?}"
            );
            assert!(
                mine[1][0].starts_with("UPDATE repos SET queued_hash")
                    || mine[1][0].starts_with("UPDATE issues SET queued_hash"),
                "{mine:?}"
            );
            drains_prefetched += 1;
        }
    }
    assert!(steps_prefetched >= 1, "a continued repos step: {phases:?}");
    assert!(drains_prefetched >= 1, "a drain invocation: {phases:?}");
    assert!(w.scrape.is_empty(), "the run ended: no continuation left");
    assert_eq!(phases.first(), Some(&ScrapePhase::List));
    assert!(
        phases.iter().filter(|p| **p == ScrapePhase::Repos).count() >= 2,
        "two repos steps: {phases:?}"
    );
    let issues = REPOS * ISSUES_PER_REPO;
    assert_eq!(
        totals,
        (REPOS as i64, issues as i64, (REPOS + issues) as i64),
        "repos seen, issues upserted, messages queued"
    );
    assert_eq!(
        w.processing.len(),
        REPOS + issues,
        "every repo and issue went to the processing queue"
    );
    assert!(w.fetches[0].ends_with("data.json"), "{:?}", w.fetches);
    assert_eq!(
        w.fetches.iter().filter(|u| u.ends_with("/graphql")).count(),
        REPOS / contribot_core::github::MAX_REPOS_PER_QUERY,
        "one whole query per repos step: {:?}",
        w.fetches
    );
}

/// Workers AI as the processor's warm-up stands it in: the world answers.
struct WorldAi {
    calls: usize,
}

impl AiBinding for WorldAi {
    async fn run(&mut self, _model: &str, input: &Value) -> Result<Value, String> {
        self.calls += 1;
        Ok(processing::ai(input))
    }
}

#[test]
fn the_processor_s_batch_goes_enrich_ai_validate_commit_in_the_world() {
    let mut w = WarmUp {
        world: World::new(NOW),
        batches: Vec::new(),
        fetches: Vec::new(),
        scrape: Vec::new(),
        processing: Vec::new(),
    };
    let mut ai = WorldAi { calls: 0 };
    let cfg = ProcessConfig {
        api_base: "https://api.github.com".into(),
        ai: AiMode::Binding {
            model: "@cf/meta/llama-3.1-8b-instruct-fp8-fast".into(),
        },
        pacing: Pacing::default(),
        ai_daily_cap: contribot_core::ai::DEFAULT_DAILY_NEURON_CAP,
    };
    let deliveries = processing::messages()
        .iter()
        .enumerate()
        .map(|(i, m)| Delivery {
            message_id: format!("warm-{i}"),
            body: serde_json::to_value(m).expect("a message"),
        })
        .collect();
    let mut book = LogBook::new("warm-up", "warm-up", Level::Debug);
    let mut p = Metered::new(&mut w, Budget::new(45));
    let report = block_on(process::process_batch(
        &mut p,
        &mut ai,
        &cfg,
        &GithubAuth::new(Some("warm-up".into())),
        process::Invocation {
            id: "warm-up",
            started_at: NOW,
            log_key: "logs/warm-up.jsonl",
        },
        deliveries,
        &mut book,
    ))
    .expect("the batch runs");
    // Both went the whole way, with AI and no fallback: the world's rows,
    // Enrich answer and AI answers are what the processor accepts.
    assert_eq!(
        (
            report.completed,
            report.failed,
            report.retried,
            report.fallbacks
        ),
        (2, 0, 0, 0),
        "{report:?}"
    );
    assert_eq!(report.ai_calls, 2, "a repo summary and an issue analysis");
    assert_eq!(ai.calls, 2);
    assert_eq!(report.github_requests, 1, "one Enrich query");
    assert_eq!(w.fetches.len(), 1, "{:?}", w.fetches);
}

#[test]
fn upstream_answers_are_what_the_decoders_accept() {
    let world = World::new(NOW);
    let (status, text) = world.http("https://example.test/data.json", None);
    assert_eq!(status, 200);
    let list = contribot_core::list::parse_data_json(&text).expect("data.json");
    assert_eq!(list.repos.len(), REPOS);
    let (_, readme) = world.http("https://example.test/README.md", None);
    let list = contribot_core::list::parse_readme(&readme).expect("README");
    assert_eq!(list.repos.len(), REPOS, "{readme}");
}
