// node --test bench/inspector.test.mjs — the CPU bench's arithmetic.
import assert from "node:assert/strict";
import { test } from "node:test";

import { profileCpu, summarize, topFrames } from "./inspector.mjs";

/** A CDP profile from `[name, deltaUs]` samples (delta: time since the previous sample). */
function profile(samples, tailUs = 0) {
  const names = [...new Set(samples.map(([name]) => name))];
  const nodes = [{ id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: -1, columnNumber: -1 } }];
  for (const [i, name] of names.entries()) {
    nodes.push({ id: i + 2, callFrame: { functionName: name, url: "", lineNumber: 0, columnNumber: 0 } });
  }
  const id = (name) => names.indexOf(name) + 2;
  const timeDeltas = samples.map(([, d]) => d);
  const startTime = 1_000;
  const endTime = startTime + timeDeltas.reduce((a, b) => a + b, 0) + tailUs;
  return { nodes, startTime, endTime, samples: samples.map(([name]) => id(name)), timeDeltas };
}

test("a wait between two samples is not CPU", () => {
  const p = profile([
    ["decode", 100],
    ["decode", 100],
    ["fetch", 100],
    ["decode", 50_000], // 50 ms with the isolate released (waiting on upstream)
    ["decode", 100],
    ["hash", 100],
  ], 100);

  const cpu = profileCpu(p);

  assert.equal(cpu.period_us, 100);
  // The sample before the wait counts 1.5 periods: half a period too much.
  assert.equal(cpu.cpu_us, 650);
  assert.equal(cpu.gap_us, 50_000 - 150);
  assert.equal(cpu.frames.get("fetch"), 150);
  assert.equal(cpu.frames.get("decode"), 400);
});

test("idle samples are left out and the garbage collector counts", () => {
  const p = profile([
    ["(idle)", 100],
    ["(idle)", 100],
    ["(garbage collector)", 100],
    ["(program)", 100],
    ["run", 100],
  ], 100);

  const cpu = profileCpu(p);

  assert.equal(cpu.cpu_us, 300);
  assert.equal(cpu.idle_us, 200);
  assert.equal(cpu.gc_us, 100);
  assert.equal(cpu.program_us, 100);
  assert.equal(cpu.samples, 3);
});

test("the achieved sampling period is bounded for a profile of a few samples", () => {
  const p = profile([
    ["run", 100],
    ["run", 9_000],
    ["run", 9_000],
  ], 100);

  const cpu = profileCpu(p, { minPeriodUs: 100, maxPeriodUs: 400 });

  assert.equal(cpu.period_us, 400);
  assert.equal(cpu.cpu_us, 600 + 600 + 100);
});

test("p95 is the nearest-rank percentile", () => {
  const values = Array.from({ length: 20 }, (_, i) => i + 1);

  assert.deepEqual(summarize(values), { count: 20, max: 20, p95: 19, mean: 10.5 });
  assert.deepEqual(summarize([7]), { count: 1, max: 7, p95: 7, mean: 7 });
  assert.deepEqual(summarize([]), { count: 0, max: 0, p95: 0, mean: 0 });
});

test("top frames are the largest self times, in ms", () => {
  const frames = new Map([["a", 1500], ["b", 250], ["c", 4000]]);

  assert.deepEqual(topFrames(frames, 2), [{ name: "c", self_ms: 4 }, { name: "a", self_ms: 1.5 }]);
});
