// The compiled scraper and processor together in workerd, with the
// simulator standing in for GitHub and for the Workers AI binding.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { BUDGET, parseJsonl, runScrape, snapshot, startPipeline } from "./contribot.mjs";

let p;

/** Wait until nothing is pending or in a retry: the processing queue is drained. */
async function drained(p, { timeoutMs = 600_000 } = {}) {
  let last = "";
  return p.stack.waitFor(
    async () => {
      const r = await p.first(
        "SELECT (SELECT COUNT(*) FROM repos WHERE active = 1 AND content_hash IS NOT NULL AND processing_status IN ('pending','processing')) AS repos, (SELECT COUNT(*) FROM issues WHERE state = 'open' AND processing_status IN ('pending','processing')) AS issues",
      );
      const line = `pending repos=${r.repos} issues=${r.issues}`;
      if (line !== last && process.env.E2E_VERBOSE) console.log(line);
      last = line;
      return r.repos === 0 && r.issues === 0;
    },
    { timeoutMs, intervalMs: 500, message: "processing queue to drain" },
  );
}

async function aiCalls() {
  const c = await p.sim.control("/_sim/counters");
  return c.ai_calls_total;
}

async function quiet(ms = 3000) {
  // Let in-flight batches settle: no AI call or D1 change for `ms`.
  let prev = -1;
  for (;;) {
    const now = await aiCalls();
    if (now === prev) return;
    prev = now;
    await new Promise((r) => setTimeout(r, ms));
  }
}

