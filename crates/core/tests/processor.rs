//! The processing workflow run natively: D1 on SQLite with `migrations/`
//! applied, GitHub answers and AI answers scripted per test, a clock that
//! moves only when the workflow sleeps. Each test names the behaviour it
//! pins down; counts are exact.

#[allow(dead_code)]
mod support;

use std::collections::VecDeque;

use contribot_core::budget::Budget;
use contribot_core::github::{GithubAuth, HttpRequest, HttpResponse};
use contribot_core::hash;
use contribot_core::logrec::{Level, LogBook};
use contribot_core::messages::QueueMessage;
use contribot_core::platform::{Metered, Platform, QueueName};
use contribot_core::process::{
    self, AiBinding, AiMode, BatchReport, Decision, Delivery, Outcome, Pacing, ProcessConfig,
};
use contribot_core::sql::{decode_packed, Statement};
use contribot_core::store;
use rusqlite::Connection;
use serde_json::{json, Value};
use support::{block_on, migrated, run, scalar, select};

const NOW: i64 = 1_750_000_000_000;
const MODEL: &str = "@cf/meta/llama-3.1-8b-instruct";

// ------------------------------------------------------------------ harness

/// A scraper write that lands while the batch is being enriched.
type Meanwhile = Box<dyn FnMut(&Connection)>;

/// D1 on SQLite; GitHub answers from a script; a clock moved by sleeps.
struct Local {
    conn: Connection,
    github: VecDeque<HttpResponse>,
    meanwhile: Option<Meanwhile>,
    fetches: usize,
    clock: i64,
    slept: Vec<u64>,
    /// D1 calls (1-based) that fail as a D1 outage would.
    failing_db_calls: Vec<usize>,
    db_calls: usize,
}

impl Local {
    fn new() -> Self {
        Local {
            conn: migrated(),
            github: VecDeque::new(),
            meanwhile: None,
            fetches: 0,
            clock: NOW,
            slept: Vec::new(),
            failing_db_calls: Vec::new(),
            db_calls: 0,
        }
    }
}

