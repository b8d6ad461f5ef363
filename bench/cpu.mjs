// CPU per invocation of the compiled workers, measured in V8.
//
//   node bench/cpu.mjs [--scenario full,unchanged,changed,api,scale] [--scale N]
//                      [--json PATH] [--profiles DIR] [--interval-us 100]
//                      [--top 8] [--sanity] [--quiet] [--builds DIR]
//                      [--var NAME=VALUE]... [--no-clock] [--no-frames]
//
// Runs apps/*/build (build them with `cargo xtask build`, or
// `cargo xtask build --profiling` to check that they name their functions;
// `--builds DIR` takes DIR/<scraper|processor>/ instead of apps/*/build) in
// Miniflare against the upstream simulator, seed 42, and measures the CPU of
// every invocation of both workers, one invocation at a time:
//
// - full       full refresh of the 222-repo snapshot into an empty D1,
//              processing included (AI through the simulator's binding);
// - unchanged  the rerun on unchanged upstream;
// - changed    the rerun after 5% of the open beginner issues got a new title
//              and ~1% were closed (bench/scenarios.mjs, as bench/pipeline.mjs);
// - api        after the runs, each read API route (the scraper's fetch
//              handler) once on an empty cache (D1 read, answer cached) and
//              once more (from the Workers Cache: no D1 query);
// - scale      the scraper alone, one full refresh of 222 + N repos
//              (`upstream-sim --scale N`, default 10,000), with the isolate's
//              peak memory.
//
// unchanged and changed run after the scenarios before them on the same
// stack (only the chosen ones are reported). `--sanity` adds "slow": the
// unchanged rerun again with every GraphQL answer 300 ms late, to show that
// waiting on I/O is not counted.
//
// Method: workerd runs with `--inspector-addr` (Miniflare's inspectorPort);
// each worker's isolate is a target of its own (`core:user:<name>`). Per
// isolate, CDP `Profiler.setSamplingInterval` (100 µs), then
// `Profiler.start` / `Profiler.stop` around exactly one invocation. The
// driver is the queue (bench/queue-driver.mjs): the workers' consumers are
// off, a bench-only sink worker hands every sent message to this process,
// which invokes the consumer itself with `Fetcher.queue()` (the cron with
// `Fetcher.scheduled()`) and applies acks and retries as Queues would. The
// CPU of an invocation is its isolate's CPU by the isolate clock
// (bench/isolate-clock.mjs: perf reads the thread's CPU clock at every
// v8::Isolate::Enter and Exit), summed inside the invocation's profile
// window, the profiler sampling only every 5 ms meanwhile; a second pass of
// the same runs, sampling every --interval-us, gives the frames and V8's own
// figure (`v8_cpu_ms`; `--no-frames` skips it, for quick comparisons).
// Without the clock (not root, no perf: `--no-clock` forces it) the figure is
// the sum of the non-idle samples (bench/inspector.mjs).
// workerd's main thread, which runs the isolates, gets a core of its own
// (bench/affinity.mjs); each worker's start-up warm-up is re-run, and
// profiled on its own, after the inspector attaches.
//
// `--var NAME=VALUE` (repeatable) sets a worker var for the main chain, for
// sizing experiments: `--var ISSUES_PER_INVOCATION=400` measures another
// CPU cost model without a rebuild. MINIFLARE_WORKERD_V8_FLAGS="..." passes
// V8 flags to workerd (Miniflare reads it), for diagnosis only: Cloudflare
// runs its own flags, so figures under other flags are not the figure.
//
// CPU_PROFILES_ALL=DIR keeps every invocation's profile as
// DIR/<worker>-<n>.cpuprofile, n its place in its isolate.
//
// Prints a table and writes JSON (default target/bench/cpu.json); the
// busiest invocation of each worker and scenario is kept as a
// `.cpuprofile` (default target/bench/cpu/), which Chrome DevTools opens.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";

import { REPO_ROOT, startSimulator, startStack } from "../tests/e2e/harness.mjs";
import { pinIsolateThread, reserveIsolateCpu } from "./affinity.mjs";
import { CRON, simVars } from "../tests/e2e/contribot.mjs";
import {
  IsolateProfiler,
  childPids,
  connectWorker,
  processCpuNs,
  threadCpuNs,
  profileCpu,
  round,
  summarize,
  topFrames,
} from "./inspector.mjs";
import { QueueDriver, benchConfigs, startSinkServer } from "./queue-driver.mjs";
import { identifyIsolate, profileWindow, startIsolateClock, windowCpu } from "./isolate-clock.mjs";
import { changeOps } from "./scenarios.mjs";

const SCRAPER = "contribot-scraper";
const PROCESSOR = "contribot-processor";
const MAIN_CHAIN = ["full", "unchanged", "changed"];
const SANITY_LATENCY_MS = 300;
const log = (...a) => console.error(`[cpu ${new Date().toISOString().slice(11, 19)}]`, ...a);

