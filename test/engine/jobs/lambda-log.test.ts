// START / END / REPORT lines like Lambda's, from a job record.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type JobRecord,
  lambdaLog,
  logGroupName,
  logStreamName,
  reportLine,
  STAGES,
  type StageTimes,
} from "../../../src/engine/jobs/index.js";

function job(over: Partial<JobRecord> = {}, stages: Partial<StageTimes> = {}): JobRecord {
  const all = Object.fromEntries(STAGES.map((s) => [s, null])) as StageTimes;
  return {
    id: "8f507cfc-0000-4697-b07a-ac58fc914c95",
    function: "f",
    queue: "lambda",
    invocation: "async",
    trigger: { type: "run" },
    status: "succeeded",
    reason: "ok",
    error: null,
    exitCode: 0,
    attempts: 1,
    cycle: 1,
    cycleAttempts: 1,
    notBefore: 0,
    outputKeys: [],
    maxMemoryMB: null,
    parentId: null,
    delegatedTo: null,
    dedupeKey: null,
    startedAt: 1000,
    stages: { ...all, queued: 990, done: 1102.25, ...stages },
    environment: null,
    logDropped: 0,
    ...over,
  };
}

test("a finished job's START, log, END and REPORT", () => {
  const j = job({ maxMemoryMB: 17.3 });
  assert.equal(
    lambdaLog(j, "hello", { memorySizeMB: 128 }),
    "START RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95 Version: $LATEST\n" +
      "hello\n" +
      "END RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\n" +
      "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\tDuration: 102.25 ms\tBilled Duration: 103 ms\t" +
      "Memory Size: 128 MB\tMax Memory Used: 18 MB\n",
  );
});

test("unknown fields are left out; timeouts and OOM say so; a running job measures to now", () => {
  assert.equal(
    reportLine(job({ startedAt: null })),
    "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95",
  );
  assert.match(reportLine(job({ reason: "timeout" })), /\tStatus: timeout$/);
  assert.match(reportLine(job({ reason: "oom" })), /\tStatus: error\tError Type: Runtime.OutOfMemory$/);
  assert.match(
    reportLine(job({}, { done: null }), { now: 1500 }),
    /Duration: 500.00 ms\tBilled Duration: 500 ms/,
  );
  assert.match(reportLine(job({}, { done: 1000 })), /Duration: 0.00 ms\tBilled Duration: 1 ms/);
});

test("log group and stream names are Lambda's, dated by the day the job was queued (UTC)", () => {
  assert.equal(logGroupName("my-fn"), "/aws/lambda/my-fn");
  const j = job({}, { queued: Date.UTC(2026, 0, 9, 23, 59, 59) });
  assert.equal(logStreamName(j), "2026/01/09/[$LATEST]8f507cfc00004697b07aac58fc914c95");
});

test("a cold start's environment start is Lambda's Init Duration; a warm start has none", () => {
  const cold = job({ maxMemoryMB: 17.3, environment: { id: "e1", start: "cold", startMs: 182.456 } });
  assert.equal(
    reportLine(cold, { memorySizeMB: 128 }),
    "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\tDuration: 102.25 ms\tBilled Duration: 103 ms\t" +
      "Memory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 182.46 ms",
  );
  assert.doesNotMatch(
    reportLine(job({ environment: { id: "e1", start: "warm", startMs: 0 } })),
    /Init Duration/,
  );
  assert.match(
    reportLine(job({ reason: "timeout", environment: { id: "e1", start: "cold", startMs: 5 } })),
    /\tInit Duration: 5\.00 ms\tStatus: timeout$/,
  );
});
