//! The read workflow, and why repeated reads cost D1 nothing.
//!
//! Every answer is cached (Workers Cache API) under a key made of the
//! **data version** and the read's canonical path. The data version is
//! `MAX(updated_at)` of issues and repos: every write the scraper or the
//! processor makes sets `updated_at`, so any change to what the API shows
//! changes it. The version itself is cached for [`ApiConfig::version_ttl_secs`]:
//!
//! 1. version: from the cache; on a miss, one indexed D1 query (two index
//!    lookups), cached for `version_ttl_secs`;
//! 2. answer: from the cache under (version, canonical read); on a miss, one
//!    D1 batch, then cached.
//!
//! So a repeated read costs **0** D1 queries while the version is cached,
//! and one version probe per `version_ttl_secs` per data centre after that,
//! however many requests arrive; the page's rows are read again only when
//! the data changed. Writers do nothing for this (no cache call is charged
//! to the scraper's or the processor's budget); a run's changes show within
//! `version_ttl_secs`.
//!
//! The ETag is a hash of the body, so an unchanged page keeps its ETag
//! across data versions; `If-None-Match` gets a 304 from a cached answer
//! without reading its body.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::reads::{Read, Rendered};
use super::{route, ApiError, Routing, StaticAsset, ALLOWED_METHODS};
use crate::sql::Statement;

/// Where cache entries live: a host of our own, so keys never collide with
/// a real URL of the zone. Bump the `v1` when an answer's shape changes.
pub const CACHE_ORIGIN: &str = "https://api-cache.contribot.invalid/v1";

/// The cache key of the data version.
pub fn version_key() -> String {
    format!("{CACHE_ORIGIN}/data-version")
}

/// The cache key of a read's answer at a data version.
pub fn answer_key(version: &str, cache_path: &str) -> String {
    format!("{CACHE_ORIGIN}/{version}{cache_path}")
}

/// How long cached things live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// `Cache-Control: max-age` for browsers and shared caches.
    pub max_age_secs: u32,
    /// How long a data centre trusts its cached data version.
    pub version_ttl_secs: u32,
    /// How long an answer stays cached under its version (a newer version
    /// makes it unreachable; this only bounds its storage).
    pub answer_ttl_secs: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_age_secs: 60,
            version_ttl_secs: 60,
            answer_ttl_secs: 86_400,
        }
    }
}

impl ApiConfig {
    /// From the worker's vars (`API_MAX_AGE_SECONDS`, `API_VERSION_TTL_SECONDS`),
    /// each clamped to 1..=86400; unset or unparsable means the default.
    pub fn from_vars(max_age: Option<&str>, version_ttl: Option<&str>) -> Self {
        let d = ApiConfig::default();
        let secs = |v: Option<&str>, default: u32| {
            v.and_then(|s| s.trim().parse::<u32>().ok())
                .map_or(default, |n| n.clamp(1, 86_400))
        };
        ApiConfig {
            max_age_secs: secs(max_age, d.max_age_secs),
            version_ttl_secs: secs(version_ttl, d.version_ttl_secs),
            answer_ttl_secs: d.answer_ttl_secs,
        }
    }
}

/// A request, as the shell read it.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    /// Decoded query pairs, in order.
    pub query: &'a [(String, String)],
    pub if_none_match: Option<&'a str>,
    /// `Access-Control-Request-Headers` of a preflight.
    pub request_headers: Option<&'a str>,
}

/// An answer found in the cache; `body` is the shell's handle on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer<B> {
    pub status: u16,
    pub etag: String,
    pub body: B,
}

/// The body of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<B> {
    Empty,
    Text(String),
    /// A cached answer's body, passed through untouched.
    Cached(B),
    Static(StaticAsset),
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAnswer<B> {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<B>,
    /// D1 statements this request ran (also sent as `X-Contribot-D1-Queries`).
    pub d1_queries: usize,
}

