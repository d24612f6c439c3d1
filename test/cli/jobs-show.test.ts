/**
 * `scar jobs show`'s text for job records as GET /system/jobs/<id> answers them: how the last
 * attempt started (cold, with its environment's start time among the stages, or warm) and nothing
 * about environments for a job that had none.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { showText } from "../../src/cli/commands/jobs.js";

const base = {
  id: "0b6f2c1e-0000-4000-8000-000000000001",
  function: "grayify",
  status: "succeeded",
  reason: "ok",
  exitCode: 0,
  attempts: [{ n: 1 }],
  trigger: { type: "object", bucket: "in", key: "a.jpg" },
  stages: {
    queued: 1000,
    image_ready: 1001,
    stage_in: 1002,
    container_start: 1004,
    script_end: 1300,
    stage_out: 1301,
    done: 1310,
  },
};

test("a cold start: the environment, its start time, and that start under the container stage", () => {
  const text = showText({
    ...base,
    environment: { id: "e3f2a91c0d4b4f6e9a1b", start: "cold", startMs: 182.4 },
  });
  assert.match(text, /^start: {7}cold \(environment e3f2a91c0d4b… started in 182 ms\)$/m);
  assert.match(text, /^ {2}container_start +4\n {4}environment start took 182 ms\n {2}script_end +300$/m);
});

test("a warm start names the environment it reused; no start line among the stages", () => {
  const text = showText({ ...base, environment: { id: "env-7", start: "warm", startMs: 0 } });
  assert.match(text, /^start: {7}warm \(environment env-7\)$/m);
  assert.doesNotMatch(text, /environment start took/);
});

test("a job without an environment (a fresh container per invocation) says nothing of one", () => {
  for (const environment of [null, undefined]) {
    const text = showText({ ...base, environment });
    assert.doesNotMatch(text, /^start:|environment/m);
    assert.match(text, /^ {2}container_start +4\n {2}script_end +300$/m);
  }
});
