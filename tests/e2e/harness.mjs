// End-to-end harness: runs the COMPILED workers (apps/*/build, from worker-build) in
// Miniflare, configured from the same wrangler-*.toml files that deploy them,
// and starts the upstream simulator they talk to.
//
//   const sim = await startSimulator({ seed: 7 });
//   const stack = await startStack({ vars: { GITHUB_API_URL: sim.url }, aiBinding: { run } });
//   await stack.applyMigrations();
//   await stack.scheduled("0 */12 * * *");
//   await stack.waitFor(async () => (await stack.db.prepare("SELECT ...").first()) ?? false);
//   await stack.dispose(); await sim.stop();
//
// Miniflare 5 configures workers the way workerd does (`config.env` bindings,
// `config.triggers`, a module `manifest`); see workerOptions() below. It has no
// `wrappedBindings`: the AI binding is workerd's real `Ai` class, whose HTTP
// calls Miniflare forwards to a "remote proxy" URL. The harness serves that
// URL itself and answers with the caller's `run(model, inputs, options)`.

import { spawn } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { parse as parseToml } from "smol-toml";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The wrangler configs of the stack; the first one receives `fetch()`. */
export const DEFAULT_CONFIGS = ["wrangler-scraper.toml", "wrangler-processor.toml"];

/** Secrets every worker gets unless the test overrides them. */
export const DEFAULT_SECRETS = {
  GITHUB_TOKEN: "e2e-github-token",
  ADMIN_TOKEN: "e2e-admin-token",
};

const VERBOSE = Boolean(process.env.E2E_VERBOSE);

// ---------------------------------------------------------------------------
// Stack: both workers in one Miniflare, sharing D1, R2 and the queues.
// ---------------------------------------------------------------------------

/**
 * Starts the workers.
 *
 * Options (all optional):
 * - `vars`: variables for every worker, over the toml's `[vars]`.
 * - `varsByWorker`: `{ "<worker name>": { NAME: value } }`, over `vars`.
 * - `secrets`: secret bindings for every worker (default DEFAULT_SECRETS).
 * - `aiBinding`: the stand-in behind `[ai]` bindings: an object with
 *   `run(model, inputs, options)`, or `{ module, env }` where `module` is a
 *   path (or file URL) whose default export is `(env) => ({ run })`.
 *   Without it, AI calls fail with an error saying no stand-in was given.
 * - `root`, `configs`: where the wrangler tomls are (defaults: repo root,
 *   DEFAULT_CONFIGS). The e2e suite never needs these; the harness's own
 *   smoke test does.
 * - `quiet`: do not echo worker warnings and errors (they are still kept in
 *   `stack.logs`). Set E2E_VERBOSE=1 to echo every worker log line.
 * - `miniflare`: extra Miniflare options, e.g. `{ inspectorPort: 0 }` (the
 *   CPU bench profiles the workers through workerd's inspector).
 */
