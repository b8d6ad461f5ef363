//! The admin API's decisions and statements: request validation, routing,
//! the enqueue and reprocess workflows run over SQLite (with `migrations/`
//! applied) and a recording queue, and the log reader run over an in-memory
//! bucket. Every D1 batch goes through `support::try_run`, which also checks
//! D1's limits on each statement.

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;

use contribot_core::admin::enqueue::{
    self, insert_manual_repos, manual_content_hash, InsertedRow, DEFAULT_MANUAL_LABEL,
    MAX_ENQUEUE_ITEMS,
};
use contribot_core::admin::logs::{
    LogCursor, TruncationReason, MAX_LOG_OBJECTS, MAX_LOG_OUTPUT_BYTES,
};
use contribot_core::admin::reprocess::{self, ReprocessStatus, DEFAULT_REPROCESS_LIMIT};
use contribot_core::admin::{
    self, mark_sent, parse_enqueue, parse_log_query, parse_reprocess, parse_status_query,
    AdminError, AdminInvocation, ItemKind, LogPage, LogScan, LogStep, ReprocessTarget, Route,
    Routing, SentItem,
};
use contribot_core::budget::Budget;
use contribot_core::github::{HttpRequest, HttpResponse};
use contribot_core::logrec::{Level, LogBook};
use contribot_core::messages::QueueMessage;
use contribot_core::platform::{Metered, Platform, QueueName};
use contribot_core::slug::RepoSlug;
use contribot_core::sql::{decode_packed, decode_rows, Statement, MAX_BOUND_PARAMS};
use contribot_core::store::{self, OutboxRow};
use rusqlite::Connection;
use serde_json::{json, Value};
use support::{block_on, migrated, run, scalar, select};

const NOW: i64 = 1_750_000_000_000;

// ------------------------------------------------------------------ harness

/// D1 on SQLite, and a processing queue that records each `send_batch`
/// (and can be told to fail the n-th one).
struct Local {
    conn: Connection,
    sends: Vec<Vec<QueueMessage>>,
    fail_send: Option<usize>,
    fail_db_after: Option<usize>,
    db_calls: usize,
}

impl Local {
    fn new() -> Self {
        Local {
            conn: migrated(),
            sends: Vec::new(),
            fail_send: None,
            fail_db_after: None,
            db_calls: 0,
        }
    }

    fn batches(&self) -> Vec<usize> {
        self.sends.iter().map(Vec::len).collect()
    }
}

impl Platform for Local {
    async fn db_batch(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String> {
        self.db_calls += 1;
        if self.fail_db_after.is_some_and(|n| self.db_calls > n) {
            return Err("D1_ERROR: injected".into());
        }
        support::try_run(&self.conn, statements).map(|r| r.rows)
    }

    async fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String> {
        Err(format!("admin routes make no fetch ({})", request.url))
    }

    async fn send_batch(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        _delay_secs: u64,
    ) -> Result<(), String> {
        assert_eq!(queue, QueueName::Processing);
        assert!(messages.len() <= 100, "send_batch of {}", messages.len());
        if self.fail_send == Some(self.sends.len()) {
            return Err("Queue send failed: injected".into());
        }
        self.sends.push(messages.to_vec());
        Ok(())
    }

    async fn sleep(&mut self, _ms: u64) {}

    fn now_ms(&self) -> i64 {
        NOW
    }
}

fn invocation() -> AdminInvocation {
    AdminInvocation {
        id: "inv-admin1".into(),
        run_id: "admin-1".into(),
        started_at: NOW,
    }
}

fn book() -> LogBook {
    LogBook::new("admin-1", "inv-admin1", Level::Debug)
}

fn events<'a>(book: &'a LogBook, event: &str) -> Vec<&'a Value> {
    book.records()
        .iter()
        .filter(|r| r.event == event)
        .map(|r| &r.fields)
        .collect()
}

