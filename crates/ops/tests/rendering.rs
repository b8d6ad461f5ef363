//! What an operator reads: status tables, progress lines, log lines, dates.

use contribot_ops::client::TextReply;
use contribot_ops::dates::{civil_from_days, date_of_ms, datetime_of_ms, duration, is_valid_date};
use contribot_ops::logs::{
    format_record, parse_ndjson, FollowState, LogLine, LogQuery, Truncation,
};
use contribot_ops::progress::{find_run, progress_line, run_state, RunProgress, RunState};
use contribot_ops::reprocess::{render_reprocess, ReprocessTarget};
use contribot_ops::status::{render_status, StatusReport};
use contribot_ops::table::Table;
use serde_json::{json, Value};

/// 2026-03-01 10:00:00 UTC.
const T0: i64 = 1_772_359_200_000;

fn report() -> StatusReport {
    serde_json::from_value(json!({
        "ok": true,
        "repos": {"pending": 12, "processing": 0, "completed": 208, "failed": 2, "paused": 1},
        "issues": {"pending": 340, "processing": 3, "completed": 0, "failed": 1},
        "runs": [
            {"id": "run-b", "trigger": "admin", "started_at": T0 + 60_000, "finished_at": null, "status": "running",
             "invocations": 2, "continuations": 1, "repos_seen": 50, "repos_changed": 50, "repos_skipped": 0,
             "issues_upserted": 120, "issues_closed": 0, "messages_queued": 100, "subrequests_used": 80,
             "max_subrequests": 44, "github_requests": 4, "graphql_points": 8, "outcome": null, "error": null},
            {"id": "run-a", "trigger": "cron", "started_at": T0, "finished_at": T0 + 30_000, "status": "failed",
             "invocations": 1, "continuations": 0, "repos_seen": 0, "repos_changed": 0, "repos_skipped": 0,
             "issues_upserted": 0, "issues_closed": 0, "messages_queued": 0, "subrequests_used": 3,
             "max_subrequests": 3, "github_requests": 0, "graphql_points": 0, "outcome": "list_unusable",
             "error": "data.json: HTTP 500\nREADME: HTTP 500", "cursor_seq": 9}
        ],
        "failed": [
            {"kind": "issue", "item": "octo/cat#7", "attempts": 3, "last_error": "AI output invalid: missing summary", "processed_at": T0},
            {"kind": "message", "item": "contribot-processing:abc", "attempts": 4, "last_error": null, "processed_at": T0}
        ],
        "label_not_found": [{"repo": "octo/dog", "listed_labels": ["good first issue", "help wanted"]}],
        "backlog": {"repos": 12, "issues": 343, "unqueued": 0},
        "invocations": [{"service": "scraper", "invocations": 3, "max_subrequests": 44, "mean_subrequests": 28.666666}],
        "ai": {"day": "2026-03-01", "neurons": 8950.4, "cap": 9000, "free_allocation": 10000, "held": 40, "remaining": 9.6,
               "calls": 1200, "refused_at_cap": 60, "model": "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
               "platform_exhausted": false, "at_cap": "heuristic_now_upgrade_later",
               "backlog": {"repos": 2, "issues": 900, "pending": 10, "items": 912, "neurons_per_call": 7.4,
                           "neurons": 6748.8, "estimated_completion": "2026-03-02"},
               "days": [{"day": "2026-03-01", "neurons": 8950.4, "calls": 1200, "refused_at_cap": 60, "cap": 9000,
                         "model": "@cf/meta/llama-3.1-8b-instruct-fp8-fast"}]},
        "something_new": {"x": 1}
    }))
    .unwrap()
}

