//! Calling Workers AI: the REST request, and what a failed call means.
//!
//! Error codes follow Cloudflare's Workers AI error table
//! (developers.cloudflare.com/workers-ai/platform/errors/) plus code 4006,
//! which the platform really returns when the daily free allocation is
//! spent ("you have used up your daily free allocation of 10,000 neurons").

use serde_json::Value;

use crate::failure::Failure;
use crate::github::{HttpRequest, HttpResponse, INVOCATION_HEADER, USER_AGENT};

/// How an AI call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiFailure {
    /// The account's daily neuron allocation is spent; calls fail until it
    /// resets at 00:00 UTC. Retrying sooner only burns subrequests.
    #[error("Workers AI daily allocation exhausted: {0}")]
    QuotaExhausted(String),
    /// Capacity, timeouts, 5xx, a broken connection or a truncated answer:
    /// the same call may succeed later.
    #[error("Workers AI call failed, retry may help: {reason}")]
    Transient {
        reason: String,
        retry_after_secs: Option<u64>,
    },
    /// Bad input, unknown model, bad credentials: retrying cannot help.
    #[error("Workers AI call failed permanently: {0}")]
    Permanent(String),
    /// Not started: its worst case would take the UTC day past contribot's
    /// own neuron cap (the reason says how far the day is).
    #[error("{0}")]
    CapReached(String),
}

impl AiFailure {
    pub fn reason(&self) -> &str {
        match self {
            AiFailure::QuotaExhausted(reason)
            | AiFailure::Transient { reason, .. }
            | AiFailure::Permanent(reason)
            | AiFailure::CapReached(reason) => reason,
        }
    }

    /// The same failure in the project-wide [`Failure`] terms. Quota
    /// exhaustion and the cap wait for the next 00:00 UTC after
    /// `now_epoch_secs`.
    pub fn to_failure(&self, now_epoch_secs: u64) -> Failure {
        match self {
            AiFailure::QuotaExhausted(reason) => Failure::RateLimited {
                reason: format!("Workers AI quota exhausted: {reason}"),
                reset_epoch_secs: Some(quota_reset_epoch_secs(now_epoch_secs)),
            },
            AiFailure::CapReached(reason) => Failure::RateLimited {
                reason: reason.clone(),
                reset_epoch_secs: Some(quota_reset_epoch_secs(now_epoch_secs)),
            },
            AiFailure::Transient {
                reason,
                retry_after_secs,
            } => Failure::Transient {
                reason: format!("Workers AI: {reason}"),
                retry_after_secs: *retry_after_secs,
            },
            AiFailure::Permanent(reason) => Failure::permanent(format!("Workers AI: {reason}")),
        }
    }
}

/// When the daily free allocation next resets: the next 00:00 UTC strictly
/// after `now_epoch_secs` (Workers AI pricing: "All limits reset daily at
/// 00:00 UTC").
pub fn quota_reset_epoch_secs(now_epoch_secs: u64) -> u64 {
    const DAY: u64 = 24 * 60 * 60;
    (now_epoch_secs / DAY + 1) * DAY
}

/// Workers AI codes for a spent daily allocation ("Account limited").
const QUOTA_CODES: [u64; 2] = [4006, 3036];
/// Workers AI codes worth retrying: timeout, aborted, out of capacity,
/// internal server error.
const TRANSIENT_CODES: [u64; 4] = [3007, 3008, 3040, 3043];
/// Workers AI codes retrying cannot fix: incomplete or oversized request,
/// blocked account, bad model, model access, bad input, auth.
const PERMANENT_CODES: [u64; 14] = [
    3003, 3006, 3023, 3039, 3041, 3042, 5004, 5005, 5006, 5007, 5016, 5018, 5019, 10000,
];

/// A leading error code in an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorCode {
    /// Three digits: an HTTP status (the binding falls back to it).
    Http(u16),
    /// Four or more digits: a Workers AI internal code.
    Workers(u64),
}