fn body(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn items(urls: &[String]) -> Vec<u8> {
    body(json!({"items": urls.iter().map(|u| json!({"repoUrl": u})).collect::<Vec<_>>()}))
}

fn urls(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://github.com/owner{i:04}/repo-{i}"))
        .collect()
}

fn enqueue(local: &mut Local, body: &[u8], budget: u32) -> (admin::EnqueueReport, LogBook) {
    let request = parse_enqueue(body).expect("valid request");
    let mut book = book();
    let mut p = Metered::new(local, Budget::new(budget));
    let report = block_on(admin::enqueue::enqueue(
        &mut p,
        request,
        &invocation(),
        &mut book,
    ))
    .expect("enqueue runs");
    assert!(p.budget.used() < budget, "the R2 log still fits");
    (report, book)
}

fn reprocess(local: &mut Local, target: Value) -> Result<admin::ReprocessReport, AdminError> {
    let target = parse_reprocess(&body(target)).expect("valid target");
    let mut book = book();
    let mut p = Metered::new(local, Budget::new(45));
    block_on(reprocess::reprocess(
        &mut p,
        &target,
        &invocation(),
        &mut book,
    ))
}

/// A scraped repo: content hash `h-<owner>` (64 hex), given status.
fn seed_repo(conn: &Connection, owner: &str, status: &str) -> i64 {
    let hash = hex_hash(owner);
    conn.execute(
        "INSERT INTO repos (owner, name, data_source, content_hash, queued_hash, analysis_hash, \
         prompt_version, processing_status, attempts, last_error, created_at, updated_at) \
         VALUES (?1, 'r', 'awesome-for-beginners', ?2, ?2, ?2, 'v1', ?3, 3, 'boom', ?4, ?4)",
        rusqlite::params![owner, hash, status, NOW - 1000],
    )
    .unwrap();
    conn.last_insert_rowid()
}

fn seed_issue(conn: &Connection, repo_id: i64, number: i64, state: &str, status: &str) -> i64 {
    let hash = hex_hash(&format!("{repo_id}#{number}"));
    conn.execute(
        "INSERT INTO issues (repo_id, number, title, url, state, content_hash, queued_hash, \
         analysis_hash, processing_status, attempts, last_error, created_at, updated_at) \
         VALUES (?1, ?2, 't', 'u', ?3, ?4, ?4, ?4, ?5, 3, 'boom', ?6, ?6)",
        rusqlite::params![repo_id, number, state, hash, status, NOW - 1000],
    )
    .unwrap();
    conn.last_insert_rowid()
}

fn hex_hash(seed: &str) -> String {
    contribot_core::hash::text_hash(seed).0
}

// ------------------------------------------------------------------ routing and auth

#[test]
fn every_route_has_one_method() {
    for (method, path, route) in [
        ("POST", "/admin/run", Route::Run),
        ("GET", "/admin/status", Route::Status),
        ("POST", "/admin/enqueue", Route::Enqueue),
        ("POST", "/admin/reprocess", Route::Reprocess),
        ("GET", "/admin/logs", Route::Logs),
    ] {
        assert_eq!(admin::route(method, path), Routing::Found(route));
        let other = if method == "GET" { "POST" } else { "GET" };
        assert_eq!(
            admin::route(other, path),
            Routing::MethodNotAllowed { allow: method }
        );
    }
    assert_eq!(admin::route("GET", "/admin/"), Routing::NotFound);
    assert!(Route::Enqueue.reads_body() && Route::Reprocess.reads_body());
    assert!(!Route::Logs.reads_body() && !Route::Run.reads_body());
}

#[test]
fn body_limit_is_inclusive() {
    assert!(!admin::body_too_large(admin::MAX_BODY_BYTES));
    assert!(admin::body_too_large(admin::MAX_BODY_BYTES + 1));
    assert!(admin::keep_draining(admin::MAX_BODY_BYTES + 1));
    assert!(!admin::keep_draining(admin::MAX_DRAIN_BYTES + 1));
    assert_eq!(AdminError::PayloadTooLarge.status(), 413);
}

#[test]
fn errors_carry_their_status_and_a_json_body() {
    let e = AdminError::NotFound("repo a/b is not in D1".into());
    assert_eq!(e.status(), 404);
    assert_eq!(
        e.to_json(),
        json!({"ok": false, "error": "repo a/b is not in D1"})
    );
}

// ------------------------------------------------------------------ enqueue: validation

#[test]
fn enqueue_rejects_bodies_that_are_not_an_items_array() {
    for (raw, needle) in [
        ("", "empty"),
        ("not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ("{}", "`items` is required"),
        (r#"{"items": {"repoUrl": "x"}}"#, "must be an array"),
    ] {
        let e = parse_enqueue(raw.as_bytes()).unwrap_err();
        assert_eq!(e.status(), 400, "{raw}");
        assert!(e.to_string().contains(needle), "{raw}: {e}");
    }
}

#[test]
fn enqueue_accepts_1000_items_and_refuses_1001() {
    let ok = parse_enqueue(&items(&urls(MAX_ENQUEUE_ITEMS))).unwrap();
    assert_eq!(ok.repos.len(), 1000);
    let e = parse_enqueue(&items(&urls(MAX_ENQUEUE_ITEMS + 1))).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("1001"), "{e}");
    assert!(e.to_string().contains("at most 1000"), "{e}");
}

#[test]
fn invalid_items_are_reported_by_index_and_skipped() {
    let long = "x".repeat(101);
    let request = parse_enqueue(&body(json!({"items": [
        {"repoUrl": "https://github.com/ok/one"},
        {"repoUrl": "http://github.com/a/b"},
        {"repoUrl": "https://gitlab.com/a/b"},
        {"repoUrl": "https://github.com/a"},
        {"repoUrl": "https://github.com/a/b/c"},
        {"repoUrl": "ftp://x"},
        {"repoUrl": "https://www.github.com/a/b"},
        {"repoUrl": "https://github.com/a/b?x=1"},
        {"repoUrl": "https://github.com/./b"},
        {"repoUrl": "https://github.com/orgs/b"},
        {"repoUrl": 7},
        {"label": "no url"},
        "https://github.com/a/b",
        {"repoUrl": "https://github.com/ok/two", "label": 5},
        {"repoUrl": "https://github.com/ok/three", "label": long},
        {"repoUrl": "https://github.com/ok/four", "label": "  "},
        {"repoUrl": "https://github.com/ok/five/", "label": "help wanted"},
    ]})))
    .unwrap();
    let slugs: Vec<String> = request.repos.iter().map(|r| r.slug.full_name()).collect();
    assert_eq!(slugs, ["ok/one", "ok/five"]);
    assert_eq!(request.errors.len(), 15);
    assert_eq!(
        request.errors[0],
        "items[1]: invalid repoUrl: http://github.com/a/b (expected https://github.com/<owner>/<name>)"
    );
    assert!(request.errors[4].starts_with("items[5]: invalid repoUrl: ftp://x"));
    assert!(request.errors[7].starts_with("items[8]: invalid repoUrl: https://github.com/./b ("));
    assert!(
        request.errors[8].contains("GitHub page"),
        "{}",
        request.errors[8]
    );
    assert_eq!(request.errors[9], "items[10]: repoUrl must be a string");
    assert_eq!(request.errors[10], "items[11]: missing repoUrl");
    assert!(request.errors[11].starts_with("items[12]: must be an object"));
    assert_eq!(request.errors[12], "items[13]: label must be a string");
    assert_eq!(
        request.errors[13],
        "items[14]: label longer than 100 characters"
    );
    assert!(request.errors[14].starts_with("items[15]: label is empty"));
    assert_eq!(request.repos[1].label, "help wanted");
    assert_eq!(request.repos[0].label, DEFAULT_MANUAL_LABEL);
}

#[test]
fn a_label_of_exactly_100_characters_is_accepted() {
    let label = "é".repeat(100);
    let request = parse_enqueue(&body(
        json!({"items": [{"repoUrl": "https://github.com/a/b", "label": label}]}),
    ))
    .unwrap();
    assert!(request.errors.is_empty());
    assert_eq!(request.repos[0].label, label);
}

#[test]
fn repeats_within_a_request_count_once_whatever_their_case_or_slash() {
    let request = parse_enqueue(&body(json!({"items": [
        {"repoUrl": "https://github.com/Foo/Bar"},
        {"repoUrl": "https://github.com/foo/bar/"},
        {"repoUrl": "https://github.com/foo/bar", "label": "other"},
        {"repoUrl": "https://github.com/foo/baz"},
    ]})))
    .unwrap();
    assert_eq!(request.repos.len(), 2);
    assert_eq!(request.duplicates, 2);
    assert_eq!(request.repos[0].slug, RepoSlug::new("foo", "bar").unwrap());
}

#[test]
fn the_manual_hash_is_sha256_of_the_canonical_array() {
    let slug = RepoSlug::new("o", "r").unwrap();
    let h = manual_content_hash(&slug, "good first issue");
    assert_eq!(
        h,
        contribot_core::hash::text_hash(r#"["manual/v1","o","r","good first issue"]"#)
    );
    assert_ne!(h, manual_content_hash(&slug, "help wanted"));
    let m = QueueMessage::repo("o", "r", h.as_str(), enqueue::MANUAL_PRIORITY);
    assert_eq!(QueueMessage::parse(&m.to_json()).unwrap(), m);
}

// ------------------------------------------------------------------ enqueue: SQL

#[test]
fn manual_inserts_stay_under_the_parameter_limit_and_return_only_new_rows() {
    let conn = migrated();
    let request = parse_enqueue(&items(&urls(250))).unwrap();
    let statements = insert_manual_repos(&request.repos, NOW);
    assert!(statements
        .iter()
        .all(|s| s.params.len() <= MAX_BOUND_PARAMS));
    let rows = run(&conn, &statements);
    let inserted: usize = rows.iter().map(Vec::len).sum();
    assert_eq!(inserted, 250);
    let first: Vec<InsertedRow> = decode_rows(&rows[0]).unwrap();
    assert!(first.iter().all(|r| r.id > 0));

    let again = run(&conn, &insert_manual_repos(&request.repos, NOW + 1));
    assert_eq!(again.iter().map(Vec::len).sum::<usize>(), 0);
    assert_eq!(
        scalar(&conn, "SELECT MAX(created_at) FROM repos"),
        json!(NOW)
    );

    let row = &select(&conn, "SELECT * FROM repos WHERE owner = 'owner0007'")[0];
    assert_eq!(row["data_source"], "manual");
    assert_eq!(row["listed_labels"], r#"["good first issue"]"#);
    assert_eq!(row["active"], 1);
    assert_eq!(row["processing_status"], "pending");
    assert_eq!(row["priority"], enqueue::MANUAL_PRIORITY);
    assert_eq!(row["content_hash"], request.repos[7].content_hash.0);
    assert_eq!(row["queued_hash"], Value::Null);
}

#[test]
fn a_repo_from_the_list_is_not_touched_by_a_manual_insert() {
    let conn = migrated();
    let id = seed_repo(&conn, "listed", "completed");
    let request = parse_enqueue(&items(&["https://github.com/listed/r".into()])).unwrap();
    let rows = run(&conn, &insert_manual_repos(&request.repos, NOW));
    assert!(rows[0].is_empty());
    let row = &select(&conn, &format!("SELECT * FROM repos WHERE id = {id}"))[0];
    assert_eq!(row["data_source"], "awesome-for-beginners");
    assert_eq!(row["processing_status"], "completed");
}

#[test]
fn mark_sent_marks_only_rows_still_holding_the_sent_hash() {
    let conn = migrated();
    let a = seed_repo(&conn, "a", "pending");
    let b = seed_repo(&conn, "b", "pending");
    conn.execute_batch("UPDATE repos SET queued_hash = NULL")
        .unwrap();
    let items: Vec<SentItem> = (0..120)
        .map(|i| SentItem {
            kind: ItemKind::Repo,
            id: 1000 + i,
            content_hash: "0".repeat(64),
        })
        .chain([
            SentItem {
                kind: ItemKind::Repo,
                id: a,
                content_hash: hex_hash("a"),
            },
            SentItem {
                kind: ItemKind::Repo,
                id: b,
                content_hash: hex_hash("stale"),
            },
        ])
        .collect();
    let statements = mark_sent(&items);
    assert_eq!(statements.len(), 3);
    run(&conn, &statements);
    let queued = select(
        &conn,
        "SELECT owner, queued_hash IS content_hash AS q FROM repos ORDER BY owner",
    );
    assert_eq!(
        queued,
        vec![json!({"owner": "a", "q": 1}), json!({"owner": "b", "q": 0})]
    );
}

// ------------------------------------------------------------------ enqueue: workflow

#[test]
fn enqueue_of_250_new_repos_sends_100_100_50_and_marks_them_queued() {
    let mut local = Local::new();
    let (report, book) = enqueue(&mut local, &items(&urls(250)), 45);
    assert_eq!(report.status(), 202);
    assert_eq!(
        report.to_json(),
        json!({"ok": true, "enqueued": 250, "skipped": 0, "invalid": 0, "unsent": 0, "errors": [], "batches": [100, 100, 50]})
    );
    assert_eq!(local.batches(), [100, 100, 50]);
    let sizes: Vec<Value> = events(&book, "send_batch")
        .iter()
        .map(|f| f["size"].clone())
        .collect();
    assert_eq!(sizes, [json!(100), json!(100), json!(50)]);
    let last = book.records().last().unwrap();
    assert_eq!(last.event, "summary");
    assert_eq!(last.fields["enqueued"], 250);
    assert_eq!(last.fields["subrequests_used"], 1 + 3 + 2);

    // Every message is valid and names a row that is now marked queued.
    let first = &local.sends[0][0];
    assert_eq!(QueueMessage::parse(&first.to_json()).unwrap(), *first);
    assert_eq!(
        scalar(
            &local.conn,
            "SELECT COUNT(*) FROM repos WHERE queued_hash IS content_hash"
        ),
        json!(250)
    );
    let outbox: Vec<OutboxRow> =
        contribot_core::sql::decode_packed(&run(&local.conn, &[store::outbox(1000)])[0]).unwrap();
    assert!(outbox.is_empty(), "nothing left for the scraper's drain");

    let ledger = select(&local.conn, "SELECT * FROM invocations");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["service"], "scraper");
    assert_eq!(ledger[0]["run_id"], "admin-1");
    assert_eq!(ledger[0]["subrequests"], 6);
    assert_eq!(ledger[0]["log_key"], invocation().log_key());
    assert!(invocation().log_key().contains("/scraper-admin-1-"));
}

#[test]
fn enqueueing_the_same_items_again_queues_nothing() {
    let mut local = Local::new();
    enqueue(&mut local, &items(&urls(250)), 45);
    let before = select(&local.conn, "SELECT * FROM repos ORDER BY id");
    let (report, _) = enqueue(&mut local, &items(&urls(250)), 45);
    assert_eq!(report.enqueued, 0);
    assert_eq!(report.skipped, 250);
    assert!(report.batches.is_empty());
    assert_eq!(local.sends.len(), 3, "no new send_batch");
    assert_eq!(
        select(&local.conn, "SELECT * FROM repos ORDER BY id"),
        before
    );
}

#[test]
fn existing_repeated_and_invalid_items_are_counted_apart() {
    let mut local = Local::new();
    seed_repo(&local.conn, "listed", "completed");
    let raw = body(json!({"items": [
        {"repoUrl": "https://github.com/listed/r"},
        {"repoUrl": "https://github.com/new/one"},
        {"repoUrl": "https://github.com/NEW/one/"},
        {"repoUrl": "https://gitlab.com/a/b"},
    ]}));
    let (report, book) = enqueue(&mut local, &raw, 45);
    assert_eq!(
        report.to_json(),
        json!({"ok": true, "enqueued": 1, "skipped": 2, "invalid": 1, "unsent": 0,
               "errors": ["items[3]: invalid repoUrl: https://gitlab.com/a/b (expected https://github.com/<owner>/<name>)"],
               "batches": [1]})
    );
    assert_eq!(events(&book, "item_invalid").len(), 1);
}

#[test]
fn an_empty_items_array_writes_no_repos_and_sends_nothing() {
    let mut local = Local::new();
    let (report, _) = enqueue(&mut local, &body(json!({"items": []})), 45);
    assert_eq!(report.status(), 202);
    assert_eq!((report.enqueued, report.skipped), (0, 0));
    assert!(local.sends.is_empty());
    assert_eq!(local.db_calls, 1, "only the ledger row");
}

#[test]
fn a_failed_send_reports_partial_success_and_leaves_the_rest_to_the_outbox() {
    let mut local = Local::new();
    local.fail_send = Some(1);
    let (report, book) = enqueue(&mut local, &items(&urls(250)), 45);
    assert_eq!(report.status(), 502);
    assert!(report.failed);
    assert_eq!((report.enqueued, report.unsent), (100, 150));
    assert_eq!(report.batches, [100]);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("150 new repo(s) are saved in D1 but not queued"),
        "{}",
        report.errors[0]
    );
    assert!(report.errors[0].contains("outbox"));
    // The three calls go out as one concurrent group; the queue refuses the
    // second and the third.
    assert_eq!(events(&book, "send_batch_failed").len(), 2);
    assert_eq!(report.to_json()["ok"], false);

    let outbox: Vec<OutboxRow> =
        contribot_core::sql::decode_packed(&run(&local.conn, &[store::outbox(1000)])[0]).unwrap();
    assert_eq!(outbox.len(), 150, "the unsent wait for the scraper's drain");
    let sent: Vec<String> = local.sends[0].iter().map(QueueMessage::item_key).collect();
    assert!(outbox
        .iter()
        .all(|o| !sent.contains(&format!("{}/{}", o.owner, o.name))));
}

#[test]
fn a_thousand_items_fit_the_budget_and_a_small_budget_stops_early() {
    let mut local = Local::new();
    let (report, _) = enqueue(&mut local, &items(&urls(1000)), 45);
    assert_eq!(report.batches, vec![100; 10]);
    assert_eq!(report.enqueued, 1000);

    let mut local = Local::new();
    // insert + 2 sends + close + log
    let (report, _) = enqueue(&mut local, &items(&urls(1000)), 5);
    assert_eq!(report.batches, [100, 100]);
    assert_eq!(report.unsent, 800);
    assert_eq!(report.status(), 502);
    assert!(
        report.errors[0].contains("subrequest budget"),
        "{}",
        report.errors[0]
    );
}

#[test]
fn a_failed_insert_is_an_error_and_sends_nothing() {
    let mut local = Local::new();
    local.fail_db_after = Some(0);
    let request = parse_enqueue(&items(&urls(3))).unwrap();
    let mut book = book();
    let mut p = Metered::new(&mut local, Budget::new(45));
    let e = block_on(admin::enqueue::enqueue(
        &mut p,
        request,
        &invocation(),
        &mut book,
    ))
    .unwrap_err();
    assert_eq!(e.status(), 500);
    assert!(e.to_string().contains("nothing was enqueued"), "{e}");
    assert!(local.sends.is_empty());
}

#[test]
fn a_failed_close_after_sending_is_reported() {
    let mut local = Local::new();
    local.fail_db_after = Some(1);
    let (report, _) = enqueue(&mut local, &items(&urls(3)), 45);
    assert_eq!(report.enqueued, 3);
    assert_eq!(report.status(), 502);
    assert!(
        report.errors[0].contains("may queue them again"),
        "{:?}",
        report.errors
    );
}

// ------------------------------------------------------------------ reprocess: validation

#[test]
fn reprocess_targets_parse() {
    let parse = |v: Value| parse_reprocess(&body(v));
    assert_eq!(
        parse(json!({"repo": "Foo/Bar"})).unwrap(),
        ReprocessTarget::Repo(RepoSlug::new("foo", "bar").unwrap())
    );
    assert_eq!(
        parse(json!({"issue": "o/r#12"})).unwrap(),
        ReprocessTarget::Issue {
            repo: RepoSlug::new("o", "r").unwrap(),
            number: 12
        }
    );
    assert_eq!(
        parse(json!({"status": "failed"})).unwrap(),
        ReprocessTarget::Status {
            status: ReprocessStatus::Failed,
            limit: DEFAULT_REPROCESS_LIMIT
        }
    );
    assert_eq!(
        parse(json!({"status": "completed", "limit": 1000})).unwrap(),
        ReprocessTarget::Status {
            status: ReprocessStatus::Completed,
            limit: 1000
        }
    );
    for (bad, needle) in [
        (json!({}), "exactly one"),
        (json!({"repo": "a/b", "status": "failed"}), "exactly one"),
        (json!({"repo": "ab"}), "owner/name"),
        (json!({"repo": 3}), "must be a string"),
        (json!({"issue": "o/r"}), "owner/name#number"),
        (json!({"issue": "o/r#0"}), "positive"),
        (json!({"issue": "o/r#x"}), "positive"),
        (
            json!({"status": "processing"}),
            "\"failed\", \"pending\" or \"completed\"",
        ),
        (json!({"status": "failed", "limit": 1001}), "1 to 1000"),
        (json!({"status": "failed", "limit": 0}), "1 to 1000"),
        (json!({"status": "failed", "limit": "5"}), "1 to 1000"),
        (json!({"repo": "a/b", "limit": 5}), "only to a `status`"),
        (
            json!({"repo": "a/b", "force": true}),
            "unknown field `force`",
        ),
    ] {
        let e = parse(bad.clone()).unwrap_err();
        assert_eq!(e.status(), 400, "{bad}");
        assert!(e.to_string().contains(needle), "{bad}: {e}");
    }
}

// ------------------------------------------------------------------ reprocess: workflow

fn reset_state(conn: &Connection, table: &str, id: i64) -> Value {
    select(
        conn,
        &format!(
            "SELECT processing_status, attempts, last_error, analysis_hash, queued_hash IS content_hash AS queued \
             FROM {table} WHERE id = {id}"
        ),
    )
    .remove(0)
}

#[test]
fn reprocessing_a_repo_resets_and_requeues_it() {
    let mut local = Local::new();
    let id = seed_repo(&local.conn, "o", "completed");
    let report = reprocess(&mut local, json!({"repo": "O/r"})).unwrap();
    assert_eq!(
        report.to_json(),
        json!({"ok": true, "matched": 1, "requeued": 1, "unsent": 0, "batches": [1], "errors": []})
    );
    assert_eq!(
        reset_state(&local.conn, "repos", id),
        json!({"processing_status": "pending", "attempts": 0, "last_error": null, "analysis_hash": null, "queued": 1})
    );
    assert_eq!(
        local.sends[0][0],
        QueueMessage::repo("o", "r", &hex_hash("o"), 0)
    );
}

#[test]
fn reprocessing_an_issue_sends_an_issue_message() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn, "o", "completed");
    let issue = seed_issue(&local.conn, repo, 7, "open", "failed");
    let report = reprocess(&mut local, json!({"issue": "o/r#7"})).unwrap();
    assert_eq!(report.requeued, 1);
    assert_eq!(
        local.sends[0][0],
        QueueMessage::issue("o", "r", 7, &hex_hash(&format!("{repo}#7")), 0)
    );
    assert_eq!(
        reset_state(&local.conn, "issues", issue)["processing_status"],
        "pending"
    );
    assert_eq!(
        reset_state(&local.conn, "repos", repo)["processing_status"],
        "completed",
        "the repo is not touched"
    );
}

