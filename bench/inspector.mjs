// V8's inspector on workerd, for the CPU bench (bench/cpu.mjs): one CDP
// session per worker isolate, CPU profiles of single invocations, and the
// isolate's memory.
//
// workerd, started with `--inspector-addr` (Miniflare's `inspectorPort`),
// lists one target per isolate at GET /json, titled
// `workerd: worker core:user:<worker>`.
// Each target speaks the Chrome DevTools Protocol over a WebSocket; the
// Profiler domain samples only that isolate.

/** The inspector's targets: `[{ id, title, webSocketDebuggerUrl }]`. */
export async function listTargets(inspectorUrl) {
  const http = new URL(inspectorUrl);
  http.protocol = "http:";
  http.pathname = "/json";
  const response = await fetch(http);
  if (!response.ok) throw new Error(`inspector ${http}: HTTP ${response.status}`);
  return response.json();
}

/** A CDP session on the isolate of `workerName`. */
export async function connectWorker(inspectorUrl, workerName) {
  const title = `core:user:${workerName}`;
  const targets = await listTargets(inspectorUrl);
  // Titles read "workerd: worker core:user:<name>".
  const target = targets.find((t) => t.title === title || t.title.endsWith(` ${title}`));
  if (!target) {
    throw new Error(`no inspector target ${title}; targets: ${targets.map((t) => t.title).join(", ")}`);
  }
  // workerd's /json answers with its own host; keep the one we reached.
  const ws = new URL(target.webSocketDebuggerUrl ?? `ws://${new URL(inspectorUrl).host}/${target.id}`);
  ws.host = new URL(inspectorUrl).host;
  return CdpSession.open(ws.href, title);
}

export class CdpSession {
  #socket;
  #nextId = 1;
  #pending = new Map();
  #listeners = new Map();
  title;

  static async open(url, title) {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
    return new CdpSession(socket, title);
  }

