// The isolate clock: the CPU time workerd's main thread spends with one
// worker's isolate entered, read by the kernel, for the CPU bench
// (bench/cpu.mjs).
//
// V8's sampling profiler is a poor meter on a small shared machine: at
// 100 µs its sampler thread falls behind (median periods of ~180 µs), drops
// samples (the same work reads 4 to 10 ms from one invocation to the next)
// and its signal handling is itself CPU on the isolate's thread. This clock
// needs no sampling. workerd enters an isolate (`v8::Isolate::Enter`) each
// time it runs JavaScript or wasm in it and exits it (`v8::Isolate::Exit`)
// when it goes back to its event loop; the two are user probes (uprobes) on
// the workerd binary, recorded by `perf record` on the main thread only. Each
// probe hit reads the thread's own CPU clock (`task-clock`, a perf group read
// `:S`), so a span from an enter to its exit is that isolate's CPU, with any
// time the thread was preempted left out. The enter and exit groups are two
// counters started a few microseconds apart; that constant is the median of
// (CPU - wall) over the spans too short to have been preempted, and is taken
// off every span.
//
// An invocation's CPU is the sum of its isolate's spans inside the window of
// its (coarse) V8 profile: the profile's start and end are CLOCK_MONOTONIC
// microseconds, the clock `perf record -k mono` stamps with. Which isolate is
// a worker's is read from the same profiles: the one whose spans hold its
// samples. Needs root, perf, binutils (nm, readelf) and tracefs; without them
// `startIsolateClock` says why and the bench keeps V8's figure.
import { execFile, spawn } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { appendFile, mkdir, readlink, rm, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const run = promisify(execFile);

const TRACEFS = "/sys/kernel/tracing";
const GROUP = "contribot_bench";
const ENTER = "iso_enter";
const EXIT = "iso_exit";
/** The V8 entry points probed, as the binary's symbol table names them. */
export const SYMBOLS = { [ENTER]: "_ZN2v87Isolate5EnterEv", [EXIT]: "_ZN2v87Isolate4ExitEv" };
/** Spans shorter than this (wall) calibrate the two counters' offset. */
const CALIBRATION_SPAN_US = 20;
/** perf needs this long to attach before the first invocation it should see. */
const ATTACH_MS = 1500;

/**
 * File offsets of `symbols` in an ELF binary: `nm` gives each symbol's
 * address, `readelf -l` the LOAD segment holding it (uprobes take offsets).
 */
export async function symbolOffsets(binary, symbols = Object.values(SYMBOLS)) {
  const { stdout: nm } = await run("nm", ["--defined-only", binary], { maxBuffer: 1 << 30 });
  const { stdout: segments } = await run("readelf", ["-lW", binary], { maxBuffer: 1 << 24 });
  return offsetsFrom(nm, segments, symbols);
}

/** The pure part of `symbolOffsets`: `{ symbol: offset }` from nm and readelf text. */
export function offsetsFrom(nmText, readelfText, symbols) {
  const wanted = new Set(symbols);
  const addr = new Map();
  for (const line of nmText.split("\n")) {
    const [hex, , name] = line.trim().split(/\s+/);
    if (wanted.has(name) && !addr.has(name)) addr.set(name, BigInt(`0x${hex}`));
  }
  const loads = [...readelfText.matchAll(/^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)/gim)].map(
    ([, offset, vaddr, memsz]) => ({ offset: BigInt(offset), vaddr: BigInt(vaddr), memsz: BigInt(memsz) }),
  );
  const out = {};
  for (const name of symbols) {
    const a = addr.get(name);
    if (a === undefined) throw new Error(`${name} is not in the binary's symbol table`);
    const seg = loads.find((s) => a >= s.vaddr && a < s.vaddr + s.memsz);
    if (!seg) throw new Error(`${name} (0x${a.toString(16)}) is in no LOAD segment`);
    out[name] = a - seg.vaddr + seg.offset;
  }
  return out;
}

/**
 * Starts recording workerd's (`pid`) isolate spans into `dir`. Returns an
 * `IsolateClock`, or `{ unavailable: reason }` when this machine cannot.
 */
export async function startIsolateClock(pid, dir) {
  try {
    const binary = await readlink(`/proc/${pid}/exe`);
    for (const tool of ["perf", "nm", "readelf"]) {
      await run(tool, ["--version"]).catch(() => {
        throw new Error(`${tool} is not installed`);
      });
    }
    if (!existsSync(`${TRACEFS}/uprobe_events`)) await run("mount", ["-t", "tracefs", "nodev", TRACEFS]);
    const offsets = await symbolOffsets(binary);
    const events = `${TRACEFS}/uprobe_events`;
    for (const probe of [ENTER, EXIT]) await appendFile(events, `-:${GROUP}/${probe}\n`).catch(() => {});
    for (const [probe, symbol] of Object.entries(SYMBOLS)) {
      await appendFile(events, `p:${GROUP}/${probe} ${binary}:0x${offsets[symbol].toString(16)} iso=%di:u64\n`);
    }
    await mkdir(dir, { recursive: true });
    const clock = new IsolateClock(pid, dir);
    await clock.record();
    return clock;
  } catch (error) {
    return { unavailable: String(error?.message ?? error).split("\n")[0] };
  }
}

export class IsolateClock {
  constructor(pid, dir) {
    this.pid = pid;
    this.dir = dir;
    this.laps = 0;
  }