#[test]
fn unknown_and_unqueueable_targets_are_refused_without_changes() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn, "o", "completed");
    seed_issue(&local.conn, repo, 3, "closed", "completed");
    local
        .conn
        .execute(
            "INSERT INTO repos (owner, name, data_source, created_at, updated_at) \
             VALUES ('fresh', 'r', 'awesome-for-beginners', 0, 0)",
            [],
        )
        .unwrap();
    let before = select(&local.conn, "SELECT * FROM repos ORDER BY id");
    for (target, status, needle) in [
        (json!({"repo": "nope/r"}), 404, "repo nope/r is not in D1"),
        (json!({"issue": "o/r#99"}), 404, "issue o/r#99 is not in D1"),
        (json!({"issue": "nope/r#1"}), 404, "not in D1"),
        (json!({"repo": "fresh/r"}), 409, "not been scraped"),
        (json!({"issue": "o/r#3"}), 409, "closed"),
    ] {
        let e = reprocess(&mut local, target.clone()).unwrap_err();
        assert_eq!(e.status(), status, "{target}");
        assert!(e.to_string().contains(needle), "{target}: {e}");
    }
    assert!(local.sends.is_empty());
    assert_eq!(
        select(&local.conn, "SELECT * FROM repos ORDER BY id"),
        before
    );
    assert_eq!(
        scalar(
            &local.conn,
            "SELECT processing_status FROM issues WHERE number = 3"
        ),
        json!("completed")
    );
}

