// The store driven by @aws-sdk/client-s3 with default settings (which sends CRC32 checksums and
// aws-chunked trailers), plus raw HTTP where the exact bytes of an S3 answer matter.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutBucketAclCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { CREDS, s3Error, type TestStore, withStore } from "./helpers.js";

let t: TestStore;
before(async () => {
  t = await withStore();
});
after(async () => {
  await t.stop();
});

async function put(bucket: string, key: string, body: string | Buffer) {
  return t.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

async function get(bucket: string, key: string): Promise<Buffer> {
  const r = await t.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

const md5 = (b: Buffer | string) => createHash("md5").update(b).digest("hex");

test("buckets: create, list, head, location, delete only when empty", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "bk-one" }));
  await t.s3.send(new CreateBucketCommand({ Bucket: "bk-two" }));
  // The owner re-creating a bucket in us-east-1: 200 and nothing changes (S3's legacy rule; other
  // regions answer BucketAlreadyOwnedByYou: store/listing-edges.test.ts).
  const again = await t.s3.send(new CreateBucketCommand({ Bucket: "bk-one" }));
  assert.equal(again.$metadata.httpStatusCode, 200);
  const names = (await t.s3.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name);
  assert.ok(names.includes("bk-one") && names.includes("bk-two"));
  await t.s3.send(new HeadBucketCommand({ Bucket: "bk-one" }));
  const loc = await t.s3.send(new GetBucketLocationCommand({ Bucket: "bk-one" }));
  assert.equal(loc.LocationConstraint, undefined);
  await put("bk-one", "x", "1");
  const notEmpty = await s3Error(t.s3.send(new DeleteBucketCommand({ Bucket: "bk-one" })));
  assert.equal(notEmpty.name, "BucketNotEmpty");
  assert.equal(notEmpty.$metadata.httpStatusCode, 409);
  await t.s3.send(new DeleteObjectCommand({ Bucket: "bk-one", Key: "x" }));
  await t.s3.send(new DeleteBucketCommand({ Bucket: "bk-one" }));
  const gone = await s3Error(t.s3.send(new HeadBucketCommand({ Bucket: "bk-one" })));
  assert.equal(gone.$metadata.httpStatusCode, 404);
  const noBucket = await s3Error(t.s3.send(new GetObjectCommand({ Bucket: "bk-one", Key: "x" })));
  assert.equal(noBucket.name, "NoSuchBucket");
  const bad = await s3Error(t.s3.send(new CreateBucketCommand({ Bucket: "Bad_Name" })));
  assert.equal(bad.name, "InvalidBucketName");
});

test("objects: metadata and content headers round-trip; overwrite; delete of a missing key is 204", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "objs" }));
  await t.s3.send(
    new PutObjectCommand({
      Bucket: "objs",
      Key: "doc.html",
      Body: "<p>hi</p>",
      ContentType: "text/html",
      ContentEncoding: "identity",
      ContentDisposition: 'attachment; filename="doc.html"',
      CacheControl: "max-age=60",
      Metadata: { alpha: "1", "with-dash": "two words" },
    }),
  );
  const h = await t.s3.send(new HeadObjectCommand({ Bucket: "objs", Key: "doc.html" }));
  assert.equal(h.ContentType, "text/html");
  assert.equal(h.ContentEncoding, "identity");
  assert.equal(h.ContentDisposition, 'attachment; filename="doc.html"');
  assert.equal(h.CacheControl, "max-age=60");
  assert.deepEqual(h.Metadata, { alpha: "1", "with-dash": "two words" });
  assert.equal(h.ETag, `"${md5("<p>hi</p>")}"`);
  await put("objs", "doc.html", "v2");
  assert.equal((await get("objs", "doc.html")).toString(), "v2");
  const h2 = await t.s3.send(new HeadObjectCommand({ Bucket: "objs", Key: "doc.html" }));
  assert.equal(h2.ContentType, "application/octet-stream");
  assert.deepEqual(h2.Metadata, {});
  await t.s3.send(new DeleteObjectCommand({ Bucket: "objs", Key: "never-was" }));
  const missing = await s3Error(t.s3.send(new HeadObjectCommand({ Bucket: "objs", Key: "never-was" })));
  assert.equal(missing.$metadata.httpStatusCode, 404);
  // An empty object.
  await put("objs", "empty", "");
  assert.equal((await get("objs", "empty")).length, 0);
});

