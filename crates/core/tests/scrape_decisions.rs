//! The scraper's pure decisions: who may advance a run (the claim), what a
//! failed repo costs (settling), when a run must end (its ceiling), what a
//! GitHub answer means (partial data, FORBIDDEN, timeouts), the hash split
//! and the availability verdict.

use contribot_core::failure::Failure;
use contribot_core::github::{self, HttpResponse, IssueMeta, RepoOutcome, RepoQuery, RepoState};
use contribot_core::hash::{self, IssueHashInput};
use contribot_core::messages::{RetryRepo, ScrapeCursor};
use contribot_core::scrape::{
    availability, decide_claim, past_ceiling, settle_failures, Claim, Pass, RepoWork, WorkStatus,
    MAX_REPO_ATTEMPTS, MAX_RUN_INVOCATIONS, RECOVERY_GRACE_MS,
};
use contribot_core::store::{RepoRow, RunRow, LEASE_MS};
use serde_json::json;

const NOW: i64 = 1_750_000_000_000;

fn cursor(seq: u32) -> ScrapeCursor {
    ScrapeCursor {
        seq,
        ..ScrapeCursor::start("run-1", "awesome-for-beginners")
    }
}

fn run(stored_seq: Option<u32>, lease: Option<(&str, i64)>, last_progress_at: i64) -> RunRow {
    RunRow {
        id: "run-1".into(),
        trigger: "cron".into(),
        data_source: "awesome-for-beginners".into(),
        started_at: NOW - 60_000,
        status: "running".into(),
        cursor: stored_seq.map(|s| serde_json::to_string(&cursor(s)).unwrap()),
        invocations: 3,
        last_progress_at: Some(last_progress_at),
        lease_id: lease.map(|(id, _)| id.to_string()),
        lease_until: lease.map(|(_, until)| until),
        failure_attempts: 0,
        error: None,
    }
}

#[test]
fn the_delivery_that_took_the_lease_proceeds_from_the_stored_progress() {
    let r = run(Some(4), Some(("me", NOW + LEASE_MS)), NOW);
    assert_eq!(
        decide_claim(true, Some(&r), &cursor(4), 1, NOW),
        Claim::Proceed(cursor(4))
    );
    // The first continuation of a run has no stored cursor yet.
    let fresh = run(None, Some(("me", NOW + LEASE_MS)), NOW);
    assert_eq!(
        decide_claim(true, Some(&fresh), &cursor(0), 1, NOW),
        Claim::Proceed(cursor(0))
    );
}

#[test]
fn a_simultaneous_duplicate_waits_for_the_holder_instead_of_forking_the_chain() {
    let r = run(Some(4), Some(("other", NOW + 30_000)), NOW);
    match decide_claim(false, Some(&r), &cursor(4), 2, NOW) {
        Claim::RetryLater { delay_secs, .. } => assert_eq!(delay_secs, 31),
        other => panic!("expected a retry later, got {other:?}"),
    }
}

#[test]
fn a_delivery_behind_the_chain_is_skipped() {
    let r = run(Some(6), None, NOW);
    assert!(matches!(
        decide_claim(false, Some(&r), &cursor(4), 1, NOW),
        Claim::Skip(_)
    ));
    // Even retried, two behind is a duplicate, not a lost continuation.
    assert!(matches!(
        decide_claim(false, Some(&r), &cursor(4), 3, NOW),
        Claim::Skip(_)
    ));
}

#[test]
fn a_retried_continuation_recovers_a_lost_successor_only_after_the_grace() {
    // seq 4 committed seq 5 and died before sending it.
    let quiet = run(Some(5), None, NOW - RECOVERY_GRACE_MS);
    assert_eq!(
        decide_claim(false, Some(&quiet), &cursor(4), 2, NOW),
        Claim::Recover(cursor(5))
    );
    let recent = run(Some(5), None, NOW - 1_000);
    assert!(matches!(
        decide_claim(false, Some(&recent), &cursor(4), 2, NOW),
        Claim::RetryLater { .. }
    ));
    // A first delivery never recovers: it is a plain duplicate.
    assert!(matches!(
        decide_claim(false, Some(&quiet), &cursor(4), 1, NOW),
        Claim::Skip(_)
    ));
    // Someone holds seq 5: it is alive.
    let held = run(
        Some(5),
        Some(("other", NOW + 10_000)),
        NOW - RECOVERY_GRACE_MS,
    );
    assert!(matches!(
        decide_claim(false, Some(&held), &cursor(4), 2, NOW),
        Claim::Skip(_)
    ));
}

