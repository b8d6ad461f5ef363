//! Seeded fault injection: reproducible sequences and each kind's shape.

mod sim_client;

use std::time::{Duration, Instant};

use serde_json::json;
use sim_client::SimClient;

async fn statuses(c: &SimClient, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.rest("/repos/ppy/osu").await.status);
    }
    out
}

#[tokio::test]
async fn the_same_seed_and_sequence_produce_the_same_faults() {
    let c = SimClient::start().await;
    let plan = json!({"seed": 7, "rules": [
        {"route": "rest", "kind": "status_500", "rate": 0.2},
        {"route": "rest", "kind": "status_502", "rate": 0.1}
    ]});
    assert_eq!(c.post("/_sim/faults", plan.clone()).await.status, 200);
    let first = statuses(&c, 60).await;
    assert_eq!(c.post("/_sim/faults", plan).await.status, 200);
    let second = statuses(&c, 60).await;
    assert_eq!(first, second);
    assert!(first.contains(&500) && first.contains(&502) && first.contains(&200));

    c.post(
        "/_sim/faults",
        json!({"seed": 8, "rules": [{"route": "rest", "kind": "status_500", "rate": 0.2}]}),
    )
    .await;
    assert_ne!(statuses(&c, 60).await, first);

    let injected: u64 = c.sim.counters().faults_by_kind.values().sum();
    assert!(injected > 0);
    assert_eq!(c.delete("/_sim/faults").await.status, 200);
    assert!(statuses(&c, 10).await.iter().all(|s| *s == 200));
}

#[tokio::test]
async fn rate_limit_faults_carry_retry_after_in_each_upstreams_shape() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [
            {"route": "graphql", "kind": "secondary_rate_limit_403", "retry_after_secs": 7},
            {"route": "ai", "kind": "rate_limit_429", "retry_after_secs": 3}
        ]}),
    )
    .await;
    let gh = c.graphql("{ rateLimit { cost } }", json!({})).await;
    assert_eq!(gh.status, 403);
    assert_eq!(gh.header("retry-after").as_deref(), Some("7"));
    assert_eq!(
        gh.header("x-ratelimit-resource").as_deref(),
        Some("graphql")
    );
    assert_eq!(gh.header_u64("x-ratelimit-used"), 0);
    assert!(gh.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("You have exceeded a secondary rate limit"));
    let ai = c
        .post_with(
            "/client/v4/accounts/a/ai/run/@cf/meta/llama-3.1-8b-instruct",
            json!({"prompt": "hi"}),
            &[("authorization", "Bearer k")],
        )
        .await;
    assert_eq!(ai.status, 429);
    assert_eq!(ai.header("retry-after").as_deref(), Some("3"));
    assert_eq!(ai.json()["errors"][0]["code"], 3040);
}

#[tokio::test]
async fn truncated_json_keeps_the_content_type_but_cuts_the_body() {
    let c = SimClient::start().await;
    let whole = c.rest("/repos/ppy/osu").await.text;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "rest", "kind": "truncated_json", "rate": 1.0}]}),
    )
    .await;
    let cut = c.rest("/repos/ppy/osu").await;
    assert_eq!(cut.status, 200);
    assert!(cut
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(cut.text.len(), whole.len() / 2);
    assert!(serde_json::from_str::<serde_json::Value>(&cut.text).is_err());
}

#[tokio::test]
async fn connection_reset_drops_the_connection_without_a_response() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "raw", "kind": "connection_reset", "max_count": 1}]}),
    )
    .await;
    let err = c
        .http
        .get(c.url("/raw/MunGell/awesome-for-beginners/main/data.json"))
        .send()
        .await;
    assert!(err.is_err());
    let ok = c
        .http
        .get(c.url("/raw/MunGell/awesome-for-beginners/main/data.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(c.sim.counters().faults_by_kind["connection_reset"], 1);
}

#[tokio::test]
async fn latency_delays_but_answers() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "*", "kind": "latency", "latency_ms": 150}]}),
    )
    .await;
    let t = Instant::now();
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_bad_rate_is_rejected() {
    let c = SimClient::start().await;
    let r = c
        .post(
            "/_sim/faults",
            json!({"seed": 1, "rules": [{"route": "rest", "kind": "status_500", "rate": 2.0}]}),
        )
        .await;
    assert_eq!(r.status, 400);
}
