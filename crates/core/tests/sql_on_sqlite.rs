//! Every D1 statement the core builds, run on SQLite with `migrations/`
//! applied, and the scrape planner's decisions checked against the rows they
//! produce. Every batch goes through `support::try_run`, which also checks
//! D1's limits (≤ 100 bound parameters, placeholders = parameters) for each
//! statement it executes.

#[allow(dead_code)]
mod support;

use contribot_core::admin;
use contribot_core::failure::Failure;
use contribot_core::github::{IssueMeta, IssuePage, RepoOutcome, RepoState};
use contribot_core::hash::{self, IssueHashInput, RepoHashInput};
use contribot_core::list::{ListedRepo, ParsedList};
use contribot_core::scrape::{plan_list_sync, plan_step, RepoWork, StepPlan, WorkStatus};
use contribot_core::slug::RepoSlug;
use contribot_core::sql::{decode_packed, decode_rows, SqlValue, Statement, MAX_BOUND_PARAMS};
use contribot_core::store::{
    self, AttemptsRow, InvocationRecord, IssueHashRow, IssueWrite, ListedRow, ListedWrite,
    OutboxRow, RepoRow, RepoWrite, RunCounters, RunProgress, RunRow, SourceRow,
};
use rusqlite::Connection;
use serde_json::{json, Value};
use support::{assert_d1_shape, migrated, run, run_counted, scalar, select, try_run, written};

const NOW: i64 = 1_750_000_000_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const SOURCE: &str = "awesome-for-beginners";
const LABEL: &str = "good first issue";

// ------------------------------------------------------------------ helpers

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn listed(owner: &str, name: &str, position: i64, labels: &[&str]) -> ListedWrite {
    let labels = strings(labels);
    let technologies = strings(&["Rust"]);
    let description = Some(format!("{owner}/{name}, for beginners"));
    ListedWrite {
        owner: owner.to_string(),
        name: name.to_string(),
        position,
        labels_json: serde_json::to_string(&labels).unwrap(),
        technologies_json: serde_json::to_string(&technologies).unwrap(),
        list_hash: hash::list_entry_hash(&labels, &technologies, description.as_deref()),
        description,
    }
}

/// `n` listed repos, `owner000/repo-0` …, in list order.
fn many_listed(n: usize) -> Vec<ListedWrite> {
    (0..n)
        .map(|i| {
            listed(
                &format!("owner{i:03}"),
                &format!("repo-{i}"),
                i as i64,
                &[LABEL],
            )
        })
        .collect()
}

fn seed_listed(conn: &Connection, rows: &[ListedWrite]) {
    run(conn, &store::upsert_listed(SOURCE, rows, NOW));
}

fn listed_rows(conn: &Connection) -> Vec<ListedRow> {
    decode_rows(&run(conn, &[store::repos_of_source(SOURCE)])[0]).unwrap()
}

fn id_of(conn: &Connection, owner: &str, name: &str) -> i64 {
    let v = scalar(
        conn,
        &format!("SELECT id FROM repos WHERE owner = '{owner}' AND name = '{name}'"),
    );
    v.as_i64()
        .unwrap_or_else(|| panic!("no repo {owner}/{name}"))
}

fn issue_write(repo_id: i64, number: i64, title: &str, priority: i64) -> IssueWrite {
    let labels = strings(&[LABEL]);
    let updated_at = "2025-06-01T12:00:00Z";
    let created_at = "2025-05-01T12:00:00Z";
    let input = IssueHashInput {
        title,
        state: "open",
        labels: &labels,
        assignee_count: 0,
        comment_count: 2,
        linked_pr_count: 0,
        created_at,
        updated_at,
        last_edited_at: None,
        availability: "ok",
    };
    IssueWrite {
        repo_id,
        number,
        title: title.to_string(),
        url: format!("https://github.com/o/r/issues/{number}"),
        state: "open".to_string(),
        labels_json: serde_json::to_string(&labels).unwrap(),
        assignee_count: 0,
        comment_count: 2,
        linked_pr_count: 0,
        created_at: created_at.to_string(),
        updated_at: updated_at.to_string(),
        last_edited_at: None,
        state_hash: hash::issue_state_hash(&input),
        content_hash: hash::issue_content_hash(&input),
        priority,
        availability: "ok".to_string(),
    }
}

fn repo_write(id: i64, description: &str, stars: i64, label: Option<&str>) -> RepoWrite {
    let input = RepoHashInput {
        name_with_owner: "o/r",
        description: Some(description),
        primary_language: Some("Rust"),
        stars,
        is_archived: false,
        pushed_at: Some("2025-06-01T00:00:00Z"),
        resolved_label: label,
    };
    RepoWrite {
        id,
        name_with_owner: "o/r".to_string(),
        description: Some(description.to_string()),
        primary_language: Some("Rust".to_string()),
        stars,
        is_archived: false,
        pushed_at: Some("2025-06-01T00:00:00Z".to_string()),
        label_status: if label.is_some() {
            "resolved"
        } else {
            "not_found"
        }
        .to_string(),
        resolved_label: label.map(str::to_string),
        state_hash: hash::repo_state_hash(&input),
        content_hash: hash::repo_content_hash(&input),
        priority: 10,
    }
}

fn repo_column(conn: &Connection, id: i64, column: &str) -> Value {
    scalar(conn, &format!("SELECT {column} FROM repos WHERE id = {id}"))
}

fn issue_column(conn: &Connection, repo_id: i64, number: i64, column: &str) -> Value {
    scalar(
        conn,
        &format!("SELECT {column} FROM issues WHERE repo_id = {repo_id} AND number = {number}"),
    )
}

fn run_column(conn: &Connection, run_id: &str, column: &str) -> Value {
    scalar(
        conn,
        &format!("SELECT {column} FROM scrape_runs WHERE id = '{run_id}'"),
    )
}

fn active_run(conn: &Connection) -> Option<RunRow> {
    decode_rows::<RunRow>(&run(conn, &[store::active_run()])[0])
        .unwrap()
        .into_iter()
        .next()
}

fn outbox(conn: &Connection, limit: usize) -> Vec<OutboxRow> {
    decode_packed(&run(conn, &[store::outbox(limit)])[0]).unwrap()
}

fn outbox_keys(rows: &[OutboxRow]) -> Vec<String> {
    rows.iter()
        .map(|r| match r.number {
            Some(n) => format!("{}/{}#{n}", r.owner, r.name),
            None => format!("{}/{}", r.owner, r.name),
        })
        .collect()
}

fn counters(n: i64) -> RunCounters {
    RunCounters {
        repos_seen: n,
        repos_changed: n,
        repos_skipped: n,
        issues_upserted: n,
        issues_closed: n,
        messages_queued: n,
        github_requests: n,
        graphql_points: n,
    }
}

fn start(conn: &Connection, run_id: &str, now: i64) -> u64 {
    let result = run_counted(conn, &store::start_run(run_id, "cron", SOURCE, now));
    *result.changes.last().unwrap()
}

/// The invocation the run tests advance runs as.
const INV: &str = "inv-test";

/// Take `run_id`'s lease for [`INV`] (as a claim would), and name it.
fn lease(conn: &Connection, run_id: &str) -> &'static str {
    run(
        conn,
        &[store::take_lease(run_id, INV, "msg-test", u32::MAX, NOW)],
    );
    INV
}

// ------------------------------------------------------------------ schema

#[test]
fn migrations_apply_and_seed_both_data_sources() {
    let conn = migrated();
    let sources = select(&conn, "SELECT id, kind FROM data_sources ORDER BY id");
    assert_eq!(
        sources,
        vec![
            json!({"id": "awesome-for-beginners", "kind": "awesome_list"}),
            json!({"id": "manual", "kind": "manual"})
        ]
    );
}

#[test]
fn a_failing_statement_rolls_the_whole_batch_back() {
    let conn = migrated();
    let batch = vec![
        store::count_delivery("scrape", "m1", NOW),
        Statement::new("INSERT INTO no_such_table VALUES (1)", vec![]),
    ];
    assert!(try_run(&conn, &batch).is_err());
    assert_eq!(scalar(&conn, "SELECT COUNT(*) FROM deliveries"), 0);
}

// ------------------------------------------------------------------ runs

#[test]
fn start_run_starts_a_run_when_none_is_active() {
    let conn = migrated();
    assert_eq!(active_run(&conn), None);
    assert_eq!(start(&conn, "run-1", NOW), 1);
    let run = active_run(&conn).expect("a running run");
    assert_eq!(
        run,
        RunRow {
            id: "run-1".into(),
            trigger: "cron".into(),
            data_source: SOURCE.into(),
            started_at: NOW,
            status: "running".into(),
            cursor: None,
            invocations: 0,
            last_progress_at: Some(NOW),
            lease_id: None,
            lease_until: None,
            failure_attempts: 0,
            error: None,
        }
    );
    let by_id: Vec<RunRow> = decode_rows(&run_rows(&conn, "run-1")).unwrap();
    assert_eq!(by_id, vec![run]);
    assert!(run_rows(&conn, "run-unknown").is_empty());
}

fn run_rows(conn: &Connection, run_id: &str) -> Vec<Value> {
    run(conn, &[store::run_by_id(run_id)]).remove(0)
}

#[test]
fn second_start_while_a_run_is_active_starts_nothing() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    assert_eq!(start(&conn, "run-2", NOW + HOUR), 0);
    assert_eq!(active_run(&conn).unwrap().id, "run-1");
    assert!(run_rows(&conn, "run-2").is_empty());
    assert_eq!(run_column(&conn, "run-1", "status"), "running");
}

#[test]
fn stale_run_is_failed_and_a_new_one_starts() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let later = NOW + store::STALE_RUN_MS + 1;
    assert_eq!(start(&conn, "run-2", later), 1);
    assert_eq!(run_column(&conn, "run-1", "status"), "failed");
    assert_eq!(run_column(&conn, "run-1", "finished_at"), later);
    assert!(run_column(&conn, "run-1", "error")
        .as_str()
        .unwrap()
        .starts_with("stalled"));
    assert_eq!(active_run(&conn).unwrap().id, "run-2");
}

