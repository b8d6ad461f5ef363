// What real GitHub does routinely, on the compiled scraper: a token revoked
// mid-run, a FORBIDDEN and a timing-out repo among healthy ones, partial
// GraphQL data beside a stale sweep, and one continuation delivered twice at
// the same time. After each: the run ends (completed, or failed with its
// reason), no issue open upstream is closed, no row is duplicated, and every
// invariant of the fault matrix holds.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { DEFAULT_SECRETS } from "./harness.mjs";
import { CRON, invariantProblems, openIssuesBySlug, parseJsonl, runScrape, setFaults, startPipeline } from "./contribot.mjs";

const TOKEN = DEFAULT_SECRETS.GITHUB_TOKEN;
const ADMIN = { authorization: `Bearer ${DEFAULT_SECRETS.ADMIN_TOKEN}` };

const open = [];
after(async () => {
  for (const p of open) await p.close();
});

async function scraper(options = {}) {
  const p = await startPipeline({ seed: 42, configs: ["wrangler-scraper.toml"], ...options });
  open.push(p);
  return p;
}

/** Open issue numbers per listed slug, as the simulator has them now. */
async function upstreamOpen(p) {
  const truth = await p.sim.control("/_sim/truth");
  const out = new Map();
  for (const r of truth.repos) {
    if (!r.listed || r.status === "missing" || !r.beginner_label) continue;
    if (r.open_beginner_issues.length) out.set(r.listed_slug, new Set(r.open_beginner_issues));
  }
  return out;
}

/** Issues open upstream that D1 holds as closed. */
async function wronglyClosed(p) {
  const up = await upstreamOpen(p);
  const rows = await p.all(
    "SELECT r.owner || '/' || r.name AS slug, i.number FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'closed'",
  );
  return rows.filter((r) => up.get(r.slug)?.has(r.number)).map((r) => `${r.slug}#${r.number}`);
}

async function assertInvariants(p) {
  assert.deepEqual(await invariantProblems(p), []);
  assert.deepEqual(await wronglyClosed(p), [], "no issue open upstream is closed");
}

/** Repos with the most open beginner issues upstream, by slug. */
async function busiestRepos(p, n) {
  const up = await upstreamOpen(p);
  return [...up.entries()].sort((a, b) => b[1].size - a[1].size || (a[0] < b[0] ? -1 : 1)).slice(0, n).map(([slug]) => slug);
}

describe("a permanent failure of the whole API", () => {
  test("a token revoked mid-run ends the run failed with GitHub's reason, and the next run starts fresh", async () => {
    const p = await scraper();
    // Two GraphQL answers get through, then every GitHub route says 401.
    await p.sim.control("/_sim/tokens/revoke", { token: TOKEN, after_requests: 2 });
    const run = await runScrape(p, { timeoutMs: 120_000 });
    assert.equal(run.status, "failed");
    assert.match(run.error, /401/);
    assert.match(run.error, /Bad credentials/);
    assert.ok(run.invocations <= 6, `ended promptly, in ${run.invocations} invocations`);
    // Nothing was swept on the way out.
    await assertInvariants(p);

    // Operators see the reason.
    const status = await (await p.stack.fetch("/admin/status", { headers: ADMIN })).json();
    const shown = status.runs.find((r) => r.id === run.id);
    assert.equal(shown.status, "failed");
    assert.match(shown.error, /Bad credentials/);
    const logs = await p.stack.listLogs("logs/");
    const lines = logs.flatMap((l) => parseJsonl(l.text));
    assert.ok(lines.some((l) => l.event === "run_failed" && /Bad credentials/.test(JSON.stringify(l.fields))), "the R2 log says why");

    // With the token back, the next cron starts a new run that completes.
    await p.sim.control("/_sim/tokens/restore", { token: TOKEN });
    const next = await runScrape(p);
    assert.notEqual(next.id, run.id);
    assert.equal(next.status, "completed", next.error);
    await assertInvariants(p);
  });
});

