// The compiled scraper and processor together in workerd, with the
// simulator standing in for GitHub and for the Workers AI binding.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseToml } from "smol-toml";

import { BUDGET, parseJsonl, runScrape, snapshot, startPipeline } from "./contribot.mjs";
import { REPO_ROOT } from "./harness.mjs";

/** The model the deployed processor config names. */
const MODEL = parseToml(readFileSync(path.join(REPO_ROOT, "wrangler-processor.toml"), "utf8")).vars.AI_MODEL;

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
    // AI pacing is for Workers AI's per-minute limit; the simulator has none,
    // so it is widened here (GitHub's pacing stays as deployed).
    vars: { AI_BACKEND: "binding", AI_CALLS_PER_MINUTE: "240000" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
    // Each scrape of the snapshot costs ~900 GraphQL points; this suite runs
    // more than five within the hour GitHub's 5,000 would last.
    simArgs: ["--graphql-points", "1000000"],
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
    assert.equal(i.analysis_model, MODEL, `issue ${i.id} fell back: ${i.fallback_reason}`);
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

test("a message that fails on every delivery ends failed with GitHub's reason on its last delivery", async () => {
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
      { timeoutMs: 240_000, intervalMs: 1000, message: "the issue to end failed" },
    );
    assert.match(row.last_error, /^gave up after 4 deliveries: GitHub HTTP 502/);
    assert.equal(row.attempts, 4);
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});

test("AI 429s are retried through the queue and end as AI output, not heuristic", async () => {
  await drained(p);
  await quiet();
  const targets = await p.all("SELECT r.owner, r.name, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id LIMIT 3 OFFSET 30");
  await p.sim.control("/_sim/mutate", { ops: targets.map((t) => ({ op: "edit_issue", repo: `${t.owner}/${t.name}`, number: t.number, title: `Rate-limited case ${t.number}` })) });
  await p.sim.control("/_sim/faults", {
    seed: 7,
    // Both are 429s: out of capacity (3040) and the API's rate limiter (971).
    rules: [
      { route: "ai_binding", kind: "ai_capacity_exceeded", rate: 1.0, max_count: 1 },
      { route: "ai_binding", kind: "ai_rate_limited", rate: 1.0, max_count: 1 },
    ],
  });
  try {
    const faultsBefore = (await p.sim.control("/_sim/counters")).faults_by_kind;
    await runScrape(p);
    await drained(p);
    await quiet();
    for (const t of targets) {
      const row = await p.first("SELECT i.* FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?", t.owner, t.name, t.number);
      assert.equal(row.processing_status, "completed");
      assert.equal(row.analysis_model, MODEL, `fell back: ${row.fallback_reason}`);
      assert.equal(row.fallback_reason, null);
      assert.equal(row.analysis_hash, row.content_hash);
    }
    // Both refusals happened (each sent its batch back to the queue).
    const faults = (await p.sim.control("/_sim/counters")).faults_by_kind;
    assert.equal(faults.ai_capacity_exceeded - (faultsBefore.ai_capacity_exceeded ?? 0), 1);
    assert.equal(faults.ai_rate_limited - (faultsBefore.ai_rate_limited ?? 0), 1);
    const logs = (await p.stack.listLogs("logs/")).filter((l) => l.key.includes("/processor-"));
    const later = logs.flatMap((l) => parseJsonl(l.text)).filter((x) => x.event === "ai_retry_later");
    assert.equal(later.length, 2, "one retry-later line per refused call");
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});

test("the scraper storing newer content while a batch analyses the old: the old analysis never lands, the new one does", async () => {
  await drained(p);
  await quiet();
  const t = await p.first("SELECT r.owner, r.name, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id LIMIT 1 OFFSET 50");
  const repo = `${t.owner}/${t.name}`;
  // This test's log lines only (the item completed once in the full run).
  const since = new Date().toISOString();
  // The first analysis of the edit waits 90 s on AI; meanwhile the title
  // changes again and a whole scrape run stores it (a run takes seconds).
  await p.sim.control("/_sim/faults", { seed: 7, rules: [{ route: "ai_binding", kind: "latency", rate: 1.0, latency_ms: 90_000, max_count: 1 }] });
  try {
    const calls = await aiCalls();
    await p.sim.control("/_sim/mutate", { ops: [{ op: "edit_issue", repo, number: t.number, title: "Race: first edit" }] });
    await runScrape(p);
    // A batch reserves its neurons in D1 just before its first AI call.
    await p.stack.waitFor(async () => (await p.first("SELECT COUNT(*) AS n FROM ai_reservations")).n > 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
      message: "the slow AI call to start",
    });
    await p.sim.control("/_sim/mutate", { ops: [{ op: "edit_issue", repo, number: t.number, title: "Race: second edit" }] });
    await runScrape(p);
    await drained(p);
    await quiet();
    const row = await p.first("SELECT i.* FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?", t.owner, t.name, t.number);
    assert.equal(row.title, "Race: second edit");
    assert.equal(row.processing_status, "completed");
    assert.equal(row.analysis_hash, row.content_hash, "the analysis is the newer content's");
    const lines = (await p.stack.listLogs("logs/"))
      .filter((l) => l.key.includes("/processor-"))
      .flatMap((l) => parseJsonl(l.text))
      .filter((x) => x.event === "message" && x.fields.item === `${repo}#${t.number}` && x.ts >= since);
    const outcomes = lines.map((x) => x.fields.outcome);
    assert.ok(outcomes.includes("superseded"), `outcomes: ${outcomes}`);
    assert.equal(outcomes.filter((o) => o === "completed").length, 1, `outcomes: ${outcomes}`);
    assert.equal((await aiCalls()) - calls, 2, "the superseded analysis and the newer one");
    assert.equal((await p.first("SELECT COUNT(*) AS n FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?", t.owner, t.name, t.number)).n, 1);
  } finally {
    await p.sim.control("/_sim/faults", { seed: 7, rules: [] });
  }
});

