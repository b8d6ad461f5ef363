//! Workers AI's daily neuron allocation, enforced: what each call costs in
//! neurons, from Cloudflare's published per-model rates, and a ledger per
//! UTC day on a clock tests can move.
//!
//! Sources:
//! - Free allocation: "10,000 Neurons per day", "All limits reset daily at
//!   00:00 UTC", billed at "$0.011 / 1,000 Neurons" — Workers AI pricing,
//!   developers.cloudflare.com/workers-ai/platform/pricing/.
//! - Per-model rates in neurons per million tokens: the "LLM model pricing"
//!   table of that page (cloudflare-docs
//!   src/content/docs/workers-ai/platform/pricing.mdx).
//! - `@cf/ibm-granite/granite-4.0-h-micro` is not in that table; its model
//!   catalog entry (cloudflare-docs
//!   src/content/workers-ai-models/granite-4.0-h-micro.json) prices it at
//!   $0.017 per M input and $0.11 per M output tokens, which at $0.011 per
//!   1,000 neurons is 1,545 and 10,000 neurons per M.
//! - The error once the allocation is spent: HTTP 429, code 4006, "you have
//!   used up your daily free allocation of 10,000 neurons, please upgrade to
//!   Cloudflare's Workers Paid plan if you would like to continue usage." —
//!   as the platform answers (reported verbatim by users; the docs' error
//!   table lists the same text as code 3036 "Account limited").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::iso8601;
use crate::ratelimit::wall_clock_secs;

const DAY_SECS: i64 = 86_400;

/// Neurons per million input and output tokens for one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NeuronRate {
    pub model: &'static str,
    pub input_per_million: f64,
    pub output_per_million: f64,
}

const fn rate(model: &'static str, input: f64, output: f64) -> NeuronRate {
    NeuronRate {
        model,
        input_per_million: input,
        output_per_million: output,
    }
}

/// Cloudflare's published rates (see the module docs). The first entry is
/// also the rate of models not listed here.
pub(crate) const RATES: &[NeuronRate] = &[
    rate("@cf/meta/llama-3.1-8b-instruct", 25_608.0, 75_147.0),
    rate("@cf/meta/llama-3.1-8b-instruct-fp8-fast", 4_119.0, 34_868.0),
    rate("@cf/meta/llama-3.1-8b-instruct-fp8", 13_778.0, 26_128.0),
    rate("@cf/meta/llama-3.1-8b-instruct-awq", 11_161.0, 24_215.0),
    rate("@cf/meta/llama-3.2-3b-instruct", 4_625.0, 30_475.0),
    rate("@cf/meta/llama-3.2-1b-instruct", 2_457.0, 18_252.0),
    rate("@cf/ibm-granite/granite-4.0-h-micro", 1_545.0, 10_000.0),
    rate("@cf/meta/llama-3.2-11b-vision-instruct", 4_410.0, 61_493.0),
    rate(
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        26_668.0,
        204_805.0,
    ),
    rate("@cf/mistral/mistral-7b-instruct-v0.1", 10_000.0, 17_300.0),
];

pub(crate) fn rate_of(model: &str) -> &'static NeuronRate {
    RATES.iter().find(|r| r.model == model).unwrap_or(&RATES[0])
}

/// Neurons a call spends for its token usage.
pub(crate) fn neurons(model: &str, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    let r = rate_of(model);
    (prompt_tokens as f64 * r.input_per_million + completion_tokens as f64 * r.output_per_million)
        / 1_000_000.0
}

fn default_daily() -> f64 {
    10_000.0
}

/// The allocation; 0 turns the quota off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiQuotaConfig {
    #[serde(default = "default_daily")]
    pub daily_neurons: f64,
}

impl Default for AiQuotaConfig {
    fn default() -> Self {
        AiQuotaConfig {
            daily_neurons: default_daily(),
        }
    }
}

/// `POST /_sim/ai/quota`: move the clock, set the allocation or today's use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiQuotaChange {
    /// Moves the simulated clock forward this many days (onto the next UTC day with 1).
    pub advance_days: Option<i64>,
    /// Sets the simulated clock's offset from the wall clock, in seconds.
    pub clock_offset_secs: Option<i64>,
    pub daily_neurons: Option<f64>,
    /// Sets the neurons already spent on the (new) current day.
    pub used: Option<f64>,
}

/// What `GET /_sim/ai/quota` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiQuotaView {
    /// The current UTC day on the simulated clock, `YYYY-MM-DD`.
    pub day: String,
    pub now: String,
    pub resets_at: String,
    pub clock_offset_secs: i64,
    pub daily_neurons: f64,
    pub used: f64,
    /// `null` when the quota is off.
    pub remaining: Option<f64>,
    pub by_day: BTreeMap<String, f64>,
}