impl Platform for Local {
    async fn db_batch(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String> {
        self.db_calls += 1;
        if self.failing_db_calls.contains(&self.db_calls) {
            return Err("D1_ERROR: Network connection lost.".into());
        }
        support::try_run(&self.conn, statements).map(|r| r.rows)
    }

    async fn fetch(&mut self, _request: &HttpRequest) -> Result<HttpResponse, String> {
        self.fetches += 1;
        if let Some(f) = self.meanwhile.as_mut() {
            f(&self.conn);
        }
        self.github
            .pop_front()
            .ok_or_else(|| "no scripted GitHub answer left".to_string())
    }

    async fn send_batch(&mut self, _: QueueName, _: &[QueueMessage], _: u64) -> Result<(), String> {
        Err("the processor sends nothing".into())
    }

    async fn sleep(&mut self, ms: u64) {
        self.slept.push(ms);
        self.clock += ms as i64;
    }

    fn now_ms(&self) -> i64 {
        self.clock
    }
}

/// Workers AI from a script; once it runs out, every answer is valid.
#[derive(Default)]
struct ScriptedAi {
    script: VecDeque<Result<Value, String>>,
    calls: usize,
}

impl ScriptedAi {
    fn failing(n: usize, error: &str) -> Self {
        ScriptedAi {
            script: (0..n).map(|_| Err(error.to_string())).collect(),
            calls: 0,
        }
    }
}

impl AiBinding for ScriptedAi {
    async fn run(&mut self, _model: &str, input: &Value) -> Result<Value, String> {
        self.calls += 1;
        if let Some(next) = self.script.pop_front() {
            return next;
        }
        Ok(if input.get("response_format").is_some() {
            json!({"response": valid_analysis(), "usage": {"prompt_tokens": 400, "completion_tokens": 100}})
        } else {
            json!({"response": "A small library for parsing things. Contributors work with Rust and its tests."})
        })
    }
}

fn valid_analysis() -> Value {
    json!({
        "intro": "The settings screen misspells 'volume'; fix the string in the locale file.",
        "difficulty": 1,
        "first_steps": ["Find the string in the localisation files.", "Open a pull request."],
        "skills": ["Git"],
    })
}

fn config(ai: AiMode) -> ProcessConfig {
    ProcessConfig {
        api_base: "https://api.github.test".into(),
        ai,
        pacing: Pacing::default(),
        ai_daily_cap: contribot_core::ai::DEFAULT_DAILY_NEURON_CAP,
    }
}

fn binding() -> AiMode {
    AiMode::Binding {
        model: MODEL.into(),
    }
}

fn process(
    local: &mut Local,
    ai: &mut ScriptedAi,
    cfg: &ProcessConfig,
    messages: &[Value],
) -> (BatchReport, LogBook) {
    let mut log = LogBook::new("batch-1", "batch-1", Level::Debug);
    let deliveries = messages
        .iter()
        .enumerate()
        .map(|(i, body)| Delivery {
            message_id: format!("m{i}"),
            body: body.clone(),
        })
        .collect();
    let mut p = Metered::new(local, Budget::new(45));
    let auth = GithubAuth::new(Some("t".into()));
    let report = block_on(process::process_batch(
        &mut p,
        ai,
        cfg,
        &auth,
        process::Invocation {
            id: "batch-1",
            started_at: NOW,
            log_key: "logs/batch-1.jsonl",
        },
        deliveries,
        &mut log,
    ))
    .expect("the batch runs");
    (report, log)
}

// ------------------------------------------------------------------ rows

const REPO_HASH: &str = "repo-content-1";

/// One listed, scraped repo `o/r` whose content was queued.
fn seed_repo(conn: &Connection) -> i64 {
    run(
        conn,
        &[Statement::new(
            "INSERT INTO repos (owner, name, data_source, listed_labels, content_hash, queued_hash, \
             processing_status, created_at, updated_at) \
             VALUES ('o', 'r', 'awesome-for-beginners', '[\"good first issue\"]', ?1, ?1, 'completed', ?2, ?2)",
            vec![REPO_HASH.into(), NOW.into()],
        )],
    );
    scalar(conn, "SELECT id FROM repos WHERE owner = 'o'")
        .as_i64()
        .unwrap()
}

/// Open issue `o/r#number`, scraped with content `content` and queued.
fn seed_issue(conn: &Connection, repo_id: i64, number: i64, content: &str) {
    run(
        conn,
        &[Statement::new(
            "INSERT INTO issues (repo_id, number, title, url, state, content_hash, queued_hash, \
             processing_status, created_at, updated_at) \
             VALUES (?1, ?2, 'Fix the typo', 'https://github.com/o/r/issues/1', 'open', ?3, ?3, 'pending', ?4, ?4)",
            vec![repo_id.into(), number.into(), ch(content).into(), NOW.into()],
        )],
    );
}

/// A content hash for a test's tag (messages carry real SHA-256 hex).
fn ch(tag: &str) -> String {
    hash::text_hash(tag).0
}

fn issue_message(number: i64, content: &str) -> Value {
    QueueMessage::issue("o", "r", number, &ch(content), 1).to_json()
}

fn issue_row(conn: &Connection, number: i64) -> Value {
    select(
        conn,
        &format!("SELECT * FROM issues WHERE number = {number}"),
    )
    .remove(0)
}

/// The scraper's view of a content change: new hash, pending again, the
/// queued hash left as it was (the outbox compares the two).
fn scraper_edits_issue(conn: &Connection, number: i64, new_content: &str) {
    run(
        conn,
        &[Statement::new(
            "UPDATE issues SET title = 'Fix the typo (edited)', content_hash = ?2, processing_status = 'pending', \
             attempts = 0 WHERE number = ?1",
            vec![number.into(), ch(new_content).into()],
        )],
    );
}

// ------------------------------------------------------------------ GitHub answers

fn graphql(data: Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "data": data }).to_string(),
    }
}

