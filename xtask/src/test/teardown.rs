//! `cargo xtask run` leaves no process behind.
//!
//! Each scenario starts `xtask run` (this very binary) the way it is used,
//! with its own work directory, and ends it one way: on its own, on an
//! error, by Ctrl-C (SIGINT to its process group, as a terminal sends it) or
//! by SIGTERM. While it runs, a probe walks `/proc` every 100 ms and records
//! every process below it and every TCP port those processes listen on.
//! Every process also inherits a marker variable, so one that left the tree
//! (re-parented to init) is still found by its environment.
//!
//! Once the task has exited, the scenario fails if any recorded process
//! still runs (same pid and start time), any process carries the marker,
//! or any recorded port is still listening. A bystander (a `sleep` in a
//! group of its own) must still run: the run stops only what it started. It also fails if the probe never
//! saw the stack (the simulator, wrangler's node and workerd, and a listening
//! port), so it cannot pass by watching nothing.

use super::{StepNote, Tally};
use crate::run::procs::{self, SIGINT, SIGKILL, SIGTERM};
use crate::toolchain::{repo_root, target_dir};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Inherited by everything a scenario's run starts.
const MARKER: &str = "CONTRIBOT_TEARDOWN_PROBE";
/// What `xtask run --keep` prints once the stack serves.
const SERVING: &str = "The stack keeps serving at";
/// The processes a run must have shown the probe (executable names).
const EXPECTED: [&str; 3] = ["upstream-sim", "node", "workerd"];
/// Hang guards, not assertions about speed: a scenario that outlives them
/// fails (and is killed) instead of holding CI.
const RUN_LIMIT: Duration = Duration::from_secs(10 * 60);
const EXIT_LIMIT: Duration = Duration::from_secs(2 * 60);

#[derive(Clone, Copy)]
enum End {
    /// The run ends by itself.
    Itself,
    /// Once serving, `signal` goes to the run's process group (Ctrl-C) or
    /// only to the run (`kill`).
    Signal { signal: i32, to_group: bool },
}

struct Scenario {
    name: &'static str,
    args: &'static [&'static str],
    end: End,
    succeeds: bool,
    /// A line the run must print (stdout or stderr).
    prints: &'static str,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        name: "done",
        args: &["--no-scrape"],
        end: End::Itself,
        succeeds: true,
        prints: "both workers answer at",
    },
    Scenario {
        name: "error",
        // The scrape starts, then the zero timeout fails the run.
        args: &["--timeout-mins", "0"],
        end: End::Itself,
        succeeds: false,
        prints: "not drained after 0 minutes",
    },
    Scenario {
        name: "ctrl-c",
        args: &["--no-scrape", "--keep"],
        end: End::Signal {
            signal: SIGINT,
            to_group: true,
        },
        succeeds: true,
        prints: SERVING,
    },
    Scenario {
        name: "sigterm",
        args: &["--no-scrape", "--keep"],
        end: End::Signal {
            signal: SIGTERM,
            to_group: false,
        },
        succeeds: true,
        prints: SERVING,
    },
];

/// The step: every scenario, each counted as one test.
pub fn check_all(tally: &mut Tally) -> Result<StepNote> {
    if !cfg!(target_os = "linux") {
        return Ok(StepNote::Skipped("the probe reads /proc (Linux)".into()));
    }
    let mut failures = Vec::new();
    for scenario in &SCENARIOS {
        println!("--- xtask run, ends: {}", scenario.name);
        match check(scenario) {
            Ok(summary) => {
                tally.passed += 1;
                println!("ok: {} left nothing behind ({summary})", scenario.name);
            }
            Err(error) => {
                tally.failed += 1;
                println!("FAILED: {}: {error}", scenario.name);
                failures.push(format!("{}: {error}", scenario.name));
            }
        }
    }
    if failures.is_empty() {
        Ok(StepNote::Done)
    } else {
        Err(Error(failures.join("; ")))
    }
}

/// Runs one scenario; on success, what the probe saw.
fn check(scenario: &Scenario) -> Result<String> {
    let nonce = format!("{}-{}", std::process::id(), scenario.name);
    let work = target_dir().join("xtask-run-teardown").join(scenario.name);
    let mut bystander = Bystander::start()?;
    let mut command = Command::new(
        std::env::current_exe().map_err(|e| Error(format!("cannot find this xtask: {e}")))?,
    );
    command
        .arg("run")
        .args(scenario.args)
        .arg("--work-dir")
        .arg(&work)
        .env(MARKER, &nonce)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| Error(format!("cannot start xtask run: {e}")))?;
    let lines = forward_output(&mut child, scenario.name);
    let probe = Probe::start(child.id() as i32);
    let ended = drive(&mut child, &lines, scenario);
    let seen = probe.finish();
    let printed = drain(&lines);
    let mut leftovers = leftovers(&seen, &nonce);
    leftovers.bystander_survived = bystander.survived();
    // Whatever happened, leave the machine clean for what runs next.
    for (pid, _) in leftovers.procs.keys() {
        procs::signal(*pid, SIGKILL);
    }
    let (status, mut printed_before) = ended?;
    printed_before.extend(printed);
    verdict(scenario, status, &printed_before, &seen, &leftovers)
}

