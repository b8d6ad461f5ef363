//! The public read API's decisions: routes, parameter validation, keyset
//! cursors, the SQL behind every read, the JSON it answers with, and the
//! caching that keeps repeated reads off D1.
//!
//! The scraper's `api` module only moves bytes: it hands the request's
//! method, path, query and `If-None-Match` to [`serve`], implements
//! [`ApiBackend`] over the Workers Cache API and D1, and writes the answer.
//!
//! - [`params`]: every query parameter of every route, validated; a bad one
//!   is a 400 that names it.
//! - [`cursor`]: opaque keyset cursors (`next_cursor`), checked on the way
//!   back in.
//! - [`reads`]: the statements and the response bodies. SQLite builds each
//!   item's JSON, so the worker moves one string per row.
//! - [`serve`]: the read workflow: data version, cache, D1, ETag, 304.
//!
//! Routes: `GET /api/issues`, `GET /api/repos`, `GET /api/repos/{owner}/{name}`,
//! `GET /api/facets`, `GET /api/openapi.yaml` (the contract, docs/openapi.yaml),
//! and the page: `GET /app` and `GET /app/app.js`. `HEAD` is answered as
//! `GET` without a body; `OPTIONS` is the CORS preflight.

pub mod cursor;
pub mod params;
pub mod reads;
pub mod serve;

pub use params::{Availability, IssueFilter, IssueQuery, IssueSort, RepoListQuery};
pub use serve::{serve, ApiAnswer, ApiBackend, ApiConfig, ApiRequest, Body, CachedAnswer};

use serde_json::json;

/// A static file the worker embeds; the shell supplies the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticAsset {
    /// `docs/openapi.yaml`.
    OpenApi,
    /// The page's HTML.
    PageHtml,
    /// The page's script.
    PageScript,
}

impl StaticAsset {
    pub fn content_type(self) -> &'static str {
        match self {
            StaticAsset::OpenApi => "application/yaml; charset=utf-8",
            StaticAsset::PageHtml => "text/html; charset=utf-8",
            StaticAsset::PageScript => "text/javascript; charset=utf-8",
        }
    }
}

/// A read route, before its parameters are parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRoute {
    Issues,
    Repos,
    /// `/api/repos/{owner}/{name}`, the segments as they came.
    Repo {
        owner: String,
        name: String,
    },
    Facets,
}

/// What a method and path are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Read(ReadRoute),
    Static(StaticAsset),
    /// `OPTIONS` on any path this module serves.
    Preflight,
    MethodNotAllowed,
    NotFound,
}

/// Every route, as (method, path template): what docs/openapi.yaml must
/// document, and what a test compares it with.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/issues"),
    ("GET", "/api/repos"),
    ("GET", "/api/repos/{owner}/{name}"),
    ("GET", "/api/facets"),
    ("GET", "/api/openapi.yaml"),
];

/// The methods every route takes, for `Allow` and the preflight.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Whether this module answers `path` (the shell's dispatch test).
pub fn serves(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/app" || path.starts_with("/app/")
}

/// Route a request by method and path (the path without its query).
pub fn route(method: &str, path: &str) -> Routing {
    let Some(target) = target_of(path) else {
        return Routing::NotFound;
    };
    match method {
        "GET" | "HEAD" => target,
        "OPTIONS" => Routing::Preflight,
        _ => Routing::MethodNotAllowed,
    }
}

fn target_of(path: &str) -> Option<Routing> {
    let routing = match path {
        "/api/issues" => Routing::Read(ReadRoute::Issues),
        "/api/repos" => Routing::Read(ReadRoute::Repos),
        "/api/facets" => Routing::Read(ReadRoute::Facets),
        "/api/openapi.yaml" => Routing::Static(StaticAsset::OpenApi),
        "/app" | "/app/" => Routing::Static(StaticAsset::PageHtml),
        "/app/app.js" => Routing::Static(StaticAsset::PageScript),
        _ => {
            let rest = path.strip_prefix("/api/repos/")?;
            let (owner, name) = rest.split_once('/')?;
            if name.contains('/') {
                return None;
            }
            Routing::Read(ReadRoute::Repo {
                owner: owner.to_string(),
                name: name.to_string(),
            })
        }
    };
    Some(routing)
}

