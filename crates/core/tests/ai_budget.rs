//! The neuron ledger, the cap's reservations and the value-ordered AI
//! upgrades, run on SQLite with `migrations/` applied.

#[allow(dead_code)]
mod support;

use contribot_core::ai::{self, CallEstimate, DailyAllowance, RESERVATION_TTL_MS, RESERVE_CALLS};
use rusqlite::Connection;
use serde_json::Value;
use support::{migrated, run, scalar, select};

/// 2025-01-02T12:00:00Z.
const NOON: i64 = 1_735_819_200_000;
const DAY: i64 = 24 * 60 * 60 * 1000;
const MODEL: &str = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";
const CAP_REASON: &str = "AI daily neuron cap reached on 2025-01-02";

fn estimate(neurons: f64) -> CallEstimate {
    CallEstimate {
        prompt_tokens: 100,
        max_output_tokens: 100,
        neurons,
    }
}

/// Reserve for `invocation` and take the read-back in.
fn reserve(
    conn: &Connection,
    a: &mut DailyAllowance,
    invocation: &str,
    est: &CallEstimate,
    now: i64,
) {
    let rows = run(conn, &a.reserve(invocation, est, now));
    a.absorb_reservation(&rows[1], est);
}

fn ledger_neurons(conn: &Connection, day: &str) -> f64 {
    scalar(
        conn,
        &format!("SELECT COALESCE((SELECT neurons FROM ai_ledger WHERE day = '{day}'), 0.0)"),
    )
    .as_f64()
    .unwrap()
}

#[test]
fn concurrent_invocations_are_granted_no_more_than_the_cap_together() {
    let conn = migrated();
    let est = estimate(40.0); // each asks for 10 × 40 = 400
    let mut held = 0.0;
    let mut allowances = Vec::new();
    for i in 0..30 {
        let mut a = DailyAllowance::new(NOON, 9_000.0, MODEL);
        reserve(&conn, &mut a, &format!("inv-{i}"), &est, NOON);
        held += a.held;
        allowances.push(a);
    }
    assert!((held - 9_000.0).abs() < 1e-6, "held {held}");
    // 22 full grants of 400, one of 200, and the rest nothing: at the cap.
    assert_eq!(allowances.iter().filter(|a| !a.at_cap).count(), 22);
    assert_eq!(allowances.iter().filter(|a| a.held == 200.0).count(), 1);
    assert!(allowances[29].at_cap && allowances[29].held == 0.0);
}

#[test]
fn a_settled_invocation_moves_its_spend_into_the_days_ledger_and_frees_its_hold() {
    let conn = migrated();
    let est = estimate(40.0);
    let mut a = DailyAllowance::new(NOON, 9_000.0, MODEL);
    reserve(&conn, &mut a, "inv-a", &est, NOON);
    assert_eq!(a.held, 40.0 * RESERVE_CALLS);
    a.admit(&est).unwrap();
    a.record(Some((1_000, 100)), &est);
    a.admit(&est).unwrap();
    a.record(Some((1_000, 100)), &est);
    run(&conn, &a.settle("inv-a", NOON + 1_000));
    let spent = 2.0 * (1_000.0 * 4_119.0 + 100.0 * 34_868.0) / 1e6;
    assert!((ledger_neurons(&conn, "2025-01-02") - spent).abs() < 1e-9);
    assert_eq!(
        scalar(&conn, "SELECT COUNT(*) FROM ai_reservations"),
        Value::from(0)
    );
    assert_eq!(scalar(&conn, "SELECT calls FROM ai_ledger"), Value::from(2));
    assert_eq!(
        scalar(&conn, "SELECT prompt_tokens FROM ai_ledger"),
        Value::from(2_000)
    );
    assert_eq!(
        scalar(&conn, "SELECT model FROM ai_ledger"),
        Value::from(MODEL)
    );

    // A second invocation the same day adds to the same row and sees the spend.
    let mut b = DailyAllowance::new(NOON + 2_000, 9_000.0, MODEL);
    reserve(&conn, &mut b, "inv-b", &est, NOON + 2_000);
    assert!((b.day_used - spent - 400.0).abs() < 1e-9);
    b.admit(&est).unwrap();
    b.record(None, &est);
    run(&conn, &b.settle("inv-b", NOON + 3_000));
    assert!((ledger_neurons(&conn, "2025-01-02") - spent - 40.0).abs() < 1e-9);
    assert_eq!(scalar(&conn, "SELECT calls FROM ai_ledger"), Value::from(3));
}

