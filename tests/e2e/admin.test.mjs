// The compiled scraper's admin API in workerd: auth and limits, bulk
// enqueue, reprocess, the R2 log reader, run and status. A scraper-only
// stack (the processing queue has no consumer, so what was queued is read
// back from D1's outbox marks), plus one full stack to see enqueued repos
// processed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { parseJsonl, startPipeline } from "./contribot.mjs";
import { DEFAULT_SECRETS, startStack } from "./harness.mjs";

const TOKEN = DEFAULT_SECRETS.ADMIN_TOKEN;
const today = () => new Date().toISOString().slice(0, 10);

let p;
let scrapeRunId;

before(async () => {
  p = await startPipeline({ configs: ["wrangler-scraper.toml"] });
});

after(async () => {
  await p?.close();
});

function call(stack, path, { method = "GET", body, token = TOKEN, headers = {}, ...init } = {}) {
  const h = { ...headers };
  if (token !== null) h.authorization = `Bearer ${token}`;
  if (body !== undefined && typeof body !== "string" && !(body instanceof ReadableStream)) {
    h["content-type"] = "application/json";
    body = JSON.stringify(body);
  }
  return stack.fetch(path, { method, headers: h, body, ...init });
}

async function admin(path, options) {
  const res = await call(p.stack, path, options);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, text };
}

const repoUrls = (n, prefix = "manual") =>
  Array.from({ length: n }, (_, i) => `https://github.com/${prefix}-owner${i}/repo-${i}`);
const itemsOf = (urls) => ({ items: urls.map((repoUrl) => ({ repoUrl })) });

// ------------------------------------------------------------------ auth and limits

test("a missing or wrong bearer token is 401; unknown routes 404; wrong methods 405", async () => {
  let r = await admin("/admin/status", { token: null });
  assert.equal(r.status, 401);
  assert.equal(r.body.ok, false);
  assert.match(r.body.error, /bearer token/);
  r = await admin("/admin/status", { token: "not-the-token" });
  assert.equal(r.status, 401);
  r = await admin("/admin/enqueue", { method: "POST", token: "e2e-admin-tokeN", body: itemsOf([]) });
  assert.equal(r.status, 401, "a wrong token is refused before the body is read");

  r = await admin("/admin/nope");
  assert.equal(r.status, 404);
  assert.equal(r.body.ok, false);
  r = await admin("/admin/logs", { method: "POST", body: {} });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get("allow"), "GET");
  r = await admin("/admin/enqueue");
  assert.equal(r.status, 405);
  assert.equal(r.headers.get("allow"), "POST");
  r = await admin("/elsewhere", { token: null });
  assert.equal(r.status, 404);
});

test("without an ADMIN_TOKEN (unset or empty) the admin API is off: 503", async () => {
  for (const secrets of [{ GITHUB_TOKEN: "x", ADMIN_TOKEN: "" }, { GITHUB_TOKEN: "x" }]) {
    const stack = await startStack({ configs: ["wrangler-scraper.toml"], secrets, quiet: true });
    try {
      for (const token of [TOKEN, "", null]) {
        const res = await call(stack, "/admin/status", { token });
        assert.equal(res.status, 503, `${JSON.stringify(secrets)} token=${token}`);
        const body = await res.json();
        assert.match(body.error, /ADMIN_TOKEN/);
      }
    } finally {
      await stack.dispose();
    }
  }
});

test("a body over 512 KB is 413, with or without a content-length", async () => {
  const big = JSON.stringify({ items: [{ repoUrl: "https://github.com/a/b", pad: "x".repeat(600 * 1024) }] });
  let r = await admin("/admin/enqueue", { method: "POST", body: big, headers: { "content-type": "application/json" } });
  assert.equal(r.status, 413);
  assert.match(r.body.error, /over 524288 bytes/);

  const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
  let chunks = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (chunks++ >= 10) controller.close();
      else controller.enqueue(chunk);
    },
  });
  r = await admin("/admin/reprocess", { method: "POST", body: stream, duplex: "half" });
  assert.equal(r.status, 413, "the bounded read stops a chunked body");
  assert.equal(await p.first("SELECT COUNT(*) AS n FROM repos WHERE data_source = 'manual'").then((x) => x.n), 0);
});

// ------------------------------------------------------------------ run and status