fn issue_node(number: i64, title: &str, body: &str) -> Value {
    json!({"issue": {
        "number": number, "title": title, "body": body,
        "url": format!("https://github.com/o/r/issues/{number}"), "state": "OPEN",
        "updatedAt": "2025-06-01T00:00:00Z", "labels": {"nodes": [{"name": "good first issue"}]},
        "assignees": {"totalCount": 0}, "comments": {"totalCount": 2}
    }})
}

/// An enrich answer for issues `numbers` (aliases i0, i1, …).
fn issues_answer(numbers: &[i64], body: &str) -> HttpResponse {
    let mut data = serde_json::Map::new();
    data.insert(
        "rateLimit".into(),
        json!({"cost": 1, "remaining": 4999, "resetAt": "2025-06-01T01:00:00Z"}),
    );
    for (i, n) in numbers.iter().enumerate() {
        data.insert(format!("i{i}"), issue_node(*n, "Fix the typo", body));
    }
    graphql(Value::Object(data))
}

fn status(code: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

fn outcomes(report: &BatchReport) -> Vec<(Outcome, Decision)> {
    report
        .outcomes
        .iter()
        .map(|o| (o.outcome, o.decision.clone()))
        .collect()
}

fn outbox_keys(conn: &Connection) -> Vec<(String, Option<i64>, String)> {
    let rows = run(conn, &[store::outbox(100)]).remove(0);
    decode_packed::<store::OutboxRow>(&rows)
        .expect("outbox rows")
        .into_iter()
        .map(|r| (r.kind, r.number, r.content_hash))
        .collect()
}

// ------------------------------------------------------------------ lost update

#[test]
fn an_analysis_of_old_content_does_not_land_and_the_newer_content_is_queued_again() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    local
        .github
        .push_back(issues_answer(&[1], "The label says volumne."));
    // While the batch enriches and analyses content-a, the scraper stores content-b.
    local.meanwhile = Some(Box::new(|conn| scraper_edits_issue(conn, 1, "content-b")));
    let mut ai = ScriptedAi::default();
    let (report, _) = process(
        &mut local,
        &mut ai,
        &config(binding()),
        &[issue_message(1, "content-a")],
    );

    assert_eq!(
        outcomes(&report),
        vec![(Outcome::Superseded, Decision::Ack)]
    );
    assert_eq!(
        (report.superseded, report.completed, report.ai_calls),
        (1, 0, 1)
    );
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "pending");
    assert_eq!(row["content_hash"], ch("content-b"));
    assert_eq!(
        row["analysis_hash"],
        Value::Null,
        "the old analysis never landed"
    );
    assert_eq!(row["intro"], Value::Null);
    assert_eq!(
        outbox_keys(&local.conn),
        vec![("issue".to_string(), Some(1), ch("content-b"))],
        "the outbox hands the newer content to the queue"
    );
}

#[test]
fn an_analysis_of_the_content_still_stored_lands_with_its_provenance_and_text_hash() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    local
        .github
        .push_back(issues_answer(&[1], "The label says volumne."));
    let mut ai = ScriptedAi::default();
    let (report, _) = process(
        &mut local,
        &mut ai,
        &config(binding()),
        &[issue_message(1, "content-a")],
    );

    assert_eq!(outcomes(&report), vec![(Outcome::Completed, Decision::Ack)]);
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "completed");
    assert_eq!(row["analysis_hash"], ch("content-a"));
    assert_eq!(row["analysis_model"], MODEL);
    assert_eq!(row["body"], "The label says volumne.");
    assert_eq!(
        row["title"], "Fix the typo",
        "the title stays the scraper's"
    );
    assert_eq!(
        row["body_hash"],
        hash::analysed_text_hash("Fix the typo", "The label says volumne.").0
    );
    assert!(outbox_keys(&local.conn).is_empty());
}

// ------------------------------------------------------------------ same text, no AI

