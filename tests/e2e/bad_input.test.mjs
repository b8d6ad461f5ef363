// Bad input, end to end: a broken awesome list, malformed queue messages on
// both queues, and secrets that must never reach the R2 logs.
//
// One full pipeline (scraper + processor + AI stand-in) over a trimmed list
// (a dozen repos, so each run takes seconds). Its first good run sets the
// last good repo set every later broken list is measured against.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { isDeepStrictEqual } from "node:util";

import { CRON, parseJsonl, runScrape, setFaults, simCounters, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";

const SECRETS = { GITHUB_TOKEN: "ghp_e2eSecretToken123456", ADMIN_TOKEN: "e2e-admin-SecretToken-987654" };
const KEEP = 12;

let p;
let kept; // listed slugs of the trimmed list
let dropped; // listed slugs removed from it
let good; // the last good state: active repos and open issues

before(async () => {
  p = await startPipeline({
    seed: 42,
    vars: { AI_BACKEND: "binding" },
    aiBinding: { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} },
    secrets: SECRETS,
  });
  const truth = await p.sim.control("/_sim/truth");
  const plain = truth.repos.filter(
    (r) => r.listed && r.status === "ok" && r.beginner_label && r.open_beginner_issues.length >= 1 && r.open_beginner_issues.length <= 15,
  );
  kept = plain.slice(0, KEEP).map((r) => r.listed_slug);
  kept.push(truth.special.missing[0]); // one repo GitHub does not have
  dropped = truth.repos.filter((r) => r.listed && !kept.includes(r.listed_slug)).map((r) => r.listed_slug);
  await trimmedList();
});

after(async () => {
  await p?.close();
});

/** The list back to its seeded start, then trimmed to `kept` (one atomic mutation). */
async function trimmedList(extraOps = []) {
  await p.sim.control("/_sim/mutate", {
    ops: [
      { op: "restore_list" },
      ...dropped.map((slug) => ({ op: "remove_list_entry", link: `https://github.com/${slug}` })),
      ...extraOps,
    ],
  });
}

