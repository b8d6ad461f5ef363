//! The control API: mutations visible through every protocol, list
//! breakage, reset, counters and ground truth.

mod sim_client;

use serde_json::{json, Value};
use sim_client::SimClient;

const OPEN_GFI: &str = r#"{ repository(owner: "ppy", name: "osu") {
    updatedAt
    issues(first: 100, labels: ["good first issue"], states: OPEN) { totalCount nodes { number title updatedAt body } } } }"#;

async fn open_gfi(c: &SimClient) -> Value {
    c.graphql(OPEN_GFI, json!({})).await.json()["data"]["repository"]["issues"].clone()
}

fn numbers(issues: &Value) -> Vec<u64> {
    issues["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn mutations_show_up_in_graphql_and_stamp_updated_at() {
    let c = SimClient::start().await;
    let before = open_gfi(&c).await;
    let nums = numbers(&before);
    let (closed, edited) = (nums[0], nums[1]);
    let r = c
        .post(
            "/_sim/mutate",
            json!({"ops": [
                {"op": "close_issue", "repo": "ppy/osu", "number": closed},
                {"op": "edit_issue", "repo": "ppy/osu", "number": edited, "title": "Renamed title", "body": "New body"},
                {"op": "add_issue", "repo": "ppy/osu", "labels": ["good first issue"], "title": "Brand new"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let applied = r.json();
    assert_eq!(applied["applied"].as_array().unwrap().len(), 3);
    assert_eq!(applied["clock"], "2024-05-01T12:03:00Z");
    assert!(applied["applied"][0]["ids"][0]
        .as_str()
        .unwrap()
        .starts_with("I_"));
    let added = applied["applied"][2]["number"].as_u64().unwrap();

    let after = open_gfi(&c).await;
    let after_nums = numbers(&after);
    assert!(!after_nums.contains(&closed));
    assert!(after_nums.contains(&added));
    assert_eq!(after["totalCount"], before["totalCount"]);
    let e = after["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == edited)
        .unwrap();
    assert_eq!(e["title"], "Renamed title");
    assert_eq!(e["body"], "New body");
    assert_eq!(e["updatedAt"], "2024-05-01T12:02:00Z");

    // REST and truth agree.
    let rest = c
        .rest(&format!("/repos/ppy/osu/issues/{closed}"))
        .await
        .json();
    assert_eq!(rest["state"], "closed");
    assert_eq!(rest["closed_at"], "2024-05-01T12:01:00Z");
    let t = c.repo_truth("ppy/osu").await;
    assert!(t["open_beginner_issues"]
        .as_array()
        .unwrap()
        .contains(&json!(added)));
}

#[tokio::test]
async fn a_renamed_label_no_longer_matches_the_old_name() {
    let c = SimClient::start().await;
    let before = open_gfi(&c).await["totalCount"].as_u64().unwrap();
    c.post(
        "/_sim/mutate",
        json!({"ops": [{"op": "rename_label", "repo": "ppy/osu", "from": "good first issue", "to": "good-first-issue"}]}),
    )
    .await;
    assert_eq!(open_gfi(&c).await["totalCount"], 0);
    let q = r#"{ repository(owner: "ppy", name: "osu") { issues(labels: ["good-first-issue"], states: OPEN) { totalCount } } }"#;
    let renamed = c.graphql(q, json!({})).await.json();
    assert_eq!(
        renamed["data"]["repository"]["issues"]["totalCount"],
        before
    );
    assert_eq!(
        c.repo_truth("ppy/osu").await["beginner_label"],
        "good-first-issue"
    );
}

#[tokio::test]
async fn archive_and_delete_change_repo_status_everywhere() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/mutate",
        json!({"ops": [
            {"op": "archive_repo", "repo": "ppy/osu"},
            {"op": "delete_repo", "repo": "vitejs/vite"}
        ]}),
    )
    .await;
    let q = r#"{ a: repository(owner: "ppy", name: "osu") { isArchived } b: repository(owner: "vitejs", name: "vite") { id } }"#;
    let body = c.graphql(q, json!({})).await.json();
    assert_eq!(body["data"]["a"]["isArchived"], true);
    assert_eq!(body["data"]["b"], Value::Null);
    assert_eq!(body["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(c.rest("/repos/vitejs/vite").await.status, 404);
    let truth = c.truth().await;
    assert!(truth["special"]["missing"]
        .as_array()
        .unwrap()
        .contains(&json!("vitejs/vite")));
    assert_eq!(c.repo_truth("ppy/osu").await["status"], "archived");
}

#[tokio::test]
async fn a_failing_op_applies_nothing() {
    let c = SimClient::start().await;
    let r = c
        .post(
            "/_sim/mutate",
            json!({"ops": [
                {"op": "archive_repo", "repo": "ppy/osu"},
                {"op": "close_issue", "repo": "ppy/osu", "number": 99999}
            ]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("op 1"));
    assert_eq!(c.repo_truth("ppy/osu").await["status"], "ok");
}

#[tokio::test]
async fn the_raw_list_is_the_fixture_until_mutated_then_regenerated() {
    let c = SimClient::start().await;
    let raw = |file: &'static str| {
        let c = &c;
        async move {
            c.rest_with(
                &format!("/raw/MunGell/awesome-for-beginners/main/{file}"),
                &[],
            )
            .await
        }
    };
    let fixture = include_str!("../../../fixtures/awesome-for-beginners/README.md");
    assert_eq!(raw("README.md").await.text, fixture);
    assert_eq!(raw("nope.txt").await.text, "404: Not Found");
    c.post(
        "/_sim/mutate",
        json!({"ops": [{"op": "add_list_entry", "link": "https://github.com/new-org/new-repo", "label": "good first issue", "name": "New Repo", "technologies": ["Rust"], "description": "Fresh."}]}),
    )
    .await;
    let readme = raw("README.md").await.text;
    assert!(readme.contains(
        "- [New Repo](https://github.com/new-org/new-repo) _(label: good first issue)_ <br> Fresh.\n"
    ));
    let data: Value = raw("data.json").await.json();
    assert_eq!(data["repositories"].as_array().unwrap().len(), 230);
    let repo = c
        .graphql(
            r#"{ repository(owner: "new-org", name: "new-repo") { nameWithOwner } }"#,
            json!({}),
        )
        .await
        .json();
    assert_eq!(
        repo["data"]["repository"]["nameWithOwner"],
        "new-org/new-repo"
    );

    c.post(
        "/_sim/mutate",
        json!({"ops": [{"op": "break_list", "mode": "invalid_json"}]}),
    )
    .await;
    assert!(serde_json::from_str::<Value>(&raw("data.json").await.text).is_err());
    c.post("/_sim/mutate", json!({"ops": [{"op": "restore_list"}]}))
        .await;
    assert_eq!(raw("README.md").await.text, fixture);

    c.post("/_sim/mutate", json!({"ops": [{"op": "break_list", "mode": "non_github_hosts"}, {"op": "break_list", "mode": "entry_without_link"}]})).await;
    let truth = c.truth().await;
    assert!(truth["non_github_links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("codeberg.org")));
    let data: Value = raw("data.json").await.json();
    assert!(data["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.get("link").is_none()));
}

#[tokio::test]
async fn reset_restores_the_seeded_state() {
    let c = SimClient::start().await;
    let pristine = c.truth().await;
    c.post(
        "/_sim/mutate",
        json!({"ops": [{"op": "delete_repo", "repo": "ppy/osu"}]}),
    )
    .await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "rest", "kind": "status_500"}]}),
    )
    .await;
    assert_eq!(c.rest("/repos/vitejs/vite").await.status, 500);
    assert_eq!(c.post("/_sim/reset", json!({})).await.status, 200);
    assert_eq!(c.truth().await, pristine);
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    assert_eq!(c.sim.counters().requests_total, 1);
}

#[tokio::test]
async fn counters_split_by_route_status_token_and_invocation() {
    let c = SimClient::start().await;
    let q =
        "{ repository(owner: \"ppy\", name: \"osu\") { issues(first: 10) { nodes { number } } } }";
    let r = c
        .http
        .post(c.url("/graphql"))
        .header("user-agent", "t")
        .header("authorization", "bearer tok-a")
        .header("x-contribot-invocation", "inv-1")
        .json(&json!({"query": q}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.rest_with(
        "/repos/ppy/osu/issues/1",
        &[("x-contribot-invocation", "inv-1")],
    )
    .await;
    c.rest("/repos/no/such").await;
    c.get("/_sim/truth").await;
    let counters: Value = c.get("/_sim/counters").await.json();
    assert_eq!(counters["requests_total"], 3);
    assert_eq!(counters["by_route"]["graphql"], 1);
    assert_eq!(
        counters["by_route"]["rest:/repos/{owner}/{repo}/issues/{number}"],
        1
    );
    assert_eq!(counters["by_status"]["404"], 1);
    assert_eq!(counters["by_token"]["tok-a"], 1);
    assert_eq!(
        counters["by_invocation"]["inv-1"],
        json!({"requests": 2, "graphql_points": 1})
    );
    assert_eq!(counters["graphql_points_by_token"]["tok-a"], 1);
    c.post("/_sim/counters/reset", json!({})).await;
    assert_eq!(c.get("/_sim/counters").await.json()["requests_total"], 0);
}

#[tokio::test]
async fn truth_describes_every_repo_and_the_special_ones() {
    let c = SimClient::start().await;
    let t = c.truth().await;
    assert_eq!(t["repos"].as_array().unwrap().len(), 222);
    let s = &t["special"];
    assert_eq!(s["missing"].as_array().unwrap().len(), 3);
    assert_eq!(s["renamed"].as_array().unwrap().len(), 1);
    assert_eq!(s["archived"].as_array().unwrap().len(), 3);
    assert_eq!(s["label_missing"].as_array().unwrap().len(), 1);
    assert!((3..=5).contains(&s["paginated"].as_array().unwrap().len()));
    let lm = c.repo_truth(s["label_missing"][0].as_str().unwrap()).await;
    assert_eq!(lm["beginner_label"], Value::Null);
    let help = t["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["listed_labels"] == json!(["help-wanted"]) && r["status"] == "ok")
        .unwrap();
    assert_eq!(help["beginner_label"], "help wanted");
    assert_eq!(t["non_github_links"].as_array().unwrap().len(), 7);
}