test("POST /admin/run starts a run (202), a second is refused while it runs (409)", async () => {
  const first = await admin("/admin/run", { method: "POST" });
  assert.equal(first.status, 202);
  assert.equal(first.body.ok, true);
  assert.equal(first.body.status, "started");
  assert.match(first.body.run_id, /^run-/);
  scrapeRunId = first.body.run_id;

  const second = await admin("/admin/run", { method: "POST" });
  assert.equal(second.status, 409);
  assert.equal(second.body.status, "already_running");
  assert.equal(second.body.run_id, scrapeRunId);

  const run = await p.stack.waitFor(
    async () => {
      const r = await p.first("SELECT * FROM scrape_runs WHERE id = ?", scrapeRunId);
      return r && r.status !== "running" ? r : null;
    },
    { timeoutMs: 240_000, message: "the admin-started run to finish" },
  );
  assert.equal(run.status, "completed", run.error);
  assert.equal(run.trigger, "admin");
});

test("GET /admin/status reports counts, runs, failures, missing labels and the backlog", async () => {
  const r = await admin("/admin/status");
  assert.equal(r.status, 200);
  const s = r.body;
  assert.equal(s.ok, true);
  for (const key of ["repos", "issues"]) {
    assert.deepEqual(Object.keys(s[key]).sort(), ["completed", "failed", "pending", "processing"]);
  }
  assert.ok(s.repos.pending > 200, "every scraped repo waits for the processor");
  assert.equal(s.runs[0].id, scrapeRunId);
  assert.equal(s.runs[0].status, "completed");
  for (const field of ["repos_seen", "messages_queued", "subrequests_used", "outcome", "error"]) {
    assert.ok(field in s.runs[0], `run summary has ${field}`);
  }
  assert.ok(Array.isArray(s.failed));
  assert.ok(s.label_not_found.length > 0, "the dataset has repos whose label is missing");
  assert.ok(Array.isArray(s.label_not_found[0].listed_labels));
  assert.deepEqual(Object.keys(s.backlog).sort(), ["issues", "repos", "unqueued"]);
  assert.equal(s.backlog.unqueued, 0, "the run drained its outbox");
  assert.ok(s.invocations.some((i) => i.service === "scraper"));

  const one = await admin("/admin/status?runs=1");
  assert.equal(one.body.runs.length, 1);
  const bad = await admin("/admin/status?runs=0");
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /`runs` must be an integer from 1 to 100/);
});

// ------------------------------------------------------------------ logs