#[test]
fn a_requeued_issue_whose_fetched_text_was_already_analysed_keeps_its_analysis_without_ai() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    local.github.push_back(issues_answer(&[1], "Same body."));
    let mut ai = ScriptedAi::default();
    let cfg = config(binding());
    process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-a")]);
    assert_eq!(ai.calls, 1);
    let analysed = issue_row(&local.conn, 1);

    // `lastEditedAt` moved (an edit that changed nothing the analysis reads).
    scraper_edits_issue(&local.conn, 1, "content-b");
    run(
        &local.conn,
        &[Statement::new(
            "UPDATE issues SET title = 'Fix the typo' WHERE number = 1",
            vec![],
        )],
    );
    local.github.push_back(issues_answer(&[1], "Same body."));
    let (report, _) = process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-b")]);

    assert_eq!(outcomes(&report), vec![(Outcome::Reused, Decision::Ack)]);
    assert_eq!(
        (report.ai_calls, report.reused, report.completed),
        (0, 1, 1)
    );
    assert_eq!(ai.calls, 1, "no second AI call");
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "completed");
    assert_eq!(row["analysis_hash"], ch("content-b"));
    assert_eq!(row["intro"], analysed["intro"]);
    assert_eq!(row["analyzed_at"], analysed["analyzed_at"]);
}

#[test]
fn an_edited_body_is_analysed_again_exactly_once() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    let mut ai = ScriptedAi::default();
    let cfg = config(binding());
    local.github.push_back(issues_answer(&[1], "First body."));
    process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-a")]);

    scraper_edits_issue(&local.conn, 1, "content-b");
    run(
        &local.conn,
        &[Statement::new(
            "UPDATE issues SET title = 'Fix the typo' WHERE number = 1",
            vec![],
        )],
    );
    local.github.push_back(issues_answer(&[1], "Edited body."));
    let (report, _) = process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-b")]);
    assert_eq!(outcomes(&report), vec![(Outcome::Completed, Decision::Ack)]);
    // The same message again (a duplicate delivery): nothing to do.
    let (again, _) = process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-b")]);
    assert_eq!(
        outcomes(&again),
        vec![(Outcome::SkippedUnchanged, Decision::Ack)]
    );
    assert_eq!(ai.calls, 2, "one call per distinct text");
    assert_eq!(local.fetches, 2, "a skipped duplicate fetches nothing");
    assert_eq!(issue_row(&local.conn, 1)["body"], "Edited body.");
}

#[test]
fn a_heuristic_fallback_is_not_kept_when_ai_is_back() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    let cfg = config(binding());
    // AI gives invalid output twice: a labelled heuristic result.
    let mut ai = ScriptedAi {
        script: VecDeque::from([Ok(json!({"response": "no"})), Ok(json!({"response": "no"}))]),
        calls: 0,
    };
    local.github.push_back(issues_answer(&[1], "Body."));
    process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-a")]);
    assert_eq!(issue_row(&local.conn, 1)["analysis_model"], "heuristic-v1");

    // The upgrade pass re-queues it with the same text: AI answers this time.
    run(&local.conn, &store::requeue_heuristic_fallbacks(10, NOW));
    local.github.push_back(issues_answer(&[1], "Body."));
    let (report, _) = process(&mut local, &mut ai, &cfg, &[issue_message(1, "content-a")]);
    assert_eq!(outcomes(&report), vec![(Outcome::Completed, Decision::Ack)]);
    assert_eq!(ai.calls, 3);
    assert_eq!(issue_row(&local.conn, 1)["analysis_model"], MODEL);
}

// ------------------------------------------------------------------ transient AI failures

const CAPACITY: &str = "3040: Capacity temporarily exceeded, please try again.";

