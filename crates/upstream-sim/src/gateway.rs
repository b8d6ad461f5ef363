//! The front door every request passes through: classifies the route,
//! decides and applies injected faults, counts traffic and logs one line
//! per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::counters::RequestRecord;
use crate::faults::{fault_response, Fault, FaultKind, RouteClass};
use crate::ratelimit::Resource;
use crate::sim::Sim;

/// The client's socket address, for per-address anonymous rate limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// GraphQL points a response charged (response extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GraphqlPoints(pub u32);

/// GraphQL unit faults the executor injected (response extension).
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitFaultsApplied(pub Vec<&'static str>);

/// An AI call's model and outcome (response extension).
#[derive(Debug, Clone)]
pub(crate) struct AiCall {
    pub model: String,
    pub outcome: String,
    /// (day, neurons) when the call was billed.
    pub neurons: Option<(String, f64)>,
}

/// An AI-only fault the responder should apply (request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AiFault(pub FaultKind);

/// Marks that the responder applied the AI fault (response extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AiFaultApplied;

/// The service asks the connection to be dropped without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection reset injected by the fault plan")]
pub(crate) struct ConnectionReset;

/// Where a request is going, for counting and faults.
#[derive(Debug, Clone)]
pub(crate) struct Traffic {
    pub class: Option<RouteClass>,
    /// Counter name; `None` for control routes, which are not counted.
    pub counter: Option<String>,
}

pub(crate) fn classify(path: &str) -> Traffic {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (class, counter) = match seg.as_slice() {
        ["graphql"] => (Some(RouteClass::Graphql), "graphql".to_string()),
        ["raw", ..] => (Some(RouteClass::Raw), "raw".to_string()),
        ["client", "v4", "accounts", _, "ai", "run", ..] => {
            (Some(RouteClass::Ai), "ai".to_string())
        }
        ["_sim", "ai-binding", ..] => (Some(RouteClass::AiBinding), "ai_binding".to_string()),
        ["_sim", ..] => {
            return Traffic {
                class: None,
                counter: None,
            }
        }
        ["rate_limit"] => (Some(RouteClass::Rest), "rest:/rate_limit".to_string()),
        ["repos", _, _, rest @ ..] => (
            Some(RouteClass::Rest),
            format!("rest:/repos/{{owner}}/{{repo}}{}", rest_pattern(rest)),
        ),
        ["repositories", _, rest @ ..] => (
            Some(RouteClass::Rest),
            format!("rest:/repositories/{{id}}{}", rest_pattern(rest)),
        ),
        _ => (None, "unmatched".to_string()),
    };
    Traffic {
        class,
        counter: Some(counter),
    }
}

fn rest_pattern(rest: &[&str]) -> String {
    match rest {
        [] => String::new(),
        ["issues", _] => "/issues/{number}".to_string(),
        other => format!("/{}", other.join("/")),
    }
}

/// The token from `Authorization: bearer|token <t>`, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let scheme_ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    (scheme_ok && !token.is_empty()).then(|| token.to_string())
}

pub(crate) fn has_user_agent(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty())
}

