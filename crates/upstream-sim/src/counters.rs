//! Traffic counters the control API reports: requests by route, status,
//! token and invocation, GraphQL points, AI calls and injected faults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-invocation tallies (clients send `x-contribot-invocation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationCounters {
    pub requests: u64,
    pub graphql_points: u64,
}

/// A snapshot of every counter. Control routes (`/_sim/…`) are not counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub requests_total: u64,
    /// `graphql`, `rest:/repos/{owner}/{repo}/issues`, `raw`, `ai`, `ai_binding`, …
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_token: BTreeMap<String, u64>,
    pub by_invocation: BTreeMap<String, InvocationCounters>,
    pub graphql_points_total: u64,
    pub graphql_points_by_token: BTreeMap<String, u64>,
    pub ai_calls_total: u64,
    /// model → outcome (`ok`, `invalid_input`, `unauthorized`, `fault:<kind>`) → calls.
    pub ai_calls: BTreeMap<String, BTreeMap<String, u64>>,
    pub faults_by_kind: BTreeMap<String, u64>,
    /// Requests a secondary limit refused: `concurrency`, `graphql_points`, `rest_points`.
    #[serde(default)]
    pub secondary_limited: BTreeMap<String, u64>,
    /// Neurons the AI calls spent (billed calls only), in all, per UTC day
    /// of the simulated clock and per model.
    #[serde(default)]
    pub ai_neurons_total: f64,
    #[serde(default)]
    pub ai_neurons_by_day: BTreeMap<String, f64>,
    #[serde(default)]
    pub ai_neurons_by_model: BTreeMap<String, f64>,
}

/// What the front door learned about one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestRecord {
    pub route: String,
    pub status: u16,
    pub token: Option<String>,
    pub invocation: Option<String>,
    pub graphql_points: u32,
    pub fault: Option<&'static str>,
    pub ai_call: Option<(String, String)>,
    /// (day, neurons) a billed AI call spent.
    pub ai_neurons: Option<(String, f64)>,
    pub secondary_limit: Option<&'static str>,
    /// GraphQL unit faults injected into the answer (one per unit).
    pub unit_faults: Vec<&'static str>,
}

impl Counters {
    pub(crate) fn record(&mut self, r: &RequestRecord) {
        self.requests_total += 1;
        *self.by_route.entry(r.route.clone()).or_default() += 1;
        let status = match r.status {
            0 => "connection_reset".to_string(),
            s => s.to_string(),
        };
        *self.by_status.entry(status).or_default() += 1;
        if let Some(t) = &r.token {
            *self.by_token.entry(t.clone()).or_default() += 1;
        }
        if let Some(inv) = &r.invocation {
            let c = self.by_invocation.entry(inv.clone()).or_default();
            c.requests += 1;
            c.graphql_points += u64::from(r.graphql_points);
        }
        if r.graphql_points > 0 {
            self.graphql_points_total += u64::from(r.graphql_points);
            if let Some(t) = &r.token {
                *self.graphql_points_by_token.entry(t.clone()).or_default() +=
                    u64::from(r.graphql_points);
            }
        }
        for kind in r.fault.iter().chain(&r.unit_faults) {
            *self.faults_by_kind.entry(kind.to_string()).or_default() += 1;
        }
        if let Some(limit) = r.secondary_limit {
            *self.secondary_limited.entry(limit.to_string()).or_default() += 1;
        }
        if let (Some((day, neurons)), Some((model, _))) = (&r.ai_neurons, &r.ai_call) {
            self.ai_neurons_total += neurons;
            *self.ai_neurons_by_day.entry(day.clone()).or_default() += neurons;
            *self.ai_neurons_by_model.entry(model.clone()).or_default() += neurons;
        }
        if let Some((model, outcome)) = &r.ai_call {
            self.ai_calls_total += 1;
            *self
                .ai_calls
                .entry(model.clone())
                .or_default()
                .entry(outcome.clone())
                .or_default() += 1;
        }
    }
}
