//! The Workers AI stand-in: envelope, input contract, JSON-schema synthesis,
//! faults and the binding route.

mod sim_client;

use serde_json::{json, Value};
use sim_client::SimClient;

const MODEL: &str = "@cf/meta/llama-3.1-8b-instruct";

async fn run(c: &SimClient, body: Value) -> sim_client::Reply {
    c.post_with(
        &format!("/client/v4/accounts/acct/ai/run/{MODEL}"),
        body,
        &[("authorization", "Bearer cf-token")],
    )
    .await
}

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["intro", "difficulty", "first_steps", "skills"],
        "properties": {
            "intro": {"type": "string", "minLength": 30, "maxLength": 200},
            "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
            "first_steps": {"type": "array", "items": {"type": "string", "maxLength": 120}, "minItems": 2, "maxItems": 4},
            "skills": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
            "kind": {"type": "string", "enum": ["bug", "docs", "feature"]}
        }
    })
}

fn ask(issue: &str) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "You explain GitHub issues to newcomers."},
            {"role": "user", "content": issue}
        ],
        "max_tokens": 512,
        "temperature": 0.2,
        "response_format": {"type": "json_schema", "json_schema": schema()}
    })
}

#[tokio::test]
async fn a_plain_prompt_gets_a_cloudflare_envelope_with_usage() {
    let c = SimClient::start().await;
    let r = run(
        &c,
        json!({"prompt": "Explain the flaky websocket reconnect test"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["messages"], json!([]));
    let text = body["result"]["response"].as_str().unwrap();
    let sentences = text.matches('.').count();
    assert!((2..=4).contains(&sentences), "{text}");
    let usage = &body["result"]["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
}

#[tokio::test]
async fn invalid_input_is_a_400_naming_the_field() {
    let c = SimClient::start().await;
    for (body, field) in [
        (json!({"prompt": "x", "messages": []}), "oneOf"),
        (json!({"messages": []}), "/messages"),
        (json!({"messages": [{"role": "user"}]}), "content"),
        (json!({"prompt": "x", "max_tokens": 5000}), "/max_tokens"),
        (json!({"prompt": "x", "temperature": "hot"}), "/temperature"),
        (
            json!({"prompt": "x", "response_format": {"type": "yaml"}}),
            "/response_format/type",
        ),
    ] {
        let r = run(&c, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        let j = r.json();
        assert_eq!(j["success"], false);
        assert_eq!(j["errors"][0]["code"], 5006);
        let msg = j["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{msg} should name {field}");
    }
    let unauth = c
        .post(
            &format!("/client/v4/accounts/acct/ai/run/{MODEL}"),
            json!({"prompt": "x"}),
        )
        .await;
    assert_eq!(unauth.status, 401);
    assert_eq!(unauth.json()["success"], false);
}

#[tokio::test]
async fn json_schema_output_satisfies_the_schema_and_follows_the_input() {
    let c = SimClient::start().await;
    let a = run(&c, ask("Tokenizer crashes on empty markdown headings"))
        .await
        .json();
    let out = &a["result"]["response"];
    let intro = out["intro"].as_str().unwrap();
    assert!((30..=200).contains(&intro.chars().count()), "{intro}");
    let d = out["difficulty"].as_i64().unwrap();
    assert!((1..=5).contains(&d));
    let steps = out["first_steps"].as_array().unwrap();
    assert!((2..=4).contains(&steps.len()));
    assert!(steps
        .iter()
        .all(|s| s.as_str().unwrap().chars().count() <= 120));
    assert!(["bug", "docs", "feature"].contains(&out["kind"].as_str().unwrap()));
    let again = run(&c, ask("Tokenizer crashes on empty markdown headings"))
        .await
        .json();
    assert_eq!(a, again);
    let other = run(&c, ask("Document the plugin loader configuration options"))
        .await
        .json();
    assert_ne!(a["result"]["response"], other["result"]["response"]);
    let words = out.to_string().to_lowercase();
    assert!(["tokenizer", "crashes", "empty", "markdown", "headings"]
        .iter()
        .any(|w| words.contains(w)));
}

#[tokio::test]
async fn json_object_without_schema_gives_the_brief_shape() {
    let c = SimClient::start().await;
    let r = run(
        &c,
        json!({"prompt": "Add dark mode to settings", "response_format": {"type": "json_object"}}),
    )
    .await;
    let out = &r.json()["result"]["response"];
    for k in ["intro", "difficulty", "first_steps", "skills"] {
        assert!(out.get(k).is_some(), "missing {k}");
    }
}

#[tokio::test]
async fn output_faults_break_json_drop_fields_and_push_ranges() {
    let c = SimClient::start().await;
    let set =
        |kind: &str| json!({"seed": 3, "rules": [{"route": "ai", "kind": kind, "rate": 1.0}]});
    c.post("/_sim/faults", set("ai_malformed_json")).await;
    let broken = run(&c, ask("Fix the parser")).await.json();
    let text = broken["result"]["response"].as_str().expect("a string");
    assert!(serde_json::from_str::<Value>(text).is_err());

    c.post("/_sim/faults", set("ai_missing_fields")).await;
    let missing = run(&c, ask("Fix the parser")).await.json();
    let obj = missing["result"]["response"].as_object().unwrap();
    assert!(["intro", "difficulty", "first_steps", "skills"]
        .iter()
        .any(|k| !obj.contains_key(*k)));

    c.post("/_sim/faults", set("ai_out_of_range")).await;
    let out_of_range = run(&c, ask("Fix the parser")).await.json();
    assert_eq!(out_of_range["result"]["response"]["difficulty"], 9);

    let counters = c.sim.counters();
    let per_model = &counters.ai_calls[MODEL];
    assert_eq!(per_model["fault:ai_malformed_json"], 1);
    assert_eq!(counters.faults_by_kind["ai_out_of_range"], 1);
}

#[tokio::test]
async fn quota_mode_answers_4006_on_both_routes() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "*", "kind": "ai_quota_exhausted"}]}),
    )
    .await;
    let r = run(&c, json!({"prompt": "hi"})).await;
    assert_eq!(r.status, 429);
    let j = r.json();
    assert_eq!(j["errors"][0]["code"], 4006);
    assert!(j["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("you have used up your daily free allocation of 10,000 neurons"));
    let b = c
        .post(
            &format!("/_sim/ai-binding/{MODEL}"),
            json!({"prompt": "hi"}),
        )
        .await;
    assert_eq!(b.status, 429);
    assert_eq!(b.json()["error"]["code"], 4006);
    // GitHub routes are untouched by AI-only kinds.
    assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
}

#[tokio::test]
async fn the_binding_route_returns_the_bare_result_or_an_error_object() {
    let c = SimClient::start().await;
    let ok = c
        .post(&format!("/_sim/ai-binding/{MODEL}"), ask("Fix the parser"))
        .await;
    assert_eq!(ok.status, 200);
    let rest = run(&c, ask("Fix the parser")).await.json();
    assert_eq!(ok.json(), rest["result"]);
    let bad = c
        .post(&format!("/_sim/ai-binding/{MODEL}"), json!({"prompt": 3}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], 5006);
    let counters = c.sim.counters();
    assert_eq!(counters.by_route["ai_binding"], 2);
    assert_eq!(counters.ai_calls_total, 3);
}

#[tokio::test]
async fn transient_ai_failures_answer_with_cloudflares_codes_on_both_routes() {
    let c = SimClient::start().await;
    for (kind, status, code, rest_message, binding_message) in [
        (
            "ai_capacity_exceeded",
            429,
            3040,
            "No more data centers to forward the request to",
            "Capacity temporarily exceeded, please try again.",
        ),
        (
            "ai_rate_limited",
            429,
            971,
            "Please wait and consider throttling your request speed",
            "Please wait and consider throttling your request speed",
        ),
        (
            "ai_timeout",
            408,
            3007,
            "Request timeout",
            "Request timeout",
        ),
    ] {
        c.post(
            "/_sim/faults",
            json!({"seed": 1, "rules": [{"route": "*", "kind": kind, "retry_after_secs": 4, "latency_ms": 10}]}),
        )
        .await;
        let rest = run(&c, json!({"prompt": "hi"})).await;
        assert_eq!(rest.status, status, "{kind}");
        assert_eq!(
            rest.json(),
            json!({"result": null, "success": false, "errors": [{"code": code, "message": rest_message}], "messages": []}),
            "{kind}"
        );
        let binding = c
            .post(
                &format!("/_sim/ai-binding/{MODEL}"),
                json!({"prompt": "hi"}),
            )
            .await;
        assert_eq!(binding.status, status, "{kind}");
        assert_eq!(
            binding.json(),
            json!({"error": {"code": code, "message": binding_message}}),
            "{kind}"
        );
        let retry = if status == 429 { Some("4") } else { None };
        assert_eq!(rest.header("retry-after").as_deref(), retry, "{kind}");
        assert_eq!(c.sim.counters().faults_by_kind[kind], 2);
        // GitHub routes are untouched by AI kinds.
        assert_eq!(c.rest("/repos/ppy/osu").await.status, 200);
    }
    let on_github = c
        .post(
            "/_sim/faults",
            json!({"seed": 1, "rules": [{"route": "graphql", "kind": "ai_timeout"}]}),
        )
        .await;
    assert_eq!(on_github.status, 400);
}
