/**
 * Jobs asked for while the job database cannot take them. Its disk is full (the jobs folder is a small tmpfs, filled by a
 * file): /job and /run answer 503 with what /health says, not a 500 with SQLite's text; an upload to
 * a function's input is still acknowledged, its event is kept by the store and delivered again until
 * the job can be queued, so once the file is removed the upload gets its job. A real container runs it.
 * The database is damaged (a page overwritten while the engine runs): /job is a 503 that says so.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import Database from "better-sqlite3";
import { startApi } from "../../src/engine/api/index.js";
import { Engine } from "../../src/engine/engine.js";
import { FINAL_STATUSES } from "../../src/engine/jobs/index.js";
import { waitFor } from "../engine/api-harness.js";
import { makeFixture } from "../engine/runtime/fixtures.js";
import { createFunction, fill, scratch, startOnSmallDisk } from "./jobs-harness.js";

const disk = scratch("scar-jobs-enqueue-");
const fixture = makeFixture();
after(() => fixture.cleanup());

test("with the job database's disk full, /job and /run are a 503 and an upload's job comes once there is room", async () => {
  const { jobsDir, engine, api } = await startOnSmallDisk(disk);
  const c = engine.credentials.s3;
  const s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    const auth = await createFunction(engine, api.url, fixture.base, {
      name: "reader",
      image: "localhost/full/busybox:1",
      memory: "64Mi",
      script: 'cat "$INPUT_FILE_PATH"\n',
      input: [{ storage_provider: "minio", path: "full/in" }],
    });

    const room = fill(jobsDir);
    const body = "x".repeat(256 * 1024);
    for (const path of ["/job/reader", "/run/reader"]) {
      const r = await fetch(`${api.url}${path}`, { method: "POST", headers: { authorization: auth }, body });
      const text = await r.text();
      assert.equal(r.status, 503, `${path}: ${text}`);
      assert.match(
        JSON.parse(text).error,
        /^the job was not queued: job database \S+jobs\.db cannot be written \(database or disk is full\)/,
      );
      assert.equal(r.headers.get("retry-after"), "5");
    }
    assert.equal((await fetch(`${api.url}/health`)).status, 503);

    // The upload is stored and acknowledged; its event waits in the store, not in a job yet.
    await s3.send(new PutObjectCommand({ Bucket: "full", Key: "in/x.txt", Body: "hello from the upload\n" }));
    assert.deepEqual(engine.jobs.list("reader").jobs, []);
    assert.equal(engine.store.pendingEvents().length, 1, "the event is kept to be delivered again");

    room();
    const job = await waitFor(
      "the upload's job to end",
      () => {
        const j = engine.jobs.list("reader").jobs[0];
        return j && FINAL_STATUSES.includes(j.status) ? j : undefined;
      },
      60_000,
    );
    assert.equal(job.status, "succeeded", engine.jobs.log(job.id) ?? "");
    assert.deepEqual(job.trigger, { type: "object", bucket: "full", key: "in/x.txt" });
    assert.match(engine.jobs.log(job.id) ?? "", /hello from the upload/);
    assert.deepEqual(engine.store.pendingEvents(), []);
    const again = await fetch(`${api.url}/job/reader`, {
      method: "POST",
      headers: { authorization: auth },
      body: "{}",
    });
    assert.equal(again.status, 201, await again.text());
  } finally {
    s3.destroy();
    await api.close();
    await engine.close();
  }
});

test("with the job database damaged, /job is a 503 saying so", async () => {
  const dir = join(disk.root, "damaged");
  const engine = await Engine.start({ dataDir: dir, s3Port: 0, concurrency: 1, pollMs: 20, log: () => {} });
  const api = await startApi(engine, { port: 0 });
  try {
    const auth = await createFunction(engine, api.url, fixture.base, {
      name: "echo",
      image: "localhost/damaged/busybox:1",
      memory: "64Mi",
      script: "echo hi\n",
    });
    // Overwrite the header of the root page of the index every new job goes into, then write from
    // another connection so that the engine's drops its page cache and reads the file again.
    const file = join(dir, "jobs", "jobs.db");
    const other = new Database(file);
    other.pragma("wal_checkpoint(TRUNCATE)");
    const { rootpage, size } = other
      .prepare(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS size FROM sqlite_master WHERE name = 'jobs_ready'",
      )
      .get() as { rootpage: number; size: number };
    const fd = openSync(file, "r+");
    writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, (rootpage - 1) * size);
    closeSync(fd);
    other.prepare("UPDATE owner SET since = since").run();
    other.close();
    const r = await fetch(`${api.url}/job/echo`, {
      method: "POST",
      headers: { authorization: auth },
      body: "{}",
    });
    const text = await r.text();
    assert.equal(r.status, 503, text);
    assert.match(
      JSON.parse(text).error,
      /^the job was not queued: job database \S+jobs\.db is damaged \(database disk image is malformed\): no job is started until the engine is restarted/,
    );
    assert.equal(r.headers.get("retry-after"), null, "waiting does not mend damage");
  } finally {
    await api.close();
    await engine.close();
  }
});
