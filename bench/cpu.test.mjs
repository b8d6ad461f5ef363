// node --test bench/cpu.test.mjs — the CPU bench's command line.
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseArgs } from "./cpu.mjs";

test("--var sets worker vars for the main chain, repeatable, values may hold '='", () => {
  const opts = parseArgs(["--var", "ISSUES_PER_INVOCATION=400", "--var", "NOTE=a=b"]);
  assert.deepEqual(opts.vars, { ISSUES_PER_INVOCATION: "400", NOTE: "a=b" });
  assert.deepEqual(parseArgs([]).vars, {});
});

test("--var without NAME=VALUE, or with a lower-case name, is a clear error", () => {
  assert.throws(() => parseArgs(["--var", "ISSUES_PER_INVOCATION"]), /--var takes NAME=VALUE/);
  assert.throws(() => parseArgs(["--var", "issues=1"]), /--var takes NAME=VALUE/);
  assert.throws(() => parseArgs(["--var"]), /--var needs a value/);
});

test("unknown scenarios and arguments are refused with the usage", () => {
  assert.throws(() => parseArgs(["--scenario", "full,nope"]), /unknown scenario nope/);
  assert.throws(() => parseArgs(["--frobnicate"]), /unknown argument --frobnicate\nusage:/);
});
