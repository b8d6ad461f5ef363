//! The Workers AI binding behind contribot-core's `AiBinding` seam.

use contribot_core::process::AiBinding;
use js_sys::{Function, Promise, Reflect, JSON};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

/// `env.AI`, called through its JS `run(model, inputs)`. Inputs and results
/// cross as JSON so nested objects stay plain objects.
pub struct WorkerAi {
    binding: JsValue,
}

impl WorkerAi {
    pub fn from_env(env: &Env, name: &str) -> Option<Self> {
        let binding = Reflect::get(env, &JsValue::from_str(name)).ok()?;
        (!binding.is_undefined() && !binding.is_null()).then_some(WorkerAi { binding })
    }
}

fn js_error_text(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return format!(
            "{}: {}",
            String::from(err.name()),
            String::from(err.message())
        );
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

impl AiBinding for WorkerAi {
    async fn run(&mut self, model: &str, input: &Value) -> Result<Value, String> {
        let inputs = JSON::parse(&input.to_string()).map_err(|e| js_error_text(&e))?;
        let run: Function = Reflect::get(&self.binding, &JsValue::from_str("run"))
            .map_err(|e| js_error_text(&e))?
            .dyn_into()
            .map_err(|_| "AI binding has no run()".to_string())?;
        let promise: Promise = run
            .call2(&self.binding, &JsValue::from_str(model), &inputs)
            .map_err(|e| js_error_text(&e))?
            .dyn_into()
            .map_err(|_| "AI run() did not return a promise".to_string())?;
        let out = JsFuture::from(promise)
            .await
            .map_err(|e| js_error_text(&e))?;
        let text = JSON::stringify(&out)
            .map_err(|e| js_error_text(&e))?
            .as_string()
            .unwrap_or_default();
        serde_json::from_str(&text).map_err(|e| format!("AI result is not JSON: {e}"))
    }
}
