// The daily neuron cap on the compiled workers: the processor's ledger in
// D1 against the simulator's own count of Workers AI neurons (its quota
// enforced, tokens at ~4 characters a token, Cloudflare's per-model rates).
//
// Day 1: a full scrape queues the whole snapshot; the cap (small here) is
// reached mid-batch, no call starts past it, and the items refused get a
// labelled heuristic result now. Day 2 (the simulator's AI clock moved to
// the next UTC day, the ledger's row moved to yesterday): an unchanged run
// hands back exactly as many fallbacks as the day's allowance covers, best
// issues first, and AI upgrades them.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";

import { runScrape, simCounters, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";
import { REPO_ROOT } from "./harness.mjs";

const CAP = 1500;
const CAP_REASON = /^AI daily neuron cap reached on (\d{4}-\d{2}-\d{2}):/;
let p;
let model;

async function deployedModel() {
  const toml = await readFile(path.join(REPO_ROOT, "wrangler-processor.toml"), "utf8");
  return toml.match(/^AI_MODEL = "([^"]+)"/m)[1];
}

before(async () => {
  model = await deployedModel();
  p = await startPipeline({
    vars: {
      AI_BACKEND: "binding",
      AI_DAILY_NEURON_CAP: String(CAP),
      // Workers AI's per-minute pacing; the simulator has no such limit.
      AI_CALLS_PER_MINUTE: "240000",
    },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
    simArgs: ["--ai-daily-neurons", "10000"],
  });
});

after(async () => {
  await p?.close();
});

const ledger = () => p.all("SELECT * FROM ai_ledger ORDER BY day");
const quota = () => p.sim.control("/_sim/ai/quota");

/** Every stored analysis, repos and open issues, with what orders the backlog. */
async function items() {
  return p.all(
    `SELECT 'repo' AS kind, r.id, r.analysis_model, r.fallback_reason, r.priority, NULL AS state,
            0 AS assignee_count, 0 AS comment_count, NULL AS gh_created_at,
            (SELECT COUNT(*) FROM issues a WHERE a.repo_id = r.id AND a.available = 1 AND a.state = 'open') AS available
       FROM repos r WHERE r.active = 1 AND r.content_hash IS NOT NULL
     UNION ALL
     SELECT 'issue', i.id, i.analysis_model, i.fallback_reason, i.priority, i.state,
            i.assignee_count, i.comment_count, i.gh_created_at,
            (SELECT COUNT(*) FROM issues a WHERE a.repo_id = i.repo_id AND a.available = 1 AND a.state = 'open')
       FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.active = 1 AND i.state = 'open'`,
  );
}

/** Value to a beginner, best first: repos by available issues, then issues
 * open, unassigned, fewest comments, newest (ties: more available in the repo). */
function byValue(a, b) {
  if (a.kind !== b.kind) return a.kind === "repo" ? -1 : 1;
  if (a.kind === "repo") return b.available - a.available || a.id - b.id;
  const key = (x) => [x.state === "open" ? 0 : 1, x.assignee_count === 0 ? 0 : 1, x.comment_count];
  const [ka, kb] = [key(a), key(b)];
  for (let k = 0; k < ka.length; k++) if (ka[k] !== kb[k]) return ka[k] - kb[k];
  const [ca, cb] = [a.gh_created_at ?? "", b.gh_created_at ?? ""];
  const created = ca === cb ? 0 : ca > cb ? -1 : 1;
  return created || b.available - a.available || a.id - b.id;
}

const capped = (i) => i.analysis_model === "heuristic-v1" && CAP_REASON.test(i.fallback_reason ?? "");

