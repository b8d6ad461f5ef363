// The public read API on the compiled scraper, over a D1 seeded by a real
// scrape and processing run against the simulator (heuristic AI backend):
// - /api/issues, /api/repos and /api/repos/{owner}/{name} answer exactly
//   what D1 holds, filtered, sorted and paged as documented;
// - a bad parameter is a 400 naming it, never a 5xx;
// - ETag / If-None-Match 304, CORS on every answer and the preflight;
// - repeated reads cost D1 nothing (counted per request, and shown with the
//   tables hidden), and a run's changes show once the data version expires;
// - the served routes are docs/openapi.yaml's, and schemathesis finds no
//   failure against the stack.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { runScrape, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";
import { REPO_ROOT, startStack } from "./harness.mjs";

const VERSION_KEY = "https://api-cache.contribot.invalid/v1/data-version";
const VENV = path.join(REPO_ROOT, "target/e2e-venv");
const ARTIFACTS = path.join(REPO_ROOT, "target/e2e-artifacts");

let p;
let origin;

before(async () => {
  // The data version is expired by hand (expireVersion), so the counts below
  // do not depend on how long a run takes; the last test checks the TTL itself.
  p = await startPipeline({ vars: { AI_BACKEND: "heuristic", API_VERSION_TTL_SECONDS: "86400" } });
  const run = await runScrape(p);
  assert.equal(run.status, "completed", run.error);
  await waitDrained(p);
  await waitQuiet(p);
  origin = (await p.stack.mf.ready).href.replace(/\/$/, "");
});

after(async () => {
  await p?.close();
});

async function api(url, init) {
  const response = await p.stack.fetch(url, init);
  const text = await response.text();
  let body = text;
  if ((response.headers.get("content-type") ?? "").startsWith("application/json")) body = JSON.parse(text);
  return { status: response.status, headers: response.headers, body, text };
}

/** Forget the cached data version, as API_VERSION_TTL_SECONDS passing does. */
async function expireVersion() {
  const caches = await p.stack.mf.getCaches();
  await caches.default.delete(VERSION_KEY);
}

/** Every page of a listing; the items in order. */
async function allPages(url, key = (body) => body) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 500; page++) {
    const sep = url.includes("?") ? "&" : "?";
    const got = await api(cursor ? `${url}${sep}cursor=${cursor}` : url);
    assert.equal(got.status, 200, `${url}: ${got.text}`);
    const listing = key(got.body);
    items.push(...listing.items);
    cursor = listing.next_cursor;
    if (!cursor) return items;
  }
  throw new Error(`${url}: more than 500 pages`);
}

const slugOf = (i) => `${i.repo}#${i.number}`;

/** D1's open issues of listed repos, with what the API sorts and filters by. */
async function storedIssues() {
  const rows = await p.all(
    "SELECT r.owner || '/' || r.name AS repo, i.number, i.id, i.title, i.intro, i.difficulty, i.first_steps, \
            i.labels, i.available, i.availability, i.gh_created_at, r.primary_language \
     FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' AND r.active = 1",
  );
  return rows.map((r) => ({ ...r, labels: JSON.parse(r.labels), first_steps: r.first_steps ? JSON.parse(r.first_steps) : [] }));
}

const newest = (a, b) => ((b.gh_created_at ?? "") > (a.gh_created_at ?? "") ? 1 : (b.gh_created_at ?? "") < (a.gh_created_at ?? "") ? -1 : b.id - a.id);
const easiest = (a, b) => (a.difficulty ?? 6) - (b.difficulty ?? 6) || newest(a, b);
const lower = (s) => (s ?? "").toLowerCase();

test("/api/issues pages through exactly D1's available open issues, newest first, each as stored", async () => {
  const stored = await storedIssues();
  const expected = stored.filter((i) => i.available === 1).sort(newest);
  assert.ok(expected.length > 500, `a real dataset (${expected.length} available issues)`);
  const items = await allPages("/api/issues?limit=100");
  assert.deepEqual(items.map(slugOf), expected.map(slugOf));
  const byId = new Map(expected.map((i) => [slugOf(i), i]));
  for (const item of items) {
    const row = byId.get(slugOf(item));
    assert.equal(item.title, row.title);
    assert.equal(item.intro, row.intro);
    assert.equal(item.difficulty, row.difficulty);
    assert.deepEqual(item.first_steps, row.first_steps);
    assert.deepEqual(item.labels, row.labels);
    assert.equal(item.available, true);
    assert.equal(item.availability, "ok");
    assert.ok(item.intro && item.first_steps.length >= 1, `${slugOf(item)} was analysed`);
    assert.equal(item.analysis_model, "heuristic-v1");
  }
});