test("GET /admin/logs returns the day's JSONL, every object's summary included", async () => {
  const r = await admin(`/admin/logs?date=${today()}&service=scraper&limit=10000`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/x-ndjson");
  assert.equal(r.headers.get("x-contribot-truncated"), null);
  const lines = parseJsonl(r.text);
  const objects = (await p.stack.listLogs(`logs/${today().replaceAll("-", "/")}/scraper-`)).filter((o) => o.key.endsWith(".jsonl"));
  assert.ok(objects.length >= 3, "trigger + continuations");
  const expected = objects.flatMap((o) => parseJsonl(o.text));
  assert.deepEqual(lines, expected, "every line, in key order");
  assert.equal(lines.filter((l) => l.event === "summary").length, objects.length);
  for (const o of objects) assert.equal(parseJsonl(o.text).at(-1).event, "summary");
});

test("GET /admin/logs filters by level and run", async () => {
  const warn = await admin(`/admin/logs?date=${today()}&level=warn&limit=10000`);
  assert.equal(warn.status, 200);
  const warnLines = parseJsonl(warn.text);
  assert.ok(warnLines.length > 0, "the dataset makes the scraper warn (missing labels and repos)");
  assert.ok(warnLines.every((l) => l.level === "warn" || l.level === "error"), warn.text.slice(0, 500));
  const all = parseJsonl((await admin(`/admin/logs?date=${today()}&limit=10000`)).text);
  assert.equal(warnLines.length, all.filter((l) => l.level === "warn" || l.level === "error").length);

  const byRun = parseJsonl((await admin(`/admin/logs?date=${today()}&service=scraper&run=${scrapeRunId}&limit=10000`)).text);
  assert.ok(byRun.length > 0);
  assert.ok(byRun.every((l) => l.run_id === scrapeRunId));
  assert.equal(byRun.length, all.filter((l) => l.run_id === scrapeRunId).length);
  const byRunAnyService = parseJsonl((await admin(`/admin/logs?date=${today()}&run=${scrapeRunId}&limit=10000`)).text);
  assert.deepEqual(byRunAnyService, byRun);
  const none = await admin(`/admin/logs?date=${today()}&run=run-nope`);
  assert.equal(none.status, 200);
  assert.equal(none.text, "");
});

test("GET /admin/logs?limit=5 stops at 5 lines with a truncation line and a cursor that continues", async () => {
  const base = `/admin/logs?date=${today()}&service=scraper`;
  const full = parseJsonl((await admin(`${base}&limit=10000`)).text);
  const first = await admin(`${base}&limit=5`);
  assert.equal(first.status, 200);
  const lines = parseJsonl(first.text);
  assert.equal(lines.length, 6);
  const marker = lines.at(-1);
  assert.equal(marker.event, "truncated");
  assert.equal(marker.reason, "limit");
  assert.equal(first.headers.get("x-contribot-truncated"), "limit");
  assert.equal(first.headers.get("x-contribot-next-cursor"), marker.next_cursor);
  assert.deepEqual(lines.slice(0, 5), full.slice(0, 5));

  const next = await admin(`${base}&limit=5&cursor=${encodeURIComponent(marker.next_cursor)}`);
  assert.deepEqual(parseJsonl(next.text).slice(0, 5), full.slice(5, 10));
});

test("GET /admin/logs without a valid date is 400", async () => {
  for (const query of ["", "?date=2026-13-40", "?date=yesterday", `?date=${today()}&level=loud`, `?date=${today()}&limit=0`, `?date=${today()}&service=api`]) {
    const r = await admin(`/admin/logs${query}`);
    assert.equal(r.status, 400, query);
    assert.equal(r.body.ok, false);
    assert.ok(r.body.error.length > 10, r.body.error);
  }
});

// ------------------------------------------------------------------ enqueue

test("POST /admin/enqueue refuses a body that is not an items array of at most 1000", async () => {
  for (const [body, needle] of [
    ["not json", /not valid JSON/],
    [{}, /`items` is required/],
    [{ items: "x" }, /must be an array/],
    [itemsOf(repoUrls(1001)), /1001 entries; at most 1000/],
  ]) {
    const r = await admin("/admin/enqueue", { method: "POST", body });
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.body.ok, false);
    assert.match(r.body.error, needle);
  }
});

let manualUrls;
let enqueueRunId;

test("250 new repos are inserted as manual, queued in send_batch calls of 100, 100 and 50, and logged", async () => {
  manualUrls = repoUrls(250);
  const r = await admin("/admin/enqueue", { method: "POST", body: itemsOf(manualUrls) });
  assert.equal(r.status, 202, r.text);
  assert.deepEqual(
    { ...r.body, run_id: undefined },
    { ok: true, enqueued: 250, skipped: 0, invalid: 0, unsent: 0, errors: [], batches: [100, 100, 50], run_id: undefined },
  );
  enqueueRunId = r.body.run_id;
  assert.match(enqueueRunId, /^admin-/);

  const rows = await p.all("SELECT * FROM repos WHERE data_source = 'manual'");
  assert.equal(rows.length, 250);
  for (const row of rows) {
    assert.equal(row.active, 1);
    assert.equal(row.processing_status, "pending");
    assert.deepEqual(JSON.parse(row.listed_labels), ["good first issue"]);
    assert.match(row.content_hash, /^[0-9a-f]{64}$/);
    assert.equal(row.queued_hash, row.content_hash, `${row.owner}/${row.name} is marked queued`);
  }

  // The invocation's own log object: three send_batch lines, then the summary.
  const objects = (await p.stack.listLogs("logs/")).filter((o) => o.key.includes(`/scraper-${enqueueRunId}-`));
  assert.equal(objects.length, 1);
  assert.match(objects[0].key, /^logs\/\d{4}\/\d{2}\/\d{2}\/scraper-admin-[0-9a-f]+-\d+\.jsonl$/);
  const lines = parseJsonl(objects[0].text);
  assert.deepEqual(lines.filter((l) => l.event === "send_batch").map((l) => l.fields.size), [100, 100, 50]);
  const summary = lines.at(-1);
  assert.equal(summary.event, "summary");
  assert.equal(summary.fields.enqueued, 250);
  assert.ok(summary.fields.subrequests_used <= 45);
  assert.ok(!objects[0].text.includes(TOKEN));

  // The same log through the API, by run id.
  const viaApi = await admin(`/admin/logs?date=${today()}&service=scraper&run=${enqueueRunId}`);
  assert.deepEqual(parseJsonl(viaApi.text), lines);

  const ledger = await p.first("SELECT * FROM invocations WHERE run_id = ?", enqueueRunId);
  assert.equal(ledger.log_key, objects[0].key);
});

