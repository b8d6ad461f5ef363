//! GitHub's secondary rate limits, enforced: requests in flight per client
//! and points (requests) per rolling minute.

mod sim_client;

use contribot_sim::{SecondaryLimitConfig, SimConfig};
use serde_json::json;
use sim_client::SimClient;

const QUERY: &str = r#"{ repository(owner: "ppy", name: "osu") { name } }"#;

fn assert_secondary_403(r: &sim_client::Reply) {
    assert_eq!(r.status, 403, "{}", r.text);
    let body = r.json();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        "{body}"
    );
    assert_eq!(
        body["documentation_url"],
        "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
    );
}

#[tokio::test]
async fn github_limits_are_enforced_by_default() {
    let c = SimClient::start().await;
    let limits = c.get("/_sim/limits").await.json();
    assert_eq!(
        limits["secondary"],
        json!({"max_concurrent": 100, "graphql_points_per_minute": 2000,
               "rest_points_per_minute": 900, "window_secs": 60,
               "concurrency_retry_after_secs": 60})
    );
}

#[tokio::test]
async fn the_query_past_the_points_per_minute_gets_403_with_retry_after() {
    let c = SimClient::with(SimConfig {
        secondary_limits: SecondaryLimitConfig {
            graphql_points_per_minute: 3,
            ..SecondaryLimitConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);
    }
    let refused = c.graphql(QUERY, json!({})).await;
    assert_secondary_403(&refused);
    let wait = refused.header_u64("retry-after");
    assert!((1..=60).contains(&wait), "retry-after {wait}");
    // The primary window is reported, and not charged for the refusal.
    assert_eq!(refused.header_u64("x-ratelimit-used"), 3);
    assert_eq!(refused.header_u64("x-ratelimit-remaining"), 4997);
    // Points are per client, and REST has its own window.
    assert_eq!(c.graphql_as("other", QUERY, json!({})).await.status, 200);
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    let counters = c.sim.counters();
    assert_eq!(counters.secondary_limited["graphql_points"], 1);
    assert_eq!(counters.graphql_points_by_token[&c.token], 3);
}

#[tokio::test]
async fn the_request_past_the_concurrency_limit_is_refused_while_the_others_run() {
    let c = SimClient::start().await;
    let set = c
        .post("/_sim/limits", json!({"secondary": {"max_concurrent": 3}}))
        .await;
    assert_eq!(set.json()["secondary"]["max_concurrent"], 3);
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "rest", "kind": "latency", "latency_ms": 1500}]}),
    )
    .await;
    let path = "/repos/ppy/osu";
    let (a, b, d, e) = tokio::join!(c.rest(path), c.rest(path), c.rest(path), c.rest(path));
    let replies = [a, b, d, e];
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 403]);
    let refused = replies.iter().find(|r| r.status == 403).unwrap();
    assert_secondary_403(refused);
    assert_eq!(refused.header_u64("retry-after"), 60);
    // Once they have finished, requests are admitted again.
    c.delete("/_sim/faults").await;
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);
    assert_eq!(c.sim.counters().secondary_limited["concurrency"], 1);
}

#[tokio::test]
async fn reset_restores_the_start_up_limits() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/limits",
        json!({"secondary": {"graphql_points_per_minute": 1}}),
    )
    .await;
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 403);
    c.post("/_sim/reset", json!({})).await;
    assert_eq!(c.graphql(QUERY, json!({})).await.status, 200);
    let bad = c
        .post("/_sim/limits", json!({"secondary": {"max_inflight": 1}}))
        .await;
    assert_eq!(bad.status, 400);
}