const USAGE = `usage: node bench/cpu.mjs [--scenario full,unchanged,changed,api,scale] [--scale N]
                        [--json PATH] [--profiles DIR] [--interval-us US] [--top N] [--sanity] [--quiet] [--builds DIR]
                        [--var NAME=VALUE]... [--no-clock] [--no-frames]`;

export function parseArgs(argv) {
  const opts = {
    scenarios: ["full", "unchanged", "changed", "api", "scale"],
    scale: 10_000,
    json: path.join(REPO_ROOT, "target/bench/cpu.json"),
    profiles: path.join(REPO_ROOT, "target/bench/cpu"),
    intervalUs: 100,
    top: 8,
    sanity: false,
    quiet: false,
    builds: null,
    vars: {},
    clock: true,
    frames: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value\n${USAGE}`);
      return argv[++i];
    };
    if (arg === "--scenario" || arg === "--scenarios") opts.scenarios = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (arg === "--scale") opts.scale = Number(value());
    else if (arg === "--json") opts.json = path.resolve(value());
    else if (arg === "--profiles") opts.profiles = path.resolve(value());
    else if (arg === "--interval-us") opts.intervalUs = Number(value());
    else if (arg === "--top") opts.top = Number(value());
    else if (arg === "--sanity") opts.sanity = true;
    else if (arg === "--quiet") opts.quiet = true;
    else if (arg === "--no-clock") opts.clock = false;
    else if (arg === "--no-frames") opts.frames = false;
    else if (arg === "--builds") opts.builds = path.resolve(value());
    else if (arg === "--var") {
      const [name, ...rest] = value().split("=");
      if (!/^[A-Z][A-Z0-9_]*$/.test(name) || rest.length === 0) throw new Error(`--var takes NAME=VALUE (an upper-case var name)\n${USAGE}`);
      opts.vars[name] = rest.join("=");
    }
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  for (const s of opts.scenarios) {
    if (![...MAIN_CHAIN, "api", "scale"].includes(s)) throw new Error(`unknown scenario ${s}\n${USAGE}`);
  }
  if (!Number.isInteger(opts.scale) || opts.scale < 0) throw new Error(`--scale must be a whole number\n${USAGE}`);
  return opts;
}

// ---------------------------------------------------------------------------
// The stack: simulator, workers with their consumers off, the sink, profilers
// ---------------------------------------------------------------------------

const SECRETS = { ADMIN_TOKEN: "bench-admin-token" };
const TOKENS = {
  [SCRAPER]: { GITHUB_TOKEN: "bench-scraper-token" },
  [PROCESSOR]: { GITHUB_TOKEN: "bench-processor-token" },
};

/**
 * While the isolate clock measures, V8's profiler samples this seldom: it
 * only marks each invocation's window and whose isolate is whose, and its
 * sampling would be CPU on the measured thread.
 */
const CLOCK_INTERVAL_US = 5000;

async function startBench({ files, simArgs = [], vars = {}, drop = [], intervalUs, builds, pinned, clock = false }) {
  const sink = await startSinkServer();
  const bench = await benchConfigs(files, sink.url, { builds });
  // No AI daily quota (as the e2e pipeline) and no per-minute secondary
  // limits: with the processor's pacing lifted below, the run measures CPU
  // instead of waiting out rate limits.
  const sim = await startSimulator({
    seed: 42,
    extraArgs: ["--ai-daily-neurons", "0", "--secondary-graphql-points", "0", "--secondary-rest-points", "0", ...simArgs],
  });
  let stack;
  try {
    const withAi = files.includes("wrangler-processor.toml");
    stack = await startStack({
      root: bench.root,
      configs: bench.configs,
      // The processor spaces its AI calls and enrichment queries to stay
      // under the per-minute limits (sleeping, which costs no CPU); lifted
      // here so a run takes minutes, not a quarter of an hour.
      vars: simVars(sim, { LOG_LEVEL: "info", AI_CALLS_PER_MINUTE: "1000000", GITHUB_POINTS_PER_MINUTE: "100000000", ...vars }),
      varsByWorker: TOKENS,
      secrets: SECRETS,
      aiBinding: withAi ? { module: "crates/upstream-sim/js/ai-binding.mjs", env: { simUrl: sim.url } } : undefined,
      quiet: true,
      miniflare: { inspectorPort: 0 },
    });
    await stack.applyMigrations();
  } catch (error) {
    await sim.stop();
    await sink.close();
    await bench.cleanup();
    throw error;
  }
  // workerd runs every isolate of the stack (and D1) on its main thread.
  const workerdPid = (await childPids("workerd"))[0] ?? null;
  if (pinned && workerdPid) await pinIsolateThread(workerdPid, pinned);
  let isolateClock = null;
  if (clock && workerdPid) {
    const started = await startIsolateClock(workerdPid, path.join(REPO_ROOT, "target", "bench", "clock"));
    if (started.unavailable) log(`isolate clock unavailable (${started.unavailable}): CPU figures are V8's sampler`);
    else isolateClock = started;
    if (isolateClock) intervalUs = CLOCK_INTERVAL_US;
  }
  const inspectorUrl = await stack.mf.getInspectorURL();
  const workers = stack.names.filter((n) => n === SCRAPER || n === PROCESSOR);
  const profilers = new Map();
  for (const name of workers) {
    profilers.set(name, await new IsolateProfiler(await connectWorker(inspectorUrl, name), { intervalUs }).enable());
  }
  const warmUps = {};
  const rewarmed = new Map();
  for (const [name, profiler] of profilers) rewarmed.set(name, await rewarm(profiler, intervalUs));
  if (isolateClock) await clockWarmUps(isolateClock, rewarmed);
  for (const [name, w] of rewarmed) warmUps[name.replace(/^contribot-/, "")] = w.cpuMs;
  const b = {
    sim,
    stack,
    profilers,
    workers,
    intervalUs,
    seqs: new Map(),
    // The CPU of workerd's main thread, and of the whole process, are upper
    // bounds for one isolate's, kept beside each figure as a check.
    workerdPid,
    warmUps,
    clock: isolateClock,
    async first(sql, ...params) {
      return stack.db.prepare(sql).bind(...params).first();
    },
    async close() {
      await isolateClock?.stop();
      for (const p of profilers.values()) p.session.close();
      try {
        await stack.dispose();
      } finally {
        await sim.stop();
        await sink.close();
        await bench.cleanup();
      }
    },
  };
  b.measure = (worker, run) => measure(b, worker, run);
  b.driver = new QueueDriver({
    mf: stack.mf,
    sink,
    consumers: bench.consumers,
    producers: bench.producers,
    drop: new Set(drop),
    invoke: b.measure,
  });
  return b;
}

