// S3 behaviours that protect data (issue 18): conditional writes, GET/HEAD by part number, a retried
// CompleteMultipartUpload, and two uploads of one part racing. Each is checked against the S3 API
// reference's rules with @aws-sdk/client-s3, and some with aws-cli v2.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { startStore } from "../../../src/engine/store/index.js";
import { awsEnv, CREDS, run, s3Error, type TestStore, withStore } from "./helpers.js";

const MiB = 1024 * 1024;
let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "cond" }));
});
after(async () => {
  await t.stop();
});

async function body(key: string, s3: S3Client = t.s3, bucket = "cond"): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** Parts of 5 MiB, 5 MiB and 1 KiB, uploaded and completed; returns the whole content. */
async function multipartObject(key: string, s3: S3Client = t.s3, bucket = "cond") {
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1024)];
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const etags: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const r = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: parts[i] }),
    );
    etags.push(r.ETag!);
  }
  const MultipartUpload = { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) };
  const done = await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload }),
  );
  return { parts, whole: Buffer.concat(parts), UploadId: UploadId!, MultipartUpload, etag: done.ETag! };
}

test("PutObject with If-None-Match: * creates once, then 412 and the object stays", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "once", Body: "first", IfNoneMatch: "*" }));
  const e = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "once", Body: "second", IfNoneMatch: "*" })),
  );
  assert.equal(e.$metadata.httpStatusCode, 412);
  assert.equal(e.name, "PreconditionFailed");
  assert.equal((await body("once")).toString(), "first");
});

test("PutObject with If-Match writes only over that ETag; a missing key is NoSuchKey", async () => {
  const v1 = await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "cas", Body: "v1" }));
  const v2 = await t.s3.send(
    new PutObjectCommand({ Bucket: "cond", Key: "cas", Body: "v2", IfMatch: v1.ETag }),
  );
  const stale = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "cas", Body: "v3", IfMatch: v1.ETag })),
  );
  assert.equal(stale.$metadata.httpStatusCode, 412);
  assert.equal((await body("cas")).toString(), "v2");
  await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "cas", Body: "v3", IfMatch: v2.ETag }));
  assert.equal((await body("cas")).toString(), "v3");
  const missing = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "no-such", Body: "x", IfMatch: v1.ETag })),
  );
  assert.equal(missing.$metadata.httpStatusCode, 404);
  assert.equal(missing.name, "NoSuchKey");
});

test("If-None-Match with an ETag on a write is not implemented by S3: 501, nothing written", async () => {
  const e = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "etag-nm", Body: "x", IfNoneMatch: '"abc"' })),
  );
  assert.equal(e.$metadata.httpStatusCode, 501);
  const gone = await s3Error(t.s3.send(new HeadObjectCommand({ Bucket: "cond", Key: "etag-nm" })));
  assert.equal(gone.$metadata.httpStatusCode, 404);
});

test("concurrent If-None-Match: * writes of one key: exactly one wins, the others get 412 or 409", async () => {
  const bodies = Array.from({ length: 8 }, (_, i) => `writer ${i}`);
  const results = await Promise.allSettled(
    bodies.map((b) =>
      t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "race", Body: b, IfNoneMatch: "*" })),
    ),
  );
  const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
  assert.equal(won.length, 1, "one writer wins");
  for (const r of results) {
    if (r.status === "rejected") {
      assert.ok(r.reason instanceof S3ServiceException);
      assert.ok(
        [409, 412].includes(r.reason.$metadata.httpStatusCode!),
        String(r.reason.$metadata.httpStatusCode),
      );
    }
  }
  assert.equal((await body("race")).toString(), bodies[won[0]!]);
});

test("CompleteMultipartUpload and CopyObject honour If-None-Match: *", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "taken", Body: "keep me" }));
  const { UploadId } = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: "cond", Key: "taken" }));
  const p = await t.s3.send(
    new UploadPartCommand({ Bucket: "cond", Key: "taken", UploadId, PartNumber: 1, Body: "small" }),
  );
  const e = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "cond",
        Key: "taken",
        UploadId,
        IfNoneMatch: "*",
        MultipartUpload: { Parts: [{ ETag: p.ETag, PartNumber: 1 }] },
      }),
    ),
  );
  assert.equal(e.$metadata.httpStatusCode, 412);
  assert.equal((await body("taken")).toString(), "keep me");
  // The upload is still there: the client may abort it (or complete it without the condition).
  await t.s3.send(new AbortMultipartUploadCommand({ Bucket: "cond", Key: "taken", UploadId }));

  await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "copy-src", Body: "source" }));
  const c = await s3Error(
    t.s3.send(
      new CopyObjectCommand({ Bucket: "cond", Key: "taken", CopySource: "cond/copy-src", IfNoneMatch: "*" }),
    ),
  );
  assert.equal(c.$metadata.httpStatusCode, 412);
  assert.equal((await body("taken")).toString(), "keep me");
});

test("a conditional GET's 304 and 412 carry the ETag and Last-Modified", async () => {
  const put = await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "cached", Body: "bytes" }));
  const url = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "cond", Key: "cached" }));
  const notModified = await fetch(url, { headers: { "If-None-Match": put.ETag! } });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.headers.get("etag"), put.ETag);
  assert.ok(notModified.headers.get("last-modified"));
  const failed = await fetch(url, { headers: { "If-Match": '"0000"' } });
  assert.equal(failed.status, 412);
  assert.equal(failed.headers.get("etag"), put.ETag);
  assert.ok(failed.headers.get("last-modified"));
  await failed.arrayBuffer();
});

