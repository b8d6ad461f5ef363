// A first run of the whole snapshot against the simulator's ENFORCED GitHub
// secondary limits (403 + retry-after past them), with the compiled workers.
//
// The snapshot is small next to GitHub's real limit (2,000 points a rolling
// minute: the processor's ~230 enrich queries never reach it), so each test
// shrinks the window to 10 s and sets the processor's share to match, keeping
// the deployed ratio: the processor paces itself to 2/3 of the limit and the
// scraper's burst fits in the rest. Miniflare runs queue batches one or two
// at a time (it ignores `max_concurrency`), so what is shown here is the
// pacing; the concurrency cap is the deployed setting's (4 batches, 4 enrich
// requests in flight, far below the 100 allowed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { invariantProblems, runScrape, simCounters, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";

const WINDOW_SECS = 10;

async function firstRun({ simPointsPerWindow, processorPointsPerMinute }) {
  const p = await startPipeline({
    // The hourly window is not what this suite is about.
    simArgs: ["--graphql-points", "1000000"],
    vars: {
      AI_BACKEND: "heuristic",
      GITHUB_POINTS_PER_MINUTE: String(processorPointsPerMinute),
      CONSUMER_CONCURRENCY: "4",
    },
  });
  await p.sim.control("/_sim/limits", { secondary: { graphql_points_per_minute: simPointsPerWindow, window_secs: WINDOW_SECS } });
  return p;
}

/** Every active repo and open issue, by processing status. */
async function statuses(p) {
  return p.all(
    "SELECT 'repo' AS kind, processing_status AS status, COUNT(*) AS n FROM repos WHERE active = 1 AND content_hash IS NOT NULL GROUP BY processing_status " +
      "UNION ALL SELECT 'issue', processing_status, COUNT(*) FROM issues WHERE state = 'open' GROUP BY processing_status ORDER BY 1, 2",
  );
}

test("paced to its share, a first run of the snapshot stays under the enforced per-minute limit and every item completes", async () => {
  // 150 points per 10 s is 900 a minute; the processor takes 600 of them.
  const p = await firstRun({ simPointsPerWindow: 150, processorPointsPerMinute: 600 });
  try {
    const run = await runScrape(p);
    assert.equal(run.status, "completed", run.error ?? "");
    await waitDrained(p, { timeoutMs: 900_000 });
    await waitQuiet(p);
    const counters = await simCounters(p);
    assert.deepEqual(counters.secondary_limited, {}, "no request was refused");
    for (const row of await statuses(p)) assert.equal(row.status, "completed", `${row.n} ${row.kind}s ${row.status}`);
    assert.deepEqual(await invariantProblems(p), []);
  } finally {
    await p.close();
  }
});

test("past a limit tighter than its pacing, refused requests wait as GitHub asks and every item still ends completed or failed with a reason", async () => {
  // 15 points per 10 s (90 a minute) against a processor paced for 600.
  const p = await firstRun({ simPointsPerWindow: 15, processorPointsPerMinute: 600 });
  try {
    const run = await runScrape(p, { timeoutMs: 600_000 });
    assert.equal(run.status, "completed", run.error ?? "");
    await waitDrained(p, { timeoutMs: 1_800_000 });
    await waitQuiet(p);
    const counters = await simCounters(p);
    assert.ok((counters.secondary_limited.graphql_points ?? 0) > 0, `the limit was hit: ${JSON.stringify(counters.secondary_limited)}`);
    for (const row of await statuses(p)) assert.ok(["completed", "failed"].includes(row.status), `${row.n} ${row.kind}s ${row.status}`);
    assert.deepEqual(await invariantProblems(p), [], "failed items carry their reason");
    const logs = (await p.stack.listLogs("logs/")).filter((l) => l.key.includes("/processor-"));
    const waits = logs.flatMap((l) => l.text.split("\n").filter(Boolean).map((x) => JSON.parse(x))).filter((x) => x.event === "enrich_failed");
    assert.ok(waits.length > 0);
    for (const w of waits) assert.match(w.fields.failure.reason, /secondary rate limit/);
  } finally {
    await p.close();
  }
});
