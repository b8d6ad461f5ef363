//! `cargo xtask`: contribot's project tasks, written in Rust so they run
//! wherever cargo does.
//!
//! - `setup`: install the toolchain (`scripts/setup.sh`).
//! - `build [scraper|processor|all] [--dev]`: build the workers with
//!   worker-build, fully offline.
//! - `run`: the whole pipeline locally, with a report.
//! - `bench`: every benchmark figure from one run, written to BENCHMARKS.md.
//! - `test`: native tests, worker builds, then the end-to-end suite that drives
//!   the compiled workers in Miniflare.
//!
//! The tasks only orchestrate other programs; they never reach the network
//! themselves (setup's installers use crates.io and the npm registry).

mod bench;
mod build;
mod run;
mod test;
mod toolchain;

use std::fmt;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup                                 install the Rust target, worker-build,
                                        wasm-bindgen-cli and the npm packages
  build [scraper|processor|all] [--dev] build the workers into apps/<name>/build
                                        (release unless --dev; default: all)
  test [teardown]                       native tests, worker builds, end-to-end suite
                                        (teardown: only the 'run leaves nothing' check)
  run [--keep] [--seed N] [--ai heuristic|rest] [--no-scrape]
      [--work-dir DIR] [--timeout-mins N]
                                        the whole pipeline locally: simulator,
                                        both workers in wrangler dev, a scrape,
                                        progress until drained, a report
  bench [--scales 0,1000,5000,10000]    requests, peers, budgets, scale curve,
                                        sizes, CPU and free-tier cost; prints a
                                        table and writes BENCHMARKS.md
";

/// A task failure, already phrased for the person at the terminal.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_owned())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "setup" => toolchain::setup(),
        "build" => build::BuildRequest::parse(rest).and_then(|request| {
            toolchain::setup()?;
            build::build(&request)
        }),
        "test" => test::run(rest),
        "run" => run::run(rest),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Error(format!("unknown task `{other}`\n\n{USAGE}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::FAILURE
        }
    }
}
