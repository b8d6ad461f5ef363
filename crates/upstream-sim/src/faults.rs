//! Seeded fault injection. Whether request `n` on a route is hit depends only
//! on (seed, route, n, rule), so replaying the same request sequence after
//! `POST /_sim/faults` reproduces exactly the same faults.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::rng::{hash_str, key, unit};

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
    /// GraphQL unit kinds only: the repositories (`owner/name`, any case;
    /// listed or current name) whose aliases the rule can hit. Absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repos: Option<Vec<String>>,
    /// `alias_forbidden` only: `saml` (default) or `ip_allow_list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden_reason: Option<ForbiddenReason>,
}

/// Why GitHub refuses an alias with FORBIDDEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForbiddenReason {
    /// The organization enforces SAML SSO and the token is not authorized.
    Saml,
    /// The organization's IP allow list does not include the caller.
    IpAllowList,
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
    /// AI: 429 + `Retry-After`, code 3040 (out of capacity).
    AiCapacityExceeded,
    /// AI: 429 + `Retry-After`, Cloudflare's API rate-limit answer (code 971).
    AiRateLimited,
    /// AI: waits `latency_ms`, then 408, code 3007 "Request timeout".
    AiTimeout,
    /// GraphQL: HTTP 200, `data: null`, GitHub's "Something went wrong…".
    DataNull,
    /// GraphQL: the same body with HTTP 502.
    #[serde(rename = "data_null_502")]
    DataNull502,
    /// GraphQL, per alias: `data.<alias>: null` with a FORBIDDEN error.
    AliasForbidden,
    /// GraphQL, per alias: `data.<alias>: null` with GitHub's timeout message.
    AliasTimeout,
    /// GraphQL, per issue node: `null` in `nodes`/`edges.node` with NOT_FOUND.
    NullNodes,
    /// GraphQL, per issue connection: `hasNextPage: true`, `endCursor: null`.
    NullEndCursor,
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
            FaultKind::AiCapacityExceeded => "ai_capacity_exceeded",
            FaultKind::AiRateLimited => "ai_rate_limited",
            FaultKind::AiTimeout => "ai_timeout",
            FaultKind::DataNull => "data_null",
            FaultKind::DataNull502 => "data_null_502",
            FaultKind::AliasForbidden => "alias_forbidden",
            FaultKind::AliasTimeout => "alias_timeout",
            FaultKind::NullNodes => "null_nodes",
            FaultKind::NullEndCursor => "null_end_cursor",
        }
    }

    /// Kinds that act on parts of a GraphQL answer (an alias, a node, a
    /// connection), decided per part rather than per request.
    pub(crate) fn is_graphql_unit(self) -> bool {
        matches!(
            self,
            FaultKind::AliasForbidden
                | FaultKind::AliasTimeout
                | FaultKind::NullNodes
                | FaultKind::NullEndCursor
        )
    }

    fn is_graphql_only(self) -> bool {
        self.is_graphql_unit() || matches!(self, FaultKind::DataNull | FaultKind::DataNull502)
    }

    /// Whether the kind can act on a request of `class`.
    fn applies_to(self, class: RouteClass) -> bool {
        if self.is_ai_only() {
            class.is_ai()
        } else if self.is_graphql_only() {
            class == RouteClass::Graphql
        } else {
            true
        }
    }

    /// Kinds for the `ai` and `ai_binding` routes only.
    pub(crate) fn is_ai_only(self) -> bool {
        self.acts_in_responder()
            || matches!(
                self,
                FaultKind::AiCapacityExceeded | FaultKind::AiRateLimited | FaultKind::AiTimeout
            )
    }

    /// AI kinds that act inside the AI responder (the others replace the
    /// response at the front door).
    pub(crate) fn acts_in_responder(self) -> bool {
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
    /// The request's place in its route's sequence (seeds request IDs).
    pub ordinal: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultConfigError {
    #[error("rule {index}: rate {rate} is outside 0.0..=1.0")]
    Rate { index: usize, rate: f64 },
    #[error("rule {index}: {kind} only applies to the ai and ai_binding routes")]
    AiKindOnGithubRoute { index: usize, kind: &'static str },
    #[error("rule {index}: {kind} only applies to the graphql route")]
    GraphqlKindElsewhere { index: usize, kind: &'static str },
    #[error("rule {index}: repos only selects aliases for alias_forbidden, alias_timeout, null_nodes and null_end_cursor")]
    ReposOnRequestKind { index: usize },
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
            if r.kind.is_graphql_only() && !matches!(r.route, FaultRoute::Graphql | FaultRoute::Any)
            {
                return Err(FaultConfigError::GraphqlKindElsewhere {
                    index,
                    kind: r.kind.name(),
                });
            }
            if r.repos.is_some() && !r.kind.is_graphql_unit() {
                return Err(FaultConfigError::ReposOnRequestKind { index });
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

    /// Decides the fault for the next request on `class`, if any, and
    /// hands out the GraphQL unit rules that may act inside its answer.
    pub(crate) fn decide(&mut self, class: RouteClass) -> Decision {
        if self.config.rules.is_empty() {
            return Decision::default();
        }
        let slot = class.ordinal_slot();
        let n = self.ordinals[slot];
        self.ordinals[slot] += 1;
        let units = UnitFaults {
            seed: self.config.seed,
            ordinal: n,
            rules: self
                .config
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.kind.is_graphql_unit()
                        && class == RouteClass::Graphql
                        && class.matches(r.route)
                })
                .map(|(i, r)| (i, r.clone()))
                .collect(),
        };
        Decision {
            fault: self.decide_request(class, slot, n),
            units: (!units.rules.is_empty()).then_some(units),
        }
    }

    fn decide_request(&mut self, class: RouteClass, slot: usize, n: u64) -> Option<Fault> {
        for (i, rule) in self.config.rules.iter().enumerate() {
            if !class.matches(rule.route)
                || !rule.kind.applies_to(class)
                || rule.kind.is_graphql_unit()
            {
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
                    ordinal: n,
                });
            }
        }
        None
    }

    /// Counts one injection of unit rule `index`, unless its `max_count`
    /// is reached (then the unit is spared).
    pub(crate) fn try_fire(&mut self, index: usize) -> bool {
        let Some(rule) = self.config.rules.get(index) else {
            return false;
        };
        if rule.max_count.is_some_and(|m| self.fired[index] >= m) {
            return false;
        }
        self.fired[index] += 1;
        true
    }
}

