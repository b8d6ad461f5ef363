//! `cargo xtask run`: the whole pipeline on this machine.
//!
//! Builds both workers, starts the upstream simulator seeded with the
//! awesome-for-beginners snapshot, applies the D1 migrations locally with
//! wrangler, starts both workers under one `wrangler dev` with local D1,
//! Queues and R2 persisted in `.contribot/state`, triggers the scraper's cron,
//! follows progress until the queues are drained, prints a report, and stops
//! everything it started (`--keep` leaves the stack serving until Ctrl-C).
//! `--no-scrape` only brings the stack up: with `--keep` it serves an empty
//! database, without it the task stops once both workers answer.
//! `--work-dir DIR` keeps configs, logs and state in DIR instead.
//!
//! Nothing outlives the task: each service runs in a process group of its
//! own, orphans come back to the task (a child subreaper on Linux), and on
//! any exit (done, error, Ctrl-C, SIGTERM, SIGHUP) every group and
//! descendant gets SIGTERM, then SIGKILL after a grace period (see
//! `procs`).
//!
//! The workers run from generated configs in `.contribot/`: the same bindings
//! as `wrangler-*.toml`, with the upstream URLs pointed at the simulator and
//! without the `[ai]` binding, which `wrangler dev` can only serve through a
//! Cloudflare account. The local AI backend is the offline heuristic, or the
//! Workers AI REST API with the user's own account (`--ai rest`).

pub(crate) mod procs;

use crate::build::{self, BuildRequest};
use crate::toolchain::{self, cargo, node, path_with_npm_bin, repo_root};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CRON: &str = "0 */12 * * *";
const SCRAPER: &str = "wrangler-scraper.toml";
const PROCESSOR: &str = "wrangler-processor.toml";

/// How long the services get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Options {
    keep: bool,
    scrape: bool,
    seed: u64,
    ai_rest: bool,
    timeout: Duration,
    work_dir: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            keep: false,
            scrape: true,
            seed: 42,
            ai_rest: std::env::var("CONTRIBOT_AI").is_ok_and(|v| v == "rest"),
            timeout: Duration::from_secs(20 * 60),
            work_dir: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--keep" => o.keep = true,
                "--no-scrape" => o.scrape = false,
                "--work-dir" => {
                    o.work_dir = Some(
                        it.next()
                            .map(PathBuf::from)
                            .ok_or("run: --work-dir takes a directory")?,
                    )
                }
                "--seed" => {
                    o.seed = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("run: --seed takes a number")?
                }
                "--ai" => match it.next().map(String::as_str) {
                    Some("rest") => o.ai_rest = true,
                    Some("heuristic") => o.ai_rest = false,
                    _ => return Err("run: --ai takes `heuristic` or `rest`".into()),
                },
                "--timeout-mins" => {
                    let mins: u64 = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("run: --timeout-mins takes a number")?;
                    o.timeout = Duration::from_secs(mins * 60);
                }
                other => return Err(Error(format!("run: unexpected argument `{other}`"))),
            }
        }
        Ok(o)
    }
}

/// Set by SIGINT/SIGTERM/SIGHUP so the loops can stop and the stack be torn
/// down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
fn on_interrupt() {
    extern "C" fn handler(_: i32) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe {
        signal(1, handler); // SIGHUP
        signal(2, handler); // SIGINT
        signal(15, handler); // SIGTERM
    }
}

