//! The admin API over HTTP, one blocking request at a time, and the mapping
//! from what came back to an [`ApiError`] an operator can act on.
//!
//! The mapping itself ([`json_reply`], [`text_reply`]) is a pure function of
//! status and body, so it is tested without a server.

use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::Value;

/// The header the logs route sets, to the reason, when a bound cut its
/// answer short.
pub const TRUNCATED_HEADER: &str = "x-contribot-truncated";
/// The header the logs route sets, to the cursor to continue from, on a
/// truncated answer that can be continued.
pub const NEXT_CURSOR_HEADER: &str = "x-contribot-next-cursor";

/// How long one request may take before it counts as a connection problem.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How many bytes of an unexpected body an error message quotes.
const SNIPPET_BYTES: usize = 200;

/// Why a request to the admin API did not give the caller what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 401: the token is missing or not the worker's.
    #[error("unauthorized: check ADMIN_TOKEN (the token the scraper was deployed with)")]
    Unauthorized,
    /// 503 naming ADMIN_TOKEN: the worker has no token, so it refuses every
    /// admin request. (Other 503s — a missing binding, no budget left — are
    /// [`ApiError::Api`] with the API's message.)
    #[error(
        "the admin API is disabled: no ADMIN_TOKEN secret is set on the scraper worker \
         (set one with `wrangler secret put ADMIN_TOKEN --config wrangler-scraper.toml` \
         and pass the same value here)"
    )]
    Disabled,
    /// Nothing answered at that address, or the connection failed midway.
    #[error("cannot reach the admin API at {url}: {reason}; check --url / CONTRIBOT_URL")]
    Unreachable { url: String, reason: String },
    /// Something answered, but not with JSON: probably not the scraper.
    #[error(
        "HTTP {status} from {url} is not JSON (is --url / CONTRIBOT_URL the scraper?): {snippet}"
    )]
    NotJson {
        url: String,
        status: u16,
        snippet: String,
    },
    /// The API answered with an error of its own (400, 404, 405, 409, 413, 5xx).
    #[error("HTTP {status} from {url}: {message}")]
    Api {
        url: String,
        status: u16,
        message: String,
    },
}

impl ApiError {
    /// 3 for connection problems, 1 for everything the API said.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApiError::Unreachable { .. } => 3,
            _ => 1,
        }
    }
}

/// The first bytes of a body, on one line, for an error message.
pub fn snippet(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "(empty body)".to_string();
    }
    let cut = body.len() > SNIPPET_BYTES;
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_BYTES)]);
    let mut one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if cut {
        one_line.push('…');
    }
    format!("{one_line:?}")
}

/// What a JSON answer means. `accept` lists the non-2xx statuses whose
/// JSON body the caller wants anyway (409 from `/admin/run`).
pub fn json_reply(url: &str, status: u16, body: &[u8], accept: &[u16]) -> Result<Value, ApiError> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    match (status, parsed) {
        (401, _) => Err(ApiError::Unauthorized),
        (503, Some(value)) if names_admin_token(&value) => Err(ApiError::Disabled),
        (_, None) => Err(ApiError::NotJson {
            url: url.to_string(),
            status,
            snippet: snippet(body),
        }),
        (s, Some(value)) if (200..300).contains(&s) || accept.contains(&s) => Ok(value),
        (s, Some(value)) => Err(ApiError::Api {
            url: url.to_string(),
            status: s,
            message: api_message(s, &value),
        }),
    }
}

fn names_admin_token(body: &Value) -> bool {
    body.get("error")
        .and_then(Value::as_str)
        .is_some_and(|e| e.contains("ADMIN_TOKEN"))
}

/// What a text answer (NDJSON logs) means: errors come as JSON, like every
/// other route; a 2xx body whose first line is not JSON is not the API's.
pub fn text_reply(url: &str, status: u16, body: &[u8]) -> Result<String, ApiError> {
    if !(200..300).contains(&status) {
        return json_reply(url, status, body, &[]).map(|v| v.to_string());
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if serde_json::from_str::<Value>(line).is_err() => Err(ApiError::NotJson {
            url: url.to_string(),
            status,
            snippet: snippet(body),
        }),
        _ => Ok(text),
    }
}

/// The API's own words for an error, with a hint where one helps.
fn api_message(status: u16, body: &Value) -> String {
    let said = body
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    match status {
        404 if said.contains("no such admin route") => {
            format!("{said} (the deployed scraper may be older than this ops binary: redeploy it)")
        }
        413 => format!("{said} (send fewer items per request)"),
        _ => said,
    }
}

/// A text answer and the truncation headers, if the route set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextReply {
    pub text: String,
    pub truncated_header: Option<String>,
    pub next_cursor_header: Option<String>,
}

/// Check a `--url` value: an absolute http(s) URL.
pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    if !raw.contains("://") {
        return Err(format!(
            "--url / CONTRIBOT_URL {raw:?} has no scheme; did you mean http://{}?",
            raw.trim()
        ));
    }
    let url = Url::parse(raw.trim()).map_err(|e| {
        format!("--url / CONTRIBOT_URL {raw:?} is not a URL ({e}); expected e.g. https://contribot-scraper.example.workers.dev")
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "--url / CONTRIBOT_URL {raw:?} has scheme {other:?}; expected http or https"
        )),
    }
}

/// An authenticated client of one scraper's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: Client,
    base: Url,
    token: String,
}

impl AdminClient {
    pub fn new(base: Url, token: &str) -> Result<Self, ApiError> {
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("contribot-ops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: base.to_string(),
                reason: format!("cannot set up the HTTP client: {}", root_cause(&e)),
            })?;
        Ok(AdminClient {
            http,
            base,
            token: token.to_string(),
        })
    }

    /// `path` (e.g. `/admin/status`) under the base URL, with a query.
    pub fn endpoint(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}{}",
            self.base.path().trim_end_matches('/'),
            path
        ));
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// GET a JSON route.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let url = self.endpoint(path, query);
        let (status, reply) = self.send(Method::GET, &url, None)?;
        json_reply(url.as_str(), status, &reply.body, &[])
    }

    /// POST JSON to a route; returns the status with the body so callers
    /// that `accept` a non-2xx status can tell which they got.
    pub fn post_json(
        &self,
        path: &str,
        body: &Value,
        accept: &[u16],
    ) -> Result<(u16, Value), ApiError> {
        let url = self.endpoint(path, &[]);
        let (status, reply) = self.send(Method::POST, &url, Some(body))?;
        json_reply(url.as_str(), status, &reply.body, accept).map(|v| (status, v))
    }

    /// GET a text route (the NDJSON logs).
    pub fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<TextReply, ApiError> {
        let url = self.endpoint(path, query);
        let (status, raw) = self.send(Method::GET, &url, None)?;
        let text = text_reply(url.as_str(), status, &raw.body)?;
        Ok(TextReply {
            text,
            truncated_header: raw.header(TRUNCATED_HEADER),
            next_cursor_header: raw.header(NEXT_CURSOR_HEADER),
        })
    }

    fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(u16, RawReply), ApiError> {
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token)
            .header(ACCEPT, "application/json, application/x-ndjson");
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let unreachable = |e: reqwest::Error| ApiError::Unreachable {
            url: url.to_string(),
            reason: if e.is_timeout() {
                format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
            } else {
                root_cause(&e)
            },
        };
        let response = request.send().map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().map_err(unreachable)?.to_vec();
        Ok((status, RawReply { headers, body }))
    }
}

struct RawReply {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"),
/// which says more than reqwest's "error sending request".
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
