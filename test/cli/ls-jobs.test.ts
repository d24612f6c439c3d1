/** `scar ls`'s JOBS cell: jobs by status, and how those that ran in execution environments started. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { jobsText } from "../../src/cli/commands/manage-run.js";

test("jobs by status, then cold and warm starts when the engine counted any", () => {
  assert.equal(
    jobsText({ jobs: { queued: 1, succeeded: 30, failed: 2 }, starts: { cold: 2, warm: 29 } }),
    "1 queued, 30 ok, 2 failed; starts: 2 cold, 29 warm",
  );
  // A fresh container per invocation (or an OSCAR cluster): statuses only.
  assert.equal(jobsText({ jobs: { succeeded: 3 } }), "3 ok");
  assert.equal(jobsText({ jobs: { succeeded: 3 }, starts: { cold: 0, warm: 0 } }), "3 ok");
  assert.equal(jobsText({}), "");
});