#[test]
fn status_tolerates_unknown_fields_and_renders_every_section() {
    let text = render_status(&report(), T0 + 90_000);
    let expected_counts = "\
Processing status (active repos, open issues):
        pending  processing  completed  failed  paused
repos        12           0        208       2       1
issues      340           3          0       1       0
";
    assert!(text.starts_with(expected_counts), "{text}");
    assert!(text.contains("Backlog: 12 repos and 343 issues waiting for the processor; 0 committed but not yet queued"));
    assert!(
        text.contains("run-b  admin    2026-03-01 10:01:00  30s   running"),
        "{text}"
    );
    assert!(text.contains("50/50/0"), "{text}");
    assert!(
        text.contains("run-a  cron     2026-03-01 10:00:00  30s   failed"),
        "{text}"
    );
    assert!(
        text.contains("  run run-a failed: data.json: HTTP 500 README: HTTP 500\n"),
        "the failure reason follows the runs table on one line: {text}"
    );
    assert!(text.contains("issue    octo/cat#7                       3  2026-03-01 10:00:00  AI output invalid: missing summary"), "{text}");
    assert!(text.contains("(no reason recorded)"));
    assert!(
        text.contains("octo/dog  \"good first issue\", \"help wanted\""),
        "{text}"
    );
    assert!(
        text.contains("scraper            3          44         28.7"),
        "{text}"
    );
    assert!(
        text.contains("AI budget (UTC 2026-03-01, @cf/meta/llama-3.1-8b-instruct-fp8-fast): 8950.4 of 9000 neurons (cap; free allocation 10000), 40 held, 9.6 left; 1200 calls, 60 refused at the cap\n"),
        "{text}"
    );
    assert!(text.contains("  At the cap: items get a labelled heuristic result now and an AI upgrade later, best issues first\n"), "{text}");
    assert!(
        text.contains("AI backlog: 912 items (2 repos and 900 issues with heuristic fallbacks, 10 not analysed yet), ~6748.8 neurons at 7.4 a call; estimated completion: 2026-03-02\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "2026-03-01   8950.4  9000   1200       60  @cf/meta/llama-3.1-8b-instruct-fp8-fast"
        ),
        "{text}"
    );
}

#[test]
fn empty_status_says_none_instead_of_empty_tables() {
    let empty: StatusReport = serde_json::from_value(json!({"ok": true})).unwrap();
    let text = render_status(&empty, T0);
    assert!(text.contains("Runs (latest first): none"));
    assert!(text.contains("Failed items: none"));
    assert!(text.contains("Repos whose listed label is not on GitHub: none"));
    assert!(text.contains("Invocation budgets (subrequests per invocation): none"));
    assert!(text.contains("AI budget: not reported by this server"));
    assert!(
        text.contains("repos         0           0          0       0"),
        "{text}"
    );
}

#[test]
fn numbers_may_arrive_as_strings_or_floats() {
    let r: StatusReport =
        serde_json::from_value(json!({"backlog": {"repos": "4", "issues": 2.0, "unqueued": null}}))
            .unwrap();
    assert_eq!(r.backlog.repos.int(), 4);
    assert_eq!(r.backlog.issues.int(), 2);
    assert!(!r.backlog.unqueued.is_known());
}

#[test]
fn table_aligns_numbers_right_and_trims_trailing_space() {
    let mut t = Table::new(&["NAME", "N", "NOTE"]).right_align(&[1]);
    t.row(["a", "5", ""]);
    t.row(["bbb", "100", "x"]);
    assert_eq!(t.render(), "NAME    N  NOTE\na       5\nbbb   100  x\n");
}

#[test]
fn progress_prints_on_first_poll_and_on_change_only() {
    let r = report();
    let run = find_run(&r, "run-b").unwrap();
    let first = RunProgress::of(run, &r.backlog);
    let line = progress_line(None, &first, 2_000).unwrap();
    assert_eq!(
        line,
        "[    2s] running: 2 invocations, 1 continuations | repos 50 seen, 50 changed | issues 120 upserted, 0 closed | 100 messages queued | backlog 12 repos, 343 issues, 0 unqueued"
    );
    assert_eq!(progress_line(Some(&first), &first.clone(), 4_000), None);

    let later = RunProgress {
        invocations: 3,
        repos_seen: 75,
        issues_upserted: 160,
        backlog_issues: 300,
        ..first.clone()
    };
    let line = progress_line(Some(&first), &later, 6_000).unwrap();
    assert!(line.contains("3 (+1) invocations"), "{line}");
    assert!(line.contains("repos 75 (+25) seen"), "{line}");
    assert!(line.contains("issues 160 (+40) upserted"), "{line}");
    assert!(line.contains("300 (-43) issues"), "{line}");
}