/// The first number of 3 to 6 digits followed by `:` (as in `3040: …` or
/// `InferenceUpstreamError: ERROR 3040: …`).
fn error_code(message: &str) -> Option<ErrorCode> {
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &message[start..i];
        let rest = message[i..].trim_start_matches(' ');
        if rest.starts_with(':') && (3..=6).contains(&digits.len()) {
            let n: u64 = digits.parse().ok()?;
            return Some(if digits.len() == 3 {
                ErrorCode::Http(n as u16)
            } else {
                ErrorCode::Workers(n)
            });
        }
    }
    None
}

fn is_quota_text(lower: &str) -> bool {
    lower.contains("daily free allocation")
        || (lower.contains("neuron")
            && ["exhaust", "used up", "allocation", "quota", "limit"]
                .iter()
                .any(|w| lower.contains(w)))
}

fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

const TRANSIENT_PHRASES: [&str; 19] = [
    "capacity",
    "timed out",
    "timeout",
    "network",
    "connection",
    "fetch failed",
    "internal error",
    "internal server error",
    "temporarily",
    "try again",
    "too many requests",
    "rate limit",
    "overloaded",
    "econnreset",
    "socket",
    "bad gateway",
    "gateway timeout",
    "service unavailable",
    // Cloudflare's API rate limiter (code 971): "Please wait and consider
    // throttling your request speed".
    "throttling",
];

/// What an error thrown by the `AI` binding means.
///
/// The binding throws `Error("<code>: <message>")`, or workerd's
/// `InferenceUpstreamError` text. Quota first (code 4006 or 3036, or text
/// about the daily free allocation or spent neurons), then the code (3040,
/// 3007, 3008, 3043, HTTP 408/429/5xx are transient; bad input, unknown
/// model and auth codes are permanent), then the wording (capacity,
/// timeouts, network and connection trouble, the platform's subrequest
/// limit are transient). Anything else is permanent.
pub fn classify_binding_error(message: &str) -> AiFailure {
    let text = message.trim();
    let reason: String = text.chars().take(300).collect();
    let lower = text.to_ascii_lowercase();
    let code = error_code(text);
    let transient = |reason: String| AiFailure::Transient {
        reason,
        retry_after_secs: None,
    };
    if matches!(code, Some(ErrorCode::Workers(c)) if QUOTA_CODES.contains(&c))
        || is_quota_text(&lower)
    {
        return AiFailure::QuotaExhausted(reason);
    }
    match code {
        Some(ErrorCode::Workers(c)) if TRANSIENT_CODES.contains(&c) => return transient(reason),
        Some(ErrorCode::Workers(c)) if PERMANENT_CODES.contains(&c) => {
            return AiFailure::Permanent(reason)
        }
        Some(ErrorCode::Http(s)) if is_transient_status(s) => return transient(reason),
        Some(ErrorCode::Http(s)) if (400..=499).contains(&s) => {
            return AiFailure::Permanent(reason)
        }
        _ => {}
    }
    if TRANSIENT_PHRASES.iter().any(|p| lower.contains(p))
        || crate::budget::is_platform_subrequest_error(text)
    {
        return transient(reason);
    }
    AiFailure::Permanent(reason)
}

/// A REST call to Workers AI: `POST {api_base}/client/v4/accounts/
/// {account_id}/ai/run/{model}` with a bearer token and `input` as the
/// JSON body. The token only travels in a header, which `HttpRequest`'s
/// `Debug` never prints.
pub fn rest_request(
    api_base: &str,
    account_id: &str,
    token: &str,
    model: &str,
    input: &Value,
    invocation: &str,
) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: format!(
            "{}/client/v4/accounts/{}/ai/run/{}",
            api_base.trim_end_matches('/'),
            account_id.trim_matches('/'),
            model.trim_start_matches('/'),
        ),
        headers: vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("content-type".to_string(), "application/json".to_string()),
            ("user-agent".to_string(), USER_AGENT.to_string()),
            (INVOCATION_HEADER.to_string(), invocation.to_string()),
        ],
        body: Some(input.to_string()),
    }
}

