//! contribot processor worker: turns queued repos and issues into analysed
//! records. It consumes the processing queue (enrich, analyse, commit, then
//! ack or retry each message) and its dead-letter queue (record the item as
//! failed with its last error).

mod consume;

use contribot_core::platform::apart;
use worker::{event, Context, Env, MessageBatch, Result};

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    console_error_panic_hook::set_once();
    if batch.queue().ends_with("-dlq") {
        apart(consume::dead_letters(batch, &env)).await
    } else {
        apart(consume::batch(batch, &env)).await
    }
}
