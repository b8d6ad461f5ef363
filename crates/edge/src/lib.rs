//! contribot-edge: the I/O shell both workers share.
//!
//! It implements contribot-core's [`Platform`](contribot_core::platform::Platform)
//! over workers-rs bindings (D1, fetch, Queues, timers), writes the JSONL log
//! of an invocation to R2, and reads configuration from the worker's vars and
//! secrets. It holds no decisions: those live in the core.

pub mod ai;
pub mod config;
pub mod logs;
pub mod platform;
pub mod warm_up;

pub use platform::WorkerPlatform;

/// A fresh identifier: time-ordered, with random bits (run and invocation ids).
pub fn new_id(prefix: &str) -> String {
    let now = worker::Date::now().as_millis();
    let rand = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("{prefix}{now:x}{rand:08x}")
}

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}
