//! contribot scraper worker: finds beginner issues and queues what changed.
//!
//! Three entry points, each a few lines handing off to a named module:
//! the cron starts a run, the continuation queue advances it one budgeted
//! invocation at a time, and the admin API lets operators trigger and watch.

mod admin;
mod api;
mod run;

use contribot_core::platform::apart;
use worker::{
    event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    if let Err(e) = run::start(&env, &format!("cron:{}", event.cron())).await {
        worker::console_error!("scheduled run failed to start: {e}");
    }
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    console_error_panic_hook::set_once();
    run::consume(batch, &env).await
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    // Each surface apart: a read compiles the API's code, not the admin's.
    if api::serves(&req.path()) {
        return apart(api::route(req, &env)).await;
    }
    apart(admin::route(req, &env)).await
}
