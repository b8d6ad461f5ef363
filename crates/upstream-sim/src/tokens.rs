//! Token revocation: a GitHub token can be revoked now or after N more
//! requests, after which every GitHub route (GraphQL and REST) answers 401
//! `Bad credentials`, as GitHub does for a revoked or expired token.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::faults::RouteClass;
use crate::ratelimit::{wall_clock_secs, Resource, Window};

/// The body of `POST /_sim/tokens/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRevocation {
    pub token: String,
    /// Requests the token still serves before it is revoked (0: now).
    #[serde(default)]
    pub after_requests: u64,
}

/// What `GET /_sim/tokens` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBoard {
    /// Tokens that answer 401 on every GitHub route.
    pub revoked: Vec<String>,
    /// Tokens due to be revoked: requests they still serve.
    pub pending: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Tokens {
    board: TokenBoard,
}

impl Tokens {
    pub(crate) fn revoke(&mut self, r: &TokenRevocation) {
        self.board.pending.remove(&r.token);
        self.board.revoked.retain(|t| t != &r.token);
        if r.after_requests == 0 {
            self.board.revoked.push(r.token.clone());
        } else {
            self.board.pending.insert(r.token.clone(), r.after_requests);
        }
    }

    pub(crate) fn restore(&mut self, token: &str) {
        self.board.pending.remove(token);
        self.board.revoked.retain(|t| t != token);
    }

    pub(crate) fn board(&self) -> &TokenBoard {
        &self.board
    }

    /// Counts one request by `token`; false when the token is revoked.
    pub(crate) fn admit(&mut self, token: &str) -> bool {
        if self.board.revoked.iter().any(|t| t == token) {
            return false;
        }
        if let Some(left) = self.board.pending.get_mut(token) {
            *left -= 1;
            if *left == 0 {
                self.board.pending.remove(token);
                self.board.revoked.push(token.to_string());
            }
        }
        true
    }
}

/// GitHub's answer to a revoked token. GraphQL's body names the GraphQL
/// docs and carries an empty graphql window (`x-ratelimit-limit: 0`), as
/// api.github.com answers; REST's names the REST docs with `status`.
pub(crate) fn bad_credentials(class: RouteClass, core: Window) -> Response<Body> {
    let (body, window, resource) = match class {
        RouteClass::Graphql => (
            serde_json::json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/graphql"
            }),
            Window {
                limit: 0,
                used: 0,
                reset: wall_clock_secs() + 3_600,
            },
            Resource::Graphql,
        ),
        _ => (
            serde_json::json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401"
            }),
            core,
            Resource::Core,
        ),
    };
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    window.write_headers(resource, resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_revoked_after_two_requests_serves_exactly_two() {
        let mut t = Tokens::default();
        t.revoke(&TokenRevocation {
            token: "a".into(),
            after_requests: 2,
        });
        let served: Vec<bool> = (0..4).map(|_| t.admit("a")).collect();
        assert_eq!(served, [true, true, false, false]);
        assert!(t.admit("b"));
        t.restore("a");
        assert!(t.admit("a"));
    }
}
