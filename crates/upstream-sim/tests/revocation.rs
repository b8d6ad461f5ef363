//! A token revoked mid-run: GitHub's 401 `Bad credentials` on every route.

mod sim_client;

use serde_json::json;
use sim_client::SimClient;

const QUERY: &str = r#"{ repository(owner: "ppy", name: "osu") { name } }"#;

#[tokio::test]
async fn a_token_revoked_after_two_requests_gets_bad_credentials_on_every_github_route() {
    let c = SimClient::start().await;
    let r = c
        .post(
            "/_sim/tokens/revoke",
            json!({"token": c.token, "after_requests": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["tokens"]["pending"][&c.token], 2);
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);

    let gql = c.graphql(QUERY, json!({})).await;
    assert_eq!(gql.status, 401);
    assert_eq!(
        gql.json(),
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql"})
    );
    assert_eq!(gql.header_u64("x-ratelimit-limit"), 0);
    assert_eq!(
        gql.header("x-ratelimit-resource").as_deref(),
        Some("graphql")
    );
    for path in [
        "/repos/ppy/osu",
        "/repos/ppy/osu/issues",
        "/repositories/100000001",
        "/rate_limit",
    ] {
        let rest = c.rest(path).await;
        assert_eq!(rest.status, 401, "{path}");
        assert_eq!(
            rest.json(),
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
            "{path}"
        );
    }
    // Other tokens, and the AI routes, are unaffected.
    assert_eq!(c.graphql_as("other", QUERY, json!({})).await.status, 200);
    let ai = c
        .post_with(
            "/client/v4/accounts/a/ai/run/@cf/meta/llama-3.2-1b-instruct",
            json!({"prompt": "hi"}),
            &[("authorization", &format!("Bearer {}", c.token))],
        )
        .await;
    assert_eq!(ai.status, 200);
    assert_eq!(c.sim.counters().by_status["401"], 5);
    assert_eq!(c.sim.counters().graphql_points_by_token[&c.token], 1);
}

#[tokio::test]
async fn a_token_revoked_now_fails_at_once_and_restore_or_reset_brings_it_back() {
    let c = SimClient::start().await;
    c.post("/_sim/tokens/revoke", json!({"token": c.token}))
        .await;
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 401);
    let board = c.get("/_sim/tokens").await.json();
    assert_eq!(board, json!({"revoked": [c.token], "pending": {}}));
    c.post("/_sim/tokens/restore", json!({"token": c.token}))
        .await;
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);

    c.post("/_sim/tokens/revoke", json!({"token": c.token}))
        .await;
    c.post("/_sim/reset", json!({})).await;
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    let empty = c.post("/_sim/tokens/revoke", json!({"token": " "})).await;
    assert_eq!(empty.status, 400);
}
