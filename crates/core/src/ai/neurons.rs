//! What an AI call costs, in neurons: the unit of Workers AI's daily free
//! allocation and of its billing.

use serde_json::Value;

/// Neurons free per account per day (resets at 00:00 UTC).
pub const FREE_NEURONS_PER_DAY: u64 = 10_000;

/// A text-generation model's published neuron rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronRate {
    pub model: &'static str,
    /// Neurons per million input (prompt) tokens.
    pub input_per_million: f64,
    /// Neurons per million output (completion) tokens.
    pub output_per_million: f64,
}

const fn rate(model: &'static str, input: f64, output: f64) -> NeuronRate {
    NeuronRate {
        model,
        input_per_million: input,
        output_per_million: output,
    }
}

/// Per-model rates from the "LLM model pricing" table of Cloudflare's
/// Workers AI pricing page, developers.cloudflare.com/workers-ai/platform/pricing/
/// (per-model pricing published 2025-02-20; figures as listed there in 2025
/// and unchanged in the July 2026 page, which adds granite-4.0-h-micro; the
/// page bills $0.011 per 1,000 neurons, so e.g. 25,608 neurons ≈ $0.282).
/// The first entry, the priciest 8B, is the fallback for models not listed
/// here, so an unknown model is never under-charged against the cap.
pub const NEURON_RATES: &[NeuronRate] = &[
    rate("@cf/meta/llama-3.1-8b-instruct", 25_608.0, 75_147.0),
    rate("@cf/meta/llama-3.1-8b-instruct-fp8", 13_778.0, 26_128.0),
    rate("@cf/meta/llama-3.1-8b-instruct-fp8-fast", 4_119.0, 34_868.0),
    rate("@cf/meta/llama-3.1-8b-instruct-awq", 11_161.0, 24_215.0),
    rate("@cf/meta/llama-3.2-1b-instruct", 2_457.0, 18_252.0),
    rate("@cf/meta/llama-3.2-3b-instruct", 4_625.0, 30_475.0),
    rate("@cf/ibm-granite/granite-4.0-h-micro", 1_542.0, 10_158.0),
    rate("@cf/meta/llama-3.2-11b-vision-instruct", 4_410.0, 61_493.0),
    rate("@cf/meta/llama-3-8b-instruct", 25_608.0, 75_147.0),
    rate("@cf/meta/llama-3-8b-instruct-awq", 11_161.0, 24_215.0),
    rate(
        "@cf/meta/llama-3.1-70b-instruct-fp8-fast",
        26_668.0,
        204_805.0,
    ),
    rate(
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        26_668.0,
        204_805.0,
    ),
    rate("@cf/mistral/mistral-7b-instruct-v0.1", 10_000.0, 17_300.0),
    rate(
        "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        45_170.0,
        443_756.0,
    ),
    rate("@cf/meta/llama-2-7b-chat-fp16", 50_505.0, 606_061.0),
];

/// The rates for `model`; an unknown model is charged as
/// `@cf/meta/llama-3.1-8b-instruct` (full precision, the priciest 8B).
pub fn neuron_rate(model: &str) -> &'static NeuronRate {
    let model = model.trim();
    NEURON_RATES
        .iter()
        .find(|r| r.model == model)
        .unwrap_or(&NEURON_RATES[0])
}

/// Neurons one call spends: tokens times the model's per-million rates.
pub fn estimate_neurons(model: &str, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    let rate = neuron_rate(model);
    (prompt_tokens as f64 * rate.input_per_million
        + completion_tokens as f64 * rate.output_per_million)
        / 1_000_000.0
}

fn token_count(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// `(prompt_tokens, completion_tokens)` from a result's `usage`, when both
/// are there as non-negative whole numbers.
pub fn usage_tokens(result: &Value) -> Option<(u64, u64)> {
    let usage = result.get("usage")?;
    Some((
        token_count(usage.get("prompt_tokens"))?,
        token_count(usage.get("completion_tokens"))?,
    ))
}