test("objects: a streamed body of unknown length (aws-chunked with CRC32 trailer) round-trips", async () => {
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i));
  const all = Buffer.concat(chunks);
  await t.s3.send(new CreateBucketCommand({ Bucket: "stream" }));
  await t.s3.send(
    new PutObjectCommand({
      Bucket: "stream",
      Key: "s.bin",
      Body: Readable.from(chunks),
      ContentLength: all.length,
    }),
  );
  assert.equal(md5(await get("stream", "s.bin")), md5(all));
});

test("checksums: SHA256, SHA1, CRC32C and CRC64NVME accepted; a wrong checksum or Content-MD5 is BadDigest", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "sums" }));
  for (const alg of ["SHA256", "SHA1", "CRC32C", "CRC32", "CRC64NVME"] as const) {
    const r = await t.s3.send(
      new PutObjectCommand({ Bucket: "sums", Key: alg, Body: `data for ${alg}`, ChecksumAlgorithm: alg }),
    );
    assert.ok(r.ETag);
    const g = await t.s3.send(new GetObjectCommand({ Bucket: "sums", Key: alg, ChecksumMode: "ENABLED" }));
    assert.equal(await g.Body!.transformToString(), `data for ${alg}`);
  }
  const wrong = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "sums", Key: "bad", Body: "abc", ChecksumCRC32: "AAAAAA==" })),
  );
  assert.equal(wrong.name, "BadDigest");
  assert.equal(wrong.$metadata.httpStatusCode, 400);
  const badMd5 = await s3Error(
    t.s3.send(
      new PutObjectCommand({
        Bucket: "sums",
        Key: "bad",
        Body: "abc",
        ContentMD5: Buffer.alloc(16).toString("base64"),
      }),
    ),
  );
  assert.equal(badMd5.name, "BadDigest");
  const missing = await s3Error(t.s3.send(new HeadObjectCommand({ Bucket: "sums", Key: "bad" })));
  assert.equal(missing.$metadata.httpStatusCode, 404);
});

test("get: ranges and conditional requests", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "ranges" }));
  const { ETag } = await put("ranges", "r", "0123456789");
  const part = await t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", Range: "bytes=2-4" }));
  assert.equal(await part.Body!.transformToString(), "234");
  assert.equal(part.ContentRange, "bytes 2-4/10");
  const tail = await t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", Range: "bytes=-3" }));
  assert.equal(await tail.Body!.transformToString(), "789");
  const open = await t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", Range: "bytes=7-" }));
  assert.equal(await open.Body!.transformToString(), "789");
  const beyond = await t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", Range: "bytes=5-100" }));
  assert.equal(await beyond.Body!.transformToString(), "56789");
  const bad = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", Range: "bytes=10-" })),
  );
  assert.equal(bad.name, "InvalidRange");
  assert.equal(bad.$metadata.httpStatusCode, 416);
  const notModified = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", IfNoneMatch: ETag })),
  );
  assert.equal(notModified.$metadata.httpStatusCode, 304);
  const pre = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", IfMatch: '"nope"' })),
  );
  assert.equal(pre.name, "PreconditionFailed");
  assert.equal(pre.$metadata.httpStatusCode, 412);
  const ok = await t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", IfMatch: ETag }));
  assert.equal(await ok.Body!.transformToString(), "0123456789");
  const future = new Date(Date.now() + 3600_000);
  const nm = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", IfModifiedSince: future })),
  );
  assert.equal(nm.$metadata.httpStatusCode, 304);
  const past = new Date(Date.now() - 3600_000);
  const um = await s3Error(
    t.s3.send(new GetObjectCommand({ Bucket: "ranges", Key: "r", IfUnmodifiedSince: past })),
  );
  assert.equal(um.$metadata.httpStatusCode, 412);
});

