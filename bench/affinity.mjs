// CPU affinity for the CPU bench (bench/cpu.mjs): the thread that runs the
// worker isolates gets a core of its own, so no other process's work on this
// machine is counted as its CPU.
//
// workerd runs every isolate on its main thread (its tid is its pid); V8's
// background compiler and GC ("V8 DefaultWorker"), the upstream simulator
// and this process are other threads. On a small machine they share cores
// with it, and a V8 sample taken after the isolate thread was preempted
// counts the time it waited as CPU. So this process, and with it every
// process it starts afterwards, keeps off one core, and workerd is then
// moved onto it, but for V8's background threads. The profiler's sampling
// thread, started by workerd's inspector thread at each Profiler.start,
// thus shares the isolate's core: elsewhere it is starved and misses
// samples. Without `taskset` (util-linux) or a second core nothing is pinned,
// and the figures say so (`pinned: null`).
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The CPUs this process may run on, from /proc/self/status ("0-3,6"). */
export async function allowedCpus() {
  const status = await readFile("/proc/self/status", "utf8");
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? "";
  return list
    .split(",")
    .filter(Boolean)
    .flatMap((part) => {
      const [lo, hi = lo] = part.split("-").map(Number);
      return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
    });
}

/**
 * Moves every thread of this process off the last allowed CPU, which it
 * returns as `{ isolateCpu, others }` for `pinIsolateThread`, or null when
 * there is one CPU or no taskset. Call it before starting any child.
 */
export async function reserveIsolateCpu() {
  const cpus = await allowedCpus();
  if (cpus.length < 2) return null;
  const isolateCpu = cpus.at(-1);
  const others = cpus.slice(0, -1).join(",");
  try {
    await run("taskset", ["-a", "-p", "-c", others, String(process.pid)]);
  } catch {
    return null;
  }
  return { isolateCpu, others };
}

/** Puts workerd (`pid`) on `isolateCpu`, its V8 background threads on `others`. */
export async function pinIsolateThread(pid, { isolateCpu, others }) {
  await run("taskset", ["-a", "-p", "-c", String(isolateCpu), String(pid)]);
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const name = await readFile(`/proc/${pid}/task/${tid}/comm`, "utf8").catch(() => "");
    if (name.startsWith("V8 ")) await run("taskset", ["-p", "-c", others, tid]);
  }
}
