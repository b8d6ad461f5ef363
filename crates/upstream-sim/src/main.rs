//! `upstream-sim`: runs the contribot upstream simulator until interrupted.
//!
//! Prints exactly one first line to stdout,
//! `upstream-sim listening on http://127.0.0.1:PORT`, then logs one line per
//! request to stderr (unless `--quiet`).

use std::io::Write;
use std::process::ExitCode;

use contribot_sim::{start, SimConfig};

const USAGE: &str =
    "usage: upstream-sim [--port 8788] [--seed 42] [--scale 0] [--host 127.0.0.1] [--quiet] [--graphql-points 5000] [--rest-requests 5000] [--secondary-concurrency 100] [--secondary-graphql-points 2000] [--secondary-rest-points 900] [--ai-daily-neurons 10000]";

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("{flag}: '{value}' is not valid")]
    BadValue { flag: String, value: String },
    #[error("unknown argument '{0}'")]
    Unknown(String),
}

/// The flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "--port",
    "--seed",
    "--host",
    "--scale",
    "--graphql-points",
    "--rest-requests",
    "--secondary-concurrency",
    "--secondary-graphql-points",
    "--secondary-rest-points",
    "--ai-daily-neurons",
];

/// Parses `value` into `target`, or names the flag and the bad value.
fn set<T: std::str::FromStr>(target: &mut T, flag: &str, value: &str) -> Result<(), CliError> {
    *target = value.parse().map_err(|_| CliError::BadValue {
        flag: flag.into(),
        value: value.into(),
    })?;
    Ok(())
}

/// Applies one flag that takes a value.
fn apply(config: &mut SimConfig, flag: &str, v: &str) -> Result<(), CliError> {
    let limits = &mut config.rate_limits;
    let secondary = &mut config.secondary_limits;
    match flag {
        "--port" => set(&mut config.port, flag, v),
        "--seed" => set(&mut config.seed, flag, v),
        "--host" => set(&mut config.host, flag, v),
        "--scale" => {
            set(&mut config.scale, flag, v)?;
            if config.scale > contribot_sim::MAX_SCALE {
                return Err(CliError::BadValue {
                    flag: flag.into(),
                    value: v.into(),
                });
            }
            Ok(())
        }
        // Widen GitHub's hourly windows (the benchmark's scale runs cost
        // more than one window; it measures cost, not the wait).
        "--graphql-points" => set(&mut limits.graphql, flag, v),
        "--rest-requests" => set(&mut limits.rest_authenticated, flag, v),
        // GitHub's secondary limits (0 turns one off), widened the same way.
        "--secondary-concurrency" => set(&mut secondary.max_concurrent, flag, v),
        "--secondary-graphql-points" => set(&mut secondary.graphql_points_per_minute, flag, v),
        "--secondary-rest-points" => set(&mut secondary.rest_points_per_minute, flag, v),
        // Workers AI's daily allocation (0 turns the quota off).
        "--ai-daily-neurons" => set(&mut config.ai_quota.daily_neurons, flag, v),
        other => Err(CliError::Unknown(other.to_string())),
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<SimConfig>, CliError> {
    let mut config = SimConfig {
        port: 8788,
        log_requests: true,
        ..SimConfig::default()
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quiet" | "-q" => config.log_requests = false,
            "--help" | "-h" => return Ok(None),
            _ => {
                let (flag, inline) = match arg.split_once('=') {
                    Some((f, v)) => (f.to_string(), Some(v.to_string())),
                    None => (arg.clone(), None),
                };
                if !VALUE_FLAGS.contains(&flag.as_str()) {
                    return Err(CliError::Unknown(flag));
                }
                let (flag, value) = match inline {
                    Some(v) => (flag, v),
                    None => {
                        let v = args
                            .next()
                            .ok_or_else(|| CliError::MissingValue { flag: arg.clone() })?;
                        (arg.clone(), v)
                    }
                };
                apply(&mut config, &flag, &value)?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<SimConfig>, CliError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn limit_flags_widen_the_enforced_limits() {
        let c = parse(&[
            "--secondary-concurrency",
            "0",
            "--secondary-graphql-points=100000",
            "--graphql-points",
            "10000000",
            "--ai-daily-neurons",
            "0",
            "-q",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.secondary_limits.max_concurrent, 0);
        assert_eq!(c.secondary_limits.graphql_points_per_minute, 100_000);
        assert_eq!(c.secondary_limits.rest_points_per_minute, 900);
        assert_eq!(c.rate_limits.graphql, 10_000_000);
        assert_eq!(c.ai_quota.daily_neurons, 0.0);
        assert!(!c.log_requests);
    }

    #[test]
    fn unknown_flags_and_bad_values_are_named() {
        assert_eq!(
            parse(&["--nope", "1"]).unwrap_err().to_string(),
            "unknown argument '--nope'"
        );
        assert_eq!(
            parse(&["--scale", "10001"]).unwrap_err().to_string(),
            "--scale: '10001' is not valid"
        );
        assert_eq!(
            parse(&["--seed"]).unwrap_err().to_string(),
            "--seed needs a value"
        );
    }
}
