//! Writing an invocation's JSONL log to R2.

use contribot_core::budget::Subrequest;
use contribot_core::logrec::LogBook;
use contribot_core::platform::{Metered, Platform};
use worker::{Bucket, HttpMetadata};

/// Put the log at `key`, charging one R2 subrequest. A failed write is
/// reported (to the console) and never fails the invocation.
pub async fn write_log<P: Platform>(
    p: &mut Metered<'_, P>,
    bucket: Option<&Bucket>,
    key: &str,
    book: &LogBook,
) -> bool {
    let Some(bucket) = bucket else {
        worker::console_warn!("no LOGS bucket bound; log {key} not written");
        return false;
    };
    if p.charge(Subrequest::R2).is_err() {
        worker::console_error!("no subrequest left for the log {key}");
        return false;
    }
    let result = bucket
        .put(key, book.to_jsonl().into_bytes())
        .http_metadata(HttpMetadata {
            content_type: Some("application/x-ndjson".into()),
            ..Default::default()
        })
        .execute()
        .await;
    match result {
        Ok(_) => true,
        Err(e) => {
            worker::console_error!("log write to {key} failed: {e}");
            false
        }
    }
}