test("an edit that leaves the text as it was re-queues the issue but keeps its analysis: no AI call", async () => {
  await drained(p);
  await quiet();
  const t = await p.first(
    "SELECT i.id, r.owner, r.name, i.number, i.body, i.content_hash, i.analyzed_at, i.intro FROM issues i JOIN repos r ON r.id = i.repo_id \
     WHERE i.state = 'open' AND i.processing_status = 'completed' AND i.body IS NOT NULL AND i.body != '' ORDER BY i.id LIMIT 1 OFFSET 70",
  );
  const calls = await aiCalls();
  // GitHub stamps `lastEditedAt` on a body edit even when the text is the same.
  await p.sim.control("/_sim/mutate", { ops: [{ op: "edit_issue", repo: `${t.owner}/${t.name}`, number: t.number, body: t.body }] });
  const run = await runScrape(p);
  assert.equal(run.messages_queued, 1, "the new lastEditedAt queues the issue");
  await drained(p);
  await quiet();
  const row = await p.first("SELECT * FROM issues WHERE id = ?", t.id);
  assert.notEqual(row.content_hash, t.content_hash);
  assert.equal(row.processing_status, "completed");
  assert.equal(row.analysis_hash, row.content_hash, "the analysis stands for the new content hash");
  assert.equal(row.analyzed_at, t.analyzed_at, "and was not made again");
  assert.equal(row.intro, t.intro);
  assert.equal((await aiCalls()) - calls, 0, "no AI call");
  const outcomes = (await p.stack.listLogs("logs/"))
    .filter((l) => l.key.includes("/processor-"))
    .flatMap((l) => parseJsonl(l.text))
    .filter((x) => x.event === "message" && x.fields.item === `${t.owner}/${t.name}#${t.number}`)
    .map((x) => x.fields.outcome);
  assert.equal(outcomes.at(-1), "reused", `outcomes: ${outcomes}`);
});

// Last: Workers AI's quota error marks the day spent in the neuron ledger, so
// no later test of this suite could reach AI today.
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
