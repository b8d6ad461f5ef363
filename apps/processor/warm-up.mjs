// The processor's main module (`cargo xtask build` installs it as
// build/worker/shim.mjs, in place of worker-build's re-export of ../index.js):
// worker-build's entrypoint, plus one batch run through the real queue handler
// at start-up against in-memory stand-ins.
//
// Why: V8 compiles each wasm function on its first call, on the isolate's
// thread. Without this, an isolate's first batch spends most of its CPU in
// that compiler (perf: V8's lazy Liftoff compiler was ~43% of the first
// batch's samples) and runs 3-4x the CPU of a warm batch. Start-up (the
// global scope) has its own limit on Cloudflare, outside the per-invocation
// CPU budget, so the compiling is moved there.
//
// The stand-ins answer as the platform would for a new repo and issue: a D1
// state read with their rows, the reservation read-back, one GraphQL answer,
// Workers AI answers that pass validation, and an R2 log put. Nothing leaves
// the isolate: the global scope allows no I/O, and the platform globals the
// glue calls (fetch, Request, Response, Headers, setTimeout) are swapped for
// stand-ins only while the warm-up runs and put back when it settles, or at
// the latest when the first real invocation starts.
import Processor from "../index.js";

const OWNER = "warm";
const NAME = "up";
const HASH = "0".repeat(64);
const MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";

// ------------------------------------------------------------ bindings

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

const REPO_ROW = {
  id: 1, owner: OWNER, name: NAME, description: "A small library.", primary_language: "Rust",
  languages: null, topics: null, listed_labels: '["good first issue"]', content_hash: HASH,
  analysis_hash: null, prompt_version: null, processing_status: "pending", attempts: 0,
};
const ISSUE_ROW = {
  id: 1, repo_id: 1, owner: OWNER, name: NAME, number: 1, state: "OPEN", content_hash: HASH,
  analysis_hash: null, prompt_version: null, processing_status: "pending", attempts: 0,
  body_hash: null, analysis_model: null, fallback_reason: null,
};

/** The rows D1 would return for one statement of the warm-up batch. */
function rowsFor(sql, params) {
  if (sql.includes("FROM ai_reservations r LEFT JOIN ai_ledger")) {
    return [{ held: 1e6, spent: 0, held_all: 1e6, exhausted_at: null }];
  }
  const returning = /RETURNING (\w+)/.exec(sql);
  if (returning) return [{ [returning[1]]: params[0] ?? 1 }];
  if (/^SELECT[\s\S]*FROM repos/.test(sql) && sql.includes("listed_labels")) return [REPO_ROW];
  if (/^SELECT[\s\S]*FROM issues/.test(sql) && sql.includes("body_hash")) return [ISSUE_ROW];
  return [];
}

class D1Database {
  prepare(sql) {
    return new D1PreparedStatement(sql);
  }
  async batch(statements) {
    return statements.map((s) => ({ success: true, results: rowsFor(s.sql, s.params), meta: { changes: 1 } }));
  }
}

/** Keeps the summary line of the warm-up's log (what the batch did). */
class R2Bucket {
  async put(_key, body) {
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    const summary = text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.event === "summary");
    if (globalThis.__contribotWarmUp?.state) globalThis.__contribotWarmUp.state.summary = summary?.fields ?? null;
    return {};
  }
}

/** A value that satisfies a JSON schema's types and bounds. */
function synth(schema) {
  switch (schema.type) {
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, synth(v)]));
    case "array":
      return Array.from({ length: Math.max(1, schema.minItems ?? 1) }, () => synth(schema.items ?? { type: "string" }));
    case "integer":
    case "number":
      return schema.minimum ?? 1;
    default: {
      const text = "Read the parser module and add a test for the empty input case. ".repeat(8);
      return text.slice(0, Math.min(schema.maxLength ?? 80, Math.max(schema.minLength ?? 1, 80))).trim();
    }
  }
}

class Ai {
  async run(_model, inputs) {
    const format = inputs?.response_format;
    const response = format?.type === "json_schema"
      ? synth(format.json_schema)
      : "A small Rust library for parsing configuration files. It has tests and examples.";
    return { response, usage: { prompt_tokens: 100, completion_tokens: 40, total_tokens: 140 } };
  }
}

// ------------------------------------------------------------ fetch