/// `code: message` for each entry of an envelope's `errors`.
fn envelope_errors(envelope: &Value) -> Vec<(Option<u64>, String)> {
    envelope
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(Value::as_u64);
                    let message = e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (code, message)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `result` of a REST answer, or what its failure means.
///
/// The answer is Cloudflare's envelope `{result, success, errors: [{code,
/// message}], messages}`. A 2xx with `success: true` and an object `result`
/// succeeds. Otherwise: code 4006/3036 or quota wording → `QuotaExhausted`;
/// HTTP 408/429/5xx or codes 3007/3008/3040/3043 → `Transient`, honouring a
/// numeric `Retry-After`; a body that is not JSON (truncated, or a gateway's
/// HTML page) → `Transient` unless the status is another 4xx; anything else
/// (`success: false` with a 4xx, bad input, auth) → `Permanent`.
pub fn parse_rest_response(resp: &HttpResponse) -> Result<Value, AiFailure> {
    let status = resp.status;
    let retry_after_secs = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let snippet: String = resp.body.chars().take(200).collect();
    let ok_status = (200..300).contains(&status);
    let transient = |reason: String| AiFailure::Transient {
        reason,
        retry_after_secs,
    };

    let Ok(envelope) = serde_json::from_str::<Value>(&resp.body) else {
        let reason = format!("HTTP {status}, body is not valid JSON (truncated?): {snippet}");
        return if ok_status || is_transient_status(status) || !(400..=499).contains(&status) {
            Err(transient(reason))
        } else {
            Err(AiFailure::Permanent(reason))
        };
    };

    let success = envelope.get("success").and_then(Value::as_bool);
    if ok_status && success != Some(false) {
        return match envelope.get("result") {
            Some(result @ Value::Object(_)) if success == Some(true) => Ok(result.clone()),
            _ => Err(transient(format!(
                "HTTP {status} without a successful `result`: {snippet}"
            ))),
        };
    }

    let errors = envelope_errors(&envelope);
    let described = if errors.is_empty() {
        format!("HTTP {status}: {snippet}")
    } else {
        let list: Vec<String> = errors
            .iter()
            .map(|(code, message)| match code {
                Some(c) => format!("{c}: {message}"),
                None => message.clone(),
            })
            .collect();
        format!("HTTP {status}: {}", list.join("; "))
    };
    let has_code = |codes: &[u64]| {
        errors
            .iter()
            .any(|(c, _)| c.is_some_and(|c| codes.contains(&c)))
    };
    let quota_text = errors
        .iter()
        .any(|(_, m)| is_quota_text(&m.to_ascii_lowercase()));
    if has_code(&QUOTA_CODES) || quota_text {
        return Err(AiFailure::QuotaExhausted(described));
    }
    if is_transient_status(status) || has_code(&TRANSIENT_CODES) {
        return Err(transient(described));
    }
    Err(AiFailure::Permanent(described))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_rate_limiters_971_is_transient() {
        let f =
            classify_binding_error("971: Please wait and consider throttling your request speed");
        assert!(matches!(f, AiFailure::Transient { .. }), "{f:?}");
    }

    #[test]
    fn error_codes_are_found_after_prefixes_but_not_inside_numbers() {
        assert_eq!(error_code("3040: Capacity"), Some(ErrorCode::Workers(3040)));
        assert_eq!(
            error_code("InferenceUpstreamError: ERROR 3043: Internal server error"),
            Some(ErrorCode::Workers(3043))
        );
        assert_eq!(error_code("502: <html>"), Some(ErrorCode::Http(502)));
        assert_eq!(error_code("at 12:30 it broke"), None);
        assert_eq!(error_code("used 10,000 neurons"), None);
        assert_eq!(error_code("v1234: nope"), None);
    }

    #[test]
    fn quota_resets_at_the_next_utc_midnight() {
        assert_eq!(quota_reset_epoch_secs(0), 86_400);
        assert_eq!(quota_reset_epoch_secs(86_399), 86_400);
        assert_eq!(quota_reset_epoch_secs(86_400), 172_800);
    }

    #[test]
    fn quota_maps_to_a_rate_limit_until_midnight() {
        let f = AiFailure::QuotaExhausted("4006: spent".into()).to_failure(86_000);
        assert_eq!(f.delay_secs(86_000, 1), 400);
        let f = AiFailure::Permanent("5006: bad".into()).to_failure(0);
        assert!(!f.is_retryable());
    }
}