/// The I/O a read needs: the cache and D1. Cache failures are the
/// backend's to swallow (a miss, a put not made): the cache only saves work.
#[allow(async_fn_in_trait)]
pub trait ApiBackend {
    type Body;
    async fn cached_text(&mut self, key: &str) -> Option<String>;
    async fn store_text(&mut self, key: &str, text: &str, ttl_secs: u32);
    async fn cached_answer(&mut self, key: &str) -> Option<CachedAnswer<Self::Body>>;
    async fn store_answer(&mut self, key: &str, status: u16, etag: &str, body: &str, ttl_secs: u32);
    /// One D1 batch; rows per statement.
    async fn query(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String>;
}

/// Answer one request.
pub async fn serve<B: ApiBackend>(
    backend: &mut B,
    req: &ApiRequest<'_>,
    config: &ApiConfig,
) -> ApiAnswer<B::Body> {
    let head = req.method == "HEAD";
    match route(req.method, req.path) {
        Routing::Read(read) => match Read::parse(&read, req.query) {
            Ok(read) => cached_read(backend, req, config, &read).await,
            Err(e) => refuse(&e, head),
        },
        Routing::Static(asset) => static_answer(asset, req, config),
        Routing::Preflight => preflight(req.request_headers),
        Routing::MethodNotAllowed => {
            let mut answer = refuse(
                &ApiError::MethodNotAllowed {
                    method: req.method.to_string(),
                },
                false,
            );
            answer.headers.push(("allow", ALLOWED_METHODS.to_string()));
            answer
        }
        Routing::NotFound => refuse(
            &ApiError::NoRoute {
                path: req.path.to_string(),
            },
            head,
        ),
    }
}

async fn cached_read<B: ApiBackend>(
    backend: &mut B,
    req: &ApiRequest<'_>,
    config: &ApiConfig,
    read: &Read,
) -> ApiAnswer<B::Body> {
    let mut queries = 0;
    let version = match backend.cached_text(&version_key()).await {
        Some(v) => v,
        None => {
            queries += 1;
            match read_version(backend).await {
                Ok(v) => {
                    backend
                        .store_text(&version_key(), &v, config.version_ttl_secs)
                        .await;
                    v
                }
                Err(e) => return counted(refuse(&e, false), queries),
            }
        }
    };
    let key = answer_key(&version, &read.cache_path());
    if let Some(hit) = backend.cached_answer(&key).await {
        let answer = conditional(
            req,
            config,
            hit.status,
            hit.etag,
            Body::Cached(hit.body),
            "hit",
        );
        return counted(answer, queries);
    }
    let statements = read.statements();
    queries += statements.len();
    let rendered = match backend.query(&statements).await {
        Ok(rows) => read.render(&rows),
        Err(e) => Err(ApiError::Unavailable(e)),
    };
    let Rendered { status, body } = match rendered {
        Ok(r) => r,
        Err(e) => return counted(refuse(&e, false), queries),
    };
    let etag = etag_of(&body);
    backend
        .store_answer(&key, status, &etag, &body, config.answer_ttl_secs)
        .await;
    counted(
        conditional(req, config, status, etag, Body::Text(body), "miss"),
        queries,
    )
}

/// The data version: `MAX(updated_at)` of issues and of repos.
pub fn version_statement() -> Statement {
    Statement::new(
        "SELECT COALESCE((SELECT MAX(updated_at) FROM issues), 0) AS issues, \
         COALESCE((SELECT MAX(updated_at) FROM repos), 0) AS repos",
        vec![],
    )
}

async fn read_version<B: ApiBackend>(backend: &mut B) -> Result<String, ApiError> {
    let rows = backend
        .query(&[version_statement()])
        .await
        .map_err(ApiError::Unavailable)?;
    let row = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| ApiError::Unavailable("the version query returned no row".into()))?;
    let part = |column: &str| {
        row.get(column).and_then(Value::as_i64).ok_or_else(|| {
            ApiError::Unavailable(format!("version column {column} is not an integer"))
        })
    };
    Ok(format!("{}-{}", part("issues")?, part("repos")?))
}

/// `"<32 hex>"`: the first 128 bits of the body's SHA-256.
pub fn etag_of(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110
/// asks for `If-None-Match`; `*` matches any).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else {
        return false;
    };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    header
        .split(',')
        .any(|candidate| candidate.trim() == "*" || strip(candidate) == want)
}

