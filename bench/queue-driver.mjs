// The CPU bench's stand-in for Cloudflare Queues' consumer side
// (bench/cpu.mjs): it invokes each consumer itself, one invocation at a
// time, so every invocation can be wrapped in its own CPU profile.
//
// The stack is the product's: the workers' wrangler tomls with their real
// queue producers, but without `[[queues.consumers]]`. A bench-only worker
// (bench/queue-sink.mjs) consumes those queues in Miniflare instead and
// POSTs every batch to this driver. After each invocation the driver sends a
// marker message down every queue; Miniflare's broker delivers in order, so
// once the markers are back, every message the invocation sent is here.
// The driver then batches messages as the consumer's toml says
// (`max_batch_size`), delivers them with `Fetcher.queue()` and applies the
// consumer's acks and retries (`max_retries`, `retry_delay`, then the
// dead-letter queue) as the Queues runtime would.
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";

import { REPO_ROOT } from "../tests/e2e/harness.mjs";

export const SINK_NAME = "contribot-bench-sink";

/**
 * Bench copies of the wrangler tomls in a temp dir: the same workers and
 * bindings with absolute paths and no queue consumers, plus the sink worker
 * consuming every queue they consumed or produced. Returns `{ root, configs,
 * consumers, producers, cleanup }`; `consumers` maps a queue name to
 * `{ worker, maxBatchSize, maxRetries, retryDelay, deadLetterQueue }`,
 * `producers` maps a queue name to `{ worker, binding }` (for markers).
 * `builds`, when given, replaces `apps/` as the place of the builds:
 * `<builds>/<scraper|processor>/worker/shim.mjs`.
 */
