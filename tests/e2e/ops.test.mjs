// The operator CLI (`target/debug/ops`, or OPS_BIN) against the compiled
// scraper in Miniflare, over real HTTP: status, a followed run, enqueue,
// reprocess, logs, and the errors an operator meets first.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { startPipeline } from "./contribot.mjs";
import { DEFAULT_SECRETS, REPO_ROOT } from "./harness.mjs";

const OPS_BIN =
  process.env.OPS_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, "target"), "debug/ops");
const TOKEN = DEFAULT_SECRETS.ADMIN_TOKEN;

let p;
let url;
let tmp;

before(async () => {
  await access(OPS_BIN).catch(() => {
    throw new Error(`${OPS_BIN} is missing: build it with \`cargo build -p contribot-ops\` (or set OPS_BIN)`);
  });
  p = await startPipeline({ configs: ["wrangler-scraper.toml"] });
  // Miniflare's `ready` resolves to the address its HTTP server listens on.
  url = String(await p.stack.mf.ready).replace(/\/$/, "");
  tmp = await mkdtemp(path.join(tmpdir(), "contribot-ops-"));
});

after(async () => {
  await p?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/**
 * Runs `ops ...args` with CONTRIBOT_URL and ADMIN_TOKEN pointing at the stack;
 * resolves to `{ code, stdout, stderr }`. `stopAfterMs` sends SIGTERM (for
 * --follow), `timeoutMs` fails the test.
 */
function ops(args, { token = TOKEN, env = {}, timeoutMs = 300_000, stopAfterMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(OPS_BIN, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CONTRIBOT_URL: url, ADMIN_TOKEN: token, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const stopper = stopAfterMs === undefined ? null : setTimeout(() => child.kill("SIGTERM"), stopAfterMs);
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ops ${args.join(" ")} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(killer);
      clearTimeout(stopper);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function show({ code, stdout, stderr }) {
  return `exit ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
}

function jsonLines(stdout) {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

test("status --json prints the API's report", async () => {
  const r = await ops(["status", "--json"]);
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  for (const key of ["repos", "issues", "backlog"]) assert.equal(typeof report[key], "object", key);
  for (const key of ["runs", "failed", "label_not_found", "invocations"]) assert.ok(Array.isArray(report[key]), key);
});

test("run starts a scrape, prints progress while it goes and exits 0 when it completes", async () => {
  const r = await ops(["run", "--interval", "0.5", "--timeout", "10m"], { timeoutMs: 11 * 60_000 });
  assert.equal(r.code, 0, show(r));
  const runId = /^started run (\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(runId, show(r));
  const progress = r.stdout.split("\n").filter((line) => /^\[[^\]]+\] \w+: \d+/.test(line));
  assert.ok(progress.length >= 2, `progress lines as the run advances\n${show(r)}`);
  assert.match(progress.at(-1), /completed: .*repos \d+/);
  assert.match(r.stdout, new RegExp(`^run ${runId} completed in .*repos seen`, "m"));

  const row = await p.first("SELECT status, repos_seen FROM scrape_runs WHERE id = ?", runId);
  assert.equal(row.status, "completed");
  assert.match(r.stdout, new RegExp(`${row.repos_seen} repos seen`));
});

test("run while a run is in progress follows that run instead of starting one", async () => {
  const started = await p.stack.fetch("/admin/run", {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(started.status, 202);
  const { run_id: runId } = await started.json();
  const r = await ops(["run", "--interval", "0.5"], { timeoutMs: 11 * 60_000 });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, new RegExp(`^a run is already in progress: following run ${runId}$`, "m"));
  assert.match(r.stdout, new RegExp(`^run ${runId} completed`, "m"));
});

test("status renders tables with the runs just made", async () => {
  const r = await ops(["status"]);
  assert.equal(r.code, 0, show(r));
  for (const heading of ["Processing status", "Backlog:", "Runs (latest first):", "Invocation budgets"]) {
    assert.ok(r.stdout.includes(heading), `${heading}\n${show(r)}`);
  }
  const last = await p.first("SELECT id FROM scrape_runs ORDER BY started_at DESC LIMIT 1");
  assert.match(r.stdout, new RegExp(`^${last.id}\\s+admin\\s+.*completed`, "m"));
});

test("enqueue reports enqueued, skipped and rejected URLs", async () => {
  const known = await p.first("SELECT owner || '/' || name AS slug FROM repos WHERE active = 1 LIMIT 1");
  const args = [
    "enqueue",
    "--json",
    "https://github.com/contribot-e2e/brand-new-one",
    "https://github.com/contribot-e2e/brand-new-two",
    `https://github.com/${known.slug}`,
    "not-a-github-url",
  ];
  const r = await ops(args);
  const reply = JSON.parse(r.stdout);
  assert.equal(reply.enqueued, 2, show(r));
  assert.equal(reply.skipped, 1, show(r));
  assert.equal(reply.errors.length, 1, show(r));
  assert.match(reply.errors[0], /not-a-github-url/);
  assert.equal(r.code, 1, `a rejected item fails the command\n${show(r)}`);
  assert.match(r.stderr, /1 of 4 items were rejected/);

  // A list file: comments, blanks, `URL label` and CSV lines; all known now.
  const list = path.join(tmp, "repos.txt");
  await writeFile(
    list,
    [
      "# repos to follow",
      "",
      "https://github.com/contribot-e2e/brand-new-one good first issue",
      'https://github.com/contribot-e2e/brand-new-three,"help wanted"',
    ].join("\n"),
  );
  const fromFile = await ops(["enqueue", "--file", list]);
  assert.equal(fromFile.code, 0, show(fromFile));
  assert.match(fromFile.stdout, /^enqueued 1, skipped 1 .*0 rejected/m);
});

test("reprocess --failed requeues failed items; an unknown repo is a clear 404", async () => {
  const r = await ops(["reprocess", "--failed"]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^requeued \d+ .*\(failed items\)/m);

  const json = await ops(["reprocess", "--failed", "--json"]);
  assert.equal(json.code, 0, show(json));
  assert.equal(typeof JSON.parse(json.stdout).requeued, "number");

  const unknown = await ops(["reprocess", "--repo", "contribot-e2e/never-listed"]);
  assert.equal(unknown.code, 1, show(unknown));
  assert.match(unknown.stderr, /HTTP 404/);
});

test("logs prints the scraper's lines readably, at most --limit of them", async () => {
  const r = await ops(["logs", "--service", "scraper", "--limit", "5"]);
  assert.equal(r.code, 0, show(r));
  const lines = r.stdout.split("\n").filter(Boolean);
  assert.ok(lines.length >= 1 && lines.length <= 5, show(r));
  for (const line of lines) {
    assert.match(line, /^\S+ (DEBUG|INFO |WARN |ERROR) scraper\/\S+ \S+/, line);
  }
  assert.match(r.stderr, /truncated: .*--cursor/, "more than 5 lines exist, so the answer says where to go on");

  const raw = await ops(["logs", "--service", "scraper", "--limit", "5", "--json"]);
  assert.equal(raw.code, 0, show(raw));
  const records = jsonLines(raw.stdout);
  assert.ok(records.some((rec) => rec.event === "truncated"), "--json keeps the API's truncation line");
  for (const rec of records.filter((rec) => rec.event !== "truncated")) {
    assert.ok(rec.ts && rec.level && rec.event, JSON.stringify(rec));
  }
});

test("logs --follow prints each line once across polls", async () => {
  const page = await ops(["logs", "--service", "scraper", "--json"]);
  assert.equal(page.code, 0, show(page));
  const firstPage = jsonLines(page.stdout).filter((rec) => rec.event !== "truncated").length;
  // Several polls (every 0.3 s) of a day nothing is writing to: no record twice.
  const followed = await ops(["logs", "--service", "scraper", "--json", "--follow", "--interval", "0.3"], {
    stopAfterMs: 3_000,
  });
  assert.equal(followed.signal, "SIGTERM", show(followed));
  const lines = followed.stdout.split("\n").filter(Boolean);
  assert.ok(lines.length >= firstPage, `follow reads every page: ${lines.length} < ${firstPage}`);
  assert.equal(new Set(lines).size, lines.length, "no record printed twice");
  assert.ok(!lines.some((line) => JSON.parse(line).event === "truncated"), "follow pages past truncation");
});

test("a wrong token exits 1 and points at ADMIN_TOKEN", async () => {
  const r = await ops(["status"], { token: "not-the-token" });
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /unauthorized: check ADMIN_TOKEN \(the token the scraper was deployed with\)/);
});

test("an unreachable URL exits 3 and names it", async () => {
  const r = await ops(["status", "--url", "http://127.0.0.1:1"]);
  assert.equal(r.code, 3, show(r));
  assert.match(r.stderr, /http:\/\/127\.0\.0\.1:1\/admin\/status/);
  assert.match(r.stderr, /--url \/ CONTRIBOT_URL/);
});