#[test]
fn an_ai_429_sends_the_message_back_with_backoff_and_the_rest_of_the_batch_without_calling() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    for n in 1..=3 {
        seed_issue(&local.conn, repo, n, &format!("content-{n}"));
    }
    local.github.push_back(issues_answer(&[1, 2, 3], "Body."));
    let mut ai = ScriptedAi::failing(1, CAPACITY);
    let msgs: Vec<Value> = (1..=3)
        .map(|n| issue_message(n, &format!("content-{n}")))
        .collect();
    let (report, _) = process(&mut local, &mut ai, &config(binding()), &msgs);

    let retry = (
        Outcome::Retry,
        Decision::Retry {
            delay_secs: process::QUEUE_BACKOFF_BASE_SECS,
        },
    );
    assert_eq!(outcomes(&report), vec![retry.clone(), retry.clone(), retry]);
    assert_eq!(
        (ai.calls, report.fallbacks),
        (1, 0),
        "one call, no heuristic"
    );
    for n in 1..=3 {
        let row = issue_row(&local.conn, n);
        assert_eq!(row["processing_status"], "pending");
        assert_eq!(row["analysis_model"], Value::Null);
        assert!(
            row["last_error"].as_str().unwrap().contains("Capacity"),
            "{row}"
        );
    }

    // The next delivery: AI answers; every item ends as AI output.
    local.github.push_back(issues_answer(&[1, 2, 3], "Body."));
    let (report, _) = process(&mut local, &mut ai, &config(binding()), &msgs);
    assert_eq!(report.completed, 3);
    for n in 1..=3 {
        assert_eq!(issue_row(&local.conn, n)["analysis_model"], MODEL);
    }
}

#[test]
fn the_queue_backoff_doubles_per_delivery_and_honours_retry_after() {
    use contribot_core::failure::Failure;
    let blip = Failure::transient("GitHub HTTP 502");
    let delays: Vec<u64> = (1..=4)
        .map(|n| process::queue_delay_secs(&blip, n, 0))
        .collect();
    assert_eq!(delays, vec![10, 20, 40, 80]);
    let secondary = Failure::Transient {
        reason: "GitHub secondary rate limit (HTTP 403)".into(),
        retry_after_secs: Some(60),
    };
    assert_eq!(process::queue_delay_secs(&secondary, 1, 0), 60);
    assert_eq!(process::queue_delay_secs(&secondary, 4, 0), 80);
    let reset = Failure::RateLimited {
        reason: "GitHub rate limit exhausted".into(),
        reset_epoch_secs: Some(1_000),
    };
    assert_eq!(process::queue_delay_secs(&reset, 1, 400), 600);
}

#[test]
fn on_its_last_delivery_an_item_ai_keeps_failing_gets_a_labelled_heuristic_result() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    let mut ai = ScriptedAi::failing(4, CAPACITY);
    let cfg = config(binding());
    let msg = [issue_message(1, "content-a")];
    let mut decisions = Vec::new();
    for _ in 0..4 {
        local.github.push_back(issues_answer(&[1], "Body."));
        let (report, _) = process(&mut local, &mut ai, &cfg, &msg);
        decisions.push(report.outcomes[0].decision.clone());
    }
    assert_eq!(
        decisions,
        vec![
            Decision::Retry { delay_secs: 10 },
            Decision::Retry { delay_secs: 20 },
            Decision::Retry { delay_secs: 40 },
            Decision::Ack,
        ]
    );
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "completed");
    assert_eq!(row["analysis_model"], "heuristic-v1");
    assert!(
        row["fallback_reason"]
            .as_str()
            .unwrap()
            .starts_with("AI kept failing on the message's last delivery"),
        "{row}"
    );
}

// ------------------------------------------------------------------ GitHub failures

/// An enrich answer where alias `i0` has no data and `error`, and `i1` is issue 2.
fn one_alias_failing(error: Value) -> HttpResponse {
    let body = json!({
        "data": {"i0": null, "i1": issue_node(2, "Fix the typo", "Body.")},
        "errors": [error]
    });
    status(200, &[], &body.to_string())
}