test("sort=easy pages by difficulty, then newest, with any page size", async () => {
  const expected = (await storedIssues()).filter((i) => i.available === 1).sort(easiest);
  const items = await allPages("/api/issues?sort=easy&limit=37");
  assert.deepEqual(items.map(slugOf), expected.map(slugOf));
});

test("each filter returns exactly the stored issues it names", async () => {
  const stored = await storedIssues();
  const count = (values) => values.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map());
  const top = (m) => [...m.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const language = top(count(stored.filter((i) => i.primary_language).map((i) => i.primary_language)));
  const labels = count(stored.filter((i) => i.available === 1).flatMap((i) => i.labels));
  const rareLabel = [...labels.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0][0];
  const repo = top(count(stored.filter((i) => i.available === 1).map((i) => i.repo)));
  const cases = [
    [`language=${encodeURIComponent(language.toUpperCase())}`, (i) => i.available === 1 && lower(i.primary_language) === lower(language)],
    ["difficulty_max=2", (i) => i.available === 1 && i.difficulty !== null && i.difficulty <= 2],
    [`label=${encodeURIComponent(rareLabel)}`, (i) => i.available === 1 && i.labels.some((l) => lower(l) === lower(rareLabel))],
    [`repo=${repo}`, (i) => i.available === 1 && i.repo === repo],
    ["available=false", (i) => i.available === 0],
    ["available=any", () => true],
    [`difficulty_max=3&language=${encodeURIComponent(language)}&sort=easy`, (i) => i.available === 1 && i.difficulty !== null && i.difficulty <= 3 && lower(i.primary_language) === lower(language)],
  ];
  for (const [query, keep] of cases) {
    const expected = stored.filter(keep).sort(query.includes("sort=easy") ? easiest : newest);
    const items = await allPages(`/api/issues?${query}&limit=100`);
    assert.deepEqual(items.map(slugOf), expected.map(slugOf), query);
    assert.ok(expected.length > 0 || query === "available=false", `${query} selects something`);
  }
});

test("/api/repos lists the listed repos by stars, and a repo's page holds its issues", async () => {
  const rows = await p.all(
    "SELECT r.owner || '/' || r.name AS full_name, r.id, COALESCE(r.stars, -1) AS s, \
       (SELECT COUNT(*) FROM issues i WHERE i.repo_id = r.id AND i.state = 'open') AS open_issues \
     FROM repos r WHERE r.active = 1 AND r.upstream_status = 'ok' ORDER BY s DESC, r.id ASC",
  );
  const repos = await allPages("/api/repos?limit=50");
  assert.deepEqual(repos.map((r) => r.full_name), rows.map((r) => r.full_name));
  assert.deepEqual(repos.map((r) => r.open_issues), rows.map((r) => r.open_issues));

  const busiest = [...repos].sort((a, b) => b.available_issues - a.available_issues)[0];
  const detail = await api(`/api/repos/${busiest.full_name}?sort=easy&limit=100`);
  assert.equal(detail.status, 200);
  assert.deepEqual(detail.body.repo, busiest);
  const expected = (await storedIssues()).filter((i) => i.repo === busiest.full_name && i.available === 1).sort(easiest);
  assert.deepEqual(detail.body.issues.items.map(slugOf), expected.map(slugOf));

  const missing = await api("/api/repos/nobody-here/nothing-here");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error, "no listed repo nobody-here/nothing-here");
});

