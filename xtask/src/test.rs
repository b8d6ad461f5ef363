//! `cargo xtask test`: everything CI checks, in order, stopping at the first
//! failing step.
//!
//! 1. setup (install what is missing);
//! 2. native tests: `cargo test --no-fail-fast` on the default members, which
//!    never include the wasm-only crates;
//! 3. release builds of both workers;
//! 4. both builds carry `console_error_panic_hook` (see [`panic_hook`]);
//! 5. the upstream simulator binary;
//! 6. the end-to-end suite, `tests/e2e/*.test.mjs` on Node's test runner,
//!    which drives the compiled workers in Miniflare against the simulator,
//!    and the bench's own tests, `bench/*.test.mjs`;
//! 7. `cargo xtask run` leaves no process behind: it is started the ways it
//!    ends (done, error, Ctrl-C, SIGTERM) while `/proc` is watched, and
//!    afterwards none of its processes, their descendants or their listening
//!    ports may remain (see [`teardown`]).
//!
//! Test output streams through unchanged; the pass/fail counts of cargo and
//! Node are added up into the closing summary.

mod panic_hook;
mod teardown;

use crate::build::{self, BuildRequest};
use crate::toolchain::{self, cargo, describe, node, path_with_npm_bin, repo_root};
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Timeout for each e2e test, and for each test file as a whole (Node's
/// `--test-timeout` applies to both), so a hung worker fails the run instead
/// of eating CI's 90 minutes.
const E2E_TEST_TIMEOUT_MS: u32 = 15 * 60 * 1000;

/// The steps of a full run, in order.
const STEPS: [&str; 7] = [
    "setup",
    "native tests",
    "build workers",
    "panic hook",
    "build simulator and ops",
    "e2e tests",
    "run leaves nothing",
];

/// `cargo xtask test`: every step. `cargo xtask test teardown`: only the
/// check that `cargo xtask run` leaves nothing behind (after setup).
pub fn run(args: &[String]) -> Result<()> {
    match args {
        [] => everything(),
        [only] if only == "teardown" => {
            let mut report = Report::default();
            let passed = report.step("setup", |_| toolchain::setup())
                && report.step("run leaves nothing", teardown::check_all);
            report.print();
            if passed {
                Ok(())
            } else {
                Err("test: a step failed (see the summary above)".into())
            }
        }
        [arg, ..] => Err(Error(format!(
            "test: unexpected argument `{arg}` (none, or `teardown`)"
        ))),
    }
}

fn everything() -> Result<()> {
    let root = repo_root();
    let mut report = Report {
        planned: &STEPS,
        ..Report::default()
    };

    let passed = report.step("setup", |_| toolchain::setup())
        && report.step("native tests", |tally| {
            run_counting(
                cargo().args(["test", "--no-fail-fast"]).current_dir(&root),
                tally,
            )
        })
        && report.step("build workers", |_| {
            build::build(&BuildRequest::all_release())
        })
        && report.step("panic hook", panic_hook::check_builds)
        && report.step("build simulator and ops", |_| {
            toolchain::run(
                cargo()
                    .args([
                        "build",
                        "-p",
                        "contribot-sim",
                        "--bin",
                        "upstream-sim",
                        "-p",
                        "contribot-ops",
                        "--bin",
                        "ops",
                    ])
                    .current_dir(&root),
            )
        })
        && report.step("e2e tests", end_to_end)
        && report.step("run leaves nothing", teardown::check_all);

    report.print();
    if passed {
        Ok(())
    } else {
        Err("test: a step failed (see the summary above)".into())
    }
}

/// The folders whose `*.test.mjs` files the e2e step runs.
const NODE_TEST_DIRS: [&str; 2] = ["tests/e2e", "bench"];

/// Runs `tests/e2e/*.test.mjs` and `bench/*.test.mjs`, one file at a time
/// (each e2e file starts its own Miniflare and simulator).
fn end_to_end(tally: &mut Tally) -> Result<StepNote> {
    let root = repo_root();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in NODE_TEST_DIRS.map(|d| root.join(d)) {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
            .collect();
        found.sort();
        files.extend(found);
    }
    if files.is_empty() {
        return Ok(StepNote::Skipped("no tests/e2e/*.test.mjs yet".into()));
    }
    let simulator = std::env::var_os("UPSTREAM_SIM_BIN")
        .unwrap_or_else(|| toolchain::target_dir().join("debug/upstream-sim").into());
    run_counting(
        Command::new(node())
            .arg("--test")
            .arg("--test-concurrency=1")
            .arg("--test-reporter=spec")
            .arg(format!("--test-timeout={E2E_TEST_TIMEOUT_MS}"))
            .args(&files)
            .current_dir(&root)
            .env("UPSTREAM_SIM_BIN", simulator)
            .env("PATH", path_with_npm_bin()?),
        tally,
    )?;
    Ok(StepNote::Done)
}

/// Runs a test command, echoing its stdout line by line while adding the
/// counts it reports to `tally`. Fails when the command exits non-zero.
fn run_counting(command: &mut Command, tally: &mut Tally) -> Result<()> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error(format!("cannot start {}: {e}", describe(command))))?;
    let mut reader = BufReader::new(child.stdout.take().expect("stdout was piped"));
    let mut stdout = std::io::stdout();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error(format!("reading output of {}: {e}", describe(command))))?;
        if read == 0 {
            break;
        }
        // Echo failures only lose output, never the result: ignore them.
        let _ = stdout.write_all(&line).and_then(|()| stdout.flush());
        tally.add(&String::from_utf8_lossy(&line));
    }
    let status = child
        .wait()
        .map_err(|e| Error(format!("waiting for {}: {e}", describe(command))))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error(format!("{} failed ({status})", describe(command))))
    }
}