/// Why a read was refused or failed. Each message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: one parameter is wrong; the message starts with its name.
    #[error("{parameter}: {message}")]
    BadParameter { parameter: String, message: String },
    /// 404: no such route.
    #[error("no such route: {path} (see /api/openapi.yaml)")]
    NoRoute { path: String },
    /// 404: the repo is not listed.
    #[error("no listed repo {slug}")]
    NoRepo { slug: String },
    /// 405: a method other than GET, HEAD or OPTIONS.
    #[error("{method} is not allowed here: the API is read-only ({ALLOWED_METHODS})")]
    MethodNotAllowed { method: String },
    /// 503: D1 failed or answered something unreadable.
    #[error("the database is unavailable, try again shortly: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::BadParameter {
            parameter: parameter.to_string(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadParameter { .. } => 400,
            ApiError::NoRoute { .. } | ApiError::NoRepo { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// `{"error": "...", "parameter": "..."}` (the parameter only for 400s).
    pub fn to_json(&self) -> String {
        match self {
            ApiError::BadParameter { parameter, .. } => {
                json!({"error": self.to_string(), "parameter": parameter}).to_string()
            }
            _ => json!({"error": self.to_string()}).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_route_on_get_and_head_only() {
        assert_eq!(
            route("GET", "/api/issues"),
            Routing::Read(ReadRoute::Issues)
        );
        assert_eq!(route("HEAD", "/api/repos"), Routing::Read(ReadRoute::Repos));
        assert_eq!(route("OPTIONS", "/api/issues"), Routing::Preflight);
        assert_eq!(route("POST", "/api/issues"), Routing::MethodNotAllowed);
        assert_eq!(route("DELETE", "/app"), Routing::MethodNotAllowed);
    }

    #[test]
    fn repo_route_takes_exactly_two_segments() {
        assert_eq!(
            route("GET", "/api/repos/rust-lang/rust"),
            Routing::Read(ReadRoute::Repo {
                owner: "rust-lang".into(),
                name: "rust".into()
            })
        );
        assert_eq!(route("GET", "/api/repos/rust-lang"), Routing::NotFound);
        assert_eq!(route("GET", "/api/repos/a/b/c"), Routing::NotFound);
        assert_eq!(route("GET", "/api/issues/"), Routing::NotFound);
        assert_eq!(route("OPTIONS", "/api/nothing"), Routing::NotFound);
    }

    #[test]
    fn the_page_and_its_script_are_static() {
        assert_eq!(route("GET", "/app"), Routing::Static(StaticAsset::PageHtml));
        assert_eq!(
            route("GET", "/app/"),
            Routing::Static(StaticAsset::PageHtml)
        );
        assert_eq!(
            route("GET", "/app/app.js"),
            Routing::Static(StaticAsset::PageScript)
        );
        assert_eq!(
            route("GET", "/api/openapi.yaml"),
            Routing::Static(StaticAsset::OpenApi)
        );
    }

    #[test]
    fn dispatch_takes_api_and_app_paths_and_leaves_the_rest() {
        for path in ["/api", "/api/issues", "/api/x", "/app", "/app/app.js"] {
            assert!(serves(path), "{path}");
        }
        for path in ["/", "/health", "/admin/run", "/apis", "/application"] {
            assert!(!serves(path), "{path}");
        }
    }

    #[test]
    fn a_bad_parameter_answers_400_naming_it() {
        let e = ApiError::bad("limit", "must be an integer from 1 to 100, got \"0\"");
        assert_eq!(e.status(), 400);
        let body: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(body["parameter"], "limit");
        assert_eq!(
            body["error"],
            "limit: must be an integer from 1 to 100, got \"0\""
        );
    }
}
