//! The operator surface's decisions: bearer-token auth in constant time,
//! request limits, and the status report's queries.

use serde::Deserialize;

use crate::sql::Statement;

/// The largest admin request body accepted.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// The verdict on an admin request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Allowed,
    /// 401: the header is missing or the token is wrong.
    Unauthorized,
    /// 503: no `ADMIN_TOKEN` is configured, so the admin API is off.
    Disabled,
}

impl AuthVerdict {
    pub fn status(self) -> u16 {
        match self {
            AuthVerdict::Allowed => 200,
            AuthVerdict::Unauthorized => 401,
            AuthVerdict::Disabled => 503,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthVerdict::Allowed => "ok",
            AuthVerdict::Unauthorized => "missing or wrong bearer token: check ADMIN_TOKEN",
            AuthVerdict::Disabled => "admin API disabled: no ADMIN_TOKEN secret is configured",
        }
    }
}

/// Check `Authorization: Bearer <token>` against the configured token.
pub fn authorize(header: Option<&str>, configured: Option<&str>) -> AuthVerdict {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return AuthVerdict::Disabled;
    };
    let presented = header
        .and_then(|h| {
            h.trim()
                .strip_prefix("Bearer ")
                .or_else(|| h.trim().strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        AuthVerdict::Allowed
    } else {
        AuthVerdict::Unauthorized
    }
}

/// Compare without an early exit on the first differing byte. The length
/// is not secret (a token's length is fixed by whoever made it).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The status report's queries, as one D1 batch.
pub fn status_queries(runs: usize, failed: usize) -> Vec<Statement> {
    vec![
        Statement::new(
            "SELECT processing_status AS status, COUNT(*) AS n FROM repos WHERE active = 1 GROUP BY processing_status",
            vec![],
        ),
        Statement::new(
            "SELECT processing_status AS status, COUNT(*) AS n FROM issues WHERE state = 'open' GROUP BY processing_status",
            vec![],
        ),
        Statement::new(
            "SELECT id, trigger, started_at, finished_at, status, invocations, continuations, repos_seen, \
             repos_changed, repos_skipped, issues_upserted, issues_closed, messages_queued, subrequests_used, \
             max_subrequests, github_requests, graphql_points, outcome, error \
             FROM scrape_runs ORDER BY started_at DESC LIMIT ?1",
            vec![(runs as i64).into()],
        ),
        Statement::new(
            "SELECT 'repo' AS kind, owner || '/' || name AS item, attempts, last_error, processed_at FROM repos \
             WHERE processing_status = 'failed' \
             UNION ALL \
             SELECT 'issue', r.owner || '/' || r.name || '#' || i.number, i.attempts, i.last_error, i.processed_at \
             FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.processing_status = 'failed' \
             UNION ALL \
             SELECT 'message', queue || ':' || message_id, attempts, reason, received_at FROM dead_letters \
             ORDER BY processed_at DESC LIMIT ?1",
            vec![(failed as i64).into()],
        ),
        Statement::new(
            "SELECT owner || '/' || name AS repo, listed_labels FROM repos \
             WHERE active = 1 AND label_status = 'not_found' ORDER BY owner, name",
            vec![],
        ),
        Statement::new(
            "SELECT \
               (SELECT COUNT(*) FROM repos WHERE active = 1 AND processing_status IN ('pending', 'processing')) AS repos, \
               (SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status IN ('pending', 'processing')) AS issues, \
               (SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND queued_hash IS NOT content_hash \
                  AND processing_status IN ('pending', 'failed')) \
               + (SELECT COUNT(*) FROM issues WHERE state = 'open' AND queued_hash IS NOT content_hash \
                  AND processing_status IN ('pending', 'failed')) AS unqueued",
            vec![],
        ),
        Statement::new(
            "SELECT service, COUNT(*) AS invocations, MAX(subrequests) AS max_subrequests, \
             AVG(subrequests) AS mean_subrequests FROM invocations GROUP BY service",
            vec![],
        ),
    ]
}

/// One row of a `GROUP BY status` count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub n: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_distinguishes_missing_wrong_and_disabled() {
        assert_eq!(
            authorize(Some("Bearer s3cret-token"), Some("s3cret-token")),
            AuthVerdict::Allowed
        );
        assert_eq!(
            authorize(Some("Bearer nope"), Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(
            authorize(None, Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(
            authorize(Some("s3cret-token"), Some("s3cret-token")),
            AuthVerdict::Unauthorized
        );
        assert_eq!(authorize(Some("Bearer x"), None), AuthVerdict::Disabled);
        assert_eq!(authorize(Some("Bearer "), Some("")), AuthVerdict::Disabled);
    }

    #[test]
    fn constant_time_eq_matches_plain_equality() {
        for (a, b) in [
            ("", ""),
            ("a", ""),
            ("abc", "abc"),
            ("abc", "abd"),
            ("abc", "abcd"),
        ] {
            assert_eq!(constant_time_eq(a.as_bytes(), b.as_bytes()), a == b);
        }
    }
}