export async function startStack(options = {}) {
  const root = options.root ?? REPO_ROOT;
  const configs = await Promise.all(
    (options.configs ?? DEFAULT_CONFIGS).map(async (file) => {
      const tomlPath = path.resolve(root, file);
      return { tomlPath, toml: parseToml(await readFile(tomlPath, "utf8")) };
    }),
  );
  const needsAi = configs.some(({ toml }) => toml.ai?.binding);
  const ai = needsAi ? await startAiStandIn(await resolveAiImplementation(options.aiBinding)) : null;

  const logs = [];
  const handleStructuredLogs = (entry) => {
    logs.push(entry);
    const loud = entry.level === "error" || entry.level === "warn";
    if (VERBOSE || (loud && !options.quiet)) {
      (loud ? console.error : console.log)(`[worker ${entry.level}] ${entry.message}`);
    }
  };

  let mf;
  try {
    mf = await startMiniflare(configs, { root, options, aiUrl: ai?.url, handleStructuredLogs });
  } catch (error) {
    await ai?.close();
    throw error;
  }

  const entryName = configs[0].toml.name;
  const d1 = firstD1(configs);
  const r2 = firstR2(configs);
  const db = d1 ? await mf.getD1Database(d1.binding, d1.worker) : null;
  const bucket = r2 ? await mf.getR2Bucket(r2.binding, r2.worker) : null;

  return {
    mf,
    db,
    r2: bucket,
    logs,
    /** Worker names from the tomls, e.g. ["contribot-scraper", "contribot-processor"]. */
    names: configs.map(({ toml }) => toml.name),
    /** AI calls the stand-in answered: `{ model, inputs, options }`. */
    aiCalls: ai?.calls ?? [],

    /** Applies `migrations_dir/*.sql` in name order, each file atomically, once. */
    applyMigrations: () => applyMigrations(db, path.resolve(root, d1.migrationsDir)),

    /** Runs the entry worker's scheduled handler; resolves to `{ outcome, noRetry }`. */
    async scheduled(cron, scheduledTime = new Date()) {
      const worker = await mf.getWorker(entryName);
      return worker.scheduled({ cron, scheduledTime });
    },

    /** `fetch()` to the entry worker; `urlPath` is relative to its origin. */
    fetch(urlPath, init) {
      return mf.dispatchFetch(new URL(urlPath, "http://localhost"), init);
    },

    /** `fetch()` to the named worker (e.g. one that is not the entry). */
    async fetchWorker(workerName, urlPath, init) {
      const worker = await mf.getWorker(workerName);
      return worker.fetch(new URL(urlPath, "http://localhost"), init);
    },

    /** A worker's queue producer binding, to enqueue messages from the test. */
    producer(bindingName, workerName = entryName) {
      return mf.getQueueProducer(bindingName, workerName);
    },

    waitFor,

    /** R2 objects under `prefix`: `[{ key, size, uploaded, text }]`, by key. */
    async listLogs(prefix = "") {
      const objects = [];
      let cursor;
      do {
        const page = await bucket.list({ prefix, cursor });
        objects.push(...page.objects);
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      const out = [];
      for (const object of objects) {
        const body = await bucket.get(object.key);
        out.push({
          key: object.key,
          size: object.size,
          uploaded: object.uploaded,
          text: body ? await body.text() : null,
        });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async dispose() {
      try {
        await mf.dispose();
      } finally {
        await ai?.close();
      }
    },
  };
}

async function startMiniflare(configs, { root, options, aiUrl, handleStructuredLogs }) {
  const workers = [];
  for (const { tomlPath, toml } of configs) {
    workers.push(
      await workerOptions(toml, {
        root,
        tomlPath,
        vars: { ...options.vars, ...options.varsByWorker?.[toml.name] },
        secrets: options.secrets ?? DEFAULT_SECRETS,
        aiUrl,
      }),
    );
  }
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    // Isolated: no cross-process registry, no cf object fetched from the net,
    // storage in a temp dir removed by dispose().
    enableDevRegistry: false,
    cf: false,
    handleStructuredLogs,
    workers,
    ...options.miniflare,
  });
  try {
    await mf.ready;
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
  return mf;
}

/**
 * Miniflare 5 options for one worker, from its parsed wrangler toml.
 * Exported for tests of the harness itself.
 */
export async function workerOptions(toml, { root, tomlPath, vars = {}, secrets = {}, aiUrl }) {
  const env = {};
  const triggers = [];
  const setBinding = (name, binding) => {
    if (env[name]) throw new Error(`${tomlPath}: binding ${name} is defined twice`);
    env[name] = binding;
  };

  for (const [name, value] of Object.entries({ ...toml.vars, ...vars })) {
    env[name] = typeof value === "string" ? { type: "text", value } : { type: "json", value };
  }
  for (const [name, value] of Object.entries(secrets)) {
    env[name] = { type: "text", value };
  }
  for (const d1 of toml.d1_databases ?? []) {
    // Same database_id in both tomls -> one shared local database.
    setBinding(d1.binding, { type: "d1", id: d1.database_id ?? d1.database_name });
  }
  for (const r2 of toml.r2_buckets ?? []) {
    setBinding(r2.binding, { type: "r2", name: r2.bucket_name });
  }
  for (const producer of toml.queues?.producers ?? []) {
    setBinding(producer.binding, {
      type: "queue",
      name: producer.queue,
      deliveryDelay: producer.delivery_delay,
    });
  }
  for (const consumer of toml.queues?.consumers ?? []) {
    triggers.push({
      type: "queue",
      name: consumer.queue,
      maxBatchSize: consumer.max_batch_size,
      maxBatchTimeout: consumer.max_batch_timeout,
      maxRetries: consumer.max_retries,
      retryDelay: consumer.retry_delay,
      deadLetterQueue: consumer.dead_letter_queue,
      maxConcurrency: consumer.max_concurrency,
    });
  }
  const dev = {};
  if (toml.ai?.binding) {
    setBinding(toml.ai.binding, { type: "ai", dev: { remote: true } });
    dev.remoteProxyConnectionString = new URL(aiUrl);
  }
  // Crons are not registered as triggers: tests fire them with scheduled().

  return {
    config: {
      name: toml.name,
      compatibilityDate: toml.compatibility_date,
      compatibilityFlags: toml.compatibility_flags,
      manifest: await loadManifest(path.resolve(root, toml.main)),
      env,
      triggers: dropUndefined(triggers),
    },
    dev,
  };
}

/**
 * The module manifest of a worker-build output. worker-build 0.8 writes
 * `build/index.js` (which imports "./index_bg.wasm") and a compatibility
 * `build/worker/shim.mjs` that re-exports "../index.js"; so the manifest is
 * `main` plus everything it imports through relative specifiers, named
 * relative to their common directory. `.wasm` files load as compiled modules.
 */
async function loadManifest(mainPath) {
  const files = new Map(); // absolute path -> module
  const pending = [mainPath];
  while (pending.length > 0) {
    const file = pending.pop();
    if (files.has(file)) continue;
    let contents;
    try {
      contents = await readFile(file);
    } catch (error) {
      const hint = file === mainPath ? "build the workers first (cargo xtask build)" : "imported by the worker";
      throw new Error(`${file} is missing: ${hint}. ${error.message}`);
    }
    if (file.endsWith(".wasm")) {
      files.set(file, { type: "wasm", contents: new Uint8Array(contents) });
      continue;
    }
    const source = contents.toString("utf8");
    files.set(file, { type: "esm", contents: source });
    for (const specifier of relativeImports(source)) {
      pending.push(path.resolve(path.dirname(file), specifier));
    }
  }
  const modulesRoot = commonDirectory([...files.keys()]);
  const name = (file) => path.relative(modulesRoot, file).split(path.sep).join("/");
  const modules = {};
  for (const [file, module] of files) modules[name(file)] = module;
  return { mainModule: name(mainPath), modulesRoot, modules };
}

/** Relative specifiers of static `import`/`export ... from` (minified or not). */
function relativeImports(source) {
  const found = new Set();
  const pattern = /\b(?:import|export)\b[^"'`;]*?["'](\.{1,2}\/[^"']+)["']/g;
  for (const match of source.matchAll(pattern)) found.add(match[1]);
  return found;
}

function commonDirectory(files) {
  let dir = path.dirname(files[0]);
  while (!files.every((file) => file.startsWith(dir + path.sep))) dir = path.dirname(dir);
  return dir;
}

function dropUndefined(list) {
  return list.map((item) =>
    Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined)),
  );
}

