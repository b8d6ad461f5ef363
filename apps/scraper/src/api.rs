//! The public read API and the page: a thin shell over
//! `contribot_core::api`, which routes, validates, plans every statement,
//! shapes every answer and decides what is cached. Here: read the request,
//! implement the core's backend over the Workers Cache API and D1, write
//! the answer. A cached answer's body is passed through as a stream, never
//! copied into wasm.

use contribot_core::api::{
    self, ApiAnswer, ApiBackend, ApiConfig, ApiRequest, Body, CachedAnswer, StaticAsset,
};
use contribot_core::sql::Statement;
use contribot_edge::config;
use serde_json::Value;
use worker::{Cache, D1Database, Env, Headers, Request, Response, ResponseBody, Result};

const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");
const PAGE_HTML: &str = include_str!("../static/index.html");
const PAGE_SCRIPT: &str = include_str!("../static/app.js");

/// Whether `path` is the API's or the page's (the fetch handler's dispatch).
pub fn serves(path: &str) -> bool {
    api::serves(path)
}

pub async fn route(req: Request, env: &Env) -> Result<Response> {
    let url = req.url()?;
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let headers = req.headers();
    let if_none_match = headers.get("if-none-match")?;
    let request_headers = headers.get("access-control-request-headers")?;
    let method = req.method();
    let request = ApiRequest {
        method: method.as_ref(),
        path: url.path(),
        query: &query,
        if_none_match: if_none_match.as_deref(),
        request_headers: request_headers.as_deref(),
    };
    let api_config = ApiConfig::from_vars(
        config::var(env, "API_MAX_AGE_SECONDS").as_deref(),
        config::var(env, "API_VERSION_TTL_SECONDS").as_deref(),
    );
    let mut edge = Edge {
        cache: Cache::default(),
        db: env.d1("DB").ok(),
    };
    let answer = api::serve(&mut edge, &request, &api_config).await;
    respond(answer)
}

fn respond(answer: ApiAnswer<ResponseBody>) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.set(name, value)?;
    }
    let body = match answer.body {
        Body::Empty => ResponseBody::Empty,
        Body::Text(text) => ResponseBody::Body(text.into_bytes()),
        Body::Cached(body) => body,
        Body::Static(asset) => ResponseBody::Body(static_bytes(asset).as_bytes().to_vec()),
    };
    Ok(Response::from_body(body)?
        .with_status(answer.status)
        .with_headers(headers))
}

fn static_bytes(asset: StaticAsset) -> &'static str {
    match asset {
        StaticAsset::OpenApi => OPENAPI,
        StaticAsset::PageHtml => PAGE_HTML,
        StaticAsset::PageScript => PAGE_SCRIPT,
    }
}

/// The Workers Cache (this data centre's) and D1. A cache that fails is a
/// miss or a put not made: the answer is then read from D1.
struct Edge {
    cache: Cache,
    db: Option<D1Database>,
}

fn stored(body: ResponseBody, status: u16, etag: Option<&str>, ttl_secs: u32) -> Result<Response> {
    let headers = Headers::new();
    headers.set("cache-control", &format!("public, max-age={ttl_secs}"))?;
    if let Some(etag) = etag {
        headers.set("etag", etag)?;
    }
    Ok(Response::from_body(body)?
        .with_status(status)
        .with_headers(headers))
}

impl ApiBackend for Edge {
    type Body = ResponseBody;

    async fn cached_text(&mut self, key: &str) -> Option<String> {
        let mut hit = self.cache.get(key, false).await.ok()??;
        hit.text().await.ok()
    }

    async fn store_text(&mut self, key: &str, text: &str, ttl_secs: u32) {
        let body = ResponseBody::Body(text.as_bytes().to_vec());
        if let Ok(response) = stored(body, 200, None, ttl_secs) {
            let _ = self.cache.put(key, response).await;
        }
    }

    async fn cached_answer(&mut self, key: &str) -> Option<CachedAnswer<ResponseBody>> {
        let hit = self.cache.get(key, false).await.ok()??;
        let etag = hit.headers().get("etag").ok()??;
        Some(CachedAnswer {
            status: hit.status_code(),
            etag,
            body: hit.body().clone(),
        })
    }

    async fn store_answer(
        &mut self,
        key: &str,
        status: u16,
        etag: &str,
        body: &str,
        ttl_secs: u32,
    ) {
        let body = ResponseBody::Body(body.as_bytes().to_vec());
        if let Ok(response) = stored(body, status, Some(etag), ttl_secs) {
            let _ = self.cache.put(key, response).await;
        }
    }

    async fn query(
        &mut self,
        statements: &[Statement],
    ) -> std::result::Result<Vec<Vec<Value>>, String> {
        let db = self.db.as_ref().ok_or("no DB binding")?;
        contribot_edge::platform::run_batch(db, statements).await
    }
}