/// What the plan decided for one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decision {
    pub fault: Option<Fault>,
    pub units: Option<UnitFaults>,
}

/// The GraphQL unit rules for one request: whether a unit (an alias, a
/// node, a connection) is hit depends on (seed, request, rule, unit).
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitFaults {
    seed: u64,
    ordinal: u64,
    rules: Vec<(usize, FaultRule)>,
}

/// A unit rule that matched: its index in the plan and its settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitHit<'r> {
    pub index: usize,
    pub rule: &'r FaultRule,
}

impl UnitFaults {
    /// The first rule of `kind` selecting a unit of the repository known by
    /// `slugs` (any of them), keyed by `unit`; the caller still has to
    /// [`FaultPlan::try_fire`] it.
    pub(crate) fn candidate(
        &self,
        kind: FaultKind,
        slugs: &[&str],
        unit: &str,
    ) -> Option<UnitHit<'_>> {
        self.rules
            .iter()
            .filter(|(_, r)| r.kind == kind)
            .filter(|(_, r)| {
                r.repos.as_ref().is_none_or(|wanted| {
                    wanted
                        .iter()
                        .any(|w| slugs.iter().any(|s| s.eq_ignore_ascii_case(w)))
                })
            })
            .find(|(i, r)| {
                let h = key(&[self.seed, self.ordinal, *i as u64, hash_str(unit), 0x0A11A5]);
                unit_hit(h, r.rate)
            })
            .map(|(index, rule)| UnitHit {
                index: *index,
                rule,
            })
    }
}

fn unit_hit(h: u64, rate: f64) -> bool {
    rate >= 1.0 || unit(h) < rate
}

/// A GitHub request ID (`XXXX:XXXX:XXXXXX:XXXXXXX:XXXXXXXX`) derived from `h`.
pub(crate) fn request_id(h: u64) -> String {
    let m = crate::rng::mix(h);
    format!(
        "{:04X}:{:04X}:{:06X}:{:07X}:{:08X}",
        (h >> 48) & 0xFFFF,
        (h >> 32) & 0xFFFF,
        m & 0xFF_FFFF,
        (m >> 24) & 0xFFF_FFFF,
        (h & 0xFFFF_FFFF) as u32 ^ 0x6632_0000
    )
}

