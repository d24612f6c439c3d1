/** The deploy-time machine check on its own, against a machine of a given size. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_TIMEOUT_SECONDS, machineLimitProblems } from "../../src/engine/limits.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";

const machine = { memoryMiB: 1024, cores: 2 };
const base: FunctionSpec = {
  name: "f",
  provider: "oscar",
  memory: 1024,
  cpu: 2,
  timeout: MAX_TIMEOUT_SECONDS,
  timeout_threshold: 0,
  execution_mode: "lambda",
  log_level: "INFO",
  environment: {},
  secrets: {},
  input: [],
  output: [],
  asynchronous: false,
  raw: {},
  source: { file: "fn.yaml", path: "", line: 1, column: 1 },
};
const fields = (spec: Partial<FunctionSpec>) =>
  machineLimitProblems({ ...base, ...spec }, machine).map((p) => p.field);

test("what the machine has is allowed, a bit more is refused, naming the field", () => {
  assert.deepEqual(fields({}), []);
  assert.deepEqual(fields({ memory: 1025 }), ["memory"]);
  assert.deepEqual(fields({ cpu: 2.5 }), ["cpu"]);
  assert.deepEqual(fields({ cpu: undefined, memory: 10 }), []);
  assert.equal(MAX_TIMEOUT_SECONDS, 2147483, "2^31-1 ms, the longest a timer waits");
  assert.deepEqual(fields({ timeout: MAX_TIMEOUT_SECONDS + 1 }), ["timeout"]);
  assert.deepEqual(fields({ timeout: null }), []);
});

test("batch limits count only when the function runs batch jobs", () => {
  const batch = { vcpus: 3, memory: 2048, enable_gpu: false };
  assert.deepEqual(fields({ batch }), []);
  assert.deepEqual(fields({ batch, execution_mode: "lambda-batch" }), ["batch.memory", "batch.vcpus"]);
  assert.deepEqual(
    machineLimitProblems({ ...base, memory: 4096 }, machine)[0]!.message,
    "4096 MiB is more memory than this machine has (1024 MiB)",
  );
});
