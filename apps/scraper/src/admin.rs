//! The admin HTTP API: bearer-authenticated operator routes.
//!
//! A thin shell over `contribot_core::admin`, which validates every
//! request, plans every statement and shapes every answer. Here: read the
//! request (the body with a bound), run the core's workflow over the
//! worker's bindings, write the invocation's R2 log, answer.

use contribot_core::admin::{
    self, AdminError, AdminInvocation, AuthVerdict, LogScan, LogStep, Route, Routing,
};
use contribot_core::budget::Subrequest;
use contribot_core::logrec::LogBook;
use contribot_core::platform::Metered;
use contribot_core::scrape::StartOutcome;
use contribot_core::sql::decode_rows;
use contribot_core::store;
use contribot_edge::{config, logs, new_id, now_ms, WorkerPlatform};
use futures::StreamExt;
use serde_json::{json, Value};
use worker::{Bucket, ByteStream, Env, Headers, Request, Response, Result};

fn answer(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

fn error(status: u16, message: &str) -> Result<Response> {
    answer(status, &json!({"ok": false, "error": message}))
}

fn refuse(e: &AdminError) -> Result<Response> {
    answer(e.status(), &e.to_json())
}

pub async fn route(mut req: Request, env: &Env) -> Result<Response> {
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
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(admin::body_too_large) {
        if declared.is_some_and(admin::keep_draining) {
            if let Ok(stream) = req.stream() {
                drain(stream, 0).await;
            }
        }
        return refuse(&AdminError::PayloadTooLarge);
    }
    let route = match admin::route(req.method().as_ref(), &path) {
        Routing::Found(route) => route,
        Routing::MethodNotAllowed { allow } => {
            let mut response = error(405, &format!("method not allowed: {path} takes {allow}"))?;
            response.headers_mut().set("allow", allow)?;
            return Ok(response);
        }
        Routing::NotFound => return error(404, "no such admin route"),
    };
    let body = if route.reads_body() {
        match read_body(&mut req).await? {
            Some(body) => body,
            None => return refuse(&AdminError::PayloadTooLarge),
        }
    } else {
        Vec::new()
    };
    let query: Vec<(String, String)> = req
        .url()?
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match route {
        Route::Run => run(env).await,
        Route::CancelRun => cancel(env).await,
        Route::Status => status(env, &query).await,
        Route::Enqueue => enqueue(env, &body).await,
        Route::Reprocess => reprocess(env, &body).await,
        Route::Logs => read_logs(env, &query).await,
    }
}

/// The body, read chunk by chunk and given up on past the limit (whether
/// or not a content-length was declared). `None` when too large.
async fn read_body(req: &mut Request) -> Result<Option<Vec<u8>>> {
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let mut stream = req.stream()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if admin::body_too_large(body.len()) {
            drain(stream, body.len()).await;
            return Ok(None);
        }
    }
    Ok(Some(body))
}

/// Read and drop the rest of a too-large body, up to a bound, so the
/// client gets to read the 413 (see `admin::MAX_DRAIN_BYTES`).
async fn drain(mut stream: ByteStream, mut read: usize) {
    while admin::keep_draining(read) {
        match stream.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            _ => return,
        }
    }
}

async fn run(env: &Env) -> Result<Response> {
    match crate::run::start(env, "admin").await? {
        StartOutcome::Started { run_id } => answer(
            202,
            &json!({"ok": true, "run_id": run_id, "status": "started"}),
        ),
        StartOutcome::AlreadyRunning { run_id } => answer(
            409,
            &json!({"ok": false, "run_id": run_id, "status": "already_running", "error": "a run is already in progress"}),
        ),
    }
}

/// End the running run, if any, as cancelled: its in-flight invocation
/// loses its lease-guarded writes and sends no continuation.
async fn cancel(env: &Env) -> Result<Response> {
    let platform = WorkerPlatform::from_env(env)?;
    let stmt = store::cancel_run("cancelled by an operator", contribot_edge::now_ms());
    let rows = contribot_edge::platform::run_batch(platform.db(), &[stmt])
        .await
        .map_err(worker::Error::RustError)?;
    let cancelled: Vec<store::RunIdRow> = rows
        .first()
        .map(|r| decode_rows(r).unwrap_or_default())
        .unwrap_or_default();
    match cancelled.first() {
        Some(run) => answer(
            200,
            &json!({"ok": true, "run_id": run.id, "status": "cancelled"}),
        ),
        None => answer(
            409,
            &json!({"ok": false, "status": "no_run", "error": "no run is in progress"}),
        ),
    }
}

async fn status(env: &Env, query: &[(String, String)]) -> Result<Response> {
    let q = match admin::parse_status_query(query) {
        Ok(q) => q,
        Err(e) => return refuse(&e),
    };
    let platform = WorkerPlatform::from_env(env)?;
    let now = contribot_edge::now_ms();
    let rows = contribot_edge::platform::run_batch(
        platform.db(),
        &admin::status_queries(q.runs, q.failed, now),
    )
    .await
    .map_err(worker::Error::RustError)?;
    answer(200, &admin::status_report(&rows, now))
}

