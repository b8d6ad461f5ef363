// The fault matrix: the compiled workers against a simulator that fails on
// purpose. One fault-free pipeline (scraper + processor + AI stand-in) gives
// the reference D1 state; every scenario then runs a fresh pipeline from the
// same seed with its faults and must end in that same state, within budget,
// with every failure and fallback carrying its reason.
//
// GitHub fault kinds run one per scraper-only pipeline (cheap, and each kind
// is shown to fire on its own), then all together across scraper and
// processor. AI faults, duplicated continuations and invocations cut off by
// the platform each get a full pipeline; every processing message is
// delivered twice on the fault-free pipeline once it is done.
//
// Every scenario checks the same invariants (contribot.mjs
// `invariantProblems`): no invocation over its budget, the simulator never
// saw more requests from an invocation than it recorded, every failed item
// and every fallback carries its reason, no duplicate rows.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  CRON,
  finalState,
  invariantProblems,
  parseJsonl,
  processingMessages,
  runScrape,
  sendAll,
  setFaults,
  simCounters,
  snapshot,
  startPipeline,
  stateDiff,
  waitDrained,
  waitQuiet,
} from "./contribot.mjs";

const SEED = 42;
const AI_MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"; // wrangler-processor.toml AI_MODEL
const AI_BINDING = { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} };

/** A scraper + processor pipeline with the AI stand-in. */
function fullPipeline(options = {}) {
  return startPipeline({ seed: SEED, vars: { AI_BACKEND: "binding" }, aiBinding: AI_BINDING, ...options });
}

/** The scraper alone: its items stay queued, unprocessed. */
function scraperPipeline(options = {}) {
  return startPipeline({ seed: SEED, configs: ["wrangler-scraper.toml"], ...options });
}

let base; // the fault-free pipeline, kept open for the duplicate-delivery test
let reference; // its final D1 state
let baseRun;
let baseAiCalls;

before(async () => {
  base = await fullPipeline();
  baseRun = await runScrape(base);
  await waitDrained(base);
  await waitQuiet(base);
  reference = await finalState(base);
  baseAiCalls = (await simCounters(base)).ai_calls_total;
});

after(async () => {
  await base?.close();
});

/** The scraper's columns only (what a scraper-only pipeline can match). */
function scraperView(state) {
  const strip = (rows) => rows.map(({ processing_status, ...rest }) => rest);
  return { repos: strip(state.repos), issues: strip(state.issues) };
}

async function assertInvariants(p, options) {
  const problems = await invariantProblems(p, options);
  assert.deepEqual(problems, [], problems.join("\n"));
}

function assertSameState(actual, expected, what) {
  const diff = stateDiff(expected, actual);
  assert.deepEqual(diff, [], `${what} differs from the fault-free run:\n${diff.join("\n")}`);
}

function assertFired(counters, kinds) {
  for (const kind of kinds) {
    assert.ok((counters.faults_by_kind[kind] ?? 0) > 0, `fault ${kind} never fired: ${JSON.stringify(counters.faults_by_kind)}`);
  }
}

async function runOfScenario(p) {
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `run ended ${run.status}: ${run.error}`);
  return run;
}

async function deadLetters(p) {
  return p.all("SELECT queue, reason FROM dead_letters");
}

test("fault-free baseline: every listed repo and labelled issue stored and analysed by AI, within budget", async () => {
  assert.equal(baseRun.status, "completed", `baseline run ended ${baseRun.status}: ${baseRun.error}`);
  assert.equal(reference.repos.length, 222);
  assert.ok(reference.issues.length > 1000, `${reference.issues.length} issues`);
  for (const r of reference.repos) {
    if (r.content_hash) assert.equal(r.processing_status, "completed", `${r.owner}/${r.name}`);
  }
  for (const i of reference.issues) {
    assert.equal(i.state, "open");
    assert.equal(i.processing_status, "completed", `${i.repo}#${i.number}`);
  }
  const fallbacks = await base.first(
    "SELECT (SELECT COUNT(*) FROM repos WHERE analysis_model IS NOT NULL AND analysis_model <> ?1) + (SELECT COUNT(*) FROM issues WHERE analysis_model <> ?1) AS n",
    AI_MODEL,
  );
  assert.equal(fallbacks.n, 0, "no fallback without faults");
  assert.deepEqual(await deadLetters(base), []);
  await assertInvariants(base);
});

