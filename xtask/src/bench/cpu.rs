//! CPU per invocation, measured in V8: the run of `bench/cpu.mjs`, the
//! headline rows and section 7 of BENCHMARKS.md, and the opt-level
//! comparison (`cargo xtask bench --opt-levels`).
//!
//! `bench/cpu.mjs` runs the compiled release workers in Miniflare (workerd)
//! against the simulator and wraps each invocation, one at a time, in a CDP
//! CPU profile of its isolate (its header comment has the method). Its JSON
//! lists every invocation; the statistics here are computed from that list.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::{command_output, commit, f, yes};
use crate::build::{self, Variant, Worker};
use crate::toolchain::{self, describe, node, path_with_npm_bin};
use crate::{Error, Result};

/// Workers Free: CPU per invocation.
pub(super) const CPU_LIMIT_MS: f64 = 10.0;
/// Headroom the issue asks for at p95.
const P95_AIM_MS: f64 = 5.0;
/// Workers: memory per isolate (128 MB).
const MEMORY_LIMIT_BYTES: f64 = 128.0 * 1_000_000.0;
/// Gzip size a worker must stay under for an opt-level to be kept.
const OPT_SIZE_LIMIT_BYTES: f64 = 1024.0 * 1024.0;
/// The snapshot scenarios, in the order they run.
pub(super) const SNAPSHOT_RUNS: [&str; 3] = ["full", "unchanged", "changed"];
/// Frames listed per busiest invocation.
const TOP_FRAMES: usize = 8;
/// The opt-levels compared, and where the comparison is kept.
const OPT_LEVELS: [&str; 3] = ["z", "s", "3"];
/// Rounds of the comparison, the levels interleaved in each: one run's
/// noise on this shared machine is of the order of the differences.
const OPT_ROUNDS: usize = 2;
const OPT_LEVELS_FILE: &str = "bench/opt-levels.json";

// ------------------------------------------------------------------ runs

/// Runs `node bench/cpu.mjs` (the three snapshot runs, the read API after
/// them, and the scraper at `+scale` repos) and reads the JSON it writes.
pub(super) fn measure(root: &Path, simulator: &Path, scale: u64) -> Result<Value> {
    println!(
        "\n==> CPU per invocation in V8 (bench/cpu.mjs): full, unchanged, changed, read API, +{scale} repos"
    );
    let json = toolchain::target_dir().join("bench/cpu.json");
    let scale = scale.to_string();
    let scenarios = "full,unchanged,changed,api,scale";
    run_cpu_bench(
        root,
        simulator,
        &["--scenario", scenarios, "--scale", &scale],
        &json,
        None,
    )
}