/// GitHub's answer when a query fails as a whole (often a timeout).
pub(crate) fn something_went_wrong(h: u64) -> String {
    format!(
        "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `{}` when reporting this issue.",
        request_id(h)
    )
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

/// Workers AI's transient failures, in the REST envelope or the binding's
/// error object. Codes and HTTP statuses from Cloudflare's Workers AI error
/// table (developers.cloudflare.com/workers-ai/platform/errors/): 3040 "Out
/// of capacity" (429, "No more data centers to forward the request to"; the
/// binding words it "Capacity temporarily exceeded, please try again."), 3007
/// "Timeout" (408, "Request timeout"). The per-minute request limits
/// (developers.cloudflare.com/workers-ai/platform/limits/) document no error
/// body: this answers as the Cloudflare API's rate limiter does (429, code
/// 971, "Please wait and consider throttling your request speed";
/// developers.cloudflare.com/fundamentals/api/reference/limits/).
fn ai_failure_response(kind: FaultKind, class: RouteClass) -> Response<Body> {
    let (status, code, rest_message, binding_message) = match kind {
        FaultKind::AiCapacityExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            3040,
            "No more data centers to forward the request to",
            "Capacity temporarily exceeded, please try again.",
        ),
        FaultKind::AiRateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            971,
            "Please wait and consider throttling your request speed",
            "Please wait and consider throttling your request speed",
        ),
        _ => (
            StatusCode::REQUEST_TIMEOUT,
            3007,
            "Request timeout",
            "Request timeout",
        ),
    };
    match class {
        RouteClass::AiBinding => json_response(
            status,
            serde_json::json!({"error": {"code": code, "message": binding_message}}),
        ),
        _ => json_response(
            status,
            serde_json::json!({"result": null, "success": false, "errors": [{"code": code, "message": rest_message}], "messages": []}),
        ),
    }
}

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
        (
            FaultKind::AiCapacityExceeded | FaultKind::AiRateLimited | FaultKind::AiTimeout,
            class,
        ) => ai_failure_response(fault.kind, class),
        (FaultKind::DataNull | FaultKind::DataNull502, RouteClass::Graphql) => json_response(
            if fault.kind == FaultKind::DataNull {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            },
            serde_json::json!({"data": null, "errors": [{"message": something_went_wrong(key(&[fault.ordinal, 0xDA7A]))}]}),
        ),
        (FaultKind::SecondaryRateLimit403, _) => json_response(
            StatusCode::FORBIDDEN,
            serde_json::json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 5C1A:3F2B:1B2C3D:4E5F6A:66325A10.", "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}),
        ),
        _ => return None,
    };
    if matches!(
        fault.kind,
        FaultKind::RateLimit429
            | FaultKind::SecondaryRateLimit403
            | FaultKind::AiCapacityExceeded
            | FaultKind::AiRateLimited
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
                repos: None,
                forbidden_reason: None,
            }],
        })
        .unwrap()
    }

    #[test]
    fn same_seed_and_sequence_give_the_same_faults() {
        let run = |seed| {
            let mut p = plan(seed, 0.3);
            (0..200)
                .map(|_| p.decide(RouteClass::Graphql).fault.is_some())
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
        let xs: Vec<_> = (0..50)
            .map(|_| a.decide(RouteClass::Graphql).fault)
            .collect();
        let ys: Vec<_> = (0..50)
            .map(|_| {
                b.decide(RouteClass::Rest);
                b.decide(RouteClass::Graphql).fault
            })
            .collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn max_count_caps_injections() {
        let mut p = plan(1, 1.0);
        p.config.rules[0].max_count = Some(2);
        let hits = (0..10)
            .filter(|_| p.decide(RouteClass::Graphql).fault.is_some())
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
            FaultKind::AiCapacityExceeded,
            FaultKind::AiRateLimited,
            FaultKind::AiTimeout,
            FaultKind::DataNull,
            FaultKind::DataNull502,
            FaultKind::AliasForbidden,
            FaultKind::AliasTimeout,
            FaultKind::NullNodes,
            FaultKind::NullEndCursor,
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
                repos: None,
                forbidden_reason: None,
            }],
        };
        assert!(FaultPlan::new(cfg).is_err());
    }
}