#[test]
fn reprocessing_failed_items_takes_repos_then_open_issues_of_active_repos() {
    let mut local = Local::new();
    let conn = &local.conn;
    let r1 = seed_repo(conn, "a", "failed");
    let r2 = seed_repo(conn, "b", "failed");
    let ok = seed_repo(conn, "c", "completed");
    let gone = seed_repo(conn, "d", "failed");
    conn.execute(
        &format!("UPDATE repos SET active = 0 WHERE id = {gone}"),
        [],
    )
    .unwrap();
    let i1 = seed_issue(conn, ok, 1, "open", "failed");
    let i2 = seed_issue(conn, r1, 2, "open", "failed");
    let closed = seed_issue(conn, ok, 3, "closed", "failed");
    let done = seed_issue(conn, ok, 4, "open", "completed");
    seed_issue(conn, gone, 5, "open", "failed");

    let report = reprocess(&mut local, json!({"status": "failed", "limit": 3})).unwrap();
    assert_eq!((report.matched, report.requeued), (3, 3));
    let keys: Vec<String> = local.sends[0].iter().map(QueueMessage::item_key).collect();
    assert_eq!(keys, ["a/r", "b/r", "c/r#1"]);
    let conn = &local.conn;
    for (table, id, status) in [
        ("repos", r1, "pending"),
        ("repos", r2, "pending"),
        ("issues", i1, "pending"),
        ("issues", i2, "failed"),
        ("issues", closed, "failed"),
        ("issues", done, "completed"),
        ("repos", gone, "failed"),
    ] {
        assert_eq!(
            reset_state(conn, table, id)["processing_status"],
            status,
            "{table} {id}"
        );
    }

    // The rest on a second call.
    let report = reprocess(&mut local, json!({"status": "failed"})).unwrap();
    let keys: Vec<String> = local.sends[1].iter().map(QueueMessage::item_key).collect();
    assert_eq!(keys, ["a/r#2"]);
    assert_eq!(report.requeued, 1);
}