fn run_cpu_bench(
    root: &Path,
    simulator: &Path,
    args: &[&str],
    json: &Path,
    builds: Option<&Path>,
) -> Result<Value> {
    let mut command = Command::new(node());
    command
        .arg("bench/cpu.mjs")
        .args(args)
        .arg("--quiet")
        .arg("--json")
        .arg(json)
        .arg("--profiles")
        .arg(json.with_extension(""))
        .current_dir(root)
        .env("PATH", path_with_npm_bin()?)
        .env("UPSTREAM_SIM_BIN", simulator)
        // The figure is workerd's own V8 settings: a diagnostic flag left
        // in the shell must not reach BENCHMARKS.md.
        .env_remove("MINIFLARE_WORKERD_V8_FLAGS")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    if let Some(dir) = builds {
        command.arg("--builds").arg(dir);
    }
    toolchain::run(&mut command)?;
    let text = std::fs::read_to_string(json).map_err(|e| {
        Error(format!(
            "{} wrote no {}: {e}",
            describe(&command),
            json.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| Error(format!("{}: {e}", json.display())))
}

/// `cargo xtask bench --opt-levels`: each worker built with opt-level z, s
/// and 3 (own target and output directories, the shared build untouched),
/// its gzip size, then the CPU of the three snapshot runs on each build,
/// back to back so the machine's load is alike; written to
/// bench/opt-levels.json, which every later report renders.
pub(super) fn compare_opt_levels(root: &Path, simulator: &Path) -> Result<()> {
    let base = |level: &str| toolchain::target_dir().join("opt-levels").join(level);
    let mut sizes = Vec::new();
    for level in OPT_LEVELS {
        let mut per_worker = serde_json::Map::new();
        for worker in Worker::ALL {
            let variant = Variant {
                opt_level: level.to_string(),
                target_dir: base(level).join("target"),
                out_dir: base(level).join(worker.name()),
            };
            build::build_variant(worker, &variant)?;
            let wasm = std::fs::read(variant.out_dir.join("index_bg.wasm"))
                .map_err(|e| Error(format!("cannot read the opt-level {level} build: {e}")))?;
            per_worker.insert(
                worker.name().into(),
                json!({"raw": wasm.len(), "gzip": build::gzip_len(&wasm)?}),
            );
        }
        sizes.push(Value::Object(per_worker));
    }
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); OPT_LEVELS.len()];
    for round in 1..=OPT_ROUNDS {
        for (i, level) in OPT_LEVELS.iter().enumerate() {
            println!("\n==> CPU with opt-level {level}, round {round} of {OPT_ROUNDS}");
            runs[i].push(run_cpu_bench(
                root,
                simulator,
                &["--scenario", "full,unchanged,changed"],
                &base(level).join(format!("cpu-{round}.json")),
                Some(&base(level)),
            )?);
        }
    }
    let levels: Vec<Value> = OPT_LEVELS
        .iter()
        .zip(sizes)
        .zip(&runs)
        .map(|((level, sizes), runs)| {
            json!({"opt_level": level, "sizes": sizes, "rounds": runs.len(), "cpu": summary(runs)})
        })
        .collect();
    let doc = json!({
        "commit": commit(root),
        "date": command_output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_else(|| "unknown date".into()),
        "levels": levels,
    });
    let path = root.join(OPT_LEVELS_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    )
    .map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
    println!("{}", opt_level_table(&doc, &current_opt_level(root)));
    println!("xtask: wrote {}", path.display());
    Ok(())
}

/// Per worker, max and mean CPU over every invocation of the snapshot runs
/// of every round.
fn summary(rounds: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for worker in Worker::ALL {
        let values: Vec<f64> = rounds
            .iter()
            .flat_map(|cpu| {
                SNAPSHOT_RUNS
                    .iter()
                    .flat_map(move |run| cpu_values(cpu, run, worker.name(), Include::All))
            })
            .collect();
        let s = stats(&values);
        out.insert(
            worker.name().into(),
            json!({"count": s.count, "max": s.max, "p95": s.p95, "mean": s.mean}),
        );
    }
    Value::Object(out)
}

/// `[profile.release] opt-level` of the root Cargo.toml, as written there.
fn current_opt_level(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let mut in_release = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_release = line == "[profile.release]";
        } else if in_release && line.starts_with("opt-level") {
            if let Some(value) = line.split('=').nth(1) {
                return value.trim().trim_matches('"').to_string();
            }
        }
    }
    "3".into()
}

// ------------------------------------------------------------------ figures

/// `count`, `max`, nearest-rank `p95` and `mean` of a list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stats {
    pub count: usize,
    pub max: f64,
    pub p95: f64,
    pub mean: f64,
}

/// The statistics of CPU figures. p95 is the nearest-rank percentile: the
/// smallest value with at least 95% of the values at or below it.
pub(super) fn stats(values: &[f64]) -> Stats {
    if values.is_empty() {
        return Stats {
            count: 0,
            max: 0.0,
            p95: 0.0,
            mean: 0.0,
        };
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.95 * sorted.len() as f64).ceil() as usize).max(1);
    Stats {
        count: sorted.len(),
        max: sorted[sorted.len() - 1],
        p95: sorted[rank - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    }
}

/// Which invocations of a run: all, or at scale all but the list's.
#[derive(Clone, Copy, PartialEq)]
enum Include {
    All,
    AllButList,
    List,
}

/// CPU (ms) of each invocation of `worker` in `run`.
fn cpu_values(cpu: &Value, run: &str, worker: &str, include: Include) -> Vec<f64> {
    cpu["results"][run][worker]["invocations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            let list = f(i, &["list_fetches"]) > 0.0;
            match include {
                Include::All => true,
                Include::AllButList => !list,
                Include::List => list,
            }
        })
        .map(|i| f(i, &["cpu_ms"]))
        .collect()
}

/// The headline: the largest invocation of each worker over the snapshot
/// runs, `None` where a worker never ran.
pub(super) fn snapshot_max(cpu: &Value) -> (Option<f64>, Option<f64>) {
    let max = |worker: Worker| {
        let all: Vec<f64> = SNAPSHOT_RUNS
            .iter()
            .flat_map(|run| cpu_values(cpu, run, worker.name(), Include::All))
            .collect();
        (!all.is_empty()).then(|| stats(&all).max)
    };
    (max(Worker::Scraper), max(Worker::Processor))
}