test("copy: COPY keeps metadata, REPLACE replaces it, copying onto itself unchanged is refused", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "copy-src" }));
  await t.s3.send(new CreateBucketCommand({ Bucket: "copy-dst" }));
  await t.s3.send(
    new PutObjectCommand({
      Bucket: "copy-src",
      Key: "dir/a b+c.txt",
      Body: "copy me",
      ContentType: "text/x",
      Metadata: { k: "v" },
    }),
  );
  const c = await t.s3.send(
    new CopyObjectCommand({
      Bucket: "copy-dst",
      Key: "one",
      CopySource: `copy-src/${encodeURIComponent("dir/a b+c.txt")}`,
    }),
  );
  assert.equal(c.CopyObjectResult?.ETag, `"${md5("copy me")}"`);
  const h = await t.s3.send(new HeadObjectCommand({ Bucket: "copy-dst", Key: "one" }));
  assert.equal(h.ContentType, "text/x");
  assert.deepEqual(h.Metadata, { k: "v" });
  await t.s3.send(
    new CopyObjectCommand({
      Bucket: "copy-dst",
      Key: "two",
      CopySource: `copy-src/${encodeURIComponent("dir/a b+c.txt")}`,
      MetadataDirective: "REPLACE",
      ContentType: "text/y",
      Metadata: { other: "w" },
    }),
  );
  const h2 = await t.s3.send(new HeadObjectCommand({ Bucket: "copy-dst", Key: "two" }));
  assert.equal(h2.ContentType, "text/y");
  assert.deepEqual(h2.Metadata, { other: "w" });
  assert.equal((await get("copy-dst", "two")).toString(), "copy me");
  const self = await s3Error(
    t.s3.send(new CopyObjectCommand({ Bucket: "copy-dst", Key: "two", CopySource: "copy-dst/two" })),
  );
  assert.equal(self.name, "InvalidRequest");
  const missing = await s3Error(
    t.s3.send(new CopyObjectCommand({ Bucket: "copy-dst", Key: "x", CopySource: "copy-src/nope" })),
  );
  assert.equal(missing.name, "NoSuchKey");
});

test("DeleteObjects: deletes listed keys, reports each, quiet mode reports nothing", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "multi-del" }));
  for (const k of ["a", "b", "c", "d"]) await put("multi-del", k, k);
  const r = await t.s3.send(
    new DeleteObjectsCommand({
      Bucket: "multi-del",
      Delete: { Objects: [{ Key: "a" }, { Key: "b" }, { Key: "zz" }] },
    }),
  );
  assert.deepEqual(r.Deleted?.map((d) => d.Key).sort(), ["a", "b", "zz"]);
  const q = await t.s3.send(
    new DeleteObjectsCommand({ Bucket: "multi-del", Delete: { Objects: [{ Key: "c" }], Quiet: true } }),
  );
  assert.equal(q.Deleted, undefined);
  const left = await t.s3.send(new ListObjectsV2Command({ Bucket: "multi-del" }));
  assert.deepEqual(
    left.Contents?.map((c) => c.Key),
    ["d"],
  );
});