test("the cap is reached mid-batch, no call starts past it, and the rest gets a labelled heuristic now", async (t) => {
  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  await waitDrained(p);
  await waitQuiet(p);

  const rows = await ledger();
  assert.equal(rows.length, 1, "one UTC day");
  const [day] = rows;
  assert.ok(day.neurons <= CAP, `${day.neurons} neurons spent, cap ${CAP}`);
  assert.equal(day.model, model);
  assert.equal(day.cap, CAP);
  t.diagnostic(
    `${day.calls} calls, ${day.neurons.toFixed(1)} neurons (${(day.neurons / day.calls).toFixed(2)} a call), ` +
      `${(day.prompt_tokens / day.calls).toFixed(0)} prompt and ${(day.completion_tokens / day.calls).toFixed(0)} completion tokens a call`,
  );

  // The simulator billed exactly what the ledger recorded: same calls, same tokens.
  const q = await quota();
  assert.ok(Math.abs(q.used - day.neurons) < 0.01, `simulator ${q.used}, ledger ${day.neurons}`);
  const counters = await simCounters(p);
  assert.equal(counters.ai_calls_total, day.calls);
  assert.deepEqual(Object.keys(counters.ai_calls[model]), ["ok"], "no quota error, no failure");

  const all = await items();
  const ai = all.filter((i) => i.analysis_model === model);
  const refused = all.filter(capped);
  assert.equal(ai.length, day.calls, "one call per item analysed by AI");
  assert.ok(ai.length > 0 && refused.length > 0, `${ai.length} by AI, ${refused.length} at the cap`);
  assert.equal(ai.length + refused.length, all.length, "every item is analysed or labelled");
  assert.equal(day.refused, refused.length);
  for (const i of refused) assert.equal(CAP_REASON.exec(i.fallback_reason)[1], day.day);

  // Mid-batch: some batch started AI calls and then refused the rest.
  const batches = (await p.all("SELECT summary FROM invocations WHERE service = 'processor'")).map((r) => JSON.parse(r.summary));
  assert.ok(
    batches.some((b) => b.ai_calls > 0 && b.fallbacks > 0),
    "a batch that called AI and then reached the cap",
  );
});

test("the next UTC day resumes the upgrades in value order", async () => {
  const [yesterday] = await ledger();
  const backlog = (await items()).filter(capped).sort(byValue);
  assert.ok(backlog.length > 0);

  // The next UTC day: the simulator's AI clock moves on, and the worker's
  // ledger row for today becomes yesterday's.
  await p.sim.control("/_sim/ai/quota", { advance_days: 1 });
  const previous = new Date(Date.parse(`${yesterday.day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  for (const table of ["ai_ledger", "ai_reservations"]) {
    await p.db.prepare(`UPDATE ${table} SET day = ?1 WHERE day = ?2`).bind(previous, yesterday.day).run();
  }
  assert.equal((await quota()).used, 0);

  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  await waitDrained(p);
  await waitQuiet(p);

  // Exactly what the day's allowance covers at yesterday's mean cost per call.
  const perCall = yesterday.neurons / yesterday.calls;
  const expected = Math.min(backlog.length, Math.floor(CAP / perCall));
  const after = await items();
  const requeued = after.filter((i) => i.priority < 0);
  assert.equal(requeued.length, expected, `${CAP} neurons at ${perCall.toFixed(2)} a call`);
  // The best of the backlog, in value order: rank = −priority.
  const want = backlog.slice(0, expected).map((i) => `${i.kind}:${i.id}`);
  const got = [...requeued].sort((a, b) => (a.kind === b.kind ? b.priority - a.priority : a.kind === "repo" ? -1 : 1));
  assert.deepEqual(got.map((i) => `${i.kind}:${i.id}`), want);

  const upgraded = got.filter((i) => i.analysis_model === model);
  assert.ok(upgraded.length > 0);
  assert.equal(`${upgraded[0].kind}:${upgraded[0].id}`, want[0], "the best item first");
  for (const i of requeued) {
    assert.ok(i.analysis_model === model || capped(i), `${i.kind} ${i.id}: ${i.fallback_reason}`);
  }
  // Items past the allowance were not handed back and keep their result.
  const rest = new Set(backlog.slice(expected).map((i) => `${i.kind}:${i.id}`));
  for (const i of after) if (rest.has(`${i.kind}:${i.id}`)) assert.ok(capped(i));

  const today = (await ledger()).find((d) => d.day === yesterday.day);
  assert.ok(today.neurons <= CAP, `${today.neurons} neurons on the second day`);
  const q = await quota();
  assert.ok(Math.abs(q.used - today.neurons) < 0.01, `simulator ${q.used}, ledger ${today.neurons}`);
  assert.equal(today.calls, upgraded.length);
});

test("operators see the budget: today's neurons against the cap, the backlog and its completion day", async () => {
  const res = await p.stack.fetch("/admin/status", { headers: { authorization: "Bearer e2e-admin-token" } });
  assert.equal(res.status, 200);
  const { ai } = await res.json();
  const [, today] = await ledger();
  assert.equal(ai.day, today.day);
  assert.equal(ai.cap, CAP);
  assert.ok(Math.abs(ai.neurons - today.neurons) <= 0.05);
  assert.equal(ai.at_cap, "heuristic_now_upgrade_later");
  const left = (await items()).filter(capped).length;
  assert.equal(ai.backlog.repos + ai.backlog.issues, left);
  assert.match(ai.backlog.estimated_completion, /^\d{4}-\d{2}-\d{2}$/);
  assert.ok(ai.backlog.estimated_completion > today.day, "the rest needs later days");
});
