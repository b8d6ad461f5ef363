//! What makes an issue unavailable to a beginner, as GitHub serves it:
//! pull requests that will close it (open, closed, merged), assignees,
//! comments, `lastEditedAt`, and the mutations that change them.

mod sim_client;

use serde_json::{json, Value};
use sim_client::SimClient;

const AVAILABILITY: &str = r#"
query Availability($owner: String!, $name: String!, $label: String!) {
  repository(owner: $owner, name: $name) {
    issues(first: 100, labels: [$label], states: [OPEN]) {
      nodes {
        number updatedAt lastEditedAt
        assignees(first: 1) { totalCount }
        comments { totalCount }
        closedByPullRequestsReferences(first: 1, includeClosedPrs: false) { totalCount }
      }
    }
  }
  rateLimit { cost }
}"#;

const ONE_ISSUE: &str = r#"
query One($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    issue(number: $number) {
      title state stateReason updatedAt lastEditedAt
      comments { totalCount }
      assignees(first: 10) { totalCount nodes { login } }
      open: closedByPullRequestsReferences(first: 5) { totalCount }
      all: closedByPullRequestsReferences(first: 5, includeClosedPrs: true, orderByState: true) {
        totalCount
        nodes { number state closed merged mergedAt url }
      }
    }
  }
}"#;

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

