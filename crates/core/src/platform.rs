//! The seam between the core and the world.
//!
//! The core's workflows are written against [`Platform`], a handful of I/O
//! primitives the shells implement: a D1 batch, an HTTP fetch, a queue send,
//! a sleep and a clock. The workers implement it over workers-rs bindings;
//! the native tests implement it over SQLite and the upstream simulator.
//! [`Metered`] wraps a platform and charges every call to the invocation's
//! [`Budget`] *before* making it, so no invocation can pass its budget.

use serde_json::Value;

use crate::budget::{Budget, BudgetExhausted, Subrequest};
use crate::github::{HttpRequest, HttpResponse};
use crate::messages::QueueMessage;
use crate::sql::Statement;

/// The queues contribot sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    /// Repos and issues for the processor.
    Processing,
    /// Scrape continuations, consumed by the scraper itself.
    Scrape,
}

/// A platform call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Budget(#[from] BudgetExhausted),
    #[error("D1 error: {0}")]
    Db(String),
    #[error("network error: {0}")]
    Network(String),
    #[error("queue send failed: {0}")]
    Queue(String),
}

/// I/O primitives, implemented by the shells.
#[allow(async_fn_in_trait)]
pub trait Platform {
    /// Run statements as one D1 batch (one transaction); rows per statement.
    async fn db_batch(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, String>;
    /// One HTTP request. `Err` only when no response arrived.
    async fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, String>;
    /// One `send_batch` call (≤ 100 messages, ≤ 256 KB).
    async fn send_batch(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        delay_secs: u64,
    ) -> Result<(), String>;
    /// Wait without spending CPU.
    async fn sleep(&mut self, ms: u64);
    /// Wall-clock time, Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// A platform whose every subrequest is charged to a budget first.
pub struct Metered<'a, P: Platform> {
    inner: &'a mut P,
    pub budget: Budget,
}

impl<'a, P: Platform> Metered<'a, P> {
    pub fn new(inner: &'a mut P, budget: Budget) -> Self {
        Metered { inner, budget }
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }

    pub async fn db(&mut self, statements: &[Statement]) -> Result<Vec<Vec<Value>>, PlatformError> {
        self.budget.charge(Subrequest::D1)?;
        self.inner
            .db_batch(statements)
            .await
            .map_err(PlatformError::Db)
    }

    pub async fn fetch(&mut self, request: &HttpRequest) -> Result<HttpResponse, PlatformError> {
        self.budget.charge(Subrequest::Fetch)?;
        self.inner
            .fetch(request)
            .await
            .map_err(PlatformError::Network)
    }

    pub async fn send(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        delay_secs: u64,
    ) -> Result<(), PlatformError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.budget.charge(Subrequest::Queue)?;
        self.inner
            .send_batch(queue, messages, delay_secs)
            .await
            .map_err(PlatformError::Queue)
    }

    pub async fn sleep(&mut self, ms: u64) {
        self.inner.sleep(ms).await;
    }

    /// Charge a subrequest made outside this wrapper (R2, AI binding).
    pub fn charge(&mut self, kind: Subrequest) -> Result<(), BudgetExhausted> {
        self.budget.charge(kind)
    }

    pub fn inner(&mut self) -> &mut P {
        self.inner
    }
}

/// Split messages into `send_batch` chunks: ≤ 100 messages and ≤ 256 KB each.
pub fn send_chunks(messages: &[QueueMessage]) -> Vec<Vec<QueueMessage>> {
    const MAX_MESSAGES: usize = 100;
    // Leave room for the queue's own per-message overhead.
    const MAX_BYTES: usize = 250 * 1024;
    let mut out: Vec<Vec<QueueMessage>> = Vec::new();
    let mut current: Vec<QueueMessage> = Vec::new();
    let mut bytes = 0usize;
    for m in messages {
        let size = m.to_json().to_string().len() + 100;
        if !current.is_empty() && (current.len() == MAX_MESSAGES || bytes + size > MAX_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(m.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