/** GitHub's answer to an Enrich query, for every alias it asks for. */
function enrichAnswer(body) {
  const vars = JSON.parse(body).variables ?? {};
  const data = { rateLimit: { cost: 1, remaining: 4999, resetAt: "2030-01-01T00:00:00Z" } };
  for (let i = 0; `ro${i}` in vars; i++) {
    data[`r${i}`] = {
      nameWithOwner: `${vars[`ro${i}`]}/${vars[`rn${i}`]}`, description: "A small library.", isArchived: false,
      primaryLanguage: { name: "Rust" },
      languages: { totalSize: 100, edges: [{ size: 100, node: { name: "Rust" } }] },
      repositoryTopics: { nodes: [{ topic: { name: "parser" } }] },
    };
  }
  for (let i = 0; `io${i}` in vars; i++) {
    const number = vars[`inum${i}`];
    data[`i${i}`] = {
      issue: {
        number, title: "Add a test for empty input", body: "The parser panics on empty input.\n\nRun it with no file.",
        url: `https://github.com/${vars[`io${i}`]}/${vars[`in${i}`]}/issues/${number}`, state: "OPEN",
        updatedAt: "2026-01-01T00:00:00Z", labels: { nodes: [{ name: "good first issue" }] },
        assignees: { totalCount: 0 }, comments: { totalCount: 1 },
      },
    };
  }
  return JSON.stringify({ data });
}

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
  constructor(body) {
    this.text_ = typeof body === "string" ? body : (body?.text_ ?? "");
    this.body = { text_: this.text_ };
    this.status = 200;
    this.ok = true;
    this.headers = new StandInHeaders();
  }
  async arrayBuffer() { return new TextEncoder().encode(this.text_).buffer; }
  async text() { return this.text_; }
}

const STAND_INS = {
  fetch: async (req) => new StandInResponse(enrichAnswer(String(req?.body ?? "{}"))),
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

let saved = null;

function swapIn() {
  if (saved) return; // already swapped: a second warm-up must not save the stand-ins
  saved = Object.fromEntries(Object.keys(STAND_INS).map((k) => [k, globalThis[k]]));
  Object.assign(globalThis, STAND_INS);
}

/** Puts the platform's globals back (idempotent). */
function restore() {
  if (saved) Object.assign(globalThis, saved);
  saved = null;
}

// ------------------------------------------------------------ the batch

function delivery(id, body) {
  return { id, timestamp: new Date(0), body, attempts: 1, ack() {}, retry() {} };
}

const ENV = {
  DB: new D1Database(), AI: new Ai(), LOGS: new R2Bucket(),
  AI_BACKEND: "binding", AI_MODEL: MODEL, LOG_LEVEL: "info", GITHUB_API_URL: "https://api.github.com",
  SUBREQUEST_BUDGET: "45", AI_DAILY_NEURON_CAP: "9000", AI_CALLS_PER_MINUTE: "1000000",
  GITHUB_POINTS_PER_MINUTE: "100000000", GITHUB_TOKEN: "warm-up",
};

/**
 * One batch (a repo and an issue) through the real handler. Resolves to the
 * warm-up's state, also kept in `globalThis.__contribotWarmUp.state`: its
 * status and the batch's summary line (both messages completed, with AI).
 */
async function warmUp() {
  const state = { status: "running", error: null, summary: null };
  globalThis.__contribotWarmUp.state = state;
  swapIn();
  try {
    const batch = {
      queue: "contribot-processing",
      messages: [
        delivery("warm-1", { type: "repo", v: 1, owner: OWNER, name: NAME, content_hash: HASH, priority: 1 }),
        delivery("warm-2", { type: "issue", v: 1, owner: OWNER, name: NAME, number: 1, content_hash: HASH, priority: 1 }),
      ],
      ackAll() {},
      retryAll() {},
    };
    await Processor.prototype.queue.call({ env: ENV, ctx: { waitUntil() {}, passThroughOnException() {} } }, batch);
    state.status = "done";
  } catch (e) {
    state.status = "failed";
    state.error = String(e?.stack ?? e);
    console.error("contribot processor: start-up warm-up failed (the worker is unaffected):", state.error);
  } finally {
    restore();
  }
  return state;
}

// The bench re-runs it after attaching V8's inspector, which throws away the
// code compiled before it attached (bench/cpu.mjs).
globalThis.__contribotWarmUp = { run: warmUp, state: null };
warmUp();

export default class extends Processor {
  queue(batch) {
    restore();
    return super.queue(batch);
  }
}
