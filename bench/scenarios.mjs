// What the benchmark scenarios change upstream, shared by bench/pipeline.mjs
// and bench/cpu.mjs so both measure the same runs.

/**
 * The 5%-changed rerun: a new title on a deterministic 5% sample of the
 * open beginner issues (every 20th in (repo, number) order) and ~1% closed
 * (every 100th, offset 50), as simulator mutation ops.
 */
export function changeOps(truth) {
  const all = [];
  for (const r of truth.repos) {
    if (!r.listed || r.status !== "ok" || !r.beginner_label) continue;
    for (const n of r.open_beginner_issues) all.push({ repo: r.listed_slug, number: n });
  }
  all.sort((a, b) => (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : a.number - b.number));
  const edits = all.filter((_, i) => i % 20 === 0);
  const closes = all.filter((_, i) => i % 100 === 50);
  return {
    open_beginner_issues: all.length,
    ops: [
      ...edits.map((x) => ({ op: "edit_issue", repo: x.repo, number: x.number, title: `Benchmark edit of #${x.number}` })),
      ...closes.map((x) => ({ op: "close_issue", repo: x.repo, number: x.number })),
    ],
    edited: edits.length,
    closed: closes.length,
  };
}
