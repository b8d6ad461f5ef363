// The processor's main module (`cargo xtask build` installs it as
// build/worker/shim.mjs, in place of worker-build's re-export of
// ../index.js): worker-build's entrypoint, plus one batch run through the
// real queue handler at start-up, so V8 compiles its code outside the
// per-invocation CPU budget. See warm-up-kit.mjs for why and how.
//
// The stand-ins answer as the platform would for a new repo and issue: a D1
// state read with their rows, the reservation read-back, one GraphQL answer,
// Workers AI answers that pass validation, and an R2 log put.
import Processor from "../index.js";
import { CTX, D1Database, R2Bucket, batchOf, delivery, restore, warmUp } from "./warm-up-kit.mjs";

const OWNER = "warm";
const NAME = "up";
const HASH = "0".repeat(64);
const MODEL = "@cf/meta/llama-3.1-8b-instruct-fp8-fast";

// ------------------------------------------------------------ bindings

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

// ------------------------------------------------------------ GitHub

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

// ------------------------------------------------------------ the batch

function environment() {
  return {
    DB: new D1Database((batch) => batch.map(([sql, params]) => rowsFor(sql, params))),
    AI: new Ai(), LOGS: new R2Bucket(),
    AI_BACKEND: "binding", AI_MODEL: MODEL, LOG_LEVEL: "info", GITHUB_API_URL: "https://api.github.com",
    SUBREQUEST_BUDGET: "45", AI_DAILY_NEURON_CAP: "9000", AI_CALLS_PER_MINUTE: "1000000",
    GITHUB_POINTS_PER_MINUTE: "100000000", GITHUB_TOKEN: "warm-up",
  };
}

/**
 * One batch (a repo and an issue) through the real handler. Resolves to the
 * warm-up's state, also kept in `globalThis.__contribotWarmUp.state`: its
 * status and the batch's summary line (both messages completed, with AI).
 */
function run() {
  const env = environment();
  const answer = (_url, body) => ({ status: 200, body: enrichAnswer(body ?? "{}") });
  return warmUp("processor", answer, async () => {
    await Processor.prototype.queue.call({ env, ctx: CTX }, batchOf("contribot-processing", [
      delivery("warm-1", { type: "repo", v: 1, owner: OWNER, name: NAME, content_hash: HASH, priority: 1 }),
      delivery("warm-2", { type: "issue", v: 1, owner: OWNER, name: NAME, number: 1, content_hash: HASH, priority: 1 }),
    ]));
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
