//! `upstream-sim`: runs the contribot upstream simulator until interrupted.
//!
//! Prints exactly one first line to stdout,
//! `upstream-sim listening on http://127.0.0.1:PORT`, then logs one line per
//! request to stderr (unless `--quiet`).

use std::io::Write;
use std::process::ExitCode;

use contribot_sim::{start, SimConfig};

const USAGE: &str =
    "usage: upstream-sim [--port 8788] [--seed 42] [--scale 0] [--host 127.0.0.1] [--quiet] [--graphql-points 5000] [--rest-requests 5000]";

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("{flag}: '{value}' is not valid")]
    BadValue { flag: String, value: String },
    #[error("unknown argument '{0}'")]
    Unknown(String),
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<SimConfig>, CliError> {
    let mut config = SimConfig {
        port: 8788,
        log_requests: true,
        ..SimConfig::default()
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError::MissingValue { flag: flag.into() })
        };
        let bad = |flag: &str, value: &str| CliError::BadValue {
            flag: flag.into(),
            value: value.into(),
        };
        match flag.as_str() {
            "--port" => {
                let v = value(&flag)?;
                config.port = v.parse().map_err(|_| bad(&flag, &v))?;
            }
            "--seed" => {
                let v = value(&flag)?;
                config.seed = v.parse().map_err(|_| bad(&flag, &v))?;
            }
            "--scale" => {
                let v = value(&flag)?;
                config.scale = v
                    .parse()
                    .ok()
                    .filter(|s| *s <= contribot_sim::MAX_SCALE)
                    .ok_or_else(|| bad(&flag, &v))?;
            }
            "--host" => {
                let v = value(&flag)?;
                config.host = v.parse().map_err(|_| bad(&flag, &v))?;
            }
            // Widen GitHub's hourly windows (the benchmark's scale runs cost
            // more than one window; it measures cost, not the wait).
            "--graphql-points" => {
                let v = value(&flag)?;
                config.rate_limits.graphql = v.parse().map_err(|_| bad(&flag, &v))?;
            }
            "--rest-requests" => {
                let v = value(&flag)?;
                config.rate_limits.rest_authenticated = v.parse().map_err(|_| bad(&flag, &v))?;
            }
            "--quiet" | "-q" => config.log_requests = false,
            "--help" | "-h" => return Ok(None),
            other => return Err(CliError::Unknown(other.to_string())),
        }
    }
    Ok(Some(config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("upstream-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let handle = match start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("upstream-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("upstream-sim listening on {}", handle.base_url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}