/// GitHub's answer to a request without `User-Agent`.
pub(crate) fn missing_user_agent() -> Response<Body> {
    let mut resp = Response::new(Body::from(
        "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
    ));
    *resp.status_mut() = axum::http::StatusCode::FORBIDDEN;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Handles one request end to end.
pub(crate) async fn serve(
    sim: Arc<Sim>,
    router: Router,
    mut req: Request<Body>,
    peer: SocketAddr,
) -> Result<Response<Body>, ConnectionReset> {
    let traffic = classify(req.uri().path());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let token = bearer_token(req.headers());
    let invocation = req
        .headers()
        .get("x-contribot-invocation")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    req.extensions_mut().insert(PeerAddr(peer));
    let mut record = RequestRecord {
        route: traffic.counter.clone().unwrap_or_default(),
        token: token.clone(),
        invocation: invocation.clone(),
        ..RequestRecord::default()
    };

    if let Some(resp) = revoked_token(&sim, traffic.class, token.as_deref(), peer) {
        record.status = resp.status().as_u16();
        finish(&sim, &traffic, &method, &path, record);
        return Ok(resp);
    }
    let _in_flight = match admit_secondary(&sim, traffic.class, req.headers(), peer) {
        Ok(guard) => guard,
        Err(resp) => {
            record.secondary_limit = resp.1;
            record.status = resp.0.status().as_u16();
            finish(&sim, &traffic, &method, &path, record);
            return Ok(resp.0);
        }
    };
    let decision = traffic
        .class
        .map(|c| sim.faults().decide(c))
        .unwrap_or_default();
    let fault: Option<Fault> = decision.fault;
    if let Some(units) = decision.units {
        req.extensions_mut().insert(units);
    }

    if let Some(f) = fault {
        if f.kind == FaultKind::ConnectionReset {
            record.fault = Some(f.kind.name());
            finish(&sim, &traffic, &method, &path, record);
            return Err(ConnectionReset);
        }
    }

    let (canned, truncate) =
        apply_fault(&sim, fault, traffic.class, &mut req, peer, &mut record).await;
    let mut resp = match canned {
        Some(r) => r,
        None => match router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
    };
    if truncate {
        record.fault = Some(FaultKind::TruncatedJson.name());
        resp = truncated(resp).await;
    }
    note_response(&resp, fault, &mut record);
    record.status = resp.status().as_u16();
    finish(&sim, &traffic, &method, &path, record);
    Ok(resp)
}

/// GitHub's 401 when `token` has been revoked (GitHub routes only). Every
/// GitHub request with a token counts towards a pending revocation.
fn revoked_token(
    sim: &Sim,
    class: Option<RouteClass>,
    token: Option<&str>,
    peer: SocketAddr,
) -> Option<Response<Body>> {
    let class = class.filter(|c| matches!(c, RouteClass::Graphql | RouteClass::Rest))?;
    let token = token?;
    if sim.tokens().admit(token) {
        return None;
    }
    let anonymous = crate::ratelimit::Client::Anonymous(peer.ip().to_string());
    let core = sim.limits().peek(Resource::Core, &anonymous);
    Some(crate::tokens::bad_credentials(class, core))
}

/// Applies a request-level fault: waits (latency, AI timeout), hands AI
/// output faults to the responder, or returns the canned response; also
/// says whether the real body must be truncated.
async fn apply_fault(
    sim: &Sim,
    fault: Option<Fault>,
    class: Option<RouteClass>,
    req: &mut Request<Body>,
    peer: SocketAddr,
    record: &mut RequestRecord,
) -> (Option<Response<Body>>, bool) {
    let (Some(f), Some(class)) = (fault, class) else {
        return (None, false);
    };
    match f.kind {
        FaultKind::Latency => {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
            record.fault = Some(f.kind.name());
            (None, false)
        }
        FaultKind::TruncatedJson => (None, true),
        k if k.acts_in_responder() => {
            req.extensions_mut().insert(AiFault(k));
            (None, false)
        }
        k => {
            if k == FaultKind::AiTimeout {
                tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
            }
            record.fault = Some(k.name());
            let canned = fault_response(class, f).map(|mut resp| {
                rate_limit_headers(sim, class, req.headers(), peer, &mut resp);
                resp
            });
            (canned, false)
        }
    }
}

/// Copies what the handler reported (points, unit faults, AI call) into
/// the request's record.
fn note_response(resp: &Response<Body>, fault: Option<Fault>, record: &mut RequestRecord) {
    if let Some(p) = resp.extensions().get::<GraphqlPoints>() {
        record.graphql_points = p.0;
    }
    if let Some(applied) = resp.extensions().get::<UnitFaultsApplied>() {
        record.unit_faults = applied.0.clone();
    }
    if let Some(call) = resp.extensions().get::<AiCall>() {
        record.ai_call = Some((call.model.clone(), call.outcome.clone()));
        record.ai_neurons = call.neurons.clone();
    }
    if resp.extensions().get::<AiFaultApplied>().is_some() {
        record.fault = fault.map(|f| f.kind.name());
    }
}

/// A GitHub request in flight, counted against the secondary concurrency
/// limit until dropped.
pub(crate) struct InFlight {
    sim: Arc<Sim>,
    client: Option<crate::ratelimit::Client>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(client) = &self.client {
            self.sim.secondary().release(client);
        }
    }
}

