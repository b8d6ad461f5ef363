//! The drain phase: hand committed-but-unqueued items (the outbox) to the
//! processing queue, then mark them queued with the hash each carried.

use serde_json::json;

use super::{Ctx, Flow, ScrapeConfig, CLOSING_RESERVE};
use crate::logrec::{fields, Level};
use crate::messages::{QueueMessage, ScrapePhase};
use crate::platform::{Metered, Platform, PlatformError, QueueName};
use crate::sql::{decode_packed, Statement};
use crate::store::{self, OutboxRow};

/// At most this many `send_batch` calls per drain round.
pub const MAX_SENDS_PER_DRAIN: u32 = 10;

/// Messages for outbox rows, in order.
pub fn outbox_messages(rows: &[OutboxRow]) -> Vec<QueueMessage> {
    rows.iter()
        .map(|r| match r.number {
            Some(n) if r.kind == "issue" => {
                QueueMessage::issue(&r.owner, &r.name, n, &r.content_hash, r.priority)
            }
            _ => QueueMessage::repo(&r.owner, &r.name, &r.content_hash, r.priority),
        })
        .collect()
}

/// The outbox rows a drain round reads: what `remaining` subrequests can
/// send after keeping the mark and the closing reserve, within the
/// invocation's message allowance.
fn outbox_limit(remaining: u32, messages_left: usize) -> usize {
    let sends = remaining
        .saturating_sub(CLOSING_RESERVE + 2)
        .min(MAX_SENDS_PER_DRAIN);
    (sends as usize * 100).min(messages_left)
}

/// The D1 read a drain round at the start of an invocation makes, once the
/// claim has spent one subrequest of `budget` (see [`super::first_read`]).
pub(super) fn first_read(budget: u32, cfg: &ScrapeConfig) -> Vec<Statement> {
    vec![store::outbox(outbox_limit(
        budget.saturating_sub(1),
        cfg.messages_per_invocation,
    ))]
}

/// One drain round: read what the budget and the invocation's message
/// allowance can send, send it (6 calls in flight), mark it queued.
pub(super) async fn drain_step<P: Platform>(
    p: &mut Metered<'_, P>,
    ctx: &mut Ctx<'_>,
) -> Result<Flow, PlatformError> {
    // read + ≥ 1 send + mark
    if !p.budget.can_afford(3 + CLOSING_RESERVE) || ctx.allowance.messages_left == 0 {
        return Ok(Flow::yield_now("allowance reached while queueing"));
    }
    let limit = outbox_limit(p.budget.remaining(), ctx.allowance.messages_left);
    let rows = super::read_first(p, ctx, vec![store::outbox(limit)]).await?;
    let items: Vec<OutboxRow> = decode_packed(rows.first().map(Vec::as_slice).unwrap_or(&[]))
        .map_err(|e| PlatformError::Db(e.to_string()))?;
    if items.is_empty() {
        ctx.cursor.phase = ScrapePhase::Done;
        return Ok(Flow::Next);
    }
    ctx.allowance.spend_messages(items.len());
    let messages = outbox_messages(&items);
    // Keep one call for marking them queued, plus the closing reserve.
    let report = p
        .send_all(
            QueueName::Processing,
            &messages,
            1 + CLOSING_RESERVE,
            ctx.cfg.send_concurrency,
        )
        .await;
    let sent_items: Vec<OutboxRow> = report.sent_indexes().map(|i| items[i].clone()).collect();
    let sent = sent_items.len();
    let failure = report.first_error().map(str::to_string);
    ctx.bump(|c| c.messages_queued += sent as i64);
    let now = p.now_ms();
    if sent > 0 {
        ctx.pending.extend(store::mark_queued(&sent_items, now));
        let progress = ctx.progress();
        ctx.pending.push(progress);
    }
    ctx.log(
        now,
        Level::Info,
        "queued",
        fields([("messages", json!(sent)), ("of", json!(items.len()))]),
    );
    if let Some(e) = failure {
        ctx.log(
            now,
            Level::Error,
            "queue_send_failed",
            fields([("error", json!(e))]),
        );
        ctx.cursor.failures += 1;
        return Ok(Flow::Yield {
            delay_secs: crate::failure::backoff_secs(ctx.cursor.failures + 1),
            reason: format!("queue send failed: {e}"),
        });
    }
    if sent == items.len() && items.len() < limit {
        // The read held the whole outbox and all of it went: nothing is
        // left to read again.
        ctx.cursor.phase = ScrapePhase::Done;
    }
    Ok(Flow::Next)
}