#[test]
fn a_live_lease_passes_only_to_a_later_delivery_of_the_same_message() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let take = |invocation: &str, message: &str, at: i64| {
        run(
            &conn,
            &[store::take_lease("run-1", invocation, message, 0, at)],
        )[0]
        .len()
    };
    assert_eq!(take("inv-a", "msg-1", NOW), 1);
    // A duplicate continuation (another message) waits for the live lease.
    assert_eq!(take("inv-b", "msg-2", NOW + 1), 0);
    assert_eq!(run_column(&conn, "run-1", "lease_id"), "inv-a");
    // msg-1 redelivered: its first delivery has ended, the lease passes on.
    assert_eq!(take("inv-c", "msg-1", NOW + 2), 1);
    assert_eq!(run_column(&conn, "run-1", "lease_id"), "inv-c");
    // Once it expires, any delivery may take it.
    assert_eq!(take("inv-d", "msg-2", NOW + 2 + store::LEASE_MS + 1), 1);
}

#[test]
fn run_exactly_at_the_stale_limit_is_kept() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    assert_eq!(start(&conn, "run-2", NOW + store::STALE_RUN_MS), 0);
    assert_eq!(run_column(&conn, "run-1", "status"), "running");
}

#[test]
fn continuing_keeps_the_run_running_with_its_cursor() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let progress = RunProgress::Continuing {
        cursor_json: r#"{"seq":1}"#.into(),
        failure_attempts: 0,
    };
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(1),
            20,
            &progress,
            NOW + MINUTE,
        )],
    );
    let run = active_run(&conn).unwrap();
    assert_eq!(run.status, "running");
    assert_eq!(run.cursor.as_deref(), Some(r#"{"seq":1}"#));
    assert_eq!(run_column(&conn, "run-1", "finished_at"), Value::Null);
    assert_eq!(run_column(&conn, "run-1", "continuations"), 1);
    assert_eq!(run_column(&conn, "run-1", "invocations"), 1);
}

#[test]
fn completing_adds_every_counter_and_finishes_the_run() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let cont = RunProgress::Continuing {
        cursor_json: r#"{"seq":1}"#.into(),
        failure_attempts: 0,
    };
    let done = RunProgress::Completed {
        outcome: "completed".into(),
    };
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(2),
            30,
            &cont,
            NOW + MINUTE,
        )],
    );
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(3),
            45,
            &done,
            NOW + 2 * MINUTE,
        )],
    );
    let row = &select(&conn, "SELECT * FROM scrape_runs WHERE id = 'run-1'")[0];
    for c in [
        "repos_seen",
        "repos_changed",
        "repos_skipped",
        "issues_upserted",
        "issues_closed",
        "messages_queued",
        "github_requests",
        "graphql_points",
    ] {
        assert_eq!(row[c], 5, "{c} adds up");
    }
    assert_eq!(row["status"], "completed");
    assert_eq!(row["outcome"], "completed");
    assert_eq!(row["finished_at"], NOW + 2 * MINUTE);
    assert_eq!(row["invocations"], 2);
    assert_eq!(row["continuations"], 1);
    assert_eq!(row["subrequests_used"], 75);
    assert_eq!(row["error"], Value::Null);
    // The last cursor stays for the record.
    assert_eq!(row["cursor"], r#"{"seq":1}"#);
    assert_eq!(active_run(&conn), None);
}

#[test]
fn max_subrequests_is_the_largest_single_invocation() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let cont = RunProgress::Continuing {
        cursor_json: "{}".into(),
        failure_attempts: 0,
    };
    for used in [40, 49, 12] {
        run(
            &conn,
            &[store::advance_run(
                "run-1",
                lease(&conn, "run-1"),
                &RunCounters::default(),
                used,
                &cont,
                NOW,
            )],
        );
    }
    assert_eq!(run_column(&conn, "run-1", "max_subrequests"), 49);
    assert_eq!(run_column(&conn, "run-1", "subrequests_used"), 101);
}

#[test]
fn failed_progress_ends_the_run_failed_with_its_error() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let failed = RunProgress::Failed {
        error: "GitHub token rejected".into(),
    };
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(1),
            5,
            &failed,
            NOW + MINUTE,
        )],
    );
    assert_eq!(run_column(&conn, "run-1", "status"), "failed");
    assert_eq!(run_column(&conn, "run-1", "error"), "GitHub token rejected");
    assert_eq!(run_column(&conn, "run-1", "finished_at"), NOW + MINUTE);
}

#[test]
fn a_finished_run_is_not_advanced_again() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let done = RunProgress::Completed {
        outcome: "completed".into(),
    };
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(1),
            5,
            &done,
            NOW + MINUTE,
        )],
    );
    let late = RunProgress::Continuing {
        cursor_json: r#"{"seq":9}"#.into(),
        failure_attempts: 0,
    };
    let batch = run_counted(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(7),
            5,
            &late,
            NOW + 2 * MINUTE,
        )],
    );
    assert_eq!(batch.written(), 0);
    assert_eq!(run_column(&conn, "run-1", "status"), "completed");
    assert_eq!(run_column(&conn, "run-1", "repos_seen"), 1);
}

/// The list phase keeps the last good repo set when the list cannot be read,
/// notes the reason on the run and carries on; the run must still end
/// `failed` with that reason when its last invocation completes.
#[test]
fn run_whose_list_failed_ends_failed_with_its_reason() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    let reason = "list unavailable, kept the last good repo set: data.json fetch failed: HTTP 503";
    // The statement `scrape::list_phase` runs when the list is unusable.
    run(&conn, &[store::note_run_error("run-1", reason)]);
    let cont = RunProgress::Continuing {
        cursor_json: r#"{"seq":1}"#.into(),
        failure_attempts: 0,
    };
    let done = RunProgress::Completed {
        outcome: "completed".into(),
    };
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(1),
            10,
            &cont,
            NOW + MINUTE,
        )],
    );
    assert_eq!(
        run_column(&conn, "run-1", "status"),
        "running",
        "a noted error does not stop the run"
    );
    run(
        &conn,
        &[store::advance_run(
            "run-1",
            lease(&conn, "run-1"),
            &counters(1),
            10,
            &done,
            NOW + 2 * MINUTE,
        )],
    );
    assert_eq!(run_column(&conn, "run-1", "error"), reason);
    assert_eq!(run_column(&conn, "run-1", "finished_at"), NOW + 2 * MINUTE);
    assert_eq!(
        run_column(&conn, "run-1", "status"),
        "failed",
        "a run whose list failed must end failed"
    );
}

#[test]
fn fail_run_ends_only_a_running_run() {
    let conn = migrated();
    start(&conn, "run-1", NOW);
    assert_eq!(
        written(
            &conn,
            &[store::fail_run("run-1", "dead-lettered", NOW + MINUTE)]
        ),
        1
    );
    assert_eq!(run_column(&conn, "run-1", "status"), "failed");
    assert_eq!(run_column(&conn, "run-1", "error"), "dead-lettered");
    assert_eq!(run_column(&conn, "run-1", "finished_at"), NOW + MINUTE);
    // Already finished: nothing changes, the first reason stays.
    assert_eq!(
        written(&conn, &[store::fail_run("run-1", "again", NOW + HOUR)]),
        0
    );
    assert_eq!(run_column(&conn, "run-1", "error"), "dead-lettered");
    // A failed run no longer blocks a new one.
    assert_eq!(start(&conn, "run-2", NOW + HOUR), 1);
}

#[test]
fn record_invocation_writes_one_ledger_row_per_invocation() {
    let conn = migrated();
    let mut rec = InvocationRecord {
        id: "inv-1".into(),
        service: "scraper",
        run_id: Some("run-1".into()),
        started_at: NOW,
        finished_at: NOW + 5_000,
        subrequests: 47,
        budget: 50,
        outcome: "continuing in 0s: subrequest budget reached".into(),
        summary_json: r#"{"repos_seen":25}"#.into(),
        log_key: Some("logs/scraper/run-1/1.jsonl".into()),
    };
    run(&conn, &[store::record_invocation(&rec)]);
    let row = &select(&conn, "SELECT * FROM invocations")[0];
    assert_eq!(
        row,
        &json!({
            "id": "inv-1", "service": "scraper", "run_id": "run-1", "started_at": NOW,
            "finished_at": NOW + 5_000, "subrequests": 47, "budget": 50,
            "outcome": "continuing in 0s: subrequest budget reached",
            "summary": r#"{"repos_seen":25}"#, "log_key": "logs/scraper/run-1/1.jsonl"
        })
    );
    // Recording the same invocation again replaces its row.
    rec.subrequests = 49;
    rec.run_id = None;
    rec.log_key = None;
    run(&conn, &[store::record_invocation(&rec)]);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) FROM invocations"), 1);
    assert_eq!(scalar(&conn, "SELECT subrequests FROM invocations"), 49);
    assert_eq!(scalar(&conn, "SELECT run_id FROM invocations"), Value::Null);
}

#[test]
fn unknown_service_is_rejected_by_the_schema() {
    let conn = migrated();
    let rec = InvocationRecord {
        id: "inv-1".into(),
        service: "cron",
        run_id: None,
        started_at: NOW,
        finished_at: NOW,
        subrequests: 0,
        budget: 50,
        outcome: "x".into(),
        summary_json: "{}".into(),
        log_key: None,
    };
    assert!(try_run(&conn, &[store::record_invocation(&rec)]).is_err());
}

#[test]
fn dead_letter_is_recorded_once_per_message() {
    let conn = migrated();
    run(
        &conn,
        &[store::record_dead_letter(
            "processing",
            "m1",
            "{\"type\":\"x\"}",
            "unknown type",
            1,
            NOW,
        )],
    );
    run(
        &conn,
        &[store::record_dead_letter(
            "processing",
            "m1",
            "{\"type\":\"x\"}",
            "unknown type `x`",
            3,
            NOW + 1,
        )],
    );
    run(
        &conn,
        &[store::record_dead_letter(
            "scrape",
            "m1",
            "{}",
            "other queue",
            1,
            NOW,
        )],
    );
    let rows = select(
        &conn,
        "SELECT queue, message_id, reason, attempts, received_at FROM dead_letters ORDER BY queue",
    );
    assert_eq!(
        rows,
        vec![
            json!({"queue": "processing", "message_id": "m1", "reason": "unknown type `x`", "attempts": 3, "received_at": NOW}),
            json!({"queue": "scrape", "message_id": "m1", "reason": "other queue", "attempts": 1, "received_at": NOW}),
        ]
    );
}