/// Neurons spent per UTC day on the simulated clock.
#[derive(Debug, Default)]
pub(crate) struct NeuronLedger {
    config: AiQuotaConfig,
    clock_offset_secs: i64,
    days: BTreeMap<i64, f64>,
}

fn day_name(day: i64) -> String {
    iso8601(day * DAY_SECS)[..10].to_string()
}

impl NeuronLedger {
    pub(crate) fn new(config: AiQuotaConfig) -> Self {
        NeuronLedger {
            config,
            ..NeuronLedger::default()
        }
    }

    pub(crate) fn config(&self) -> AiQuotaConfig {
        self.config
    }

    pub(crate) fn set_daily(&mut self, daily_neurons: f64) {
        self.config.daily_neurons = daily_neurons.max(0.0);
    }

    fn now(&self) -> i64 {
        wall_clock_secs() + self.clock_offset_secs
    }

    /// The current UTC day, as a day number and `YYYY-MM-DD`.
    pub(crate) fn today(&self) -> (i64, String) {
        let day = self.now().div_euclid(DAY_SECS);
        (day, day_name(day))
    }

    /// False once today's allocation is spent (a call that starts under it
    /// may end over it, as calls are billed after they run).
    pub(crate) fn allows_a_call(&self) -> bool {
        let daily = self.config.daily_neurons;
        let (day, _) = self.today();
        daily <= 0.0 || self.days.get(&day).copied().unwrap_or(0.0) < daily
    }

    /// Books `neurons` on today; returns the day's name.
    pub(crate) fn charge(&mut self, neurons: f64) -> String {
        let (day, name) = self.today();
        *self.days.entry(day).or_default() += neurons;
        name
    }

    pub(crate) fn apply(&mut self, change: &AiQuotaChange) {
        if let Some(offset) = change.clock_offset_secs {
            self.clock_offset_secs = offset;
        }
        if let Some(days) = change.advance_days {
            self.clock_offset_secs += days * DAY_SECS;
        }
        if let Some(daily) = change.daily_neurons {
            self.set_daily(daily);
        }
        if let Some(used) = change.used {
            let (day, _) = self.today();
            self.days.insert(day, used.max(0.0));
        }
    }

    pub(crate) fn view(&self) -> AiQuotaView {
        let (day, name) = self.today();
        let used = self.days.get(&day).copied().unwrap_or(0.0);
        let daily = self.config.daily_neurons;
        AiQuotaView {
            day: name,
            now: iso8601(self.now()),
            resets_at: iso8601((day + 1) * DAY_SECS),
            clock_offset_secs: self.clock_offset_secs,
            daily_neurons: daily,
            used,
            remaining: (daily > 0.0).then(|| (daily - used).max(0.0)),
            by_day: self.days.iter().map(|(d, n)| (day_name(*d), *n)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neurons_follow_the_published_rates() {
        // 1,000 prompt and 200 completion tokens on the 8B default:
        // 1,000 × 25,608 / 1M + 200 × 75,147 / 1M = 25.608 + 15.0294.
        let n = neurons("@cf/meta/llama-3.1-8b-instruct", 1_000, 200);
        assert!((n - 40.6374).abs() < 1e-9, "{n}");
        let fast = neurons("@cf/meta/llama-3.1-8b-instruct-fp8-fast", 1_000, 200);
        assert!((fast - (4.119 + 6.9736)).abs() < 1e-9, "{fast}");
        let granite = neurons("@cf/ibm-granite/granite-4.0-h-micro", 1_000, 200);
        assert!((granite - (1.545 + 2.0)).abs() < 1e-9, "{granite}");
        assert_eq!(neurons("@cf/unknown/model", 1_000, 200), n);
    }

    #[test]
    fn the_day_past_its_allocation_refuses_and_the_next_day_allows() {
        let mut l = NeuronLedger::new(AiQuotaConfig {
            daily_neurons: 100.0,
        });
        assert!(l.allows_a_call());
        l.charge(99.0);
        assert!(l.allows_a_call());
        l.charge(2.0);
        assert!(!l.allows_a_call());
        let before = l.today().0;
        l.apply(&AiQuotaChange {
            advance_days: Some(1),
            ..AiQuotaChange::default()
        });
        assert_eq!(l.today().0, before + 1);
        assert!(l.allows_a_call());
        assert_eq!(l.view().by_day.len(), 1);
    }
}