/**
 * Attaching the inspector makes V8 drop the wasm code an isolate compiled
 * before it (measured: a start-up warm-up that ran before the attach left
 * the processor's first batch at 31.6 ms; re-run after it, 17.8 ms). A
 * worker that warms up at start-up (apps/processor/warm-up.mjs) exposes its
 * warm-up; running it again here restores what a deployed isolate has after
 * its start-up. Outside every invocation's profile, as start-up is; profiled
 * on its own, since Workers give start-up 1 s of CPU. Returns its CPU, ms
 * (null for a worker without a warm-up).
 */
async function rewarm(profiler, intervalUs) {
  await profiler.start();
  const { result, exceptionDetails } = await profiler.session.send("Runtime.evaluate", {
    expression: "globalThis.__contribotWarmUp ? globalThis.__contribotWarmUp.run().then((s) => s.status) : 'none'",
    awaitPromise: true,
    contextId: profiler.contextId,
  });
  const status = result?.value;
  if (exceptionDetails || !["done", "none"].includes(status)) {
    throw new Error(`${profiler.session.title}: warm-up after attaching did not finish: ${JSON.stringify(exceptionDetails ?? result)}`);
  }
  const profile = await profiler.stop();
  const cpu = isolateCpu(profile, intervalUs);
  return { cpuMs: status === "none" ? null : round(cpu.cpu_us / 1000), window: profileWindow(profile) };
}

/** The warm-ups' CPU by the isolate clock, for those that ran one. */
async function clockWarmUps(clock, rewarmed) {
  const { byIsolate } = await clock.lap();
  for (const w of rewarmed.values()) {
    const iso = identifyIsolate(byIsolate, [w.window]);
    const cpu = iso && windowCpu(byIsolate.get(iso), w.window);
    if (w.cpuMs !== null && cpu) w.cpuMs = round(cpu.cpuUs / 1000);
  }
}

/** A period this many requested intervals long means V8's sampler fell behind. */
const PERIOD_BOUND = 4;

/** One profile's CPU, its sampling period bounded by the requested interval. */
function isolateCpu(profile, intervalUs) {
  return profileCpu(profile, { minPeriodUs: intervalUs, maxPeriodUs: PERIOD_BOUND * intervalUs });
}

/**
 * One invocation inside one CPU profile of its isolate, with the upstream
 * requests it made (the simulator's counters before and after).
 */
