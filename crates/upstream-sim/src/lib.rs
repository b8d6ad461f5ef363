//! `contribot-sim`: an offline stand-in for every upstream the contribot
//! workers call — GitHub's GraphQL and REST APIs, the raw
//! awesome-for-beginners list, and Workers AI (REST and the `AI` binding) —
//! served by one HTTP server on one port.
//!
//! It is a simulator, not a mock: a dataset generated deterministically from
//! a seed (the real list snapshot, synthetic repositories, labels and issues)
//! sits behind real protocol behaviour — schema validation against GitHub's
//! published schema, GitHub's cost formula and rate limits, cursors, ETags,
//! `Link` headers, rename redirects, Cloudflare's envelopes. Tests drive it
//! through a control API (`/_sim/…`) to mutate the upstream, inject seeded
//! faults, read counters and compare results with ground truth.
//!
//! It must never reach the network, read the wall clock for data, or echo
//! back what a caller expects: every answer comes from the seeded world.
//!
//! ```no_run
//! # async fn demo() -> Result<(), contribot_sim::SimError> {
//! let sim = contribot_sim::start(contribot_sim::SimConfig::default()).await?;
//! println!("GitHub GraphQL at {}/graphql", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod ai;
mod clock;
mod control;
mod counters;
mod faults;
mod gateway;
mod graphql;
mod list;
mod mutation;
mod neurons;
mod prose;
mod pulls;
mod ratelimit;
mod raw;
mod rest;
mod rng;
mod secondary;
mod server;
mod sim;
mod tokens;
mod world;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use ai::AiFailure;
pub use counters::{Counters, InvocationCounters};
pub use faults::{FaultConfig, FaultConfigError, FaultKind, FaultRoute, FaultRule};
pub use graphql::warm_schema;
pub use list::{github_slug, ListBreak, ListEntry};
pub use mutation::{Applied, MutationError, MutationOp};
pub use neurons::{AiQuotaChange, AiQuotaConfig, AiQuotaView};
pub use ratelimit::RateLimitConfig;
pub use secondary::{SecondaryLimitConfig, SecondaryLimitPatch};
pub use sim::{Truth, TruthTotals};
pub use tokens::{TokenBoard, TokenRevocation};
pub use world::{RenamedRepo, RepoTruth, Specials};

/// The largest `scale` accepted (extra synthetic repositories).
pub const MAX_SCALE: u32 = 10_000;

/// How to start a simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds the dataset and the AI responder.
    pub seed: u64,
    /// Extra synthetic repositories `sim-org-{k}/repo-{k}` (0..=10,000),
    /// 25 issues each on average.
    pub scale: u32,
    /// Interface to bind; loopback by default.
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Print one line per request to stderr.
    pub log_requests: bool,
    pub rate_limits: RateLimitConfig,
    /// GitHub's secondary limits, enforced (100 in flight, 2,000 GraphQL
    /// and 900 REST points a minute per client).
    pub secondary_limits: SecondaryLimitConfig,
    /// Workers AI's daily neuron allocation, enforced (10,000 a UTC day).
    pub ai_quota: AiQuotaConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            scale: 0,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            log_requests: false,
            rate_limits: RateLimitConfig::default(),
            secondary_limits: SecondaryLimitConfig::default(),
            ai_quota: AiQuotaConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("scale {0} exceeds the maximum of {MAX_SCALE}")]
    Scale(u32),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    base_url: String,
    addr: SocketAddr,
    sim: Arc<sim::Sim>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Builds the dataset, binds the listener and starts serving.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    if config.scale > MAX_SCALE {
        return Err(SimError::Scale(config.scale));
    }
    graphql::warm_schema_in_background();
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    let base_url = format!("http://{addr}");
    let sim = Arc::new(sim::Sim::new(config, base_url.clone()));
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(server::run(listener, sim.clone(), rx));
    Ok(SimHandle {
        base_url,
        addr,
        sim,
        shutdown: tx,
        task: Some(task),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counters(&self) -> Counters {
        self.sim.counters().clone()
    }

    pub fn reset_counters(&self) {
        *self.sim.counters() = Counters::default();
    }

    pub fn truth(&self) -> Truth {
        self.sim.truth()
    }

    /// Applies all operations atomically, as `POST /_sim/mutate` does.
    pub fn mutate(&self, ops: &[MutationOp]) -> Result<Vec<Applied>, MutationError> {
        self.sim.mutate(ops)
    }

    pub fn set_faults(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        self.sim.set_faults(config)
    }

    pub fn clear_faults(&self) {
        self.sim
            .set_faults(FaultConfig::default())
            .expect("an empty plan is valid");
    }

    /// Restores the initial seeded state, like `POST /_sim/reset`.
    pub fn reset(&self) {
        self.sim.reset();
    }

    /// Stops accepting, closes open connections and waits for the server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