#[test]
fn dead_letter_body_is_kept_but_bounded() {
    let conn = migrated();
    let body = "é".repeat(10_000);
    run(
        &conn,
        &[store::record_dead_letter(
            "processing",
            "m1",
            &body,
            "too big",
            1,
            NOW,
        )],
    );
    let kept = scalar(&conn, "SELECT body FROM dead_letters");
    assert_eq!(kept.as_str().unwrap().chars().count(), 4096);
}

#[test]
fn count_delivery_returns_attempts_one_then_two() {
    let conn = migrated();
    let attempts = |queue: &str, id: &str, now: i64| -> i64 {
        let rows = run(&conn, &[store::count_delivery(queue, id, now)]);
        let decoded: Vec<AttemptsRow> = decode_rows(&rows[0]).unwrap();
        assert_eq!(decoded.len(), 1);
        decoded[0].attempts
    };
    assert_eq!(attempts("scrape", "m1", NOW), 1);
    assert_eq!(attempts("scrape", "m1", NOW + MINUTE), 2);
    assert_eq!(
        attempts("processing", "m1", NOW),
        1,
        "queues count separately"
    );
    assert_eq!(attempts("scrape", "m2", NOW), 1);
    // The first sighting's time is kept.
    assert_eq!(
        scalar(
            &conn,
            "SELECT first_seen_at FROM deliveries WHERE queue = 'scrape' AND message_id = 'm1'"
        ),
        NOW
    );
}

#[test]
fn prune_deliveries_forgets_only_week_old_deliveries() {
    let conn = migrated();
    run(
        &conn,
        &[
            store::count_delivery("scrape", "old", NOW - 8 * DAY),
            store::count_delivery("scrape", "edge", NOW - 7 * DAY),
            store::count_delivery("scrape", "new", NOW - DAY),
        ],
    );
    assert_eq!(written(&conn, &[store::prune_deliveries(NOW)]), 1);
    let left = select(
        &conn,
        "SELECT message_id FROM deliveries ORDER BY message_id",
    );
    assert_eq!(
        left,
        vec![json!({"message_id": "edge"}), json!({"message_id": "new"})]
    );
}

// ------------------------------------------------------------------ list

#[test]
fn upsert_listed_inserts_every_listed_repo_in_chunks() {
    let conn = migrated();
    let rows = many_listed(222);
    let stmts = store::upsert_listed(SOURCE, &rows, NOW);
    assert!(stmts.len() > 1, "222 repos need more than one statement");
    assert!(stmts.iter().all(|s| s.params.len() <= MAX_BOUND_PARAMS));
    assert_eq!(written(&conn, &stmts), 222);
    let known = listed_rows(&conn);
    assert_eq!(known.len(), 222);
    assert!(known
        .iter()
        .all(|r| r.active == 1 && r.data_source == SOURCE));
    let r = &select(
        &conn,
        "SELECT list_position, listed_labels, technologies, list_description, label_status, upstream_status, \
         processing_status, created_at, updated_at FROM repos WHERE owner = 'owner007'",
    )[0];
    assert_eq!(
        r,
        &json!({
            "list_position": 7, "listed_labels": "[\"good first issue\"]", "technologies": "[\"Rust\"]",
            "list_description": "owner007/repo-7, for beginners", "label_status": "unresolved",
            "upstream_status": "unknown", "processing_status": "pending", "created_at": NOW, "updated_at": NOW
        })
    );
}

#[test]
fn relisting_unchanged_entries_writes_nothing() {
    let conn = migrated();
    let rows = many_listed(222);
    seed_listed(&conn, &rows);
    let before = conn.total_changes();
    assert_eq!(
        written(&conn, &store::upsert_listed(SOURCE, &rows, NOW + DAY)),
        0
    );
    assert_eq!(conn.total_changes(), before);
    assert_eq!(scalar(&conn, "SELECT MAX(updated_at) FROM repos"), NOW);
}

#[test]
fn changed_list_entry_rewrites_only_that_row() {
    let conn = migrated();
    let mut rows = many_listed(30);
    seed_listed(&conn, &rows);
    rows[4] = listed("owner004", "repo-4", 4, &[LABEL, "easy"]);
    // Moving in the list alone is not a change.
    rows[5].position = 99;
    assert_eq!(
        written(&conn, &store::upsert_listed(SOURCE, &rows, NOW + DAY)),
        1
    );
    let id = id_of(&conn, "owner004", "repo-4");
    assert_eq!(
        repo_column(&conn, id, "listed_labels"),
        r#"["good first issue","easy"]"#
    );
    assert_eq!(repo_column(&conn, id, "updated_at"), NOW + DAY);
    assert_eq!(repo_column(&conn, id, "created_at"), NOW);
    let other = id_of(&conn, "owner005", "repo-5");
    assert_eq!(repo_column(&conn, other, "list_position"), 5);
}

#[test]
fn changed_listed_labels_reset_label_resolution() {
    let conn = migrated();
    let mut rows = vec![
        listed("a", "one", 0, &[LABEL]),
        listed("b", "two", 1, &[LABEL]),
    ];
    seed_listed(&conn, &rows);
    let (one, two) = (id_of(&conn, "a", "one"), id_of(&conn, "b", "two"));
    run(
        &conn,
        &[
            store::update_repo_state(&repo_write(one, "d", 1, Some(LABEL)), NOW),
            store::update_repo_state(&repo_write(two, "d", 1, Some(LABEL)), NOW),
        ],
    );
    // `one` gets new labels; `two` only a new description.
    rows[0] = listed("a", "one", 0, &["help wanted"]);
    rows[1].description = Some("new words".into());
    rows[1].list_hash =
        hash::list_entry_hash(&strings(&[LABEL]), &strings(&["Rust"]), Some("new words"));
    assert_eq!(
        written(&conn, &store::upsert_listed(SOURCE, &rows, NOW + DAY)),
        2
    );
    assert_eq!(repo_column(&conn, one, "label_status"), "unresolved");
    assert_eq!(repo_column(&conn, two, "label_status"), "resolved");
}

#[test]
fn deactivate_repos_stops_scraping_and_is_idempotent() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(222));
    let ids: Vec<i64> = listed_rows(&conn).iter().map(|r| r.id).take(150).collect();
    let stmts = store::deactivate_repos(&ids, NOW + DAY);
    assert_eq!(stmts.len(), 2, "150 ids in statements of at most 99");
    assert_eq!(written(&conn, &stmts), 150);
    assert_eq!(
        scalar(&conn, "SELECT COUNT(*) FROM repos WHERE active = 1"),
        72
    );
    assert_eq!(
        written(&conn, &store::deactivate_repos(&ids, NOW + 2 * DAY)),
        0
    );
    // Inactive repos are not scraped.
    let page: Vec<RepoRow> = decode_packed(&run(&conn, &store::step_read(None, 500))[0]).unwrap();
    assert_eq!(page.len(), 72);
    assert!(page.iter().all(|r| !ids.contains(&r.id)));
    assert!(store::deactivate_repos(&[], NOW).is_empty());
}

#[test]
fn relisted_inactive_repo_is_reactivated() {
    let conn = migrated();
    let rows = many_listed(3);
    seed_listed(&conn, &rows);
    let id = id_of(&conn, "owner001", "repo-1");
    run(&conn, &store::deactivate_repos(&[id], NOW));
    assert_eq!(
        written(&conn, &store::upsert_listed(SOURCE, &rows, NOW + DAY)),
        1
    );
    assert_eq!(repo_column(&conn, id, "active"), 1);
}

#[test]
fn source_good_and_source_error_are_remembered() {
    let conn = migrated();
    let read = |conn: &Connection| -> SourceRow {
        decode_rows::<SourceRow>(&run(conn, &[store::data_source(SOURCE)])[0])
            .unwrap()
            .remove(0)
    };
    assert_eq!(
        read(&conn),
        SourceRow {
            id: SOURCE.into(),
            last_good_hash: None
        }
    );
    run(
        &conn,
        &[store::source_error(SOURCE, "data.json fetch failed", NOW)],
    );
    assert_eq!(read(&conn).last_good_hash, None);
    run(&conn, &[store::source_good(SOURCE, "abc123", NOW + 1)]);
    let row = &select(
        &conn,
        &format!("SELECT * FROM data_sources WHERE id = '{SOURCE}'"),
    )[0];
    assert_eq!(row["last_good_hash"], "abc123");
    assert_eq!(row["last_good_at"], NOW + 1);
    assert_eq!(row["last_error"], Value::Null);
    // A later failure keeps the last good hash.
    run(
        &conn,
        &[store::source_error(SOURCE, "README unusable", NOW + 2)],
    );
    assert_eq!(read(&conn).last_good_hash.as_deref(), Some("abc123"));
    assert_eq!(
        scalar(
            &conn,
            &format!("SELECT last_error FROM data_sources WHERE id = '{SOURCE}'")
        ),
        "README unusable"
    );
    assert!(run(&conn, &[store::data_source("nope")])[0].is_empty());
}

#[test]
fn repos_of_source_lists_only_that_source() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(4));
    run(
        &conn,
        &store::upsert_listed("manual", &[listed("op", "added", 0, &[])], NOW),
    );
    assert_eq!(listed_rows(&conn).len(), 4);
    let manual: Vec<ListedRow> =
        decode_rows(&run(&conn, &[store::repos_of_source("manual")])[0]).unwrap();
    assert_eq!(manual.len(), 1);
    assert_eq!(
        (manual[0].owner.as_str(), manual[0].name.as_str()),
        ("op", "added")
    );
}

// ------------------------------------------------------------------ list sync planner

fn parsed_list(entries: &[(&str, &str, &[&str])]) -> ParsedList {
    ParsedList {
        repos: entries
            .iter()
            .enumerate()
            .map(|(i, (owner, name, labels))| ListedRepo {
                slug: RepoSlug::new(owner, name).unwrap(),
                display_name: name.to_string(),
                labels: strings(labels),
                technologies: strings(&["Rust"]),
                description: Some(format!("{owner}/{name}")),
                position: i as u32,
            })
            .collect(),
        skipped: vec![],
        warnings: vec![],
    }
}