#[test]
fn a_forbidden_item_fails_at_once_with_githubs_reason_and_its_neighbour_completes() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    seed_issue(&local.conn, repo, 2, "content-2");
    local.github.push_back(one_alias_failing(json!({
        "type": "FORBIDDEN", "path": ["i0"],
        "message": "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization."
    })));
    let msgs = [issue_message(1, "content-1"), issue_message(2, "content-2")];
    let mut ai = ScriptedAi::default();
    let (report, _) = process(&mut local, &mut ai, &config(binding()), &msgs);
    assert_eq!(
        outcomes(&report),
        vec![
            (Outcome::Failed, Decision::Ack),
            (Outcome::Completed, Decision::Ack)
        ]
    );
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "failed");
    let reason = row["last_error"].as_str().unwrap();
    assert!(
        reason.contains("FORBIDDEN") && reason.contains("SAML"),
        "GitHub's reason is kept: {reason}"
    );
    assert_eq!(issue_row(&local.conn, 2)["processing_status"], "completed");
    assert_eq!(ai.calls, 1);
}

#[test]
fn a_timed_out_alias_is_retried_with_backoff_then_fails_with_githubs_reason_on_its_last_delivery() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    seed_issue(&local.conn, repo, 2, "content-2");
    let timeout = json!({
        "path": ["i0"],
        "message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."
    });
    let cfg = config(binding());
    let msgs = [issue_message(1, "content-1"), issue_message(2, "content-2")];
    let mut ai = ScriptedAi::default();
    let mut first = Vec::new();
    for _ in 1..=4 {
        local.github.push_back(one_alias_failing(timeout.clone()));
        let (report, _) = process(&mut local, &mut ai, &cfg, &msgs);
        first.push((
            report.outcomes[0].outcome,
            report.outcomes[0].decision.clone(),
        ));
    }
    assert_eq!(
        first,
        vec![
            (Outcome::Retry, Decision::Retry { delay_secs: 10 }),
            (Outcome::Retry, Decision::Retry { delay_secs: 20 }),
            (Outcome::Retry, Decision::Retry { delay_secs: 40 }),
            (Outcome::Failed, Decision::Ack),
        ]
    );
    let row = issue_row(&local.conn, 1);
    assert_eq!(row["processing_status"], "failed");
    let reason = row["last_error"].as_str().unwrap();
    assert!(reason.starts_with("gave up after 4 deliveries"), "{reason}");
    assert!(
        reason.contains("Something went wrong"),
        "GitHub's reason is kept: {reason}"
    );
    assert_eq!(
        ai.calls, 1,
        "the neighbour was analysed once and skipped after"
    );
}

#[test]
fn a_query_that_timed_out_as_a_whole_is_retried_not_failed() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    let data_null = json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `5C1A:3F2B` when reporting this issue."}]});
    // Twice in place (the inline retries), a third time: back to the queue.
    for _ in 0..3 {
        local
            .github
            .push_back(status(200, &[], &data_null.to_string()));
    }
    let (report, _) = process(
        &mut local,
        &mut ScriptedAi::default(),
        &config(AiMode::Heuristic),
        &[issue_message(1, "content-1")],
    );
    assert_eq!(report.github_requests, 3);
    assert_eq!(
        outcomes(&report),
        vec![(Outcome::Retry, Decision::Retry { delay_secs: 10 })]
    );
    assert_eq!(issue_row(&local.conn, 1)["processing_status"], "pending");
}

