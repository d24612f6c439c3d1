// Multipart checksums (composite and full-object), GetObjectAttributes, Content-Encoding kept as
// sent, and the listener leak of joining many parts (issue 18), with @aws-sdk/client-s3.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import zlib from "node:zlib";
import {
  type ChecksumAlgorithm,
  type ChecksumType,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { appendFiles } from "../../../src/engine/store/payload.js";
import { s3Error, type TestStore, withStore } from "./helpers.js";

const MiB = 1024 * 1024;
let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "sums" }));
});
after(async () => {
  await t.stop();
});

const crc32 = (b: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(zlib.crc32(b) >>> 0);
  return out;
};

/** Creates an upload with a checksum and uploads two parts (5 MiB and 100 B), the SDK computing each part's checksum. */
async function twoParts(key: string, alg: ChecksumAlgorithm, type?: ChecksumType) {
  const data = [randomBytes(5 * MiB), randomBytes(100)];
  const created = await t.s3.send(
    new CreateMultipartUploadCommand({
      Bucket: "sums",
      Key: key,
      ChecksumAlgorithm: alg,
      ChecksumType: type,
    }),
  );
  const UploadId = created.UploadId!;
  const parts: CompletedPart[] = [];
  for (let i = 0; i < data.length; i++) {
    const r = await t.s3.send(
      new UploadPartCommand({
        Bucket: "sums",
        Key: key,
        UploadId,
        PartNumber: i + 1,
        Body: data[i],
        ChecksumAlgorithm: alg,
      }),
    );
    parts.push({
      PartNumber: i + 1,
      ETag: r.ETag,
      ChecksumCRC32: r.ChecksumCRC32,
      ChecksumSHA256: r.ChecksumSHA256,
    });
  }
  return { data, UploadId, parts, created };
}

test("a composite CRC32 checksum is the CRC32 of the parts' CRC32s, returned and kept", async () => {
  const { data, UploadId, parts, created } = await twoParts("composite", "CRC32");
  assert.equal(created.ChecksumType, "COMPOSITE");
  const done = await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "sums",
      Key: "composite",
      UploadId,
      MultipartUpload: { Parts: parts },
    }),
  );
  const expected = `${crc32(Buffer.concat(data.map(crc32))).toString("base64")}-2`;
  assert.equal(done.ChecksumCRC32, expected);
  assert.equal(done.ChecksumType, "COMPOSITE");
  const h = await t.s3.send(
    new HeadObjectCommand({ Bucket: "sums", Key: "composite", ChecksumMode: "ENABLED" }),
  );
  assert.equal(h.ChecksumCRC32, expected);
  assert.equal(h.ChecksumType, "COMPOSITE");

  const attrs = await t.s3.send(
    new GetObjectAttributesCommand({
      Bucket: "sums",
      Key: "composite",
      ObjectAttributes: ["ETag", "Checksum", "ObjectParts", "ObjectSize", "StorageClass"],
    }),
  );
  assert.equal(`"${attrs.ETag}"`, done.ETag);
  assert.equal(attrs.Checksum?.ChecksumCRC32, expected);
  assert.equal(attrs.ObjectSize, 5 * MiB + 100);
  assert.equal(attrs.StorageClass, "STANDARD");
  assert.equal(attrs.ObjectParts?.TotalPartsCount, 2);
  assert.deepEqual(
    attrs.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32]),
    data.map((d, i) => [i + 1, d.length, crc32(d).toString("base64")]),
  );
});

test("a full-object CRC32 checksum covers the whole object's bytes", async () => {
  const { data, UploadId, parts, created } = await twoParts("full", "CRC32", "FULL_OBJECT");
  assert.equal(created.ChecksumType, "FULL_OBJECT");
  const whole = crc32(Buffer.concat(data)).toString("base64");
  const done = await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "sums",
      Key: "full",
      UploadId,
      ChecksumCRC32: whole,
      ChecksumType: "FULL_OBJECT",
      MultipartUpload: { Parts: parts },
    }),
  );
  assert.equal(done.ChecksumCRC32, whole);
  assert.equal(done.ChecksumType, "FULL_OBJECT");
  const h = await t.s3.send(new HeadObjectCommand({ Bucket: "sums", Key: "full", ChecksumMode: "ENABLED" }));
  assert.equal(h.ChecksumCRC32, whole);
  assert.equal(h.ChecksumType, "FULL_OBJECT");
});