type Refused = Box<(Response<Body>, Option<&'static str>)>;

/// Admits a GitHub request under the secondary limits, or answers GitHub's
/// 403 with `retry-after` and the (uncharged) primary window's headers.
fn admit_secondary(
    sim: &Arc<Sim>,
    class: Option<RouteClass>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<InFlight, Refused> {
    let (class, resource) = match class {
        Some(c @ RouteClass::Graphql) => (c, Resource::Graphql),
        Some(c @ RouteClass::Rest) => (c, Resource::Core),
        _ => {
            return Ok(InFlight {
                sim: sim.clone(),
                client: None,
            })
        }
    };
    let client = crate::rest::client_of(headers, PeerAddr(peer));
    let admitted = sim
        .secondary()
        .admit(resource, &client, std::time::Instant::now());
    match admitted {
        Ok(()) => Ok(InFlight {
            sim: sim.clone(),
            client: Some(client),
        }),
        Err(refusal) => {
            let fault = Fault {
                kind: FaultKind::SecondaryRateLimit403,
                retry_after_secs: refusal.retry_after_secs,
                latency_ms: 0,
                ordinal: 0,
            };
            let mut resp = fault_response(class, fault).expect("403 has a response");
            rate_limit_headers(sim, class, headers, peer, &mut resp);
            Err(Box::new((resp, Some(refusal.limit))))
        }
    }
}

/// GitHub answers carry the caller's (uncharged) rate-limit state even
/// when an injected fault replaces the response.
fn rate_limit_headers(
    sim: &Sim,
    class: RouteClass,
    headers: &HeaderMap,
    peer: SocketAddr,
    resp: &mut Response<Body>,
) {
    let resource = match class {
        RouteClass::Graphql => Resource::Graphql,
        RouteClass::Rest => Resource::Core,
        _ => return,
    };
    let client = match (class, bearer_token(headers)) {
        (RouteClass::Graphql, None) => return,
        _ => crate::rest::client_of(headers, PeerAddr(peer)),
    };
    let window = sim.limits().peek(resource, &client);
    window.write_headers(resource, resp.headers_mut());
}

/// Cuts the real body in half, keeping status and headers.
async fn truncated(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::ETAG);
    Response::from_parts(parts, Body::from(half))
}

fn finish(
    sim: &Sim,
    traffic: &Traffic,
    method: &axum::http::Method,
    path: &str,
    record: RequestRecord,
) {
    if traffic.counter.is_none() {
        return;
    }
    if sim.config.log_requests {
        eprintln!(
            "{method} {} {path} {} points={} fault={} inv={}",
            record.route,
            if record.status == 0 {
                "reset".to_string()
            } else {
                record.status.to_string()
            },
            record.graphql_points,
            record.fault.unwrap_or("-"),
            record.invocation.as_deref().unwrap_or("-"),
        );
    }
    sim.counters().record(&record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_routes_count_by_pattern() {
        assert_eq!(
            classify("/repos/a/b/issues/12").counter.as_deref(),
            Some("rest:/repos/{owner}/{repo}/issues/{number}")
        );
        assert_eq!(
            classify("/repos/a/b").counter.as_deref(),
            Some("rest:/repos/{owner}/{repo}")
        );
        assert!(classify("/_sim/counters").counter.is_none());
        assert_eq!(
            classify("/client/v4/accounts/x/ai/run/@cf/meta/llama")
                .counter
                .as_deref(),
            Some("ai")
        );
    }

    #[test]
    fn tokens_parse_from_either_scheme() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h).as_deref(), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("token xyz"));
        assert_eq!(bearer_token(&h).as_deref(), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
    }
}