test("multipart: upload, list parts and uploads, complete with S3's ETag; errors for small, wrong and aborted parts", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "mpu" }));
  const p1 = Buffer.alloc(5 * 1024 * 1024, 1);
  const p2 = Buffer.from("tail");
  const { UploadId } = await t.s3.send(
    new CreateMultipartUploadCommand({ Bucket: "mpu", Key: "big", ContentType: "app/x" }),
  );
  const e1 = (
    await t.s3.send(new UploadPartCommand({ Bucket: "mpu", Key: "big", UploadId, PartNumber: 1, Body: p1 }))
  ).ETag!;
  const e2 = (
    await t.s3.send(new UploadPartCommand({ Bucket: "mpu", Key: "big", UploadId, PartNumber: 2, Body: p2 }))
  ).ETag!;
  const parts = await t.s3.send(new ListPartsCommand({ Bucket: "mpu", Key: "big", UploadId }));
  assert.deepEqual(
    parts.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag]),
    [
      [1, p1.length, e1],
      [2, 4, e2],
    ],
  );
  const ups = await t.s3.send(new ListMultipartUploadsCommand({ Bucket: "mpu" }));
  assert.deepEqual(
    ups.Uploads?.map((u) => [u.Key, u.UploadId]),
    [["big", UploadId]],
  );
  const wrong = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "mpu",
        Key: "big",
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: e1 },
            { PartNumber: 2, ETag: '"00000000000000000000000000000000"' },
          ],
        },
      }),
    ),
  );
  assert.equal(wrong.name, "InvalidPart");
  const order = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "mpu",
        Key: "big",
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 2, ETag: e2 },
            { PartNumber: 1, ETag: e1 },
          ],
        },
      }),
    ),
  );
  assert.equal(order.name, "InvalidPartOrder");
  const done = await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "mpu",
      Key: "big",
      UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: e1 },
          { PartNumber: 2, ETag: e2 },
        ],
      },
    }),
  );
  const expected = createHash("md5")
    .update(Buffer.concat([Buffer.from(md5(p1), "hex"), Buffer.from(md5(p2), "hex")]))
    .digest("hex");
  assert.equal(done.ETag, `"${expected}-2"`);
  const body = await get("mpu", "big");
  assert.equal(md5(body), md5(Buffer.concat([p1, p2])));
  const h = await t.s3.send(new HeadObjectCommand({ Bucket: "mpu", Key: "big" }));
  assert.equal(h.ContentType, "app/x");
  assert.equal((await t.s3.send(new ListMultipartUploadsCommand({ Bucket: "mpu" }))).Uploads, undefined);

  // Parts below 5 MiB (except the last) are EntityTooSmall.
  const small = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: "mpu", Key: "small" }));
  const s1 = (
    await t.s3.send(
      new UploadPartCommand({
        Bucket: "mpu",
        Key: "small",
        UploadId: small.UploadId,
        PartNumber: 1,
        Body: "a",
      }),
    )
  ).ETag;
  const s2 = (
    await t.s3.send(
      new UploadPartCommand({
        Bucket: "mpu",
        Key: "small",
        UploadId: small.UploadId,
        PartNumber: 2,
        Body: "b",
      }),
    )
  ).ETag;
  const tooSmall = await s3Error(
    t.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "mpu",
        Key: "small",
        UploadId: small.UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: s1 },
            { PartNumber: 2, ETag: s2 },
          ],
        },
      }),
    ),
  );
  assert.equal(tooSmall.name, "EntityTooSmall");
  await t.s3.send(new AbortMultipartUploadCommand({ Bucket: "mpu", Key: "small", UploadId: small.UploadId }));
  const aborted = await s3Error(
    t.s3.send(
      new UploadPartCommand({
        Bucket: "mpu",
        Key: "small",
        UploadId: small.UploadId,
        PartNumber: 3,
        Body: "c",
      }),
    ),
  );
  assert.equal(aborted.name, "NoSuchUpload");
  assert.equal(aborted.$metadata.httpStatusCode, 404);
  const noKey = await s3Error(t.s3.send(new HeadObjectCommand({ Bucket: "mpu", Key: "small" })));
  assert.equal(noKey.$metadata.httpStatusCode, 404);
});