#[test]
fn the_last_calls_of_the_day_stop_at_the_cap_and_are_counted_as_refused() {
    let conn = migrated();
    run(
        &conn,
        &[contribot_core::sql::Statement::new(
            "INSERT INTO ai_ledger (day, neurons, calls, cap, updated_at) VALUES ('2025-01-02', 8900.0, 1000, 9000.0, 0)",
            vec![],
        )],
    );
    let est = estimate(30.0);
    let mut a = DailyAllowance::new(NOON, 9_000.0, MODEL);
    reserve(&conn, &mut a, "inv", &est, NOON);
    assert_eq!(a.held, 100.0);
    assert!(a.at_cap);
    let mut started = 0;
    for _ in 0..10 {
        if a.admit(&est).is_ok() {
            a.record(Some((1_000, 400)), &est); // 18.0 neurons each
            started += 1;
        }
    }
    // 100 held: 18 + 18 + 18 + 18 = 72 leaves 28 < 30, so four start.
    assert_eq!(started, 4);
    assert_eq!(a.refused, 6);
    let refusal = a.admit(&est).unwrap_err().to_string();
    assert!(refusal.starts_with(CAP_REASON), "{refusal}");
    run(&conn, &a.settle("inv", NOON));
    assert!(ledger_neurons(&conn, "2025-01-02") <= 9_000.0);
    assert_eq!(
        scalar(&conn, "SELECT refused FROM ai_ledger"),
        Value::from(7)
    );
}

#[test]
fn a_dead_invocations_hold_expires_and_the_next_day_starts_empty() {
    let conn = migrated();
    let est = estimate(900.0);
    let mut dead = DailyAllowance::new(NOON, 9_000.0, MODEL);
    reserve(&conn, &mut dead, "dead", &est, NOON);
    assert_eq!(dead.held, 9_000.0);
    let mut blocked = DailyAllowance::new(NOON + 1, 9_000.0, MODEL);
    reserve(&conn, &mut blocked, "blocked", &est, NOON + 1);
    assert_eq!(blocked.held, 0.0, "the whole day is held");
    let later = NOON + RESERVATION_TTL_MS + 1;
    let mut after = DailyAllowance::new(later, 9_000.0, MODEL);
    reserve(&conn, &mut after, "after", &estimate(1.0), later);
    assert_eq!(after.held, 10.0, "the dead hold no longer counts");
    let mut tomorrow = DailyAllowance::new(NOON + DAY, 9_000.0, MODEL);
    reserve(&conn, &mut tomorrow, "tomorrow", &est, NOON + DAY);
    assert_eq!(tomorrow.day, "2025-01-03");
    assert_eq!(tomorrow.held, 9_000.0);
}

#[test]
fn once_workers_ai_says_the_allocation_is_spent_no_invocation_is_granted_more_that_day() {
    let conn = migrated();
    let est = estimate(10.0);
    let mut a = DailyAllowance::new(NOON, 9_000.0, MODEL);
    reserve(&conn, &mut a, "a", &est, NOON);
    a.platform_exhausted(NOON);
    run(&conn, &a.settle("a", NOON));
    let mut b = DailyAllowance::new(NOON + 1, 9_000.0, MODEL);
    reserve(&conn, &mut b, "b", &est, NOON + 1);
    assert_eq!(b.held, 0.0);
    assert!(matches!(
        b.admit(&est),
        Err(ai::Refusal::PlatformExhausted { .. })
    ));
}

// ------------------------------------------------------------------ upgrades