test("a bad parameter is a 400 that names it; nothing is a 5xx", async () => {
  const cases = [
    ["/api/issues?limit=0", "limit"],
    ["/api/issues?limit=101", "limit"],
    ["/api/issues?limit=ten", "limit"],
    ["/api/issues?difficulty_max=6", "difficulty_max"],
    ["/api/issues?available=yes", "available"],
    ["/api/issues?sort=hot", "sort"],
    ["/api/issues?cursor=not-a-cursor", "cursor"],
    ["/api/issues?repo=just-a-name", "repo"],
    ["/api/issues?language=", "language"],
    [`/api/issues?label=${"x".repeat(101)}`, "label"],
    ["/api/issues?lang=Rust", "lang"],
    ["/api/issues?limit=5&limit=6", "limit"],
    ["/api/repos?sort=stars", "sort"],
    ["/api/repos/a%20b/c", "owner"],
    ["/api/repos/a/c%3F", "name"],
    ["/api/repos/a/c?language=Go", "language"],
    ["/api/facets?language=Go", "language"],
  ];
  const first = await api("/api/issues?sort=easy&limit=5");
  cases.push([`/api/issues?cursor=${first.body.next_cursor}`, "cursor"]); // an easy cursor, fresh sort
  for (const [url, parameter] of cases) {
    const got = await api(url);
    assert.equal(got.status, 400, `${url}: ${got.text}`);
    assert.equal(got.body.parameter, parameter, url);
    assert.ok(got.body.error.startsWith(`${parameter}: `), `${url}: ${got.body.error}`);
    assert.equal(got.headers.get("access-control-allow-origin"), "*");
  }
  const post = await api("/api/issues", { method: "POST", body: "{}" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD, OPTIONS");
  assert.equal((await api("/api/nothing")).status, 404);
});

test("an ETag comes back as a 304 with no body; CORS headers on answers and the preflight", async () => {
  const first = await api("/api/issues?language=Python");
  const etag = first.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  assert.equal(first.headers.get("cache-control"), "public, max-age=60");
  assert.equal(first.headers.get("access-control-allow-origin"), "*");
  assert.match(first.headers.get("access-control-expose-headers"), /ETag/);

  const again = await api("/api/issues?language=Python", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, "");
  assert.equal(again.headers.get("etag"), etag);
  assert.equal(again.headers.get("access-control-allow-origin"), "*");
  const weak = await api("/api/issues?language=Python", { headers: { "If-None-Match": `"other", W/${etag}` } });
  assert.equal(weak.status, 304);
  const stale = await api("/api/issues?language=Python", { headers: { "If-None-Match": '"0123"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.text, first.text);

  const preflight = await api("/api/issues", {
    method: "OPTIONS",
    headers: { Origin: "https://frontend.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match" },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
  assert.equal(preflight.headers.get("access-control-allow-methods"), "GET, HEAD, OPTIONS");
  assert.equal(preflight.headers.get("access-control-allow-headers"), "if-none-match");
});

test("repeated reads cost D1 nothing: counted per request, and answered with the tables hidden", async () => {
  await expireVersion();
  const url = "/api/issues?sort=easy&limit=7&difficulty_max=4";
  const first = await api(url);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("x-contribot-d1-queries"), "2", "the data version and the page");
  assert.equal(first.headers.get("x-contribot-cache"), "miss");
  const spellings = [url, "/api/issues?difficulty_max=4&limit=7&sort=easy", "/api/issues?available=true&sort=easy&difficulty_max=4&limit=7"];
  for (const again of [...spellings, ...spellings]) {
    const got = await api(again);
    assert.equal(got.headers.get("x-contribot-d1-queries"), "0", again);
    assert.equal(got.headers.get("x-contribot-cache"), "hit", again);
    assert.equal(got.text, first.text, again);
  }
  // Not just the worker's word: with `issues` renamed, any D1 read of the
  // API fails (every read, the version's included, touches it).
  await p.db.prepare("ALTER TABLE issues RENAME TO issues_hidden_by_test").run();
  try {
    for (const again of spellings) {
      const got = await api(again);
      assert.equal(got.status, 200, again);
      assert.equal(got.text, first.text, again);
    }
    const uncached = await api("/api/issues?sort=easy&limit=8&difficulty_max=4");
    assert.equal(uncached.status, 503, "a read the cache does not hold does reach D1, and fails");
  } finally {
    await p.db.prepare("ALTER TABLE issues_hidden_by_test RENAME TO issues").run();
  }
  // The version expiring with the data unchanged costs one probe, no page read.
  await expireVersion();
  const probed = await api(url);
  assert.equal(probed.headers.get("x-contribot-d1-queries"), "1");
  assert.equal(probed.headers.get("x-contribot-cache"), "hit");
});

test("a run that changes the data shows on the first read after the version expires", async () => {
  const before = await api("/api/issues?limit=100");
  const [assigned, closed] = before.body.items;
  const ops = [
    { op: "add_assignee", repo: assigned.repo, number: assigned.number, login: "a-contributor" },
    { op: "close_issue", repo: closed.repo, number: closed.number },
  ];
  await p.sim.control("/_sim/mutate", { ops });
  const run = await runScrape(p);
  assert.equal(run.status, "completed", run.error);
  await waitDrained(p);
  await waitQuiet(p);
  // Within API_VERSION_TTL_SECONDS this data centre still answers from its cache...
  const cached = await api("/api/issues?limit=100");
  assert.equal(cached.headers.get("x-contribot-d1-queries"), "0");
  assert.equal(cached.text, before.text);
  // ...and once its version expires, the page is read again, once.
  await expireVersion();
  const after = await api("/api/issues?limit=100", { headers: { "If-None-Match": before.headers.get("etag") } });
  assert.equal(after.status, 200, "the old ETag no longer matches");
  assert.equal(after.headers.get("x-contribot-d1-queries"), "2");
  const shown = after.body.items.map(slugOf);
  assert.ok(!shown.includes(slugOf(assigned)), "an assigned issue is no longer listed as available");
  assert.ok(!shown.includes(slugOf(closed)), "a closed issue is gone");
  const kept = before.body.items.map(slugOf).filter((s) => s !== slugOf(assigned) && s !== slugOf(closed));
  assert.deepEqual(shown.slice(0, kept.length), kept, "the rest keep their order");
  const unavailable = await allPages("/api/issues?available=false&limit=100");
  const flagged = unavailable.find((i) => slugOf(i) === slugOf(assigned));
  assert.equal(flagged?.availability, "assigned");
  assert.equal(flagged.assignee_count, 1);
  assert.equal((await api("/api/issues?limit=100")).headers.get("x-contribot-d1-queries"), "0");
});

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

async function contract() {
  const { stdout } = await promisify(execFile)(path.join(VENV, "bin/python"), [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    path.join(REPO_ROOT, "docs/openapi.yaml"),
  ]);
  return JSON.parse(stdout);
}

test("the served routes are the ones docs/openapi.yaml documents, with their parameters", async () => {
  const doc = await contract();
  const [repo] = (await api("/api/repos?limit=1")).body.items;
  const served = await readFile(path.join(REPO_ROOT, "docs/openapi.yaml"), "utf8");
  for (const [template, operations] of Object.entries(doc.paths)) {
    assert.deepEqual(Object.keys(operations), ["get"], `${template}: read-only`);
    const url = template.replace("{owner}", repo.owner).replace("{name}", repo.name);
    const got = await api(url);
    assert.equal(got.status, 200, `${url}: ${got.text}`);
    assert.ok(Object.keys(operations.get.responses).includes("200"));
    // Every documented query parameter is taken; an undocumented one is refused.
    const params = (operations.get.parameters ?? [])
      .map((ref) => doc.components.parameters[ref.$ref.split("/").pop()])
      .filter((param) => param.in === "query");
    for (const param of params) {
      const value = param.example ?? param.schema.enum?.[0] ?? param.schema.default ?? (param.schema.type === "integer" ? param.schema.minimum : "x");
      if (param.name === "cursor") continue; // only a page's own next_cursor is valid
      const ok = await api(`${url}?${param.name}=${encodeURIComponent(value)}`);
      assert.equal(ok.status, 200, `${url}?${param.name}=${value}: ${ok.text}`);
    }
    const extra = await api(`${url}?undocumented=1`);
    assert.equal(extra.status, 400, `${url} refuses an undocumented parameter`);
  }
  assert.equal((await api("/api/openapi.yaml")).text, served, "the worker serves the file in the repo");
  for (const undocumented of ["/api", "/api/", "/api/issue", "/api/languages", `/api/repos/${repo.owner}`, "/api/issues/1"]) {
    assert.equal((await api(undocumented)).status, 404, undocumented);
  }
});

test("schemathesis finds no server error and no response off the schema", async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  const args = [
    "run",
    path.join(REPO_ROOT, "docs/openapi.yaml"),
    "--url",
    origin,
    "--checks",
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection",
    "--max-examples",
    "40",
    "--seed",
    "20261201",
    "--workers",
    "1",
    "--request-timeout",
    "30",
    "--report",
    "junit",
    "--report-junit-path",
    path.join(ARTIFACTS, "schemathesis.xml"),
  ];
  const child = spawn(path.join(VENV, "bin/schemathesis"), args, {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const code = await new Promise((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, `schemathesis failed:\n${output.slice(-6000)}`);
  assert.match(output, /Test cases:\s+\d+ generated, \d+ passed/);
});

// ---------------------------------------------------------------------------
// The cache's own clock, on a small stack of its own
// ---------------------------------------------------------------------------

test("the cached data version expires after API_VERSION_TTL_SECONDS by itself", async () => {
  const stack = await startStack({ configs: ["wrangler-scraper.toml"], vars: { API_VERSION_TTL_SECONDS: "2" }, quiet: true });
  try {
    await stack.applyMigrations();
    const queries = async () => (await stack.fetch("/api/repos")).headers.get("x-contribot-d1-queries");
    assert.equal(await queries(), "2");
    assert.equal(await queries(), "0");
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await queries(), "1", "one version probe; the page is still cached");
  } finally {
    await stack.dispose();
  }
});