function firstD1(configs) {
  for (const { toml } of configs) {
    const d1 = toml.d1_databases?.[0];
    if (d1) {
      return {
        binding: d1.binding,
        worker: toml.name,
        migrationsDir: d1.migrations_dir ?? "migrations",
      };
    }
  }
  return null;
}

function firstR2(configs) {
  for (const { toml } of configs) {
    const r2 = toml.r2_buckets?.[0];
    if (r2) return { binding: r2.binding, worker: toml.name };
  }
  return null;
}

// ---------------------------------------------------------------------------
// D1 migrations
// ---------------------------------------------------------------------------

/**
 * Applies each `*.sql` file in `dir` (sorted by name) as one D1 batch, and
 * records it in `d1_migrations` as `wrangler d1 migrations apply` does, so a
 * second call applies nothing. Returns the names applied.
 */
export async function applyMigrations(db, dir) {
  await db
    .prepare(
      `CREATE TABLE IF NOT EXISTS d1_migrations (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         name TEXT UNIQUE,
         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)`,
    )
    .run();
  const done = new Set(
    (await db.prepare("SELECT name FROM d1_migrations").all()).results.map((row) => row.name),
  );
  const files = (await readdir(dir)).filter((name) => name.endsWith(".sql")).sort();
  const applied = [];
  for (const name of files) {
    if (done.has(name)) continue;
    const statements = splitSqlStatements(await readFile(path.join(dir, name), "utf8"));
    try {
      await db.batch([
        ...statements.map((sql) => db.prepare(sql)),
        db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(name),
      ]);
    } catch (error) {
      throw new Error(`migration ${name} failed: ${error.message}`, { cause: error });
    }
    applied.push(name);
  }
  return applied;
}