test("listing: prefix, delimiter, pagination (v2 and v1), byte order, start-after, url encoding", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "lists" }));
  const keys = [
    "a",
    "a/",
    "a/b",
    "a/c/d",
    "b",
    "b c",
    "é",
    "z",
    "\u{1F600}",
    "\uFFFD",
    "photos/2024/x.jpg",
    "photos/y.jpg",
  ];
  for (const k of keys) await put("lists", k, k);
  const all = await t.s3.send(new ListObjectsV2Command({ Bucket: "lists" }));
  // UTF-8 byte order: U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80).
  assert.deepEqual(
    all.Contents?.map((c) => c.Key),
    [
      "a",
      "a/",
      "a/b",
      "a/c/d",
      "b",
      "b c",
      "photos/2024/x.jpg",
      "photos/y.jpg",
      "z",
      "é",
      "\uFFFD",
      "\u{1F600}",
    ],
  );
  assert.equal(all.KeyCount, 12);
  const d = await t.s3.send(new ListObjectsV2Command({ Bucket: "lists", Delimiter: "/" }));
  assert.deepEqual(
    d.Contents?.map((c) => c.Key),
    ["a", "b", "b c", "z", "é", "\uFFFD", "\u{1F600}"],
  );
  assert.deepEqual(
    d.CommonPrefixes?.map((c) => c.Prefix),
    ["a/", "photos/"],
  );
  const p = await t.s3.send(new ListObjectsV2Command({ Bucket: "lists", Prefix: "a/", Delimiter: "/" }));
  assert.deepEqual(
    p.Contents?.map((c) => c.Key),
    ["a/", "a/b"],
  );
  assert.deepEqual(
    p.CommonPrefixes?.map((c) => c.Prefix),
    ["a/c/"],
  );
  // Pages of 2 with a delimiter: common prefixes count against max-keys.
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const r = await t.s3.send(
      new ListObjectsV2Command({ Bucket: "lists", Delimiter: "/", MaxKeys: 2, ContinuationToken: token }),
    );
    seen.push(...(r.Contents ?? []).map((c) => c.Key!), ...(r.CommonPrefixes ?? []).map((c) => c.Prefix!));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
    pages++;
  } while (token);
  assert.equal(pages, 5);
  assert.deepEqual(
    seen.sort(),
    [...d.Contents!.map((c) => c.Key!), ...d.CommonPrefixes!.map((c) => c.Prefix!)].sort(),
  );
  const sa = await t.s3.send(new ListObjectsV2Command({ Bucket: "lists", StartAfter: "photos/y.jpg" }));
  assert.deepEqual(
    sa.Contents?.map((c) => c.Key),
    ["z", "é", "\uFFFD", "\u{1F600}"],
  );
  // v1 with markers.
  const v1: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const r = await t.s3.send(new ListObjectsCommand({ Bucket: "lists", MaxKeys: 5, Marker: marker }));
    v1.push(...(r.Contents ?? []).map((c) => c.Key!));
    if (!r.IsTruncated) break;
    marker = r.NextMarker ?? r.Contents![r.Contents!.length - 1]!.Key;
  }
  assert.deepEqual(
    v1,
    all.Contents?.map((c) => c.Key),
  );
  const v1d = await t.s3.send(new ListObjectsCommand({ Bucket: "lists", Delimiter: "/", MaxKeys: 1 }));
  assert.equal(v1d.NextMarker, "a");
  const enc = await rawBody(new ListObjectsV2Command({ Bucket: "lists", Prefix: "b", EncodingType: "url" }));
  assert.match(enc, /<Key>b%20c<\/Key>/);
  assert.match(enc, /<EncodingType>url<\/EncodingType>/);
  const badToken = await s3Error(
    t.s3.send(new ListObjectsV2Command({ Bucket: "lists", ContinuationToken: "garbage" })),
  );
  assert.equal(badToken.name, "InvalidArgument");
});

/** The raw body of a request presigned by the SDK (to check the XML S3 sends byte for byte). */
// biome-ignore lint/suspicious/noExplicitAny: any S3 command
async function rawBody(command: any): Promise<string> {
  const url = await getSignedUrl(t.s3, command, { expiresIn: 60 });
  return (await fetch(url)).text();
}