async function measure(b, worker, run) {
  const profiler = b.profilers.get(worker);
  // The nth invocation of this isolate: the first ones of each code path
  // also pay for compiling it (V8 compiles wasm functions on first call).
  const isolateSeq = (b.seqs.get(worker) ?? 0) + 1;
  b.seqs.set(worker, isolateSeq);
  const before = await b.sim.control("/_sim/counters");
  await profiler.start();
  const processBefore = b.workerdPid && (await processCpuNs(b.workerdPid));
  const threadBefore = b.workerdPid && (await threadCpuNs(b.workerdPid));
  const t0 = performance.now();
  let result;
  let error;
  try {
    result = await run();
  } catch (e) {
    error = String(e?.stack ?? e);
  }
  const wallMs = performance.now() - t0;
  const processAfter = b.workerdPid && (await processCpuNs(b.workerdPid));
  const threadAfter = b.workerdPid && (await threadCpuNs(b.workerdPid));
  const profile = await profiler.stop();
  const after = await b.sim.control("/_sim/counters");
  const heap = await profiler.session.send("Runtime.getHeapUsage");
  const cpu = isolateCpu(profile, b.intervalUs);
  if (process.env.CPU_PROFILES_ALL) {
    // Every invocation's profile, for summing many of one kind (a debugging aid).
    await mkdir(process.env.CPU_PROFILES_ALL, { recursive: true });
    await writeFile(path.join(process.env.CPU_PROFILES_ALL, `${worker}-${isolateSeq}.cpuprofile`), JSON.stringify(profile));
  }
  const route = (c, r) => c.by_route?.[r] ?? 0;
  return {
    worker,
    isolate_seq: isolateSeq,
    result,
    error,
    cpu_ms: round(cpu.cpu_us / 1000),
    wall_ms: round(wallMs),
    program_ms: round(cpu.program_us / 1000),
    gc_ms: round(cpu.gc_us / 1000),
    waiting_ms: round(cpu.gap_us / 1000),
    period_us: cpu.period_us,
    // V8's sampler fell behind (its median gap is at the bound): few samples,
    // each counted at most 1.5 bounded periods, so the figure is a floor.
    sparse: cpu.period_us >= PERIOD_BOUND * b.intervalUs,
    samples: cpu.samples,
    workerd_cpu_ms: processBefore && processAfter ? round((processAfter - processBefore) / 1e6) : null,
    workerd_thread_cpu_ms: threadBefore && threadAfter ? round((threadAfter - threadBefore) / 1e6) : null,
    graphql: route(after, "graphql") - route(before, "graphql"),
    list_fetches: route(after, "raw") - route(before, "raw"),
    requests: after.requests_total - before.requests_total,
    js_heap_total: heap.totalSize,
    js_heap_used: heap.usedSize,
    frames: cpu.frames,
    window: profileWindow(profile),
    profile,
  };
}

/**
 * With the isolate clock on: each invocation's CPU becomes its isolate's
 * CPU inside its profile's window, for the invocations since the last lap
 * (V8's figure at the coarse window interval means nothing and is dropped).
 */
async function clockLap(b, invocations) {
  if (!b.clock) return;
  const { byIsolate } = await b.clock.lap();
  for (const worker of b.workers) {
    const mine = invocations.filter((i) => i.worker === worker);
    const iso = identifyIsolate(byIsolate, mine.map((i) => i.window));
    for (const inv of mine) {
      const w = iso && windowCpu(byIsolate.get(iso), inv.window);
      inv.clock_spans = w?.spans ?? 0;
      if (w) inv.cpu_ms = round(w.cpuUs / 1000);
      // A window without spans: the recording missed it, and the coarse V8
      // figure left in its place is a floor; said, not hidden.
      else log(`${worker} ${inv.trigger ?? "invocation"}: the isolate clock saw no span; its figure is V8's at ${CLOCK_INTERVAL_US} µs`);
      if (process.env.CPU_SPANS_DUMP && iso) await dumpSpans(process.env.CPU_SPANS_DUMP, worker, inv, iso, byIsolate);
    }
  }
}

/**
 * A debugging aid (`CPU_SPANS_DUMP=DIR`): an invocation's isolate spans,
 * the other isolates' spans meanwhile, and its profile, to read where its
 * CPU went span by span.
 */