#[cfg(not(unix))]
fn on_interrupt() {}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    on_interrupt();
    procs::become_subreaper();
    let root = repo_root();
    let work = match &opts.work_dir {
        Some(dir) => root.join(dir),
        None => root.join(".contribot"),
    };
    std::fs::create_dir_all(&work)
        .map_err(|e| Error(format!("cannot create {}: {e}", work.display())))?;

    step("setup");
    toolchain::setup()?;
    step("building both workers");
    build::build(&BuildRequest::all_release())?;
    step("building the upstream simulator");
    toolchain::run(
        cargo()
            .args([
                "build",
                "--quiet",
                "-p",
                "contribot-sim",
                "--bin",
                "upstream-sim",
            ])
            .current_dir(&root),
    )?;

    interrupted()?;
    // Dropped on every way out of this function, which stops the services.
    let mut stack = procs::Services::new(STOP_GRACE);
    step("starting the upstream simulator");
    let (sim_url, sim) = start_simulator(&opts, &work)?;
    stack.push("upstream simulator", sim);
    println!("    simulator at {sim_url}");

    // wrangler dev watches its modules: serve copies, so a concurrent rebuild
    // in apps/*/build cannot reload the stack mid-run.
    for worker in ["scraper", "processor"] {
        copy_dir(
            &root.join("apps").join(worker).join("build"),
            &work.join("build").join(worker),
        )?;
    }

    let admin_token = format!(
        "local-{:x}",
        (u64::from(std::process::id()) * 0x9E37_79B9) ^ opts.seed
    );
    write_local_configs(&root, &work, &sim_url, &opts, &admin_token)?;

    step("applying D1 migrations (wrangler d1 migrations apply --local)");
    let state = work.join("state");
    let _ = std::fs::remove_dir_all(&state);
    toolchain::run(
        wrangler(&root)
            .args(["d1", "migrations", "apply", "contribot", "--local", "-c"])
            .arg(work.join("scraper.toml"))
            .arg("--persist-to")
            .arg(&state),
    )?;

    interrupted()?;
    let port = free_port()?;
    let inspector_port = free_port()?;
    step(&format!(
        "starting both workers (wrangler dev on port {port})"
    ));
    let dev_log = work.join("wrangler-dev.log");
    let log_file = std::fs::File::create(&dev_log)
        .map_err(|e| Error(format!("{}: {e}", dev_log.display())))?;
    let mut dev = wrangler(&root);
    dev.args([
        "dev",
        "--local",
        "--test-scheduled",
        "--show-interactive-dev-session=false",
        "-c",
    ])
    .arg(work.join("scraper.toml"))
    .arg("-c")
    .arg(work.join("processor.toml"))
    .arg("--persist-to")
    .arg(&state)
    .args(["--port", &port.to_string(), "--ip", "127.0.0.1"])
    .args(["--inspector-port", &inspector_port.to_string()])
    .stdin(Stdio::null())
    .stdout(log_file.try_clone().map_err(|e| Error(e.to_string()))?)
    .stderr(log_file);
    set_process_group(&mut dev);
    let child = dev
        .spawn()
        .map_err(|e| Error(format!("cannot start wrangler dev: {e}")))?;
    stack.push("wrangler dev (both workers)", child);
    let base = format!("http://127.0.0.1:{port}");
    wait_until(Duration::from_secs(180), || {
        http("GET", &base, "/health", None, None)
            .ok()
            .filter(|(s, _)| *s == 200)
            .map(|_| ())
    })
    .or_else(|()| {
        interrupted()?;
        Err(Error(format!(
            "wrangler dev did not answer within 3 minutes; see {}",
            dev_log.display()
        )))
    })?;
    println!("    both workers answer at {base}");

    if opts.scrape {
        scrape_and_report(&root, &work, &base, &admin_token, &opts)?;
    }
    if opts.keep {
        println!(
            "\nThe stack keeps serving at {base} (admin token: {admin_token}); Ctrl-C stops it."
        );
        println!("    ops status --url {base} --token {admin_token}");
        while interrupted().is_ok() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    step("stopping everything this run started");
    stack.stop();
    Ok(())
}

