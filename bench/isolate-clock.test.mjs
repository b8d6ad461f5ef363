// node --test bench/isolate-clock.test.mjs — the isolate clock's arithmetic.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PerfScriptParser, SYMBOLS, identifyIsolate, offsetsFrom, profileWindow, windowCpu } from "./isolate-clock.mjs";

/** perf script lines for one probe hit: the probe, then its group's task-clock delta (ns). */
function hit(kind, seconds, iso, deltaNs) {
  return [
    `  ${seconds.toFixed(9)}:          1 contribot_bench:${kind}: (55f6b78cdfd0) iso=${iso}`,
    `  ${seconds.toFixed(9)}:    ${deltaNs}   task-clock: `,
  ];
}

function parse(lines) {
  const p = new PerfScriptParser();
  for (const l of lines) p.line(l);
  return p.spans();
}

test("a span is its exit's CPU reading minus its enter's, the counters' offset taken off", () => {
  // The exit counter started 40 µs of CPU before the enter counter: every
  // span reads 40 µs too much, which the short spans show.
  const { byIsolate, offsetUs } = parse([
    ...hit("iso_enter", 1.0, 7, 1_000_000), // enter counter at 1.000 ms
    ...hit("iso_exit", 1.000005, 7, 1_045_000), // exit counter at 1.045 ms: 5 µs wall
    ...hit("iso_enter", 1.001, 7, 10_000), // 1.010 ms
    ...hit("iso_exit", 1.001004, 7, 9_000), // 1.054 ms: 4 µs wall
    ...hit("iso_enter", 1.002, 7, 990_000), // 2.000 ms
    ...hit("iso_exit", 1.005, 7, 3_986_000), // 5.040 ms: 3 ms wall, 3 ms CPU
  ]);
  assert.equal(offsetUs, 40);
  const spans = byIsolate.get("7");
  assert.equal(spans.length, 3);
  assert.ok(Math.abs(spans[2].cpuUs - 3_000) < 1e-6, `${spans[2].cpuUs}`);
  assert.ok(Math.abs(spans[2].endUs - spans[2].startUs - 3_000) < 1e-3);
});

test("a preempted span counts only the CPU, and isolates keep their own spans", () => {
  const { byIsolate } = parse([
    ...hit("iso_enter", 2.0, 1, 100),
    ...hit("iso_exit", 2.00001, 1, 10_100), // 10 µs, calibrates offset 0
    ...hit("iso_enter", 2.001, 2, 10_000),
    ...hit("iso_exit", 2.011, 2, 2_000_000), // 10 ms wall, only 2 ms of CPU
    ...hit("iso_enter", 2.02, 1, 2_000_000),
    ...hit("iso_exit", 2.021, 1, 1_000_000),
  ]);
  assert.deepEqual([...byIsolate.keys()].sort(), ["1", "2"]);
  assert.ok(Math.abs(byIsolate.get("2")[0].cpuUs - 2_000) < 1e-6);
  assert.equal(byIsolate.get("1").length, 2);
});

test("an exit without its enter (recording started inside a span) is dropped", () => {
  const { byIsolate } = parse([...hit("iso_exit", 3.0, 5, 100), ...hit("iso_enter", 3.1, 5, 100), ...hit("iso_exit", 3.100002, 5, 100)]);
  assert.equal(byIsolate.get("5").length, 1);
});

test("a worker's isolate is the one whose spans hold its samples; its window sums the spans inside", () => {
  const byIsolate = new Map([
    ["a", [{ startUs: 100, endUs: 200, cpuUs: 100 }, { startUs: 300, endUs: 400, cpuUs: 90 }]],
    ["b", [{ startUs: 200, endUs: 300, cpuUs: 100 }]],
  ]);
  const window = profileWindow({ startTime: 50, endTime: 450, timeDeltas: [100, 50, 200] }); // samples 150, 200, 400
  assert.deepEqual(window.sampleUs, [150, 200, 400]);
  assert.equal(identifyIsolate(byIsolate, [window]), "a");
  assert.deepEqual(windowCpu(byIsolate.get("a"), window), { cpuUs: 190, spans: 2 });
  // The profiler's start and stop fall across the window's edges: not counted.
  assert.deepEqual(windowCpu(byIsolate.get("a"), { startUs: 150, endUs: 450 }), { cpuUs: 90, spans: 1 });
  assert.equal(windowCpu(byIsolate.get("a"), { startUs: 500, endUs: 600 }), null);
});

test("symbol offsets come from the LOAD segment that holds them", () => {
  const nm = `0000000004163fe0 T ${SYMBOLS.iso_exit}\n0000000004163fd0 T ${SYMBOLS.iso_enter}\n0000000000001000 t other\n`;
  const readelf = `
  LOAD           0x000000 0x0000000000000000 0x0000000000000000 0x22c0d70 0x22c0d70 R   0x1000
  LOAD           0x22c1000 0x00000000022c2000 0x00000000022c2000 0x3e78b40 0x3e78b40 R E 0x1000
`;
  const out = offsetsFrom(nm, readelf, Object.values(SYMBOLS));
  assert.equal(out[SYMBOLS.iso_enter], 0x4162fd0n);
  assert.equal(out[SYMBOLS.iso_exit], 0x4162fe0n);
  assert.throws(() => offsetsFrom("", readelf, ["missing"]), /not in the binary's symbol table/);
});