test("posting the same 250 again enqueues nothing and skips all 250", async () => {
  const before = await p.all("SELECT * FROM repos WHERE data_source = 'manual' ORDER BY id");
  const r = await admin("/admin/enqueue", { method: "POST", body: itemsOf(manualUrls) });
  assert.equal(r.status, 202);
  assert.equal(r.body.enqueued, 0);
  assert.equal(r.body.skipped, 250);
  assert.deepEqual(r.body.batches, []);
  assert.deepEqual(await p.all("SELECT * FROM repos WHERE data_source = 'manual' ORDER BY id"), before);
});

test("repeats within a request are skipped; invalid URLs are reported by index and skipped", async () => {
  const listed = await p.first("SELECT owner, name FROM repos WHERE data_source = 'awesome-for-beginners' LIMIT 1");
  const items = [
    { repoUrl: "https://github.com/fresh-owner/fresh-repo", label: "help wanted" },
    { repoUrl: "https://github.com/Fresh-Owner/Fresh-Repo/" },
    { repoUrl: "http://github.com/a/b" },
    { repoUrl: "https://gitlab.com/a/b" },
    { repoUrl: "https://github.com/a" },
    { repoUrl: "https://github.com/a/b/c" },
    { repoUrl: `https://github.com/${listed.owner}/${listed.name}` },
    { repoUrl: "https://github.com/other-owner/other-repo", label: 42 },
  ];
  const r = await admin("/admin/enqueue", { method: "POST", body: { items } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.enqueued, 1);
  assert.equal(r.body.skipped, 2, "the repeat and the listed repo");
  assert.equal(r.body.invalid, 5);
  assert.deepEqual(r.body.batches, [1]);
  assert.deepEqual(
    r.body.errors.map((e) => e.split(":")[0]),
    ["items[2]", "items[3]", "items[4]", "items[5]", "items[7]"],
  );
  assert.match(r.body.errors[0], /^items\[2\]: invalid repoUrl: http:\/\/github\.com\/a\/b/);
  assert.match(r.body.errors[1], /gitlab\.com/);
  assert.equal(r.body.errors[4], "items[7]: label must be a string");

  const fresh = await p.first("SELECT * FROM repos WHERE owner = 'fresh-owner' AND name = 'fresh-repo'");
  assert.deepEqual(JSON.parse(fresh.listed_labels), ["help wanted"]);
  assert.equal(fresh.queued_hash, fresh.content_hash);
  const listedRow = await p.first("SELECT data_source FROM repos WHERE owner = ? AND name = ?", listed.owner, listed.name);
  assert.equal(listedRow.data_source, "awesome-for-beginners", "an existing repo is left alone");
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM repos WHERE owner IN ('a', 'other-owner')")).n, 0);
});

// ------------------------------------------------------------------ reprocess

test("POST /admin/reprocess by repo, by issue and by status resets and requeues", async () => {
  const repo = await p.first(
    "SELECT * FROM repos WHERE data_source = 'awesome-for-beginners' AND content_hash IS NOT NULL ORDER BY id LIMIT 1",
  );
  await p.db
    .prepare("UPDATE repos SET processing_status = 'completed', analysis_hash = content_hash, attempts = 2, last_error = 'x' WHERE id = ?")
    .bind(repo.id)
    .run();
  let r = await admin("/admin/reprocess", { method: "POST", body: { repo: `${repo.owner}/${repo.name}` } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.ok, true);
  assert.equal(r.body.requeued, 1);
  assert.deepEqual(r.body.batches, [1]);
  let row = await p.first("SELECT * FROM repos WHERE id = ?", repo.id);
  assert.equal(row.processing_status, "pending");
  assert.equal(row.analysis_hash, null);
  assert.equal(row.attempts, 0);
  assert.equal(row.last_error, null);
  assert.equal(row.queued_hash, row.content_hash);

  const issue = await p.first(
    "SELECT i.id, i.number, r.owner, r.name FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' ORDER BY i.id LIMIT 1",
  );
  r = await admin("/admin/reprocess", { method: "POST", body: { issue: `${issue.owner}/${issue.name}#${issue.number}` } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.requeued, 1);

  // Some items fail, then come back.
  await p.db.batch([
    p.db.prepare(
      "UPDATE repos SET processing_status = 'failed', last_error = 'AI timeout' WHERE id IN (SELECT id FROM repos WHERE data_source = 'awesome-for-beginners' AND content_hash IS NOT NULL ORDER BY id LIMIT 2 OFFSET 1)",
    ),
    p.db.prepare(
      "UPDATE issues SET processing_status = 'failed', last_error = 'dead-lettered' WHERE id IN (SELECT id FROM issues WHERE state = 'open' ORDER BY id LIMIT 5 OFFSET 1)",
    ),
  ]);
  const status = await admin("/admin/status");
  assert.ok(status.body.failed.filter((f) => f.kind === "issue").length === 5);
  r = await admin("/admin/reprocess", { method: "POST", body: { status: "failed" } });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.requeued, 7);
  assert.equal(r.body.matched, 7);
  const failed = await p.first(
    "SELECT (SELECT COUNT(*) FROM repos WHERE processing_status = 'failed' AND upstream_status != 'not_found') + (SELECT COUNT(*) FROM issues WHERE processing_status = 'failed') AS n",
  );
  assert.equal(failed.n, 0);
  // Repos GitHub does not have stay failed, with GitHub's reason: there is nothing to requeue.
  const missing = await p.all("SELECT processing_status, last_error FROM repos WHERE upstream_status = 'not_found'");
  assert.ok(missing.length > 0);
  for (const m of missing) {
    assert.equal(m.processing_status, "failed");
    assert.match(m.last_error, /not found on GitHub/);
  }
  const unqueued = await p.first(
    "SELECT (SELECT COUNT(*) FROM repos WHERE content_hash IS NOT NULL AND queued_hash IS NOT content_hash) + (SELECT COUNT(*) FROM issues WHERE state = 'open' AND queued_hash IS NOT content_hash) AS n",
  );
  assert.equal(unqueued.n, 0, "everything reset was queued again");

  r = await admin("/admin/reprocess", { method: "POST", body: { status: "failed", limit: 5 } });
  assert.equal(r.body.requeued, 0, "nothing failed any more");
});

test("POST /admin/reprocess refuses unknown items (404) and malformed targets (400)", async () => {
  let r = await admin("/admin/reprocess", { method: "POST", body: { repo: "nobody/nothing" } });
  assert.equal(r.status, 404);
  assert.match(r.body.error, /repo nobody\/nothing is not in D1/);
  r = await admin("/admin/reprocess", { method: "POST", body: { issue: "nobody/nothing#1" } });
  assert.equal(r.status, 404);
  for (const body of [{}, { repo: "x" }, { status: "processing" }, { status: "failed", limit: 1001 }, { repo: "a/b", issue: "a/b#1" }]) {
    r = await admin("/admin/reprocess", { method: "POST", body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.ok, false);
  }
});

// ------------------------------------------------------------------ processed end to end

test("enqueued repos reach the processor and are processed (full stack)", async () => {
  const full = await startPipeline({
    seed: 42,
    vars: { AI_BACKEND: "binding" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
  });
  try {
    const truth = await full.sim.control("/_sim/truth");
    const picks = truth.repos.filter((r) => r.status === "ok" && r.listed_slug).slice(0, 3).map((r) => r.listed_slug);
    assert.equal(picks.length, 3);
    const res = await call(full.stack, "/admin/enqueue", {
      method: "POST",
      body: itemsOf(picks.map((slug) => `https://github.com/${slug}`)),
    });
    const body = await res.json();
    assert.equal(res.status, 202, JSON.stringify(body));
    assert.equal(body.enqueued, 3);
    const done = await full.stack.waitFor(
      async () => {
        const rows = await full.all("SELECT owner, name, processing_status, summary FROM repos WHERE data_source = 'manual'");
        return rows.length === 3 && rows.every((r) => r.processing_status === "completed") ? rows : null;
      },
      { timeoutMs: 120_000, message: "the processor to complete the enqueued repos" },
    );
    for (const r of done) assert.ok(r.summary, `${r.owner}/${r.name} has a summary`);
  } finally {
    await full.close();
  }
});
