//! The admin HTTP API: bearer-authenticated operator routes.

use contribot_core::admin::{self, AuthVerdict};
use contribot_core::scrape::StartOutcome;
use contribot_edge::{config, WorkerPlatform};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response, Result};

fn error(status: u16, message: &str) -> Result<Response> {
    Ok(Response::from_json(&json!({"ok": false, "error": message}))?.with_status(status))
}

pub async fn route(req: Request, env: &Env) -> Result<Response> {
    let path = req.path();
    if path == "/" || path == "/health" {
        return Response::from_json(&json!({"ok": true, "service": "contribot-scraper"}));
    }
    if !path.starts_with("/admin/") {
        return error(404, "not found");
    }
    let header = req.headers().get("authorization")?;
    let verdict = admin::authorize(
        header.as_deref(),
        config::var(env, "ADMIN_TOKEN").as_deref(),
    );
    if verdict != AuthVerdict::Allowed {
        return error(verdict.status(), verdict.message());
    }
    if let Some(len) = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > admin::MAX_BODY_BYTES {
            return error(
                413,
                &format!("request body over {} bytes", admin::MAX_BODY_BYTES),
            );
        }
    }
    match (req.method(), path.as_str()) {
        (Method::Post, "/admin/run") => run(env).await,
        (Method::Get, "/admin/status") => status(env).await,
        (_, "/admin/run" | "/admin/status") => error(405, "method not allowed"),
        _ => error(404, "no such admin route"),
    }
}

async fn run(env: &Env) -> Result<Response> {
    match crate::run::start(env, "admin").await? {
        StartOutcome::Started { run_id } => Ok(Response::from_json(&json!({"ok": true, "run_id": run_id, "status": "started"}))?.with_status(202)),
        StartOutcome::AlreadyRunning { run_id } => Ok(Response::from_json(&json!({"ok": false, "run_id": run_id, "status": "already_running", "error": "a run is already in progress"}))?.with_status(409)),
    }
}

fn counts(rows: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for s in contribot_core::store::PROCESSING_STATUSES {
        out.insert(s.to_string(), json!(0));
    }
    for r in rows {
        if let (Some(s), Some(n)) = (r.get("status").and_then(Value::as_str), r.get("n")) {
            out.insert(s.to_string(), n.clone());
        }
    }
    Value::Object(out)
}

async fn status(env: &Env) -> Result<Response> {
    let platform = WorkerPlatform::from_env(env)?;
    let rows = contribot_edge::platform::run_batch(platform.db(), &admin::status_queries(10, 50))
        .await
        .map_err(worker::Error::RustError)?;
    let get = |i: usize| rows.get(i).cloned().unwrap_or_default();
    let label_not_found: Vec<Value> = get(4)
        .into_iter()
        .map(|r| {
            let labels: Value = r
                .get("listed_labels")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(json!([]));
            json!({"repo": r.get("repo"), "listed_labels": labels})
        })
        .collect();
    Response::from_json(&json!({
        "ok": true,
        "repos": counts(&get(0)),
        "issues": counts(&get(1)),
        "runs": get(2),
        "failed": get(3),
        "label_not_found": label_not_found,
        "backlog": get(5).into_iter().next().unwrap_or(json!({})),
        "invocations": get(6),
    }))
}