test("every processing message delivered twice after a run: no AI call, no write, no extra row", async () => {
  const before = await snapshot(base);
  const runs = await base.all("SELECT * FROM scrape_runs");
  const bodies = await processingMessages(base);
  assert.equal(bodies.length, baseAiCalls, "one message per analysed item");
  const producer = await base.stack.producer("PROCESSING_QUEUE", "contribot-scraper");
  const invocationsBefore = (await base.first("SELECT COUNT(*) AS n FROM invocations WHERE service = 'processor'")).n;
  await sendAll(producer, bodies);
  await sendAll(producer, bodies);
  // Wait for every duplicate to be consumed, as counted by the processor's ledger.
  await base.stack.waitFor(
    async () => {
      const rows = await base.all("SELECT summary FROM invocations WHERE service = 'processor' ORDER BY started_at");
      const seen = rows.slice(invocationsBefore).reduce((n, r) => n + JSON.parse(r.summary).messages, 0);
      return seen >= bodies.length * 2;
    },
    { timeoutMs: 240_000, intervalMs: 500, message: "the duplicates to be consumed" },
  );
  await waitQuiet(base);
  const rows = await base.all("SELECT summary FROM invocations WHERE service = 'processor' ORDER BY started_at");
  const summaries = rows.slice(invocationsBefore).map((r) => JSON.parse(r.summary));
  const total = (k) => summaries.reduce((n, s) => n + s[k], 0);
  assert.equal(total("messages"), bodies.length * 2);
  assert.equal(total("skipped"), bodies.length * 2, "every duplicate skipped as already analysed");
  assert.equal(total("ai_calls"), 0);
  assert.equal(total("github_requests"), 0);
  assert.equal((await simCounters(base)).ai_calls_total, baseAiCalls, "no AI call");
  assert.deepEqual(await snapshot(base), before, "no repo or issue row changed");
  assert.deepEqual(await base.all("SELECT * FROM scrape_runs"), runs);
  assert.deepEqual(await deadLetters(base), []);
  await assertInvariants(base);
});

// --------------------------------------------------------- GitHub, one by one

/**
 * A kind's rules: it hits the first GraphQL query and the first list fetch
 * for certain (so it demonstrably fires however few requests a run makes),
 * then `rate` of the GraphQL queries at random.
 */
function rulesFor(kind, rate, extra = {}) {
  return [
    { route: "graphql", kind, rate: 1.0, max_count: 1, ...extra },
    { route: "raw", kind, rate: 1.0, max_count: 1, ...extra },
    { route: "graphql", kind, rate, ...extra },
  ];
}

const GITHUB_KINDS = [
  {
    name: "20% GitHub 5xx (500 and 502 on GraphQL and the raw list)",
    rules: [...rulesFor("status_500", 0.1), ...rulesFor("status_502", 0.1)],
    fired: ["status_500", "status_502"],
  },
  {
    name: "429 with Retry-After: 1",
    rules: rulesFor("rate_limit_429", 0.2, { retry_after_secs: 1 }),
    fired: ["rate_limit_429"],
  },
  {
    name: "403 secondary rate limit",
    rules: rulesFor("secondary_rate_limit_403", 0.2, { retry_after_secs: 1 }),
    fired: ["secondary_rate_limit_403"],
  },
  {
    name: "truncated JSON bodies",
    rules: rulesFor("truncated_json", 0.2),
    fired: ["truncated_json"],
  },
  {
    name: "200 ms of added latency",
    rules: rulesFor("latency", 1.0, { latency_ms: 200 }),
    fired: ["latency"],
  },
];