#[test]
fn a_finished_or_cancelled_run_is_not_advanced() {
    let mut r = run(Some(4), None, NOW);
    r.status = "failed".into();
    assert!(matches!(
        decide_claim(false, Some(&r), &cursor(4), 1, NOW),
        Claim::Skip(_)
    ));
    assert!(matches!(
        decide_claim(false, None, &cursor(4), 1, NOW),
        Claim::Skip(_)
    ));
}

#[test]
fn a_run_past_its_ceiling_must_end() {
    let mut r = run(Some(1), None, NOW);
    assert_eq!(past_ceiling(&r, NOW), None);
    r.invocations = MAX_RUN_INVOCATIONS;
    assert!(past_ceiling(&r, NOW).unwrap().contains("invocations"));
    r.invocations = 1;
    r.started_at = NOW - 21 * 3_600_000;
    assert!(past_ceiling(&r, NOW).unwrap().contains("hours"));
}

fn row(id: i64, name: &str, failures: i64) -> RepoRow {
    RepoRow {
        id,
        owner: "o".into(),
        name: name.into(),
        listed_labels: r#"["good first issue"]"#.into(),
        label_status: "resolved".into(),
        resolved_label: Some("good first issue".into()),
        upstream_status: "ok".into(),
        state_hash: Some("s".into()),
        content_hash: Some("c".into()),
        scrape_failures: failures,
    }
}

fn failed(id: i64, name: &str, f: Failure) -> RepoWork {
    let mut w = RepoWork::new(row(id, name, 0));
    w.absorb(RepoOutcome::Failed(f));
    w
}

#[test]
fn a_transient_repo_failure_is_retried_then_recorded_and_a_forbidden_one_is_recorded_at_once() {
    let work = vec![
        failed(
            1,
            "flaky",
            Failure::transient("GitHub GraphQL error for r0: Something went wrong"),
        ),
        failed(
            2,
            "saml",
            Failure::permanent("GitHub GraphQL FORBIDDEN for r1: SAML"),
        ),
    ];
    let s = settle_failures(&work, &[], Pass::Main, NOW);
    assert_eq!(s.retry.len(), 1);
    assert_eq!(
        (s.retry[0].name.as_str(), s.retry[0].attempts),
        ("flaky", 1)
    );
    assert_eq!(s.given_up, 1, "FORBIDDEN is not retried");
    assert_eq!(
        s.statements.len(),
        2,
        "both failures are recorded on their rows"
    );

    // The last attempt gives up and records GitHub's reason.
    let retry = vec![RetryRepo {
        owner: "o".into(),
        name: "flaky".into(),
        attempts: MAX_REPO_ATTEMPTS - 1,
        reason: "x".into(),
    }];
    let s = settle_failures(&work[..1], &retry, Pass::Retry, NOW);
    assert!(s.retry.is_empty());
    assert_eq!(s.given_up, 1);
    let reason = s.statements[0].params[2].clone();
    assert_eq!(reason, format!("gave up after {MAX_REPO_ATTEMPTS} attempt(s): GitHub GraphQL error for r0: Something went wrong").into());
}

#[test]
fn a_repo_that_answers_again_forgets_its_failures_and_leaves_the_retry_list() {
    let mut w = RepoWork::new(row(1, "flaky", 2));
    w.absorb(RepoOutcome::NotFound {
        message: "gone".into(),
    });
    let retry = vec![RetryRepo {
        owner: "o".into(),
        name: "flaky".into(),
        attempts: 2,
        reason: "x".into(),
    }];
    let s = settle_failures(&[w], &retry, Pass::Retry, NOW);
    assert!(s.retry.is_empty());
    assert_eq!(s.statements.len(), 1);
    assert!(s.statements[0]
        .sql
        .starts_with("UPDATE repos SET scrape_failures = 0"));
}

fn response(body: serde_json::Value) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

fn repo_json(issues: serde_json::Value, page: serde_json::Value) -> serde_json::Value {
    json!({
        "nameWithOwner": "o/r", "isArchived": false, "description": null, "stargazerCount": 1,
        "pushedAt": "2025-06-01T00:00:00Z", "primaryLanguage": null,
        "issues": {"totalCount": 1, "pageInfo": page, "nodes": issues}
    })
}

