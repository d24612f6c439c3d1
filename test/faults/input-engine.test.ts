/**
 * Bad input through a real engine (crun/runc containers, the embedded store, the job database):
 * an event whose key cannot be staged fails once and is not retried; an output file whose name is
 * not UTF-8 is skipped and the others are uploaded, with no host path in the job's log.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Json, useApiEngine, waitFor } from "../engine/api-harness.js";

const IMAGE = "localhost/scar-test/busybox:faults-input";
const t = useApiEngine({
  prefix: "scar-faults-input-engine-",
  image: IMAGE,
  engine: { backoff: { baseMs: 10, factor: 1, maxMs: 10 } },
});
const call = t.call;

async function deploy(name: string, script: string): Promise<void> {
  const r = await call("POST", "/system/services", {
    body: {
      name,
      image: IMAGE,
      memory: "128Mi",
      script,
      input: [{ storage_provider: "minio", path: `${name}/in` }],
      output: [{ storage_provider: "minio", path: `${name}/out` }],
    },
  });
  assert.equal(r.status, 201, await r.text());
}

async function finished(id: string): Promise<Json> {
  return waitFor(`job ${id} to end`, async () => {
    const j = await (await call("GET", `/system/jobs/${id}`)).json();
    return ["succeeded", "failed", "dead"].includes(j.status) ? j : undefined;
  });
}

function s3Event(bucket: string, key: string): string {
  return JSON.stringify({
    Records: [{ eventSource: "minio:s3", s3: { bucket: { name: bucket }, object: { key } } }],
  });
}

// Dead at once, as for a broken event: an async failure that will not be retried is a dead letter.
test("an event whose key cannot be a file: stage-error once, no retries, a message saying why", async () => {
  await deploy("badkeys", "echo never ran\n");
  for (const key of [".", "..", "in/a/..", "in/sub/../..", "in/a%00b"]) {
    const r = await call("POST", "/job/badkeys", { body: s3Event("badkeys", key) });
    assert.equal(r.status, 201, await r.clone().text());
    const job = await finished((await r.json()).jobID);
    assert.equal(job.status, "dead", `${key}: ${JSON.stringify(job)}`);
    assert.equal(job.reason, "stage-error", key);
    assert.equal(job.attemptCount, 1, `${key}: not retried`);
    assert.match(job.error, /the input key '.*' of bucket 'badkeys' cannot be staged as a file/, key);
    assert.ok(!job.error.includes(t.engine.dataDir), `${key}: no host path in ${job.error}`);
  }
});

test("an output file whose name is not UTF-8 is skipped with a warning; the job succeeds", async () => {
  await deploy(
    "badnames",
    [
      'printf good > "$TMP_OUTPUT_DIR/good.txt"',
      "printf bad > \"$TMP_OUTPUT_DIR/$(printf 'bad\\377name')\"",
      "",
    ].join("\n"),
  );
  const r = await call("POST", "/job/badnames", { body: "{}" });
  assert.equal(r.status, 201);
  const job = await finished((await r.json()).jobID);
  const log = await (await call("GET", `/system/jobs/${job.id}/log`)).text();
  assert.equal(job.status, "succeeded", log);
  assert.deepEqual(job.outputKeys, ["badnames/out/good.txt"]);
  assert.ok(
    log.includes(`'/tmp/${job.id}/output/bad\\xffname' is not uploaded`),
    `the warning shows the file as the script saw it:\n${log}`,
  );
  assert.ok(!log.includes(t.engine.dataDir), `no host path in the log:\n${log}`);
});