  constructor(socket, title) {
    this.#socket = socket;
    this.title = title;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      // workerd answers the Profiler commands it handles itself with the
      // command echoed back (`id`, `method`, `params`, `result`): anything
      // with an id is an answer, only messages without one are events.
      if (message.id === undefined) {
        for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params);
        return;
      }
      const waiter = this.#pending.get(message.id);
      if (!waiter) return;
      this.#pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${this.title} ${waiter.method}: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.addEventListener("close", () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${this.title}: inspector closed`));
      this.#pending.clear();
    });
  }

  /** Calls `listener(params)` on every event `method`. */
  on(method, listener) {
    if (!this.#listeners.has(method)) this.#listeners.set(method, []);
    this.#listeners.get(method).push(listener);
  }

  send(method, params = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close() {
    this.#socket.close();
  }
}

/**
 * A CPU profiler on one isolate: `start()` before an invocation, `stop()`
 * after it resolves; `stop()` returns the CDP profile.
 */
export class IsolateProfiler {
  constructor(session, { intervalUs = 100 } = {}) {
    this.session = session;
    this.intervalUs = intervalUs;
  }

  async enable() {
    await this.session.send("Profiler.enable");
    await this.session.send("Profiler.setSamplingInterval", { interval: this.intervalUs });
    // The worker's context, for evaluating in it (memory()).
    this.session.on("Runtime.executionContextCreated", ({ context }) => {
      this.contextId = context.id;
    });
    await this.session.send("Runtime.enable").catch(() => {});
    return this;
  }

  async start() {
    await this.session.send("Profiler.start");
  }

  async stop() {
    return (await this.session.send("Profiler.stop")).profile;
  }

  /**
   * The isolate's memory now: the JS heap (`Runtime.getHeapUsage`) and the
   * byte length of every live `WebAssembly.Memory` (found with
   * `Runtime.queryObjects`; a wasm memory only grows, so its size is also
   * its peak).
   */
  async memory() {
    const heap = await this.session.send("Runtime.getHeapUsage");
    let wasm = null;
    try {
      const proto = await this.session.send("Runtime.evaluate", {
        expression: "WebAssembly.Memory.prototype",
        ...(this.contextId !== undefined ? { contextId: this.contextId } : {}),
      });
      const found = await this.session.send("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId });
      const sizes = await this.session.send("Runtime.callFunctionOn", {
        objectId: found.objects.objectId,
        functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
        returnByValue: true,
      });
      wasm = sizes.result.value;
      await this.session.send("Runtime.releaseObject", { objectId: found.objects.objectId }).catch(() => {});
      await this.session.send("Runtime.releaseObject", { objectId: proto.result.objectId }).catch(() => {});
    } catch (error) {
      wasm = { error: String(error.message ?? error) };
    }
    return {
      js_heap_used: heap.usedSize,
      js_heap_total: heap.totalSize,
      backing_storage: heap.backingStorageSize ?? null,
      wasm_memories: Array.isArray(wasm) ? wasm : [],
      wasm_error: Array.isArray(wasm) ? null : wasm.error,
    };
  }
}

// ---------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------

/** V8's pseudo-frames: not functions of the worker. */
export const IDLE = "(idle)";
export const PROGRAM = "(program)";
export const GC = "(garbage collector)";
export const ROOT = "(root)";

/**
 * What one CDP profile says about CPU. V8 takes a sample only while the
 * isolate is entered (its sampler skips an isolate that is not in use), so
 * consecutive samples of running code are one sampling period apart, and a
 * wait on I/O, with the isolate released, leaves a gap between two samples.
 * Each sample therefore stands for the time to the next one (the last: to
 * the profile's end), as DevTools counts it, but for at most `capPeriods`
 * sampling periods: what is beyond is waiting (`gap_us`), not CPU. The
 * period is the one V8 achieved (`period_us`, the median time between
 * samples; more than the requested interval on a busy machine). A sample
 * just before a wait then counts at most half a period too much, and a
 * late sample of running code is still counted in full up to 1.5 periods.
 * `cpu_us` is every sample but `(idle)`; `(program)` (V8 and workerd native
 * code on the isolate's behalf) and the garbage collector count.
 *
 * Returns `{ cpu_us, samples, idle_us, program_us, gc_us, gap_us, wall_us,
 * period_us, frames: Map<name, selfUs> }`.
 */
export function profileCpu(profile, { capPeriods = 1.5, minPeriodUs = 0, maxPeriodUs = Infinity } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Bounded, for a profile of a few samples whose median may be a wait.
  const periodUs = Math.min(Math.max(median(deltas.slice(1)), minPeriodUs), maxPeriodUs);
  const capUs = capPeriods * periodUs;
  const times = [];
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    times.push(t);
  }
  const frames = new Map();
  let cpu = 0;
  let idle = 0;
  let program = 0;
  let gc = 0;
  let gap = 0;
  let counted = 0;
  for (let i = 0; i < samples.length; i++) {
    const next = i + 1 < samples.length ? times[i + 1] : profile.endTime;
    const full = Math.max(0, next - times[i]);
    const span = Math.min(full, capUs);
    gap += full - span;
    const node = nodes.get(samples[i]);
    const name = frameName(node?.callFrame);
    if (name === IDLE) {
      idle += span;
      continue;
    }
    counted++;
    cpu += span;
    if (name === PROGRAM) program += span;
    if (name === GC) gc += span;
    frames.set(name, (frames.get(name) ?? 0) + span);
  }
  return {
    cpu_us: cpu,
    samples: counted,
    idle_us: idle,
    program_us: program,
    gc_us: gc,
    gap_us: gap,
    wall_us: profile.endTime - profile.startTime,
    period_us: periodUs,
    frames,
  };
}

function median(values) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** A frame's name for the report: the function, else where it is. */
export function frameName(callFrame) {
  if (!callFrame) return "(unknown)";
  const name = callFrame.functionName;
  if (name) return name;
  const url = callFrame.url ?? "";
  if (url.startsWith("wasm://")) return `(unnamed wasm ${url.split("/").pop()}:${callFrame.columnNumber})`;
  if (url) return `(anonymous ${url.split("/").pop()}:${callFrame.lineNumber + 1})`;
  return "(anonymous)";
}

/** The `n` busiest frames by self time: `[{ name, self_ms }]`. */
export function topFrames(frames, n = 10) {
  return [...frames.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, self_ms: round(us / 1000) }));
}

/**
 * `{ count, max, p95, mean }` of a list of numbers; p95 is the nearest-rank
 * percentile (the smallest value with at least 95% of the values at or
 * below it), the same definition `cargo xtask bench` uses.
 */
export function summarize(values) {
  if (values.length === 0) return { count: 0, max: 0, p95: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(0.95 * sorted.length));
  return {
    count: sorted.length,
    max: round(sorted.at(-1)),
    p95: round(sorted[rank - 1]),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

/**
 * CPU time (ns) of a process so far, all its threads: the first field of
 * each `/proc/<pid>/task/<tid>/schedstat`. `null` where that is missing.
 */
export async function processCpuNs(pid) {
  const { readdir } = await import("node:fs/promises");
  try {
    let total = 0;
    for (const tid of await readdir(`/proc/${pid}/task`)) total += (await threadCpuNs(pid, tid)) ?? 0;
    return total;
  } catch {
    return null;
  }
}

/** CPU time of one thread (`tid`) of `pid`, ns (schedstat), or null. */
export async function threadCpuNs(pid, tid = pid) {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, "utf8").catch(() => null);
  return text === null ? null : Number(text.split(" ")[0]);
}

/** The pids of this process's children named `name` (e.g. workerd). */
export async function childPids(name) {
  const { readdir, readFile } = await import("node:fs/promises");
  const out = [];
  for (const tid of await readdir(`/proc/${process.pid}/task`)) {
    const children = await readFile(`/proc/${process.pid}/task/${tid}/children`, "utf8").catch(() => "");
    for (const pid of children.split(" ").filter(Boolean)) {
      const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
      if (comm === name) out.push(Number(pid));
    }
  }
  return out;
}

export function round(x, digits = 3) {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