/** POST /admin/run with the admin token; resolves to the finished run row. */
async function adminRun() {
  const res = await p.stack.fetch("/admin/run", { method: "POST", headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` } });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return p.stack.waitFor(
    async () => {
      const r = await p.first("SELECT * FROM scrape_runs WHERE id = ?", body.run_id);
      return r && r.status !== "running" ? r : null;
    },
    { timeoutMs: 120_000, message: "admin run to finish" },
  );
}

/** Every log line of a run's scraper invocations. */
async function runLog(runId) {
  const logs = await p.stack.listLogs("logs/");
  return logs.filter((l) => l.key.includes(`/scraper-${runId}-`)).flatMap((l) => parseJsonl(l.text));
}

async function activeState() {
  return {
    repos: await p.all("SELECT owner || '/' || name AS slug, upstream_status, label_status, resolved_label FROM repos WHERE active = 1 ORDER BY slug"),
    issues: await p.all(
      "SELECT r.owner || '/' || r.name AS repo, i.number, i.state, i.content_hash FROM issues i JOIN repos r ON r.id = i.repo_id ORDER BY repo, i.number",
    ),
  };
}

const slugsOf = (state) => state.repos.map((r) => r.slug);

/** A dead letter's recorded body (JSON text, keys in any order) is `body`. */
function sameBody(text, body) {
  try {
    return isDeepStrictEqual(JSON.parse(text), body);
  } catch {
    return false;
  }
}

test("a good run over the trimmed list stores and analyses every listed repo", async () => {
  const run = await adminRun();
  assert.equal(run.status, "completed", `${run.error}`);
  await waitDrained(p);
  await waitQuiet(p);
  good = await activeState();
  assert.deepEqual(slugsOf(good), [...kept].sort());
  assert.ok(good.issues.length >= KEEP, `${good.issues.length} issues`);
  const pending = await p.first("SELECT COUNT(*) AS n FROM issues WHERE processing_status <> 'completed'");
  assert.equal(pending.n, 0);
});

test("data.json is not valid JSON but the README is served: the run completes from the README and logs the fallback", async () => {
  await p.sim.control("/_sim/mutate", { ops: [{ op: "break_list", mode: "invalid_json" }] });
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `${run.error}`);
  assert.equal(run.error, null);
  const lines = await runLog(run.id);
  const fallback = lines.filter((l) => l.event === "list_fallback");
  assert.ok(fallback.length >= 1, "the fallback is logged");
  assert.match(fallback[0].fields.reason, /data\.json/);
  assert.equal(fallback[0].fields.used, "README.md");
  assert.ok(lines.some((l) => (l.event === "list_synced" || l.event === "list_unchanged") && l.fields.origin === "README.md"));
  assert.deepEqual(slugsOf(await activeState()), slugsOf(good), "the README names the same repos");
  const source = await p.first("SELECT last_error FROM data_sources WHERE id = 'awesome-for-beginners'");
  assert.equal(source.last_error, null);
});

test("data.json and README both unusable: the last good repo set stays, the run ends failed naming the list", async () => {
  // data.json stays broken; the README fetch now fails too.
  await setFaults(p, [{ route: "raw", kind: "status_500", rate: 1.0 }]);
  try {
    const run = await runScrape(p);
    assert.equal(run.status, "failed");
    assert.match(run.error, /list unavailable, kept the last good repo set/);
    assert.match(run.error, /data\.json/);
    assert.match(run.error, /README/);
    const lines = await runLog(run.id);
    assert.ok(lines.some((l) => l.event === "list_failed" && /data\.json/.test(l.fields.reason)));
    const source = await p.first("SELECT last_error FROM data_sources WHERE id = 'awesome-for-beginners'");
    assert.match(source.last_error, /list unavailable/);
    assert.deepEqual(await activeState(), good, "repos stay active and their issues stay");
  } finally {
    await setFaults(p, []);
    await trimmedList();
  }
});

test("data.json unreachable and the README fallback cut off in transit: the repos it omits stay listed", async () => {
  // data.json fails every attempt; the README arrives with only its first half.
  await setFaults(p, [
    { route: "raw", kind: "status_500", rate: 1.0, max_count: 3 },
    { route: "raw", kind: "truncated_json", rate: 1.0, max_count: 1 },
  ]);
  try {
    const run = await runScrape(p);
    const lines = await runLog(run.id);
    const synced = lines.find((l) => l.event === "list_synced");
    assert.ok(synced, `the cut README still parsed: ${lines.map((l) => l.event).join(", ")}`);
    assert.equal(synced.fields.origin, "README.md");
    assert.ok(synced.fields.repos < kept.length, `the cut README names ${synced.fields.repos} of ${kept.length} repos`);
    assert.equal(synced.fields.deactivated, 0);
    const deferred = lines.find((l) => l.event === "list_removals_deferred");
    assert.ok(deferred, "the skipped removals are logged");
    assert.equal(deferred.fields.repos, kept.length - synced.fields.repos);
    assert.equal(run.status, "completed", `${run.error}`);
    assert.deepEqual(await activeState(), good, "no repo delisted, no issue closed");
  } finally {
    await setFaults(p, []);
  }
});

test("an entry without a link is skipped with its reason; every other repo is kept", async () => {
  await trimmedList([{ op: "break_list", mode: "entry_without_link" }]);
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `${run.error}`);
  const lines = await runLog(run.id);
  const skipped = lines.filter((l) => l.event === "list_entry_skipped" && l.fields.name === "Linkless Project");
  assert.equal(skipped.length, 1);
  assert.match(skipped[0].fields.reason, /link/i);
  assert.ok(run.repos_skipped >= 1);
  assert.deepEqual(slugsOf(await activeState()), slugsOf(good));
});

test("entries on other hosts are skipped, each with a reason naming why; every GitHub repo is kept", async () => {
  await trimmedList([
    { op: "break_list", mode: "non_github_hosts" },
    // A name carrying a secret: the skip line logs names, and must scrub it.
    { op: "add_list_entry", link: "https://gitlab.com/leaky/project", label: "good first issue", name: `Leaky ${SECRETS.ADMIN_TOKEN}`, description: `token ${SECRETS.GITHUB_TOKEN}`, technologies: ["Go"] },
  ]);
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `${run.error}`);
  const lines = await runLog(run.id);
  const skipped = new Map(lines.filter((l) => l.event === "list_entry_skipped").map((l) => [l.fields.name, l.fields.reason]));
  const expected = {
    "Codeberg Forge": /codeberg\.org/,
    "Bitbucket Thing": /bitbucket\.org/,
    "GitLab Runner": /gitlab\.com/,
    "Look-alike Host": /github\.com\.example\.org/,
    "Sourcehut Tool": /git\.sr\.ht/,
    "Profile Only": /repositor|owner|name|path/i,
  };
  for (const [name, reason] of Object.entries(expected)) {
    assert.ok(skipped.has(name), `${name} skipped (skipped: ${[...skipped.keys()].join(", ")})`);
    assert.match(skipped.get(name), reason, name);
  }
  const summary = lines.filter((l) => l.event === "summary").map((l) => l.fields.repos_skipped ?? 0);
  assert.ok(summary.reduce((a, b) => a + b, 0) >= Object.keys(expected).length, "repos_skipped counts them");
  assert.ok(run.repos_skipped >= Object.keys(expected).length);
  assert.deepEqual(slugsOf(await activeState()), slugsOf(good));
});

test("huge descriptions (1 MiB and three of 1.9 MB, a 6 MB list) are cut with a warning; every repo is kept", async () => {
  const big = (n) => `${n} `.padEnd(1_900_000, "very long description ");
  const added = dropped.slice(0, 3);
  await trimmedList([{ op: "break_list", mode: "huge_description" }]);
  // The control API takes bodies up to 2 MB: one entry per request.
  for (const [k, slug] of added.entries()) {
    await p.sim.control("/_sim/mutate", {
      ops: [{ op: "add_list_entry", link: `https://github.com/${slug}`, label: "good first issue", name: `Big ${k}`, description: big(k), technologies: ["Rust"] }],
    });
  }
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `${run.error}`);
  const lines = await runLog(run.id);
  const cut = lines.filter((l) => l.event === "list_warning" && /description cut to 1000 characters/.test(l.fields.warning));
  assert.ok(cut.length >= 4, `${cut.length} description warnings`);
  const long = await p.first("SELECT MAX(LENGTH(list_description)) AS n FROM repos");
  assert.ok(long.n <= 1000, `longest stored description ${long.n}`);
  const active = slugsOf(await activeState());
  assert.deepEqual(active, [...kept, ...added].sort(), "the trimmed list plus the three added repos");
  for (const slug of added) {
    const [owner, name] = slug.split("/");
    const row = await p.first("SELECT upstream_status, LENGTH(list_description) AS n FROM repos WHERE owner = ? AND name = ?", owner, name);
    assert.equal(row.upstream_status, "ok", slug);
    assert.equal(row.n, 1000, slug);
  }
  await trimmedList();
});