/// Triggers the cron, follows progress until the queues are drained, and
/// prints the report.
fn scrape_and_report(
    root: &Path,
    work: &Path,
    base: &str,
    admin_token: &str,
    opts: &Options,
) -> Result<()> {
    let state = work.join("state");

    step("triggering the scraper's cron");
    let triggered_ms = unix_ms().saturating_sub(1000);
    let (status, _) = http(
        "GET",
        base,
        &format!("/__scheduled?cron={}", CRON.replace(' ', "+")),
        None,
        None,
    )?;
    if status != 200 {
        return Err(Error(format!("/__scheduled answered HTTP {status}")));
    }

    step("following progress until the queues are drained");
    let started = Instant::now();
    let mut last = String::new();
    let final_status = loop {
        interrupted()?;
        if started.elapsed() > opts.timeout {
            return Err(Error(format!(
                "not drained after {} minutes",
                opts.timeout.as_secs() / 60
            )));
        }
        std::thread::sleep(Duration::from_millis(1500));
        let Ok((200, body)) = http("GET", base, "/admin/status", Some(admin_token), None) else {
            continue;
        };
        let Ok(status) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        let status = focus_run(status, triggered_ms);
        let line = progress_line(&status);
        if line != last {
            println!("    [{:>5.0}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if drained(&status) {
            break status;
        }
    };

    step("report");
    print_report(root, work, &state, &final_status)
}

fn step(what: &str) {
    println!("==> {what}");
}

fn wrangler(root: &Path) -> Command {
    let mut c = Command::new(node());
    c.arg(root.join("node_modules/wrangler/bin/wrangler.js"))
        .current_dir(root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true");
    if let Ok(path) = path_with_npm_bin() {
        c.env("PATH", path);
    }
    c
}

#[cfg(unix)]
fn set_process_group(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    c.process_group(0);
}

#[cfg(not(unix))]
fn set_process_group(_: &mut Command) {}

fn start_simulator(opts: &Options, work: &Path) -> Result<(String, Child)> {
    let bin = toolchain::target_dir().join("debug/upstream-sim");
    let log =
        std::fs::File::create(work.join("upstream-sim.log")).map_err(|e| Error(e.to_string()))?;
    let mut command = Command::new(&bin);
    command
        .args(["--port", "0", "--seed", &opts.seed.to_string(), "--quiet"])
        .stdout(Stdio::piped())
        .stderr(log);
    set_process_group(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| Error(format!("cannot start {}: {e}", bin.display())))?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().ok_or("simulator stdout")?)
        .read_line(&mut first)
        .map_err(|e| Error(format!("reading the simulator's first line: {e}")))?;
    let url = first
        .trim()
        .strip_prefix("upstream-sim listening on ")
        .ok_or_else(|| Error(format!("unexpected simulator output: {first:?}")))?
        .trim_end_matches('/')
        .to_string();
    Ok((url, child))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error(format!("no free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| Error(e.to_string()))?.port())
}

/// Generated configs: `wrangler-*.toml` with local paths, simulator URLs,
/// no `[build]` (already built) and no `[ai]` binding.
fn write_local_configs(
    root: &Path,
    work: &Path,
    sim: &str,
    opts: &Options,
    admin_token: &str,
) -> Result<()> {
    let list = format!("{sim}/raw/MunGell/awesome-for-beginners/main");
    let mut processor_vars = vec![("GITHUB_API_URL", sim.to_string())];
    let mut secrets = vec![
        ("GITHUB_TOKEN", "local-simulator-token".to_string()),
        ("ADMIN_TOKEN", admin_token.to_string()),
    ];
    if opts.ai_rest {
        let account = std::env::var("CF_ACCOUNT_ID")
            .map_err(|_| "--ai rest needs CF_ACCOUNT_ID in the environment")?;
        let token = std::env::var("CF_API_TOKEN")
            .map_err(|_| "--ai rest needs CF_API_TOKEN in the environment")?;
        processor_vars.push(("AI_BACKEND", "rest".into()));
        processor_vars.push(("CF_ACCOUNT_ID", account));
        processor_vars.push((
            "AI_REST_URL",
            std::env::var("AI_REST_URL").unwrap_or_else(|_| "https://api.cloudflare.com".into()),
        ));
        secrets.push(("CF_API_TOKEN", token));
    } else {
        processor_vars.push(("AI_BACKEND", "heuristic".into()));
    }
    let scraper_vars = vec![
        ("GITHUB_API_URL", sim.to_string()),
        ("LIST_DATA_URL", format!("{list}/data.json")),
        ("LIST_README_URL", format!("{list}/README.md")),
        // The simulated world is dated around 2024-05 (seeded, never the
        // wall clock): with the default year every repo would be inactive.
        ("INACTIVE_AFTER_DAYS", "36500".to_string()),
    ];
    for (src, dst, vars) in [
        (SCRAPER, "scraper.toml", &scraper_vars),
        (PROCESSOR, "processor.toml", &processor_vars),
    ] {
        let text =
            std::fs::read_to_string(root.join(src)).map_err(|e| Error(format!("{src}: {e}")))?;
        let out = localise(&text, root, vars);
        std::fs::write(work.join(dst), out).map_err(|e| Error(format!("{dst}: {e}")))?;
    }
    let dev_vars: String = secrets.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(work.join(".dev.vars"), dev_vars).map_err(|e| Error(e.to_string()))?;
    Ok(())
}

/// Rewrite a wrangler toml for the work directory: `main` in its copies of
/// the builds, `migrations_dir` under `root`, vars overridden, `[build]` and
/// `[ai]` dropped.
fn localise(text: &str, root: &Path, vars: &[(&str, String)]) -> String {
    let mut out = String::new();
    let mut section = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.to_string();
        }
        if section == "[build]" || section == "[ai]" {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("main = \"apps/") {
            // apps/<worker>/build/... -> build/<worker>/... (the copies)
            let rest = rest.replacen("/build/", "/", 1);
            out.push_str(&format!("main = \"build/{rest}\n"));
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("migrations_dir = \"") {
            let dir = root.join(rest.trim_end_matches('"'));
            out.push_str(&format!(
                "migrations_dir = {}\n",
                json!(dir.to_string_lossy())
            ));
            continue;
        }
        if section == "[vars]" {
            if let Some((key, _)) = trimmed.split_once(" = ") {
                if let Some((_, value)) = vars.iter().find(|(k, _)| *k == key) {
                    out.push_str(&format!("{key} = {}\n", json!(value)));
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
        if section == "[vars]" && trimmed == "[vars]" {
            // Vars the toml does not declare are added right after the header.
            for (k, v) in vars {
                if !text.contains(&format!("\n{k} = ")) {
                    out.push_str(&format!("{k} = {}\n", json!(v)));
                }
            }
        }
    }
    out
}

fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> std::result::Result<T, ()> {
    let start = Instant::now();
    while start.elapsed() < limit && !INTERRUPTED.load(Ordering::SeqCst) {
        if let Some(v) = f() {
            return Ok(v);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(())
}

/// A minimal HTTP/1.1 client for the local stack: (status, body).
fn http(
    method: &str,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let hostport = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(hostport).map_err(|e| Error(format!("{base}: {e}")))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: contribot-xtask\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| Error(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| Error(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn n(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_i64()
        .or_else(|| cur.as_f64().map(|f| f as i64))
        .unwrap_or(0)
}

fn progress_line(s: &Value) -> String {
    let run = &s["runs"][0];
    format!(
        "run {}: repos scraped {}, issues upserted {}, closed {}, queued {}, continuations {} | processed: repos {}, issues {} | pending {} | failed {}",
        run["status"].as_str().unwrap_or("starting"),
        n(run, &["repos_seen"]),
        n(run, &["issues_upserted"]),
        n(run, &["issues_closed"]),
        n(run, &["messages_queued"]),
        n(run, &["continuations"]),
        n(s, &["repos", "completed"]),
        n(s, &["issues", "completed"]),
        n(s, &["backlog", "repos"]) + n(s, &["backlog", "issues"]),
        n(s, &["repos", "failed"]) + n(s, &["issues", "failed"]),
    )
}

/// Put the run this task triggered first in `runs` (a later one, e.g. a
/// cron firing meanwhile, must not be mistaken for it).
fn focus_run(mut status: Value, triggered_ms: i64) -> Value {
    if let Some(runs) = status["runs"].as_array_mut() {
        if let Some(pos) = runs
            .iter()
            .rposition(|r| r["started_at"].as_i64().is_some_and(|t| t >= triggered_ms))
        {
            let ours = runs.remove(pos);
            runs.insert(0, ours);
        }
    }
    status
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(|e| Error(format!("{}: {e}", to.display())))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error(format!("{}: {e}", from.display())))? {
        let entry = entry.map_err(|e| Error(e.to_string()))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name))
                .map_err(|e| Error(format!("{}: {e}", path.display())))?;
        }
    }
    Ok(())
}

fn drained(s: &Value) -> bool {
    let run_done = s["runs"][0]["status"]
        .as_str()
        .is_some_and(|st| st != "running");
    run_done
        && n(s, &["backlog", "repos"])
            + n(s, &["backlog", "issues"])
            + n(s, &["backlog", "unqueued"])
            == 0
}

/// `wrangler d1 execute --local` one query, rows as JSON.
fn query(root: &Path, work: &Path, state: &Path, sql: &str) -> Result<Vec<Value>> {
    // workerd may hold the database briefly while it serves: retry SQLITE_BUSY.
    let mut attempt = 0;
    loop {
        interrupted()?;
        attempt += 1;
        match query_once(root, work, state, sql) {
            Err(e) if attempt < 10 && e.to_string().contains("SQLITE_BUSY") => {
                std::thread::sleep(Duration::from_millis(500 * attempt));
            }
            other => return other,
        }
    }
}

fn query_once(root: &Path, work: &Path, state: &Path, sql: &str) -> Result<Vec<Value>> {
    let out = wrangler(root)
        .args(["d1", "execute", "contribot", "--local", "--json", "-c"])
        .arg(work.join("scraper.toml"))
        .arg("--persist-to")
        .arg(state)
        .args(["--command", sql])
        .output()
        .map_err(|e| Error(format!("wrangler d1 execute: {e}")))?;
    if !out.status.success() {
        return Err(Error(format!(
            "wrangler d1 execute failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error(format!("d1 execute output: {e}")))?;
    Ok(v[0]["results"].as_array().cloned().unwrap_or_default())
}

fn print_report(root: &Path, work: &Path, state: &Path, status: &Value) -> Result<()> {
    let totals = query(root, work, state,
        "SELECT (SELECT COUNT(*) FROM repos WHERE active = 1) AS repos, \
                (SELECT COUNT(*) FROM repos WHERE active = 1 AND upstream_status = 'ok') AS reachable, \
                (SELECT COUNT(*) FROM issues WHERE state = 'open') AS open_issues, \
                (SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status = 'completed') AS analysed")?;
    let t = totals.first().cloned().unwrap_or_default();
    println!(
        "\nRepos: {} listed, {} reachable on GitHub. Open beginner issues: {} ({} analysed).",
        n(&t, &["repos"]),
        n(&t, &["reachable"]),
        n(&t, &["open_issues"]),
        n(&t, &["analysed"])
    );

    println!("\nIssues by difficulty (1 easiest):");
    let by_difficulty = query(root, work, state, "SELECT difficulty, COUNT(*) AS n FROM issues WHERE state = 'open' AND difficulty IS NOT NULL GROUP BY difficulty ORDER BY difficulty")?;
    let most = by_difficulty
        .iter()
        .map(|r| n(r, &["n"]))
        .max()
        .unwrap_or(1)
        .max(1);
    for r in &by_difficulty {
        let count = n(r, &["n"]);
        let bar = ((count * 50 + most - 1) / most) as usize;
        println!(
            "  {}  {:>5}  {}",
            n(r, &["difficulty"]),
            count,
            "#".repeat(bar)
        );
    }

    println!("\nIssues by language (the repo's primary language):");
    for r in query(root, work, state, "SELECT COALESCE(r.primary_language, 'unknown') AS language, COUNT(*) AS n FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' GROUP BY language ORDER BY n DESC LIMIT 12")? {
        println!("  {:<14} {:>5}", r["language"].as_str().unwrap_or("?"), n(&r, &["n"]));
    }

    println!("\nOpen issues by availability to a beginner:");
    for r in query(root, work, state, "SELECT availability, COUNT(*) AS n FROM issues WHERE state = 'open' GROUP BY availability ORDER BY n DESC")? {
        println!("  {:<14} {:>5}", r["availability"].as_str().unwrap_or("?"), n(&r, &["n"]));
    }

    println!("\nThe 5 best beginner issues (available, easiest, freshest):");
    let best = query(root, work, state,
        "SELECT r.owner || '/' || r.name AS repo, i.number, i.title, i.url, i.difficulty, i.intro, i.first_steps, i.analysis_model \
         FROM issues i JOIN repos r ON r.id = i.repo_id \
         WHERE i.state = 'open' AND i.available = 1 AND i.processing_status = 'completed' \
         ORDER BY i.difficulty ASC, i.priority DESC, i.comment_count ASC LIMIT 5")?;
    for (k, r) in best.iter().enumerate() {
        println!(
            "\n  {}. {}#{} (difficulty {}) {}",
            k + 1,
            r["repo"].as_str().unwrap_or(""),
            n(r, &["number"]),
            n(r, &["difficulty"]),
            r["title"].as_str().unwrap_or("")
        );
        println!("     {}", r["url"].as_str().unwrap_or(""));
        println!("     {}", r["intro"].as_str().unwrap_or(""));
        let steps: Vec<String> = r["first_steps"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        for (j, s) in steps.iter().enumerate() {
            println!("       {}) {s}", j + 1);
        }
        println!(
            "     (analysis: {})",
            r["analysis_model"].as_str().unwrap_or("?")
        );
    }

    println!("\nInvocations:");
    if let Some(list) = status["invocations"].as_array() {
        for r in list {
            println!(
                "  {:<10} {:>5} invocations, max {} subrequests (mean {:.1}) of the 45 budget",
                r["service"].as_str().unwrap_or("?"),
                n(r, &["invocations"]),
                n(r, &["max_subrequests"]),
                r["mean_subrequests"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let run = &status["runs"][0];
    println!("  scrape run {}: {} invocations, {} continuations, {} GitHub requests, {} GraphQL points; status {}",
        run["id"].as_str().unwrap_or("?"), n(run, &["invocations"]), n(run, &["continuations"]), n(run, &["github_requests"]), n(run, &["graphql_points"]), run["status"].as_str().unwrap_or("?"));
    let failed = n(status, &["repos", "failed"]) + n(status, &["issues", "failed"]);
    println!("  failed items: {failed}");

    let keys = query(root, work, state, "SELECT log_key FROM invocations WHERE log_key IS NOT NULL ORDER BY started_at DESC LIMIT 1")?;
    let example = keys
        .first()
        .and_then(|r| r["log_key"].as_str())
        .unwrap_or("logs/YYYY/MM/DD/scraper-<run>-<ts>.jsonl")
        .to_string();
    println!(
        "\nR2 logs: local bucket contribot-logs under {} (one JSONL object per invocation).",
        state.display()
    );
    println!("Read one (its last line is the summary):");
    println!("  node_modules/.bin/node node_modules/wrangler/bin/wrangler.js r2 object get 'contribot-logs/{example}' --local --persist-to {} -c {} --pipe | jq -c '{{ts, level, event, fields}}'",
        rel(root, state).display(), rel(root, &work.join("scraper.toml")).display());
    Ok(())
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localised_config_serves_the_copies_and_drops_build_and_ai() {
        let toml = "name = \"x\"\nmain = \"apps/p/build/worker/shim.mjs\"\n\n[build]\ncommand = \"cargo xtask build p\"\n\n[vars]\nGITHUB_API_URL = \"https://api.github.com\"\nLOG_LEVEL = \"info\"\n\n[ai]\nbinding = \"AI\"\n\n[[d1_databases]]\nbinding = \"DB\"\nmigrations_dir = \"migrations\"\n";
        let out = localise(
            toml,
            Path::new("/src/contribot"),
            &[
                ("GITHUB_API_URL", "http://127.0.0.1:9".into()),
                ("AI_BACKEND", "heuristic".into()),
            ],
        );
        assert!(out.contains("main = \"build/p/worker/shim.mjs\""));
        assert!(out.contains("migrations_dir = \"/src/contribot/migrations\""));
        assert!(out.contains("GITHUB_API_URL = \"http://127.0.0.1:9\""));
        assert!(out.contains("AI_BACKEND = \"heuristic\""));
        assert!(out.contains("LOG_LEVEL = \"info\""));
        assert!(
            !out.contains("[build]") && !out.contains("[ai]") && !out.contains("binding = \"AI\"")
        );
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