test("presigned URLs: GET and PUT work with plain HTTP; a tampered or expired URL is refused", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "presign" }));
  const putUrl = await getSignedUrl(t.s3, new PutObjectCommand({ Bucket: "presign", Key: "up load.txt" }), {
    expiresIn: 300,
  });
  const r = await fetch(putUrl, { method: "PUT", body: "via presigned put" });
  assert.equal(r.status, 200, await r.text());
  const getUrl = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "presign", Key: "up load.txt" }), {
    expiresIn: 300,
  });
  const g = await fetch(getUrl);
  assert.equal(g.status, 200);
  assert.equal(await g.text(), "via presigned put");
  const tampered = await fetch(getUrl.replace("up%20load", "other"));
  assert.equal(tampered.status, 403);
  assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  const old = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "presign", Key: "up load.txt" }), {
    expiresIn: 1,
    signingDate: new Date(Date.now() - 120_000),
  });
  const expired = await fetch(old);
  assert.equal(expired.status, 403);
  const body = await expired.text();
  assert.match(body, /<Code>AccessDenied<\/Code>/);
  assert.match(body, /Request has expired/);
});

test("auth: anonymous, unknown key and wrong secret get S3's errors as XML", async () => {
  const anon = await fetch(`${t.store.url}/`);
  assert.equal(anon.status, 403);
  const xml = await anon.text();
  assert.match(
    xml,
    /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied<\/Code><Message>Access Denied<\/Message><Resource>\/<\/Resource><RequestId>[0-9A-F]{16}<\/RequestId><\/Error>$/,
  );
  const unknown = new S3Client({
    endpoint: t.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "NOPE", secretAccessKey: "x" },
  });
  const e1 = await s3Error(unknown.send(new ListBucketsCommand({})));
  assert.equal(e1.name, "InvalidAccessKeyId");
  assert.equal(e1.$metadata.httpStatusCode, 403);
  unknown.destroy();
  const wrong = new S3Client({
    endpoint: t.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: "wrong" },
  });
  const e2 = await s3Error(wrong.send(new PutObjectCommand({ Bucket: "presign", Key: "k", Body: "x" })));
  assert.equal(e2.name, "SignatureDoesNotMatch");
  wrong.destroy();
  const noKey = await s3Error(t.s3.send(new GetObjectCommand({ Bucket: "presign", Key: "nothing/here" })));
  assert.equal(noKey.name, "NoSuchKey");
  assert.equal(noKey.$metadata.httpStatusCode, 404);
});

test("UploadPartCopy: a multipart object assembled from ranges of another object", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "partcopy" }));
  const src = Buffer.alloc(6 * 1024 * 1024 + 10);
  for (let i = 0; i < src.length; i++) src[i] = i % 251;
  await put("partcopy", "src", src);
  const { UploadId } = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: "partcopy", Key: "dst" }));
  const cut = 5 * 1024 * 1024;
  const c1 = await t.s3.send(
    new UploadPartCopyCommand({
      Bucket: "partcopy",
      Key: "dst",
      UploadId,
      PartNumber: 1,
      CopySource: "partcopy/src",
      CopySourceRange: `bytes=0-${cut - 1}`,
    }),
  );
  const c2 = await t.s3.send(
    new UploadPartCopyCommand({
      Bucket: "partcopy",
      Key: "dst",
      UploadId,
      PartNumber: 2,
      CopySource: "partcopy/src",
      CopySourceRange: `bytes=${cut}-${src.length - 1}`,
    }),
  );
  assert.equal(c1.CopyPartResult?.ETag, `"${md5(src.subarray(0, cut))}"`);
  const bad = await s3Error(
    t.s3.send(
      new UploadPartCopyCommand({
        Bucket: "partcopy",
        Key: "dst",
        UploadId,
        PartNumber: 3,
        CopySource: "partcopy/src",
        CopySourceRange: "bytes=5-1",
      }),
    ),
  );
  assert.equal(bad.name, "InvalidArgument");
  const past = await s3Error(
    t.s3.send(
      new UploadPartCopyCommand({
        Bucket: "partcopy",
        Key: "dst",
        UploadId,
        PartNumber: 3,
        CopySource: "partcopy/src",
        CopySourceRange: `bytes=0-${src.length}`,
      }),
    ),
  );
  assert.equal(past.name, "InvalidRange", "a range past the source's end");
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "partcopy",
      Key: "dst",
      UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: c1.CopyPartResult?.ETag },
          { PartNumber: 2, ETag: c2.CopyPartResult?.ETag },
        ],
      },
    }),
  );
  assert.ok((await get("partcopy", "dst")).equals(src));
});