/// At scale: the max of every scraper invocation but the list's, and the
/// list invocation's figure.
pub(super) fn scale_max(cpu: &Value) -> Option<(f64, Option<f64>)> {
    let rest = cpu_values(cpu, "scale", "scraper", Include::AllButList);
    if rest.is_empty() {
        return None;
    }
    let list = cpu_values(cpu, "scale", "scraper", Include::List);
    Some((
        stats(&rest).max,
        (!list.is_empty()).then(|| stats(&list).max),
    ))
}

/// The scraper isolate's peak memory at scale: its wasm memory (which only
/// grows, so its final size is its peak) plus the largest JS heap seen
/// after any invocation.
pub(super) fn scale_memory(cpu: &Value) -> Option<(f64, f64)> {
    let m = &cpu["results"]["memory_scale"]["scraper"];
    let wasm: f64 = m["wasm_memories"]
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .sum();
    let heap = f(m, &["js_heap_total"]).max(f(
        &cpu["results"]["scale"]["scraper"],
        &["js_heap_total_max"],
    ));
    Some((wasm, heap))
}

pub(super) fn ms_pair(pair: (Option<f64>, Option<f64>)) -> String {
    let one = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.1}"));
    format!("{} / {} ms", one(pair.0), one(pair.1))
}

pub(super) fn within(pair: (Option<f64>, Option<f64>)) -> bool {
    pair.0.is_some()
        && [pair.0, pair.1]
            .iter()
            .flatten()
            .all(|&v| v <= CPU_LIMIT_MS)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// A Rust frame name without its `::h<hash>` suffix, for reading.
pub(super) fn short_frame(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

// ------------------------------------------------------------------ report

/// BENCHMARKS.md section 7.
pub(super) fn section(w: &mut String, cpu: &Value, root: &Path) {
    let _ = writeln!(w, "\n## 7. CPU per invocation (V8 in workerd)\n");
    if cpu["results"].is_null() {
        let _ = writeln!(w, "Not measured in this run.");
        return;
    }
    method(w, cpu);
    let _ = writeln!(
        w,
        "| run | worker | invocations | max | p95 | mean | max ≤ 10 ms | p95 ≤ 5 ms |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for run in SNAPSHOT_RUNS {
        for worker in Worker::ALL {
            row(
                w,
                run,
                worker.name(),
                &cpu_values(cpu, run, worker.name(), Include::All),
            );
        }
    }
    for (run, label) in [
        ("api_miss", "read API, answer not cached"),
        ("api_hit", "read API, answer cached"),
    ] {
        row(
            w,
            label,
            "scraper",
            &cpu_values(cpu, run, "scraper", Include::All),
        );
    }
    let scale = f(&cpu["results"]["scale"], &["added_repos"]);
    let scale_label = format!("+{} repos", super::thousands(scale));
    row(
        w,
        &format!("{scale_label}, all but the list parse"),
        "scraper",
        &cpu_values(cpu, "scale", "scraper", Include::AllButList),
    );
    row(
        w,
        &format!("{scale_label}, the list parse"),
        "scraper",
        &cpu_values(cpu, "scale", "scraper", Include::List),
    );
    sparse(w, cpu);
    cold(w, cpu);
    busiest(w, cpu);
    scale_notes(w, cpu, &scale_label);
    api_notes(w, cpu);
    let _ = writeln!(w, "\n### opt-level (`[profile.release]` of Cargo.toml)\n");
    match std::fs::read_to_string(root.join(OPT_LEVELS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        Some(doc) => {
            let _ = writeln!(
                w,
                "From `cargo xtask bench --opt-levels` at commit `{}` ({}): each worker built \
                 with each level (LTO, one codegen unit, as the release profile), its gzip \
                 size, and the CPU of every invocation of the three snapshot runs on that \
                 build, measured as above, {} rounds with the levels interleaved (max and mean \
                 over all of them; on this shared machine one run's noise is ~10–20%, and the \
                 max is set by the isolates' first invocations). Kept: the lowest maximum CPU (the \
                 target is the maximum) that fits \
                 ≤ 1 MiB gzip per worker.\n",
                doc["commit"].as_str().unwrap_or("?"),
                doc["date"].as_str().unwrap_or("?"),
                doc["levels"][0]["rounds"].as_u64().unwrap_or(1),
            );
            let _ = writeln!(w, "{}", opt_level_table(&doc, &current_opt_level(root)));
        }
        None => {
            let _ = writeln!(
                w,
                "Not compared yet: `cargo xtask bench --opt-levels` writes {OPT_LEVELS_FILE}."
            );
        }
    }
}

fn method(w: &mut String, cpu: &Value) {
    let build = &cpu["build"];
    let names = Worker::ALL
        .iter()
        .all(|wk| build[wk.name()]["names"].as_bool().unwrap_or(false));
    let _ = writeln!(
        w,
        "Measured by `node bench/cpu.mjs` on the compiled release workers \
         (`apps/*/build`{}) in Miniflare's workerd, against the simulator (seed 42). {} \
         The bench is the queue: the workers \
         keep their real producers, a bench-only worker consumes the queues and hands each \
         message to the driver, which invokes the consumer itself with `Fetcher.queue()` \
         (batches of `max_batch_size`, acks and retries applied as Queues would) and the \
         cron with `Fetcher.scheduled()`, one invocation at a time. Checked: the unchanged \
         rerun with every GraphQL answer 300 ms late (`node bench/cpu.mjs --scenario \
         unchanged --sanity`) costs the same CPU. GC and V8/workerd native time on the \
         isolate's behalf count. The processor's \
         pacing (`AI_CALLS_PER_MINUTE`, `GITHUB_POINTS_PER_MINUTE`) is lifted for the run: it \
         only sleeps. Attaching the inspector makes V8 drop the wasm code an isolate \
         compiled before it, so each worker's start-up warm-up (`apps/*/warm-up.mjs`: the \
         processor one batch, the scraper one whole run, through their handlers against \
         in-memory stand-ins) is run again after \
         attaching, outside every invocation's profile, as a deployed isolate has run it at \
         start-up. Invocations run on this shared machine, not Cloudflare's: {} The busiest \
         profiles are in `target/bench/cpu/*.cpuprofile` (Chrome DevTools opens them).\n",
        if names {
            ", which keep the wasm `name` section: worker-build runs wasm-opt with \
             `--debuginfo`; a custom section costs no CPU, so this is also the figure of the \
             deployed build"
        } else {
            "; **without the wasm `name` section**, so Rust frames are unnamed — \
             `cargo xtask build --profiling` checks for it"
        },
        meter(cpu),
        pinning(cpu),
    );
}

/// What an invocation's CPU figure is: the isolate clock's, or V8's sampler's.
fn meter(cpu: &Value) -> String {
    let interval = f(cpu, &["interval_us"]);
    match cpu["clock"]["window_interval_us"].as_f64() {
        Some(window) => format!(
            "An invocation's CPU is read by the isolate clock (`bench/isolate-clock.mjs`): \
             user probes on workerd's `v8::Isolate::Enter` and `v8::Isolate::Exit`, recorded \
             by `perf` on workerd's main thread (which runs every isolate), each read the \
             thread's own CPU clock (`task-clock`), so a span from an enter to its exit is \
             that isolate's CPU with any preemption left out; the invocation's figure is the \
             sum of its worker's spans inside a CDP `Profiler.start` / `Profiler.stop` window \
             around exactly one invocation (V8 sampling every {window} µs, only to mark the \
             window and tell the isolates apart). Waiting on the simulator, D1 or a queue is \
             outside every span. V8's sampler is not the figure: on a busy machine it falls \
             behind the interval asked for and drops samples, and its signal handling is CPU \
             on the measured thread. The frames come from a second pass \
             of the same runs with V8 sampling every {interval} µs (the same invocation, by \
             its place in the run); that pass's figures per run and worker are in the JSON as \
             `v8_cpu_ms`."
        ),
        None => format!(
            "An invocation's CPU is V8's CPU profiler through workerd's inspector \
             (`--inspector-addr`, each isolate a target `core:user:<name>`): CDP \
             `Profiler.start` / `Profiler.stop`, sampling every {interval} µs, around exactly \
             one invocation, its non-idle samples summed (each counts at most 1.5 of the \
             achieved sampling periods, so waiting on the simulator, D1 or a queue is not \
             counted); the profiler's own sampling adds some. The isolate clock was \
             unavailable (it needs root, perf, binutils and tracefs)."
        ),
    }
}

/// How the bench kept other work off the isolate's thread.
fn pinning(cpu: &Value) -> String {
    let clock = !cpu["clock"].is_null();
    match cpu["pinned"]["isolate_cpu"].as_u64() {
        Some(core) => format!(
            "workerd's main thread, which runs every isolate, had CPU {core} to itself \
             (`taskset`; the simulator, the driver and V8's background compiler and GC ran on \
             CPU {}), {}",
            cpu["pinned"]["others"].as_str().unwrap_or("?"),
            if clock {
                "so no other work shared its core or its caches."
            } else {
                "since a sample taken after the isolate's thread was preempted counts the \
                 time it waited."
            }
        ),
        None if clock => "workerd's main thread was **not** pinned to a core of its own (one \
                          CPU, or no `taskset`); the isolate clock leaves out the time it was \
                          preempted."
            .into(),
        None => "workerd's main thread was **not** pinned to a core of its own (one CPU, or \
                 no `taskset`), so these figures include time it was preempted."
            .into(),
    }
}

fn row(w: &mut String, run: &str, worker: &str, values: &[f64]) {
    if values.is_empty() {
        return;
    }
    let s = stats(values);
    let _ = writeln!(
        w,
        "| {run} | {worker} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |",
        s.count,
        s.max,
        s.p95,
        s.mean,
        yes(s.max <= CPU_LIMIT_MS),
        yes(s.p95 <= P95_AIM_MS)
    );
}

/// The first invocations of each isolate (the full run starts them): they
/// also compile what they run first.
fn cold(w: &mut String, cpu: &Value) {
    let mut parts = Vec::new();
    for worker in Worker::ALL {
        let first = first_invocations(cpu, "full", worker.name(), 3);
        if !first.is_empty() {
            let list: Vec<String> = first.iter().map(|ms| format!("{ms:.1}")).collect();
            parts.push(format!("{} {} ms", worker.name(), list.join(", ")));
        }
    }
    if parts.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "\nThe first invocations of a fresh isolate also pay for compiling what they run (V8 \
         compiles a wasm function on its first call, and runs it unoptimised until it is hot); \
         a twice-daily cron is likely to meet fresh isolates on Cloudflare too, so they count. \
         Both workers run their handlers at start-up instead (their warm-ups, above), \
         outside the per-invocation budget (Workers allow start-up 1 s of CPU), so V8 has \
         compiled that code, and optimised the scraper's per-repo and per-issue paths over \
         the warm-up world's 100 repos. \
         First three invocations of each isolate in the full run: {}.{}",
        parts.join("; "),
        warm_up_cpu(cpu)
    );
}

/// How many profiles of the snapshot runs V8's sampler fell behind in (when
/// its samples are the figure, not the isolate clock's).
fn sparse(w: &mut String, cpu: &Value) {
    if !cpu["clock"].is_null() {
        return;
    }
    let mut parts = Vec::new();
    for worker in Worker::ALL {
        let invocations: Vec<&Value> = SNAPSHOT_RUNS
            .iter()
            .filter_map(|run| cpu["results"][run][worker.name()]["invocations"].as_array())
            .flatten()
            .collect();
        let sparse = invocations
            .iter()
            .filter(|i| i["sparse"].as_bool().unwrap_or(false))
            .count();
        if !invocations.is_empty() {
            parts.push(format!(
                "{} {sparse} of {}",
                worker.name(),
                invocations.len()
            ));
        }
    }
    if parts.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "\nProfiles in which V8's sampler fell behind (its median gap between samples at \
         the bound of 4 intervals: few samples, so that invocation's figure is a floor), in \
         the three snapshot runs: {}.",
        parts.join(", ")
    );
}

/// The warm-ups' own CPU, profiled when the bench re-ran them.
fn warm_up_cpu(cpu: &Value) -> String {
    let parts: Vec<String> = Worker::ALL
        .iter()
        .filter_map(|wk| {
            let ms = cpu["results"]["warm_up_cpu_ms"][wk.name()].as_f64()?;
            Some(format!("{} {ms:.1} ms", wk.name()))
        })
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(
        " The warm-ups themselves, profiled when the bench re-ran them: {} of CPU (of \
         start-up's 1 s).",
        parts.join(", ")
    )
}

/// CPU of the first `n` invocations of `worker`'s isolate in `run`, in order.
fn first_invocations(cpu: &Value, run: &str, worker: &str, n: u64) -> Vec<f64> {
    let mut first: Vec<(u64, f64)> = cpu["results"][run][worker]["invocations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((i["isolate_seq"].as_u64()?, f(i, &["cpu_ms"]))))
        .filter(|(seq, _)| *seq <= n)
        .collect();
    first.sort_by_key(|(seq, _)| *seq);
    first.into_iter().map(|(_, ms)| ms).collect()
}

/// The top frames of the busiest invocation of each worker and run.
fn busiest(w: &mut String, cpu: &Value) {
    let _ = writeln!(
        w,
        "\nThe busiest invocation of each worker and run, and its top {TOP_FRAMES} frames by \
         self time (`(program)`: native code outside JS and wasm; `(garbage collector)`; \
         `wasm-to-js`: crossings into JS):\n"
    );
    let runs = SNAPSHOT_RUNS.iter().map(|r| (*r, "busiest"));
    for (run, key) in runs.chain([("scale", "busiest"), ("scale", "list_invocation")]) {
        for worker in Worker::ALL {
            let inv = &cpu["results"][run][worker.name()][key];
            let Some(frames) = inv["top_frames"].as_array() else {
                continue;
            };
            let label = match (run, key) {
                ("scale", "busiest") => "at scale, all but the list parse".to_string(),
                ("scale", _) => "at scale, the list parse".to_string(),
                _ => run.to_string(),
            };
            let list = frames
                .iter()
                .take(TOP_FRAMES)
                .map(|fr| {
                    format!(
                        "`{}` {:.1}",
                        short_frame(fr["name"].as_str().unwrap_or("?")),
                        f(fr, &["self_ms"])
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                w,
                "- **{label}, {}**: {:.1} ms CPU in {:.0} ms ({}, GraphQL requests: {}): {list} (ms).",
                worker.name(),
                f(inv, &["cpu_ms"]),
                f(inv, &["wall_ms"]),
                inv["trigger"].as_str().unwrap_or("?"),
                f(inv, &["graphql"]),
            );
        }
    }
}

/// What the read API rows measured.
fn api_notes(w: &mut String, cpu: &Value) {
    let misses = cpu_values(cpu, "api_miss", "scraper", Include::All);
    let Some(first) = misses.first() else {
        return;
    };
    let _ = writeln!(
        w,
        "\nRead API (the scraper's fetch handler), after the runs: each of {} routes \
         (`/api/issues`, filtered and sorted, `/api/repos`, one repo, `/api/facets`) once with \
         its answer not yet cached (one D1 batch; the first read also probes the data \
         version), then again, answered from the Workers Cache with no D1 query. The first \
         read, {first:.1} ms, is the isolate's first fetch invocation: it also compiles the \
         API's code.",
        misses.len()
    );
}

fn scale_notes(w: &mut String, cpu: &Value, scale_label: &str) {
    let Some((rest, list)) = scale_max(cpu) else {
        return;
    };
    let plan = match list {
        Some(ms) if ms > CPU_LIMIT_MS => format!(
            "the invocation that parses the list takes {ms:.1} ms, over the Free plan's 10 ms: \
             a list that size needs Workers Paid (30 s of CPU per invocation by default), \
             which it needs anyway for its queue operations and D1 writes (section 8)"
        ),
        Some(ms) => format!("the invocation that parses the list takes {ms:.1} ms, within Free"),
        None => "no invocation fetched the list".to_string(),
    };
    let _ = writeln!(
        w,
        "\nAt {scale_label} every scraper invocation but the list's is at most {rest:.1} ms \
         ({}); {plan}.",
        if rest <= CPU_LIMIT_MS {
            "within the Free plan's 10 ms"
        } else {
            "**over the Free plan's 10 ms**"
        }
    );
    if let Some((wasm, heap)) = scale_memory(cpu) {
        let _ = writeln!(
            w,
            "\nPeak memory of the scraper's isolate at {scale_label}: {} ({} wasm linear memory \
             at the end of the run — it never shrinks, so that is its peak — plus {} JS heap, \
             the largest seen after any invocation), against the 128 MB Workers limit: {}.",
            mib(wasm + heap),
            mib(wasm),
            mib(heap),
            yes(wasm + heap <= MEMORY_LIMIT_BYTES)
        );
    }
}

fn opt_level_table(doc: &Value, current: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| opt-level | gzip (scraper / processor) | scraper CPU max / mean | processor CPU max / mean | ≤ 1 MiB gzip | |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    for level in doc["levels"].as_array().into_iter().flatten() {
        let name = level["opt_level"].as_str().unwrap_or("?");
        let gz = |wk: &str| f(&level["sizes"], &[wk, "gzip"]);
        let fits = gz("scraper") <= OPT_SIZE_LIMIT_BYTES && gz("processor") <= OPT_SIZE_LIMIT_BYTES;
        let cpu = |wk: &str| {
            format!(
                "{:.1} / {:.1} ms",
                f(&level["cpu"], &[wk, "max"]),
                f(&level["cpu"], &[wk, "mean"])
            )
        };
        let _ = writeln!(
            t,
            "| `{name}` | {:.1} / {:.1} KiB | {} | {} | {} | {} |",
            gz("scraper") / 1024.0,
            gz("processor") / 1024.0,
            cpu("scraper"),
            cpu("processor"),
            if fits { "yes" } else { "no" },
            if name == current { "**kept**" } else { "" }
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_nearest_rank_value() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = stats(&values);
        assert_eq!((s.count, s.max, s.p95, s.mean), (20, 20.0, 19.0, 10.5));
        let one = stats(&[7.0]);
        assert_eq!((one.max, one.p95, one.mean), (7.0, 7.0, 7.0));
        assert_eq!(stats(&[]).count, 0);
    }

    #[test]
    fn p95_of_a_short_list_is_its_largest_value() {
        let s = stats(&[3.0, 1.0, 2.0]);
        assert_eq!(s.p95, 3.0);
    }

    fn doc() -> Value {
        let inv =
            |ms: f64, list: u64| json!({"cpu_ms": ms, "list_fetches": list, "isolate_seq": 1});
        json!({
            "interval_us": 100,
            "results": {
                "full": {
                    "scraper": {"invocations": [inv(3.0, 0), inv(12.5, 1)]},
                    "processor": {"invocations": [inv(4.0, 0), inv(6.0, 0)]},
                },
                "unchanged": {"scraper": {"invocations": [inv(2.0, 0)]}},
                "changed": {"scraper": {"invocations": [inv(9.0, 0)]},
                            "processor": {"invocations": [inv(8.0, 0)]}},
                "api_miss": {"scraper": {"invocations": [inv(11.0, 0), inv(3.0, 0)]}},
                "api_hit": {"scraper": {"invocations": [inv(1.0, 0), inv(2.0, 0)]}},
                "scale": {"added_repos": 10000,
                          "scraper": {"invocations": [inv(140.0, 1), inv(7.0, 0), inv(8.5, 0)],
                                      "js_heap_total_max": 8_000_000.0}},
                "memory_scale": {"scraper": {"wasm_memories": [20_000_000.0], "js_heap_total": 6_000_000.0}},
            }
        })
    }

    #[test]
    fn the_headline_is_the_largest_invocation_of_the_snapshot_runs() {
        let pair = snapshot_max(&doc());
        assert_eq!(pair, (Some(12.5), Some(8.0)));
        assert_eq!(ms_pair(pair), "12.5 / 8.0 ms");
        assert!(!within(pair));
        assert!(within((Some(9.9), None)));
        assert!(!within((None, None)));
    }

    #[test]
    fn the_method_says_how_the_isolate_thread_was_pinned_and_which_profiles_were_sparse() {
        let mut d = doc();
        d["pinned"] = json!({"isolate_cpu": 1, "others": "0"});
        d["results"]["full"]["processor"]["invocations"][1]["sparse"] = json!(true);
        d["results"]["warm_up_cpu_ms"] = json!({"scraper": 35.2, "processor": null});
        let mut md = String::new();
        section(&mut md, &d, Path::new("/nonexistent"));
        assert!(md.contains("had CPU 1 to itself"), "{md}");
        assert!(md.contains("CPU 0), since"), "{md}");
        assert!(
            md.contains("in the three snapshot runs: scraper 0 of 4, processor 1 of 3."),
            "{md}"
        );
        assert!(md.contains("re-ran them: scraper 35.2 ms of CPU"), "{md}");
        let mut md = String::new();
        section(&mut md, &doc(), Path::new("/nonexistent"));
        assert!(md.contains("was **not** pinned"), "{md}");
        assert!(!md.contains("re-ran them"), "{md}");
    }

    #[test]
    fn with_the_isolate_clock_the_method_names_it_and_skips_the_sampler_caveats() {
        let mut d = doc();
        d["clock"] = json!({"window_interval_us": 5000});
        d["results"]["full"]["processor"]["invocations"][1]["sparse"] = json!(true);
        let mut md = String::new();
        section(&mut md, &d, Path::new("/nonexistent"));
        assert!(md.contains("read by the isolate clock"), "{md}");
        assert!(
            md.contains("V8 sampling every 5000 µs, only to mark the window"),
            "{md}"
        );
        assert!(
            !md.contains("V8's sampler fell behind (its median gap"),
            "{md}"
        );
        let mut md = String::new();
        section(&mut md, &doc(), Path::new("/nonexistent"));
        assert!(md.contains("The isolate clock was unavailable"), "{md}");
        assert!(!md.contains("read by the isolate clock"), "{md}");
    }

    #[test]
    fn at_scale_the_list_parse_is_reported_apart() {
        assert_eq!(scale_max(&doc()), Some((8.5, Some(140.0))));
        assert_eq!(scale_memory(&doc()), Some((20_000_000.0, 8_000_000.0)));
    }

    #[test]
    fn the_section_has_a_row_per_worker_and_run_and_the_scale_rows() {
        let mut md = String::new();
        section(&mut md, &doc(), Path::new("/nonexistent"));
        assert!(md.contains(
            "| full | scraper | 2 | 12.5 ms | 12.5 ms | 7.8 ms | **missed** | **missed** |"
        ));
        assert!(md
            .contains("| changed | processor | 1 | 8.0 ms | 8.0 ms | 8.0 ms | met | **missed** |"));
        assert!(md.contains("| +10,000 repos, all but the list parse | scraper | 2 | 8.5 ms |"));
        assert!(md.contains("| +10,000 repos, the list parse | scraper | 1 | 140.0 ms |"));
        assert!(md.contains("needs Workers Paid"));
        assert!(md.contains(
            "| read API, answer not cached | scraper | 2 | 11.0 ms | 11.0 ms | 7.0 ms | **missed** |"
        ));
        assert!(md.contains(
            "| read API, answer cached | scraper | 2 | 2.0 ms | 2.0 ms | 1.5 ms | met | met |"
        ));
        assert!(md.contains("The first read, 11.0 ms, is the isolate's first fetch invocation"));
        assert!(md.contains("Peak memory of the scraper's isolate at +10,000 repos: 26.7 MiB"));
    }

    #[test]
    fn the_first_invocations_of_an_isolate_are_listed_in_order() {
        let cpu = json!({"results": {"full": {"scraper": {"invocations": [
            {"cpu_ms": 5.0, "isolate_seq": 2}, {"cpu_ms": 9.0, "isolate_seq": 1},
            {"cpu_ms": 4.0, "isolate_seq": 4}, {"cpu_ms": 3.0, "isolate_seq": 3},
        ]}}}});
        assert_eq!(
            first_invocations(&cpu, "full", "scraper", 3),
            vec![9.0, 5.0, 3.0]
        );
    }

    #[test]
    fn rust_hashes_are_dropped_from_frame_names() {
        assert_eq!(
            short_frame("sha2::sha256::compress256::he3d41f730ed5f281"),
            "sha2::sha256::compress256"
        );
        assert_eq!(short_frame("fetch"), "fetch");
        assert_eq!(short_frame("a::hello"), "a::hello");
    }

    #[test]
    fn the_kept_opt_level_is_marked_and_sizes_checked() {
        let doc = json!({"levels": [
            {"opt_level": "z", "sizes": {"scraper": {"gzip": 400_000}, "processor": {"gzip": 300_000}},
             "cpu": {"scraper": {"max": 9.0, "mean": 4.0}, "processor": {"max": 8.0, "mean": 3.0}}},
            {"opt_level": "3", "sizes": {"scraper": {"gzip": 1_100_000}, "processor": {"gzip": 600_000}},
             "cpu": {"scraper": {"max": 7.0, "mean": 3.0}, "processor": {"max": 6.0, "mean": 2.0}}},
        ]});
        let t = opt_level_table(&doc, "z");
        assert!(t.contains(
            "| `z` | 390.6 / 293.0 KiB | 9.0 / 4.0 ms | 8.0 / 3.0 ms | yes | **kept** |"
        ));
        assert!(t.contains("| `3` | 1074.2 / 585.9 KiB | 7.0 / 3.0 ms | 6.0 / 2.0 ms | no |  |"));
    }

    #[test]
    fn the_release_opt_level_is_read_from_cargo_toml() {
        assert!(OPT_LEVELS.contains(&current_opt_level(&toolchain::repo_root()).as_str()));
    }
}