/// An admin call that writes and queues: its id, log book and budget.
fn admin_invocation(env: &Env) -> (AdminInvocation, LogBook) {
    let inv = AdminInvocation {
        id: new_id("inv-"),
        run_id: new_id("admin-"),
        started_at: now_ms(),
    };
    let book = crate::run::log_book(env, &inv.run_id, &inv.id);
    (inv, book)
}

/// Write the invocation's log (its summary line is already in the book,
/// unless the workflow failed: then the error is the summary).
async fn close_log(
    env: &Env,
    p: &mut Metered<'_, WorkerPlatform>,
    inv: &AdminInvocation,
    book: &mut LogBook,
    failure: Option<&AdminError>,
) {
    if let Some(e) = failure {
        book.push_summary(
            p.now_ms(),
            json!({"outcome": "error", "status": e.status(), "error": e.to_string(), "subrequests_used": p.budget.used() + 1}),
        );
    }
    let bucket = env.bucket("LOGS").ok();
    logs::write_log(p, bucket.as_ref(), &inv.log_key(), book).await;
}

/// The answer names the invocation's run id: `GET /admin/logs?run=<run_id>`
/// finds its log.
fn with_run_id(mut body: Value, inv: &AdminInvocation) -> Value {
    body["run_id"] = json!(inv.run_id);
    body
}

async fn enqueue(env: &Env, body: &[u8]) -> Result<Response> {
    let request = match admin::parse_enqueue(body) {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    let (inv, mut book) = admin_invocation(env);
    let mut platform = WorkerPlatform::from_env(env)?;
    let mut p = Metered::new(&mut platform, crate::run::budget(env));
    let result = admin::enqueue::enqueue(&mut p, request, &inv, &mut book).await;
    close_log(env, &mut p, &inv, &mut book, result.as_ref().err()).await;
    match result {
        Ok(report) => answer(report.status(), &with_run_id(report.to_json(), &inv)),
        Err(e) => refuse(&e),
    }
}

async fn reprocess(env: &Env, body: &[u8]) -> Result<Response> {
    let target = match admin::parse_reprocess(body) {
        Ok(t) => t,
        Err(e) => return refuse(&e),
    };
    let (inv, mut book) = admin_invocation(env);
    let mut platform = WorkerPlatform::from_env(env)?;
    let mut p = Metered::new(&mut platform, crate::run::budget(env));
    let result = admin::reprocess::reprocess(&mut p, &target, &inv, &mut book).await;
    close_log(env, &mut p, &inv, &mut book, result.as_ref().err()).await;
    match result {
        Ok(report) => answer(report.status(), &with_run_id(report.to_json(), &inv)),
        Err(e) => refuse(&e),
    }
}

/// `GET /admin/logs`: one `application/x-ndjson` body; see
/// `contribot_core::admin::logs` for the filters, bounds and truncation line.
async fn read_logs(env: &Env, query: &[(String, String)]) -> Result<Response> {
    let query = match admin::parse_log_query(query) {
        Ok(q) => q,
        Err(e) => return refuse(&e),
    };
    let Ok(bucket) = env.bucket("LOGS") else {
        return refuse(&AdminError::Unavailable("no LOGS bucket is bound".into()));
    };
    let mut budget = crate::run::budget(env);
    let mut scan = LogScan::new(query);
    loop {
        let step = scan.next_step(budget.remaining());
        if step != LogStep::Done && budget.charge(Subrequest::R2).is_err() {
            break;
        }
        match step {
            LogStep::List {
                prefix,
                start_after,
                limit,
            } => match list(&bucket, prefix, start_after, limit).await {
                Ok((keys, truncated)) => scan.on_list(keys, truncated),
                Err(e) => return error(502, &format!("R2 list failed: {e}")),
            },
            LogStep::Get { key } => match read_object(&bucket, &key).await {
                Ok(text) => scan.on_object(text.as_deref()),
                Err(e) => return error(502, &format!("R2 read of {key} failed: {e}")),
            },
            LogStep::Done => break,
        }
    }
    let page = scan.finish();
    let headers = Headers::new();
    headers.set("content-type", "application/x-ndjson")?;
    if let Some(t) = &page.truncation {
        headers.set(admin::logs::TRUNCATED_HEADER, t.reason.as_str())?;
        if let Some(cursor) = &t.next_cursor {
            headers.set(admin::logs::NEXT_CURSOR_HEADER, &cursor.to_string())?;
        }
    }
    Ok(Response::ok(page.body)?.with_headers(headers))
}

async fn list(
    bucket: &Bucket,
    prefix: String,
    start_after: Option<String>,
    limit: u32,
) -> Result<(Vec<String>, bool)> {
    let mut request = bucket.list().prefix(prefix).limit(limit);
    if let Some(after) = start_after {
        request = request.start_after(after);
    }
    let listing = request.execute().await?;
    let keys = listing.objects().iter().map(|o| o.key()).collect();
    Ok((keys, listing.truncated()))
}

async fn read_object(bucket: &Bucket, key: &str) -> Result<Option<String>> {
    let Some(object) = bucket.get(key).execute().await? else {
        return Ok(None);
    };
    match object.body() {
        Some(body) => Ok(Some(body.text().await?)),
        None => Ok(None),
    }
}
