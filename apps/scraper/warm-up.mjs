// The scraper's main module (`cargo xtask build` installs it as
// build/worker/shim.mjs, in place of worker-build's re-export of
// ../index.js): worker-build's entrypoint, plus one whole run through the
// real handlers at start-up (the cron's start, then each continuation it
// queues: list, repos, drain, done), so V8 compiles their code outside the
// per-invocation CPU budget. See warm-up-kit.mjs for why and how.
//
// D1 and upstream are answered by the warm-up world in the wasm
// (contribot_core::warm_up): 100 new listed repos with 3 new issues each. This
// file holds no SQL, row shape or answer format.
import Scraper, { WarmUpWorld } from "../index.js";
import { CTX, D1Database, R2Bucket, WorkerQueue, batchOf, delivery, restore, warmUp } from "./warm-up-kit.mjs";

/** Continuations delivered at most (a run over the world takes four). */
const MAX_CONTINUATIONS = 8;

function environment(world) {
  return {
    DB: new D1Database((batch) => JSON.parse(world.d1(JSON.stringify(batch)))),
    SCRAPE_QUEUE: new WorkerQueue(),
    PROCESSING_QUEUE: new WorkerQueue(),
    LOGS: new R2Bucket(),
    LOG_LEVEL: "info", GITHUB_TOKEN: "warm-up", GITHUB_API_URL: "https://api.github.com",
    SUBREQUEST_BUDGET: "45",
  };
}

/** The cron's start, then each continuation it queues, until the run ends. */
async function run() {
  const world = new WarmUpWorld(Date.now());
  const env = environment(world);
  const answer = (url, body) => JSON.parse(world.http(url, body));
  return warmUp("scraper", answer, async () => {
    const handlers = Object.assign(Object.create(Scraper.prototype), { env, ctx: CTX });
    await handlers.scheduled({ cron: "0 */12 * * *", scheduledTime: Date.now(), noRetry() {} });
    let continuations = 0;
    while (env.SCRAPE_QUEUE.sent.length > 0 && continuations < MAX_CONTINUATIONS) {
      const body = env.SCRAPE_QUEUE.sent.shift();
      continuations += 1;
      await handlers.queue(batchOf("contribot-scrape", [delivery(`warm-${continuations}`, body)]));
    }
    return {
      continuations,
      invocations: env.LOGS.summaries,
      processing_messages: env.PROCESSING_QUEUE.sent.length,
    };
  });
}

// The bench re-runs it after attaching V8's inspector, which throws away the
// code compiled before it attached (bench/cpu.mjs).
globalThis.__contribotWarmUp = { run, state: null };
run();

export default class extends Scraper {
  scheduled(event) {
    restore();
    return super.scheduled(event);
  }
  queue(batch) {
    restore();
    return super.queue(batch);
  }
  fetch(request) {
    restore();
    return super.fetch(request);
  }
}