describe("one poison repo never holds up the others", () => {
  test("a FORBIDDEN repo and a timing-out repo are recorded as failed; the rest completes and their issues stay open", async () => {
    const p = await scraper();
    const first = await runScrape(p);
    assert.equal(first.status, "completed", first.error);
    const [forbidden, timingOut] = await busiestRepos(p, 2);
    const before = await openIssuesBySlug(p);

    await setFaults(p, [
      { route: "graphql", kind: "alias_forbidden", rate: 1, repos: [forbidden] },
      { route: "graphql", kind: "alias_timeout", rate: 1, repos: [timingOut] },
    ]);
    const run = await runScrape(p);
    assert.equal(run.status, "completed", `the run ends: ${run.error}`);

    const row = async (slug) => {
      const [owner, name] = slug.split("/");
      return p.first("SELECT scrape_failures, scrape_error FROM repos WHERE owner = ? AND name = ?", owner, name);
    };
    const f = await row(forbidden);
    assert.equal(f.scrape_failures, 1, "FORBIDDEN is permanent: tried once");
    assert.match(f.scrape_error, /FORBIDDEN/);
    assert.match(f.scrape_error, /SAML/);
    const t = await row(timingOut);
    assert.equal(t.scrape_failures, 3, "a timeout is retried a bounded number of times");
    assert.match(t.scrape_error, /gave up after 3 attempt/);
    assert.match(t.scrape_error, /Something went wrong/);

    const afterRun = await openIssuesBySlug(p);
    assert.deepEqual(afterRun.get(forbidden), before.get(forbidden), "the FORBIDDEN repo's issues are kept open");
    assert.deepEqual(afterRun.get(timingOut), before.get(timingOut), "the timing-out repo's issues are kept open");
    // Every other repo was refreshed: its open issues are upstream's.
    const up = await upstreamOpen(p);
    for (const [slug, numbers] of up) {
      if (slug === forbidden || slug === timingOut) continue;
      assert.deepEqual(afterRun.get(slug), [...numbers].sort((a, b) => a - b), slug);
    }
    await assertInvariants(p);

    // Healthy again: the next run clears the failures.
    await setFaults(p, []);
    const healed = await runScrape(p);
    assert.equal(healed.status, "completed", healed.error);
    assert.equal((await row(forbidden)).scrape_failures, 0);
    assert.equal((await row(timingOut)).scrape_error, null);
  });
});

describe("partial data never closes an issue", () => {
  test("null nodes and a next page without a cursor beside a stale sweep close nothing that is open upstream", async () => {
    const p = await scraper();
    const first = await runScrape(p);
    assert.equal(first.status, "completed", first.error);
    // Upstream really closes some issues, so the sweep has work to do...
    const truth = await p.sim.control("/_sim/truth");
    const withIssues = truth.repos.filter((r) => r.listed && r.status !== "missing" && r.beginner_label && r.open_beginner_issues.length >= 2);
    const closed = withIssues.slice(0, 5).map((r) => ({ repo: r.listed_slug, number: r.open_beginner_issues[0] }));
    await p.sim.control("/_sim/mutate", { ops: closed.map((c) => ({ op: "close_issue", ...c })) });
    // ...while answers come back partial.
    await setFaults(p, [
      { route: "graphql", kind: "null_nodes", rate: 0.05 },
      { route: "graphql", kind: "null_end_cursor", rate: 0.5 },
    ]);
    const run = await runScrape(p);
    assert.equal(run.status, "completed", `the run ends: ${run.error}`);
    await assertInvariants(p);
    const partial = await p.all("SELECT owner || '/' || name AS slug, scrape_error FROM repos WHERE scrape_error IS NOT NULL");
    assert.ok(partial.length > 0, "some repos came back partial");
    for (const r of partial) assert.match(r.scrape_error, /partial/, r.slug);
  });
});

describe("duplicate continuations in flight at the same time", () => {
  test("two simultaneous deliveries of one continuation advance one chain", async () => {
    const p = await scraper();
    await p.stack.scheduled(CRON);
    const started = await p.first("SELECT id FROM scrape_runs WHERE status = 'running'");
    const body = {
      type: "continue_scraping",
      v: 1,
      cursor: { run_id: started.id, source: "awesome-for-beginners", phase: "list", position: 0, owner: null, name: null, seq: 0 },
    };
    const worker = await p.stack.mf.getWorker("contribot-scraper");
    const delivery = () => worker.queue("contribot-scrape", [{ id: "dup-continuation", timestamp: new Date(), body, attempts: 1 }]);
    // Both at once, racing the queue's own delivery of the cron's message.
    await Promise.all([delivery(), delivery()]);
    const run = await p.stack.waitFor(
      async () => {
        const r = await p.first("SELECT * FROM scrape_runs WHERE id = ?", started.id);
        return r.status !== "running" ? r : null;
      },
      { timeoutMs: 240_000, message: "run to finish" },
    );
    assert.equal(run.status, "completed", run.error);

    // Each continuation of the chain worked once.
    const logs = await p.stack.listLogs("logs/");
    const lines = logs.flatMap((l) => parseJsonl(l.text));
    const seqs = lines.filter((l) => l.event === "invocation_started").map((l) => l.fields.cursor.seq);
    assert.equal(new Set(seqs).size, seqs.length, `a continuation worked twice: ${seqs.join(",")}`);
    assert.ok(lines.some((l) => l.event === "continuation_deferred" || l.event === "continuation_skipped"), "the duplicates stood aside");
    assert.equal(run.invocations, seqs.length, "the run counts one invocation per continuation");

    // Counters are not doubled: one message per item.
    const items = await p.first(
      "SELECT (SELECT COUNT(*) FROM repos WHERE content_hash IS NOT NULL) + (SELECT COUNT(*) FROM issues WHERE state = 'open') AS n",
    );
    assert.equal(run.messages_queued, items.n);
    await assertInvariants(p);
  });
});
