//! Workers AI's daily neuron allocation, enforced: token counts follow the
//! text, neurons follow Cloudflare's per-model rates, a spent day answers
//! 4006 and the next UTC day resumes.

mod sim_client;

use serde_json::{json, Value};
use sim_client::SimClient;

const DEFAULT: &str = "@cf/meta/llama-3.1-8b-instruct";
const FAST: &str = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";

async fn run(c: &SimClient, model: &str, body: Value) -> sim_client::Reply {
    c.post_with(
        &format!("/client/v4/accounts/acct/ai/run/{model}"),
        body,
        &[("authorization", "Bearer cf-token")],
    )
    .await
}

fn ask(system: &str, user: &str) -> Value {
    json!({"messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": user}
    ], "response_format": {"type": "json_object"}})
}

fn usage(reply: &sim_client::Reply) -> (u64, u64) {
    let u = &reply.json()["result"]["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn tokens_follow_the_text_and_neurons_follow_the_models_published_rates() {
    let c = SimClient::start().await;
    let system = "You explain GitHub issues to newcomers in JSON.";
    let long = "The tokenizer crashes on empty markdown headings. ".repeat(20);
    let short = "Tokenizer crashes on empty headings.";
    let a = run(&c, DEFAULT, ask(system, &long)).await;
    let b = run(&c, DEFAULT, ask(system, short)).await;
    let (pa, qa) = usage(&a);
    let (pb, _) = usage(&b);
    let chars = |s: &str| s.chars().count() as u64;
    assert_eq!(pa, (chars(system) + chars(&long)).div_ceil(4));
    assert_eq!(pb, (chars(system) + chars(short)).div_ceil(4));
    let output = a.json()["result"]["response"].to_string();
    assert_eq!(qa, chars(&output).div_ceil(4));

    let counters = c.sim.counters();
    let spent = counters.ai_neurons_by_model[DEFAULT];
    let qb = usage(&b).1;
    let expected = ((pa + pb) as f64 * 25_608.0 + (qa + qb) as f64 * 75_147.0) / 1e6;
    assert!(close(spent, expected), "{spent} vs {expected}");
    assert!(close(counters.ai_neurons_total, expected));

    // The same call on the fp8-fast variant costs its own, lower, rates.
    let fast = run(&c, FAST, ask(system, short)).await;
    let (pf, qf) = usage(&fast);
    let fast_spent = c.sim.counters().ai_neurons_by_model[FAST];
    assert!(close(
        fast_spent,
        (pf as f64 * 4_119.0 + qf as f64 * 34_868.0) / 1e6
    ));
    let quota = c.get("/_sim/ai/quota").await.json();
    assert!(close(
        quota["used"].as_f64().unwrap(),
        expected + fast_spent
    ));
    let day = quota["day"].as_str().unwrap().to_string();
    assert!(close(
        c.sim.counters().ai_neurons_by_day[&day],
        expected + fast_spent
    ));
}

#[tokio::test]
async fn a_spent_day_answers_4006_on_both_routes_until_the_next_utc_day() {
    let c = SimClient::start().await;
    let limits = c.get("/_sim/limits").await.json();
    assert_eq!(limits["ai"], json!({"daily_neurons": 10000.0}));
    let set = c
        .post("/_sim/ai/quota", json!({"used": 9_999.99}))
        .await
        .json();
    let today = set["day"].as_str().unwrap().to_string();
    assert!((set["remaining"].as_f64().unwrap() - 0.01).abs() < 1e-6);

    // A call that starts under the allocation runs and may end over it.
    assert_eq!(run(&c, DEFAULT, json!({"prompt": "hi"})).await.status, 200);
    let refused = run(&c, DEFAULT, json!({"prompt": "hi"})).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.json()["errors"][0],
        json!({"code": 4006, "message": "you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage."})
    );
    let binding = c
        .post(
            &format!("/_sim/ai-binding/{DEFAULT}"),
            json!({"prompt": "hi"}),
        )
        .await;
    assert_eq!(binding.status, 429);
    assert_eq!(binding.json()["error"]["code"], 4006);
    let counters = c.sim.counters();
    assert_eq!(counters.ai_calls[DEFAULT]["quota_exhausted"], 2);
    assert_eq!(counters.ai_calls[DEFAULT]["ok"], 1);
    assert!(!counters.faults_by_kind.contains_key("ai_quota_exhausted"));
    let spent_today = counters.ai_neurons_by_day[&today];

    let next = c
        .post("/_sim/ai/quota", json!({"advance_days": 1}))
        .await
        .json();
    assert_ne!(next["day"], today);
    assert_eq!(next["used"], 0.0);
    assert_eq!(next["resets_at"].as_str().unwrap()[11..], *"00:00:00Z");
    assert_eq!(run(&c, DEFAULT, json!({"prompt": "hi"})).await.status, 200);
    let counters = c.sim.counters();
    assert_eq!(counters.ai_neurons_by_day.len(), 2);
    assert!(close(counters.ai_neurons_by_day[&today], spent_today));
    let by_day = c.get("/_sim/ai/quota").await.json()["by_day"].clone();
    assert!((by_day[&today].as_f64().unwrap() - 9_999.99 - spent_today).abs() < 1e-6);
}

#[tokio::test]
async fn the_allocation_can_be_widened_or_turned_off_and_reset_restores_it() {
    let c = SimClient::start().await;
    c.post("/_sim/limits", json!({"ai": {"daily_neurons": 0}}))
        .await;
    c.post("/_sim/ai/quota", json!({"used": 50_000})).await;
    assert_eq!(run(&c, DEFAULT, json!({"prompt": "hi"})).await.status, 200);
    let view = c.get("/_sim/ai/quota").await.json();
    assert_eq!(view["remaining"], Value::Null);

    c.post("/_sim/reset", json!({})).await;
    let view = c.get("/_sim/ai/quota").await.json();
    assert_eq!(view["daily_neurons"], 10_000.0);
    assert_eq!(view["used"], 0.0);
    assert_eq!(view["clock_offset_secs"], 0);
    let bad = c.post("/_sim/ai/quota", json!({"days": 1})).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn injected_quota_faults_and_failed_calls_bill_no_neurons() {
    let c = SimClient::start().await;
    c.post(
        "/_sim/faults",
        json!({"seed": 1, "rules": [{"route": "ai", "kind": "ai_quota_exhausted", "max_count": 1}]}),
    )
    .await;
    assert_eq!(run(&c, DEFAULT, json!({"prompt": "hi"})).await.status, 429);
    assert_eq!(run(&c, DEFAULT, json!({"prompt": 5})).await.status, 400);
    let counters = c.sim.counters();
    assert_eq!(counters.faults_by_kind["ai_quota_exhausted"], 1);
    assert_eq!(counters.ai_neurons_total, 0.0);
    assert_eq!(c.get("/_sim/ai/quota").await.json()["used"], 0.0);
}