fn cors(headers: &mut Vec<(&'static str, String)>) {
    headers.push(("access-control-allow-origin", "*".into()));
    headers.push((
        "access-control-expose-headers",
        "ETag, X-Contribot-Cache, X-Contribot-D1-Queries".into(),
    ));
}

/// A 200/404 answer, or a 304 when the client has it already.
fn conditional<B>(
    req: &ApiRequest<'_>,
    config: &ApiConfig,
    status: u16,
    etag: String,
    body: Body<B>,
    cache: &str,
) -> ApiAnswer<B> {
    let mut headers = Vec::new();
    cors(&mut headers);
    headers.push((
        "cache-control",
        format!("public, max-age={}", config.max_age_secs),
    ));
    headers.push(("x-contribot-cache", cache.to_string()));
    let not_modified = none_match(req.if_none_match, &etag);
    headers.push(("etag", etag));
    if not_modified {
        return ApiAnswer {
            status: 304,
            headers,
            body: Body::Empty,
            d1_queries: 0,
        };
    }
    headers.push(("content-type", "application/json; charset=utf-8".into()));
    ApiAnswer {
        status,
        headers,
        body: if req.method == "HEAD" {
            Body::Empty
        } else {
            body
        },
        d1_queries: 0,
    }
}

fn counted<B>(mut answer: ApiAnswer<B>, queries: usize) -> ApiAnswer<B> {
    answer.d1_queries = queries;
    answer
        .headers
        .push(("x-contribot-d1-queries", queries.to_string()));
    answer
}

/// An error answer: JSON, never cached by clients.
fn refuse<B>(e: &ApiError, head: bool) -> ApiAnswer<B> {
    let mut headers = Vec::new();
    cors(&mut headers);
    headers.push(("cache-control", "no-store".into()));
    headers.push(("content-type", "application/json; charset=utf-8".into()));
    if let ApiError::Unavailable(_) = e {
        headers.push(("retry-after", "30".into()));
    }
    ApiAnswer {
        status: e.status(),
        headers,
        body: if head {
            Body::Empty
        } else {
            Body::Text(e.to_json())
        },
        d1_queries: 0,
    }
}

/// The page's files and the contract: no D1, no cache entry of ours.
/// They take no parameters (the page keeps its filters in the query, for
/// its script to read), so only the contract refuses a query.
fn static_answer<B>(asset: StaticAsset, req: &ApiRequest<'_>, config: &ApiConfig) -> ApiAnswer<B> {
    let head = req.method == "HEAD";
    if asset == StaticAsset::OpenApi {
        if let Some((name, _)) = req.query.first() {
            let e = ApiError::bad(
                name,
                "unknown parameter; /api/openapi.yaml takes no parameters",
            );
            return refuse(&e, head);
        }
    }
    let mut headers = Vec::new();
    cors(&mut headers);
    headers.push(("content-type", asset.content_type().into()));
    headers.push((
        "cache-control",
        format!("public, max-age={}", config.max_age_secs),
    ));
    if asset == StaticAsset::PageHtml {
        headers.push(("content-security-policy", PAGE_CSP.into()));
        headers.push(("x-content-type-options", "nosniff".into()));
        headers.push(("referrer-policy", "no-referrer".into()));
    }
    ApiAnswer {
        status: 200,
        headers,
        body: if head {
            Body::Empty
        } else {
            Body::Static(asset)
        },
        d1_queries: 0,
    }
}

/// The page loads only its own script and talks only to this origin.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `OPTIONS`: any origin may read, with any request headers it names
/// (each a header token; the list is echoed back, bounded).
fn preflight<B>(requested: Option<&str>) -> ApiAnswer<B> {
    let mut headers = Vec::new();
    cors(&mut headers);
    headers.push(("access-control-allow-methods", ALLOWED_METHODS.into()));
    let allowed = requested
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 500
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(&b))
        })
        .unwrap_or("If-None-Match, Content-Type");
    headers.push(("access-control-allow-headers", allowed.to_string()));
    headers.push(("access-control-max-age", "86400".into()));
    headers.push(("cache-control", "public, max-age=86400".into()));
    ApiAnswer {
        status: 204,
        headers,
        body: Body::Empty,
        d1_queries: 0,
    }
}

impl<B> ApiAnswer<B> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let etag = "\"abc\"";
        assert!(none_match(Some("\"abc\""), etag));
        assert!(none_match(Some("W/\"abc\""), etag));
        assert!(none_match(Some("\"x\", \"abc\""), etag));
        assert!(none_match(Some("*"), etag));
        assert!(!none_match(Some("\"abd\""), etag));
        assert!(!none_match(Some("abc"), etag));
        assert!(!none_match(None, etag));
    }

    #[test]
    fn the_etag_follows_the_body() {
        assert_eq!(etag_of("{}"), etag_of("{}"));
        assert_ne!(etag_of("{}"), etag_of("[]"));
        assert_eq!(etag_of("{}").len(), 34);
    }

    #[test]
    fn config_vars_are_clamped_and_default_when_unusable() {
        let c = ApiConfig::from_vars(Some("0"), Some("junk"));
        assert_eq!(c.max_age_secs, 1);
        assert_eq!(c.version_ttl_secs, ApiConfig::default().version_ttl_secs);
        let c = ApiConfig::from_vars(Some("999999"), Some(" 5 "));
        assert_eq!((c.max_age_secs, c.version_ttl_secs), (86_400, 5));
    }
}
