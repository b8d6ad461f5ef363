//! `bench-sim`: the upstream simulator with GitHub's hourly rate-limit
//! windows lifted, for the benchmark's scale runs.
//!
//! A full refresh of 10,000 extra repos costs more GraphQL points than
//! GitHub's 5,000-point hourly window, so on the real API the scraper would
//! wait for the window to reset (it does, through a delayed continuation).
//! The benchmark measures cost and throughput, not that wait, so it serves
//! the same dataset with a window large enough for one run. Same arguments
//! and first stdout line as `upstream-sim`, plus `--graphql-points N` and
//! `--rest-requests N` (default 10,000,000 each).

use std::io::Write;
use std::process::ExitCode;

use contribot_sim::{start, RateLimitConfig, SimConfig};

const USAGE: &str = "usage: bench-sim [--port 0] [--seed 42] [--scale 0] [--quiet] [--graphql-points N] [--rest-requests N]";

fn parse(args: &[String]) -> Result<SimConfig, String> {
    let mut config = SimConfig {
        log_requests: true,
        rate_limits: RateLimitConfig {
            rest_anonymous: 60,
            rest_authenticated: 10_000_000,
            graphql: 10_000_000,
        },
        ..SimConfig::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if matches!(flag.as_str(), "--quiet" | "-q") {
            config.log_requests = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: '{value}' is not valid");
        match flag.as_str() {
            "--port" => config.port = value.parse().map_err(|_| bad())?,
            "--seed" => config.seed = value.parse().map_err(|_| bad())?,
            "--scale" => config.scale = value.parse().map_err(|_| bad())?,
            "--host" => config.host = value.parse().map_err(|_| bad())?,
            "--graphql-points" => config.rate_limits.graphql = value.parse().map_err(|_| bad())?,
            "--rest-requests" => {
                config.rate_limits.rest_authenticated = value.parse().map_err(|_| bad())?
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let handle = match start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("bench-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The same first line as upstream-sim, so the e2e harness can start it.
    println!("upstream-sim listening on {}", handle.base_url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}