#[test]
fn reprocessing_completed_items_clears_the_analysis_hash_so_the_processor_redoes_them() {
    let mut local = Local::new();
    let repo = seed_repo(&local.conn, "o", "completed");
    let issue = seed_issue(&local.conn, repo, 1, "open", "completed");
    let report = reprocess(&mut local, json!({"status": "completed"})).unwrap();
    assert_eq!(report.requeued, 2);
    let rows = run(&local.conn, &[store::repos_by_slug(&["o/r".into()])]);
    let row: Vec<store::ProcRepoRow> = decode_packed(&rows[0]).unwrap();
    assert_eq!(row[0].analysis_hash, None);
    assert_eq!(row[0].processing_status, "pending");
    assert_eq!(
        reset_state(&local.conn, "issues", issue)["analysis_hash"],
        Value::Null
    );
}

#[test]
fn reprocess_statements_match_the_same_rows_they_reset() {
    let conn = migrated();
    for i in 0..30 {
        let r = seed_repo(&conn, &format!("o{i:02}"), "pending");
        seed_issue(&conn, r, 1, "open", "pending");
    }
    let target = ReprocessTarget::Status {
        status: ReprocessStatus::Pending,
        limit: 40,
    };
    let statements = reprocess::reprocess_statements(&target, NOW);
    for s in &statements {
        support::assert_d1_shape(&conn, s);
    }
    let result = support::run_counted(&conn, &statements);
    assert_eq!(result.rows[0].len(), 40);
    assert_eq!(result.changes[1], 10, "issues reset");
    assert_eq!(result.changes[2], 30, "repos reset");
}