/**
 * Splits SQL text into statements on top-level semicolons. Understands
 * `--` and `/* *\/` comments (dropped), quoted strings and identifiers
 * ('..', "..", `..`, [..]), and `CREATE TRIGGER ... BEGIN ... END;` bodies,
 * whose inner semicolons (and CASE ... END) do not end the statement.
 */
export function splitSqlStatements(sql) {
  const statements = [];
  let current = "";
  let depth = 0; // BEGIN/CASE nesting inside a CREATE TRIGGER
  let i = 0;
  const isTrigger = () => /^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(current);
  const finish = () => {
    const statement = current.trim();
    if (statement) statements.push(statement);
    current = "";
    depth = 0;
  };
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      i = end === -1 ? sql.length : end;
      current += " ";
    } else if (c === "/" && next === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? sql.length : end + 2;
      current += " ";
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) break;
        if (sql[j] === close) {
          if (close !== "]" && sql[j + 1] === close) {
            j += 2; // doubled quote is an escaped quote
            continue;
          }
          break;
        }
        j++;
      }
      current += sql.slice(i, j + 1);
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j])) j++;
      const word = sql.slice(i, j);
      current += word;
      i = j;
      if (isTrigger()) {
        const upper = word.toUpperCase();
        if (upper === "BEGIN" || upper === "CASE") depth++;
        else if (upper === "END" && depth > 0) depth--;
      }
    } else if (c === ";" && depth === 0) {
      finish();
      i++;
    } else {
      current += c;
      i++;
    }
  }
  finish();
  return statements;
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

/**
 * Calls `predicate()` (may be async) every `intervalMs` until it returns a
 * truthy value, and resolves to that value. Throws after `timeoutMs`, with
 * `message` and the last value or error. `onTick({ attempt, elapsedMs, value })`
 * runs after each unsuccessful try (for progress output).
 */
