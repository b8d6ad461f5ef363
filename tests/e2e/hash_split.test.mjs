// The issue hash split and the availability verdict, on the compiled
// workers (scraper + processor + the simulator's Workers AI binding):
// - a new comment or assignee upstream rewrites the issue's row but queues
//   nothing and costs no AI call;
// - an edited title or body re-queues the issue and re-analyses it once;
// - an assignee or an open linked pull request makes the issue unavailable
//   after the next run; the PR closed unmerged makes it available again.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { runScrape, simCounters, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";

const AI_BINDING = { module: "crates/upstream-sim/js/ai-binding.mjs", env: {} };

let p;
let picked; // { comment, assignee, title, body, pr }: issues chosen by the test

before(async () => {
  // The pacing of AI calls (1 s apart per consumer) is shown by limits.test.mjs; here it would only wait.
  p = await startPipeline({ seed: 42, vars: { AI_BACKEND: "binding", AI_CALLS_PER_MINUTE: "240000" }, aiBinding: AI_BINDING });
  const first = await runScrape(p);
  assert.equal(first.status, "completed", first.error);
  await waitDrained(p);
  await waitQuiet(p);
  const rows = await p.all(
    "SELECT r.owner || '/' || r.name AS repo, i.number, i.id FROM issues i JOIN repos r ON r.id = i.repo_id \
     WHERE i.state = 'open' AND i.available = 1 AND i.assignee_count = 0 AND i.processing_status = 'completed' \
     ORDER BY r.owner, r.name, i.number LIMIT 5",
  );
  assert.equal(rows.length, 5, "five available, analysed issues to work with");
  const [comment, assignee, title, body, pr] = rows;
  picked = { comment, assignee, title, body, pr };
});

after(async () => {
  await p?.close();
});

const issue = (x) => p.first("SELECT * FROM issues WHERE id = ?", x.id);

async function rerun() {
  const before = await simCounters(p);
  const run = await runScrape(p);
  assert.equal(run.status, "completed", run.error);
  await waitDrained(p);
  await waitQuiet(p);
  const after = await simCounters(p);
  return { run, aiCalls: after.ai_calls_total - before.ai_calls_total };
}

test("comments and assignees update rows without queueing; title and body edits re-analyse exactly once", async () => {
  const before = {};
  for (const [k, x] of Object.entries(picked)) before[k] = await issue(x);
  const { ops } = {
    ops: [
      { op: "comment_issue", repo: picked.comment.repo, number: picked.comment.number },
      { op: "add_assignee", repo: picked.assignee.repo, number: picked.assignee.number, login: "a-contributor" },
      { op: "edit_issue", repo: picked.title.repo, number: picked.title.number, title: "A clearer title for beginners" },
      { op: "edit_issue", repo: picked.body.repo, number: picked.body.number, body: "Rewritten steps: start in src/lib.rs." },
      { op: "open_pull_request", repo: picked.pr.repo, closes: [picked.pr.number] },
    ],
  };
  const applied = await p.sim.control("/_sim/mutate", { ops });
  const prNumber = applied.applied[4].number;

  const { run, aiCalls } = await rerun();
  assert.equal(run.messages_queued, 2, "only the title and the body edit are queued");
  assert.equal(aiCalls, 2, "and each costs one AI call");

  const commented = await issue(picked.comment);
  assert.equal(commented.comment_count, before.comment.comment_count + 1, "the row has the new comment count");
  assert.notEqual(commented.state_hash, before.comment.state_hash);
  assert.equal(commented.content_hash, before.comment.content_hash);
  assert.equal(commented.analyzed_at, before.comment.analyzed_at, "no new analysis");

  const assigned = await issue(picked.assignee);
  assert.equal(assigned.assignee_count, 1);
  assert.equal(assigned.available, 0);
  assert.equal(assigned.availability, "assigned");
  assert.equal(assigned.analyzed_at, before.assignee.analyzed_at);

  for (const k of ["title", "body"]) {
    const edited = await issue(picked[k]);
    assert.notEqual(edited.content_hash, before[k].content_hash, `${k}: new content hash`);
    assert.equal(edited.processing_status, "completed", `${k}: analysed again`);
    assert.equal(edited.analysis_hash, edited.content_hash, `${k}: the analysis is of the new content`);
    assert.ok(edited.analyzed_at > before[k].analyzed_at, `${k}: analysed after the edit`);
  }
  const retitled = await issue(picked.title);
  assert.equal(retitled.title, "A clearer title for beginners");

  const linked = await issue(picked.pr);
  assert.equal(linked.linked_pr_count, 1);
  assert.equal(linked.available, 0);
  assert.equal(linked.availability, "linked_pr");

  // The pull request is closed without merging: the issue is free again.
  await p.sim.control("/_sim/mutate", { ops: [{ op: "close_pull_request", repo: picked.pr.repo, number: prNumber }] });
  const again = await rerun();
  assert.equal(again.run.messages_queued, 0, "availability changes queue nothing");
  assert.equal(again.aiCalls, 0);
  const freed = await issue(picked.pr);
  assert.equal(freed.linked_pr_count, 0);
  assert.equal(freed.available, 1);
  assert.equal(freed.availability, "ok");
  assert.equal(freed.state, "open");
});

test("an unchanged rerun writes nothing, queues nothing and calls no AI", async () => {
  const rows = await p.all("SELECT * FROM issues ORDER BY id");
  const { run, aiCalls } = await rerun();
  assert.equal(run.messages_queued, 0);
  assert.equal(aiCalls, 0);
  assert.equal(run.issues_upserted, 0);
  assert.deepEqual(await p.all("SELECT * FROM issues ORDER BY id"), rows);
});
