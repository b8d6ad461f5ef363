// Benchmark runs of the compiled workers in Miniflare against the upstream
// simulator (the e2e harness's startPipeline). Prints progress on stderr and
// ONE JSON document of raw figures as the last line of stdout; `cargo xtask
// bench` combines the documents and renders BENCHMARKS.md.
//
//   node bench/pipeline.mjs main                      222 repos, both workers:
//        full refresh -> unchanged rerun -> 5% changed, each followed by the
//        peer replays (BENCH_DRIVER = the contribot-bench binary)
//   node bench/pipeline.mjs scale --scale N [--concurrency C] [--timeout-ms T]
//        scraper only, one full refresh of 222 + N repos
//
// UPSTREAM_SIM_BIN picks the simulator binary (upstream-sim; the scale runs widen its rate-limit windows
// with the hourly rate-limit windows lifted for the scale runs).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { runScrape, snapshot, startPipeline, waitDrained, waitQuiet } from "../tests/e2e/contribot.mjs";
import { changeOps } from "./scenarios.mjs";

const run = promisify(execFile);
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

const SCRAPER_TOKEN = "bench-scraper-token";
const PROCESSOR_TOKEN = "bench-processor-token";
const SECRETS = { ADMIN_TOKEN: "bench-admin-token" };

function tokens() {
  return {
    "contribot-scraper": { GITHUB_TOKEN: SCRAPER_TOKEN },
    "contribot-processor": { GITHUB_TOKEN: PROCESSOR_TOKEN },
  };
}

const counters = (p) => p.sim.control("/_sim/counters");
const resetCounters = (p) => p.sim.control("/_sim/counters/reset", {});

/** SQLite's total_changes() on D1's connection (rows inserted/updated/deleted), or null. */
async function totalChanges(p) {
  try {
    return (await p.first("SELECT total_changes() AS n")).n;
  } catch {
    return null;
  }
}

async function rowCounts(p) {
  const out = {};
  for (const t of ["repos", "issues", "scrape_runs", "invocations", "deliveries", "dead_letters", "data_sources"]) {
    out[t] = (await p.first(`SELECT COUNT(*) AS n FROM ${t}`)).n;
  }
  return out;
}

function stats(values) {
  if (values.length === 0) return { count: 0, max: 0, mean: 0 };
  return { count: values.length, max: Math.max(...values), mean: values.reduce((a, b) => a + b, 0) / values.length };
}