test("object tagging: x-amz-tagging on PUT, Get/Put/DeleteObjectTagging", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "tags" }));
  await t.s3.send(
    new PutObjectCommand({ Bucket: "tags", Key: "t", Body: "x", Tagging: "team=a%20b&env=dev" }),
  );
  const g = await t.s3.send(new GetObjectTaggingCommand({ Bucket: "tags", Key: "t" }));
  assert.deepEqual(g.TagSet, [
    { Key: "team", Value: "a b" },
    { Key: "env", Value: "dev" },
  ]);
  await t.s3.send(
    new PutObjectTaggingCommand({
      Bucket: "tags",
      Key: "t",
      Tagging: { TagSet: [{ Key: "k", Value: "v" }] },
    }),
  );
  assert.deepEqual((await t.s3.send(new GetObjectTaggingCommand({ Bucket: "tags", Key: "t" }))).TagSet, [
    { Key: "k", Value: "v" },
  ]);
  assert.equal((await get("tags", "t")).toString(), "x");
  await t.s3.send(new DeleteObjectTaggingCommand({ Bucket: "tags", Key: "t" }));
  assert.deepEqual((await t.s3.send(new GetObjectTaggingCommand({ Bucket: "tags", Key: "t" }))).TagSet, []);
  const missing = await s3Error(t.s3.send(new GetObjectTaggingCommand({ Bucket: "tags", Key: "nope" })));
  assert.equal(missing.name, "NoSuchKey");
});

test("public-read: the bucket's ACL lets anyone list, the object's ACL lets anyone read", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "public-stuff", ACL: "public-read" }));
  await t.s3.send(new CreateBucketCommand({ Bucket: "private-stuff" }));
  await t.s3.send(
    new PutObjectCommand({
      Bucket: "public-stuff",
      Key: "hello.txt",
      Body: "public hello",
      ACL: "public-read",
    }),
  );
  await put("private-stuff", "hello.txt", "secret");
  const g = await fetch(`${t.store.url}/public-stuff/hello.txt`);
  assert.equal(g.status, 200);
  assert.equal(await g.text(), "public hello");
  const l = await fetch(`${t.store.url}/public-stuff?list-type=2`);
  assert.match(await l.text(), /<Key>hello.txt<\/Key>/);
  const w = await fetch(`${t.store.url}/public-stuff/new.txt`, { method: "PUT", body: "x" });
  assert.equal(w.status, 403);
  assert.match(await w.text(), /<Code>AccessDenied<\/Code>/);
  const p = await fetch(`${t.store.url}/private-stuff/hello.txt`);
  assert.equal(p.status, 403);
  await p.text();
  const acl = await t.s3.send(new GetBucketAclCommand({ Bucket: "public-stuff" }));
  assert.ok(
    acl.Grants?.some(
      (x) => x.Grantee?.URI === "http://acs.amazonaws.com/groups/global/AllUsers" && x.Permission === "READ",
    ),
  );
  await t.s3.send(new PutBucketAclCommand({ Bucket: "public-stuff", ACL: "private" }));
  const unlisted = await fetch(`${t.store.url}/public-stuff?list-type=2`);
  assert.equal(unlisted.status, 403);
  await unlisted.text();
  // The object's own ACL still lets anyone read it, as in S3.
  const still = await fetch(`${t.store.url}/public-stuff/hello.txt`);
  assert.equal(still.status, 200);
  await still.text();
});
