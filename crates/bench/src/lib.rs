//! contribot-bench: what `cargo xtask bench` needs besides the workers.
//!
//! - [`peer`]: replays of other tools' GitHub request patterns (the
//!   TypeScript original's, goodfirstissue.dev's) against the upstream
//!   simulator, so its counters can compare them with contribot's;
//! - [`fixture`]: a realistic, deterministic scrape step (a 25-repo GraphQL
//!   answer with issue bodies, the stored rows and hashes) for the CPU
//!   benchmark in `benches/step.rs`.
//!
//! It measures; it never decides anything the workers decide, and it talks
//! only to the local simulator.

pub mod fixture;
pub mod peer;
