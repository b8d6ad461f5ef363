//! Seeded fault injection. Whether request `n` on a route is hit depends only
//! on (seed, route, n, rule), so replaying the same request sequence after
//! `POST /_sim/faults` reproduces exactly the same faults.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::rng::{key, unit};

/// The body of `POST /_sim/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

fn default_rate() -> f64 {
    1.0
}
fn default_retry_after() -> u64 {
    1
}
fn default_latency() -> u64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub route: FaultRoute,
    pub kind: FaultKind,
    /// Probability in `0.0..=1.0` that a request on the route is hit.
    #[serde(default = "default_rate")]
    pub rate: f64,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    #[serde(default = "default_latency")]
    pub latency_ms: u64,
    /// Stop after this many injections.
    #[serde(default)]
    pub max_count: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultRoute {
    Graphql,
    Rest,
    Raw,
    Ai,
    AiBinding,
    #[serde(rename = "*")]
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    #[serde(rename = "status_500")]
    Status500,
    #[serde(rename = "status_502")]
    Status502,
    #[serde(rename = "rate_limit_429")]
    RateLimit429,
    #[serde(rename = "secondary_rate_limit_403")]
    SecondaryRateLimit403,
    TruncatedJson,
    Latency,
    ConnectionReset,
    AiMalformedJson,
    AiMissingFields,
    AiOutOfRange,
    AiQuotaExhausted,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Status500 => "status_500",
            FaultKind::Status502 => "status_502",
            FaultKind::RateLimit429 => "rate_limit_429",
            FaultKind::SecondaryRateLimit403 => "secondary_rate_limit_403",
            FaultKind::TruncatedJson => "truncated_json",
            FaultKind::Latency => "latency",
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::AiMalformedJson => "ai_malformed_json",
            FaultKind::AiMissingFields => "ai_missing_fields",
            FaultKind::AiOutOfRange => "ai_out_of_range",
            FaultKind::AiQuotaExhausted => "ai_quota_exhausted",
        }
    }

    /// AI-only kinds act inside the AI responder.
    pub(crate) fn is_ai_only(self) -> bool {
        matches!(
            self,
            FaultKind::AiMalformedJson
                | FaultKind::AiMissingFields
                | FaultKind::AiOutOfRange
                | FaultKind::AiQuotaExhausted
        )
    }
}

/// The faultable route classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteClass {
    Graphql,
    Rest,
    Raw,
    Ai,
    AiBinding,
}

impl RouteClass {
    fn ordinal_slot(self) -> usize {
        self as usize
    }

    fn matches(self, route: FaultRoute) -> bool {
        matches!(
            (route, self),
            (FaultRoute::Any, _)
                | (FaultRoute::Graphql, RouteClass::Graphql)
                | (FaultRoute::Rest, RouteClass::Rest)
                | (FaultRoute::Raw, RouteClass::Raw)
                | (FaultRoute::Ai, RouteClass::Ai)
                | (FaultRoute::AiBinding, RouteClass::AiBinding)
        )
    }

    fn is_ai(self) -> bool {
        matches!(self, RouteClass::Ai | RouteClass::AiBinding)
    }
}

/// A decided injection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub retry_after_secs: u64,
    pub latency_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultConfigError {
    #[error("rule {index}: rate {rate} is outside 0.0..=1.0")]
    Rate { index: usize, rate: f64 },
    #[error("rule {index}: {kind} only applies to the ai and ai_binding routes")]
    AiKindOnGithubRoute { index: usize, kind: &'static str },
}

#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    config: FaultConfig,
    ordinals: [u64; 5],
    fired: Vec<u64>,
}