#[test]
fn a_failed_reprocess_send_leaves_items_pending_for_the_outbox() {
    let mut local = Local::new();
    for i in 0..150 {
        seed_repo(&local.conn, &format!("o{i:03}"), "failed");
    }
    local.fail_send = Some(1);
    let report = reprocess(&mut local, json!({"status": "failed"})).unwrap();
    assert_eq!(report.status(), 502);
    assert_eq!((report.requeued, report.unsent), (100, 50));
    assert!(
        report.errors[0].contains("50 item(s) are reset to pending"),
        "{:?}",
        report.errors
    );
    let outbox: Vec<OutboxRow> =
        contribot_core::sql::decode_packed(&run(&local.conn, &[store::outbox(1000)])[0]).unwrap();
    assert_eq!(outbox.len(), 50);
}

// ------------------------------------------------------------------ status

#[test]
fn status_query_bounds_runs_and_failures() {
    let q = parse_status_query(&[]).unwrap();
    assert_eq!((q.runs, q.failed), (10, 50));
    let q = parse_status_query(&[("runs".into(), "3".into())]).unwrap();
    assert_eq!(q.runs, 3);
    for bad in [
        ("runs", "0"),
        ("runs", "101"),
        ("failed", "x"),
        ("nope", "1"),
    ] {
        let e = parse_status_query(&[(bad.0.into(), bad.1.into())]).unwrap_err();
        assert_eq!(e.status(), 400, "{bad:?}");
    }
}

#[test]
fn status_report_has_counts_runs_failures_labels_and_backlog() {
    let conn = migrated();
    let r = seed_repo(&conn, "o", "failed");
    seed_issue(&conn, r, 1, "open", "pending");
    conn.execute_batch(
        "UPDATE repos SET label_status = 'not_found', listed_labels = '[\"x\"]'; \
         INSERT INTO dead_letters (queue, message_id, body, reason, attempts, received_at) \
           VALUES ('processing', 'm1', '{}', 'bad body', 1, 5); \
         INSERT INTO scrape_runs (id, trigger, data_source, started_at) VALUES ('run-1', 'cron', 'awesome-for-beginners', 1), ('run-2', 'cron', 'awesome-for-beginners', 2);",
    )
    .unwrap();
    let report = admin::status_report(&run(&conn, &admin::status_queries(1, 50, 0)), 0);
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["repos"],
        json!({"pending": 0, "processing": 0, "completed": 0, "failed": 1})
    );
    assert_eq!(report["issues"]["pending"], 1);
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert_eq!(report["runs"][0]["id"], "run-2");
    let failed: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.contains(&"message") && failed.contains(&"repo"));
    assert_eq!(
        report["label_not_found"],
        json!([{"repo": "o/r", "listed_labels": ["x"]}])
    );
    assert_eq!(report["backlog"]["issues"], 1);
    assert_eq!(report["ai"]["day"], "1970-01-01");
    assert_eq!(report["ai"]["cap"], 9_000.0);
    assert_eq!(report["ai"]["at_cap"], "heuristic_now_upgrade_later");
    assert_eq!(report["ai"]["backlog"]["pending"], 1);
}

// ------------------------------------------------------------------ logs: query

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[test]
fn the_log_query_needs_a_valid_date_and_known_filters() {
    for (query, needle) in [
        (vec![], "`date` is required"),
        (vec![("date", "2026-13-01")], "YYYY-MM-DD"),
        (vec![("date", "../../x")], "YYYY-MM-DD"),
        (
            vec![("date", "2026-01-01"), ("service", "api")],
            "\"scraper\" or \"processor\"",
        ),
        (
            vec![("date", "2026-01-01"), ("level", "loud")],
            "debug, info, warn or error",
        ),
        (
            vec![("date", "2026-01-01"), ("run", "a/b")],
            "run or batch id",
        ),
        (
            vec![("date", "2026-01-01"), ("limit", "10001")],
            "1 to 10000",
        ),
        (vec![("date", "2026-01-01"), ("limit", "0")], "1 to 10000"),
        (
            vec![("date", "2026-01-01"), ("lvl", "warn")],
            "unknown query parameter `lvl`",
        ),
        (
            vec![("date", "2026-01-01"), ("date", "2026-01-02")],
            "more than once",
        ),
        (
            vec![
                ("date", "2026-01-01"),
                ("cursor", "logs/2026/01/02/x-1.jsonl:3"),
            ],
            "cursor",
        ),
        (
            vec![("date", "2026-01-01"), ("cursor", "nonsense")],
            "cursor",
        ),
    ] {
        let e = parse_log_query(&pairs(&query)).unwrap_err();
        assert_eq!(e.status(), 400, "{query:?}");
        assert!(e.to_string().contains(needle), "{query:?}: {e}");
    }
    let q = parse_log_query(&pairs(&[("date", "2026-01-01")])).unwrap();
    assert_eq!(q.limit, 1000);
    assert_eq!(q.list_prefix(), "logs/2026/01/01/");
}

