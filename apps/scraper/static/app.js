// The page: reads filters from the form (and the address bar), asks
// /api/issues for available issues, and renders them with text nodes only.
"use strict";

const FILTERS = ["language", "difficulty_max", "label", "sort"];
const form = document.getElementById("filters");
const list = document.getElementById("issues");
const status = document.getElementById("status");
const more = document.getElementById("more");
let generation = 0;
let nextCursor = null;
let shown = 0;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** Only GitHub links are links. */
function link(href, text) {
  return /^https:\/\/github\.com\//.test(href) ? el("a", { href, rel: "noopener" }, text) : document.createTextNode(text);
}

function query() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = form.elements[name].value;
    if (value && !(name === "sort" && value === "fresh")) params.set(name, value);
  }
  return params;
}

function addOptions(select, facets, wanted) {
  for (const facet of facets) {
    select.append(el("option", { value: facet.name }, `${facet.name} (${facet.issues})`));
  }
  if (wanted && ![...select.options].some((o) => o.value === wanted)) {
    select.append(el("option", { value: wanted }, wanted));
  }
  select.value = wanted ?? "";
}

function renderIssue(issue) {
  const [owner, name] = issue.repo.split("/");
  const meta = el(
    "p",
    { className: "meta" },
    link(`https://github.com/${owner}/${name}`, issue.repo),
    issue.language ? el("span", { className: "language" }, issue.language) : null,
    issue.difficulty
      ? el("span", { className: "difficulty" }, `Difficulty ${issue.difficulty}/5`)
      : el("span", { className: "difficulty pending" }, "Not rated yet"),
    ...issue.labels.map((l) => el("span", { className: "label" }, l)),
  );
  const steps = issue.first_steps.length
    ? [el("p", { className: "steps-title" }, "First steps"), el("ol", { className: "steps" }, ...issue.first_steps.map((s) => el("li", {}, s)))]
    : [];
  return el(
    "li",
    {
      className: "issue",
      "data-repo": issue.repo,
      "data-number": String(issue.number),
      "data-language": issue.language ?? "",
      "data-difficulty": issue.difficulty === null ? "" : String(issue.difficulty),
      "data-labels": JSON.stringify(issue.labels),
    },
    el("h2", {}, link(issue.url, issue.title)),
    meta,
    issue.intro ? el("p", { className: "intro" }, issue.intro) : el("p", { className: "intro pending" }, "Explanation coming soon."),
    ...steps,
  );
}

async function load({ append }) {
  const mine = ++generation;
  const params = query();
  if (append && nextCursor) params.set("cursor", nextCursor);
  document.body.dataset.state = "loading";
  status.textContent = "Loading…";
  more.hidden = true;
  try {
    const response = await fetch(`/api/issues?${params}`);
    const body = await response.json();
    if (mine !== generation) return;
    if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
    if (!append) {
      list.replaceChildren();
      shown = 0;
    }
    list.append(...body.items.map(renderIssue));
    shown += body.items.length;
    nextCursor = body.next_cursor;
    more.hidden = !nextCursor;
    status.textContent = shown === 0 ? "No available issues match these filters." : `${shown} issue${shown === 1 ? "" : "s"} shown${nextCursor ? ", more below" : ""}.`;
    document.body.dataset.query = query().toString();
    document.body.dataset.state = "ready";
  } catch (error) {
    if (mine !== generation) return;
    status.textContent = `Could not load issues: ${error.message}`;
    document.body.dataset.state = "error";
  }
}

function applyFilters() {
  const params = query();
  history.replaceState(null, "", params.size ? `?${params}` : location.pathname);
  nextCursor = null;
  load({ append: false });
}

async function start() {
  const wanted = new URLSearchParams(location.search);
  form.elements.difficulty_max.value = wanted.get("difficulty_max") ?? "";
  form.elements.sort.value = wanted.get("sort") === "easy" ? "easy" : "fresh";
  try {
    const facets = await (await fetch("/api/facets")).json();
    addOptions(form.elements.language, facets.languages, wanted.get("language"));
    addOptions(form.elements.label, facets.labels, wanted.get("label"));
  } catch {
    // Filters still work with the values in the address bar.
  }
  form.addEventListener("change", applyFilters);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  more.addEventListener("click", () => load({ append: true }));
  await load({ append: false });
}

start();
