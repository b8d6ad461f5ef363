// The processor's start-up warm-up (apps/processor/warm-up.mjs) on the
// compiled worker: at start-up one batch runs through the real handler
// against in-memory stand-ins, so V8 compiles the handler's code outside the
// per-invocation CPU budget. Read through V8's inspector, as the CPU bench
// reads the isolate.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { connectWorker } from "../../bench/inspector.mjs";
import { runScrape, startPipeline } from "./contribot.mjs";

const PROCESSOR = "contribot-processor";
const PLATFORM_GLOBALS = ["fetch", "Request", "Response", "Headers", "setTimeout", "clearTimeout"];

let p;
let session;
let contextId;

/** Evaluates `expression` in the processor's global scope; its JSON value. */
async function evaluate(expression) {
  const { result, exceptionDetails } = await session.send("Runtime.evaluate", {
    expression: `(async () => JSON.stringify(await (${expression})))()`,
    awaitPromise: true,
    contextId,
  });
  assert.equal(exceptionDetails, undefined, JSON.stringify(exceptionDetails));
  return JSON.parse(result.value);
}

/** The platform globals that are not the runtime's own functions. */
const REPLACED = `${JSON.stringify(PLATFORM_GLOBALS)}.filter((k) => !/\\[native code\\]/.test(Function.prototype.toString.call(globalThis[k])))`;

before(async () => {
  p = await startPipeline({
    vars: { AI_BACKEND: "binding" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
    miniflare: { inspectorPort: 0 },
  });
  session = await connectWorker(await p.stack.mf.getInspectorURL(), PROCESSOR);
  session.on("Runtime.executionContextCreated", ({ context }) => {
    contextId ??= context.id;
  });
  await session.send("Runtime.enable");
});

after(async () => {
  session?.close();
  await p?.close();
});

test("at start-up the processor ran one batch through its handler, offline, and put the platform's globals back", async () => {
  const state = await evaluate("globalThis.__contribotWarmUp.state");
  assert.equal(state.status, "done", state.error ?? "");
  // Both messages (a repo and an issue) went the whole way: enrichment, AI,
  // validation and the commit, as a real batch of new items does.
  assert.equal(state.summary.messages, 2);
  assert.equal(state.summary.completed, 2, JSON.stringify(state.summary));
  assert.equal(state.summary.failed, 0);
  assert.equal(state.summary.github_requests, 1);
  assert.ok(state.summary.ai_calls >= 2, JSON.stringify(state.summary));
  assert.deepEqual(await evaluate(REPLACED), []);

  // Nothing left the isolate: no request reached the simulator (GitHub or
  // the AI binding), and D1 holds nothing of the warm-up.
  const counters = await p.sim.control("/_sim/counters");
  assert.equal(counters.requests_total, 0);
  assert.equal(counters.ai_calls_total, 0);
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM repos")).n, 0);
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM invocations")).n, 0);
});

test("run again (as the CPU bench does after attaching), it leaves the worker processing real batches as before", async () => {
  const state = await evaluate("globalThis.__contribotWarmUp.run()");
  assert.equal(state.status, "done", state.error ?? "");
  assert.deepEqual(await evaluate(REPLACED), []);

  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  await p.stack.waitFor(
    async () => (await p.first("SELECT COUNT(*) AS n FROM issues WHERE processing_status = 'completed'")).n > 0,
    { timeoutMs: 240_000, intervalMs: 500, message: "a real issue analysed after the warm-up" },
  );
  // The warm-up's repo and issue never reach D1.
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM repos WHERE owner = 'warm'")).n, 0);
});