impl FaultPlan {
    pub(crate) fn new(config: FaultConfig) -> Result<Self, FaultConfigError> {
        for (index, r) in config.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&r.rate) || r.rate.is_nan() {
                return Err(FaultConfigError::Rate {
                    index,
                    rate: r.rate,
                });
            }
            if r.kind.is_ai_only()
                && !matches!(
                    r.route,
                    FaultRoute::Ai | FaultRoute::AiBinding | FaultRoute::Any
                )
            {
                return Err(FaultConfigError::AiKindOnGithubRoute {
                    index,
                    kind: r.kind.name(),
                });
            }
        }
        let fired = vec![0; config.rules.len()];
        Ok(FaultPlan {
            config,
            ordinals: [0; 5],
            fired,
        })
    }

    pub(crate) fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Decides the fault for the next request on `class`, if any.
    pub(crate) fn decide(&mut self, class: RouteClass) -> Option<Fault> {
        if self.config.rules.is_empty() {
            return None;
        }
        let slot = class.ordinal_slot();
        let n = self.ordinals[slot];
        self.ordinals[slot] += 1;
        for (i, rule) in self.config.rules.iter().enumerate() {
            if !class.matches(rule.route) || (rule.kind.is_ai_only() && !class.is_ai()) {
                continue;
            }
            if rule.max_count.is_some_and(|m| self.fired[i] >= m) {
                continue;
            }
            let h = key(&[self.config.seed, slot as u64, n, i as u64, 0xFA17]);
            if unit(h) < rule.rate {
                self.fired[i] += 1;
                return Some(Fault {
                    kind: rule.kind,
                    retry_after_secs: rule.retry_after_secs,
                    latency_ms: rule.latency_ms,
                });
            }
        }
        None
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";

/// The response a status-style fault produces on a route, shaped like that
/// upstream's own errors. `None` for kinds that don't replace the response.
pub(crate) fn fault_response(class: RouteClass, fault: Fault) -> Option<Response<Body>> {
    let retry = fault.retry_after_secs.to_string();
    let mut resp = match (fault.kind, class) {
        (FaultKind::Status500, RouteClass::Graphql) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. Please include `5C1A:3F2B:1B2C3D:4E5F6A:66325A10` when reporting this issue."}]}),
        ),
        (FaultKind::Status500, RouteClass::Rest) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"message": "Server Error"}),
        ),
        (FaultKind::Status500, RouteClass::Raw) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "500: Internal Server Error".into(),
        ),
        (FaultKind::Status500, RouteClass::Ai) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"result": null, "success": false, "errors": [{"code": 3043, "message": "Internal server error"}], "messages": []}),
        ),
        (FaultKind::Status500, RouteClass::AiBinding) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"code": 3043, "message": "Internal server error"}}),
        ),
        (FaultKind::Status502, RouteClass::AiBinding) => json_response(
            StatusCode::BAD_GATEWAY,
            serde_json::json!({"error": {"code": 3043, "message": "Bad gateway"}}),
        ),
        (FaultKind::Status502, _) => {
            text_response(StatusCode::BAD_GATEWAY, "text/html", GATEWAY_HTML.into())
        }
        (FaultKind::RateLimit429, RouteClass::Ai) => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"result": null, "success": false, "errors": [{"code": 3040, "message": "Capacity temporarily exceeded, please try again."}], "messages": []}),
        ),
        (FaultKind::RateLimit429, RouteClass::AiBinding) => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"error": {"code": 3040, "message": "Capacity temporarily exceeded, please try again."}}),
        ),
        (FaultKind::RateLimit429, RouteClass::Raw) => text_response(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            "429: Too Many Requests".into(),
        ),
        (FaultKind::RateLimit429, _) => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"message": "API rate limit exceeded. Please wait before retrying.", "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"}),
        ),
        (FaultKind::SecondaryRateLimit403, _) => json_response(
            StatusCode::FORBIDDEN,
            serde_json::json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 5C1A:3F2B:1B2C3D:4E5F6A:66325A10.", "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}),
        ),
        _ => return None,
    };
    if matches!(
        fault.kind,
        FaultKind::RateLimit429 | FaultKind::SecondaryRateLimit403
    ) {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&retry).expect("digits"),
        );
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan::new(FaultConfig {
            seed,
            rules: vec![FaultRule {
                route: FaultRoute::Graphql,
                kind: FaultKind::Status500,
                rate,
                retry_after_secs: 1,
                latency_ms: 0,
                max_count: None,
            }],
        })
        .unwrap()
    }

    #[test]
    fn same_seed_and_sequence_give_the_same_faults() {
        let run = |seed| {
            let mut p = plan(seed, 0.3);
            (0..200)
                .map(|_| p.decide(RouteClass::Graphql).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "{hits} hits at rate 0.3");
    }

    #[test]
    fn other_routes_do_not_advance_a_routes_sequence() {
        let mut a = plan(3, 0.5);
        let mut b = plan(3, 0.5);
        let xs: Vec<_> = (0..50).map(|_| a.decide(RouteClass::Graphql)).collect();
        let ys: Vec<_> = (0..50)
            .map(|_| {
                b.decide(RouteClass::Rest);
                b.decide(RouteClass::Graphql)
            })
            .collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn max_count_caps_injections() {
        let mut p = plan(1, 1.0);
        p.config.rules[0].max_count = Some(2);
        let hits = (0..10)
            .filter(|_| p.decide(RouteClass::Graphql).is_some())
            .count();
        assert_eq!(hits, 2);
    }

    #[test]
    fn kinds_use_their_documented_names() {
        for kind in [
            FaultKind::Status500,
            FaultKind::Status502,
            FaultKind::RateLimit429,
            FaultKind::SecondaryRateLimit403,
            FaultKind::TruncatedJson,
            FaultKind::Latency,
            FaultKind::ConnectionReset,
            FaultKind::AiMalformedJson,
            FaultKind::AiMissingFields,
            FaultKind::AiOutOfRange,
            FaultKind::AiQuotaExhausted,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }

    #[test]
    fn ai_kinds_are_rejected_on_github_routes() {
        let cfg = FaultConfig {
            seed: 0,
            rules: vec![FaultRule {
                route: FaultRoute::Rest,
                kind: FaultKind::AiOutOfRange,
                rate: 1.0,
                retry_after_secs: 1,
                latency_ms: 0,
                max_count: None,
            }],
        };
        assert!(FaultPlan::new(cfg).is_err());
    }
}