#[test]
fn the_listing_is_narrowed_by_service_and_run() {
    let q = |items: &[(&str, &str)]| {
        let mut all = vec![("date", "2026-01-01")];
        all.extend_from_slice(items);
        parse_log_query(&pairs(&all)).unwrap()
    };
    assert_eq!(
        q(&[("service", "scraper")]).list_prefix(),
        "logs/2026/01/01/scraper-"
    );
    let narrow = q(&[("service", "processor"), ("run", "batch-1")]);
    assert_eq!(narrow.list_prefix(), "logs/2026/01/01/processor-batch-1-");
    assert!(narrow.wants_key("logs/2026/01/01/processor-batch-1-17.jsonl"));
    assert!(!narrow.wants_key("logs/2026/01/01/processor-batch-10-17.jsonl"));

    let by_run = q(&[("run", "run-a")]);
    assert_eq!(by_run.list_prefix(), "logs/2026/01/01/");
    assert!(by_run.wants_key("logs/2026/01/01/scraper-run-a-1.jsonl"));
    assert!(by_run.wants_key("logs/2026/01/01/processor-run-a-1.jsonl"));
    assert!(!by_run.wants_key("logs/2026/01/01/scraper-run-ab-1.jsonl"));
    assert!(!by_run.wants_key("logs/2026/01/02/scraper-run-a-1.jsonl"));
}

