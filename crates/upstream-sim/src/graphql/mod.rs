//! `POST /graphql`: GitHub's GraphQL API over the simulated world. Every
//! query is validated against GitHub's real schema, checked against the
//! simulated subset and GitHub's pagination rules, priced with GitHub's
//! cost formula and charged to the token's hourly budget.

mod analysis;
mod errors;
mod exec;
mod page;
mod schema;
mod selection;

use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value as Json};

pub use schema::warm_schema;
pub(crate) use schema::warm_schema_in_background;

use crate::faults::UnitFaults;
use crate::gateway::{
    bearer_token, has_user_agent, missing_user_agent, GraphqlPoints, UnitFaultsApplied,
};
use crate::ratelimit::{Client, Resource, Window};
use crate::sim::Sim;
use errors::GqlError;
use exec::{Executor, RateInfo, UnitFaultSink};

#[derive(Debug, Deserialize)]
struct GraphqlRequest {
    #[serde(default)]
    query: Option<Json>,
    #[serde(default)]
    variables: Option<Json>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

#[derive(serde::Serialize)]
struct ResponseBody {
    data: Option<exec::Out>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<GqlError>,
}

#[derive(serde::Serialize)]
struct ResponseErrors {
    errors: Vec<GqlError>,
}

struct Outcome {
    status: StatusCode,
    /// Serialized JSON; kept as text so response key order survives.
    body: String,
    window: Option<Window>,
    points: u32,
    /// Unit faults injected into the answer.
    faults: Vec<&'static str>,
}

impl Outcome {
    fn errors(errors: Vec<GqlError>, window: Window) -> Outcome {
        Outcome {
            status: StatusCode::OK,
            body: serde_json::to_string(&ResponseErrors { errors }).unwrap_or_default(),
            window: Some(window),
            points: 0,
            faults: Vec::new(),
        }
    }
}

pub(crate) async fn handle(
    State(sim): State<Arc<Sim>>,
    units: Option<Extension<UnitFaults>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if !has_user_agent(&headers) {
        return missing_user_agent();
    }
    let Some(token) = bearer_token(&headers) else {
        return respond(Outcome {
            status: StatusCode::UNAUTHORIZED,
            body: json!({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"
            })
            .to_string(),
            window: None,
            points: 0,
            faults: Vec::new(),
        });
    };
    let units = units.map(|Extension(u)| u);
    let outcome = tokio::task::spawn_blocking(move || process(&sim, token, &body, units.as_ref()))
        .await
        .unwrap_or_else(|e| Outcome {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({ "errors": [{ "message": format!("simulator panicked: {e}") }] })
                .to_string(),
            window: None,
            points: 0,
            faults: Vec::new(),
        });
    respond(outcome)
}

fn respond(o: Outcome) -> Response<Body> {
    let mut resp = Response::new(Body::from(o.body));
    *resp.status_mut() = o.status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(w) = o.window {
        w.write_headers(Resource::Graphql, resp.headers_mut());
    }
    resp.extensions_mut().insert(GraphqlPoints(o.points));
    resp.extensions_mut().insert(UnitFaultsApplied(o.faults));
    resp
}

fn process(sim: &Sim, token: String, body: &[u8], units: Option<&UnitFaults>) -> Outcome {
    let client = Client::Token(token.clone());
    let window = sim.limits().peek(Resource::Graphql, &client);
    let request: GraphqlRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            return Outcome {
                status: StatusCode::BAD_REQUEST,
                body: json!({
                    "message": "Problems parsing JSON",
                    "documentation_url": "https://docs.github.com/graphql"
                })
                .to_string(),
                window: Some(window),
                points: 0,
                faults: Vec::new(),
            }
        }
    };
    let Some(Json::String(query)) = request.query else {
        return Outcome::errors(
            vec![GqlError::new(
                "A query attribute must be specified and must be a string.",
            )],
            window,
        );
    };
    let schema = schema::github_schema();
    let doc = match ExecutableDocument::parse_and_validate(schema, &query, "query.graphql") {
        Ok(doc) => doc,
        Err(with_errors) => {
            return Outcome::errors(errors::from_diagnostics(&with_errors.errors), window)
        }
    };
    let op = match doc.operations.get(request.operation_name.as_deref()) {
        Ok(op) => op,
        Err(e) => {
            return Outcome::errors(
                vec![GqlError::coded(
                    "operationNotFound",
                    e.message().to_string(),
                )],
                window,
            )
        }
    };
    let vars = match coerce_variables(schema, &doc, op, request.variables) {
        Ok(v) => v,
        Err(e) => return Outcome::errors(vec![e], window),
    };
    let plan = match analysis::analyse(schema, &doc, op, &vars) {
        Ok(p) => p,
        Err(errs) => return Outcome::errors(errs, window),
    };

    let (window, points) = {
        let mut limits = sim.limits();
        let w = limits.peek(Resource::Graphql, &client);
        if plan.dry_run {
            (w, 0)
        } else if w.remaining() < plan.cost {
            return Outcome {
                status: StatusCode::OK,
                body: json!({ "errors": [{
                    "type": "RATE_LIMITED",
                    "code": "graphql_rate_limit",
                    "message": client.exceeded_message(),
                }]})
                .to_string(),
                window: Some(w),
                points: 0,
                faults: Vec::new(),
            };
        } else {
            (
                limits.charge(Resource::Graphql, &client, plan.cost),
                plan.cost,
            )
        }
    };

    let data = sim.data();
    let fire = |index: usize| sim.faults().try_fire(index);
    let executor = Executor {
        schema,
        doc: &doc,
        vars: &vars,
        world: &data.world,
        rate: RateInfo {
            cost: plan.cost,
            limit: window.limit,
            remaining: window.remaining(),
            used: window.used,
            reset_at: window.reset,
            node_count: plan.node_count,
        },
        viewer: format!("sim-user-{}", client.user_id()),
        errors: Vec::new(),
        faults: UnitFaultSink {
            units,
            fire: &fire,
            applied: Default::default(),
        },
        alias: Vec::new(),
    };
    let (data, errors, faults) = executor.run(op);
    let body = serde_json::to_string(&ResponseBody { data, errors })
        .unwrap_or_else(|e| json!({ "errors": [{ "message": e.to_string() }] }).to_string());
    Outcome {
        status: StatusCode::OK,
        body,
        window: Some(window),
        points,
        faults,
    }
}