#[test]
fn list_sync_inserts_then_plans_nothing_for_the_same_list() {
    let conn = migrated();
    let names: Vec<(String, String)> = (0..222)
        .map(|i| (format!("o{i:03}"), format!("r{i}")))
        .collect();
    let entries: Vec<(&str, &str, &[&str])> = names
        .iter()
        .map(|(o, n)| (o.as_str(), n.as_str(), &[LABEL][..]))
        .collect();
    let list = parsed_list(&entries);
    let first = plan_list_sync(SOURCE, &list, &[], NOW);
    assert_eq!(
        (first.inserted, first.changed, first.deactivated),
        (222, 0, 0)
    );
    assert_eq!(written(&conn, &first.statements), 222);
    let again = plan_list_sync(SOURCE, &list, &listed_rows(&conn), NOW + DAY);
    assert_eq!(
        (again.inserted, again.changed, again.deactivated),
        (0, 0, 0)
    );
    assert!(
        again.statements.is_empty(),
        "an unchanged list plans no writes"
    );
}

#[test]
fn list_sync_rewrites_changed_entries_and_deactivates_dropped_ones() {
    let conn = migrated();
    let v1 = parsed_list(&[
        ("a", "one", &[LABEL]),
        ("b", "two", &[LABEL]),
        ("c", "three", &[LABEL]),
    ]);
    run(&conn, &plan_list_sync(SOURCE, &v1, &[], NOW).statements);
    let v2 = parsed_list(&[
        ("a", "one", &["help wanted"]),
        ("c", "three", &[LABEL]),
        ("d", "four", &[]),
    ]);
    let sync = plan_list_sync(SOURCE, &v2, &listed_rows(&conn), NOW + DAY);
    assert_eq!((sync.inserted, sync.changed, sync.deactivated), (1, 1, 1));
    // `c/three` moved up a place but its entry did not change: 1 + 1 + 1 writes.
    assert_eq!(written(&conn, &sync.statements), 3);
    let active = select(&conn, "SELECT owner, active FROM repos ORDER BY owner");
    assert_eq!(
        active,
        vec![
            json!({"owner": "a", "active": 1}),
            json!({"owner": "b", "active": 0}),
            json!({"owner": "c", "active": 1}),
            json!({"owner": "d", "active": 1}),
        ]
    );
    // `b/two` returns unchanged: reactivated.
    let v3 = parsed_list(&[
        ("a", "one", &["help wanted"]),
        ("b", "two", &[LABEL]),
        ("c", "three", &[LABEL]),
        ("d", "four", &[]),
    ]);
    let back = plan_list_sync(SOURCE, &v3, &listed_rows(&conn), NOW + 2 * DAY);
    assert_eq!((back.inserted, back.changed, back.deactivated), (0, 1, 0));
    assert_eq!(written(&conn, &back.statements), 1);
    assert_eq!(
        scalar(&conn, "SELECT active FROM repos WHERE owner = 'b'"),
        1
    );
}

// ------------------------------------------------------------------ steps

/// Five active repos (and one inactive) with two issues each.
fn seed_for_steps(conn: &Connection) -> Vec<(String, String)> {
    let slugs = [
        ("gamma", "x"),
        ("alpha", "z"),
        ("beta", "zz"),
        ("alpha", "a"),
        ("delta", "q"),
        ("beta", "m"),
    ];
    let rows: Vec<ListedWrite> = slugs
        .iter()
        .enumerate()
        .map(|(i, (o, n))| listed(o, n, i as i64, &[LABEL]))
        .collect();
    seed_listed(conn, &rows);
    run(
        conn,
        &store::deactivate_repos(&[id_of(conn, "beta", "zz")], NOW),
    );
    let mut issues = Vec::new();
    for (o, n) in slugs {
        let id = id_of(conn, o, n);
        issues.push(issue_write(id, 1, &format!("{o}/{n} first"), 10));
        issues.push(issue_write(id, 2, &format!("{o}/{n} second"), 20));
    }
    run(conn, &store::upsert_issues(&issues, NOW));
    vec![
        ("alpha", "a"),
        ("alpha", "z"),
        ("beta", "m"),
        ("delta", "q"),
        ("gamma", "x"),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_string(), n.to_string()))
    .collect()
}

fn read_step(
    conn: &Connection,
    after: Option<(&str, &str)>,
    limit: usize,
) -> (Vec<RepoRow>, Vec<IssueHashRow>) {
    let rows = run(conn, &store::step_read(after, limit));
    (
        decode_packed(&rows[0]).unwrap(),
        decode_packed(&rows[1]).unwrap(),
    )
}

#[test]
fn step_read_pages_active_repos_in_owner_name_order() {
    let conn = migrated();
    let expected = seed_for_steps(&conn);
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let (repos, _) = read_step(
            &conn,
            after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
            2,
        );
        assert!(repos.len() <= 2);
        let Some(last) = repos.last() else { break };
        after = Some((last.owner.clone(), last.name.clone()));
        seen.extend(repos.into_iter().map(|r| (r.owner, r.name)));
    }
    assert_eq!(seen, expected);
}

#[test]
fn step_read_returns_the_issues_of_exactly_its_repos() {
    let conn = migrated();
    seed_for_steps(&conn);
    let (repos, issues) = read_step(&conn, Some(("alpha", "z")), 2);
    let slugs: Vec<(&str, &str)> = repos
        .iter()
        .map(|r| (r.owner.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(slugs, vec![("beta", "m"), ("delta", "q")]);
    let ids: Vec<i64> = repos.iter().map(|r| r.id).collect();
    assert_eq!(issues.len(), 4);
    assert!(issues
        .iter()
        .all(|i| ids.contains(&i.repo_id) && i.state == "open"));
    let first = &repos[0];
    assert_eq!(first.listed_labels(), vec![LABEL.to_string()]);
    assert_eq!(first.label_status, "unresolved");
    assert_eq!(first.upstream_status, "unknown");
    assert_eq!(first.state_hash, None);
}

#[test]
fn update_repo_state_writes_only_when_the_state_hash_differs() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = id_of(&conn, "owner000", "repo-0");
    let w = repo_write(id, "A tidy crate", 10, Some(LABEL));
    assert_eq!(written(&conn, &[store::update_repo_state(&w, NOW)]), 1);
    let row = &select(&conn, &format!("SELECT * FROM repos WHERE id = {id}"))[0];
    assert_eq!(row["upstream_status"], "ok");
    assert_eq!(row["label_status"], "resolved");
    assert_eq!(row["resolved_label"], LABEL);
    assert_eq!(row["label_checked_at"], NOW);
    assert_eq!(row["stars"], 10);
    assert_eq!(row["is_archived"], 0);
    assert_eq!(row["state_hash"], w.state_hash.0);
    assert_eq!(row["content_hash"], w.content_hash.0);
    assert_eq!(row["processing_status"], "pending");
    assert_eq!(
        written(&conn, &[store::update_repo_state(&w, NOW + DAY)]),
        0
    );
    assert_eq!(repo_column(&conn, id, "updated_at"), NOW);
}

#[test]
fn a_step_s_repos_are_written_in_one_statement_and_only_the_changed_ones() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(3));
    let ids: Vec<i64> = (0..3)
        .map(|i| id_of(&conn, &format!("owner{i:03}"), &format!("repo-{i}")))
        .collect();
    let first: Vec<RepoWrite> = ids
        .iter()
        .map(|&id| repo_write(id, "A tidy crate", 10, Some(LABEL)))
        .collect();
    let statements = store::update_repos_state(&first, NOW);
    assert_eq!(statements.len(), 1, "one JSON parameter for the step");
    assert_eq!(written(&conn, &statements), 3);
    conn.execute_batch("UPDATE repos SET processing_status = 'completed'")
        .unwrap();
    // Unchanged, starred (state only) and described (content): two written,
    // one of them pending again.
    let second = vec![
        first[0].clone(),
        repo_write(ids[1], "A tidy crate", 11, Some(LABEL)),
        repo_write(ids[2], "A tidier crate", 10, Some(LABEL)),
    ];
    assert_eq!(
        written(&conn, &store::update_repos_state(&second, NOW + DAY)),
        2
    );
    assert_eq!(repo_column(&conn, ids[0], "updated_at"), NOW);
    assert_eq!(repo_column(&conn, ids[1], "stars"), 11);
    assert_eq!(repo_column(&conn, ids[1], "processing_status"), "completed");
    assert_eq!(repo_column(&conn, ids[2], "processing_status"), "pending");
    assert!(store::update_repos_state(&[], NOW).is_empty());
}

#[test]
fn star_change_rewrites_the_row_without_requeueing_it() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = id_of(&conn, "owner000", "repo-0");
    run(
        &conn,
        &[store::update_repo_state(
            &repo_write(id, "A tidy crate", 10, Some(LABEL)),
            NOW,
        )],
    );
    conn.execute_batch(&format!(
        "UPDATE repos SET processing_status = 'completed', attempts = 2 WHERE id = {id}"
    ))
    .unwrap();
    let starred = repo_write(id, "A tidy crate", 11, Some(LABEL));
    assert_eq!(
        written(&conn, &[store::update_repo_state(&starred, NOW + DAY)]),
        1
    );
    assert_eq!(repo_column(&conn, id, "stars"), 11);
    assert_eq!(repo_column(&conn, id, "processing_status"), "completed");
    assert_eq!(repo_column(&conn, id, "attempts"), 2);
}

#[test]
fn content_change_makes_the_repo_pending_again() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = id_of(&conn, "owner000", "repo-0");
    run(
        &conn,
        &[store::update_repo_state(
            &repo_write(id, "A tidy crate", 10, Some(LABEL)),
            NOW,
        )],
    );
    conn.execute_batch(&format!(
        "UPDATE repos SET processing_status = 'failed', attempts = 3 WHERE id = {id}"
    ))
    .unwrap();
    let described = repo_write(id, "A tidier crate", 10, Some(LABEL));
    assert_eq!(
        written(&conn, &[store::update_repo_state(&described, NOW + DAY)]),
        1
    );
    assert_eq!(repo_column(&conn, id, "processing_status"), "pending");
    assert_eq!(repo_column(&conn, id, "attempts"), 0);
    assert_eq!(
        repo_column(&conn, id, "content_hash"),
        described.content_hash.0
    );
}