#[test]
fn run_state_distinguishes_running_done_failed_and_draining() {
    let r = report();
    let running = find_run(&r, "run-b").unwrap();
    assert_eq!(run_state(running, &r.backlog, false), RunState::Running);
    let failed = find_run(&r, "run-a").unwrap();
    assert_eq!(
        run_state(failed, &r.backlog, false),
        RunState::Failed("data.json: HTTP 500\nREADME: HTTP 500 (failed)".into())
    );
    let mut done = running.clone();
    done.status = "completed".into();
    assert_eq!(run_state(&done, &r.backlog, false), RunState::Done);
    assert_eq!(run_state(&done, &r.backlog, true), RunState::Draining);
    assert_eq!(run_state(&done, &Default::default(), true), RunState::Done);
    let mut odd = done.clone();
    odd.status = "cancelled".into();
    odd.error = None;
    odd.outcome = None;
    assert_eq!(
        run_state(&odd, &r.backlog, false),
        RunState::Failed("no reason recorded (cancelled)".into())
    );
    assert!(find_run(&r, "run-z").is_none());
}

#[test]
fn run_summary_names_every_counter() {
    let r = report();
    let s = find_run(&r, "run-a").unwrap().summary(T0 + 90_000);
    assert!(
        s.starts_with("run run-a failed in 30s: 0 repos seen"),
        "{s}"
    );
    assert!(s.contains("3 subrequests (at most 3 in one)"), "{s}");
}

fn record() -> Value {
    json!({"ts": "2026-03-01T10:00:01.250Z", "level": "info", "run_id": "run-b", "invocation": "inv-1",
           "event": "repos.batch", "fields": {"repos": 25, "cursor": "o/r", "note": "two words", "empty": "", "nested": {"a": [1, 2]}, "ok": true}})
}

#[test]
fn log_records_read_as_ts_level_service_run_event_fields() {
    let mut r = record();
    assert_eq!(
        format_record(&r, None),
        "2026-03-01T10:00:01.250Z INFO  -/run-b repos.batch cursor=o/r empty=\"\" nested={\"a\":[1,2]} note=\"two words\" ok=true repos=25"
    );
    r["fields"] = json!(null);
    assert_eq!(
        format_record(&r, Some("scraper")),
        "2026-03-01T10:00:01.250Z INFO  scraper/run-b repos.batch",
        "the --service filter names the service when the record does not"
    );
    r["service"] = json!("processor");
    assert!(format_record(&r, Some("scraper")).contains(" processor/run-b "));
    r["fields"] = json!("plain text");
    assert!(format_record(&r, None).ends_with("repos.batch fields=\"plain text\""));
}

#[test]
fn ndjson_answers_split_into_records_markers_and_raw_lines() {
    let text = format!(
        "{}\n\nnot json\n{{\"event\":\"truncated\",\"fields\":{{\"limit\":5}}}}\n",
        record()
    );
    let lines = parse_ndjson(&text);
    assert!(matches!(lines[0], LogLine::Record(_)));
    assert_eq!(lines[1], LogLine::Raw("not json".into()));
    assert!(matches!(lines[2], LogLine::Truncated(_)));
    assert_eq!(lines.len(), 3);
}

#[test]
fn truncation_is_reported_from_the_marker_or_the_headers() {
    let marked = parse_ndjson(
        "{\"event\":\"truncated\",\"reason\":\"limit\",\"next_cursor\":\"logs/2026/03/01/scraper-r-1.jsonl:5\",\"lines\":5,\"objects\":1}\n",
    );
    let t = Truncation::of(&marked, &TextReply::default()).unwrap();
    assert_eq!(
        t.next_cursor.as_deref(),
        Some("logs/2026/03/01/scraper-r-1.jsonl:5")
    );
    assert_eq!(t.details, "lines=5 objects=1 reason=limit");
    let note = t.note();
    assert!(
        note.starts_with(
            "truncated: a bound on the logs answer was hit (lines=5 objects=1 reason=limit)"
        ),
        "{note}"
    );
    assert!(
        note.ends_with("--cursor 'logs/2026/03/01/scraper-r-1.jsonl:5'"),
        "{note}"
    );

    let headers_only = TextReply {
        truncated_header: Some("max_objects".into()),
        next_cursor_header: Some("k:end".into()),
        ..Default::default()
    };
    let t = Truncation::of(&[], &headers_only).unwrap();
    assert_eq!(t.details, "x-contribot-truncated: max_objects");
    assert_eq!(t.next_cursor.as_deref(), Some("k:end"));

    let old_style = parse_ndjson("{\"event\":\"truncated\",\"fields\":{\"limit\":5}}\n");
    let t = Truncation::of(&old_style, &TextReply::default()).unwrap();
    assert_eq!(
        (t.details.as_str(), t.next_cursor.as_deref()),
        ("limit=5", None)
    );
    assert!(!t.note().contains("--cursor"));

    assert_eq!(
        Truncation::of(&parse_ndjson(&record().to_string()), &TextReply::default()),
        None
    );
}