fn issue_json(number: i64) -> serde_json::Value {
    json!({
        "number": number, "title": "t", "url": "u", "state": "OPEN", "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-02-01T00:00:00Z", "lastEditedAt": null, "labels": {"nodes": [{"name": "good first issue"}]},
        "assignees": {"totalCount": 0}, "comments": {"totalCount": 0},
        "closedByPullRequestsReferences": {"totalCount": 1}
    })
}

#[test]
fn partial_answers_are_failures_not_complete_refreshes() {
    let whole = json!({"hasNextPage": false, "endCursor": null});
    let body = json!({
        "data": {
            "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2025-06-01T01:00:00Z"},
            "r0": repo_json(json!([issue_json(1)]), whole.clone()),
            "r1": repo_json(json!([issue_json(2), null]), whole.clone()),
            "r2": repo_json(json!([issue_json(3)]), json!({"hasNextPage": true, "endCursor": null})),
            "r3": repo_json(json!([issue_json(4)]), whole.clone()),
            "r4": null,
            "r5": null,
        },
        "errors": [
            {"type": "NOT_FOUND", "path": ["r1", "issues", "nodes", 1], "message": "Could not resolve to a node"},
            {"path": ["r3", "issues"], "message": "Something went wrong while executing your query."},
            {"type": "FORBIDDEN", "path": ["r4"], "message": "Resource protected by organization SAML enforcement."},
            {"path": ["r5"], "message": "Something went wrong while executing your query. This may be the result of a timeout"},
        ]
    });
    let answer = github::decode_scrape(&response(body), 6).unwrap();
    let RepoOutcome::Found(state) = &answer.repos[0] else {
        panic!("r0 is whole: {:?}", answer.repos[0])
    };
    assert_eq!(state.issues.as_ref().unwrap().nodes[0].linked_pr_count, 1);
    for (i, what) in [
        (1, "null issue node"),
        (2, "next page without a cursor"),
        (3, "partial"),
    ] {
        match &answer.repos[i] {
            RepoOutcome::Failed(f @ Failure::Transient { .. }) => {
                assert!(f.reason().contains("partial"), "r{i} ({what}): {f}")
            }
            other => panic!("r{i} ({what}) must fail transiently, got {other:?}"),
        }
    }
    assert!(
        matches!(&answer.repos[4], RepoOutcome::Failed(Failure::Permanent { reason }) if reason.contains("FORBIDDEN"))
    );
    assert!(matches!(
        &answer.repos[5],
        RepoOutcome::Failed(Failure::Transient { .. })
    ));
}

#[test]
fn data_null_from_a_github_timeout_is_transient_but_a_rejected_query_is_permanent() {
    let timeout = json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."}]});
    assert!(matches!(
        github::decode_scrape(&response(timeout), 1),
        Err(Failure::Transient { .. })
    ));
    let rejected = json!({"data": null, "errors": [{"message": "Field 'bogus' doesn't exist on type 'Repository'"}]});
    assert!(matches!(
        github::decode_scrape(&response(rejected), 1),
        Err(Failure::Permanent { .. })
    ));
    let revoked = HttpResponse {
        status: 401,
        headers: vec![],
        body: r#"{"message":"Bad credentials"}"#.into(),
    };
    assert!(
        matches!(github::decode_scrape(&revoked, 1), Err(Failure::Permanent { reason }) if reason.contains("401"))
    );
}

fn meta() -> IssueMeta {
    IssueMeta {
        number: 1,
        title: "Add a test".into(),
        state: "open".into(),
        created_at: "2025-01-01T00:00:00Z".into(),
        updated_at: "2025-02-01T00:00:00Z".into(),
        labels: vec!["good first issue".into()],
        ..IssueMeta::default()
    }
}

fn hashes(m: &IssueMeta) -> (String, String) {
    let input = IssueHashInput {
        title: &m.title,
        state: &m.state,
        labels: &m.labels,
        assignee_count: m.assignee_count,
        comment_count: m.comment_count,
        linked_pr_count: m.linked_pr_count,
        created_at: &m.created_at,
        updated_at: &m.updated_at,
        last_edited_at: m.last_edited_at.as_deref(),
        availability: "ok",
    };
    (
        hash::issue_state_hash(&input).0,
        hash::issue_content_hash(&input).0,
    )
}