#[test]
fn a_secondary_rate_limit_waits_in_place_when_short_and_through_the_queue_when_long() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    let limited = |secs: &str| {
        status(
            403,
            &[("retry-after", secs)],
            r#"{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
        )
    };
    let cfg = config(AiMode::Heuristic);
    let msg = [issue_message(1, "content-1")];
    // Short: waited out in place, then answered.
    local
        .github
        .extend([limited("3"), issues_answer(&[1], "Body.")]);
    let (report, _) = process(&mut local, &mut AiScriptless::ai(), &cfg, &msg);
    assert_eq!(outcomes(&report), vec![(Outcome::Completed, Decision::Ack)]);
    assert_eq!(report.github_requests, 2);
    assert_eq!(local.slept[0], 3_000, "retry-after honoured in place");

    // Long: the message goes back to the queue for as long as GitHub asked.
    scraper_edits_issue(&local.conn, 1, "content-2");
    local.github.push_back(limited("120"));
    let (report, _) = process(
        &mut local,
        &mut AiScriptless::ai(),
        &cfg,
        &[issue_message(1, "content-2")],
    );
    assert_eq!(
        outcomes(&report),
        vec![(Outcome::Retry, Decision::Retry { delay_secs: 120 })]
    );
}

/// A binding for the heuristic backend, which never calls it.
struct AiScriptless;
impl AiScriptless {
    fn ai() -> ScriptedAi {
        ScriptedAi::default()
    }
}

// ------------------------------------------------------------------ pacing

#[test]
fn ai_calls_of_one_invocation_are_spaced_by_its_share_of_the_per_minute_limit() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    for n in 1..=3 {
        seed_issue(&local.conn, repo, n, &format!("content-{n}"));
    }
    local.github.push_back(issues_answer(&[1, 2, 3], "Body."));
    let mut ai = ScriptedAi::default();
    let mut cfg = config(binding());
    cfg.pacing = Pacing {
        ai_calls_per_minute: 120,
        github_points_per_minute: 1_500,
        consumers: 4,
    };
    let msgs: Vec<Value> = (1..=3)
        .map(|n| issue_message(n, &format!("content-{n}")))
        .collect();
    let (report, _) = process(&mut local, &mut ai, &cfg, &msgs);
    assert_eq!(report.ai_calls, 3);
    // 4 consumers sharing 120 calls a minute: one call per 2 s each. The
    // GitHub hold (160 ms for its one point) has passed by then.
    assert_eq!(local.slept, vec![2_000, 2_000]);
}

#[test]
fn a_fast_batch_holds_its_slot_for_its_share_of_github_points() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    local.github.push_back(issues_answer(&[1], "Body."));
    let cfg = config(AiMode::Heuristic);
    let (report, _) = process(
        &mut local,
        &mut ScriptedAi::default(),
        &cfg,
        &[issue_message(1, "content-1")],
    );
    assert_eq!(report.github_requests, 1);
    // 1,500 points a minute over 4 consumers: 375 each, 160 ms per point.
    assert_eq!(local.slept, vec![160]);
}

// ------------------------------------------------------------------ D1 blips

#[test]
fn a_d1_blip_on_the_commit_is_retried_in_place_without_asking_ai_again() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    local.github.push_back(issues_answer(&[1], "Body."));
    // D1 calls: the state read, the neuron reservation, the commit (fails), the commit again.
    local.failing_db_calls = vec![3];
    let mut ai = ScriptedAi::default();
    let (report, log) = process(
        &mut local,
        &mut ai,
        &config(binding()),
        &[issue_message(1, "content-1")],
    );
    assert_eq!(outcomes(&report), vec![(Outcome::Completed, Decision::Ack)]);
    assert_eq!(
        (ai.calls, local.db_calls),
        (1, 4),
        "no ledger rewrite: the retry carried its own count"
    );
    let (subrequests, _, summary) = ledger_row(&local.conn);
    assert_eq!(subrequests, 7);
    assert_eq!(summary["subrequests_used"], json!(7));
    assert_eq!(
        log.records()
            .iter()
            .filter(|r| r.event == "commit_retry")
            .count(),
        1
    );
    assert_eq!(issue_row(&local.conn, 1)["processing_status"], "completed");
}

// ------------------------------------------------------------------ the ledger row

