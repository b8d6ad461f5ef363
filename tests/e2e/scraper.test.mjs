// The compiled scraper in workerd against the upstream simulator:
// a full first run, an unchanged rerun, and a run after upstream edits.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { BUDGET, invocationsOf, openIssuesBySlug, parseJsonl, runScrape, snapshot, startPipeline } from "./contribot.mjs";

let p;
let truth;
const runs = [];

before(async () => {
  p = await startPipeline({ configs: ["wrangler-scraper.toml"] });
  truth = await p.sim.control("/_sim/truth");
});

after(async () => {
  await p?.close();
});

function expectedOpen() {
  // Repos whose label resolves and that GitHub still has.
  const out = new Map();
  for (const r of truth.repos) {
    if (!r.listed || r.status === "missing" || !r.beginner_label) continue;
    if (r.open_beginner_issues.length) out.set(r.listed_slug, [...r.open_beginner_issues].sort((a, b) => a - b));
  }
  return out;
}

test("first run upserts every listed repo and its labelled open issues, within budget", async () => {
  await p.sim.control("/_sim/counters/reset", {});
  const run = await runScrape(p);
  runs.push(run);
  assert.equal(run.status, "completed", `run ended ${run.status}: ${run.error}`);

  const repos = await p.all("SELECT * FROM repos WHERE active = 1");
  assert.equal(repos.length, 222, "the 222 unique GitHub repos of data.json");
  const missing = new Set(truth.special.missing);
  for (const r of repos) {
    const slug = `${r.owner}/${r.name}`;
    assert.equal(r.upstream_status, missing.has(slug) ? "not_found" : "ok", slug);
  }
  const labelMissing = await p.all("SELECT owner || '/' || name AS slug FROM repos WHERE label_status = 'not_found'");
  assert.deepEqual(labelMissing.map((r) => r.slug).sort(), [...truth.special.label_missing].sort());
  for (const slug of truth.special.label_hyphen_resolved) {
    const [owner, name] = slug.split("/");
    const row = await p.first("SELECT resolved_label, listed_labels FROM repos WHERE owner = ? AND name = ?", owner, name);
    assert.ok(row.resolved_label && !JSON.parse(row.listed_labels).includes(row.resolved_label), `${slug} resolved a lossy label`);
  }

  assert.deepEqual(Object.fromEntries(await openIssuesBySlug(p)), Object.fromEntries(expectedOpen()));
  const paginated = truth.special.paginated;
  assert.ok(paginated.length >= 1, "the dataset forces pagination");

  // Every new item was queued exactly once (outbox drained).
  const unqueued = await p.first(
    "SELECT (SELECT COUNT(*) FROM repos WHERE content_hash IS NOT NULL AND queued_hash IS NOT content_hash) + (SELECT COUNT(*) FROM issues WHERE state = 'open' AND queued_hash IS NOT content_hash) AS n",
  );
  assert.equal(unqueued.n, 0);
  const items = await p.first(
    "SELECT (SELECT COUNT(*) FROM repos WHERE content_hash IS NOT NULL) + (SELECT COUNT(*) FROM issues WHERE state = 'open') AS n",
  );
  assert.equal(run.messages_queued, items.n, "one message per new repo and issue");

  // Several invocations, none over budget; the simulator agrees on requests.
  const invocations = await invocationsOf(p, run.id);
  assert.ok(invocations.length >= 2, `expected continuations, got ${invocations.length} invocation(s)`);
  assert.equal(run.invocations, invocations.length);
  assert.equal(run.continuations, invocations.length - 1);
  const counters = await p.sim.control("/_sim/counters");
  for (const inv of invocations) {
    assert.ok(inv.subrequests <= BUDGET, `${inv.id} used ${inv.subrequests}`);
    const seen = counters.by_invocation[inv.id]?.requests ?? 0;
    assert.equal(seen, inv.summary.github_requests, `simulator counted ${seen} requests for ${inv.id}`);
    assert.ok(seen <= inv.subrequests);
  }
  assert.ok(run.max_subrequests <= BUDGET);

  // One JSONL object per invocation, each ending with its summary line.
  const logs = await p.stack.listLogs("logs/");
  const scraperLogs = logs.filter((l) => l.key.includes("/scraper-"));
  for (const inv of invocations) {
    const log = scraperLogs.find((l) => l.key === inv.log_key);
    assert.ok(log, `log ${inv.log_key} exists`);
    assert.match(log.key, /^logs\/\d{4}\/\d{2}\/\d{2}\/scraper-run-[0-9a-f]+-\d+\.jsonl$/);
    const lines = parseJsonl(log.text);
    const last = lines.at(-1);
    assert.equal(last.event, "summary");
    for (const field of ["repos_seen", "repos_changed", "repos_skipped", "issues_upserted", "issues_closed", "messages_queued", "subrequests_used", "continued", "duration_ms"]) {
      assert.ok(field in last.fields, `summary has ${field}`);
    }
    for (const line of lines) {
      for (const key of ["ts", "level", "run_id", "invocation", "event", "fields"]) assert.ok(key in line, `line has ${key}`);
    }
  }
  // Plus the trigger invocation's own log.
  assert.equal(scraperLogs.length, invocations.length + 1);

  // A main-pass step makes one query, and a second only for further pages:
  // the repos whose listed label resolved to another name are carried to the
  // retry pass with that name stored, and their issues asked there.
  const steps = invocations.flatMap((inv) =>
    parseJsonl(scraperLogs.find((l) => l.key === inv.log_key).text).filter((l) => l.event === "step"),
  );
  const main = steps.filter((l) => l.fields.pass === "main");
  for (const step of main) assert.ok(step.fields.queries <= 2, `a main-pass step made ${step.fields.queries} queries`);
  const carried = main.reduce((n, l) => n + l.fields.relabel_carried, 0);
  assert.ok(carried >= truth.special.label_hyphen_resolved.length, `${carried} re-resolved repos carried`);
  assert.ok(steps.some((l) => l.fields.pass === "retry"), "the carried repos were asked in the retry pass");
  const requests = invocations.reduce((n, inv) => n + inv.summary.github_requests, 0);
  assert.ok(requests <= 12, `${requests} GitHub requests for a full refresh`);
});

