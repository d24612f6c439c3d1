/**
 * The disk of the job database fills while a job runs (the jobs folder is a small tmpfs, filled by a
 * file): the job's log can no longer be written, so the job is stopped, /health says why, and once
 * the file is removed the job ends as failed with reason `disk` and is retried (and then succeeds).
 * A real container (busybox image, crun or runc) prints the log.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { waitFor } from "../engine/api-harness.js";
import { makeFixture } from "../engine/runtime/fixtures.js";
import { createFunction, fill, scratch, startOnSmallDisk } from "./jobs-harness.js";

const disk = scratch("scar-jobs-disk-");
const fixture = makeFixture();
after(() => fixture.cleanup());

test("a job whose log cannot be written for a full disk ends failed (reason disk) and is retried once there is room", async () => {
  const { jobsDir, lines, engine, api } = await startOnSmallDisk(disk, {
    backoff: { baseMs: 20, factor: 1, maxMs: 20 },
  });
  try {
    await createFunction(engine, api.url, fixture.base, {
      name: "chatty",
      image: "localhost/disk/busybox:1",
      memory: "64Mi",
      // About three seconds of output, a line every 50 ms.
      script: 'i=0; while [ $i -lt 60 ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done\n',
    });
    const { job } = await engine.invoke("chatty", {}, { sync: false });

    await waitFor("the job's first log lines", () =>
      /line 1\n/.test(engine.jobs.log(job.id) ?? "") ? true : undefined,
    );
    const room = fill(jobsDir);

    const stopped = await waitFor("the engine to log the failed write", () =>
      lines.find((l) => l.includes(`job ${job.id} of 'chatty': could not write`)),
    );
    assert.match(stopped, /characters of its log \(database or disk is full\); the job is stopped/);
    const health = await waitFor("/health to say the database cannot be written", async () => {
      const r = await fetch(`${api.url}/health`);
      const text = await r.text();
      return r.status === 503 ? text : undefined;
    });
    assert.match(health, /job database \S+jobs\.db cannot be written \(database or disk is full\)/);

    room();
    const done = await waitFor("the job to end", () => {
      const j = engine.jobs.get(job.id)!;
      return j.status === "succeeded" || j.status === "dead" || j.status === "failed" ? j : undefined;
    });
    const attempts = engine.jobs.attempts(job.id);
    assert.equal(attempts[0]?.status, "failed");
    assert.equal(attempts[0]?.reason, "disk");
    assert.match(attempts[0]?.error ?? "", /the job database could not be written \(disk full\?\)/);
    assert.equal(done.status, "succeeded", JSON.stringify(attempts));
    assert.equal(attempts.length, 2);
    assert.match(engine.jobs.log(job.id)!, /line 59\n/);
    assert.ok(lines.some((l) => /can be written again/.test(l)));
    const ok = await fetch(`${api.url}/health`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "Ok");
  } finally {
    await api.close();
    await engine.close();
    disk.unmount(jobsDir);
  }
});