/** The scraper's JSONL lines of one run, from R2. */
async function runLogLines(p, runId) {
  const keys = [];
  let cursor;
  do {
    const page = await p.stack.r2.list({ prefix: "logs/", cursor });
    for (const o of page.objects) if (o.key.includes(`/scraper-${runId}-`)) keys.push(o.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const lines = [];
  for (const key of keys) {
    const text = await (await p.stack.r2.get(key)).text();
    for (const line of text.split("\n")) if (line.trim()) lines.push(JSON.parse(line));
  }
  return lines;
}

/** Phase timings of a run from its log lines: the drain is from the last repos step to the last `queued`. */
function phases(lines) {
  const ts = (e) => lines.filter((l) => l.event === e).map((l) => Date.parse(l.ts));
  const all = lines.map((l) => Date.parse(l.ts));
  const steps = ts("step");
  const stepsBy = new Map();
  for (const l of lines) if (l.event === "step") stepsBy.set(l.invocation, (stepsBy.get(l.invocation) ?? 0) + 1);
  const queued = ts("queued");
  const start = Math.min(...all);
  const lastStep = steps.length ? Math.max(...steps) : start;
  const lastQueued = queued.length ? Math.max(...queued) : lastStep;
  return {
    run_ms: Math.max(...all) - start,
    repos_phase_ms: lastStep - start,
    drain_ms: queued.length ? lastQueued - lastStep : 0,
    drain_rounds: queued.length,
    steps: steps.length,
    max_steps_per_invocation: Math.max(0, ...stepsBy.values()),
  };
}

/** Trigger a scrape, wait for it, and collect the scraper's figures. */
async function measuredScrape(p, { timeoutMs = 240_000 } = {}) {
  const changesBefore = await totalChanges(p);
  const started = Date.now();
  const runRow = await runScrape(p, { timeoutMs });
  const wallMs = Date.now() - started;
  const changesAfter = await totalChanges(p);
  const inv = await p.all("SELECT id, subrequests, started_at, finished_at, summary FROM invocations WHERE service = 'scraper' AND run_id = ? ORDER BY started_at", runRow.id);
  const lines = await runLogLines(p, runRow.id);
  return {
    run: runRow,
    wall_ms: wallMs,
    rows_changed: changesBefore === null || changesAfter === null ? null : changesAfter - changesBefore,
    invocations: stats(inv.map((i) => i.subrequests)),
    invocation_ms: stats(inv.map((i) => i.finished_at - i.started_at)),
    phases: phases(lines),
    started_at: started,
  };
}

/** Processor invocations started since `since`, and what they spent. */
async function processorFigures(p, since) {
  const inv = await p.all("SELECT subrequests, summary, started_at, finished_at FROM invocations WHERE service = 'processor' AND started_at >= ?", since);
  const summaries = inv.map((i) => JSON.parse(i.summary ?? "{}"));
  const sum = (k) => summaries.reduce((a, s) => a + (Number(s[k]) || 0), 0);
  return {
    invocations: stats(inv.map((i) => i.subrequests)),
    ai_calls: sum("ai_calls"),
    fallbacks: sum("fallbacks"),
    neurons: sum("neurons"),
    prompt_tokens: sum("prompt_tokens"),
    completion_tokens: sum("completion_tokens"),
    acked: sum("acked"),
    retried: sum("retried"),
    failed: sum("failed"),
    last_finished_at: inv.length ? Math.max(...inv.map((i) => i.finished_at)) : null,
  };
}

function pick(c) {
  return {
    requests_total: c.requests_total,
    by_route: c.by_route,
    by_token: c.by_token,
    by_status: c.by_status,
    graphql_points_total: c.graphql_points_total,
    graphql_points_by_token: c.graphql_points_by_token,
    ai_calls_total: c.ai_calls_total,
  };
}

/**
 * One replay of a peer pattern, counted alone by the simulator. Both tools
 * pace themselves (the TS original 2 s between requests, goodfirstissue.dev
 * 1 a second) far below GitHub's per-minute secondary limits; the replay
 * does not wait, so those limits are lifted for it and restored after.
 */
async function peer(p, pattern, token, state) {
  const { secondary } = await p.sim.control("/_sim/limits");
  await p.sim.control("/_sim/limits", { secondary: { graphql_points_per_minute: 0, rest_points_per_minute: 0 } });
  try {
    await resetCounters(p);
    const args = ["peer", pattern, "--sim", p.sim.url, "--token", token];
    if (state) args.push("--state", state);
    const { stdout } = await run(process.env.BENCH_DRIVER, args, { maxBuffer: 1 << 24 });
    const driver = JSON.parse(stdout.trim().split("\n").at(-1));
    return { driver, counters: pick(await counters(p)) };
  } finally {
    await p.sim.control("/_sim/limits", { secondary });
  }
}

/** The scraper-side figures of one scenario on the main pipeline, then the peers. */
async function scenario(p, name, stateFile, { processed = true } = {}) {
  log(`${name}: scrape`);
  await resetCounters(p);
  const changesBefore = await totalChanges(p);
  const scrape = await measuredScrape(p);
  let processing = null;
  if (processed) {
    await waitDrained(p);
    const drainedAt = Date.now();
    await waitQuiet(p, { ms: 2500 });
    processing = { ...(await processorFigures(p, scrape.started_at)), drained_after_ms: drainedAt - scrape.started_at };
  }
  const ours = pick(await counters(p));
  const changesAfter = await totalChanges(p);
  const rowsChanged = changesBefore === null || changesAfter === null ? null : changesAfter - changesBefore;
  log(`${name}: peers`);
  const ts = await peer(p, "ts-original", `bench-ts-${name}`, stateFile);
  const gfi = await peer(p, "goodfirstissue", `bench-gfi-${name}`);
  return { name, scrape, processing, rows_changed: rowsChanged, counters: ours, rows: await rowCounts(p), peers: { "ts-original": ts, goodfirstissue: gfi } };
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "contribot-bench-"));
  const state = path.join(dir, "ts-original-state.json");
  const p = await startPipeline({
    seed: 42,
    // Workers AI pacing (240 calls a minute over 4 consumers) is for the real
    // per-minute limit; the simulator has none, and the bench counts neurons,
    // not seconds.
    vars: { AI_BACKEND: "binding", LOG_LEVEL: "info", AI_CALLS_PER_MINUTE: "240000" },
    varsByWorker: tokens(),
    secrets: SECRETS,
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
  });
  try {
    const truth = await p.sim.control("/_sim/truth");
    const full = await scenario(p, "full", state);
    const before = JSON.stringify(await snapshot(p));
    const unchanged = await scenario(p, "unchanged", state);
    const after = JSON.stringify(await snapshot(p));
    unchanged.rows_identical = before === after;
    const change = changeOps(truth);
    await p.sim.control("/_sim/mutate", { ops: change.ops });
    const changed = await scenario(p, "changed", state);
    changed.mutation = { open_beginner_issues: change.open_beginner_issues, edited: change.edited, closed: change.closed };
    return { mode: "main", seed: 42, totals: truth.totals, scenarios: [full, unchanged, changed] };
  } finally {
    await p.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function scale(n, concurrency, timeoutMs) {
  const p = await startPipeline({
    seed: 42,
    configs: ["wrangler-scraper.toml"],
    // One run at +10k repos costs more than GitHub's 5,000-point hourly
    // window; widen it so the run measures cost, not the wait for a reset.
    simArgs: ["--scale", String(n), "--graphql-points", "10000000", "--rest-requests", "10000000"],
    vars: { LOG_LEVEL: "info", DISCOVERY_CONCURRENCY: String(concurrency) },
    varsByWorker: tokens(),
    secrets: SECRETS,
  });
  try {
    log(`scale ${n} (concurrency ${concurrency}): scrape`);
    await resetCounters(p);
    const scrape = await measuredScrape(p, { timeoutMs });
    const c = pick(await counters(p));
    const listed = await p.first("SELECT COUNT(*) AS n FROM repos WHERE active = 1");
    const open = await p.first("SELECT COUNT(*) AS n FROM issues WHERE state = 'open'");
    const { totals } = await p.sim.control("/_sim/truth");
    return { mode: "scale", scale: n, concurrency, repos: listed.n, open_issues: open.n, totals, scrape, counters: c, rows: await rowCounts(p) };
  } finally {
    await p.close();
  }
}

const [mode, ...rest] = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
let result;
if (mode === "main") {
  if (!process.env.BENCH_DRIVER) throw new Error("BENCH_DRIVER (the contribot-bench binary) is not set");
  result = await main();
} else if (mode === "scale") {
  result = await scale(flag("--scale", 0), flag("--concurrency", 6), flag("--timeout-ms", 1_500_000));
} else {
  console.error("usage: node bench/pipeline.mjs main | scale --scale N [--concurrency C] [--timeout-ms T]");
  process.exit(2);
}
console.log(JSON.stringify(result));
process.exit(0);