test("malformed messages on the processing queue are dead-lettered with their reason and acked; the rest of the batch is processed", async () => {
  await waitDrained(p);
  await waitQuiet(p);
  // Two real items whose analysis is gone (and the hash of the text it was
  // made from, which would let the processor keep it): valid work in the same batch.
  const repo = await p.first("SELECT id, owner, name, content_hash, priority FROM repos WHERE active = 1 AND content_hash IS NOT NULL ORDER BY id LIMIT 1");
  const issue = await p.first(
    "SELECT i.id, r.owner, r.name, i.number, i.content_hash, i.priority FROM issues i JOIN repos r ON r.id = i.repo_id WHERE i.state = 'open' AND r.active = 1 ORDER BY i.id LIMIT 1",
  );
  await p.db.batch([
    p.db.prepare("UPDATE repos SET processing_status = 'pending', analysis_hash = NULL WHERE id = ?").bind(repo.id),
    p.db.prepare("UPDATE issues SET processing_status = 'pending', analysis_hash = NULL, body_hash = NULL WHERE id = ?").bind(issue.id),
  ]);
  const hash = "a".repeat(64);
  const cursor = { run_id: "run-e2e", source: "awesome-for-beginners", phase: "repos", position: 0, owner: null, name: null, seq: 3 };
  const bodies = [
    { type: "repo", v: 1, owner: repo.owner, name: repo.name, content_hash: repo.content_hash, priority: repo.priority },
    "not an object",
    { type: "issue", v: 1, owner: issue.owner, name: issue.name, number: issue.number, content_hash: issue.content_hash, priority: issue.priority },
    [1, 2, 3],
    { type: SECRETS.GITHUB_TOKEN, v: 1 },
    { type: "pull_request", v: 1, owner: "o", name: "r" },
    { type: "issue", v: 1, owner: "o", name: "r", number: -3, content_hash: "zz", priority: 1 },
    { type: "repo", v: 2, owner: repo.owner, name: repo.name, content_hash: repo.content_hash, priority: 0 },
    { type: "continue_scraping", v: 1, cursor },
    { type: "repo", v: 1, owner: "nobody-e2e", name: "nothing-here", content_hash: hash, priority: 0 },
  ];
  const expected = [
    null,
    /no string `type` field/,
    null,
    /no string `type` field/,
    /unknown message type/,
    /unknown message type `pull_request`/,
    /invalid `issue` message/,
    /unsupported message version 2/,
    /belongs on the scraper's own queue/,
    /repo nobody-e2e\/nothing-here is not in D1/,
  ];
  const invBefore = (await p.first("SELECT COUNT(*) AS n FROM invocations WHERE service = 'processor'")).n;
  const aiBefore = (await simCounters(p)).ai_calls_total;
  const producer = await p.stack.producer("PROCESSING_QUEUE", "contribot-scraper");
  await producer.sendBatch(bodies.map((body) => ({ body })));
  const rows = await p.stack.waitFor(
    async () => {
      const r = await p.all("SELECT * FROM dead_letters WHERE queue = 'processing' ORDER BY id");
      return r.length >= 8 ? r : null;
    },
    { timeoutMs: 60_000, message: "eight dead letters" },
  );
  await waitQuiet(p);
  assert.equal(rows.length, 8);
  for (const [i, reason] of expected.entries()) {
    if (!reason) continue;
    const row = rows.find((r) => sameBody(r.body, bodies[i]));
    assert.ok(row, `message ${i} (${JSON.stringify(bodies[i]).slice(0, 80)}) recorded`);
    assert.match(row.reason, reason, `message ${i}`);
  }
  // One batch: the two real items completed, the eight others acked, none retried.
  const batches = await p.all("SELECT summary FROM invocations WHERE service = 'processor' ORDER BY started_at");
  const mine = batches.slice(invBefore).map((b) => JSON.parse(b.summary));
  assert.equal(mine.length, 1, JSON.stringify(mine));
  assert.equal(mine[0].messages, 10);
  assert.equal(mine[0].acked, 10);
  assert.equal(mine[0].retried, 0);
  assert.equal(mine[0].completed, 2);
  assert.equal(mine[0].failed, 8);
  assert.equal((await simCounters(p)).ai_calls_total - aiBefore, 2, "one AI call per real item");
  for (const id of [repo.id]) {
    const r = await p.first("SELECT processing_status, analysis_hash = content_hash AS fresh FROM repos WHERE id = ?", id);
    assert.deepEqual({ ...r }, { processing_status: "completed", fresh: 1 });
  }
  const i = await p.first("SELECT processing_status, analysis_hash = content_hash AS fresh FROM issues WHERE id = ?", issue.id);
  assert.deepEqual({ ...i }, { processing_status: "completed", fresh: 1 });
  // Acked means delivered once: no delivery counted twice, even after the retry delay.
  await new Promise((r) => setTimeout(r, 11_000));
  const twice = await p.all("SELECT message_id, attempts FROM deliveries WHERE queue = 'processing' AND attempts > 1");
  assert.deepEqual(twice, []);
  assert.equal((await p.first("SELECT COUNT(*) AS n FROM invocations WHERE service = 'processor'")).n, invBefore + 1);
});

