// Pipeline-level helpers shared by the end-to-end tests: wire the compiled
// workers to the upstream simulator, run scrapes to completion, read D1.
import { startSimulator, startStack } from "./harness.mjs";

export const CRON = "0 */12 * * *";
export const BUDGET = 45;

/** Worker vars that point every upstream at the simulator. */
export function simVars(sim, extra = {}) {
  return {
    GITHUB_API_URL: sim.url,
    LIST_DATA_URL: `${sim.url}/raw/MunGell/awesome-for-beginners/main/data.json`,
    LIST_README_URL: `${sim.url}/raw/MunGell/awesome-for-beginners/main/README.md`,
    AI_REST_URL: sim.url,
    LOG_LEVEL: "debug",
    // Suites that are not about the AI budget analyse the whole snapshot with
    // AI in one day: no neuron cap for them (ai_budget.test.mjs sets one).
    AI_DAILY_NEURON_CAP: "1000000000",
    // The simulated world is dated around 2024-05 (seeded, never the wall
    // clock): with the default year, every repo would count as inactive.
    INACTIVE_AFTER_DAYS: "36500",
    // The processor spaces AI calls to stay under Workers AI's per-minute
    // limit (1 s apart per consumer); the simulator enforces none, so suites
    // not about pacing lift it rather than wait (a full snapshot is 2,262 calls).
    AI_CALLS_PER_MINUTE: "240000",
    ...extra,
  };
}

/** Simulator + workers + migrated D1. */
export async function startPipeline({ seed = 42, configs, vars = {}, varsByWorker, secrets, aiBinding, simArgs, miniflare } = {}) {
  // Workers AI's daily quota is lifted for suites not about the AI budget;
  // a suite that wants it passes `--ai-daily-neurons N` in `simArgs` (the last flag wins).
  const sim = await startSimulator({ seed, extraArgs: ["--ai-daily-neurons", "0", ...(simArgs ?? [])] });
  let stack;
  try {
    // A module stand-in (the simulator's Ai class) learns the simulator's address here.
    const ai = aiBinding?.module ? { ...aiBinding, env: { simUrl: sim.url, ...aiBinding.env } } : aiBinding;
    stack = await startStack({ configs, vars: simVars(sim, vars), varsByWorker, secrets, aiBinding: ai, quiet: true, miniflare });
    await stack.applyMigrations();
  } catch (error) {
    await sim.stop();
    throw error;
  }
  return {
    sim,
    stack,
    db: stack.db,
    async all(sql, ...params) {
      return (await stack.db.prepare(sql).bind(...params).all()).results;
    },
    async first(sql, ...params) {
      return stack.db.prepare(sql).bind(...params).first();
    },
    async close() {
      try {
        await stack.dispose();
      } finally {
        await sim.stop();
      }
    },
  };
}

/** Trigger the cron and wait until the run it started is finished. */
export async function runScrape(p, { timeoutMs = 240_000 } = {}) {
  const before = await p.first("SELECT COUNT(*) AS n FROM scrape_runs");
  await p.stack.scheduled(CRON);
  const run = await p.stack.waitFor(
    async () => {
      const r = await p.first("SELECT * FROM scrape_runs ORDER BY started_at DESC LIMIT 1");
      const count = await p.first("SELECT COUNT(*) AS n FROM scrape_runs");
      return count.n > before.n && r && r.status !== "running" ? r : null;
    },
    { timeoutMs, intervalMs: 250, message: "scrape run to finish" },
  );
  return run;
}

/** Every repo and issue row, for before/after comparisons. */
export async function snapshot(p) {
  return {
    repos: await p.all("SELECT * FROM repos ORDER BY owner, name"),
    issues: await p.all("SELECT * FROM issues ORDER BY repo_id, number"),
  };
}

/** Open issue numbers per repo slug, from D1. */
export async function openIssuesBySlug(p) {
  const rows = await p.all(
    "SELECT r.owner || '/' || r.name AS slug, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY slug, i.number",
  );
  const out = new Map();
  for (const { slug, number } of rows) {
    if (!out.has(slug)) out.set(slug, []);
    out.get(slug).push(number);
  }
  return out;
}

