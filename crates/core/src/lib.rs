//! contribot-core: every decision contribot makes, and none of its I/O.
//!
//! This crate holds the domain types, the queue messages and cursors, the
//! awesome-for-beginners list parsers, label resolution, content hashing,
//! the GitHub GraphQL queries (text, variables and response decoding), every
//! D1 statement as SQL plus parameters, the subrequest budget and the scrape
//! and processing plans. The workers in `apps/` move bytes between the
//! platform and these functions.
//!
//! It must never perform I/O: no sockets, no clock, no randomness, no
//! `worker` dependency. Time and identifiers come in as arguments, so every
//! function here runs and is tested natively.

pub mod admin;
pub mod ai;
pub mod api;
pub mod budget;
pub mod failure;
pub mod github;
pub mod hash;
pub mod label;
pub mod list;
pub mod logrec;
pub mod messages;
pub mod platform;
pub mod process;
pub mod scrape;
pub mod slug;
pub mod sql;
pub mod store;
pub mod warm_up;