async function dumpSpans(dir, worker, inv, iso, byIsolate) {
  const during = (list) => list.filter((s) => s.endUs >= inv.window.startUs && s.startUs <= inv.window.endUs);
  const others = Object.fromEntries([...byIsolate].filter(([k]) => k !== iso).map(([k, list]) => [k, during(list)]));
  await mkdir(dir, { recursive: true });
  const doc = { trigger: inv.trigger, graphql: inv.graphql, cpu_ms: inv.cpu_ms, spans: during(byIsolate.get(iso)), others, profile: inv.profile };
  await writeFile(path.join(dir, `${worker}-${inv.isolate_seq}.json`), JSON.stringify(doc));
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/** Cron, then every queue invocation it leads to, until the run is finished and the queues are empty. */
async function runScenario(b, name, { quiet }) {
  log(`${name}: cron`);
  const runsBefore = (await b.first("SELECT COUNT(*) AS n FROM scrape_runs")).n;
  const scraper = await b.stack.mf.getWorker(SCRAPER);
  const cron = await b.measure(SCRAPER, () => scraper.scheduled({ cron: CRON, scheduledTime: new Date() }));
  const invocations = [{ ...cron, trigger: "cron", messages: 0 }];
  await b.driver.settle();
  let lastLog = Date.now();
  const progress = (inv) => {
    if (!quiet && Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      log(`${name}: ${b.driver.pending()} messages waiting; last ${inv.worker} ${inv.cpu_ms} ms CPU`);
    }
  };
  const done = async () => {
    const r = await b.first("SELECT COUNT(*) AS n, (SELECT status FROM scrape_runs ORDER BY started_at DESC LIMIT 1) AS status FROM scrape_runs");
    return r.n > runsBefore && r.status !== "running";
  };
  for (const inv of await b.driver.drain({ done, onInvocation: progress })) {
    invocations.push({ ...inv, trigger: `queue ${inv.queue}` });
  }
  const run = await b.first("SELECT * FROM scrape_runs ORDER BY started_at DESC LIMIT 1");
  log(`${name}: ${invocations.length} invocations, run ${run.status}`);
  return { invocations, run };
}

/** max, p95, mean per worker, and the busiest invocation's top frames. */
function aggregate(name, invocations, { top, listSeparately = false }) {
  const out = {};
  for (const worker of [SCRAPER, PROCESSOR]) {
    const mine = invocations.filter((i) => i.worker === worker);
    if (mine.length === 0) continue;
    const list = listSeparately ? mine.filter((i) => i.list_fetches > 0) : [];
    const rest = listSeparately ? mine.filter((i) => i.list_fetches === 0) : mine;
    const busiest = rest.reduce((a, i) => (i.cpu_ms > a.cpu_ms ? i : a), rest[0] ?? mine[0]);
    const entry = {
      cpu_ms: summarize(rest.map((i) => i.cpu_ms)),
      wall_ms: summarize(rest.map((i) => i.wall_ms)),
      busiest: { ...describe(busiest, top), index: mine.indexOf(busiest) },
      invocations: mine.map((i) => ({
        trigger: i.trigger,
        isolate_seq: i.isolate_seq,
        messages: i.messages,
        cpu_ms: i.cpu_ms,
        clock_spans: i.clock_spans,
        wall_ms: i.wall_ms,
        program_ms: i.program_ms,
        gc_ms: i.gc_ms,
        waiting_ms: i.waiting_ms,
        samples: i.samples,
        period_us: i.period_us,
        sparse: i.sparse,
        js_heap_used: i.js_heap_used,
        workerd_cpu_ms: i.workerd_cpu_ms,
        workerd_thread_cpu_ms: i.workerd_thread_cpu_ms,
        graphql: i.graphql,
        list_fetches: i.list_fetches,
        requests: i.requests,
        error: i.error,
        outcome: i.result?.outcome,
      })),
      js_heap_total_max: Math.max(...mine.map((i) => i.js_heap_total)),
    };
    if (listSeparately && list.length) {
      const heaviest = list.reduce((a, i) => (i.cpu_ms > a.cpu_ms ? i : a));
      entry.list_invocation = { ...describe(heaviest, top), index: mine.indexOf(heaviest) };
    } else if (listSeparately) entry.list_invocation = null;
    out[worker.replace("contribot-", "")] = entry;
  }
  return out;
}

function describe(inv, top) {
  return {
    trigger: inv.trigger,
    isolate_seq: inv.isolate_seq,
    messages: inv.messages,
    cpu_ms: inv.cpu_ms,
    wall_ms: inv.wall_ms,
    program_ms: inv.program_ms,
    gc_ms: inv.gc_ms,
    waiting_ms: inv.waiting_ms,
    workerd_cpu_ms: inv.workerd_cpu_ms,
    workerd_thread_cpu_ms: inv.workerd_thread_cpu_ms,
    graphql: inv.graphql,
    list_fetches: inv.list_fetches,
    top_frames: topFrames(inv.frames, top),
    profile: inv.profile,
  };
}

/**
 * One pass: `pass.clock` measures with the isolate clock (and sets
 * `pass.used` when it could); `pass.raw`, when given, keeps every
 * scenario's invocations, frames included.
 */
async function mainChain(opts, chosen, results, pass) {
  const last = Math.max(...chosen.map((s) => MAIN_CHAIN.indexOf(s)));
  const b = await startBench({
    files: ["wrangler-scraper.toml", "wrangler-processor.toml"],
    vars: { AI_BACKEND: "binding", ...opts.vars },
    intervalUs: opts.intervalUs,
    builds: opts.builds,
    pinned: opts.pinned,
    clock: pass.clock,
  });
  pass.used ||= Boolean(b.clock);
  try {
    const truth = await b.sim.control("/_sim/truth");
    // The read API reads what the runs stored: at least the full run first.
    const chain = MAIN_CHAIN.slice(0, Math.max(last, 0) + 1);
    if (opts.sanity && !chain.includes("unchanged")) chain.splice(1, 0, "unchanged");
    for (const name of chain) {
      if (name === "changed") {
        const change = changeOps(truth);
        await b.sim.control("/_sim/mutate", { ops: change.ops });
      }
      const { invocations, run } = await runScenario(b, name, opts);
      await clockLap(b, invocations);
      if (pass.raw) pass.raw[name] = invocations;
      if (chosen.includes(name)) results[name] = { ...aggregate(name, invocations, opts), run: runSummary(run) };
      if (name === "unchanged" && opts.sanity) {
        await b.sim.control("/_sim/faults", { seed: 1, rules: [{ route: "graphql", kind: "latency", latency_ms: SANITY_LATENCY_MS, rate: 1 }] });
        const slow = await runScenario(b, "slow", opts);
        await clockLap(b, slow.invocations);
        if (pass.raw) pass.raw.slow = slow.invocations;
        await b.sim.control("/_sim/faults", { seed: 1, rules: [] });
        results.slow = { ...aggregate("slow", slow.invocations, opts), run: runSummary(slow.run), latency_ms: SANITY_LATENCY_MS };
      }
    }
    if (opts.scenarios.includes("api")) Object.assign(results, await apiReads(b, opts, pass));
    results.memory_222 = await memory(b);
    results.warm_up_cpu_ms = b.warmUps;
  } finally {
    await b.close();
  }
}

/**
 * Each read API route twice, after the runs: a cache miss (the answer read
 * from D1 and cached; the first also reads and caches the data version) and
 * a hit (both from the cache, no D1 query).
 */
async function apiReads(b, opts, pass) {
  const scraper = await b.stack.mf.getWorker(SCRAPER);
  const repo = await b.first("SELECT owner, name FROM repos WHERE active = 1 ORDER BY stars DESC LIMIT 1");
  const routes = [
    "/api/issues",
    "/api/issues?sort=easy&difficulty_max=2&limit=100",
    "/api/repos",
    `/api/repos/${repo.owner}/${repo.name}`,
    "/api/facets",
  ];
  const byKind = { api_miss: [], api_hit: [] };
  for (const route of routes) {
    for (const kind of ["api_miss", "api_hit"]) {
      const inv = await b.measure(SCRAPER, async () => {
        const response = await scraper.fetch(`https://contribot.example${route}`);
        const body = await response.text();
        if (response.status !== 200) throw new Error(`GET ${route}: ${response.status} ${body.slice(0, 200)}`);
        return { outcome: String(response.status) };
      });
      if (inv.error) throw new Error(inv.error);
      byKind[kind].push({ ...inv, trigger: `GET ${route}`, messages: 0 });
    }
  }
  log(`api: ${routes.length} routes, each a cache miss then a hit`);
  await clockLap(b, [...byKind.api_miss, ...byKind.api_hit]);
  if (pass.raw) Object.assign(pass.raw, byKind);
  return Object.fromEntries(Object.entries(byKind).map(([k, invs]) => [k, aggregate(k, invs, opts)]));
}

async function scaleRun(opts, results, pass) {
  const b = await startBench({
    files: ["wrangler-scraper.toml"],
    // One refresh at +10k repos costs more than GitHub's hourly point
    // window; widen it so the run measures CPU, not waits.
    simArgs: ["--scale", String(opts.scale), "--graphql-points", "100000000", "--rest-requests", "100000000"],
    drop: ["contribot-processing"],
    intervalUs: opts.intervalUs,
    builds: opts.builds,
    pinned: opts.pinned,
    clock: pass.clock,
  });
  pass.used ||= Boolean(b.clock);
  try {
    const { invocations, run } = await runScenario(b, "scale", opts);
    await clockLap(b, invocations);
    if (pass.raw) pass.raw.scale = invocations;
    results.scale = {
      added_repos: opts.scale,
      ...aggregate("scale", invocations, { ...opts, listSeparately: true }),
      run: runSummary(run),
      processing_messages_dropped: b.driver.dropped.get("contribot-processing") ?? 0,
    };
    results.memory_scale = await memory(b);
  } finally {
    await b.close();
  }
}

function runSummary(run) {
  const keep = ["status", "messages_queued", "continuations", "repos_total", "issues_seen"];
  return Object.fromEntries(Object.entries(run ?? {}).filter(([k]) => keep.includes(k)));
}

/** Every worker isolate's memory at the end of a run (wasm memories only grow). */
async function memory(b) {
  const out = {};
  for (const [name, profiler] of b.profilers) out[name.replace("contribot-", "")] = await profiler.memory();
  return out;
}

// ---------------------------------------------------------------------------
// Build facts, report
// ---------------------------------------------------------------------------

/** Whether a wasm module keeps its `name` custom section (function names). */
export function hasNameSection(bytes) {
  let i = 8;
  const leb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[i++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return result;
    }
  };
  while (i < bytes.length) {
    const id = bytes[i++];
    const size = leb();
    const end = i + size;
    if (id === 0) {
      const len = leb();
      if (Buffer.from(bytes.subarray(i, i + len)).toString("utf8") === "name") return true;
    }
    i = end;
  }
  return false;
}

