// The page (/app) in headless Chromium (Debian's chromium, driven by
// playwright-core), over a D1 seeded by a real scrape and processing run
// against the simulator (heuristic AI backend): it lists the available
// issues the API answers, a filter narrows the list to exactly what the API
// gives for it, and a screenshot is kept under target/e2e-artifacts/.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { runScrape, startPipeline, waitDrained, waitQuiet } from "./contribot.mjs";
import { REPO_ROOT } from "./harness.mjs";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.join(REPO_ROOT, "target/e2e-artifacts");
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let p;
let origin;
let context;
let profile;

before(async () => {
  p = await startPipeline({ vars: { AI_BACKEND: "heuristic" } });
  const run = await runScrape(p);
  assert.equal(run.status, "completed", run.error);
  await waitDrained(p);
  await waitQuiet(p);
  origin = (await p.stack.mf.ready).href.replace(/\/$/, "");
  // A fresh profile (--user-data-dir) every run; playwright passes it.
  profile = await mkdtemp(path.join(os.tmpdir(), "contribot-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 1400 },
  });
});

after(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await p?.close();
});

async function api(url) {
  const response = await p.stack.fetch(url);
  assert.equal(response.status, 200, url);
  return response.json();
}

const slug = (i) => `${i.repo}#${i.number}`;

/** What the list shows: one entry per rendered issue. */
function shownIssues(page) {
  return page.$$eval("#issues li.issue", (items) =>
    items.map((li) => ({
      slug: `${li.dataset.repo}#${li.dataset.number}`,
      language: li.dataset.language,
      difficulty: li.dataset.difficulty === "" ? null : Number(li.dataset.difficulty),
      labels: JSON.parse(li.dataset.labels),
      title: li.querySelector("h2").textContent,
      href: li.querySelector("h2 a")?.getAttribute("href") ?? null,
      intro: li.querySelector(".intro").textContent,
      steps: [...li.querySelectorAll(".steps li")].map((s) => s.textContent),
    })),
  );
}

/** A new tab that records script errors, console errors and failed loads. */
async function open() {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });
  return { page, problems };
}

/** Wait until the page has rendered the answer for exactly `query`. */
function settled(page, query) {
  return page.waitForFunction((q) => document.body.dataset.state === "ready" && document.body.dataset.query === q, query, {
    timeout: 30_000,
  });
}

test("the page lists available issues, and a language then a difficulty filter narrow it as the API does", async () => {
  const { page, problems } = await open();
  await page.goto(`${origin}/app`);
  await settled(page, "");

  const everything = await api("/api/issues");
  const first = await shownIssues(page);
  assert.deepEqual(first.map((i) => i.slug), everything.items.map(slug), "the first page of /api/issues");
  const [top] = everything.items;
  assert.equal(first[0].title, top.title);
  assert.equal(first[0].href, top.url);
  assert.equal(first[0].intro, top.intro);
  assert.deepEqual(first[0].steps, top.first_steps);
  assert.ok(first[0].steps.length >= 1, "first steps are shown");

  // The language select is filled from /api/facets; pick the commonest.
  const facets = await api("/api/facets");
  const language = facets.languages[0].name;
  await page.selectOption("#language", language);
  await settled(page, new URLSearchParams({ language }).toString());
  const byLanguage = await shownIssues(page);
  const wanted = await api(`/api/issues?language=${encodeURIComponent(language)}`);
  assert.ok(byLanguage.length > 0);
  assert.deepEqual(byLanguage.map((i) => i.slug), wanted.items.map(slug));
  for (const issue of byLanguage) assert.equal(issue.language, language, issue.slug);
  assert.equal(new URL(page.url()).searchParams.get("language"), language, "the filter is in the address bar");

  await page.selectOption("#difficulty_max", "2");
  const query = new URLSearchParams({ language, difficulty_max: "2" }).toString();
  await settled(page, query);
  const easy = await shownIssues(page);
  const wantedEasy = await api(`/api/issues?${query}`);
  assert.deepEqual(easy.map((i) => i.slug), wantedEasy.items.map(slug));
  for (const issue of easy) assert.ok(issue.difficulty !== null && issue.difficulty <= 2, `${issue.slug}: ${issue.difficulty}`);

  await mkdir(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, "page.png");
  await page.screenshot({ path: shot, fullPage: true });
  const png = await readFile(shot);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG was written");
  await page.close();
  assert.deepEqual(problems, []);
});

test("a label filter and the next page, from a link with the filter in its address", async () => {
  const facets = await api("/api/facets");
  const label = facets.labels[0].name;
  const { page, problems } = await open();
  await page.goto(`${origin}/app?label=${encodeURIComponent(label)}`);
  const query = new URLSearchParams({ label }).toString();
  await settled(page, query);
  assert.equal(await page.inputValue("#label"), label, "the select shows the address bar's label");
  const firstPage = await api(`/api/issues?${query}`);
  assert.ok(firstPage.next_cursor, "the label has more than one page of issues");
  const secondPage = await api(`/api/issues?${query}&cursor=${firstPage.next_cursor}`);
  await page.click("#more");
  await page.waitForFunction((n) => document.body.dataset.state === "ready" && document.querySelectorAll("#issues li.issue").length === n, firstPage.items.length + secondPage.items.length);
  const shown = await shownIssues(page);
  assert.deepEqual(shown.map((i) => i.slug), [...firstPage.items, ...secondPage.items].map(slug));
  for (const issue of shown) assert.ok(issue.labels.some((l) => l.toLowerCase() === label.toLowerCase()), issue.slug);
  await page.close();
  assert.deepEqual(problems, []);
});