  async record() {
    this.file = path.join(this.dir, `isolates-${++this.laps}.data`);
    const group = (probe) => `{${GROUP}:${probe},task-clock}:S`;
    this.perf = spawn("perf", ["record", "-q", "-k", "mono", "-t", String(this.pid), "-o", this.file, "-e", group(ENTER), "-e", group(EXIT)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.stderr = "";
    this.perf.stderr.on("data", (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.perf.once("exit", resolve));
    await new Promise((resolve) => setTimeout(resolve, ATTACH_MS));
    if (this.perf.exitCode !== null) throw new Error(`perf record exited: ${this.stderr.trim() || this.perf.exitCode}`);
  }

  /** Stops this recording and returns its spans (`isolateSpans`); `again` starts the next. */
  async lap({ again = true } = {}) {
    this.perf.kill("SIGINT");
    await this.exited;
    const spans = await readSpans(this.file);
    await rm(this.file, { force: true });
    if (again) await this.record();
    return spans;
  }

  async stop() {
    if (this.perf?.exitCode === null) {
      this.perf.kill("SIGINT");
      await this.exited;
    }
    await rm(this.file, { force: true });
  }
}

async function readSpans(file) {
  if (!existsSync(file) || (await stat(file)).size === 0) throw new Error(`perf wrote nothing to ${file}`);
  const script = spawn("perf", ["script", "-i", file, "--ns", "-F", "time,event,trace,period"], { stdio: ["ignore", "pipe", "ignore"] });
  const parser = new PerfScriptParser();
  for await (const line of createInterface({ input: script.stdout })) parser.line(line);
  return parser.spans();
}

/**
 * `perf script -F time,event,trace,period` of the two groups: a probe line
 * (`<s.ns>: 1 contribot_bench:iso_enter: (addr) iso=<n>`), then its group's
 * `task-clock` line, whose period is that counter's ns since its last line.
 */
export class PerfScriptParser {
  constructor() {
    this.clock = { [ENTER]: 0, [EXIT]: 0 };
    this.pending = null;
    this.open = new Map();
    this.byIsolate = new Map();
  }

  line(text) {
    const probe = /^\s*(\d+)\.(\d+):\s+\d+\s+\S+:(iso_enter|iso_exit):.*\biso=(\d+)/.exec(text);
    if (probe) {
      const [, s, frac, kind, iso] = probe;
      this.pending = { us: Number(s) * 1e6 + Number(frac.padEnd(9, "0")) / 1e3, kind, iso };
      return;
    }
    const counter = /^\s*\d+\.\d+:\s+(\d+)\s+task-clock/.exec(text);
    if (!counter || !this.pending) return;
    const { us, kind, iso } = this.pending;
    this.pending = null;
    this.clock[kind] += Number(counter[1]);
    const cpuNs = this.clock[kind];
    if (kind === ENTER) {
      this.open.set(iso, { us, cpuNs });
      return;
    }
    const start = this.open.get(iso);
    if (!start) return;
    this.open.delete(iso);
    if (!this.byIsolate.has(iso)) this.byIsolate.set(iso, []);
    this.byIsolate.get(iso).push({ startUs: start.us, endUs: us, cpuUs: (cpuNs - start.cpuNs) / 1e3 });
  }

  /** `{ byIsolate: Map<iso, [{ startUs, endUs, cpuUs }]>, offsetUs }`, the offset taken off. */
  spans() {
    const short = [...this.byIsolate.values()].flat().filter((s) => s.endUs - s.startUs < CALIBRATION_SPAN_US);
    const diffs = short.map((s) => s.cpuUs - (s.endUs - s.startUs)).sort((a, b) => a - b);
    const offsetUs = diffs.length ? diffs[Math.floor((diffs.length - 1) / 2)] : 0;
    for (const list of this.byIsolate.values()) for (const s of list) s.cpuUs = Math.max(0, s.cpuUs - offsetUs);
    return { byIsolate: this.byIsolate, offsetUs };
  }
}

/**
 * The isolate whose spans hold the most of `windows`' samples (each window
 * `{ startUs, endUs, sampleUs: [...] }`, from one worker's profiles), or null.
 */
export function identifyIsolate(byIsolate, windows) {
  let best = null;
  let most = 0;
  for (const [iso, spans] of byIsolate) {
    let held = 0;
    for (const w of windows) {
      for (const s of spans) {
        if (s.endUs < w.startUs || s.startUs > w.endUs) continue;
        held += w.sampleUs.filter((t) => t >= s.startUs && t <= s.endUs).length;
      }
    }
    if (held > most) [best, most] = [iso, held];
  }
  return best;
}

/**
 * The CPU (µs) and count of `spans` wholly inside one window, or null when
 * none is: the recording missed it. A span that starts before the window is
 * the profiler's own start, one that ends after it its stop.
 */
export function windowCpu(spans, { startUs, endUs }) {
  const inside = spans.filter((s) => s.startUs >= startUs && s.endUs <= endUs);
  if (inside.length === 0) return null;
  return { cpuUs: inside.reduce((a, s) => a + s.cpuUs, 0), spans: inside.length };
}

/** A profile's window and sample times, on the clock perf stamps with. */
export function profileWindow(profile) {
  const sampleUs = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas ?? []) sampleUs.push((t += d));
  return { startUs: profile.startTime, endUs: profile.endTime, sampleUs };
}