/// A repo `owner/name` with a stored heuristic summary (a fallback when
/// `reason` says so) and its issues `(number, assignees, comments, created,
/// available, state, reason)`.
#[allow(clippy::type_complexity)]
fn seed(
    conn: &Connection,
    owner: &str,
    reason: Option<&str>,
    issues: &[(i64, i64, i64, &str, i64, &str, Option<&str>)],
) -> i64 {
    let (model, status) = match reason {
        Some(_) => ("heuristic-v1", "completed"),
        None => (MODEL, "completed"),
    };
    conn.execute(
        "INSERT INTO repos (owner, name, data_source, content_hash, queued_hash, analysis_hash, analysis_model, \
         fallback_reason, processing_status, created_at, updated_at) \
         VALUES (?1, 'r', 'awesome-for-beginners', 'h', 'h', 'h', ?2, ?3, ?4, 0, 0)",
        rusqlite::params![owner, model, reason, status],
    )
    .unwrap();
    let repo = conn.last_insert_rowid();
    for (number, assignees, comments, created, available, state, reason) in issues {
        let model = if reason.is_some() {
            "heuristic-v1"
        } else {
            MODEL
        };
        conn.execute(
            "INSERT INTO issues (repo_id, number, title, url, state, assignee_count, comment_count, gh_created_at, \
             available, content_hash, queued_hash, analysis_hash, analysis_model, fallback_reason, processing_status, \
             created_at, updated_at) \
             VALUES (?1, ?2, 't', 'u', ?3, ?4, ?5, ?6, ?7, 'h', 'h', 'h', ?8, ?9, 'completed', 0, 0)",
            rusqlite::params![repo, number, state, assignees, comments, created, available, model, reason],
        )
        .unwrap();
    }
    repo
}

const CAPPED: Option<&str> =
    Some("AI daily neuron cap reached on 2025-01-01: 9000 of 9000 neurons spent or held");

/// Issue numbers re-queued, in outbox order (priority descending).
fn requeued_issues(conn: &Connection) -> Vec<i64> {
    select(
        conn,
        "SELECT number FROM issues WHERE processing_status = 'pending' AND queued_hash IS NULL ORDER BY priority DESC, id",
    )
    .iter()
    .map(|r| r["number"].as_i64().unwrap())
    .collect()
}

fn set_ledger(conn: &Connection, day: &str, neurons: f64, calls: i64) {
    conn.execute(
        "INSERT INTO ai_ledger (day, neurons, calls, cap, updated_at) VALUES (?1, ?2, ?3, 9000.0, 0) \
         ON CONFLICT (day) DO UPDATE SET neurons = excluded.neurons, calls = excluded.calls",
        rusqlite::params![day, neurons, calls],
    )
    .unwrap();
}

#[test]
fn upgrades_fill_the_days_remaining_allowance_in_value_order() {
    let conn = migrated();
    // 9.0 neurons a call over the week ((9,000 + 8,937) / (1,000 + 993)), and
    // 63 left today: 7 calls.
    set_ledger(&conn, "2025-01-01", 9_000.0, 1_000);
    set_ledger(&conn, "2025-01-02", 8_937.0, 993);
    let big = seed(
        &conn,
        "big",
        CAPPED,
        &[
            (1, 0, 0, "2024-06-01T00:00:00Z", 1, "open", CAPPED), // unassigned, 0 comments, newer
            (2, 0, 0, "2024-01-01T00:00:00Z", 1, "open", CAPPED), // unassigned, 0 comments, older
            (3, 1, 0, "2024-09-01T00:00:00Z", 0, "open", CAPPED), // assigned
            (4, 0, 5, "2024-09-01T00:00:00Z", 1, "open", CAPPED), // 5 comments
            (5, 0, 1, "2024-09-01T00:00:00Z", 1, "open", CAPPED), // 1 comment
            (
                6,
                0,
                0,
                "2024-03-01T00:00:00Z",
                1,
                "open",
                Some("offline heuristic backend (AI_BACKEND=heuristic)"),
            ),
            (7, 0, 0, "2024-03-01T00:00:00Z", 0, "closed", CAPPED),
            (8, 0, 0, "2024-03-01T00:00:00Z", 1, "open", None), // AI already
        ],
    );
    let small = seed(
        &conn,
        "small",
        CAPPED,
        &[
            (9, 0, 0, "2024-01-01T00:00:00Z", 1, "open", CAPPED), // ties #2, fewer available in its repo
            (10, 2, 9, "2024-01-01T00:00:00Z", 0, "open", CAPPED),
        ],
    );
    let n = run(&conn, &ai::requeue_upgrades(2_000, NOON));
    assert_eq!(n.len(), 2);
    // Both repos are fallbacks but the allowance counts: 63 / 9 = 7 items.
    let repos = select(
        &conn,
        "SELECT id, priority FROM repos WHERE processing_status = 'pending' ORDER BY priority DESC",
    );
    assert_eq!(repos.len(), 2, "{repos:?}");
    assert_eq!(
        repos[0]["id"].as_i64(),
        Some(big),
        "the repo with more available issues first"
    );
    assert_eq!(repos[1]["id"].as_i64(), Some(small));
    // 7 − 2 repos pending = 5 issues, best first.
    assert_eq!(requeued_issues(&conn), vec![1, 2, 9, 5, 4]);
    let priorities: Vec<i64> = select(
        &conn,
        "SELECT priority FROM issues WHERE processing_status = 'pending' ORDER BY priority DESC",
    )
    .iter()
    .map(|r| r["priority"].as_i64().unwrap())
    .collect();
    assert_eq!(
        priorities,
        vec![-1, -2, -3, -4, -5],
        "after fresh items (0–100), in value order"
    );

    // Nothing more today: what is pending already spends the allowance.
    run(&conn, &ai::requeue_upgrades(2_000, NOON + 1));
    assert_eq!(requeued_issues(&conn).len(), 5);
}