/// The list changes a repo's labels (label resolution resets to
/// `unresolved`) but the repo resolves to the same label as before, so its
/// state hash is unchanged. The planner writes the resolution
/// (`label_status` differs); the write must land, or the repo stays
/// `unresolved` and is re-planned, and re-queried by its listed spelling,
/// on every run.
#[test]
fn relisted_repo_records_its_resolution_when_upstream_is_unchanged() {
    let conn = migrated();
    seed_listed(&conn, &[listed("a", "one", 0, &["Good-First-Issue"])]);
    let id = id_of(&conn, "a", "one");
    let w = repo_write(id, "d", 1, Some(LABEL));
    run(&conn, &[store::update_repo_state(&w, NOW)]);
    seed_listed(
        &conn,
        &[listed("a", "one", 0, &["Good-First-Issue", "easy"])],
    );
    assert_eq!(repo_column(&conn, id, "label_status"), "unresolved");
    run(&conn, &[store::update_repo_state(&w, NOW + DAY)]);
    assert_eq!(repo_column(&conn, id, "label_status"), "resolved");
    assert_eq!(repo_column(&conn, id, "resolved_label"), LABEL);
}

#[test]
fn mark_repo_upstream_missing_writes_only_on_change() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = id_of(&conn, "owner000", "repo-0");
    assert_eq!(
        written(&conn, &[store::mark_repo_upstream_missing(id, "gone", NOW)]),
        1
    );
    assert_eq!(repo_column(&conn, id, "upstream_status"), "not_found");
    assert_eq!(
        written(
            &conn,
            &[store::mark_repo_upstream_missing(id, "gone", NOW + DAY)]
        ),
        0
    );
    assert_eq!(repo_column(&conn, id, "updated_at"), NOW);
    // Seen again upstream: back to ok.
    run(
        &conn,
        &[store::update_repo_state(
            &repo_write(id, "back", 1, Some(LABEL)),
            NOW + 2 * DAY,
        )],
    );
    assert_eq!(repo_column(&conn, id, "upstream_status"), "ok");
}

/// The ids of the repos `many_listed(n)` seeded, in list order.
fn seeded_ids(conn: &Connection, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| id_of(conn, &format!("owner{i:03}"), &format!("repo-{i}")))
        .collect()
}

fn seed_250_issues(conn: &Connection) -> (Vec<i64>, Vec<IssueWrite>) {
    seed_listed(conn, &many_listed(3));
    let ids = seeded_ids(conn, 3);
    let issues: Vec<IssueWrite> = (0..250)
        .map(|k| {
            issue_write(
                ids[k % 3],
                1 + k as i64,
                &format!("Issue {k}"),
                k as i64 % 100,
            )
        })
        .collect();
    (ids, issues)
}

#[test]
fn upsert_issues_inserts_250_issues_in_chunks() {
    let conn = migrated();
    let (ids, issues) = seed_250_issues(&conn);
    let stmts = store::upsert_issues(&issues, NOW);
    assert_eq!(stmts.len(), 1, "one JSON parameter carries up to 500 rows");
    assert_eq!(written(&conn, &stmts), 250);
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status = 'pending'"
        ),
        250
    );
    let row = &select(
        &conn,
        &format!(
            "SELECT * FROM issues WHERE repo_id = {} AND number = 1",
            ids[0]
        ),
    )[0];
    let w = &issues[0];
    assert_eq!(row["title"], "Issue 0");
    assert_eq!(row["body"], Value::Null, "the scraper stores no body");
    assert_eq!(row["state_hash"], w.state_hash.0);
    assert_eq!(row["url"], w.url);
    assert_eq!(row["labels"], w.labels_json);
    assert_eq!(row["comment_count"], 2);
    assert_eq!(row["gh_created_at"], w.created_at);
    assert_eq!(row["gh_updated_at"], w.updated_at);
    assert_eq!(row["content_hash"], w.content_hash.0);
    assert_eq!(row["queued_hash"], Value::Null);
    assert!(store::upsert_issues(&[], NOW).is_empty());
}

#[test]
fn unchanged_issues_write_nothing() {
    let conn = migrated();
    let (_, issues) = seed_250_issues(&conn);
    run(&conn, &store::upsert_issues(&issues, NOW));
    let before = conn.total_changes();
    assert_eq!(written(&conn, &store::upsert_issues(&issues, NOW + DAY)), 0);
    assert_eq!(conn.total_changes(), before);
}

#[test]
fn changed_issue_rewrites_only_its_row_and_is_pending_again() {
    let conn = migrated();
    let (ids, mut issues) = seed_250_issues(&conn);
    run(&conn, &store::upsert_issues(&issues, NOW));
    conn.execute_batch(
        "UPDATE issues SET processing_status = 'completed', queued_hash = content_hash, attempts = 1, \
         last_error = 'old'",
    )
    .unwrap();
    let edited = issue_write(ids[1], 2, "Issue 1, clarified", 1);
    issues[1] = edited.clone();
    assert_eq!(written(&conn, &store::upsert_issues(&issues, NOW + DAY)), 1);
    assert_eq!(
        issue_column(&conn, ids[1], 2, "title"),
        "Issue 1, clarified"
    );
    assert_eq!(
        issue_column(&conn, ids[1], 2, "processing_status"),
        "pending"
    );
    assert_eq!(issue_column(&conn, ids[1], 2, "attempts"), 0);
    assert_eq!(issue_column(&conn, ids[1], 2, "last_error"), Value::Null);
    assert_eq!(
        issue_column(&conn, ids[1], 2, "content_hash"),
        edited.content_hash.0
    );
    assert_eq!(issue_column(&conn, ids[1], 2, "updated_at"), NOW + DAY);
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM issues WHERE processing_status = 'completed'"
        ),
        249
    );
}

#[test]
fn close_issues_closes_only_listed_open_issues_of_that_repo() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(2));
    let (a, b) = (
        id_of(&conn, "owner000", "repo-0"),
        id_of(&conn, "owner001", "repo-1"),
    );
    let issues: Vec<IssueWrite> = (1..=5)
        .flat_map(|n| [issue_write(a, n, "a", 0), issue_write(b, n, "b", 0)])
        .collect();
    run(&conn, &store::upsert_issues(&issues, NOW));
    assert_eq!(
        written(&conn, &store::close_issues(a, &[1, 2, 99], NOW + DAY)),
        2
    );
    let states = select(
        &conn,
        &format!("SELECT number, state FROM issues WHERE repo_id = {a} ORDER BY number"),
    );
    let closed: Vec<i64> = states
        .iter()
        .filter(|r| r["state"] == "closed")
        .map(|r| r["number"].as_i64().unwrap())
        .collect();
    assert_eq!(closed, vec![1, 2]);
    assert_eq!(issue_column(&conn, a, 1, "updated_at"), NOW + DAY);
    assert_eq!(
        scalar(
            &conn,
            &format!("SELECT COUNT(*) FROM issues WHERE repo_id = {b} AND state = 'open'")
        ),
        5
    );
    // Already closed: no write.
    assert_eq!(
        written(&conn, &store::close_issues(a, &[1, 2], NOW + 2 * DAY)),
        0
    );
    assert!(store::close_issues(a, &[], NOW).is_empty());
}

#[test]
fn close_issues_handles_hundreds_of_numbers() {
    let conn = migrated();
    let (ids, issues) = seed_250_issues(&conn);
    run(&conn, &store::upsert_issues(&issues, NOW));
    let numbers: Vec<i64> = issues
        .iter()
        .filter(|i| i.repo_id == ids[0])
        .map(|i| i.number)
        .collect();
    let mut asked: Vec<i64> = numbers.clone();
    asked.extend(1000..1200);
    let stmts = store::close_issues(ids[0], &asked, NOW + DAY);
    assert!(stmts.len() >= 3);
    assert_eq!(written(&conn, &stmts) as usize, numbers.len());
}

/// An issue closed locally (it vanished from a complete refresh, e.g. during
/// a label change or a lagging index) that comes back unchanged upstream
/// must be open again: its content hash is the same, but its state is not.
#[test]
fn closed_issue_upserted_again_is_reopened() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = id_of(&conn, "owner000", "repo-0");
    let w = issue_write(id, 7, "Add a --quiet flag", 50);
    run(&conn, &store::upsert_issues(std::slice::from_ref(&w), NOW));
    conn.execute_batch(
        "UPDATE issues SET processing_status = 'completed', queued_hash = content_hash",
    )
    .unwrap();
    run(&conn, &store::close_issues(id, &[7], NOW + HOUR));
    assert_eq!(issue_column(&conn, id, 7, "state"), "closed");
    assert_eq!(
        written(
            &conn,
            &store::upsert_issues(std::slice::from_ref(&w), NOW + DAY)
        ),
        1
    );
    assert_eq!(issue_column(&conn, id, 7, "state"), "open");
    // Its content is unchanged: its analysis stands, and nothing is queued.
    assert_eq!(issue_column(&conn, id, 7, "processing_status"), "completed");
    assert!(outbox(&conn, 100).is_empty());
}

// ------------------------------------------------------------------ outbox

/// Repos `owner000..` with content, and issues of different freshness.
fn seed_outbox(conn: &Connection) -> Vec<i64> {
    seed_listed(conn, &many_listed(3));
    let ids = seeded_ids(conn, 3);
    let mut repo_stmts = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let mut w = repo_write(*id, &format!("repo {k}"), 1, Some(LABEL));
        w.priority = [10, 90, 50][k];
        repo_stmts.push(store::update_repo_state(&w, NOW));
    }
    run(conn, &repo_stmts);
    run(
        conn,
        &store::upsert_issues(
            &[
                issue_write(ids[0], 1, "stale", 5),
                issue_write(ids[1], 2, "fresh", 99),
                issue_write(ids[2], 3, "mid", 40),
            ],
            NOW,
        ),
    );
    ids
}

