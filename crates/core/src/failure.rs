//! Failure classification: transient (retry), rate-limited (wait), or
//! permanent (record). Every upstream answer goes through here so the
//! scraper and the processor treat the same failure the same way.

use serde::Serialize;

/// What a failure means for the work that hit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Failure {
    /// Worth retrying: network, 5xx, truncated bodies, 429/secondary limits.
    Transient {
        reason: String,
        retry_after_secs: Option<u64>,
    },
    /// The primary rate limit is spent until `reset_epoch_secs`.
    RateLimited {
        reason: String,
        reset_epoch_secs: Option<u64>,
    },
    /// Retrying cannot help: gone, forbidden, invalid.
    Permanent { reason: String },
    /// The invocation's subrequest budget is spent: continue elsewhere.
    Budget { reason: String },
}

impl Failure {
    pub fn transient(reason: impl Into<String>) -> Self {
        Failure::Transient {
            reason: reason.into(),
            retry_after_secs: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Failure::Permanent {
            reason: reason.into(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient { reason, .. }
            | Failure::RateLimited { reason, .. }
            | Failure::Permanent { reason }
            | Failure::Budget { reason } => reason,
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self, Failure::Permanent { .. })
    }

    /// Seconds to wait before retrying, given the current time.
    pub fn delay_secs(&self, now_epoch_secs: u64, attempt: u32) -> u64 {
        match self {
            Failure::Transient {
                retry_after_secs: Some(s),
                ..
            } => *s,
            Failure::RateLimited {
                reset_epoch_secs: Some(reset),
                ..
            } => reset.saturating_sub(now_epoch_secs).max(1),
            _ => backoff_secs(attempt),
        }
        .min(MAX_DELAY_SECS)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Cloudflare Queues cap message delays at 12 hours.
pub const MAX_DELAY_SECS: u64 = 12 * 60 * 60;

/// Exponential backoff: 2, 4, 8, … seconds, capped at 15 minutes.
pub fn backoff_secs(attempt: u32) -> u64 {
    2u64.saturating_pow(attempt.clamp(1, 10)).min(900)
}

/// A response's status and the headers that matter for classification.
#[derive(Debug, Clone, Default)]
pub struct ResponseMeta<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub ratelimit_remaining: Option<&'a str>,
    pub ratelimit_reset: Option<&'a str>,
}

/// Classify a non-success GitHub HTTP response. `None` for 2xx/304.
pub fn classify_github(meta: &ResponseMeta<'_>, body: &str) -> Option<Failure> {
    let status = meta.status;
    if (200..300).contains(&status) || status == 304 {
        return None;
    }
    let retry_after = meta.retry_after.and_then(|v| v.trim().parse::<u64>().ok());
    let remaining = meta
        .ratelimit_remaining
        .and_then(|v| v.trim().parse::<u64>().ok());
    let reset = meta
        .ratelimit_reset
        .and_then(|v| v.trim().parse::<u64>().ok());
    let snippet: String = body.chars().take(200).collect();
    Some(match status {
        403 | 429 if remaining == Some(0) => Failure::RateLimited {
            reason: format!("GitHub rate limit exhausted (HTTP {status})"),
            reset_epoch_secs: reset,
        },
        429 => Failure::Transient {
            reason: format!("GitHub HTTP 429: {snippet}"),
            retry_after_secs: retry_after.or(Some(60)),
        },
        403 if retry_after.is_some()
            || body.to_ascii_lowercase().contains("secondary rate limit") =>
        {
            Failure::Transient {
                reason: format!("GitHub secondary rate limit (HTTP 403): {snippet}"),
                retry_after_secs: retry_after.or(Some(60)),
            }
        }
        408 | 500..=599 => Failure::Transient {
            reason: format!("GitHub HTTP {status}: {snippet}"),
            retry_after_secs: retry_after,
        },
        401 => Failure::permanent(format!(
            "GitHub HTTP 401: check GITHUB_TOKEN (GraphQL requires a token): {snippet}"
        )),
        _ => Failure::permanent(format!("GitHub HTTP {status}: {snippet}")),
    })
}

/// Classify a successful answer whose body should be one JSON document.
/// A body that ends before its document does was cut off in transit, like a
/// dropped connection: transient, fetch it again. A complete document that
/// is wrong is the sender's doing and is left to the caller's parser.
pub fn classify_json_body(what: &str, body: &str) -> Option<Failure> {
    match serde_json::from_str::<serde::de::IgnoredAny>(body) {
        Err(e) if e.is_eof() => Some(Failure::transient(format!(
            "{what} body ends mid-document, cut off in transit ({e})"
        ))),
        _ => None,
    }
}

/// Classify a transport error (no HTTP response at all).
pub fn classify_network(message: &str) -> Failure {
    if crate::budget::is_platform_subrequest_error(message) {
        Failure::Budget {
            reason: format!("platform subrequest limit: {message}"),
        }
    } else {
        Failure::transient(format!("network error: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(status: u16) -> ResponseMeta<'static> {
        ResponseMeta {
            status,
            ..Default::default()
        }
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_permanent() {
        assert!(matches!(
            classify_github(&meta(502), ""),
            Some(Failure::Transient { .. })
        ));
        assert!(matches!(
            classify_github(&meta(404), ""),
            Some(Failure::Permanent { .. })
        ));
        assert_eq!(classify_github(&meta(200), ""), None);
        assert_eq!(classify_github(&meta(304), ""), None);
    }

    #[test]
    fn retry_after_is_honoured() {
        let m = ResponseMeta {
            status: 429,
            retry_after: Some("7"),
            ..Default::default()
        };
        let f = classify_github(&m, "").unwrap();
        assert_eq!(f.delay_secs(0, 1), 7);
    }

    #[test]
    fn a_json_body_cut_off_in_transit_is_transient_but_a_complete_wrong_one_is_not() {
        let whole = r#"{"repositories": [{"name": "a", "link": "https://github.com/o/r"}]}"#;
        assert_eq!(classify_json_body("data.json", whole), None);
        let cut = &whole[..whole.len() / 2];
        let f = classify_json_body("data.json", cut).unwrap();
        assert!(matches!(f, Failure::Transient { .. }), "{f:?}");
        assert!(f.reason().starts_with("data.json body ends mid-document"));
        assert!(
            classify_json_body("data.json", "").is_some(),
            "an empty body is cut off too"
        );
        // Complete but invalid: the parser reports it, no refetch.
        assert_eq!(classify_json_body("data.json", "{\"a\": tru}"), None);
        assert_eq!(classify_json_body("data.json", "<html>502</html>"), None);
    }

    #[test]
    fn secondary_rate_limit_is_transient_and_primary_waits_for_reset() {
        let f = classify_github(&meta(403), "You have exceeded a secondary rate limit").unwrap();
        assert!(matches!(f, Failure::Transient { .. }));
        let m = ResponseMeta {
            status: 403,
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("1000"),
            ..Default::default()
        };
        let f = classify_github(&m, "").unwrap();
        assert_eq!(f.delay_secs(940, 1), 60);
    }
}