export async function benchConfigs(files, sinkUrl, { builds } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "contribot-cpu-"));
  const consumers = new Map();
  const producers = new Map();
  const configs = [];
  let compatibilityDate;
  for (const file of files) {
    const toml = parseToml(await readFile(path.join(REPO_ROOT, file), "utf8"));
    compatibilityDate ??= toml.compatibility_date;
    toml.main = builds
      ? path.join(builds, toml.name.replace(/^contribot-/, ""), "worker/shim.mjs")
      : path.resolve(REPO_ROOT, toml.main);
    for (const d1 of toml.d1_databases ?? []) {
      d1.migrations_dir = path.resolve(REPO_ROOT, d1.migrations_dir ?? "migrations");
    }
    for (const c of toml.queues?.consumers ?? []) {
      consumers.set(c.queue, {
        worker: toml.name,
        maxBatchSize: c.max_batch_size ?? 10,
        maxRetries: c.max_retries ?? 3,
        retryDelay: c.retry_delay ?? 0,
        deadLetterQueue: c.dead_letter_queue,
      });
    }
    for (const p of toml.queues?.producers ?? []) {
      if (!producers.has(p.queue)) producers.set(p.queue, { worker: toml.name, binding: p.binding });
    }
    if (toml.queues) delete toml.queues.consumers;
    delete toml.build;
    await writeFile(path.join(dir, file), stringifyToml(toml));
    configs.push(file);
  }
  const sunk = new Set([...consumers.keys(), ...producers.keys()]);
  const sink = {
    name: SINK_NAME,
    main: path.join(REPO_ROOT, "bench/queue-sink.mjs"),
    compatibility_date: compatibilityDate,
    vars: { SINK_URL: sinkUrl },
    queues: {
      consumers: [...sunk].map((queue) => ({ queue, max_batch_size: 100, max_batch_timeout: 0, max_retries: 100 })),
    },
  };
  await writeFile(path.join(dir, "wrangler-bench-sink.toml"), stringifyToml(sink));
  configs.push("wrangler-bench-sink.toml");
  return { root: dir, configs, consumers, producers, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The HTTP endpoint the sink worker posts batches to. */
export async function startSinkServer() {
  let onBatch = () => {};
  const server = http.createServer(async (req, res) => {
    try {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const { queue, messages } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      onBatch(queue, messages);
      res.writeHead(204).end();
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    set onBatch(fn) {
      onBatch = fn;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Drives the queues of a stack. `invoke(worker, run)` is called around each
 * invocation: it gets the worker name and a function performing the
 * invocation, and returns what it measured (the CPU bench profiles there).
 */
export class QueueDriver {
  #markers = new Map(); // marker id -> resolve
  #markerSeq = 0;
  #seq = 0;

  constructor({ mf, sink, consumers, producers, drop = new Set(), invoke }) {
    this.mf = mf;
    this.consumers = consumers;
    this.producers = producers;
    this.drop = drop;
    this.invoke = invoke;
    /** queue name -> [{ id, timestamp, body, attempts, seq, availableAt }] */
    this.queues = new Map([...consumers.keys()].map((q) => [q, []]));
    this.dropped = new Map();
    this.deadLettered = [];
    this.retried = 0;
    sink.onBatch = (queue, messages) => this.#receive(queue, messages);
  }

  #receive(queue, messages) {
    for (const m of messages) {
      const marker = m.body?.bench_marker;
      if (marker !== undefined) {
        this.#markers.get(marker)?.();
        this.#markers.delete(marker);
        continue;
      }
      if (this.drop.has(queue) || !this.queues.has(queue)) {
        this.dropped.set(queue, (this.dropped.get(queue) ?? 0) + 1);
        continue;
      }
      this.queues.get(queue).push({ ...m, attempts: 1, seq: this.#seq++, availableAt: 0 });
    }
  }

  /** Resolves once every message sent so far (without delay) is here. */
  async settle() {
    const waits = [];
    for (const [queue, { worker, binding }] of this.producers) {
      const id = `${queue}#${this.#markerSeq++}`;
      waits.push(new Promise((resolve) => this.#markers.set(id, resolve)));
      const producer = await this.mf.getQueueProducer(binding, worker);
      await producer.send({ bench_marker: id });
    }
    await Promise.all(waits);
  }

  /** Messages waiting in the driven queues. */
  pending() {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /**
   * The next batch to deliver: from the queue whose first ready message
   * arrived first, up to its consumer's batch size. `null` when nothing is
   * ready; `{ wait }` (ms) when only delayed messages are left.
   */
  #nextBatch() {
    const now = Date.now();
    let best = null;
    let soonest = Infinity;
    for (const [queue, list] of this.queues) {
      const ready = list.filter((m) => m.availableAt <= now);
      for (const m of list) if (m.availableAt > now) soonest = Math.min(soonest, m.availableAt - now);
      if (ready.length === 0) continue;
      if (!best || ready[0].seq < best.first) best = { queue, first: ready[0].seq, ready };
    }
    if (!best) return Number.isFinite(soonest) ? { wait: soonest } : null;
    const { maxBatchSize } = this.consumers.get(best.queue);
    const batch = best.ready.slice(0, maxBatchSize);
    const taken = new Set(batch);
    this.queues.set(best.queue, this.queues.get(best.queue).filter((m) => !taken.has(m)));
    return { queue: best.queue, batch };
  }

  /**
   * Delivers batches one at a time until the queues are empty and
   * `done()` (async) says the work is finished; `done` lets a caller wait
   * for messages sent with a delay. Returns the measurements of each
   * invocation.
   */
  async drain({ done = async () => true, timeoutMs = 3_600_000, onInvocation } = {}) {
    const started = Date.now();
    const results = [];
    for (;;) {
      if (Date.now() - started > timeoutMs) throw new Error(`queues not drained after ${timeoutMs} ms`);
      const next = this.#nextBatch();
      if (next === null || next.wait !== undefined) {
        if (next === null && (await done())) return results;
        await new Promise((r) => setTimeout(r, Math.min(next?.wait ?? 250, 1000)));
        await this.settle();
        continue;
      }
      const result = await this.deliver(next.queue, next.batch);
      results.push(result);
      onInvocation?.(result);
    }
  }

  /** One queue invocation of the queue's consumer, then its acks and retries. */
  async deliver(queue, batch) {
    const consumer = this.consumers.get(queue);
    const fetcher = await this.mf.getWorker(consumer.worker);
    const messages = batch.map((m) => ({
      id: m.id,
      timestamp: new Date(m.timestamp),
      body: m.body,
      attempts: m.attempts,
    }));
    const measured = await this.invoke(consumer.worker, () => fetcher.queue(queue, messages));
    await this.settle();
    this.#apply(queue, consumer, batch, measured.result, measured.error);
    return { ...measured, queue, messages: batch.length };
  }

  #apply(queue, consumer, batch, result, error) {
    const ok = !error && result?.outcome === "ok";
    const acked = new Set(result?.explicitAcks ?? []);
    const retryOne = new Map((result?.retryMessages ?? []).map((r) => [r.msgId, r.delaySeconds]));
    const retryAll = !ok || Boolean(result?.retryBatch?.retry);
    const batchDelay = result?.retryBatch?.delaySeconds ?? consumer.retryDelay ?? 0;
    for (const m of batch) {
      const retry = retryOne.has(m.id) || (retryAll && !acked.has(m.id));
      if (!retry) continue;
      if (m.attempts <= consumer.maxRetries) {
        this.retried++;
        const delay = retryOne.get(m.id) ?? batchDelay;
        this.queues.get(queue).push({ ...m, attempts: m.attempts + 1, seq: this.#seq++, availableAt: Date.now() + delay * 1000 });
      } else if (consumer.deadLetterQueue && this.queues.has(consumer.deadLetterQueue)) {
        this.deadLettered.push({ queue, id: m.id });
        this.queues.get(consumer.deadLetterQueue).push({ ...m, attempts: 1, seq: this.#seq++, availableAt: 0 });
      } else {
        this.deadLettered.push({ queue, id: m.id, dropped: true });
      }
    }
  }
}
