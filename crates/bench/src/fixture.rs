//! A realistic scrape step, built deterministically: the GraphQL answer for
//! one query of `repos` repositories with `issues_per_repo` labelled open
//! issues each (metadata only, as the scrape query asks), the stored repo rows and the stored issue
//! hashes, half of the repos and half of the issues unchanged.
//!
//! The answer has the shape `contribot_core::github::decode_scrape` expects
//! from the scrape query (`rateLimit`, aliases `r0…` with the repo state, the
//! label search and the first page of issues).

use contribot_core::github::{self, HttpResponse};
use contribot_core::hash::{self, IssueHashInput, RepoHashInput};
use contribot_core::scrape::{self, RepoWork, StepPlan};
use contribot_core::store::{IssueHashRow, RepoRow};
use serde_json::{json, Value};

/// The beginner label every fixture repo uses.
pub const LABEL: &str = "good first issue";

/// Clock of the fixture (2024-05-02T00:00:00Z), after every timestamp in it.
pub const NOW_MS: i64 = 1_714_608_000_000;

/// One step's inputs, as a scrape invocation holds them after its D1 read
/// and before its GraphQL answer is decoded.
#[derive(Debug, Clone)]
pub struct StepFixture {
    pub response: HttpResponse,
    pub rows: Vec<RepoRow>,
    pub known: Vec<IssueHashRow>,
}

struct FixtureIssue {
    number: i64,
    title: String,
    labels: Vec<String>,
    assignees: i64,
    comments: i64,
    updated_at: String,
}

fn issues_of(repo: usize, per_repo: usize) -> Vec<FixtureIssue> {
    (0..per_repo)
        .map(|k| {
            let number = (repo * 1000 + k * 7 + 1) as i64;
            FixtureIssue {
                number,
                title: format!("Settings toggle {number} does not persist in module {repo}"),
                labels: vec![LABEL.to_string(), "bug".to_string()],
                assignees: (k % 2) as i64,
                comments: (k % 5) as i64,
                updated_at: format!("2024-04-{:02}T10:{:02}:00Z", 1 + k % 28, k % 60),
            }
        })
        .collect()
}

fn slug(repo: usize) -> (String, String) {
    (format!("bench-org-{repo}"), format!("project-{repo}"))
}

/// Builds the fixture.
pub fn step_fixture(repos: usize, issues_per_repo: usize) -> StepFixture {
    let mut data = serde_json::Map::new();
    data.insert(
        "rateLimit".into(),
        json!({"cost": 3, "remaining": 4990, "resetAt": "2024-05-02T01:00:00Z"}),
    );
    let mut rows = Vec::with_capacity(repos);
    let mut known = Vec::new();
    for i in 0..repos {
        let (owner, name) = slug(i);
        let issues = issues_of(i, issues_per_repo);
        let unchanged_repo = i % 2 == 0;
        let nodes: Vec<Value> = issues
            .iter()
            .map(|x| {
                json!({
                    "number": x.number,
                    "title": x.title,
                    "lastEditedAt": null,
                    "url": format!("https://github.com/{owner}/{name}/issues/{}", x.number),
                    "state": "OPEN",
                    "createdAt": "2024-03-01T09:00:00Z",
                    "updatedAt": x.updated_at,
                    "labels": {"nodes": x.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()},
                    "assignees": {"totalCount": x.assignees},
                    "comments": {"totalCount": x.comments},
                    "closedByPullRequestsReferences": {"totalCount": 0},
                })
            })
            .collect();
        let description = format!("A friendly project number {i} for new contributors");
        let pushed_at = "2024-04-30T08:00:00Z";
        data.insert(
            format!("r{i}"),
            json!({
                "nameWithOwner": format!("{owner}/{name}"),
                "isArchived": false,
                "description": description,
                "stargazerCount": 1000 + i,
                "pushedAt": pushed_at,
                "primaryLanguage": {"name": "Rust"},
                "labels": {"nodes": [{"name": "bug"}, {"name": LABEL}, {"name": "documentation"}]},
                "issues": {
                    "totalCount": issues.len(),
                    "pageInfo": {"hasNextPage": false, "endCursor": null},
                    "nodes": nodes,
                },
            }),
        );
        // Half the repos are stored as they are upstream, the other half
        // with a stale state hash; half of every repo's issues are stale.
        let state_hash = unchanged_repo.then(|| {
            hash::repo_state_hash(&RepoHashInput {
                name_with_owner: &format!("{owner}/{name}"),
                description: Some(&description),
                primary_language: Some("Rust"),
                stars: (1000 + i) as i64,
                is_archived: false,
                pushed_at: Some(pushed_at),
                resolved_label: Some(LABEL),
            })
            .0
        });
        let id = 1 + i as i64;
        rows.push(RepoRow {
            id,
            owner: owner.clone(),
            name: name.clone(),
            listed_labels: serde_json::to_string(&[LABEL]).expect("labels serialise"),
            label_status: "resolved".into(),
            resolved_label: Some(LABEL.into()),
            upstream_status: "ok".into(),
            state_hash: state_hash.clone(),
            content_hash: state_hash,
            scrape_failures: 0,
        });
        for (k, x) in issues.iter().enumerate() {
            let input = IssueHashInput {
                title: &x.title,
                state: "open",
                labels: &x.labels,
                assignee_count: x.assignees,
                comment_count: x.comments,
                linked_pr_count: 0,
                created_at: "2024-03-01T09:00:00Z",
                updated_at: &x.updated_at,
                last_edited_at: None,
                availability: "ok",
            };
            let current = hash::issue_state_hash(&input).0;
            let stale = k % 2 == 1;
            known.push(IssueHashRow {
                repo_id: id,
                number: x.number,
                state_hash: Some(if stale {
                    format!("stale-{current}")
                } else {
                    current
                }),
                content_hash: hash::issue_content_hash(&input).0,
                state: "open".into(),
            });
        }
    }
    let body = json!({"data": Value::Object(data)}).to_string();
    StepFixture {
        response: HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        },
        rows,
        known,
    }
}

/// The hot path of one scrape step: decode the answer, absorb it into each
/// repo's work, hash and diff against the stored hashes, plan the writes.
pub fn run_step(fixture: &StepFixture) -> StepPlan {
    let answer =
        github::decode_scrape(&fixture.response, fixture.rows.len()).expect("the fixture decodes");
    let mut work: Vec<RepoWork> = fixture.rows.iter().cloned().map(RepoWork::new).collect();
    for (w, outcome) in work.iter_mut().zip(answer.repos) {
        w.absorb(outcome);
    }
    scrape::plan_step(
        &work,
        &fixture.known,
        NOW_MS,
        scrape::DEFAULT_INACTIVE_AFTER_DAYS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_over_the_fixture_completes_every_repo_and_writes_only_the_changes() {
        let fixture = step_fixture(25, 10);
        assert!(
            fixture.response.body.len() > 50_000,
            "250 issues of metadata, as the scrape query returns them"
        );
        let plan = run_step(&fixture);
        assert_eq!(plan.done, 25);
        assert_eq!(plan.repos_seen, 25);
        // Repos 1, 3, … (12 of 25) changed; 5 of every repo's 10 issues.
        assert_eq!(plan.repos_changed, 12);
        assert_eq!(plan.issues_upserted, 25 * 5);
        assert_eq!(plan.issues_closed, 0);
        assert!(!plan.statements.is_empty());
    }
}