test("a rerun against unchanged upstream queues nothing and writes no repo or issue rows", async () => {
  const beforeRows = await snapshot(p);
  const run = await runScrape(p);
  runs.push(run);
  assert.equal(run.status, "completed");
  assert.equal(run.messages_queued, 0);
  assert.equal(run.repos_changed, 0);
  assert.equal(run.issues_upserted, 0);
  assert.equal(run.issues_closed, 0);
  assert.deepEqual(await snapshot(p), beforeRows, "no repo or issue row changed");
});

test("closed and edited issues upstream: exactly those are closed and re-queued", async () => {
  const candidates = [...expectedOpen().entries()].filter(([slug]) => !truth.special.paginated.includes(slug));
  const picks = candidates.slice(0, 5).map(([slug, numbers]) => ({ slug, number: numbers[0] }));
  assert.equal(picks.length, 5);
  const [c1, c2, c3, e1, e2] = picks;
  await p.sim.control("/_sim/mutate", {
    ops: [
      ...[c1, c2, c3].map((x) => ({ op: "close_issue", repo: x.slug, number: x.number })),
      { op: "edit_issue", repo: e1.slug, number: e1.number, title: "Edited title one" },
      { op: "edit_issue", repo: e2.slug, number: e2.number, title: "Edited title two" },
    ],
  });
  const run = await runScrape(p);
  assert.equal(run.status, "completed");
  assert.equal(run.issues_closed, 3);
  assert.equal(run.messages_queued, 2);
  assert.equal(run.issues_upserted, 2);
  const state = async ({ slug, number }) => {
    const [owner, name] = slug.split("/");
    return p.first(
      "SELECT i.state, i.title, i.processing_status FROM issues i JOIN repos r ON r.id = i.repo_id WHERE r.owner = ? AND r.name = ? AND i.number = ?",
      owner,
      name,
      number,
    );
  };
  for (const c of [c1, c2, c3]) assert.equal((await state(c)).state, "closed", `${c.slug}#${c.number}`);
  assert.equal((await state(e1)).title, "Edited title one");
  assert.equal((await state(e2)).title, "Edited title two");
  assert.equal((await state(e1)).processing_status, "pending");
});

test("no R2 log holds a configured secret", async () => {
  const logs = await p.stack.listLogs("logs/");
  assert.ok(logs.length > 0);
  for (const log of logs) {
    assert.ok(!log.text.includes("e2e-github-token"), `${log.key} leaks GITHUB_TOKEN`);
    assert.ok(!log.text.includes("e2e-admin-token"), `${log.key} leaks ADMIN_TOKEN`);
  }
});
