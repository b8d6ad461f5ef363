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
    ...extra,
  };
}

/** Simulator + workers + migrated D1. */
export async function startPipeline({ seed = 42, configs, vars = {}, secrets, aiBinding, simArgs } = {}) {
  const sim = await startSimulator({ seed, extraArgs: simArgs });
  let stack;
  try {
    // A module stand-in (the simulator's Ai class) learns the simulator's address here.
    const ai = aiBinding?.module ? { ...aiBinding, env: { simUrl: sim.url, ...aiBinding.env } } : aiBinding;
    stack = await startStack({ configs, vars: simVars(sim, vars), secrets, aiBinding: ai, quiet: true });
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