describe("each GitHub fault kind alone, scraper only", { concurrency: GITHUB_KINDS.length }, () => {
  for (const kind of GITHUB_KINDS) {
    test(`scraper under ${kind.name}: same repos and issues as without faults, within budget`, async () => {
      const p = await scraperPipeline();
      try {
        await setFaults(p, kind.rules);
        const run = await runOfScenario(p);
        const counters = await simCounters(p);
        assertFired(counters, kind.fired);
        assertSameState(scraperView(await finalState(p)), scraperView(reference), kind.name);
        // Nothing was queued twice or lost: one message per stored item.
        assert.equal(run.messages_queued, baseRun.messages_queued);
        await assertInvariants(p);
      } finally {
        await p.close();
      }
    });
  }
});

// The full pipelines under faults, two at a time: the processor consumes one
// batch at a time, so a pipeline waiting on retries leaves the CPU to the other.
describe("full pipelines under faults", { concurrency: 2 }, () => {
  // ---------------------------------------------------- GitHub, all at once

  const SECRETS = { GITHUB_TOKEN: "ghp_e2eFaultMatrixToken123456", ADMIN_TOKEN: "e2e-fault-matrix-admin-secret" };

  test("every GitHub fault at once, across scraper and processor: same final state, every item completed", async () => {
    const p = await fullPipeline({ secrets: SECRETS });
    try {
      // Each failing kind fires a few times, in the scraper's queries and the
      // processor's first enrich queries (the processor consumes one batch at
      // a time here, so every in-place retry wait adds to the suite's time).
      await setFaults(p, [
        { route: "graphql", kind: "status_500", rate: 0.06, max_count: 4 },
        { route: "graphql", kind: "status_502", rate: 0.06, max_count: 4 },
        { route: "graphql", kind: "rate_limit_429", rate: 0.06, retry_after_secs: 1, max_count: 4 },
        { route: "graphql", kind: "secondary_rate_limit_403", rate: 0.06, retry_after_secs: 1, max_count: 4 },
        { route: "graphql", kind: "truncated_json", rate: 0.06, max_count: 4 },
        { route: "graphql", kind: "latency", rate: 0.1, latency_ms: 200 },
        { route: "raw", kind: "status_502", rate: 1.0, max_count: 1 },
      ]);
      await runOfScenario(p);
      await waitDrained(p);
      await waitQuiet(p);
      const counters = await simCounters(p);
      assertFired(counters, ["status_500", "status_502", "rate_limit_429", "secondary_rate_limit_403", "truncated_json", "latency"]);
      assertSameState(await finalState(p), reference, "all GitHub faults");
      assert.equal(counters.ai_calls_total, baseAiCalls, "each item analysed exactly once");
      await assertInvariants(p);
      // Failure lines quote upstream answers; none may quote a secret.
      const logs = await p.stack.listLogs("logs/");
      assert.ok(logs.some((l) => l.key.includes("/scraper-") && l.text.includes('"graphql_failed"')), "the scraper met faults");
      assert.ok(logs.some((l) => l.key.includes("/processor-") && l.text.includes('"enrich_failed"')), "the processor met faults");
      for (const log of logs) {
        for (const [name, value] of Object.entries(SECRETS)) assert.ok(!log.text.includes(value), `${log.key} leaks ${name}`);
      }
    } finally {
      await p.close();
    }
  });

  // ------------------------------------------------------------------ AI

  test("AI returns malformed output 30% of the time: every item completed, fallbacks labelled heuristic-v1 with the reason", async () => {
    const p = await fullPipeline();
    try {
      await setFaults(p, [{ route: "ai_binding", kind: "ai_malformed_json", rate: 0.3 }]);
      await runOfScenario(p);
      await waitDrained(p);
      await waitQuiet(p);
      assertSameState(await finalState(p), reference, "malformed AI output");
      const items = await p.all(
        "SELECT 'repo' AS kind, analysis_model, fallback_reason FROM repos WHERE content_hash IS NOT NULL UNION ALL SELECT 'issue', analysis_model, fallback_reason FROM issues",
      );
      const fell = items.filter((i) => i.analysis_model === "heuristic-v1");
      assert.ok(fell.length > 0, "some items fell back");
      for (const i of fell) assert.match(i.fallback_reason, /AI returned invalid output twice/);
      for (const i of items.filter((i) => i.analysis_model !== "heuristic-v1")) {
        assert.equal(i.analysis_model, AI_MODEL);
        assert.equal(i.fallback_reason, null);
      }
      // Each malformed answer cost exactly one retry or one fallback.
      const counters = await simCounters(p);
      const malformed = counters.faults_by_kind.ai_malformed_json ?? 0;
      assert.equal(malformed, counters.ai_calls_total - items.length + fell.length);
      await assertInvariants(p);
    } finally {
      await p.close();
    }
  });

  test("AI quota exhausted: every item completed by the labelled heuristic, one AI call per batch at most", async () => {
    const p = await fullPipeline();
    try {
      await setFaults(p, [{ route: "ai_binding", kind: "ai_quota_exhausted", rate: 1.0 }]);
      await runOfScenario(p);
      await waitDrained(p);
      await waitQuiet(p);
      assertSameState(await finalState(p), reference, "AI quota exhausted");
      const notFallback = await p.first(
        "SELECT (SELECT COUNT(*) FROM repos WHERE content_hash IS NOT NULL AND (analysis_model IS NOT 'heuristic-v1' OR fallback_reason NOT LIKE '%daily allocation exhausted%')) + (SELECT COUNT(*) FROM issues WHERE analysis_model IS NOT 'heuristic-v1' OR fallback_reason NOT LIKE '%daily allocation exhausted%') AS n",
      );
      assert.equal(notFallback.n, 0, "every item is a labelled heuristic result");
      const batches = await p.all("SELECT summary FROM invocations WHERE service = 'processor'");
      for (const b of batches) assert.ok(JSON.parse(b.summary).ai_calls <= 1, b.summary);
      const counters = await simCounters(p);
      assert.ok(counters.ai_calls_total <= batches.length);
      await assertInvariants(p);
    } finally {
      await p.close();
    }
  });

  // ------------------------------------------------------ duplicates, cut-offs

  test("every continuation delivered twice: the run ends as without duplicates, no extra AI call or row", async () => {
    // A smaller scraper budget spreads the run over several continuations.
    const p = await fullPipeline({ varsByWorker: { "contribot-scraper": { SUBREQUEST_BUDGET: "20" } } });
    try {
      const producer = await p.stack.producer("SCRAPE_QUEUE", "contribot-scraper");
      await p.stack.scheduled(CRON);
      const { id: runId } = await p.first("SELECT id FROM scrape_runs");
      // Continuation `seq` n carries the cursor invocation n-1 stored as it
      // closed; the first is ScrapeCursor::start. Send each seq once more as
      // soon as D1 shows it.
      const duplicated = new Set();
      const duplicate = async (cursor) => {
        if (duplicated.has(cursor.seq)) return;
        duplicated.add(cursor.seq);
        await producer.send({ type: "continue_scraping", v: 1, cursor });
      };
      await duplicate({ run_id: runId, source: "awesome-for-beginners", phase: "list", position: 0, owner: null, name: null, seq: 0 });
      const run = await p.stack.waitFor(
        async () => {
          const r = await p.first("SELECT * FROM scrape_runs WHERE id = ?", runId);
          if (r.status !== "running") return r;
          if (r.cursor) await duplicate(JSON.parse(r.cursor));
          return null;
        },
        { timeoutMs: 240_000, intervalMs: 50, message: "run to finish" },
      );
      assert.equal(run.status, "completed", `run ended ${run.status}: ${run.error}`);
      assert.ok(duplicated.size >= 3, `duplicated ${duplicated.size} continuation(s) of ${run.invocations}`);
      await waitDrained(p);
      await waitQuiet(p);
      // Each seq did its work once: every duplicate was recognised and skipped.
      const logs = (await p.stack.listLogs("logs/")).filter((l) => l.key.includes("/scraper-"));
      const outcomes = logs.map((l) => parseJsonl(l.text).at(-1).fields.outcome).filter((o) => typeof o === "string");
      const skipped = outcomes.filter((o) => o.startsWith("skipped:"));
      assert.equal(skipped.length, duplicated.size, `outcomes: ${outcomes.join(" | ")}`);
      assert.equal(run.invocations, (await p.all("SELECT id FROM invocations WHERE run_id = ?", runId)).length);
      assertSameState(await finalState(p), reference, "duplicated continuations");
      assert.equal((await simCounters(p)).ai_calls_total, baseAiCalls, "no extra AI call");
      for (const k of ["repos_seen", "repos_changed", "issues_upserted", "issues_closed", "messages_queued"]) {
        assert.equal(run[k], baseRun[k], `run counter ${k}`);
      }
      assert.deepEqual(await deadLetters(p), []);
      await assertInvariants(p);
    } finally {
      await p.close();
    }
  });

  test("an invocation of each worker cut off by the platform's subrequest limit: the work resumes and ends as without it", async () => {
    // A scraper invocation makes 5 to 12 subrequests (the cron's start, 2
    // counted here): the first continuation, the list step, is cut at its
    // closing write, which carries the list's sync (its claim, the list
    // fetch and the stored repos' read went through). The processor's first
    // batch is cut at its commit: after its D1 read, its enrich query, its
    // neuron reservation and its AI calls.
    const SCRAPER_CUT = 3;
    const PROCESSOR_CUT = 3;
    const p = await fullPipeline({
      varsByWorker: {
        "contribot-scraper": { FAULT_CUT_AFTER_SUBREQUESTS: String(SCRAPER_CUT) },
        "contribot-processor": { FAULT_CUT_AFTER_SUBREQUESTS: String(PROCESSOR_CUT) },
      },
    });
    try {
      const run = await runOfScenario(p);
      await waitDrained(p);
      await waitQuiet(p);
      // Each cut invocation could not write its ledger row; it logged why.
      const logs = await p.stack.listLogs("logs/");
      const cutOff = (service, event) =>
        logs
          .filter((l) => l.key.includes(`/${service}-`))
          .map((l) => parseJsonl(l.text).find((line) => line.event === event))
          .filter(Boolean);
      const scraperCut = cutOff("scraper", "invocation_failed");
      assert.equal(scraperCut.length, 1, "exactly one scraper invocation was cut off");
      assert.match(scraperCut[0].fields.error, /Too many subrequests/);
      const processorCut = cutOff("processor", "batch_failed");
      assert.equal(processorCut.length, 1, "exactly one processor batch was cut off");
      assert.match(processorCut[0].fields.error, /Too many subrequests/);
      const cutIds = [scraperCut[0].invocation, processorCut[0].invocation];
      for (const id of cutIds) assert.equal(await p.first("SELECT id FROM invocations WHERE id = ?", id), null);
      assertSameState(await finalState(p), reference, "cut-off invocations");
      // Progress the scraper committed before its cut is neither lost nor counted twice.
      for (const k of ["repos_seen", "repos_changed", "issues_upserted", "issues_closed", "messages_queued"]) {
        assert.equal(run[k], baseRun[k], `run counter ${k}`);
      }
      // Only the cut batch's analyses were lost with its commit and redone.
      const extra = (await simCounters(p)).ai_calls_total - baseAiCalls;
      assert.ok(extra >= 1 && extra <= 10, `${extra} AI calls redone`);
      await assertInvariants(p, { unrecorded: { [cutIds[0]]: SCRAPER_CUT, [cutIds[1]]: PROCESSOR_CUT } });
    } finally {
      await p.close();
    }
  });
});
