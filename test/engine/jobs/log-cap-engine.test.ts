/**
 * A job whose output is larger than the log cap, through the whole engine (a busybox container, the
 * scheduler's flushes, the API's log route): the log keeps how the run began and how it ended (the
 * error on its last line), cut on whole lines, and says how much it dropped.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_LOG_LIMIT } from "../../../src/engine/jobs/index.js";
import { useApiEngine, waitFor } from "../api-harness.js";

const IMAGE = "localhost/scar-test/busybox:logcap";
const t = useApiEngine({ prefix: "scar-logcap-", image: IMAGE });

test("2 MB of output and an error on the last line: the log keeps its start and its end", async () => {
  const created = await t.call("POST", "/system/services", {
    body: {
      name: "noisy",
      image: IMAGE,
      memory: "64Mi",
      script: 'seq 1 300000\necho "ERROR: the real reason is on the last line" >&2\nexit 3\n',
    },
  });
  assert.equal(created.status, 201, await created.text());
  const { job } = await t.engine.invoke("noisy", {}, { sync: false });
  await waitFor("the job's first attempt to end", () =>
    t.engine.jobs.attempts(job.id)[0]?.endedAt ? true : undefined,
  );
  const r = await t.call("GET", `/system/jobs/${job.id}/log`);
  assert.equal(r.status, 200);
  const log = await r.text();
  assert.ok(log.length < DEFAULT_LOG_LIMIT + 4096, `capped: ${log.length} characters`);

  // On a line of its own, with no empty line around it.
  const marker = /\n\[scar: log truncated, (\d+) characters omitted\]\n(?!\n)/.exec(log);
  assert.ok(marker, "the marker says how much was cut");
  const before = log.slice(0, marker.index + 1).split("\n");
  assert.notEqual(before.at(-2), "", "no empty line before the marker");
  const after = log.slice(marker.index + marker[0].length).split("\n");
  // The start: the numbers from 1 on, ending on a whole line.
  const firstNumber = before.indexOf("1");
  assert.ok(firstNumber >= 0, "the start of the output is kept");
  const head = before.slice(firstNumber, -1).map(Number);
  assert.deepEqual(
    head,
    head.map((_, i) => i + 1),
  );
  // The end: whole numbers counting up to 300000, then the error, then the run's last lines.
  const last = after.indexOf("300000");
  assert.ok(last > 0, "the end of the output is kept");
  const tail = after.slice(0, last + 1).map(Number);
  assert.deepEqual(
    tail,
    tail.map((_, i) => 300000 - last + i),
  );
  assert.ok(after.includes("ERROR: the real reason is on the last line"));
  // What was dropped is exactly the numbers in between (each with its newline).
  let dropped = 0;
  for (let n = head.length + 1; n < tail[0]!; n++) dropped += String(n).length + 1;
  assert.equal(Number(marker[1]), dropped);
});