#[test]
fn outbox_lists_repos_then_issues_freshest_first() {
    let conn = migrated();
    seed_outbox(&conn);
    let items = outbox(&conn, 100);
    assert_eq!(
        outbox_keys(&items),
        vec![
            "owner001/repo-1",
            "owner002/repo-2",
            "owner000/repo-0",
            "owner001/repo-1#2",
            "owner002/repo-2#3",
            "owner000/repo-0#1"
        ]
    );
    assert!(items[..3]
        .iter()
        .all(|i| i.kind == "repo" && i.number.is_none()));
    assert!(items[3..].iter().all(|i| i.kind == "issue"));
    assert_eq!(items[0].priority, 90);
    assert_eq!(outbox_keys(&outbox(&conn, 4)).len(), 4);
}

#[test]
fn outbox_skips_closed_issues_inactive_repos_unscraped_repos_and_busy_items() {
    let conn = migrated();
    let ids = seed_outbox(&conn);
    run(&conn, &store::close_issues(ids[0], &[1], NOW));
    run(&conn, &store::deactivate_repos(&[ids[2]], NOW));
    conn.execute_batch(&format!(
        "UPDATE repos SET processing_status = 'processing' WHERE id = {}; \
         UPDATE issues SET processing_status = 'completed' WHERE number = 2",
        ids[1]
    ))
    .unwrap();
    // A listed repo the scraper has not reached yet has no content hash.
    seed_listed(&conn, &[listed("zed", "new", 9, &[LABEL])]);
    let keys = outbox_keys(&outbox(&conn, 100));
    assert_eq!(keys.first().map(String::as_str), Some("owner000/repo-0"));
    for skipped in [
        "owner000/repo-0#1",
        "owner001/repo-1",
        "owner001/repo-1#2",
        "owner002/repo-2",
        "zed/new",
    ] {
        assert!(
            !keys.contains(&skipped.to_string()),
            "{skipped} is not queued: {keys:?}"
        );
    }
}

#[test]
fn failed_items_stay_in_the_outbox_until_queued() {
    let conn = migrated();
    let ids = seed_outbox(&conn);
    conn.execute_batch(&format!(
        "UPDATE repos SET processing_status = 'failed' WHERE id = {}",
        ids[0]
    ))
    .unwrap();
    assert!(outbox_keys(&outbox(&conn, 100)).contains(&"owner000/repo-0".to_string()));
}

#[test]
fn mark_queued_empties_the_outbox() {
    let conn = migrated();
    seed_outbox(&conn);
    let items = outbox(&conn, 100);
    assert_eq!(written(&conn, &store::mark_queued(&items, NOW)), 6);
    assert!(outbox(&conn, 100).is_empty());
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM repos WHERE queued_hash IS content_hash"
        ),
        3
    );
    assert!(store::mark_queued(&[], NOW).is_empty());
}

#[test]
fn mark_queued_marks_only_what_was_sent() {
    let conn = migrated();
    seed_outbox(&conn);
    let items = outbox(&conn, 100);
    run(&conn, &store::mark_queued(&items[..2], NOW));
    assert_eq!(outbox(&conn, 100), items[2..].to_vec());
}

#[test]
fn content_change_brings_an_item_back_to_the_outbox() {
    let conn = migrated();
    let ids = seed_outbox(&conn);
    run(&conn, &store::mark_queued(&outbox(&conn, 100), NOW));
    // Stars alone do not requeue a repo.
    run(
        &conn,
        &[store::update_repo_state(
            &repo_write(ids[0], "repo 0", 500, Some(LABEL)),
            NOW + DAY,
        )],
    );
    assert!(outbox(&conn, 100).is_empty());
    run(
        &conn,
        &[store::update_repo_state(
            &repo_write(ids[0], "repo 0, rewritten", 500, Some(LABEL)),
            NOW + DAY,
        )],
    );
    run(
        &conn,
        &store::upsert_issues(&[issue_write(ids[1], 2, "fresh, edited", 99)], NOW + DAY),
    );
    let back = outbox(&conn, 100);
    assert_eq!(
        outbox_keys(&back),
        vec!["owner000/repo-0", "owner001/repo-1#2"]
    );
    assert_eq!(
        back[1].content_hash,
        issue_write(ids[1], 2, "fresh, edited", 99).content_hash.0
    );
}

#[test]
fn mark_queued_handles_more_than_a_statement_of_ids() {
    let conn = migrated();
    let (_, issues) = seed_250_issues(&conn);
    run(&conn, &store::upsert_issues(&issues, NOW));
    let items = outbox(&conn, 1000);
    assert_eq!(items.len(), 250);
    let stmts = store::mark_queued(&items, NOW);
    assert_eq!(
        stmts.len(),
        1,
        "one statement per table, ids and hashes as one JSON parameter"
    );
    assert_eq!(written(&conn, &stmts), 250);
    assert!(outbox(&conn, 1000).is_empty());
}

// ------------------------------------------------------------------ admin