/// Tests passed and failed, as reported by the runners.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    /// Reads one line of runner output. Understands cargo test's
    /// `test result: ok. 3 passed; 1 failed; ...` and Node's closing
    /// `ℹ pass 3` / `ℹ fail 1` (spec reporter) or `# pass 3` (TAP).
    pub fn add(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result:") {
            for clause in rest.split(';') {
                let mut words = clause.split_whitespace().rev();
                let (Some(label), Some(count)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(count) = count.parse::<u64>() else {
                    continue;
                };
                match label {
                    "passed" => self.passed += count,
                    "failed" => self.failed += count,
                    _ => {}
                }
            }
            return;
        }
        let rest = line.strip_prefix("ℹ ").or_else(|| line.strip_prefix("# "));
        if let Some(rest) = rest {
            let mut words = rest.split_whitespace();
            if let (Some(label), Some(count), None) = (words.next(), words.next(), words.next()) {
                if let Ok(count) = count.parse::<u64>() {
                    match label {
                        "pass" => self.passed += count,
                        "fail" => self.failed += count,
                        _ => {}
                    }
                }
            }
        }
    }
}

/// How a step that did not fail ended.
pub enum StepNote {
    Done,
    Skipped(String),
}

impl From<()> for StepNote {
    fn from((): ()) -> Self {
        StepNote::Done
    }
}

enum Outcome {
    Passed,
    Skipped(String),
    Failed(String),
}

struct StepRecord {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
    tally: Tally,
}

#[derive(Default)]
struct Report {
    /// Every step the run means to take, to list those it never reached.
    planned: &'static [&'static str],
    steps: Vec<StepRecord>,
}

impl Report {
    /// Runs a step and records how it went; returns whether it did not fail.
    fn step<N: Into<StepNote>>(
        &mut self,
        name: &'static str,
        body: impl FnOnce(&mut Tally) -> Result<N>,
    ) -> bool {
        println!("\n==> {name}");
        let started = Instant::now();
        let mut tally = Tally::default();
        let outcome = match body(&mut tally) {
            Ok(note) => match note.into() {
                StepNote::Done => Outcome::Passed,
                StepNote::Skipped(why) => Outcome::Skipped(why),
            },
            Err(error) => Outcome::Failed(error.to_string()),
        };
        let passed = !matches!(outcome, Outcome::Failed(_));
        self.steps.push(StepRecord {
            name,
            outcome,
            elapsed: started.elapsed(),
            tally,
        });
        passed
    }

    fn print(&self) {
        let mut total = Tally::default();
        let mut elapsed = Duration::ZERO;
        println!("\n==> summary");
        for step in &self.steps {
            total.passed += step.tally.passed;
            total.failed += step.tally.failed;
            elapsed += step.elapsed;
            let (status, detail) = match &step.outcome {
                Outcome::Passed => ("ok", String::new()),
                Outcome::Skipped(why) => ("skipped", why.clone()),
                Outcome::Failed(why) => ("FAILED", why.clone()),
            };
            let counts = if step.tally == Tally::default() {
                String::new()
            } else {
                format!(
                    " [{} passed, {} failed]",
                    step.tally.passed, step.tally.failed
                )
            };
            println!(
                "  {status:<8} {:<16} {:>7.1}s{counts} {detail}",
                step.name,
                step.elapsed.as_secs_f64()
            );
        }
        for name in self.planned.iter().skip(self.steps.len()) {
            println!("  {:<8} {name}", "not run");
        }
        println!("  total {:.1}s", elapsed.as_secs_f64());
        println!("tests: {} passed, {} failed", total.passed, total.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(lines: &[&str]) -> Tally {
        let mut tally = Tally::default();
        for line in lines {
            tally.add(line);
        }
        tally
    }

    #[test]
    fn cargo_results_add_up_across_test_binaries() {
        let counted = tally(&[
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.02s",
            "running 3 tests",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ]);
        assert_eq!(
            counted,
            Tally {
                passed: 14,
                failed: 1
            }
        );
    }

    #[test]
    fn node_spec_and_tap_closing_counts_are_read() {
        let counted = tally(&["ℹ tests 5", "ℹ pass 4", "ℹ fail 1", "ℹ duration_ms 812.3"]);
        assert_eq!(
            counted,
            Tally {
                passed: 4,
                failed: 1
            }
        );
        assert_eq!(
            tally(&["# pass 7", "# fail 0"]),
            Tally {
                passed: 7,
                failed: 0
            }
        );
    }

    #[test]
    fn ordinary_output_is_not_counted() {
        let counted = tally(&[
            "✔ pass through the queue (12ms)",
            "test queue::retries ... ok",
            "ℹ pass the salt please",
        ]);
        assert_eq!(counted, Tally::default());
    }
}