test("malformed messages on the scrape queue are dead-lettered with their reason and acked; runs carry on", async () => {
  const cursor = (over) => ({ run_id: "run-e2e-x", source: "awesome-for-beginners", phase: "repos", position: 0, owner: null, name: null, seq: 0, ...over });
  const bodies = [
    "garbage",
    { type: "repo", v: 1, owner: "o", name: "r", content_hash: "b".repeat(64), priority: 0 },
    { type: "continue_scraping", v: 9, cursor: cursor({}) },
    { type: "continue_scraping", v: 1, cursor: cursor({ run_id: "" }) },
    { type: "continue_scraping", v: 1, cursor: { run_id: "run-e2e-x" } },
    // Well-formed, for a run that does not exist: logged and dropped.
    { type: "continue_scraping", v: 1, cursor: cursor({ run_id: "run-e2e-unknown" }) },
  ];
  const expected = [
    /no string `type` field/,
    /unexpected `repo` message on the scrape queue/,
    /unsupported message version 9/,
    /cursor\.run_id must be 1\.\.=64 characters/,
    /invalid `continue_scraping` message/,
  ];
  const producer = await p.stack.producer("SCRAPE_QUEUE", "contribot-scraper");
  await producer.sendBatch(bodies.map((body) => ({ body })));
  const rows = await p.stack.waitFor(
    async () => {
      const r = await p.all("SELECT * FROM dead_letters WHERE queue LIKE '%scrape%' ORDER BY id");
      return r.length >= expected.length ? r : null;
    },
    { timeoutMs: 60_000, message: "scrape-queue dead letters" },
  );
  for (const [i, reason] of expected.entries()) {
    const row = rows.find((r) => sameBody(r.body, bodies[i]));
    assert.ok(row, `message ${i} recorded`);
    assert.match(row.reason, reason, `message ${i}`);
    assert.equal(row.queue, "contribot-scrape");
  }
  // The unknown run's continuation was logged and acked, not dead-lettered.
  const skipped = (l) => l.event === "continuation_skipped" && /run not active/.test(l.fields.reason);
  await p.stack.waitFor(async () => (await runLog("run-e2e-unknown")).some(skipped), {
    timeoutMs: 30_000,
    message: "the unknown run's continuation to be logged",
  });
  // The queue is not stuck: a real run after them completes.
  const run = await runScrape(p);
  assert.equal(run.status, "completed", `${run.error}`);
  // Acked, never retried into the scrape dead-letter queue.
  await new Promise((r) => setTimeout(r, 6_000));
  const all = await p.all("SELECT queue, reason FROM dead_letters WHERE queue LIKE '%scrape%'");
  assert.equal(all.length, expected.length, JSON.stringify(all));
});

test("no R2 log holds a configured secret, though secrets passed through admin calls, list entries and queue messages", async () => {
  // One more admin call with a wrong token, then with the right one.
  const wrong = await p.stack.fetch("/admin/status", { headers: { authorization: `Bearer ${SECRETS.GITHUB_TOKEN}` } });
  assert.equal(wrong.status, 401);
  const ok = await p.stack.fetch("/admin/status", { headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}` } });
  assert.equal(ok.status, 200);
  await ok.text();
  const logs = await p.stack.listLogs("logs/");
  assert.ok(logs.length > 10, `${logs.length} log objects`);
  let redacted = 0;
  for (const log of logs) {
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.ok(!log.text.includes(value), `${log.key} leaks ${name}`);
    }
    if (log.text.includes("[redacted]")) redacted++;
  }
  assert.ok(redacted >= 2, "the secrets that reached log lines were redacted");
});

void CRON;
