// The processor's main module (`cargo xtask build` installs it as
// build/worker/shim.mjs, in place of worker-build's re-export of
// ../index.js): worker-build's entrypoint, plus one batch run through the
// real queue handler at start-up, so V8 compiles its code outside the
// per-invocation CPU budget. See warm-up-kit.mjs for why and how.
//
// D1, GitHub and Workers AI are answered by the warm-up world in the wasm
// (contribot_core::warm_up::processing): a batch of one new repo and its new
// issue, whose state read, neuron reservation, Enrich answer and AI answers
// take it through enrichment, AI, validation and the commit. This file holds
// no SQL, row shape or answer format.
import Processor, { WarmUpWorld } from "../index.js";
import { CTX, D1Database, R2Bucket, batchOf, delivery, restore, warmUp } from "./warm-up-kit.mjs";

function environment(world) {
  return {
    DB: new D1Database((batch) => JSON.parse(world.d1(JSON.stringify(batch)))),
    AI: { run: async (_model, inputs) => JSON.parse(world.ai(JSON.stringify(inputs))) },
    LOGS: new R2Bucket(),
    AI_BACKEND: "binding", AI_MODEL: "@cf/meta/llama-3.1-8b-instruct-fp8-fast", LOG_LEVEL: "info",
    GITHUB_API_URL: "https://api.github.com", SUBREQUEST_BUDGET: "45", AI_DAILY_NEURON_CAP: "9000",
    AI_CALLS_PER_MINUTE: "1000000", GITHUB_POINTS_PER_MINUTE: "100000000", GITHUB_TOKEN: "warm-up",
  };
}

/**
 * One batch (a repo and an issue) through the real handler. Resolves to the
 * warm-up's state, also kept in `globalThis.__contribotWarmUp.state`: its
 * status and the batch's summary line (both messages completed, with AI).
 */
function run() {
  const world = new WarmUpWorld(Date.now());
  const env = environment(world);
  const answer = (url, body) => JSON.parse(world.http(url, body));
  const bodies = JSON.parse(world.processing_messages());
  return warmUp("processor", answer, async () => {
    await Processor.prototype.queue.call({ env, ctx: CTX }, batchOf("contribot-processing",
      bodies.map((body, i) => delivery(`warm-${i + 1}`, body))));
    return { summary: env.LOGS.summaries.at(-1) ?? null };
  });
}

// The bench re-runs it after attaching V8's inspector, which throws away the
// code compiled before it attached (bench/cpu.mjs).
globalThis.__contribotWarmUp = { run, state: null };
run();

export default class extends Processor {
  queue(batch) {
    restore();
    return super.queue(batch);
  }
}
