//! The warm-up world ([`contribot_core::warm_up`]) exported to JS, for the
//! stand-in bindings of a worker's start-up warm-up (`crates/edge/js/warm-up.mjs`).
//! Everything crosses as JSON text: one string each way per call.

use contribot_core::warm_up::{processing, World};
use serde_json::{json, Value};
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub struct WarmUpWorld(World);

#[wasm_bindgen]
impl WarmUpWorld {
    /// A world whose clock reads `now_ms`.
    #[wasm_bindgen(constructor)]
    pub fn new(now_ms: f64) -> WarmUpWorld {
        WarmUpWorld(World::new(now_ms as i64))
    }

    /// `[[sql, params], …]` in, `[[row, …], …]` out (one list per statement).
    pub fn d1(&mut self, batch_json: &str) -> String {
        let batch: Vec<(String, Vec<Value>)> = serde_json::from_str(batch_json).unwrap_or_default();
        Value::from(self.0.d1(&batch)).to_string()
    }

    /// Upstream's answer to a GET (`body` absent) or a POST: `{status, body}`.
    pub fn http(&self, url: &str, body: Option<String>) -> String {
        let (status, body) = self.0.http(url, body.as_deref());
        json!({"status": status, "body": body}).to_string()
    }

    /// Workers AI's answer to `env.AI.run(model, input)`, input as JSON.
    pub fn ai(&self, input_json: &str) -> String {
        let input: Value = serde_json::from_str(input_json).unwrap_or_default();
        processing::ai(&input).to_string()
    }

    /// The processor's warm-up batch: the queue bodies, `[body, …]`.
    pub fn processing_messages(&self) -> String {
        serde_json::to_string(&processing::messages()).unwrap_or_default()
    }
}