before(async () => {
  p = await startPipeline({
    vars: { AI_BACKEND: "binding" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
  });
});

after(async () => {
  await p?.close();
});

test("every item queued by a full scrape ends completed, with an analysis and its provenance", async () => {
  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  await drained(p);
  await quiet();
  const issues = await p.all("SELECT * FROM issues WHERE state = 'open'");
  assert.ok(issues.length > 1000);
  for (const i of issues) {
    assert.equal(i.processing_status, "completed", `issue ${i.id}: ${i.last_error}`);
    assert.ok(i.intro && i.intro.length >= 20);
    assert.ok(i.difficulty >= 1 && i.difficulty <= 5);
    assert.ok(JSON.parse(i.first_steps).length >= 1);
    assert.ok(i.analysis_model && i.prompt_version && i.analysis_hash === i.content_hash && i.analyzed_at > 0);
    assert.equal(i.analysis_model, "@cf/meta/llama-3.1-8b-instruct", `issue ${i.id} fell back: ${i.fallback_reason}`);
    assert.ok(i.body !== null);
  }
  const repos = await p.all("SELECT * FROM repos WHERE active = 1 AND content_hash IS NOT NULL");
  for (const r of repos) {
    assert.equal(r.processing_status, "completed", `${r.owner}/${r.name}: ${r.last_error}`);
    assert.ok(r.summary && r.languages && r.languages_raw);
    assert.ok(r.analysis_model && r.analysis_hash === r.content_hash);
  }
  const inv = await p.all("SELECT * FROM invocations WHERE service = 'processor'");
  assert.ok(inv.length > 0);
  for (const i of inv) assert.ok(i.subrequests <= BUDGET, `${i.id} used ${i.subrequests}`);
  const logs = (await p.stack.listLogs("logs/")).filter((l) => l.key.includes("/processor-"));
  assert.equal(logs.length, inv.length, "one log object per processor invocation");
  for (const log of logs) {
    const lines = parseJsonl(log.text);
    assert.equal(lines.at(-1).event, "summary");
    for (const k of ["acked", "retried", "failed", "ai_calls", "fallbacks", "subrequests_used"]) assert.ok(k in lines.at(-1).fields);
    assert.ok(lines.some((l) => l.event === "message"), "one line per message");
  }
});

test("a rerun on unchanged data makes no AI call", async () => {
  const calls = await aiCalls();
  const run = await runScrape(p);
  assert.equal(run.messages_queued, 0);
  await quiet();
  assert.equal(await aiCalls(), calls);
});

test("every message delivered twice: no extra AI calls and no extra rows", async () => {
  const before = await snapshot(p);
  const calls = await aiCalls();
  const producer = await p.stack.producer("PROCESSING_QUEUE");
  const repos = await p.all("SELECT owner, name, content_hash FROM repos WHERE content_hash IS NOT NULL LIMIT 20");
  const issues = await p.all("SELECT r.owner, r.name, i.number, i.content_hash FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' LIMIT 40");
  const bodies = [
    ...repos.map((r) => ({ type: "repo", v: 1, owner: r.owner, name: r.name, content_hash: r.content_hash, priority: 1 })),
    ...issues.map((i) => ({ type: "issue", v: 1, owner: i.owner, name: i.name, number: i.number, content_hash: i.content_hash, priority: 1 })),
  ];
  for (let k = 0; k < 2; k++) await producer.sendBatch(bodies.map((body) => ({ body })));
  await new Promise((r) => setTimeout(r, 8000));
  await quiet();
  assert.equal(await aiCalls(), calls, "duplicates made no AI call");
  assert.deepEqual(await snapshot(p), before, "duplicates wrote no repo or issue row");
});

test("malformed AI output is retried once, then a labelled heuristic result is stored with the reason", async () => {
  await p.sim.control("/_sim/faults", { seed: 7, rules: [{ route: "ai_binding", kind: "ai_malformed_json", rate: 1.0 }] });
  try {
    const target = await p.first("SELECT r.owner, r.name, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id LIMIT 1");
    await p.sim.control("/_sim/mutate", { ops: [{ op: "edit_issue", repo: `${target.owner}/${target.name}`, number: target.number, title: "Malformed AI case" }] });
    const calls = await aiCalls();
    await runScrape(p);
    await drained(p);
    await quiet();
    const row = await p.first(
      "SELECT i.* FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?",
      target.owner,
      target.name,
      target.number,
    );
    assert.equal(row.processing_status, "completed");
    assert.equal(row.analysis_model, "heuristic-v1");
    assert.match(row.fallback_reason, /invalid output twice/);
    assert.equal((await aiCalls()) - calls, 2, "one retry, then the fallback");
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});

test("AI quota exhausted: the rest of the batch falls back without further AI calls", async () => {
  await p.sim.control("/_sim/faults", { seed: 7, rules: [{ route: "ai_binding", kind: "ai_quota_exhausted", rate: 1.0 }] });
  try {
    const targets = await p.all("SELECT r.owner, r.name, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id LIMIT 8 OFFSET 10");
    await p.sim.control("/_sim/mutate", { ops: targets.map((t) => ({ op: "edit_issue", repo: `${t.owner}/${t.name}`, number: t.number, title: `Quota case ${t.number}` })) });
    await runScrape(p);
    await drained(p);
    await quiet();
    const logs = (await p.stack.listLogs("logs/")).filter((l) => l.key.includes("/processor-"));
    const recent = logs.map((l) => parseJsonl(l.text)).filter((lines) => lines.some((x) => x.event === "ai_quota_exhausted"));
    assert.ok(recent.length >= 1);
    for (const lines of recent) {
      const summary = lines.at(-1).fields;
      assert.equal(summary.ai_calls, 1, "no AI call after the quota error");
    }
    for (const t of targets) {
      const row = await p.first("SELECT i.* FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?", t.owner, t.name, t.number);
      assert.equal(row.processing_status, "completed");
      assert.equal(row.analysis_model, "heuristic-v1");
      assert.match(row.fallback_reason, /daily allocation exhausted/);
    }
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});

test("a message that fails on every attempt ends failed in D1 through the dead-letter queue", async () => {
  await drained(p);
  await quiet();
  const t = await p.first(
    "SELECT i.id, r.owner, r.name, i.number, i.content_hash FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id DESC LIMIT 1",
  );
  // The item needs work again, and GitHub fails every enrichment from now on.
  await p.db.prepare("UPDATE issues SET analysis_hash = NULL, processing_status = 'pending' WHERE id = ?").bind(t.id).run();
  await p.sim.control("/_sim/faults", { seed: 7, rules: [{ route: "graphql", kind: "status_502", rate: 1.0 }] });
  try {
    const producer = await p.stack.producer("PROCESSING_QUEUE");
    await producer.send({ type: "issue", v: 1, owner: t.owner, name: t.name, number: t.number, content_hash: t.content_hash, priority: 1 });
    const row = await p.stack.waitFor(
      async () => {
        const r = await p.first("SELECT * FROM issues WHERE id = ?", t.id);
        return r.processing_status === "failed" ? r : null;
      },
      { timeoutMs: 180_000, intervalMs: 1000, message: "the issue to be dead-lettered" },
    );
    assert.match(row.last_error, /dead-lettered after \d+ attempt/);
    assert.match(row.last_error, /502/);
    assert.ok(row.attempts >= 3);
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});