#[test]
fn activity_changes_the_state_hash_only_and_edits_change_the_content_hash() {
    let base = meta();
    let (state, content) = hashes(&base);
    for activity in [
        IssueMeta {
            comment_count: 1,
            updated_at: "2025-03-01T00:00:00Z".into(),
            ..meta()
        },
        IssueMeta {
            assignee_count: 1,
            ..meta()
        },
        IssueMeta {
            labels: vec!["good first issue".into(), "docs".into()],
            ..meta()
        },
        IssueMeta {
            linked_pr_count: 1,
            ..meta()
        },
    ] {
        let (s, c) = hashes(&activity);
        assert_ne!(s, state, "{activity:?} rewrites the row");
        assert_eq!(c, content, "{activity:?} queues nothing");
    }
    for edit in [
        IssueMeta {
            title: "Add two tests".into(),
            ..meta()
        },
        IssueMeta {
            last_edited_at: Some("2025-03-01T00:00:00Z".into()),
            ..meta()
        },
    ] {
        let (s, c) = hashes(&edit);
        assert_ne!(s, state);
        assert_ne!(c, content, "{edit:?} re-queues the issue");
    }
}

/// The state hash is XXH3-128 (32 hex), the content hash SHA-256 (64 hex)
/// over the same length-prefixed layout as before the state hash changed:
/// stored content hashes still match, so a deploy queues nothing and no
/// AI call is spent (its rows are rewritten once, for their new state hash).
#[test]
fn the_state_hash_is_short_and_the_content_hash_keeps_its_layout() {
    use sha2::{Digest, Sha256};
    let m = meta();
    let (state, content) = hashes(&m);
    assert_eq!(state.len(), 32);
    assert!(state
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let mut layout = Vec::new();
    for field in ["issue/v2", m.title.as_str(), m.created_at.as_str()] {
        layout.extend_from_slice(&(field.len() as u64).to_le_bytes());
        layout.extend_from_slice(field.as_bytes());
    }
    assert_eq!(content, hex::encode(Sha256::digest(&layout)));
}

fn repo_state(archived: bool, pushed_at: &str) -> RepoState {
    RepoState {
        name_with_owner: "o/r".into(),
        is_archived: archived,
        description: None,
        stars: 1,
        pushed_at: Some(pushed_at.into()),
        primary_language: None,
        labels: None,
        issues: None,
    }
}

#[test]
fn availability_names_why_a_beginner_cannot_take_an_issue() {
    let now = contribot_core::logrec::parse_iso8601("2025-06-01T00:00:00Z").unwrap();
    let active = repo_state(false, "2025-05-01T00:00:00Z");
    assert_eq!(availability(&meta(), &active, now, 365), "ok");
    assert_eq!(
        availability(
            &IssueMeta {
                assignee_count: 2,
                ..meta()
            },
            &active,
            now,
            365
        ),
        "assigned"
    );
    assert_eq!(
        availability(
            &IssueMeta {
                linked_pr_count: 1,
                ..meta()
            },
            &active,
            now,
            365
        ),
        "linked_pr"
    );
    assert_eq!(
        availability(
            &meta(),
            &repo_state(false, "2023-01-01T00:00:00Z"),
            now,
            365
        ),
        "inactive_repo"
    );
    assert_eq!(
        availability(
            &meta(),
            &repo_state(false, "2023-01-01T00:00:00Z"),
            now,
            1000
        ),
        "ok",
        "the threshold is configurable"
    );
    assert_eq!(
        availability(
            &IssueMeta {
                assignee_count: 1,
                ..meta()
            },
            &repo_state(true, "2025-05-01T00:00:00Z"),
            now,
            365
        ),
        "archived_repo"
    );
}

#[test]
fn a_deferred_repo_is_asked_again_from_its_first_page() {
    let mut w = RepoWork::new(row(1, "big", 0));
    let first = w.next.clone().unwrap();
    w.defer("allowance");
    assert_eq!(w.status, WorkStatus::Deferred("allowance".into()));
    assert!(w.next.is_none());
    let again = RepoWork::new(row(1, "big", 0));
    assert_eq!(again.next, Some(RepoQuery { ..first }));
}