fn coerce_variables(
    schema: &apollo_compiler::validation::Valid<apollo_compiler::Schema>,
    doc: &ExecutableDocument,
    op: &apollo_compiler::executable::Operation,
    raw: Option<Json>,
) -> Result<selection::Variables, GqlError> {
    let raw = match raw {
        None | Some(Json::Null) => serde_json::Map::new(),
        Some(Json::Object(m)) => m,
        Some(Json::String(s)) if s.trim().is_empty() => serde_json::Map::new(),
        Some(Json::String(s)) => match serde_json::from_str::<Json>(&s) {
            Ok(Json::Object(m)) => m,
            _ => return Err(GqlError::new("Variables are invalid JSON.")),
        },
        Some(_) => return Err(GqlError::new("Variables are invalid JSON.")),
    };
    let bytes_value = apollo_compiler::response::serde_json_bytes::Value::from(Json::Object(raw));
    let map = bytes_value.as_object().cloned().unwrap_or_default();
    match apollo_compiler::request::coerce_variable_values(schema, op, &map) {
        Ok(valid) => {
            let as_json = serde_json::to_value(valid.into_inner()).unwrap_or(Json::Null);
            Ok(match as_json {
                Json::Object(m) => m,
                _ => serde_json::Map::new(),
            })
        }
        Err(e) => {
            let mut err = GqlError::coded("variableValueInvalid", e.message().to_string());
            err = err.at(e.location(), &doc.sources);
            Err(err)
        }
    }
}