#[test]
fn follow_prints_each_record_once_and_keeps_genuine_repeats() {
    let a = record().to_string();
    let mut b = record();
    b["event"] = json!("summary");
    let b = b.to_string();
    let mut state = FollowState::default();
    state.begin_poll();
    let first = parse_ndjson(&format!("{a}\n{a}\n"));
    assert_eq!(
        state.fresh(&first).len(),
        2,
        "two identical lines in one answer are both real"
    );

    state.begin_poll();
    let second = parse_ndjson(&format!("{a}\n{a}\n{b}\n{{\"event\":\"truncated\"}}\n"));
    let fresh = state.fresh(&second);
    assert_eq!(fresh.len(), 1);
    assert!(matches!(fresh[0], LogLine::Record(v) if v["event"] == "summary"));

    state.begin_poll();
    let third = parse_ndjson(&format!("{b}\n"));
    assert!(
        state.fresh(&third).is_empty(),
        "a line that drops out and returns is not reprinted"
    );

    // One poll over two pages: a repeat split across pages is still a repeat.
    state.begin_poll();
    assert!(state.fresh(&parse_ndjson(&format!("{b}\n"))).is_empty());
    assert_eq!(state.fresh(&parse_ndjson(&format!("{b}\n"))).len(), 1);
}

#[test]
fn log_query_omits_unset_filters() {
    let q = LogQuery {
        date: "2026-03-01".into(),
        service: Some("scraper".into()),
        limit: Some(5),
        ..Default::default()
    };
    assert_eq!(
        q.pairs(),
        vec![
            ("date", "2026-03-01".to_string()),
            ("service", "scraper".into()),
            ("limit", "5".into())
        ]
    );
}

#[test]
fn reprocess_targets_become_the_apis_bodies() {
    assert_eq!(ReprocessTarget::Failed.body(), json!({"status": "failed"}));
    assert_eq!(
        ReprocessTarget::Repo("o/r".into()).body(),
        json!({"repo": "o/r"})
    );
    assert_eq!(
        ReprocessTarget::Issue("o/r#3".into()).body(),
        json!({"issue": "o/r#3"})
    );
}

#[test]
fn reprocess_answers_read_as_one_line_plus_errors() {
    let text = render_reprocess(
        "failed items",
        &json!({"ok": true, "matched": 3, "requeued": 3, "unsent": 0, "batches": [3], "errors": []}),
    );
    assert_eq!(
        text,
        "requeued 3 of 3 matched (failed items); queue batches: 3\n"
    );
    let text = render_reprocess(
        "o/r",
        &json!({"ok": false, "matched": 2, "requeued": 0, "unsent": 2, "batches": [], "errors": ["send failed: queue full"]}),
    );
    assert_eq!(
        text,
        "requeued 0 of 2 matched (o/r), 2 reset but not yet queued (the next run queues them)\n  send failed: queue full\n"
    );
    assert_eq!(
        render_reprocess("x", &json!({"requeued": 1})),
        "requeued 1 (x)\n"
    );
}

#[test]
fn dates_are_utc_calendar_days() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(date_of_ms(T0), "2026-03-01");
    assert_eq!(
        date_of_ms(T0 - 36_000_001),
        "2026-02-28",
        "one ms before midnight"
    );
    assert_eq!(datetime_of_ms(T0 + 3_723_000), "2026-03-01 11:02:03");
    assert!(is_valid_date("2024-02-29"));
    assert!(!is_valid_date("2023-02-29"));
    assert!(!is_valid_date("2026-13-01"));
    assert!(!is_valid_date("2026-1-01"));
    assert!(!is_valid_date("+026-01-01"));
}

#[test]
fn durations_read_short() {
    assert_eq!(duration(850), "850ms");
    assert_eq!(duration(12_400), "12s");
    assert_eq!(duration(185_000), "3m 05s");
    assert_eq!(duration(7_620_000), "2h 07m");
    assert_eq!(duration(-5), "0ms");
}