export async function waitFor(predicate, { timeoutMs = 30_000, intervalMs = 250, onTick, message } = {}) {
  const started = Date.now();
  let attempt = 0;
  let lastValue;
  let lastError;
  for (;;) {
    attempt++;
    try {
      lastValue = await predicate();
      lastError = undefined;
      if (lastValue) return lastValue;
    } catch (error) {
      lastError = error;
    }
    const elapsedMs = Date.now() - started;
    if (elapsedMs >= timeoutMs) {
      const last = lastError ? `last error: ${lastError.stack ?? lastError}` : `last value: ${JSON.stringify(lastValue)}`;
      throw new Error(`waitFor timed out after ${elapsedMs} ms${message ? ` (${message})` : ""}; ${last}`);
    }
    await onTick?.({ attempt, elapsedMs, value: lastValue, error: lastError });
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---------------------------------------------------------------------------
// AI stand-in
// ---------------------------------------------------------------------------

async function resolveAiImplementation(aiBinding) {
  if (!aiBinding) {
    return {
      run(model) {
        throw new Error(`AI binding called (model ${model}) but the test gave no aiBinding stand-in`);
      },
    };
  }
  if (typeof aiBinding.run === "function") return aiBinding;
  if (aiBinding.module) {
    const specifier = String(aiBinding.module).startsWith("file:")
      ? aiBinding.module
      : new URL(`file://${path.resolve(REPO_ROOT, aiBinding.module)}`).href;
    const factory = (await import(specifier)).default;
    const implementation = await factory(aiBinding.env ?? {});
    if (typeof implementation?.run !== "function") {
      throw new Error(`${aiBinding.module}: default export must return an object with run()`);
    }
    return implementation;
  }
  throw new Error("aiBinding must have run() or { module, env }");
}

/**
 * An HTTP server standing in for Workers AI behind workerd's `Ai` binding.
 * Miniflare forwards the binding's request with the original URL in
 * `MF-URL`, the original headers as `MF-Header-<name>` and the body as is.
 * `Ai.run()` posts `{ inputs, options }` with the model in the
 * `cf-consn-model-id` header; a 2xx `application/json` reply is returned to
 * the worker as is, and any other status becomes an `InferenceUpstreamError`
 * built from `{ errors: [{ code, message }] }`. An implementation can throw
 * an error with `status` (e.g. 429) and `code` to exercise that path.
 */
async function startAiStandIn(implementation) {
  const calls = [];
  const server = http.createServer(async (req, res) => {
    try {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const raw = Buffer.concat(chunks).toString("utf8");
      const body = raw ? JSON.parse(raw) : {};
      const model = req.headers["mf-header-cf-consn-model-id"] ?? body.model;
      const inputs = body.inputs ?? {};
      const options = body.options ?? {};
      calls.push({ model, inputs, options, url: req.headers["mf-url"] });
      const result = await implementation.run(model, inputs, options);
      res.writeHead(200, { "content-type": "application/json", "cf-ai-req-id": `e2e-${calls.length}` });
      res.end(JSON.stringify(result ?? null));
    } catch (error) {
      res.writeHead(error?.status ?? 500, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          success: false,
          errors: [{ code: error?.code ?? 5000, message: String(error?.message ?? error) }],
        }),
      );
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    calls,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------
// Upstream simulator
// ---------------------------------------------------------------------------

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts `upstream-sim --port 0 --seed <seed> --quiet [--scale <scale>]`
 * (binary from UPSTREAM_SIM_BIN, else target/debug/upstream-sim) and waits
 * for its first line, `upstream-sim listening on http://127.0.0.1:PORT`.
 * Returns `{ url, port, control(path, body), stop() }`; `control` sends JSON
 * (POST with a body, GET without) and returns the parsed JSON reply.
 */
export async function startSimulator({ seed = 1, scale, extraArgs = [], env, startTimeoutMs = 30_000 } = {}) {
  const bin = process.env.UPSTREAM_SIM_BIN ?? path.join(REPO_ROOT, "target/debug/upstream-sim");
  const args = ["--port", "0", "--seed", String(seed), "--quiet"];
  if (scale !== undefined) args.push("--scale", String(scale));
  args.push(...extraArgs);

  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  running.add(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-8192);
    if (VERBOSE) process.stderr.write(`[upstream-sim] ${chunk}`);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  exited.then(() => running.delete(child));

  const lines = readline.createInterface({ input: child.stdout });
  const firstLine = new Promise((resolve) => lines.once("line", resolve));
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no listening line within ${startTimeoutMs} ms`)), startTimeoutMs);
  });
  let line;
  try {
    line = await Promise.race([
      firstLine,
      spawnError,
      timeout,
      exited.then(({ code, signal }) => {
        throw new Error(`exited (${signal ?? code}) before listening`);
      }),
    ]);
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`upstream-sim (${bin} ${args.join(" ")}): ${error.message}\n${stderr}`);
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the simulator never blocks on a full pipe.
  lines.on("line", (more) => {
    if (VERBOSE) console.log(`[upstream-sim] ${more}`);
  });

  const match = /^upstream-sim listening on (http:\/\/\S+?)\/?$/.exec(line.trim());
  if (!match) {
    child.kill("SIGKILL");
    throw new Error(`upstream-sim: unexpected first line ${JSON.stringify(line)}`);
  }
  const url = match[1];

  return {
    url,
    port: Number(new URL(url).port),
    async control(controlPath, body) {
      const response = await fetch(new URL(controlPath, url), {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(`upstream-sim ${controlPath}: HTTP ${response.status}: ${text}`);
      }
      return text ? JSON.parse(text) : null;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
