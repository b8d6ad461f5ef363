//! The command line: global options, the six commands and their flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Where `ops` looks for the scraper when neither --url nor CONTRIBOT_URL is set
/// (`wrangler dev`'s address).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

#[derive(Debug, Parser)]
#[command(
    name = "ops",
    version,
    about = "Operate contribot through the scraper's admin API",
    after_help = "Exit codes: 0 ok, 1 API or run failure, 2 usage, 3 cannot reach the API."
)]
pub struct Cli {
    /// Print the API's JSON (one document per line) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Base URL of the scraper worker.
    #[arg(long, env = "CONTRIBOT_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,

    /// The admin bearer token (the scraper's ADMIN_TOKEN secret).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Repos and issues by status, backlog, last runs, failures, label
    /// problems and invocation budgets.
    Status(StatusArgs),
    /// Start a scrape run and follow it until it finishes.
    Run(RunArgs),
    /// Cancel the scrape run in progress (it ends failed, "cancelled by an operator").
    Cancel,
    /// Add repos to the list the scraper follows.
    Enqueue(EnqueueArgs),
    /// Queue items for processing again.
    Reprocess(ReprocessArgs),
    /// Read the workers' logs for a day.
    Logs(LogsArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many recent runs to list (the API's default when unset).
    #[arg(long, value_name = "N")]
    pub runs: Option<u32>,

    /// How many failed items to list (the API's default when unset).
    #[arg(long, value_name = "N")]
    pub failed: Option<u32>,
}

impl StatusArgs {
    /// The `/admin/status` query, omitting unset bounds.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        [("runs", self.runs), ("failed", self.failed)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// How often to poll /admin/status (e.g. 2, 0.5, 2s, 1m).
    #[arg(long, default_value = "2", value_parser = parse_duration)]
    pub interval: Duration,

    /// After the run completes, keep following until the processing backlog is empty.
    #[arg(long)]
    pub wait_processing: bool,

    /// Give up following after this long (the run goes on in the worker).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["urls", "file"])))]
pub struct EnqueueArgs {
    /// Repo URLs (https://github.com/owner/repo).
    pub urls: Vec<String>,

    /// A list file ("-" for stdin): one `URL`, `URL label` or CSV `url,label`
    /// per line; `#` comments and blank lines are ignored.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Label for the URLs given as arguments (a file gives its own).
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).multiple(false).args(["failed", "repo", "issue"])))]
pub struct ReprocessArgs {
    /// Every failed repo and issue.
    #[arg(long)]
    pub failed: bool,

    /// One repo, `owner/name`.
    #[arg(long, value_name = "OWNER/NAME", value_parser = parse_repo)]
    pub repo: Option<String>,

    /// One issue, `owner/name#number`.
    #[arg(long, value_name = "OWNER/NAME#N", value_parser = parse_issue)]
    pub issue: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The UTC day, YYYY-MM-DD (default: today).
    #[arg(long, value_parser = parse_date)]
    pub date: Option<String>,

    /// Only this service (scraper, processor).
    #[arg(long)]
    pub service: Option<String>,

    /// Only this level and above (debug, info, warn, error).
    #[arg(long)]
    pub level: Option<String>,

    /// Only this run.
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,

    /// At most this many lines per answer (the API's default when unset).
    #[arg(long)]
    pub limit: Option<u32>,

    /// Continue a truncated answer from its next_cursor.
    #[arg(long, conflicts_with = "follow")]
    pub cursor: Option<String>,

    /// Print the whole day, then keep polling and print new lines as they
    /// appear (Ctrl-C to stop). Each poll re-reads the day, following
    /// truncated answers' cursors; lines already printed are not repeated.
    #[arg(long)]
    pub follow: bool,

    /// How often --follow polls.
    #[arg(long, default_value = "5", value_parser = parse_duration)]
    pub interval: Duration,
}

/// Seconds as a number (`2`, `0.5`) or with a unit (`500ms`, `2s`, `5m`, `1h`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 2, 0.5, 2s, 1m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{raw:?} is not a duration of zero or more"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// `owner/name`, both parts non-empty, no spaces.
pub fn parse_repo(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    match s.split_once('/') {
        Some((owner, name))
            if !owner.is_empty()
                && !name.is_empty()
                && !name.contains('/')
                && !s.contains(char::is_whitespace) =>
        {
            Ok(s.to_string())
        }
        _ => Err(format!("{raw:?} is not owner/name")),
    }
}

/// `owner/name#number`.
pub fn parse_issue(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let bad = || format!("{raw:?} is not owner/name#number");
    let (repo, number) = s.split_once('#').ok_or_else(bad)?;
    parse_repo(repo).map_err(|_| bad())?;
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// A `YYYY-MM-DD` calendar day.
pub fn parse_date(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if crate::dates::is_valid_date(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{raw:?} is not a day written YYYY-MM-DD"))
    }
}
