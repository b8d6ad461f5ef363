//! GitHub's primary rate limits: hourly windows per client and resource
//! (`core` for REST, `graphql` for GraphQL points). Windows run on the wall
//! clock, as clients compute their waits from `x-ratelimit-reset`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

/// Hourly budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitConfig {
    /// REST requests per hour without a token (per client address).
    pub rest_anonymous: u32,
    /// REST requests per hour per token.
    pub rest_authenticated: u32,
    /// GraphQL points per hour per token.
    pub graphql: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            rest_anonymous: 60,
            rest_authenticated: 5_000,
            graphql: 5_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    Core,
    Graphql,
}

impl Resource {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Resource::Core => "core",
            Resource::Graphql => "graphql",
        }
    }
}

/// Who is being limited.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    Token(String),
    Anonymous(String),
}

impl Client {
    /// The user id GitHub would name in its messages.
    pub(crate) fn user_id(&self) -> u64 {
        match self {
            Client::Token(t) => 10_000 + crate::rng::hash_str(t) % 90_000_000,
            Client::Anonymous(_) => 0,
        }
    }

    pub(crate) fn exceeded_message(&self) -> String {
        match self {
            Client::Token(_) => format!("API rate limit exceeded for user ID {}.", self.user_id()),
            Client::Anonymous(ip) => format!(
                "API rate limit exceeded for {ip}. (But here's the good news: Authenticated \
                 requests get a higher rate limit. Check out the documentation for more details.)"
            ),
        }
    }
}

/// One window's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub limit: u32,
    pub used: u32,
    /// Unix seconds.
    pub reset: i64,
}

impl Window {
    pub(crate) fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    pub(crate) fn write_headers(&self, resource: Resource, headers: &mut HeaderMap) {
        let put = |h: &mut HeaderMap, k: &'static str, v: String| {
            h.insert(k, HeaderValue::from_str(&v).expect("ascii header"));
        };
        put(headers, "x-ratelimit-limit", self.limit.to_string());
        put(
            headers,
            "x-ratelimit-remaining",
            self.remaining().to_string(),
        );
        put(headers, "x-ratelimit-used", self.used.to_string());
        put(headers, "x-ratelimit-reset", self.reset.to_string());
        put(headers, "x-ratelimit-resource", resource.name().to_string());
    }
}

#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    config: RateLimitConfig,
    windows: HashMap<(Resource, Client), Window>,
}

pub(crate) fn wall_clock_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RateLimits {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        RateLimits {
            config,
            windows: HashMap::new(),
        }
    }

    fn limit_for(&self, resource: Resource, client: &Client) -> u32 {
        match (resource, client) {
            (Resource::Core, Client::Anonymous(_)) => self.config.rest_anonymous,
            (Resource::Core, Client::Token(_)) => self.config.rest_authenticated,
            (Resource::Graphql, _) => self.config.graphql,
        }
    }

    /// The current window, starting a fresh one if the last has expired.
    pub(crate) fn peek(&mut self, resource: Resource, client: &Client) -> Window {
        let now = wall_clock_secs();
        let limit = self.limit_for(resource, client);
        let w = self
            .windows
            .entry((resource, client.clone()))
            .or_insert(Window {
                limit,
                used: 0,
                reset: now + 3_600,
            });
        if now >= w.reset {
            *w = Window {
                limit,
                used: 0,
                reset: now + 3_600,
            };
        }
        *w
    }

    /// Charges `amount`, returning the window after the charge.
    pub(crate) fn charge(&mut self, resource: Resource, client: &Client, amount: u32) -> Window {
        self.peek(resource, client);
        let w = self
            .windows
            .get_mut(&(resource, client.clone()))
            .expect("peek created the window");
        w.used = w.used.saturating_add(amount);
        *w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_accumulate_until_the_budget_is_spent() {
        let mut limits = RateLimits::new(RateLimitConfig {
            rest_anonymous: 2,
            ..RateLimitConfig::default()
        });
        let anon = Client::Anonymous("127.0.0.1".into());
        assert_eq!(limits.peek(Resource::Core, &anon).remaining(), 2);
        limits.charge(Resource::Core, &anon, 1);
        assert_eq!(limits.charge(Resource::Core, &anon, 1).remaining(), 0);
        let token = Client::Token("t".into());
        assert_eq!(limits.peek(Resource::Core, &token).remaining(), 5_000);
    }
}
