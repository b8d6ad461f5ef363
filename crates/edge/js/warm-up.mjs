// What a worker's start-up warm-up (apps/<name>/warm-up.mjs) runs against:
// stand-ins for the platform's globals and bindings, in the isolate, with no
// I/O. `cargo xtask build` copies this file next to the warm-up, as
// build/worker/warm-up-kit.mjs.
//
// Why a warm-up: V8 compiles each wasm function on its first call, on the
// isolate's thread (perf: its lazy Liftoff compiler was ~43% of a cold
// first invocation). Start-up (the global scope) has its own limit on
// Cloudflare, outside the per-invocation CPU budget, so the warm-up runs the
// real handlers there once. The global scope allows no I/O, and workerd
// refuses `new Request` there, so the globals the glue calls are swapped for
// these stand-ins only while a warm-up runs, and put back when it settles or
// at the latest when the first real invocation starts.

class StandInHeaders {
  constructor() {
    this.map = new Map([["content-type", "application/json"]]);
  }
  set(k, v) { this.map.set(String(k).toLowerCase(), String(v)); }
  append(k, v) { this.set(k, v); }
  get(k) { return this.map.get(String(k).toLowerCase()) ?? null; }
  has(k) { return this.map.has(String(k).toLowerCase()); }
  entries() { return this.map.entries(); }
  keys() { return this.map.keys(); }
  values() { return this.map.values(); }
  forEach(f) { this.map.forEach((v, k) => f(v, k, this)); }
  [Symbol.iterator]() { return this.map.entries(); }
}

class StandInRequest {
  constructor(url, init) {
    this.url = String(url);
    this.method = init?.method ?? "GET";
    this.headers = init?.headers;
    this.body = init?.body;
  }
}

class StandInResponse {
  // workers-rs re-wraps a response around its body: accept either.
  constructor(body, init) {
    this.text_ = typeof body === "string" ? body : (body?.text_ ?? "");
    this.body = { text_: this.text_ };
    this.status = init?.status ?? body?.status_ ?? 200;
    this.body.status_ = this.status;
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = new StandInHeaders();
  }
  async arrayBuffer() { return new TextEncoder().encode(this.text_).buffer; }
  async text() { return this.text_; }
}

/**
 * The platform globals the glue calls, answering every fetch with
 * `answer(url, body)` (`body` undefined for a GET): `{status, body}`.
 */
function globalsFor(answer) {
  return {
    fetch: async (req) => {
      const { status, body } = answer(String(req?.url ?? req), req?.method === "POST" ? String(req.body ?? "") : undefined);
      return new StandInResponse(body, { status });
    },
    Request: StandInRequest,
    Response: StandInResponse,
    Headers: StandInHeaders,
    // Short waits (pacing, an in-place retry) pass at once; the 30 s fetch
    // timeout never fires.
    setTimeout: (fn, ms) => {
      if (!(ms > 10_000)) queueMicrotask(fn);
      return 0;
    },
    clearTimeout: () => {},
  };
}

let saved = null;

function swapIn(globals) {
  if (saved) return; // already swapped: a second warm-up must not save the stand-ins
  saved = Object.fromEntries(Object.keys(globals).map((k) => [k, globalThis[k]]));
  Object.assign(globalThis, globals);
}

/** Puts the platform's globals back (idempotent). */
export function restore() {
  if (saved) Object.assign(globalThis, saved);
  saved = null;
}

// ------------------------------------------------------------ bindings
// workers-rs checks each binding's constructor name.

class D1PreparedStatement {
  constructor(sql) {
    this.sql = sql;
    this.params = [];
  }
  bind(...params) {
    this.params = params;
    return this;
  }
}

/** D1, answering each batch with `rows([[sql, params], …])`: rows per statement. */
export class D1Database {
  constructor(rows) {
    this.rows = rows;
  }
  prepare(sql) {
    return new D1PreparedStatement(sql);
  }
  async batch(statements) {
    const rows = this.rows(statements.map((s) => [s.sql, s.params]));
    return rows.map((results) => ({ success: true, results, meta: { changes: 1 } }));
  }
}

/** R2 that keeps each log's summary line (what the invocation did). */
export class R2Bucket {
  constructor() {
    this.summaries = [];
  }
  async put(_key, body) {
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    this.summaries.push(lines.find((l) => l.event === "summary")?.fields ?? null);
    return {};
  }
}

/** A queue that keeps what was sent, for the warm-up to deliver. */
export class WorkerQueue {
  constructor() {
    this.sent = [];
  }
  async send(body) {
    this.sent.push(body);
  }
  async sendBatch(messages) {
    for (const m of messages) this.sent.push(m.body);
  }
}

/** One queue delivery of `body`. */
export function delivery(id, body) {
  return { id, timestamp: new Date(0), body, attempts: 1, ack() {}, retry() {}, retryAll() {} };
}

/** A batch of deliveries on `queue`. */
export function batchOf(queue, messages) {
  return { queue, messages, ackAll() {}, retryAll() {} };
}

export const CTX = { waitUntil() {}, passThroughOnException() {} };

/**
 * Runs `steps()` with the platform's globals swapped for stand-ins whose
 * fetch answers with `answer`. Resolves to the warm-up's state (also kept
 * in `globalThis.__contribotWarmUp.state`): `status` and what `steps`
 * reported. A failure is logged and changes nothing else.
 */
export async function warmUp(service, answer, steps) {
  const state = { status: "running", error: null };
  globalThis.__contribotWarmUp.state = state;
  swapIn(globalsFor(answer));
  try {
    Object.assign(state, await steps());
    state.status = "done";
  } catch (e) {
    state.status = "failed";
    state.error = String(e?.stack ?? e);
    console.error(`contribot ${service}: start-up warm-up failed (the worker is unaffected):`, state.error);
  } finally {
    restore();
  }
  return state;
}