#[test]
fn lines_are_kept_at_or_above_the_level_and_for_the_run() {
    let q = parse_log_query(&pairs(&[
        ("date", "2026-01-01"),
        ("level", "warn"),
        ("run", "r1"),
    ]))
    .unwrap();
    let line = |level: &str, run: &str, inv: &str| {
        json!({"level": level, "run_id": run, "invocation": inv, "event": "e"}).to_string()
    };
    assert!(q.wants_line(&line("warn", "r1", "i")));
    assert!(
        q.wants_line(&line("error", "x", "r1")),
        "the invocation id also names it"
    );
    assert!(!q.wants_line(&line("info", "r1", "i")));
    assert!(!q.wants_line(&line("error", "r2", "i")));
    assert!(!q.wants_line("not json"));
    assert!(!q.wants_line(r#"{"run_id": "r1"}"#), "no level");
    let all = parse_log_query(&pairs(&[("date", "2026-01-01")])).unwrap();
    assert!(all.wants_line("not json"));
}

#[test]
fn cursors_round_trip() {
    for c in [
        LogCursor::At {
            key: "logs/2026/01/01/scraper-run-1-5.jsonl".into(),
            line: 17,
        },
        LogCursor::After {
            key: "logs/2026/01/01/scraper-run-1-5.jsonl".into(),
        },
    ] {
        assert_eq!(LogCursor::parse(&c.to_string()), Some(c));
    }
    assert_eq!(LogCursor::parse("k:-1"), None);
    assert_eq!(LogCursor::parse(":3"), None);
}

// ------------------------------------------------------------------ logs: reading

/// An in-memory bucket, and the calls a scan made to it.
struct Bucket {
    objects: BTreeMap<String, String>,
    lists: usize,
    gets: usize,
}

impl Bucket {
    fn new(objects: Vec<(String, String)>) -> Self {
        Bucket {
            objects: objects.into_iter().collect(),
            lists: 0,
            gets: 0,
        }
    }

    fn read(&mut self, query: &[(&str, &str)], budget: u32) -> LogPage {
        let mut scan = LogScan::new(parse_log_query(&pairs(query)).unwrap());
        let mut remaining = budget;
        loop {
            match scan.next_step(remaining) {
                LogStep::List {
                    prefix,
                    start_after,
                    limit,
                } => {
                    remaining -= 1;
                    self.lists += 1;
                    let matching: Vec<&String> = self
                        .objects
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .filter(|k| start_after.as_ref().is_none_or(|s| *k > s))
                        .collect();
                    let truncated = matching.len() > limit as usize;
                    let keys = matching.into_iter().take(limit as usize).cloned().collect();
                    scan.on_list(keys, truncated);
                }
                LogStep::Get { key } => {
                    remaining -= 1;
                    self.gets += 1;
                    scan.on_object(self.objects.get(&key).map(String::as_str));
                }
                LogStep::Done => return scan.finish(),
            }
        }
    }
}

const DAY: &str = "logs/2026/01/01/";

/// `n` lines: `events` of level info (every third one warn), then a summary.
fn log_object(run: &str, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let level = if i % 3 == 2 { "warn" } else { "info" };
        out.push_str(
            &json!({"ts": "t", "level": level, "run_id": run, "invocation": format!("inv-{run}"), "event": format!("e{i}"), "fields": {}})
                .to_string(),
        );
        out.push('\n');
    }
    out.push_str(
        &json!({"ts": "t", "level": "info", "run_id": run, "invocation": format!("inv-{run}"), "event": "summary", "fields": {}})
            .to_string(),
    );
    out.push('\n');
    out
}

fn day_of_logs() -> Bucket {
    Bucket::new(vec![
        (
            format!("{DAY}processor-batch-1-100.jsonl"),
            log_object("batch-1", 2),
        ),
        (
            format!("{DAY}scraper-run-a-100.jsonl"),
            log_object("run-a", 4),
        ),
        (
            format!("{DAY}scraper-run-a-200.jsonl"),
            log_object("run-a", 3),
        ),
        (
            format!("{DAY}scraper-run-b-150.jsonl"),
            log_object("run-b", 2),
        ),
        (
            "logs/2026/01/02/scraper-run-c-1.jsonl".into(),
            log_object("run-c", 2),
        ),
    ])
}

fn events_of(page: &LogPage) -> Vec<String> {
    page.body
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                v["run_id"].as_str().unwrap_or("-"),
                v["event"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_day_is_read_in_key_order_with_every_summary() {
    let mut bucket = day_of_logs();
    let page = bucket.read(&[("date", "2026-01-01")], 45);
    assert!(page.truncation.is_none());
    assert_eq!(page.objects, 4);
    assert_eq!(bucket.lists, 1);
    assert_eq!(
        events_of(&page),
        [
            "batch-1:e0",
            "batch-1:e1",
            "batch-1:summary",
            "run-a:e0",
            "run-a:e1",
            "run-a:e2",
            "run-a:e3",
            "run-a:summary",
            "run-a:e0",
            "run-a:e1",
            "run-a:e2",
            "run-a:summary",
            "run-b:e0",
            "run-b:e1",
            "run-b:summary",
        ]
    );
}

#[test]
fn service_run_and_level_filters_apply() {
    let mut bucket = day_of_logs();
    let page = bucket.read(
        &[
            ("date", "2026-01-01"),
            ("service", "scraper"),
            ("run", "run-a"),
        ],
        45,
    );
    assert_eq!(page.objects, 2, "the listing itself was narrowed");
    assert_eq!(page.lines, 9);
    let page = bucket.read(&[("date", "2026-01-01"), ("run", "run-b")], 45);
    assert_eq!(page.objects, 1);
    assert_eq!(events_of(&page), ["run-b:e0", "run-b:e1", "run-b:summary"]);
    let page = bucket.read(&[("date", "2026-01-01"), ("level", "warn")], 45);
    assert_eq!(events_of(&page), ["run-a:e2", "run-a:e2"]);
    let page = bucket.read(&[("date", "2026-01-02"), ("service", "processor")], 45);
    assert_eq!((page.body.as_str(), page.objects), ("", 0));
}

fn truncation_line(page: &LogPage) -> Value {
    serde_json::from_str(page.body.lines().last().unwrap()).unwrap()
}

#[test]
fn a_limit_truncates_with_a_cursor_that_continues_exactly() {
    let mut bucket = day_of_logs();
    let full = events_of(&bucket.read(&[("date", "2026-01-01")], 45));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        let mut query = vec![("date", "2026-01-01"), ("limit", "4")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = bucket.read(&query, 45);
        assert!(page.lines <= 4);
        let Some(t) = &page.truncation else {
            seen.extend(events_of(&page));
            break;
        };
        assert_eq!(t.reason, TruncationReason::Limit);
        let last = truncation_line(&page);
        assert_eq!(last["event"], "truncated");
        assert_eq!(last["reason"], "limit");
        assert_eq!(page.body.lines().count(), 5);
        let mut lines = events_of(&page);
        lines.pop();
        seen.extend(lines);
        cursor = Some(last["next_cursor"].as_str().unwrap().to_string());
        assert!(round < 10);
    }
    assert_eq!(seen, full);
}

#[test]
fn an_answer_that_ends_exactly_at_the_limit_is_not_truncated() {
    let mut bucket = day_of_logs();
    let page = bucket.read(
        &[("date", "2026-01-01"), ("run", "run-b"), ("limit", "3")],
        45,
    );
    assert!(page.truncation.is_none(), "{}", page.body);
    assert_eq!(page.lines, 3);
}

#[test]
fn at_most_50_objects_are_read() {
    let objects: Vec<(String, String)> = (0..60)
        .map(|i| {
            (
                format!("{DAY}scraper-run-{i:03}-1.jsonl"),
                log_object("r", 0),
            )
        })
        .collect();
    let mut bucket = Bucket::new(objects);
    // A budget above the object cap, to see the cap itself.
    let page = {
        let mut scan = LogScan::new(parse_log_query(&pairs(&[("date", "2026-01-01")])).unwrap());
        loop {
            match scan.next_step(1000) {
                LogStep::List {
                    prefix,
                    start_after,
                    limit,
                } => {
                    let keys: Vec<String> = bucket
                        .objects
                        .keys()
                        .filter(|k| {
                            k.starts_with(&prefix) && start_after.as_ref().is_none_or(|s| *k > s)
                        })
                        .take(limit as usize)
                        .cloned()
                        .collect();
                    let truncated = keys.len() == limit as usize;
                    scan.on_list(keys, truncated);
                }
                LogStep::Get { key } => {
                    bucket.gets += 1;
                    scan.on_object(bucket.objects.get(&key).map(String::as_str));
                }
                LogStep::Done => break scan.finish(),
            }
        }
    };
    assert_eq!(page.objects, MAX_LOG_OBJECTS);
    let t = page.truncation.unwrap();
    assert_eq!(t.reason, TruncationReason::MaxObjects);
    assert_eq!(
        t.next_cursor,
        Some(LogCursor::At {
            key: format!("{DAY}scraper-run-050-1.jsonl"),
            line: 0
        })
    );
}

#[test]
fn reading_stops_before_the_subrequest_budget() {
    let objects: Vec<(String, String)> = (0..60)
        .map(|i| {
            (
                format!("{DAY}scraper-run-{i:03}-1.jsonl"),
                log_object("r", 1),
            )
        })
        .collect();
    let mut bucket = Bucket::new(objects);
    let page = bucket.read(&[("date", "2026-01-01")], 10);
    assert_eq!(bucket.lists + bucket.gets, 10);
    assert_eq!(page.objects, 9);
    let t = page.truncation.clone().unwrap();
    assert_eq!(t.reason, TruncationReason::SubrequestBudget);
    assert_eq!(
        truncation_line(&page)["next_cursor"],
        format!("{DAY}scraper-run-009-1.jsonl:0")
    );
}

#[test]
fn output_is_bounded_in_bytes() {
    let big = "x".repeat(400 * 1024);
    let line = json!({"level": "info", "run_id": "r", "event": "big", "fields": {"blob": big}})
        .to_string();
    let objects: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("{DAY}scraper-run-{i:02}-1.jsonl"),
                format!("{line}\n"),
            )
        })
        .collect();
    let mut bucket = Bucket::new(objects);
    let page = bucket.read(&[("date", "2026-01-01")], 45);
    assert!(page.body.len() <= MAX_LOG_OUTPUT_BYTES + 1024);
    assert_eq!(
        page.truncation.as_ref().unwrap().reason,
        TruncationReason::MaxBytes
    );
    assert_eq!(page.lines, MAX_LOG_OUTPUT_BYTES / (line.len() + 1));
}

#[test]
fn an_object_that_vanished_between_list_and_read_is_skipped() {
    let mut scan = LogScan::new(parse_log_query(&pairs(&[("date", "2026-01-01")])).unwrap());
    assert!(matches!(scan.next_step(45), LogStep::List { .. }));
    scan.on_list(vec![format!("{DAY}scraper-gone-1.jsonl")], false);
    assert!(matches!(scan.next_step(44), LogStep::Get { .. }));
    scan.on_object(None);
    assert_eq!(scan.next_step(43), LogStep::Done);
    let page = scan.finish();
    assert_eq!((page.objects, page.lines, page.body.as_str()), (1, 0, ""));
}
