//! The control API under `/_sim/…`: mutations, fault plans, reset,
//! counters and ground truth. Control traffic is never counted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::faults::FaultConfig;
use crate::mutation::MutationOp;
use crate::sim::Sim;
use crate::tokens::TokenRevocation;

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response<Body>>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(reply(
            StatusCode::BAD_REQUEST,
            json!({"error": e.to_string()}),
        ))
    })
}

#[derive(Debug, Deserialize)]
struct MutateRequest {
    ops: Vec<MutationOp>,
}

/// `POST /_sim/mutate`: applies every op or none.
pub(crate) async fn mutate(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response<Body> {
    let req: MutateRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match sim.mutate(&req.ops) {
        Ok(applied) => {
            let clock = sim.data().world.now_iso();
            reply(StatusCode::OK, json!({"applied": applied, "clock": clock}))
        }
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

/// `POST /_sim/faults`: replaces the fault plan and restarts its sequences.
pub(crate) async fn set_faults(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let config: FaultConfig = match parse(&body) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    match sim.set_faults(config.clone()) {
        Ok(()) => reply(StatusCode::OK, json!({"ok": true, "faults": config})),
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

pub(crate) async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<FaultConfig> {
    Json(sim.faults().config().clone())
}

pub(crate) async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response<Body> {
    sim.set_faults(FaultConfig::default())
        .expect("an empty plan is valid");
    reply(StatusCode::OK, json!({"ok": true}))
}

/// `POST /_sim/tokens/revoke`: revokes a token now or after N requests.
pub(crate) async fn revoke_token(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let r: TokenRevocation = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if r.token.trim().is_empty() {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "token must not be empty"}),
        );
    }
    let mut tokens = sim.tokens();
    tokens.revoke(&r);
    reply(
        StatusCode::OK,
        json!({"ok": true, "tokens": tokens.board()}),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreRequest {
    token: String,
}

/// `POST /_sim/tokens/restore`: the token works again.
pub(crate) async fn restore_token(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let r: RestoreRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let mut tokens = sim.tokens();
    tokens.restore(&r.token);
    reply(
        StatusCode::OK,
        json!({"ok": true, "tokens": tokens.board()}),
    )
}

pub(crate) async fn get_tokens(State(sim): State<Arc<Sim>>) -> Json<crate::TokenBoard> {
    Json(sim.tokens().board().clone())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AiLimitsPatch {
    daily_neurons: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsRequest {
    #[serde(default)]
    secondary: Option<crate::secondary::SecondaryLimitPatch>,
    #[serde(default)]
    ai: Option<AiLimitsPatch>,
}

fn limits_view(sim: &Sim) -> serde_json::Value {
    json!({"secondary": sim.secondary().config(), "ai": sim.neurons().config()})
}

/// `GET /_sim/limits`: the enforced limits now in force.
pub(crate) async fn get_limits(State(sim): State<Arc<Sim>>) -> Response<Body> {
    reply(StatusCode::OK, limits_view(&sim))
}

/// `POST /_sim/limits`: changes enforced limits at run time (absent fields
/// keep their value); `POST /_sim/reset` restores the start-up limits.
pub(crate) async fn set_limits(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let r: LimitsRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Some(patch) = r.secondary {
        let mut secondary = sim.secondary();
        let config = secondary.config().patched(patch);
        secondary.set_config(config);
    }
    if let Some(ai) = r.ai {
        sim.neurons().set_daily(ai.daily_neurons);
    }
    reply(StatusCode::OK, limits_view(&sim))
}

/// `GET /_sim/ai/quota`: today's neurons against the allocation.
pub(crate) async fn get_ai_quota(State(sim): State<Arc<Sim>>) -> Json<crate::AiQuotaView> {
    Json(sim.neurons().view())
}

/// `POST /_sim/ai/quota`: moves the AI clock (to the next UTC day with
/// `advance_days: 1`), sets the allocation or today's spent neurons.
pub(crate) async fn set_ai_quota(
    State(sim): State<Arc<Sim>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let change: crate::AiQuotaChange = match parse(&body) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    let mut ledger = sim.neurons();
    ledger.apply(&change);
    reply(StatusCode::OK, json!(ledger.view()))
}

pub(crate) async fn reset(State(sim): State<Arc<Sim>>) -> Response<Body> {
    sim.reset();
    reply(StatusCode::OK, json!({"ok": true}))
}

pub(crate) async fn counters(State(sim): State<Arc<Sim>>) -> Json<crate::Counters> {
    Json(sim.counters().clone())
}

pub(crate) async fn reset_counters(State(sim): State<Arc<Sim>>) -> Response<Body> {
    *sim.counters() = crate::Counters::default();
    reply(StatusCode::OK, json!({"ok": true}))
}

pub(crate) async fn truth(State(sim): State<Arc<Sim>>) -> Json<crate::Truth> {
    Json(sim.truth())
}

pub(crate) async fn health(State(sim): State<Arc<Sim>>) -> Response<Body> {
    reply(
        StatusCode::OK,
        json!({"ok": true, "seed": sim.config.seed, "scale": sim.config.scale, "base_url": sim.base_url}),
    )
}

pub(crate) async fn not_found() -> Response<Body> {
    reply(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}
