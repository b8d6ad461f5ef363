//! GraphQL answers that fail in part or as a whole: `data: null` as 200 and
//! 502, FORBIDDEN and timed-out aliases beside partial data, null nodes in
//! connections and `hasNextPage: true` with a null `endCursor`.

mod sim_client;

use serde_json::{json, Value};
use sim_client::SimClient;

const TWO_REPOS: &str = r#"{
  r0: repository(owner: "ppy", name: "osu") { nameWithOwner issues(first: 100) { totalCount nodes { number } edges { cursor node { number } } pageInfo { hasNextPage endCursor } } }
  r1: repository(owner: "vitejs", name: "vite") { nameWithOwner issues(first: 5) { totalCount nodes { number } pageInfo { hasNextPage endCursor } } }
}"#;

async fn set_rules(c: &SimClient, rules: Value) -> sim_client::Reply {
    c.post("/_sim/faults", json!({"seed": 11, "rules": rules}))
        .await
}

/// GitHub's request-ID shape, `XXXX:XXXX:XXXXXX:XXXXXXX:XXXXXXXX` in hex.
fn is_request_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split(':').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [4, 4, 6, 7, 8]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn assert_something_went_wrong(message: &str) {
    let (head, rest) = message
        .split_once('`')
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(
        head,
        "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include "
    );
    let (id, tail) = rest.split_once('`').unwrap();
    assert!(is_request_id(id), "{id}");
    assert_eq!(tail, " when reporting this issue.");
}

#[tokio::test]
async fn a_whole_query_failure_is_data_null_as_200_and_as_502() {
    let c = SimClient::start().await;
    set_rules(
        &c,
        json!([
            {"route": "graphql", "kind": "data_null", "max_count": 1},
            {"route": "graphql", "kind": "data_null_502", "max_count": 1}
        ]),
    )
    .await;
    for status in [200, 502] {
        let r = c.graphql(TWO_REPOS, json!({})).await;
        assert_eq!(r.status, status);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        let body = r.json();
        assert_eq!(body["data"], Value::Null);
        assert_eq!(body["errors"].as_array().unwrap().len(), 1);
        assert_something_went_wrong(body["errors"][0]["message"].as_str().unwrap());
    }
    assert_eq!(c.graphql(TWO_REPOS, json!({})).await.status, 200);
    let counters = c.sim.counters();
    assert_eq!(counters.faults_by_kind["data_null"], 1);
    assert_eq!(counters.faults_by_kind["data_null_502"], 1);
}

#[tokio::test]
async fn a_forbidden_repo_is_a_null_alias_with_githubs_error_beside_the_others() {
    let c = SimClient::start().await;
    set_rules(
        &c,
        json!([{"route": "graphql", "kind": "alias_forbidden", "repos": ["Vitejs/Vite"]}]),
    )
    .await;
    let r = c.graphql(TWO_REPOS, json!({})).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["data"]["r0"]["nameWithOwner"], "ppy/osu");
    assert_eq!(body["data"]["r1"], Value::Null);
    assert_eq!(
        body["errors"],
        json!([{
            "type": "FORBIDDEN",
            "path": ["r1"],
            "locations": [{"line": 3, "column": 3}],
            "message": "Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.",
            "extensions": {"saml_failure": true}
        }])
    );

    set_rules(
        &c,
        json!([{"route": "graphql", "kind": "alias_forbidden", "repos": ["ppy/osu"], "forbidden_reason": "ip_allow_list"}]),
    )
    .await;
    let body = c.graphql(TWO_REPOS, json!({})).await.json();
    assert_eq!(body["data"]["r0"], Value::Null);
    assert_eq!(body["data"]["r1"]["nameWithOwner"], "vitejs/vite");
    assert_eq!(body["errors"][0]["type"], "FORBIDDEN");
    assert_eq!(
        body["errors"][0]["message"],
        "Although you appear to have the correct authorization credentials, the `ppy` organization has an IP allow list enabled, and your IP address is not permitted to access this resource."
    );
}

