/**
 * Issue 12.8 through the whole engine: an upload triggers a job whose script writes more than the
 * function's `lambda.ephemeral_storage` (512 MB, Lambda's smallest) into its output folder. The job
 * fails with reason `disk` after one attempt (a retry would fill the disk again), its log says the
 * limit and the key that raises it, and nothing reaches the output bucket.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../../src/engine/engine.js";
import { FINAL_STATUSES } from "../../src/engine/jobs/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import { waitFor } from "../engine/api-harness.js";
import { type Fixture, makeFixture } from "../engine/runtime/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "scar-faults-disk-"));
const IMAGE = "localhost/scar-test/busybox:disk";
let fixture: Fixture;
let engine: Engine;
let s3: S3Client;

before(async () => {
  fixture = makeFixture();
  engine = await Engine.start({ dataDir: join(root, "data"), s3Port: 0, concurrency: 1 });
  await engine.images.import(fixture.base, { format: "rootfs", tag: IMAGE, changes: ["ENV PATH=/bin"] });
  const c = engine.credentials.s3;
  s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
});
after(async () => {
  s3?.destroy();
  await engine?.close();
  fixture?.cleanup();
  rmSync(root, { recursive: true, force: true });
});

test("a job that writes past ephemeral_storage fails with reason disk, once, and uploads nothing", async () => {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(
    join(dir, "script.sh"),
    'echo part > "$TMP_OUTPUT_DIR/part.txt"\ndd if=/dev/zero of="$TMP_OUTPUT_DIR/big.bin" bs=1M count=600\n',
  );
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: filler\n      memory: 128\n      ephemeral_storage: 512\n      init_script: script.sh\n      container:\n        image: ${IMAGE}\n      input:\n      - path: fill/in\n      output:\n      - path: fill/out\n`;
  writeFileSync(join(dir, "fn.yaml"), yaml);
  await engine.deploy(parseFdl(join(dir, "fn.yaml"), yaml).functions[0]!);
  await s3.send(new PutObjectCommand({ Bucket: "fill", Key: "in/x", Body: "x" }));
  const job = await waitFor(
    "the job to end",
    () => {
      const j = engine.jobs.list("filler").jobs[0];
      return j && FINAL_STATUSES.includes(j.status) ? j : undefined;
    },
    120_000,
  );
  assert.equal(job.reason, "disk", engine.jobs.log(job.id) ?? "");
  assert.equal(job.attempts, 1, "not retried");
  const log = engine.jobs.log(job.id) ?? "";
  assert.match(log, /No space left on device/);
  assert.match(log, /disk limit of 512 MiB/);
  assert.match(log, /lambda\.ephemeral_storage/);
  const out = await s3.send(new ListObjectsV2Command({ Bucket: "fill", Prefix: "out/" }));
  assert.deepEqual(
    (out.Contents ?? []).map((o) => o.Key).filter((k) => k !== "out/"),
    [],
    "no partial output",
  );
});