async function buildFacts(builds) {
  const out = {};
  for (const worker of ["scraper", "processor"]) {
    const dir = builds ? path.join(builds, worker) : path.join(REPO_ROOT, "apps", worker, "build");
    const file = path.join(dir, "index_bg.wasm");
    if (!existsSync(file)) continue;
    const bytes = await readFile(file);
    let profile = null;
    try {
      profile = (await readFile(path.join(dir, ".xtask-stamp"), "utf8")).match(/^profile=(.*)$/m)?.[1] ?? null;
    } catch {}
    out[worker] = { wasm_bytes: bytes.length, names: hasNameSection(bytes), profile };
  }
  return out;
}

function table(results, top) {
  const lines = [];
  const row = (...cols) => lines.push(cols.map((c, i) => String(c).padEnd([12, 11, 7, 10, 10, 10, 0][i] ?? 0)).join(" "));
  row("scenario", "worker", "count", "max ms", "p95 ms", "mean ms", "busiest invocation");
  for (const [scenario, r] of Object.entries(results)) {
    if (!r || typeof r !== "object" || scenario.startsWith("memory") || scenario.startsWith("warm_up")) continue;
    for (const worker of ["scraper", "processor"]) {
      const w = r[worker];
      if (!w) continue;
      const c = w.cpu_ms;
      row(scenario, worker, c.count, c.max.toFixed(1), c.p95.toFixed(1), c.mean.toFixed(1),
        `${w.busiest.trigger}: ${w.busiest.wall_ms.toFixed(0)} ms wall, ` +
          `${w.busiest.graphql} GraphQL; workerd main thread ${w.busiest.workerd_thread_cpu_ms?.toFixed(1) ?? "?"} ms, process ${w.busiest.workerd_cpu_ms?.toFixed(1) ?? "?"} ms CPU`);
      if (w.list_invocation) {
        row("", "  list", 1, w.list_invocation.cpu_ms.toFixed(1), "", "", `${w.list_invocation.trigger} (the invocation that fetched the list; not in the row above)`);
      }
    }
  }
  lines.push("");
  for (const [scenario, r] of Object.entries(results)) {
    if (!r || typeof r !== "object" || scenario.startsWith("memory") || scenario.startsWith("warm_up")) continue;
    for (const worker of ["scraper", "processor"]) {
      const w = r[worker];
      if (!w) continue;
      for (const [label, inv] of [["busiest", w.busiest], ["list invocation", w.list_invocation]]) {
        if (!inv) continue;
        lines.push(`${scenario} ${worker} ${label} (${inv.cpu_ms.toFixed(1)} ms CPU, ${inv.trigger}): top ${top} frames by self time`);
        for (const f of inv.top_frames) lines.push(`  ${f.self_ms.toFixed(2).padStart(8)} ms  ${f.name}`);
      }
    }
  }
  for (const [worker, ms] of Object.entries(results.warm_up_cpu_ms ?? {})) {
    if (ms !== null) lines.push(`start-up warm-up ${worker}: ${ms.toFixed(1)} ms CPU`);
  }
  for (const key of ["memory_222", "memory_scale"]) {
    if (!results[key]) continue;
    for (const [worker, m] of Object.entries(results[key])) {
      const wasm = m.wasm_memories.reduce((a, b) => a + b, 0);
      lines.push(`${key} ${worker}: wasm memory ${(wasm / 2 ** 20).toFixed(1)} MiB, JS heap ${(m.js_heap_total / 2 ** 20).toFixed(1)} MiB total (${(m.js_heap_used / 2 ** 20).toFixed(1)} used)`);
    }
  }
  return lines.join("\n");
}

