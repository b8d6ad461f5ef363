// The `AI` binding stand-in (js/ai-binding.mjs) against a running simulator:
// bare results, and workerd's InferenceUpstreamError("<code>: <message>")
// for Workers AI's failures. Needs target/debug/upstream-sim (cargo build).
// Run: node --test crates/upstream-sim/tests/ai_binding.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import makeBinding, { InferenceUpstreamError } from "../js/ai-binding.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.UPSTREAM_SIM_BIN ?? path.resolve(HERE, "../../../target/debug/upstream-sim");
const MODEL = "@cf/meta/llama-3.1-8b-instruct";

let sim;
let url;

before(async () => {
  sim = spawn(BIN, ["--port", "0", "--seed", "42", "--quiet"], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({ input: sim.stdout }).once("line", resolve);
    sim.once("exit", (code) => reject(new Error(`upstream-sim exited ${code}`)));
  });
  url = /listening on (\S+)/.exec(line)[1];
});

after(() => sim?.kill("SIGTERM"));

async function control(p, body) {
  const res = await fetch(`${url}${p}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

async function failure(ai) {
  try {
    await ai.run(MODEL, { prompt: "hi" });
  } catch (error) {
    return error;
  }
  assert.fail("the call should have thrown");
}

test("a successful call resolves to the bare result with usage", async () => {
  const result = await makeBinding({ simUrl: url }).run(MODEL, { prompt: "Explain the flaky test" });
  assert.equal(typeof result.response, "string");
  assert.equal(result.usage.total_tokens, result.usage.prompt_tokens + result.usage.completion_tokens);
});

test("transient failures throw InferenceUpstreamError with Cloudflare's code first", async () => {
  const ai = makeBinding({ simUrl: url });
  for (const [kind, message] of [
    ["ai_capacity_exceeded", "3040: Capacity temporarily exceeded, please try again."],
    ["ai_timeout", "3007: Request timeout"],
    ["ai_rate_limited", "971: Please wait and consider throttling your request speed"],
  ]) {
    await control("/_sim/faults", { seed: 1, rules: [{ route: "ai_binding", kind, rate: 1.0, latency_ms: 1 }] });
    const error = await failure(ai);
    assert.ok(error instanceof InferenceUpstreamError, kind);
    assert.equal(error.name, "InferenceUpstreamError");
    assert.equal(error.message, message);
  }
  await control("/_sim/faults", { seed: 1, rules: [] });
});

test("a spent daily allocation throws 4006 until the next UTC day", async () => {
  const ai = makeBinding({ simUrl: url });
  await control("/_sim/ai/quota", { used: 10_000 });
  const error = await failure(ai);
  assert.match(error.message, /^4006: you have used up your daily free allocation of 10,000 neurons/);
  await control("/_sim/ai/quota", { advance_days: 1 });
  assert.equal(typeof (await ai.run(MODEL, { prompt: "hi" })).response, "string");
});