#[test]
fn status_queries_return_their_report_shapes() {
    let conn = migrated();
    let ids = seed_outbox(&conn);
    seed_listed(&conn, &[listed("zed", "nolabel", 9, &["needs-love"])]);
    let nolabel = id_of(&conn, "zed", "nolabel");
    run(
        &conn,
        &[
            store::update_repo_state(&repo_write(nolabel, "no label", 1, None), NOW),
            store::record_dead_letter("processing", "m9", "{}", "unknown type", 2, NOW + 5),
            store::record_invocation(&invocation("i1", "scraper", 40)),
            store::record_invocation(&invocation("i2", "scraper", 48)),
            store::record_invocation(&invocation("i3", "processor", 12)),
        ],
    );
    start(&conn, "run-1", NOW);
    conn.execute_batch(&format!(
        "UPDATE repos SET processing_status = 'failed', attempts = 3, last_error = 'AI timeout', processed_at = {t} WHERE id = {r0}; \
         UPDATE repos SET processing_status = 'completed' WHERE id = {r1}; \
         UPDATE issues SET processing_status = 'failed', attempts = 2, last_error = 'gone', processed_at = {t2} WHERE number = 3",
        t = NOW + 1,
        t2 = NOW + 2,
        r0 = ids[0],
        r1 = ids[1],
    ))
    .unwrap();

    let rows = run(&conn, &admin::status_queries(10, 50, NOW));
    assert_eq!(rows.len(), 10, "7 for the pipeline, 3 for the AI budget");

    let mut repos: Vec<admin::StatusCount> = decode_rows(&rows[0]).unwrap();
    repos.sort_by(|a, b| a.status.cmp(&b.status));
    let counts = |v: &[admin::StatusCount]| {
        v.iter()
            .map(|c| (c.status.clone(), c.n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&repos),
        vec![
            ("completed".into(), 1),
            ("failed".into(), 1),
            ("pending".into(), 2)
        ]
    );
    let mut issues: Vec<admin::StatusCount> = decode_rows(&rows[1]).unwrap();
    issues.sort_by(|a, b| a.status.cmp(&b.status));
    assert_eq!(
        counts(&issues),
        vec![("failed".into(), 1), ("pending".into(), 2)]
    );

    assert_eq!(rows[2].len(), 1);
    let run_row = rows[2][0].as_object().unwrap();
    for key in [
        "id",
        "trigger",
        "started_at",
        "finished_at",
        "status",
        "invocations",
        "continuations",
        "repos_seen",
        "repos_changed",
        "repos_skipped",
        "issues_upserted",
        "issues_closed",
        "messages_queued",
        "subrequests_used",
        "max_subrequests",
        "github_requests",
        "graphql_points",
        "outcome",
        "error",
    ] {
        assert!(run_row.contains_key(key), "run row has {key}");
    }
    assert_eq!(run_row["status"], "running");

    assert_eq!(
        rows[3],
        vec![
            json!({"kind": "message", "item": "processing:m9", "attempts": 2, "last_error": "unknown type", "processed_at": NOW + 5}),
            json!({"kind": "issue", "item": "owner002/repo-2#3", "attempts": 2, "last_error": "gone", "processed_at": NOW + 2}),
            json!({"kind": "repo", "item": "owner000/repo-0", "attempts": 3, "last_error": "AI timeout", "processed_at": NOW + 1}),
        ]
    );
    assert_eq!(
        rows[4],
        vec![json!({"repo": "zed/nolabel", "listed_labels": "[\"needs-love\"]"})]
    );
    // Pending work: repos 2 and zed/nolabel pending, issues 1 and 2 pending;
    // unqueued: repos 0 (failed), 2, zed/nolabel and issues 1, 2, 3 (failed).
    assert_eq!(
        rows[5],
        vec![json!({"repos": 2, "issues": 2, "unqueued": 6})]
    );
    let mut ledger = rows[6].clone();
    ledger.sort_by_key(|r| r["service"].as_str().unwrap().to_string());
    assert_eq!(
        ledger,
        vec![
            json!({"service": "processor", "invocations": 1, "max_subrequests": 12, "mean_subrequests": 12.0}),
            json!({"service": "scraper", "invocations": 2, "max_subrequests": 48, "mean_subrequests": 44.0}),
        ]
    );
}

#[test]
fn status_queries_run_on_an_empty_database() {
    let conn = migrated();
    let rows = run(&conn, &admin::status_queries(10, 50, NOW));
    assert!(rows[0].is_empty() && rows[1].is_empty() && rows[2].is_empty() && rows[3].is_empty());
    assert_eq!(
        rows[5],
        vec![json!({"repos": 0, "issues": 0, "unqueued": 0})]
    );
}

fn invocation(id: &str, service: &'static str, subrequests: u32) -> InvocationRecord {
    InvocationRecord {
        id: id.into(),
        service,
        run_id: None,
        started_at: NOW,
        finished_at: NOW + 1_000,
        subrequests,
        budget: 50,
        outcome: "ok".into(),
        summary_json: "{}".into(),
        log_key: None,
    }
}

// ------------------------------------------------------------------ D1 limits

#[test]
fn every_builder_stays_within_d1_parameter_limit() {
    let conn = migrated();
    let big_list = many_listed(500);
    let ids: Vec<i64> = (1..=500).collect();
    let issues: Vec<IssueWrite> = (0..500)
        .map(|k| issue_write(1 + k % 7, k, "t", 0))
        .collect();
    let outbox_rows: Vec<OutboxRow> = (0..500)
        .map(|k| OutboxRow {
            kind: if k % 3 == 0 { "repo" } else { "issue" }.into(),
            id: k,
            owner: "o".into(),
            name: "n".into(),
            number: (k % 3 != 0).then_some(k),
            content_hash: "h".into(),
            priority: 0,
        })
        .collect();
    let counters = counters(1);
    let record = invocation("i", "scraper", 10);
    let mut all: Vec<Statement> = Vec::new();
    all.extend(store::start_run("r", "cron", SOURCE, NOW));
    all.push(store::active_run());
    all.push(store::run_by_id("r"));
    all.push(store::data_source(SOURCE));
    for progress in [
        RunProgress::Continuing {
            cursor_json: "{}".into(),
            failure_attempts: 0,
        },
        RunProgress::Completed {
            outcome: "completed".into(),
        },
        RunProgress::Failed { error: "e".into() },
    ] {
        all.push(store::advance_run("r", "inv", &counters, 1, &progress, NOW));
    }
    all.push(store::record_invocation(&record));
    all.push(store::count_delivery("scrape", "m", NOW));
    all.push(store::prune_deliveries(NOW));
    all.push(store::repos_of_source(SOURCE));
    all.extend(store::upsert_listed(SOURCE, &big_list, NOW));
    all.extend(store::deactivate_repos(&ids, NOW));
    all.push(store::source_good(SOURCE, "h", NOW));
    all.push(store::source_error(SOURCE, "e", NOW));
    all.extend(store::step_read(None, 50));
    all.extend(store::step_read(Some(("o", "n")), 50));
    all.push(store::update_repo_state(
        &repo_write(1, "d", 1, Some(LABEL)),
        NOW,
    ));
    all.push(store::note_run_error("run-1", "why"));
    all.push(store::mark_repo_upstream_missing(1, "gone", NOW));
    all.extend(store::upsert_issues(&issues, NOW));
    all.extend(store::close_issues(1, &ids, NOW));
    all.push(store::outbox(1000));
    all.extend(store::mark_queued(&outbox_rows, NOW));
    all.push(store::fail_run("r", "e", NOW));
    all.push(store::record_dead_letter("q", "m", "b", "r", 1, NOW));
    all.extend(admin::status_queries(10, 50, NOW));
    all.extend(contribot_core::ai::requeue_upgrades(2_000, NOW));
    for s in &all {
        assert_d1_shape(&conn, s);
    }
    // Chunked builders bind every row: nothing is lost between chunks.
    let bound = |stmts: Vec<Statement>| stmts.iter().map(|s| s.params.len()).sum::<usize>();
    assert_eq!(
        bound(store::upsert_listed(SOURCE, &big_list, NOW)),
        500 * 10
    );
    assert_eq!(
        bound(store::upsert_issues(&issues, NOW)),
        3,
        "one JSON parameter per 500 rows, and the two timestamps"
    );
    assert_eq!(bound(store::deactivate_repos(&ids, NOW)), 500 + 6);
    assert_eq!(bound(store::close_issues(1, &ids, NOW)), 500 + 2 * 6);
    assert_eq!(
        bound(store::mark_queued(&outbox_rows, NOW)),
        4,
        "per table: the sent items as JSON, and the time"
    );
}

// ------------------------------------------------------------------ scrape planner

const DESCRIPTION: &str = "A friendly project";
const PUSHED_AT: &str = "2025-06-10T00:00:00Z";
const STARS: i64 = 42;

fn repo_row(id: i64, owner: &str, name: &str, listed: &[&str]) -> RepoRow {
    RepoRow {
        id,
        owner: owner.into(),
        name: name.into(),
        listed_labels: serde_json::to_string(&strings(listed)).unwrap(),
        label_status: "unresolved".into(),
        resolved_label: None,
        upstream_status: "unknown".into(),
        state_hash: None,
        content_hash: None,
        scrape_failures: 0,
    }
}

/// A row as D1 holds it after a previous scrape saw the same upstream state.
fn settled_row(id: i64, owner: &str, name: &str, label: &str) -> RepoRow {
    let nwo = format!("{owner}/{name}");
    let input = RepoHashInput {
        name_with_owner: &nwo,
        description: Some(DESCRIPTION),
        primary_language: Some("Rust"),
        stars: STARS,
        is_archived: false,
        pushed_at: Some(PUSHED_AT),
        resolved_label: Some(label),
    };
    RepoRow {
        label_status: "resolved".into(),
        resolved_label: Some(label.into()),
        upstream_status: "ok".into(),
        state_hash: Some(hash::repo_state_hash(&input).0),
        content_hash: Some(hash::repo_content_hash(&input).0),
        ..repo_row(id, owner, name, &[label])
    }
}

fn upstream_issue(number: i64, title: &str) -> IssueMeta {
    IssueMeta {
        number,
        title: title.into(),
        body: format!("Body of {number}"),
        url: format!("https://github.com/o/r/issues/{number}"),
        state: "open".into(),
        created_at: "2025-05-01T00:00:00Z".into(),
        updated_at: "2025-06-01T00:00:00Z".into(),
        last_edited_at: None,
        labels: strings(&[LABEL]),
        assignee_count: 0,
        comment_count: 1,
        linked_pr_count: 0,
    }
}

fn known(repo_id: i64, issue: &IssueMeta, state: &str) -> IssueHashRow {
    let input = hash_input(issue);
    IssueHashRow {
        repo_id,
        number: issue.number,
        state_hash: Some(hash::issue_state_hash(&input).0),
        content_hash: hash::issue_content_hash(&input).0,
        state: state.into(),
    }
}

fn hash_input(issue: &IssueMeta) -> IssueHashInput<'_> {
    IssueHashInput {
        title: &issue.title,
        state: &issue.state,
        labels: &issue.labels,
        assignee_count: issue.assignee_count,
        comment_count: issue.comment_count,
        linked_pr_count: issue.linked_pr_count,
        created_at: &issue.created_at,
        updated_at: &issue.updated_at,
        last_edited_at: issue.last_edited_at.as_deref(),
        availability: "ok",
    }
}

/// GitHub's answer for a repo: its state, its labels (on a first query) and
/// a page of labelled issues.
fn found(
    row: &RepoRow,
    repo_labels: Option<&[&str]>,
    issues: Vec<IssueMeta>,
    next: Option<&str>,
) -> RepoOutcome {
    RepoOutcome::Found(Box::new(RepoState {
        name_with_owner: format!("{}/{}", row.owner, row.name),
        is_archived: false,
        description: Some(DESCRIPTION.into()),
        stars: STARS,
        pushed_at: Some(PUSHED_AT.into()),
        primary_language: Some("Rust".into()),
        labels: repo_labels.map(strings),
        issues: Some(IssuePage {
            total_count: issues.len() as i64,
            has_next_page: next.is_some(),
            end_cursor: next.map(str::to_string),
            nodes: issues,
        }),
    }))
}

/// A repo whose one query came back with every labelled issue.
fn complete(row: RepoRow, issues: Vec<IssueMeta>) -> RepoWork {
    let mut w = RepoWork::new(row.clone());
    w.absorb(found(&row, Some(&["bug", LABEL]), issues, None));
    assert_eq!(w.status, WorkStatus::Complete);
    w
}

fn closes_for(plan: &StepPlan, repo_id: i64) -> Vec<Statement> {
    plan.statements
        .iter()
        .filter(|s| {
            s.sql.contains("SET state = 'closed'") && s.params.first() == Some(&repo_id.into())
        })
        .cloned()
        .collect()
}

#[test]
fn unchanged_upstream_plans_no_statements() {
    let issues = vec![upstream_issue(1, "one"), upstream_issue(2, "two")];
    let row = settled_row(7, "o", "r", LABEL);
    let stored: Vec<IssueHashRow> = issues.iter().map(|i| known(7, i, "open")).collect();
    let plan = plan_step(&[complete(row, issues)], &stored, NOW, INACTIVE_DAYS);
    assert!(plan.statements.is_empty(), "planned {:?}", plan.statements);
    assert_eq!((plan.done, plan.repos_seen, plan.repos_changed), (1, 1, 0));
    assert_eq!((plan.issues_upserted, plan.issues_closed), (0, 0));
}

