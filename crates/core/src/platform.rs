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

/// `send_batch` calls in flight at once: the Workers limit on simultaneous
/// open connections.
pub const DEFAULT_SEND_CONCURRENCY: usize = 6;

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
    /// Several `send_batch` calls, at most this many in flight at once (the
    /// shell may run them concurrently; results come back in order).
    async fn send_batches(
        &mut self,
        queue: QueueName,
        batches: &[Vec<QueueMessage>],
        delay_secs: u64,
    ) -> Vec<Result<(), String>> {
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            out.push(self.send_batch(queue, b, delay_secs).await);
        }
        out
    }
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

    /// Send `messages` in `send_batch` chunks (≤ 100 messages, ≤ 256 KB),
    /// pre-sliced to what the budget allows after keeping `reserve`, in
    /// groups of `concurrency` calls in flight at once (Workers allow 6
    /// simultaneous connections). Stops after the first group with a failure.
    pub async fn send_all(
        &mut self,
        queue: QueueName,
        messages: &[QueueMessage],
        reserve: u32,
        concurrency: usize,
    ) -> SendReport {
        let chunks = send_chunks(messages);
        let affordable = self.budget.remaining().saturating_sub(reserve) as usize;
        let mut report = SendReport {
            chunks: Vec::new(),
            unsent_for_budget: chunks.len().saturating_sub(affordable),
        };
        let planned = &chunks[..chunks.len().min(affordable)];
        let mut offset = 0usize;
        for group in planned.chunks(concurrency.max(1)) {
            for _ in group {
                // Cannot fail: the group was sliced to the remaining budget.
                let _ = self.budget.charge(Subrequest::Queue);
            }
            let results = self.inner.send_batches(queue, group, 0).await;
            let mut failed = false;
            for (chunk, result) in group.iter().zip(results) {
                failed |= result.is_err();
                report.chunks.push(SentChunk {
                    start: offset,
                    len: chunk.len(),
                    result,
                });
                offset += chunk.len();
            }
            if failed {
                break;
            }
        }
        report
    }

    /// Charge a subrequest made outside this wrapper (R2, AI binding).
    pub fn charge(&mut self, kind: Subrequest) -> Result<(), BudgetExhausted> {
        self.budget.charge(kind)
    }

    pub fn inner(&mut self) -> &mut P {
        self.inner
    }
}

/// One `send_batch` call's messages (`start..start + len` of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChunk {
    pub start: usize,
    pub len: usize,
    pub result: Result<(), String>,
}

/// What [`Metered::send_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    pub chunks: Vec<SentChunk>,
    /// Chunks not attempted because the budget would not allow them.
    pub unsent_for_budget: usize,
}

impl SendReport {
    pub fn sent(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.result.is_ok())
            .map(|c| c.len)
            .sum()
    }

    /// Input indexes of every message that was sent.
    pub fn sent_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.chunks
            .iter()
            .filter(|c| c.result.is_ok())
            .flat_map(|c| c.start..c.start + c.len)
    }

    pub fn first_error(&self) -> Option<&str> {
        self.chunks
            .iter()
            .find_map(|c| c.result.as_ref().err().map(String::as_str))
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

/// A stage's future, polled through a box so that its state machine is
/// compiled as a function of its own instead of being inlined into its
/// caller's. V8 compiles a wasm function on its first call, whole: with
/// every stage inlined, an isolate's first invocation of any kind compiles
/// the code of all of them. Apart, an invocation compiles the stages it
/// runs. (One small allocation per stage; nothing else changes.)
pub fn apart<'a, T>(
    stage: impl std::future::Future<Output = T> + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>> {
    Box::pin(stage)
}