async fn one(c: &SimClient, number: u64) -> Value {
    let r = c
        .graphql(
            ONE_ISSUE,
            json!({"owner": "ppy", "name": "osu", "number": number}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["repository"]["issue"].clone()
}

async fn mutate(c: &SimClient, ops: Value) -> Value {
    let r = c.post("/_sim/mutate", json!({ "ops": ops })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// An open beginner issue of ppy/osu with no assignee and no linked PR.
async fn available_issue(c: &SimClient) -> u64 {
    let t = c.repo_truth("ppy/osu").await;
    let taken: Vec<u64> = numbers(&t["open_beginner_issues_with_open_pr"])
        .into_iter()
        .chain(numbers(&t["open_beginner_issues_assigned"]))
        .collect();
    numbers(&t["open_beginner_issues"])
        .into_iter()
        .find(|n| !taken.contains(n))
        .expect("ppy/osu has an available beginner issue")
}

#[tokio::test]
async fn linked_open_pull_requests_are_counted_per_issue_at_githubs_cost() {
    let c = SimClient::start().await;
    let truth = c.truth().await;
    assert!(
        truth["totals"]["open_beginner_issues_with_open_pr"]
            .as_u64()
            .unwrap()
            > 20
    );
    let repo = truth["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["status"] == "ok"
                && !r["open_beginner_issues_with_open_pr"]
                    .as_array()
                    .unwrap()
                    .is_empty()
                && r["open_beginner_issues"].as_array().unwrap().len() <= 100
        })
        .expect("a repo with a linked open PR")
        .clone();
    let (owner, name) = repo["name_with_owner"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap();
    let r = c
        .graphql(
            AVAILABILITY,
            json!({"owner": owner, "name": name, "label": repo["beginner_label"]}),
        )
        .await;
    let body = r.json();
    assert!(body.get("errors").is_none(), "{body}");
    // 1 request for the issues, then 100 each for assignees, comments and
    // PRs (a connection costs its parent's page size even for totalCount).
    assert_eq!(body["data"]["rateLimit"]["cost"], 3);
    let nodes = body["data"]["repository"]["issues"]["nodes"]
        .as_array()
        .unwrap();
    let with_pr: Vec<u64> = nodes
        .iter()
        .filter(|n| n["closedByPullRequestsReferences"]["totalCount"].as_u64() > Some(0))
        .map(|n| n["number"].as_u64().unwrap())
        .collect();
    assert_eq!(with_pr, numbers(&repo["open_beginner_issues_with_open_pr"]));
    let assigned: Vec<u64> = nodes
        .iter()
        .filter(|n| n["assignees"]["totalCount"].as_u64() > Some(0))
        .map(|n| n["number"].as_u64().unwrap())
        .collect();
    assert_eq!(assigned, numbers(&repo["open_beginner_issues_assigned"]));
    assert!(nodes.iter().all(|n| n["lastEditedAt"].is_null()));
}

#[tokio::test]
async fn a_pr_opened_closed_unmerged_then_another_merged_changes_the_issue_as_github_does() {
    let c = SimClient::start().await;
    let n = available_issue(&c).await;
    let before = one(&c, n).await;
    assert_eq!(before["open"]["totalCount"], 0);

    let opened = mutate(
        &c,
        json!([{"op": "open_pull_request", "repo": "ppy/osu", "closes": [n], "title": "Fix it"}]),
    )
    .await;
    let pr = opened["applied"][0]["number"].as_u64().unwrap();
    assert!(opened["applied"][0]["ids"][0]
        .as_str()
        .unwrap()
        .starts_with("PR_kwDO"));
    let open = one(&c, n).await;
    assert_eq!(open["open"]["totalCount"], 1);
    assert_eq!(open["updatedAt"], opened["applied"][0]["at"]);
    assert_eq!(
        open["all"]["nodes"][0],
        json!({"number": pr, "state": "OPEN", "closed": false, "merged": false, "mergedAt": null,
               "url": format!("https://github.com/ppy/osu/pull/{pr}")})
    );
    let t = c.repo_truth("ppy/osu").await;
    assert!(numbers(&t["open_beginner_issues_with_open_pr"]).contains(&n));

    mutate(
        &c,
        json!([{"op": "close_pull_request", "repo": "ppy/osu", "number": pr}]),
    )
    .await;
    let closed = one(&c, n).await;
    assert_eq!(closed["open"]["totalCount"], 0);
    assert_eq!(closed["all"]["nodes"][0]["state"], "CLOSED");
    assert_eq!(closed["state"], "OPEN");
    assert_eq!(
        closed["updatedAt"], open["updatedAt"],
        "the issue is untouched"
    );

    mutate(
        &c,
        json!([{"op": "open_pull_request", "repo": "ppy/osu", "closes": [n]}]),
    )
    .await;
    let reopened = one(&c, n).await;
    // orderByState puts the open PR before the older, closed one.
    let order: Vec<(Value, Value)> = reopened["all"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["number"].clone(), p["state"].clone()))
        .collect();
    assert_eq!(
        order,
        [(json!(pr + 1), json!("OPEN")), (json!(pr), json!("CLOSED"))]
    );
    let second = mutate(
        &c,
        json!([{"op": "merge_pull_request", "repo": "ppy/osu", "number": pr + 1}]),
    )
    .await;
    let merged_at = second["applied"][0]["at"].clone();
    let done = one(&c, n).await;
    assert_eq!(done["state"], "CLOSED");
    assert_eq!(done["stateReason"], "COMPLETED");
    assert_eq!(done["all"]["totalCount"], 2);
    // Both are closed now, so orderByState keeps PR order.
    assert_eq!(done["all"]["nodes"][0]["state"], "CLOSED", "{done}");
    assert_eq!(done["all"]["nodes"][1]["state"], "MERGED");
    assert_eq!(done["all"]["nodes"][1]["mergedAt"], merged_at);
    let rest = c
        .rest(&format!("/repos/ppy/osu/issues/{}", pr + 1))
        .await
        .json();
    assert_eq!(rest["pull_request"]["merged_at"], merged_at);
    let rest_closed = c.rest(&format!("/repos/ppy/osu/issues/{pr}")).await.json();
    assert_eq!(rest_closed["pull_request"]["merged_at"], Value::Null);
}

#[tokio::test]
async fn last_edited_at_follows_body_edits_while_a_title_edit_moves_only_updated_at() {
    let c = SimClient::start().await;
    let n = available_issue(&c).await;
    let title = mutate(
        &c,
        json!([{"op": "edit_issue", "repo": "ppy/osu", "number": n, "title": "A clearer title"}]),
    )
    .await;
    let after_title = one(&c, n).await;
    assert_eq!(after_title["title"], "A clearer title");
    assert_eq!(after_title["updatedAt"], title["applied"][0]["at"]);
    assert_eq!(after_title["lastEditedAt"], Value::Null);

    let body = mutate(
        &c,
        json!([{"op": "edit_issue", "repo": "ppy/osu", "number": n, "body": "Steps to reproduce…"}]),
    )
    .await;
    let after_body = one(&c, n).await;
    assert_eq!(after_body["lastEditedAt"], body["applied"][0]["at"]);
    assert_eq!(after_body["updatedAt"], body["applied"][0]["at"]);
}

#[tokio::test]
async fn a_new_comment_or_assignee_bumps_updated_at() {
    let c = SimClient::start().await;
    let n = available_issue(&c).await;
    let before = one(&c, n).await;
    let comments = before["comments"]["totalCount"].as_u64().unwrap();
    let applied = mutate(
        &c,
        json!([
            {"op": "comment_issue", "repo": "ppy/osu", "number": n},
            {"op": "add_assignee", "repo": "ppy/osu", "number": n, "login": "newcomer"}
        ]),
    )
    .await;
    let after = one(&c, n).await;
    assert_eq!(after["comments"]["totalCount"], comments + 1);
    assert_eq!(
        after["assignees"],
        json!({"totalCount": 1, "nodes": [{"login": "newcomer"}]})
    );
    assert_eq!(after["updatedAt"], applied["applied"][1]["at"]);
    let t = c.repo_truth("ppy/osu").await;
    assert!(numbers(&t["open_beginner_issues_assigned"]).contains(&n));
    let rest = c.rest(&format!("/repos/ppy/osu/issues/{n}")).await.json();
    assert_eq!(rest["comments"], comments + 1);
}

#[tokio::test]
async fn pull_request_ops_refuse_what_github_would_not_do() {
    let c = SimClient::start().await;
    let n = available_issue(&c).await;
    for ops in [
        json!([{"op": "merge_pull_request", "repo": "ppy/osu", "number": n}]),
        json!([{"op": "open_pull_request", "repo": "ppy/osu", "closes": [99999]}]),
    ] {
        let r = c.post("/_sim/mutate", json!({ "ops": ops })).await;
        assert_eq!(r.status, 400, "{ops}");
    }
    let opened = mutate(
        &c,
        json!([{"op": "open_pull_request", "repo": "ppy/osu", "closes": [n]}]),
    )
    .await;
    let pr = opened["applied"][0]["number"].as_u64().unwrap();
    let twice = c
        .post(
            "/_sim/mutate",
            json!({"ops": [
                {"op": "close_pull_request", "repo": "ppy/osu", "number": pr},
                {"op": "merge_pull_request", "repo": "ppy/osu", "number": pr}
            ]}),
        )
        .await;
    assert_eq!(twice.status, 400);
    assert!(twice.json()["error"].as_str().unwrap().starts_with("op 1:"));
    let closes_a_pr = c
        .post(
            "/_sim/mutate",
            json!({"ops": [{"op": "open_pull_request", "repo": "ppy/osu", "closes": [pr]}]}),
        )
        .await;
    assert_eq!(closes_a_pr.status, 400);
}
