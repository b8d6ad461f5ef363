//! GitHub's secondary rate limits, enforced per client (token, else
//! address): at most 100 requests in flight at once, shared by REST and
//! GraphQL, and at most 2,000 points a minute on the GraphQL endpoint and
//! 900 on REST, where a GraphQL query or a REST GET is 1 point (GitHub docs,
//! "Rate limits for the REST API" › "About secondary rate limits" and
//! "Calculating points for the secondary rate limit": these points are per
//! request, separate from the GraphQL query cost of the primary limit).
//! The minute is a rolling window on the wall clock, like the hourly windows.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ratelimit::{Client, Resource};

fn default_concurrency() -> u32 {
    100
}
fn default_graphql_points() -> u32 {
    2_000
}
fn default_rest_points() -> u32 {
    900
}
fn default_window() -> u64 {
    60
}
fn default_concurrency_retry() -> u64 {
    60
}

/// The enforced secondary limits; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryLimitConfig {
    /// Requests in flight at once per client, REST and GraphQL together.
    #[serde(default = "default_concurrency")]
    pub max_concurrent: u32,
    /// GraphQL requests (1 point each) per rolling window per client.
    #[serde(default = "default_graphql_points")]
    pub graphql_points_per_minute: u32,
    /// REST requests (1 point each) per rolling window per client.
    #[serde(default = "default_rest_points")]
    pub rest_points_per_minute: u32,
    /// The rolling window's length.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// `retry-after` when the concurrency limit refuses a request.
    #[serde(default = "default_concurrency_retry")]
    pub concurrency_retry_after_secs: u64,
}

impl Default for SecondaryLimitConfig {
    fn default() -> Self {
        SecondaryLimitConfig {
            max_concurrent: default_concurrency(),
            graphql_points_per_minute: default_graphql_points(),
            rest_points_per_minute: default_rest_points(),
            window_secs: default_window(),
            concurrency_retry_after_secs: default_concurrency_retry(),
        }
    }
}

/// A partial update of the limits (`POST /_sim/limits`): absent fields
/// keep their current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryLimitPatch {
    pub max_concurrent: Option<u32>,
    pub graphql_points_per_minute: Option<u32>,
    pub rest_points_per_minute: Option<u32>,
    pub window_secs: Option<u64>,
    pub concurrency_retry_after_secs: Option<u64>,
}

impl SecondaryLimitConfig {
    pub fn patched(self, p: SecondaryLimitPatch) -> Self {
        SecondaryLimitConfig {
            max_concurrent: p.max_concurrent.unwrap_or(self.max_concurrent),
            graphql_points_per_minute: p
                .graphql_points_per_minute
                .unwrap_or(self.graphql_points_per_minute),
            rest_points_per_minute: p
                .rest_points_per_minute
                .unwrap_or(self.rest_points_per_minute),
            window_secs: p.window_secs.unwrap_or(self.window_secs).max(1),
            concurrency_retry_after_secs: p
                .concurrency_retry_after_secs
                .unwrap_or(self.concurrency_retry_after_secs),
        }
    }
}

/// Which secondary limit refused a request, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub limit: &'static str,
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SecondaryLimits {
    config: SecondaryLimitConfig,
    in_flight: HashMap<Client, u32>,
    spent: HashMap<(Resource, Client), VecDeque<Instant>>,
}

impl SecondaryLimits {
    pub(crate) fn new(config: SecondaryLimitConfig) -> Self {
        SecondaryLimits {
            config,
            ..SecondaryLimits::default()
        }
    }

    pub(crate) fn config(&self) -> SecondaryLimitConfig {
        self.config
    }

    /// Replaces the limits; windows and requests in flight are kept.
    pub(crate) fn set_config(&mut self, config: SecondaryLimitConfig) {
        self.config = config;
    }

    fn per_minute(&self, resource: Resource) -> u32 {
        match resource {
            Resource::Graphql => self.config.graphql_points_per_minute,
            Resource::Core => self.config.rest_points_per_minute,
        }
    }

    /// Admits one request (1 point) at `now`, or says which limit refuses it.
    /// An admitted request is in flight until [`SecondaryLimits::release`].
    pub(crate) fn admit(
        &mut self,
        resource: Resource,
        client: &Client,
        now: Instant,
    ) -> Result<(), Refusal> {
        let max = self.config.max_concurrent;
        let in_flight = self.in_flight.get(client).copied().unwrap_or(0);
        if max > 0 && in_flight >= max {
            return Err(Refusal {
                limit: "concurrency",
                retry_after_secs: self.config.concurrency_retry_after_secs,
            });
        }
        let per_minute = self.per_minute(resource);
        let window = Duration::from_secs(self.config.window_secs.max(1));
        let spent = self.spent.entry((resource, client.clone())).or_default();
        while spent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            spent.pop_front();
        }
        if per_minute > 0 && spent.len() >= per_minute as usize {
            let oldest = *spent.front().expect("the window is full");
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Err(Refusal {
                limit: match resource {
                    Resource::Graphql => "graphql_points",
                    Resource::Core => "rest_points",
                },
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        spent.push_back(now);
        *self.in_flight.entry(client.clone()).or_default() += 1;
        Ok(())
    }

    /// Back to `config` with empty windows; requests in flight stay counted.
    pub(crate) fn reset_windows(&mut self, config: SecondaryLimitConfig) {
        self.config = config;
        self.spent.clear();
    }

    pub(crate) fn release(&mut self, client: &Client) {
        if let Some(n) = self.in_flight.get_mut(client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrent: u32, graphql: u32) -> SecondaryLimits {
        SecondaryLimits::new(SecondaryLimitConfig {
            max_concurrent: concurrent,
            graphql_points_per_minute: graphql,
            ..SecondaryLimitConfig::default()
        })
    }

    #[test]
    fn the_request_past_the_concurrency_limit_is_refused_until_one_ends() {
        let mut l = limits(2, 0);
        let c = Client::Token("t".into());
        let now = Instant::now();
        assert!(l.admit(Resource::Graphql, &c, now).is_ok());
        assert!(l.admit(Resource::Core, &c, now).is_ok());
        let refused = l.admit(Resource::Graphql, &c, now).unwrap_err();
        assert_eq!(refused.limit, "concurrency");
        assert_eq!(refused.retry_after_secs, 60);
        assert!(l
            .admit(Resource::Graphql, &Client::Token("u".into()), now)
            .is_ok());
        l.release(&c);
        assert!(l.admit(Resource::Graphql, &c, now).is_ok());
    }

    #[test]
    fn points_leave_the_rolling_minute_one_by_one() {
        let mut l = limits(0, 2);
        let c = Client::Token("t".into());
        let t0 = Instant::now();
        l.admit(Resource::Graphql, &c, t0).unwrap();
        l.admit(Resource::Graphql, &c, t0 + Duration::from_secs(20))
            .unwrap();
        let refused = l
            .admit(Resource::Graphql, &c, t0 + Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(refused.limit, "graphql_points");
        assert_eq!(refused.retry_after_secs, 30);
        assert!(l.admit(Resource::Core, &c, t0).is_ok(), "REST has its own");
        assert!(l
            .admit(Resource::Graphql, &c, t0 + Duration::from_secs(60))
            .is_ok());
    }
}