test("GET and HEAD by partNumber return exactly that part; joined, the parts are the object", async () => {
  const { parts, whole } = await multipartObject("by-part");
  const joined: Buffer[] = [];
  let offset = 0;
  for (let n = 1; n <= parts.length; n++) {
    const r = await t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "by-part", PartNumber: n }));
    const got = Buffer.from(await r.Body!.transformToByteArray());
    assert.equal(r.$metadata.httpStatusCode, 206);
    assert.equal(r.PartsCount, 3);
    assert.equal(r.ContentLength, parts[n - 1]!.length);
    assert.equal(r.ContentRange, `bytes ${offset}-${offset + parts[n - 1]!.length - 1}/${whole.length}`);
    assert.ok(got.equals(parts[n - 1]!), `part ${n}`);
    joined.push(got);
    offset += got.length;
    const h = await t.s3.send(new HeadObjectCommand({ Bucket: "cond", Key: "by-part", PartNumber: n }));
    assert.equal(h.ContentLength, parts[n - 1]!.length);
    assert.equal(h.PartsCount, 3);
  }
  assert.equal(
    createHash("sha256").update(Buffer.concat(joined)).digest("hex"),
    createHash("sha256").update(whole).digest("hex"),
  );
  const beyond = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "by-part", PartNumber: 4 })),
  );
  assert.equal(beyond.$metadata.httpStatusCode, 416);
  assert.equal(beyond.name, "InvalidPartNumber");
  const bad = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "by-part", PartNumber: 0 })),
  );
  assert.equal(bad.$metadata.httpStatusCode, 400);
  const both = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "by-part", PartNumber: 1, Range: "bytes=0-9" })),
  );
  assert.equal(both.$metadata.httpStatusCode, 400);
});

test("partNumber=1 of a single-part object is the whole object; part 2 is an error", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "cond", Key: "single", Body: "just one part" }));
  assert.equal((await body("single")).toString(), "just one part");
  const r = await t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "single", PartNumber: 1 }));
  assert.equal(await r.Body!.transformToString(), "just one part");
  const e = await s3Error(t.s3.send(new GetObjectCommand({ Bucket: "cond", Key: "single", PartNumber: 2 })));
  assert.equal(e.$metadata.httpStatusCode, 416);
});

test("aws-cli v2 gets a part by number", async () => {
  const { parts } = await multipartObject("cli-part");
  const home = mkdtempSync(join(tmpdir(), "scar-cli-part-"));
  try {
    const out = join(home, "part2");
    const r = await run(
      "aws",
      ["s3api", "get-object", "--bucket", "cond", "--key", "cli-part", "--part-number", "2", out],
      awsEnv(home, t.store),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).PartsCount, 3);
    const { readFileSync } = await import("node:fs");
    assert.ok(readFileSync(out).equals(parts[1]!));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a retried CompleteMultipartUpload answers as the first one did, also after a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-store-retry-"));
  const open = async () => {
    const store = await startStore({ dataDir: dir, host: "127.0.0.1", port: 0, credentials: CREDS });
    const s3 = new S3Client({
      endpoint: store.url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: CREDS,
    });
    return { store, s3 };
  };
  let { store, s3 } = await open();
  try {
    await s3.send(new CreateBucketCommand({ Bucket: "retry" }));
    const first = await multipartObject("obj", s3, "retry");
    const again = () =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: "retry",
          Key: "obj",
          UploadId: first.UploadId,
          MultipartUpload: first.MultipartUpload,
        }),
      );
    assert.equal((await again()).ETag, first.etag);
    s3.destroy();
    await store.close();
    ({ store, s3 } = await open());
    assert.equal((await again()).ETag, first.etag, "after a restart");
    assert.ok((await body("obj", s3, "retry")).equals(first.whole));
    // Once the key holds something else, the upload is gone for good.
    await s3.send(new PutObjectCommand({ Bucket: "retry", Key: "obj", Body: "newer" }));
    const e = await s3Error(again());
    assert.equal(e.name, "NoSuchUpload");
    assert.equal((await body("obj", s3, "retry")).toString(), "newer");
  } finally {
    s3.destroy();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a part uploaded again while its first upload still runs: the later one wins", async () => {
  const { UploadId } = await t.s3.send(
    new CreateMultipartUploadCommand({ Bucket: "cond", Key: "retry-part" }),
  );
  const slow = randomBytes(256 * 1024);
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  // The first upload sends half its body, then waits until the second one is done.
  const first = t.s3.send(
    new UploadPartCommand({
      Bucket: "cond",
      Key: "retry-part",
      UploadId,
      PartNumber: 1,
      ContentLength: slow.length,
      Body: Readable.from(
        (async function* () {
          yield slow.subarray(0, slow.length / 2);
          await held;
          yield slow.subarray(slow.length / 2);
        })(),
      ),
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
  const second = await t.s3.send(
    new UploadPartCommand({ Bucket: "cond", Key: "retry-part", UploadId, PartNumber: 1, Body: "the retry" }),
  );
  release();
  await first;
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "cond",
      Key: "retry-part",
      UploadId,
      MultipartUpload: { Parts: [{ ETag: second.ETag, PartNumber: 1 }] },
    }),
  );
  assert.equal((await body("retry-part")).toString(), "the retry");
});