/// Waits for the run to end, ending it as the scenario says. Returns its
/// exit status and the lines it printed meanwhile.
fn drive(
    child: &mut Child,
    lines: &Receiver<String>,
    scenario: &Scenario,
) -> Result<(ExitStatus, Vec<String>)> {
    let started = Instant::now();
    let mut printed = Vec::new();
    let mut signalled: Option<Instant> = None;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error(format!("waiting for xtask run: {e}")))?
        {
            return Ok((status, printed));
        }
        let overdue = match signalled {
            Some(at) => at.elapsed() > EXIT_LIMIT,
            None => started.elapsed() > RUN_LIMIT,
        };
        if overdue {
            procs::signal(-(child.id() as i32), SIGKILL);
            let _ = child.wait();
            return Err(Error(format!(
                "xtask run did not end (limit {}s); killed",
                if signalled.is_some() {
                    EXIT_LIMIT
                } else {
                    RUN_LIMIT
                }
                .as_secs()
            )));
        }
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let (End::Signal { signal, to_group }, None) = (scenario.end, signalled) {
                    if line.contains(SERVING) {
                        let pid = child.id() as i32;
                        procs::signal(if to_group { -pid } else { pid }, signal);
                        signalled = Some(Instant::now());
                    }
                }
                printed.push(line);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The lines still on their way once the run exited: until its pipes close
/// (a process that kept them open is reported as a leftover anyway).
fn drain(lines: &Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rest = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => rest.push(line),
            Err(_) => break,
        }
    }
    rest
}

/// Echoes the run's stdout and stderr, indented, and hands every line on.
fn forward_output(child: &mut Child, name: &'static str) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let readers: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    ];
    for reader in readers.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(|l| l.ok()) {
                println!("    [{name}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// What the probe saw below the run while it ran.
#[derive(Default)]
struct Seen {
    /// Every process, by (pid, start time), with the name of its executable.
    procs: BTreeMap<(i32, u64), String>,
    ports: BTreeSet<u16>,
}

struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

impl Probe {
    fn start(root: i32) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            while !flag.load(Ordering::SeqCst) {
                let tree = procs::descendants(root);
                for p in tree.iter().filter(|p| !p.zombie) {
                    seen.procs
                        .entry(p.identity())
                        .or_insert_with(|| exe_name(p.pid));
                }
                let pids: Vec<i32> = tree.iter().map(|p| p.pid).collect();
                seen.ports.extend(procs::listening_ports(&pids));
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        Probe { stop, thread }
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

fn exe_name(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".into())
}

/// A process the run did not start, which it must leave alone.
struct Bystander {
    child: Child,
}

impl Bystander {
    fn start() -> Result<Bystander> {
        let mut command = Command::new("sleep");
        command.arg("3600").stdin(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .map_err(|e| Error(format!("cannot start a bystander sleep: {e}")))?;
        Ok(Bystander { child })
    }

    fn survived(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What still exists after the run exited.
struct Leftovers {
    /// By (pid, start time), with the executable's name.
    procs: BTreeMap<(i32, u64), String>,
    ports: Vec<u16>,
    bystander_survived: bool,
}

fn leftovers(seen: &Seen, nonce: &str) -> Leftovers {
    let mut left: BTreeMap<(i32, u64), String> = seen
        .procs
        .iter()
        .filter(|(id, _)| procs::is_running(**id))
        .map(|(id, name)| (*id, name.clone()))
        .collect();
    for p in procs::with_env(MARKER, nonce) {
        left.entry(p.identity()).or_insert_with(|| exe_name(p.pid));
    }
    let listening: BTreeSet<u16> = procs::listening_sockets()
        .into_iter()
        .map(|(port, _)| port)
        .collect();
    Leftovers {
        procs: left,
        ports: seen.ports.intersection(&listening).copied().collect(),
        bystander_survived: false,
    }
}

fn verdict(
    scenario: &Scenario,
    status: ExitStatus,
    printed: &[String],
    seen: &Seen,
    left: &Leftovers,
) -> Result<String> {
    if !left.procs.is_empty() || !left.ports.is_empty() {
        let names: Vec<String> = left
            .procs
            .iter()
            .map(|((pid, _), name)| format!("{name} (pid {pid})"))
            .collect();
        return Err(Error(format!(
            "still running after xtask run exited: [{}]; ports still listening: {:?}",
            names.join(", "),
            left.ports
        )));
    }
    if !left.bystander_survived {
        return Err(Error(
            "a process the run did not start (a bystander sleep) was killed".into(),
        ));
    }
    let names: BTreeSet<&str> = seen.procs.values().map(String::as_str).collect();
    let missing: Vec<&str> = EXPECTED
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    if !missing.is_empty() || seen.ports.is_empty() {
        return Err(Error(format!(
            "the probe did not see the stack (missing {missing:?}, {} ports; saw {names:?})",
            seen.ports.len()
        )));
    }
    if status.success() != scenario.succeeds {
        return Err(Error(format!("xtask run exited with {status}")));
    }
    if !printed.iter().any(|l| l.contains(scenario.prints)) {
        return Err(Error(format!(
            "xtask run never printed {:?}",
            scenario.prints
        )));
    }
    Ok(format!(
        "{} processes and {} listening ports seen, all gone",
        seen.procs.len(),
        seen.ports.len()
    ))
}