/** The scraper's invocations of a run, with their summaries parsed. */
export async function invocationsOf(p, runId) {
  const rows = await p.all("SELECT * FROM invocations WHERE run_id = ? ORDER BY started_at", runId);
  return rows.map((r) => ({ ...r, summary: JSON.parse(r.summary) }));
}

/** Parse a JSONL log object. */
export function parseJsonl(text) {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

// ---------------------------------------------------------------------------
// Fault-matrix helpers: drain the processing queue, capture the final D1
// state for comparison, and check the invariants every run must keep.
// ---------------------------------------------------------------------------

/** The simulator's counters. */
export function simCounters(p) {
  return p.sim.control("/_sim/counters");
}

/** Seed the simulator's fault plan (an empty `rules` clears it). */
export function setFaults(p, rules, seed = 7) {
  return p.sim.control("/_sim/faults", { seed, rules });
}

/** Wait until no active repo or open issue is pending or processing. */
export async function waitDrained(p, { timeoutMs = 600_000 } = {}) {
  return p.stack.waitFor(
    async () => {
      const r = await p.first(
        "SELECT (SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND processing_status IN ('pending','processing')) AS repos, (SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status IN ('pending','processing')) AS issues",
      );
      return r.repos === 0 && r.issues === 0;
    },
    { timeoutMs, intervalMs: 500, message: "processing queue to drain" },
  );
}

/**
 * Wait until the processor is idle: no new processor invocation, AI call or
 * upstream request for `ms` (in-flight batches, retries and duplicates done).
 */
export async function waitQuiet(p, { ms = 2500, timeoutMs = 300_000 } = {}) {
  const mark = async () => {
    const c = await simCounters(p);
    const inv = await p.first("SELECT COUNT(*) AS n FROM invocations");
    return `${c.requests_total}/${c.ai_calls_total}/${inv.n}`;
  };
  const started = Date.now();
  let prev = await mark();
  for (;;) {
    await new Promise((r) => setTimeout(r, ms));
    const now = await mark();
    if (now === prev) return;
    if (Date.now() - started > timeoutMs) throw new Error(`still busy after ${timeoutMs} ms (${now})`);
    prev = now;
  }
}

/**
 * The D1 state a fault must not change: repos and issues by natural key with
 * their upstream, label and processing state, plus row counts.
 */
export async function finalState(p) {
  const repos = await p.all(
    "SELECT owner, name, active, upstream_status, label_status, resolved_label, content_hash, processing_status FROM repos ORDER BY owner, name",
  );
  const issues = await p.all(
    "SELECT r.owner || '/' || r.name AS repo, i.number, i.state, i.content_hash, i.processing_status FROM issues i JOIN repos r ON r.id = i.repo_id ORDER BY r.owner, r.name, i.number",
  );
  return { repos, issues };
}

/** Every queue message the outbox would send for the current D1 state. */
export async function processingMessages(p) {
  const repos = await p.all("SELECT owner, name, content_hash, priority FROM repos WHERE active = 1 AND content_hash IS NOT NULL ORDER BY owner, name");
  const issues = await p.all(
    "SELECT r.owner, r.name, i.number, i.content_hash, i.priority FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY r.owner, r.name, i.number",
  );
  return [
    ...repos.map((r) => ({ type: "repo", v: 1, owner: r.owner, name: r.name, content_hash: r.content_hash, priority: r.priority })),
    ...issues.map((i) => ({ type: "issue", v: 1, owner: i.owner, name: i.name, number: i.number, content_hash: i.content_hash, priority: i.priority })),
  ];
}

/** `sendBatch` in chunks of 100 (the queue's limit per call). */
export async function sendAll(producer, bodies) {
  for (let i = 0; i < bodies.length; i += 100) {
    await producer.sendBatch(bodies.slice(i, i + 100).map((body) => ({ body })));
  }
}

/**
 * Checks the invariants every run keeps, fault or not; returns the problems
 * (empty when all hold). `unrecorded` lists invocation ids the simulator may
 * have seen without a ledger row (an invocation cut off by the platform),
 * each with the most requests it may have made.
 */
export async function invariantProblems(p, { budget = BUDGET, unrecorded = {} } = {}) {
  const problems = [];
  const invocations = await p.all("SELECT id, service, subrequests, budget FROM invocations");
  const byId = new Map(invocations.map((i) => [i.id, i]));
  for (const inv of invocations) {
    const limit = Math.min(budget, inv.budget);
    if (inv.subrequests > limit) problems.push(`${inv.service} invocation ${inv.id} used ${inv.subrequests} > ${limit} subrequests`);
  }
  const counters = await simCounters(p);
  for (const [id, c] of Object.entries(counters.by_invocation)) {
    const inv = byId.get(id);
    if (inv) {
      if (c.requests > inv.subrequests) problems.push(`simulator saw ${c.requests} requests from ${id}, which recorded ${inv.subrequests} subrequests`);
    } else if (id in unrecorded) {
      if (c.requests > unrecorded[id]) problems.push(`simulator saw ${c.requests} requests from unrecorded ${id} (limit ${unrecorded[id]})`);
    } else {
      problems.push(`simulator saw ${c.requests} requests from ${id}, which has no invocations row`);
    }
  }
  for (const table of ["repos", "issues"]) {
    const bad = await p.all(
      `SELECT id, processing_status, last_error FROM ${table} WHERE processing_status = 'failed' AND (last_error IS NULL OR TRIM(last_error) = '')`,
    );
    for (const row of bad) problems.push(`${table} ${row.id} failed without a reason`);
  }
  const fallbacks = await p.all(
    "SELECT 'repo' AS kind, id FROM repos WHERE analysis_model = 'heuristic-v1' AND (fallback_reason IS NULL OR fallback_reason = '') UNION ALL SELECT 'issue', id FROM issues WHERE analysis_model = 'heuristic-v1' AND (fallback_reason IS NULL OR fallback_reason = '')",
  );
  for (const row of fallbacks) problems.push(`${row.kind} ${row.id} fell back without a reason`);
  const dupRepos = await p.all("SELECT owner, name, COUNT(*) AS n FROM repos GROUP BY owner, name HAVING n > 1");
  for (const r of dupRepos) problems.push(`repo ${r.owner}/${r.name} stored ${r.n} times`);
  const dupIssues = await p.all("SELECT repo_id, number, COUNT(*) AS n FROM issues GROUP BY repo_id, number HAVING n > 1");
  for (const r of dupIssues) problems.push(`issue ${r.repo_id}#${r.number} stored ${r.n} times`);
  return problems;
}

/**
 * Differences between two `finalState` captures, as readable lines (empty
 * when equal). Rows are matched by natural key, so a missing, extra or
 * changed row is named.
 */
export function stateDiff(reference, actual, { limit = 20 } = {}) {
  const out = [];
  const compare = (label, keyOf, ref, act) => {
    const a = new Map(act.map((r) => [keyOf(r), r]));
    const seen = new Set();
    for (const r of ref) {
      const k = keyOf(r);
      seen.add(k);
      const other = a.get(k);
      if (!other) out.push(`${label} ${k} missing`);
      else if (JSON.stringify(other) !== JSON.stringify(r)) out.push(`${label} ${k}: expected ${JSON.stringify(r)}, got ${JSON.stringify(other)}`);
    }
    for (const [k] of a) if (!seen.has(k)) out.push(`${label} ${k} extra`);
    if (ref.length !== act.length) out.push(`${label} count ${act.length}, expected ${ref.length}`);
  };
  compare("repo", (r) => `${r.owner}/${r.name}`, reference.repos, actual.repos);
  compare("issue", (r) => `${r.repo}#${r.number}`, reference.issues, actual.issues);
  return out.length > limit ? [...out.slice(0, limit), `… and ${out.length - limit} more`] : out;
}
