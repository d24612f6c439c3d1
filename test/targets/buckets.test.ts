/** The CLI's bucket access against the embedded store: folders, listing, and uploads that resume. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { BucketStore } from "../../src/targets/buckets.js";

const dir = mkdtempSync(join(tmpdir(), "scar-buckets-"));
const creds = { accessKeyId: "SCARTESTKEY", secretAccessKey: "scar-test-secret" };
let store: RunningStore;
let buckets: BucketStore;

before(async () => {
  store = await startStore({ dataDir: join(dir, "store"), port: 0, credentials: creds });
  buckets = new BucketStore(store.url, { endpoint: store.url, ...creds });
  buckets.resumeDir = join(dir, "uploads");
});
after(async () => {
  buckets.destroy();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("ensureFolder creates the bucket and the folder marker once, and says what it made", async () => {
  assert.deepEqual(await buckets.ensureFolder("bucket-one", "in/sub/"), { bucket: true, folder: true });
  assert.deepEqual(await buckets.ensureFolder("bucket-one", "in/sub"), { bucket: false, folder: false });
  const keys = [];
  for await (const o of buckets.list("bucket-one", "")) keys.push(o.key);
  assert.deepEqual(keys, ["in/sub/"]);
  await assert.rejects(async () => {
    for await (const _ of buckets.list("no-such-bucket", "")) {
      // nothing
    }
  }, /Unable to find the bucket 'no-such-bucket'\./);
});

test("an interrupted multipart upload resumes: only the missing parts are sent again", async () => {
  await buckets.ensureFolder("big", "");
  const data = Buffer.alloc(40 * 1024 * 1024); // three parts of 16 MiB
  for (let i = 0; i < data.length; i += 1024) data.writeUInt32LE(i, i);
  const file = join(dir, "big.bin");
  writeFileSync(file, data);
  let sent = 0;
  await assert.rejects(
    buckets.upload(file, "big", "big.bin", (n) => {
      sent += n;
      if (sent >= 16 * 1024 * 1024) throw new Error("connection lost");
    }),
    /connection lost.*run the same command again to resume/,
  );
  const s3 = new S3Client({
    endpoint: store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: creds,
  });
  const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: "big" }));
  assert.equal(open.Uploads?.length, 1, "the unfinished upload is kept for the next run");
  assert.equal(readdirSync(buckets.resumeDir!).length, 1);
  let bytes = 0;
  const r = await buckets.upload(file, "big", "big.bin", (n) => {
    bytes += n;
  });
  assert.ok(r.resumedParts >= 1, `resumed ${r.resumedParts} parts`);
  assert.equal(bytes, data.length, "progress counts the resumed parts too");
  const back = join(dir, "back.bin");
  await buckets.download("big", "big.bin", back);
  assert.equal(sha(readFileSync(back)), sha(data));
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: "big" }))).Uploads?.length ?? 0, 0);
  assert.deepEqual(readdirSync(buckets.resumeDir!), [], "the resume note is removed once complete");
  s3.destroy();
});

test("without a resume folder, files of any size go up through lib-storage's Upload, with progress", async () => {
  const plain = new BucketStore(store.url, { endpoint: store.url, ...creds });
  try {
    await plain.ensureFolder("plain", "");
    const sizes = { "empty.bin": 0, "small.bin": 1000, "large.bin": 33 * 1024 * 1024 + 5 }; // 3 parts
    for (const [name, size] of Object.entries(sizes)) {
      const data = Buffer.alloc(size);
      for (let i = 0; i + 4 <= size; i += 4096) data.writeUInt32LE(i, i);
      const file = join(dir, name);
      writeFileSync(file, data);
      let bytes = 0;
      const r = await plain.upload(file, "plain", name, (n) => {
        bytes += n;
      });
      assert.equal(r.resumedParts, 0);
      assert.equal(bytes, size, `${name}: progress counts every byte once`);
      const back = join(dir, `back-${name}`);
      await plain.download("plain", name, back);
      assert.equal(sha(readFileSync(back)), sha(data), name);
    }
    assert.equal(readdirSync(buckets.resumeDir!).length, 0, "no resume note without a resume folder");
  } finally {
    plain.destroy();
  }
});