/**
 * The clock pass's figures with the frames pass's profiles: each busiest
 * (and list) invocation gets the frames of the same invocation, by its place
 * in its worker's run, from the pass that sampled finely; each scenario and
 * worker gets that pass's V8 figures beside the clock's (`v8_cpu_ms`).
 */
function mergeFrames(results, frames, raw, top) {
  for (const [scenario, r] of Object.entries(results)) {
    for (const worker of [SCRAPER, PROCESSOR]) {
      const key = worker.replace("contribot-", "");
      const w = r?.[key];
      if (!w?.cpu_ms) continue;
      w.v8_cpu_ms = frames[scenario]?.[key]?.cpu_ms ?? null;
      const mine = (raw[scenario] ?? []).filter((i) => i.worker === worker);
      for (const slot of ["busiest", "list_invocation"]) {
        const inv = w[slot];
        if (!inv) continue;
        const twin = mine[inv.index];
        // A run that took another course has no twin: its frames stay coarse.
        if (!twin || twin.trigger !== inv.trigger) continue;
        inv.top_frames = topFrames(twin.frames, top);
        inv.profile = twin.profile;
        inv.frames_v8_cpu_ms = twin.cpu_ms;
      }
    }
  }
}

/** Writes the busiest profiles next to the JSON, and the JSON without them. */
async function writeOutputs(opts, doc) {
  await mkdir(opts.profiles, { recursive: true });
  for (const [scenario, r] of Object.entries(doc.results)) {
    for (const worker of ["scraper", "processor"]) {
      for (const key of ["busiest", "list_invocation"]) {
        const inv = r?.[worker]?.[key];
        if (!inv?.profile) continue;
        const file = path.join(opts.profiles, `${scenario}-${worker}${key === "busiest" ? "" : "-list"}.cpuprofile`);
        await writeFile(file, JSON.stringify(inv.profile));
        inv.profile_file = path.relative(REPO_ROOT, file);
        delete inv.profile;
      }
    }
  }
  await mkdir(path.dirname(opts.json), { recursive: true });
  await writeFile(opts.json, JSON.stringify(doc, null, 2));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Before any child starts: they inherit this process's CPUs.
  opts.pinned = await reserveIsolateCpu();
  if (!opts.pinned) log("isolate thread not pinned (one CPU, or no taskset): figures include time it was preempted");
  const build = await buildFacts(opts.builds);
  for (const [worker, facts] of Object.entries(build)) {
    if (!facts.names) log(`${worker}: index_bg.wasm has no name section; frames will be unnamed (build with \`cargo xtask build --profiling\`)`);
  }
  const results = {};
  const chosenMain = opts.scenarios.filter((s) => MAIN_CHAIN.includes(s));
  const started = Date.now();
  const runMain = chosenMain.length || opts.sanity || opts.scenarios.includes("api");
  const figures = { clock: opts.clock, used: false };
  if (runMain) await mainChain(opts, chosenMain, results, figures);
  if (opts.scenarios.includes("scale")) await scaleRun(opts, results, figures);
  if (figures.used && opts.frames) {
    // The same runs again with V8 sampling every intervalUs, for the frames.
    log(`frames pass: the same runs, V8 sampling every ${opts.intervalUs} µs`);
    const frames = {};
    const pass = { clock: false, raw: {} };
    if (runMain) await mainChain(opts, chosenMain, frames, pass);
    if (opts.scenarios.includes("scale")) await scaleRun(opts, frames, pass);
    mergeFrames(results, frames, pass.raw, opts.top);
  }
  const doc = {
    method:
      (figures.used
        ? "the isolate clock (bench/isolate-clock.mjs): the CPU time of workerd's main thread while the worker's isolate " +
          "is entered (uprobes on v8::Isolate::Enter/Exit recorded by perf, each reading the thread's task-clock), summed " +
          `over exactly one invocation's window (a CDP Profiler.start/stop sampling every ${CLOCK_INTERVAL_US} µs, which ` +
          `marks the window); the frames come from a second pass of the same runs with V8 sampling every ${opts.intervalUs} µs; `
        : "V8 CPU profiler through workerd's inspector (CDP Profiler.start/stop around exactly one invocation, " +
          `sampling every ${opts.intervalUs} µs, non-idle samples summed); `) +
      "the bench driver is the queue: it invokes " +
      "each consumer with Fetcher.queue() one batch at a time and the cron with Fetcher.scheduled(); a worker's " +
      "start-up warm-up (apps/processor/warm-up.mjs) is run again after the inspector attaches, outside any profile, " +
      "since attaching drops the code compiled before it; " +
      (opts.pinned
        ? `workerd's main thread, which runs the isolates, has CPU ${opts.pinned.isolateCpu} to itself (everything else on ${opts.pinned.others})`
        : "workerd's main thread is not pinned to a core of its own"),
    pinned: opts.pinned ? { isolate_cpu: opts.pinned.isolateCpu, others: opts.pinned.others } : null,
    interval_us: opts.intervalUs,
    clock: figures.used ? { window_interval_us: CLOCK_INTERVAL_US } : null,
    seed: 42,
    build,
    // Worker vars set with --var, and V8 flags through Miniflare: a run with
    // either is an experiment, not the figure.
    vars: opts.vars,
    v8_flags: process.env.MINIFLARE_WORKERD_V8_FLAGS ?? null,
    elapsed_s: Math.round((Date.now() - started) / 1000),
    results,
  };
  console.log(table(results, opts.top));
  await writeOutputs(opts, doc);
  log(`wrote ${path.relative(process.cwd(), opts.json)} and the busiest profiles in ${path.relative(process.cwd(), opts.profiles)}/`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error?.stack ?? error);
      process.exit(1);
    },
  );
}