test("checksums that do not match refuse the complete and keep the upload", async () => {
  const { data, UploadId, parts } = await twoParts("wrong", "CRC32", "FULL_OBJECT");
  const badPart = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "sums",
        Key: "wrong",
        UploadId,
        MultipartUpload: { Parts: [{ ...parts[0], ChecksumCRC32: "AAAAAA==" }, parts[1]!] },
      }),
    ),
  );
  assert.equal(badPart.name, "InvalidPart");
  const badWhole = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "sums",
        Key: "wrong",
        UploadId,
        ChecksumCRC32: "AAAAAA==",
        MultipartUpload: { Parts: parts },
      }),
    ),
  );
  assert.equal(badWhole.name, "BadDigest");
  const listed = await t.s3.send(new ListPartsCommand({ Bucket: "sums", Key: "wrong", UploadId }));
  assert.equal(listed.Parts?.length, 2, "the upload is still there");
  const done = await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "sums",
      Key: "wrong",
      UploadId,
      ChecksumCRC32: crc32(Buffer.concat(data)).toString("base64"),
      MultipartUpload: { Parts: parts },
    }),
  );
  assert.ok(done.ETag);
});

test("an algorithm without the checksum type asked for is refused at create", async () => {
  const e = await s3Error(
    t.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: "sums",
        Key: "x",
        ChecksumAlgorithm: "SHA256",
        ChecksumType: "FULL_OBJECT",
      }),
    ),
  );
  assert.equal(e.$metadata.httpStatusCode, 400);
  const crc64 = await t.s3.send(
    new CreateMultipartUploadCommand({ Bucket: "sums", Key: "x", ChecksumAlgorithm: "CRC64NVME" }),
  );
  assert.equal(crc64.ChecksumType, "FULL_OBJECT", "CRC64NVME has only the full-object type");
});

test("GetObjectAttributes of a single-part object", async () => {
  const put = await t.s3.send(
    new PutObjectCommand({ Bucket: "sums", Key: "plain", Body: "hello", ChecksumAlgorithm: "SHA256" }),
  );
  const attrs = await t.s3.send(
    new GetObjectAttributesCommand({
      Bucket: "sums",
      Key: "plain",
      ObjectAttributes: ["ETag", "Checksum", "ObjectParts", "ObjectSize"],
    }),
  );
  assert.equal(`"${attrs.ETag}"`, put.ETag);
  assert.equal(attrs.Checksum?.ChecksumSHA256, put.ChecksumSHA256);
  assert.equal(attrs.ObjectSize, 5);
  assert.equal(attrs.ObjectParts, undefined);
  assert.ok(attrs.LastModified);
});

test("Content-Encoding with aws-chunked keeps the other codings exactly as sent", async () => {
  const body = Buffer.from("compressed bytes, really");
  // A stream body makes the SDK send aws-chunked with a trailing checksum.
  await t.s3.send(
    new PutObjectCommand({
      Bucket: "sums",
      Key: "encoded",
      Body: Readable.from([body]),
      ContentLength: body.length,
      ContentEncoding: "deflate, gzip",
    }),
  );
  const h = await t.s3.send(new HeadObjectCommand({ Bucket: "sums", Key: "encoded" }));
  assert.equal(h.ContentEncoding, "deflate, gzip");
});

test("joining many parts adds no listeners that pile up (no MaxListenersExceededWarning)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-append-"));
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    const files = Array.from({ length: 15 }, (_, i) => {
      const p = join(dir, `part-${i}`);
      writeFileSync(p, `part ${i};`);
      return p;
    });
    const out = join(dir, "joined");
    const fd = openSync(out, "w");
    const size = await appendFiles(fd, files);
    closeSync(fd);
    assert.equal(readFileSync(out, "utf8"), files.map((_, i) => `part ${i};`).join(""));
    assert.equal(size, readFileSync(out).length);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
      [],
    );
  } finally {
    process.off("warning", onWarning);
    rmSync(dir, { recursive: true, force: true });
  }
});