#[tokio::test]
async fn a_timed_out_alias_is_null_beside_partial_data_until_max_count() {
    let c = SimClient::start().await;
    set_rules(
        &c,
        json!([{"route": "graphql", "kind": "alias_timeout", "repos": ["ppy/osu"], "max_count": 2}]),
    )
    .await;
    for _ in 0..2 {
        let body = c.graphql(TWO_REPOS, json!({})).await.json();
        assert_eq!(body["data"]["r0"], Value::Null);
        assert_eq!(body["data"]["r1"]["nameWithOwner"], "vitejs/vite");
        let err = &body["errors"][0];
        assert_eq!(err["path"], json!(["r0"]));
        assert!(err.get("type").is_none(), "{err}");
        assert_something_went_wrong(err["message"].as_str().unwrap());
    }
    let third = c.graphql(TWO_REPOS, json!({})).await.json();
    assert_eq!(third["data"]["r0"]["nameWithOwner"], "ppy/osu");
    assert!(third.get("errors").is_none());
    assert_eq!(c.sim.counters().faults_by_kind["alias_timeout"], 2);
}

fn null_positions(list: &Value) -> Vec<usize> {
    list.as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_null())
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn null_nodes_leave_holes_with_not_found_errors_reproducibly() {
    let c = SimClient::start().await;
    let plan =
        json!([{"route": "graphql", "kind": "null_nodes", "rate": 0.2, "repos": ["ppy/osu"]}]);
    set_rules(&c, plan.clone()).await;
    let body = c.graphql(TWO_REPOS, json!({})).await.json();
    let issues = &body["data"]["r0"]["issues"];
    let holes = null_positions(&issues["nodes"]);
    assert!(!holes.is_empty());
    let edge_holes: Vec<usize> = issues["edges"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, e)| e["node"].is_null() && e["cursor"].is_string())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(edge_holes, holes, "nodes and edges agree");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2 * holes.len());
    for (i, hole) in holes.iter().enumerate() {
        let err = &errors[i];
        assert_eq!(err["type"], "NOT_FOUND");
        assert_eq!(err["path"], json!(["r0", "issues", "nodes", hole]));
        assert!(err["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not resolve to a node with the global id of 'I_kwDO"));
    }
    assert!(null_positions(&body["data"]["r1"]["issues"]["nodes"]).is_empty());
    let faults = c.sim.counters().faults_by_kind["null_nodes"];
    assert_eq!(faults, holes.len() as u64);

    set_rules(&c, plan).await;
    let again = c.graphql(TWO_REPOS, json!({})).await.json();
    assert_eq!(
        null_positions(&again["data"]["r0"]["issues"]["nodes"]),
        holes
    );
}

#[tokio::test]
async fn a_connection_can_claim_a_next_page_without_an_end_cursor() {
    let c = SimClient::start().await;
    set_rules(
        &c,
        json!([{"route": "graphql", "kind": "null_end_cursor", "repos": ["vitejs/vite"]}]),
    )
    .await;
    let body = c.graphql(TWO_REPOS, json!({})).await.json();
    assert_eq!(
        body["data"]["r1"]["issues"]["pageInfo"],
        json!({"hasNextPage": true, "endCursor": null})
    );
    assert_eq!(
        body["data"]["r1"]["issues"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert!(body["data"]["r0"]["issues"]["pageInfo"]["endCursor"].is_string());
    assert!(body.get("errors").is_none());
}

#[tokio::test]
async fn graphql_only_kinds_and_repo_selection_are_validated() {
    let c = SimClient::start().await;
    for rules in [
        json!([{"route": "rest", "kind": "alias_forbidden"}]),
        json!([{"route": "ai", "kind": "data_null"}]),
        json!([{"route": "graphql", "kind": "status_500", "repos": ["ppy/osu"]}]),
    ] {
        let r = set_rules(&c, rules.clone()).await;
        assert_eq!(r.status, 400, "{rules}");
    }
    // On "*" they act on GraphQL only.
    set_rules(&c, json!([{"route": "*", "kind": "data_null"}])).await;
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    assert_eq!(
        c.graphql(TWO_REPOS, json!({})).await.json()["data"],
        Value::Null
    );
}