/// The batch's row in `invocations`: subrequests, outcome and summary.
fn ledger_row(conn: &Connection) -> (i64, String, Value) {
    let rows = select(
        conn,
        "SELECT subrequests, outcome, summary FROM invocations WHERE id = 'batch-1'",
    );
    assert_eq!(rows.len(), 1, "one ledger row: {rows:?}");
    let summary = serde_json::from_str(rows[0]["summary"].as_str().expect("a summary"))
        .expect("the summary is JSON");
    (
        rows[0]["subrequests"].as_i64().expect("a count"),
        rows[0]["outcome"].as_str().expect("an outcome").to_string(),
        summary,
    )
}

#[test]
fn the_ledger_row_rides_in_the_commit_and_counts_the_r2_log_still_to_come() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-1");
    local.github.push_back(issues_answer(&[1], "Body."));
    let mut ai = ScriptedAi::default();
    process(
        &mut local,
        &mut ai,
        &config(binding()),
        &[issue_message(1, "content-1")],
    );
    // D1: the state read, the neuron reservation, the commit (with the row).
    assert_eq!(local.db_calls, 3);
    let (subrequests, outcome, summary) = ledger_row(&local.conn);
    // 3 D1 calls, 1 GraphQL query, 1 AI call, then the R2 log.
    assert_eq!(subrequests, 6);
    assert_eq!(outcome, "1 acked, 0 retried");
    assert_eq!(
        (
            &summary["messages"],
            &summary["completed"],
            &summary["superseded"]
        ),
        (&json!(1), &json!(1), &json!(0))
    );
    assert_eq!(summary["subrequests_used"], json!(6));
}

#[test]
fn a_superseded_write_rewrites_the_ledger_row_with_the_final_counts() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn);
    seed_issue(&local.conn, repo, 1, "content-a");
    local.github.push_back(issues_answer(&[1], "Body."));
    local.meanwhile = Some(Box::new(|conn| scraper_edits_issue(conn, 1, "content-b")));
    let mut ai = ScriptedAi::default();
    let (report, _) = process(
        &mut local,
        &mut ai,
        &config(binding()),
        &[issue_message(1, "content-a")],
    );
    assert_eq!(report.superseded, 1);
    // The commit, then the row again with what really happened.
    assert_eq!(local.db_calls, 4);
    let (subrequests, outcome, summary) = ledger_row(&local.conn);
    assert_eq!(subrequests, 7);
    assert_eq!(outcome, "1 acked, 0 retried");
    assert_eq!(
        (&summary["completed"], &summary["superseded"]),
        (&json!(0), &json!(1))
    );
}

/// A batch's state read is three statements however many messages it has
/// (deliveries, repos, issues), and counts each message's deliveries.
#[test]
fn a_batch_reads_its_state_in_three_statements_and_counts_each_delivery() {
    let conn = migrated();
    let repo = seed_repo(&conn);
    for n in 1..=9 {
        seed_issue(&conn, repo, n, "c");
    }
    let mut bodies: Vec<Value> = (1..=9).map(|n| issue_message(n, "c")).collect();
    bodies.push(QueueMessage::repo("o", "r", &ch("repo"), 1).to_json());
    let deliveries = |ids: &[&str]| {
        let all: Vec<Delivery> = ids
            .iter()
            .zip(&bodies)
            .map(|(id, body)| Delivery {
                message_id: id.to_string(),
                body: body.clone(),
            })
            .collect();
        process::parse(all)
    };
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let first = process::read_state(&deliveries(&ids), NOW);
    assert_eq!(first.statements.len(), 3);
    let stored = process::decode_state(&first, &run(&conn, &first.statements)).unwrap();
    assert_eq!(stored.attempts, vec![1; 10]);
    assert_eq!(stored.repos.keys().collect::<Vec<_>>(), ["o/r"]);
    assert_eq!(stored.issues.len(), 9);
    assert_eq!(stored.issues["o/r#3"].content_hash, ch("c"));
    // m4 and m7 come back with a new message between them.
    let again = process::read_state(&deliveries(&["m4", "m-new", "m7"]), NOW);
    let stored = process::decode_state(&again, &run(&conn, &again.statements)).unwrap();
    assert_eq!(stored.attempts, [2, 1, 2]);
}