#[test]
fn the_next_utc_day_resumes_the_upgrades_where_value_order_left_off() {
    let conn = migrated();
    set_ledger(&conn, "2025-01-02", 9_000.0, 1_000); // 9.0 a call, the day is spent
    seed(
        &conn,
        "o",
        None,
        &(1..=30)
            .map(|n| (n, 0, n, "2024-01-01T00:00:00Z", 1, "open", CAPPED))
            .collect::<Vec<_>>(),
    );
    run(&conn, &ai::requeue_upgrades(2_000, NOON));
    assert!(requeued_issues(&conn).is_empty(), "no allowance left today");
    // The next day: 9,000 / 9.0 = 1,000 calls; the 10-per-run bound applies.
    run(&conn, &ai::requeue_upgrades(10, NOON + DAY));
    assert_eq!(
        requeued_issues(&conn),
        (1..=10).collect::<Vec<_>>(),
        "fewest comments first"
    );
    // The processor analyses them; the next run continues with #11.
    conn.execute(
        "UPDATE issues SET processing_status = 'completed', analysis_model = ?1, fallback_reason = NULL, \
         queued_hash = 'h' WHERE processing_status = 'pending'",
        [MODEL],
    )
    .unwrap();
    run(&conn, &ai::requeue_upgrades(10, NOON + DAY + 1));
    assert_eq!(requeued_issues(&conn), (11..=20).collect::<Vec<_>>());
}

#[test]
fn nothing_is_requeued_once_workers_ai_said_the_allocation_is_spent() {
    let conn = migrated();
    set_ledger(&conn, "2025-01-02", 10.0, 2);
    conn.execute("UPDATE ai_ledger SET exhausted_at = 1", [])
        .unwrap();
    seed(
        &conn,
        "o",
        None,
        &[(1, 0, 0, "2024-01-01T00:00:00Z", 1, "open", CAPPED)],
    );
    run(&conn, &ai::requeue_upgrades(2_000, NOON));
    assert!(requeued_issues(&conn).is_empty());
}

#[test]
fn the_budget_status_reports_today_the_backlog_and_its_completion_day() {
    let conn = migrated();
    let empty = ai::budget_status(&run(&conn, &ai::budget_queries(NOON)), NOON);
    assert_eq!(empty["neurons"], 0.0);
    assert_eq!(empty["cap"], 9_000.0);
    assert_eq!(empty["backlog"]["items"], 0);

    set_ledger(&conn, "2025-01-01", 9_000.0, 1_000);
    set_ledger(&conn, "2025-01-02", 4_500.0, 500);
    seed(
        &conn,
        "o",
        CAPPED,
        &(1..=600)
            .map(|n| (n, 0, 0, "2024-01-01T00:00:00Z", 1, "open", CAPPED))
            .collect::<Vec<_>>(),
    );
    let s = ai::budget_status(&run(&conn, &ai::budget_queries(NOON)), NOON);
    assert_eq!(s["day"], "2025-01-02");
    assert_eq!(s["neurons"], 4_500.0);
    assert_eq!(s["remaining"], 4_500.0);
    assert_eq!(s["backlog"]["repos"], 1);
    assert_eq!(s["backlog"]["issues"], 600);
    assert_eq!(s["backlog"]["items"], 601);
    // 601 × 9.0 = 5,409 > 4,500 left today: done tomorrow.
    assert_eq!(s["backlog"]["estimated_completion"], "2025-01-03");
    assert_eq!(s["days"].as_array().unwrap().len(), 2);
}