#[test]
fn vanished_open_issue_on_a_complete_repo_is_closed() {
    let row = settled_row(7, "o", "r", LABEL);
    let gone = upstream_issue(3, "fixed elsewhere");
    let issues = vec![upstream_issue(1, "one"), upstream_issue(2, "two")];
    let mut stored: Vec<IssueHashRow> = issues.iter().map(|i| known(7, i, "open")).collect();
    stored.push(known(7, &gone, "open"));
    // Already closed: not closed again.
    stored.push(known(7, &upstream_issue(4, "long closed"), "closed"));
    let plan = plan_step(&[complete(row, issues)], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(plan.issues_closed, 1);
    assert_eq!(plan.statements, store::close_issues(7, &[3], NOW));
}

/// Far enough that the fixtures' repos count as active.
const INACTIVE_DAYS: i64 = 100_000;

#[test]
fn failed_repo_is_not_swept_and_does_not_hold_the_cursor_but_a_cut_short_one_does() {
    let a = settled_row(1, "a", "a", LABEL);
    let b = settled_row(2, "b", "b", LABEL);
    let c = settled_row(3, "c", "c", LABEL);
    let kept = upstream_issue(1, "one");
    let mut failed = RepoWork::new(b.clone());
    failed.absorb(RepoOutcome::Failed(Failure::transient("HTTP 502")));
    assert!(matches!(failed.status, WorkStatus::Failed(_)));
    let mut cut_short = RepoWork::new(c.clone());
    cut_short.absorb(found(&c, Some(&[LABEL]), vec![], Some("cursor-2")));
    assert_eq!(
        cut_short.status,
        WorkStatus::Open,
        "a second page is still to fetch"
    );
    let stored = vec![
        known(1, &kept, "open"),
        known(2, &kept, "open"),
        known(3, &kept, "open"),
    ];

    let plan = plan_step(
        &[complete(a.clone(), vec![kept.clone()]), failed, cut_short],
        &stored,
        NOW,
        INACTIVE_DAYS,
    );
    assert_eq!(
        plan.done, 2,
        "the cursor moves past `a` and the failed `b` (retried later), not `c`"
    );
    assert!(
        plan.statements.is_empty(),
        "no sweep of `b` or `c`: {:?}",
        plan.statements
    );

    // A complete repo after a failed one is written and passed.
    let mut failed = RepoWork::new(b.clone());
    failed.absorb(RepoOutcome::Failed(Failure::transient("HTTP 502")));
    let plan = plan_step(&[failed, complete(c, vec![])], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(plan.done, 2);
    assert!(closes_for(&plan, 2).is_empty());
    assert_eq!(closes_for(&plan, 3).len(), 1);
}

#[test]
fn label_not_found_records_it_and_sweeps_nothing() {
    let row = settled_row(5, "o", "r", LABEL);
    let mut w = RepoWork::new(row.clone());
    // The repo dropped the label: the first answer resolves nothing.
    w.absorb(found(&row, Some(&["bug", "enhancement"]), vec![], None));
    assert_eq!(w.status, WorkStatus::Complete);
    let stored = vec![known(5, &upstream_issue(1, "one"), "open")];
    let plan = plan_step(&[w], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(plan.issues_closed, 0);
    assert!(closes_for(&plan, 5).is_empty());
    assert_eq!(plan.repos_skipped, 1);
    assert_eq!(plan.done, 1);
    assert_eq!(plan.statements.len(), 1, "only the repo's new label status");
    assert!(plan.statements[0]
        .sql
        .contains("UPDATE repos SET name_with_owner"));
    let SqlValue::Text(rows) = &plan.statements[0].params[0] else {
        panic!("the repos' JSON: {:?}", plan.statements[0].params);
    };
    assert!(rows.contains("\"not_found\""), "{rows}");
}

#[test]
fn missing_repo_is_marked_once() {
    let row = settled_row(5, "o", "r", LABEL);
    let gone = |row: &RepoRow| {
        let mut w = RepoWork::new(row.clone());
        w.absorb(RepoOutcome::NotFound {
            message: "Could not resolve to a Repository".into(),
        });
        w
    };
    let stored = vec![known(5, &upstream_issue(1, "one"), "open")];
    let plan = plan_step(&[gone(&row)], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(
        plan.statements,
        vec![store::mark_repo_upstream_missing(
            5,
            "Could not resolve to a Repository",
            NOW
        )]
    );
    assert_eq!((plan.done, plan.repos_skipped), (1, 1));
    let already = RepoRow {
        upstream_status: "not_found".into(),
        ..row
    };
    assert!(plan_step(&[gone(&already)], &stored, NOW, INACTIVE_DAYS)
        .statements
        .is_empty());
}

#[test]
fn new_and_changed_issues_are_upserted_once_each() {
    let row = settled_row(7, "o", "r", LABEL);
    let same = upstream_issue(1, "one");
    let mut edited = upstream_issue(2, "two");
    let stored = vec![known(7, &same, "open"), known(7, &edited, "open")];
    edited.comment_count += 1;
    // GitHub can repeat an issue across pages while it is being edited.
    let issues = vec![same, edited.clone(), upstream_issue(3, "new"), edited];
    let plan = plan_step(&[complete(row, issues)], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(plan.issues_upserted, 2);
    assert_eq!(plan.issues_closed, 0);
    assert_eq!(plan.statements.len(), 1);
    let rows: Vec<Value> = match &plan.statements[0].params[0] {
        contribot_core::sql::SqlValue::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("rows travel as one JSON parameter, got {other:?}"),
    };
    assert_eq!(rows.len(), 2);
}

/// The stored row says `closed` (a complete refresh once missed it) but
/// GitHub returns it open with the same content: the issue must be written
/// back open, or it stays closed for good.
#[test]
fn issue_closed_locally_but_open_upstream_is_reopened() {
    let row = settled_row(7, "o", "r", LABEL);
    let issue = upstream_issue(1, "one");
    let stored = vec![known(7, &issue, "closed")];
    let plan = plan_step(&[complete(row, vec![issue])], &stored, NOW, INACTIVE_DAYS);
    assert_eq!(plan.issues_upserted, 1, "the reopened issue is written");
}

/// End to end on SQLite: read a step, plan against GitHub's answer, write;
/// then the same answer again plans no writes and queues nothing new.
#[test]
fn unchanged_upstream_writes_and_queues_nothing_on_the_second_pass() {
    let conn = migrated();
    seed_listed(
        &conn,
        &[
            listed("a", "one", 0, &["Good First Issue"]),
            listed("b", "two", 1, &["help wanted"]),
        ],
    );
    let upstream = |row: &RepoRow| -> Vec<IssueMeta> {
        (1..=3)
            .map(|n| upstream_issue(n, &format!("{} #{n}", row.name)))
            .collect()
    };
    let answer = |row: &RepoRow, labels: &[&str]| -> RepoWork {
        let mut w = RepoWork::new(row.clone());
        w.absorb(found(row, Some(labels), upstream(row), None));
        if w.status == WorkStatus::Open {
            // Asked by the listed spelling first; asked again by the real one.
            w.absorb(found(row, None, upstream(row), None));
        }
        assert_eq!(w.status, WorkStatus::Complete, "{}", row.name);
        w
    };
    let pass = |conn: &Connection| -> StepPlan {
        let (repos, stored) = read_step(conn, None, 10);
        let work: Vec<RepoWork> = repos
            .iter()
            .map(|r| {
                if r.name == "one" {
                    answer(r, &[LABEL])
                } else {
                    answer(r, &["help wanted"])
                }
            })
            .collect();
        let plan = plan_step(&work, &stored, NOW, INACTIVE_DAYS);
        run(conn, &plan.statements);
        plan
    };

    let first = pass(&conn);
    assert_eq!(
        (first.done, first.repos_changed, first.issues_upserted),
        (2, 2, 6)
    );
    assert_eq!(
        repo_column(&conn, id_of(&conn, "a", "one"), "resolved_label"),
        LABEL
    );
    let queued = outbox(&conn, 100);
    assert_eq!(queued.len(), 8, "2 repos and 6 issues");
    run(&conn, &store::mark_queued(&queued, NOW));

    let before = conn.total_changes();
    let second = pass(&conn);
    assert!(
        second.statements.is_empty(),
        "second pass planned {:?}",
        second.statements
    );
    assert_eq!(conn.total_changes(), before);
    assert!(outbox(&conn, 100).is_empty());
}

#[test]
fn heuristic_fallbacks_are_handed_back_to_ai_a_bounded_few_per_run() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let repo = id_of(&conn, "owner000", "repo-0");
    for n in 1..=5 {
        conn.execute(
            "INSERT INTO issues (repo_id, number, title, url, state, content_hash, queued_hash, analysis_hash, \
             analysis_model, fallback_reason, processing_status, analyzed_at, created_at, updated_at) \
             VALUES (?1, ?2, 't', 'u', 'open', 'h', 'h', 'h', 'heuristic-v1', ?3, 'completed', ?2, 0, 0)",
            rusqlite::params![
                repo,
                n,
                if n == 5 { "offline heuristic backend (AI_BACKEND=heuristic)" } else { "AI daily allocation exhausted" }
            ],
        )
        .unwrap();
    }
    assert_eq!(
        written(&conn, &store::requeue_heuristic_fallbacks(3, NOW)),
        3,
        "bounded"
    );
    let outbox: Vec<store::OutboxRow> =
        contribot_core::sql::decode_packed(&run(&conn, &[store::outbox(100)])[0]).unwrap();
    assert_eq!(
        outbox.iter().filter(|o| o.kind == "issue").count(),
        3,
        "oldest three back in the outbox"
    );
    assert_eq!(
        written(&conn, &store::requeue_heuristic_fallbacks(3, NOW)),
        1,
        "the chosen offline one never"
    );
    assert_eq!(
        scalar(
            &conn,
            "SELECT processing_status FROM issues WHERE number = 5"
        ),
        Value::from("completed")
    );
}

#[test]
fn a_carried_repo_keeps_its_resolved_label_and_the_retry_pass_asks_under_it() {
    let conn = migrated();
    seed_listed(&conn, &many_listed(1));
    let id = seeded_ids(&conn, 1)[0];
    // Listed as "good-first-issue"; the repo's label is "good first issue":
    // the first answer's issues came back for the wrong name.
    let row = repo_row(id, "owner000", "repo-0", &["good-first-issue"]);
    let mut w = RepoWork::new(row.clone());
    w.absorb(found(
        &row,
        Some(&["bug", "good first issue"]),
        vec![],
        None,
    ));
    let next = w.next.clone().expect("asked again under the resolved name");
    assert_eq!(
        (next.issue_label.as_deref(), next.after),
        (Some("good first issue"), None)
    );
    // Carried to the retry pass instead of asked again in this step.
    w.next = None;
    w.status = WorkStatus::Carried("re-resolved label".into());
    let plan = plan_step(std::slice::from_ref(&w), &[], NOW, INACTIVE_DAYS);
    assert_eq!(
        plan.statements,
        vec![store::store_resolved_label(id, "good first issue", NOW)]
    );
    assert_eq!(
        (plan.done, plan.repos_seen, plan.issues_upserted),
        (1, 0, 0)
    );
    run(&conn, &plan.statements);
    let stored = select(
        &conn,
        &format!("SELECT label_status, resolved_label FROM repos WHERE id = {id}"),
    );
    assert_eq!(
        stored,
        vec![json!({"label_status": "resolved", "resolved_label": "good first issue"})]
    );
    // The retry pass starts from the stored row: one query, under that name.
    let retried = RepoWork::new(RepoRow {
        label_status: "resolved".into(),
        resolved_label: Some("good first issue".into()),
        ..row
    });
    assert_eq!(
        retried.next.and_then(|q| q.issue_label).as_deref(),
        Some("good first issue")
    );
    // Stored already: carrying it again writes nothing.
    let mut again = w.clone();
    again.row.label_status = "resolved".into();
    again.row.resolved_label = Some("good first issue".into());
    assert!(plan_step(&[again], &[], NOW, INACTIVE_DAYS)
        .statements
        .is_empty());
}
