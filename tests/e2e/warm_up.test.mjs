// The workers' start-up warm-ups (apps/*/warm-up.mjs) on the compiled
// workers: at start-up the real handlers run against in-memory stand-ins (the
// processor one batch, the scraper one whole run), so V8 compiles their code
// outside the per-invocation CPU budget. Read through V8's inspector, as the
// CPU bench reads each isolate.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { connectWorker } from "../../bench/inspector.mjs";
import { runScrape, startPipeline } from "./contribot.mjs";

const PROCESSOR = "contribot-processor";
const SCRAPER = "contribot-scraper";
const PLATFORM_GLOBALS = ["fetch", "Request", "Response", "Headers", "setTimeout", "clearTimeout"];

let p;
const sessions = {};

/** Evaluates `expression` in `worker`'s global scope; its JSON value. */
async function evaluate(worker, expression) {
  const { session, contextId } = sessions[worker];
  const { result, exceptionDetails } = await session.send("Runtime.evaluate", {
    expression: `(async () => JSON.stringify(await (${expression})))()`,
    awaitPromise: true,
    contextId,
  });
  assert.equal(exceptionDetails, undefined, JSON.stringify(exceptionDetails));
  return JSON.parse(result.value);
}

async function attach(url, worker) {
  const session = await connectWorker(url, worker);
  sessions[worker] = { session, contextId: undefined };
  session.on("Runtime.executionContextCreated", ({ context }) => {
    sessions[worker].contextId ??= context.id;
  });
  await session.send("Runtime.enable");
}

/** The platform globals that are not the runtime's own functions. */
const REPLACED = `${JSON.stringify(PLATFORM_GLOBALS)}.filter((k) => !/\\[native code\\]/.test(Function.prototype.toString.call(globalThis[k])))`;

/** Nothing left the isolates: no request reached the simulator, D1 is empty. */
async function assertNothingLeft() {
  const counters = await p.sim.control("/_sim/counters");
  assert.equal(counters.requests_total, 0);
  assert.equal(counters.ai_calls_total, 0);
  for (const table of ["repos", "issues", "scrape_runs", "invocations", "deliveries"]) {
    assert.equal((await p.first(`SELECT COUNT(*) AS n FROM ${table}`)).n, 0, table);
  }
}

before(async () => {
  p = await startPipeline({
    vars: { AI_BACKEND: "binding" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
    miniflare: { inspectorPort: 0 },
  });
  const url = await p.stack.mf.getInspectorURL();
  await attach(url, PROCESSOR);
  await attach(url, SCRAPER);
});

after(async () => {
  for (const { session } of Object.values(sessions)) session.close();
  await p?.close();
});

test("at start-up the processor ran one batch through its handler, offline, and put the platform's globals back", async () => {
  const state = await evaluate(PROCESSOR, "globalThis.__contribotWarmUp.state");
  assert.equal(state.status, "done", state.error ?? "");
  // Both messages (a repo and an issue) went the whole way: enrichment, AI,
  // validation and the commit, as a real batch of new items does.
  assert.equal(state.summary.messages, 2);
  assert.equal(state.summary.completed, 2, JSON.stringify(state.summary));
  assert.equal(state.summary.failed, 0);
  assert.equal(state.summary.github_requests, 1);
  assert.ok(state.summary.ai_calls >= 2, JSON.stringify(state.summary));
  assert.deepEqual(await evaluate(PROCESSOR, REPLACED), []);
  await assertNothingLeft();
});

test("at start-up the scraper ran one whole run through its handlers (cron, list, repos, drain), offline", async () => {
  const state = await evaluate(SCRAPER, "globalThis.__contribotWarmUp.state");
  assert.equal(state.status, "done", state.error ?? "");
  // The cron's start, then every continuation it queued, until the run ended.
  const [start, ...continuations] = state.invocations;
  assert.equal(start.outcome.status, "started", JSON.stringify(start));
  assert.equal(continuations.length, state.continuations);
  assert.ok(continuations.length >= 3, JSON.stringify(state.invocations));
  assert.equal(continuations.at(-1).outcome, "run completed", JSON.stringify(state.invocations));
  assert.ok(continuations.slice(0, -1).every((s) => s.continued), JSON.stringify(state.invocations));
  // The world (contribot_core::warm_up): 100 new repos, two whole queries'
  // worth, with 3 new issues each.
  const total = (k) => continuations.reduce((n, s) => n + s[k], 0);
  assert.equal(total("repos_seen"), 100);
  assert.equal(total("issues_upserted"), 300);
  assert.equal(total("messages_queued"), 400);
  assert.equal(total("github_requests"), 3, "data.json and two GraphQL queries");
  assert.equal(state.processing_messages, 400);
  assert.deepEqual(await evaluate(SCRAPER, REPLACED), []);
  await assertNothingLeft();
});

test("run again (as the CPU bench does after attaching), they leave the workers scraping and processing as before", async () => {
  for (const worker of [PROCESSOR, SCRAPER]) {
    const state = await evaluate(worker, "globalThis.__contribotWarmUp.run()");
    assert.equal(state.status, "done", `${worker}: ${state.error ?? ""}`);
    assert.deepEqual(await evaluate(worker, REPLACED), [], worker);
  }

  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  await p.stack.waitFor(
    async () => (await p.first("SELECT COUNT(*) AS n FROM issues WHERE processing_status = 'completed'")).n > 0,
    { timeoutMs: 240_000, intervalMs: 500, message: "a real issue analysed after the warm-up" },
  );
  // The warm-ups' run, repo and issue never reach D1.
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM repos WHERE owner = 'warm'")).n, 0);
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM scrape_runs")).n, 1, "only the real run");
});
