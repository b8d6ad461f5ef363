//! The operator CLI's library: drives the scraper's admin HTTP API and turns
//! its answers into text an operator can read.
//!
//! `client` is the only module that talks to the network, and `commands` the
//! only one that prints or sleeps. Everything else is plain functions over
//! plain data — the URL-list parser, tables, progress diffing, log
//! formatting, the error messages — tested without a server. The CLI never
//! decides anything the worker decides: which URLs are valid, what is already
//! known, or what a run does are the API's answers, shown as they come.

pub mod cli;
pub mod client;
pub mod commands;
pub mod dates;
pub mod enqueue;
pub mod logs;
pub mod progress;
pub mod reprocess;
pub mod status;
pub mod table;

pub use commands::OpsError;
