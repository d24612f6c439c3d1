// Listing and bucket edge cases tools rely on (issue 18): max-keys=0, ListObjectVersions of a
// bucket that never had versioning, CreateBucket of a bucket its owner already has, bucket tagging
// and the tag limits.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { startStore } from "../../../src/engine/store/index.js";
import { awsEnv, CREDS, run, s3Error, type TestStore, withStore } from "./helpers.js";

let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "edges" }));
  for (const k of ["a/1", "a/2", "b", "c"]) {
    await t.s3.send(new PutObjectCommand({ Bucket: "edges", Key: k, Body: k }));
  }
});
after(async () => {
  await t.stop();
});

test("max-keys=0 lists nothing and is not truncated (v1 and v2)", async () => {
  const v2 = await t.s3.send(new ListObjectsV2Command({ Bucket: "edges", MaxKeys: 0 }));
  assert.equal(v2.KeyCount, 0);
  assert.equal(v2.Contents, undefined);
  assert.equal(v2.IsTruncated, false);
  const v1 = await t.s3.send(new ListObjectsCommand({ Bucket: "edges", MaxKeys: 0 }));
  assert.equal(v1.Contents, undefined);
  assert.equal(v1.IsTruncated, false);
});

test("ListObjectVersions of an unversioned bucket: each object once, version null, paged", async () => {
  const all = await t.s3.send(new ListObjectVersionsCommand({ Bucket: "edges" }));
  assert.deepEqual(
    all.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest, v.Size]),
    [
      ["a/1", "null", true, 3],
      ["a/2", "null", true, 3],
      ["b", "null", true, 1],
      ["c", "null", true, 1],
    ],
  );
  assert.equal(all.IsTruncated, false);
  const grouped = await t.s3.send(new ListObjectVersionsCommand({ Bucket: "edges", Delimiter: "/" }));
  assert.deepEqual(
    grouped.CommonPrefixes?.map((p) => p.Prefix),
    ["a/"],
  );
  const keys: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await t.s3.send(
      new ListObjectVersionsCommand({ Bucket: "edges", MaxKeys: 3, KeyMarker: marker }),
    );
    keys.push(...(page.Versions ?? []).map((v) => v.Key!));
    if (!page.IsTruncated) break;
    marker = page.NextKeyMarker;
  }
  assert.deepEqual(keys, ["a/1", "a/2", "b", "c"]);
  const versioning = await t.s3.send(new GetBucketVersioningCommand({ Bucket: "edges" }));
  assert.equal(versioning.Status, undefined, "never versioned: no status");
});

test("aws-cli lists the versions of an unversioned bucket", async () => {
  const home = mkdtempSync(join(tmpdir(), "scar-versions-cli-"));
  try {
    const r = await run(
      "aws",
      ["s3api", "list-object-versions", "--bucket", "edges", "--prefix", "a/"],
      awsEnv(home, t.store),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout).Versions.map((v: { Key: string; VersionId: string }) => `${v.Key}@${v.VersionId}`),
      ["a/1@null", "a/2@null"],
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("CreateBucket of a bucket its owner has: 200 in us-east-1, BucketAlreadyOwnedByYou elsewhere", async () => {
  const again = await t.s3.send(new CreateBucketCommand({ Bucket: "edges" }));
  assert.equal(again.$metadata.httpStatusCode, 200);
  const v2 = await t.s3.send(new ListObjectsV2Command({ Bucket: "edges" }));
  assert.equal(v2.KeyCount, 4, "nothing was reset");
  const dir = mkdtempSync(join(tmpdir(), "scar-store-eu-"));
  const store = await startStore({
    dataDir: dir,
    host: "127.0.0.1",
    port: 0,
    credentials: CREDS,
    region: "eu-west-1",
  });
  const eu = new S3Client({
    endpoint: store.url,
    region: "eu-west-1",
    forcePathStyle: true,
    credentials: CREDS,
  });
  try {
    const cfg = { LocationConstraint: "eu-west-1" as const };
    await eu.send(new CreateBucketCommand({ Bucket: "mine", CreateBucketConfiguration: cfg }));
    const e = await s3Error(
      eu.send(new CreateBucketCommand({ Bucket: "mine", CreateBucketConfiguration: cfg })),
    );
    assert.equal(e.name, "BucketAlreadyOwnedByYou");
    assert.equal(e.$metadata.httpStatusCode, 409);
  } finally {
    eu.destroy();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bucket tagging keeps the tags in order; too many tags, object or bucket, are InvalidTag", async () => {
  const none = await s3Error(t.s3.send(new GetBucketTaggingCommand({ Bucket: "edges" })));
  assert.equal(none.name, "NoSuchTagSet");
  const TagSet = [
    { Key: "team", Value: "imaging" },
    { Key: "2", Value: "two" },
    { Key: "cost-center", Value: "42" },
    { Key: "1", Value: "one" },
  ];
  await t.s3.send(new PutBucketTaggingCommand({ Bucket: "edges", Tagging: { TagSet } }));
  assert.deepEqual((await t.s3.send(new GetBucketTaggingCommand({ Bucket: "edges" }))).TagSet, TagSet);
  await t.s3.send(new DeleteBucketTaggingCommand({ Bucket: "edges" }));
  assert.equal(
    (await s3Error(t.s3.send(new GetBucketTaggingCommand({ Bucket: "edges" })))).name,
    "NoSuchTagSet",
  );
  const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
  const obj = await s3Error(
    t.s3.send(new PutObjectTaggingCommand({ Bucket: "edges", Key: "b", Tagging: { TagSet: eleven } })),
  );
  assert.equal(obj.name, "InvalidTag");
  const fiftyOne = Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
  const bucket = await s3Error(
    t.s3.send(new PutBucketTaggingCommand({ Bucket: "edges", Tagging: { TagSet: fiftyOne } })),
  );
  assert.equal(bucket.name, "InvalidTag");
});

test("ListBuckets pages with max-buckets and a continuation token, filtered by prefix", async () => {
  const s = await withStore();
  try {
    for (const b of ["zeta", "alpha-2", "alpha-1", "beta", "alpha-3"])
      await s.s3.send(new CreateBucketCommand({ Bucket: b }));
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await s.s3.send(
        new ListBucketsCommand({ MaxBuckets: 2, ...(token ? { ContinuationToken: token } : {}) }),
      );
      names.push(...(r.Buckets ?? []).map((b) => b.Name!));
      assert.ok((r.Buckets ?? []).every((b) => b.BucketRegion === "us-east-1"));
      token = r.ContinuationToken;
      pages++;
    } while (token);
    assert.deepEqual(names, ["alpha-1", "alpha-2", "alpha-3", "beta", "zeta"]);
    assert.equal(pages, 3);
    const alpha = await s.s3.send(new ListBucketsCommand({ Prefix: "alpha-", MaxBuckets: 2 }));
    assert.deepEqual(
      alpha.Buckets?.map((b) => b.Name),
      ["alpha-1", "alpha-2"],
    );
    assert.equal(alpha.Prefix, "alpha-");
    const rest = await s.s3.send(
      new ListBucketsCommand({ Prefix: "alpha-", ContinuationToken: alpha.ContinuationToken }),
    );
    assert.deepEqual(
      rest.Buckets?.map((b) => b.Name),
      ["alpha-3"],
    );
    assert.equal(rest.ContinuationToken, undefined);
    const elsewhere = await s.s3.send(new ListBucketsCommand({ BucketRegion: "eu-west-1" }));
    assert.deepEqual(elsewhere.Buckets ?? [], []);
    const bad = await s3Error(s.s3.send(new ListBucketsCommand({ MaxBuckets: 0 })));
    assert.equal(bad.name, "InvalidArgument");
    const forged = await s3Error(s.s3.send(new ListBucketsCommand({ ContinuationToken: "not a token!" })));
    assert.match(forged.message, /continuation token provided is incorrect/);
    // aws-cli: a page, then the next one from its token.
    const home = mkdtempSync(join(tmpdir(), "scar-listbuckets-"));
    try {
      const cli = async (...args: string[]) => {
        const r = await run(
          "aws",
          ["s3api", "list-buckets", "--output", "json", ...args],
          awsEnv(home, s.store),
        );
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as { Buckets: { Name: string }[]; ContinuationToken?: string };
      };
      const first = await cli("--prefix", "alpha-", "--max-buckets", "2");
      assert.deepEqual(
        first.Buckets.map((b) => b.Name),
        ["alpha-1", "alpha-2"],
      );
      const second = await cli("--prefix", "alpha-", "--continuation-token", first.ContinuationToken!);
      assert.deepEqual(
        second.Buckets.map((b) => b.Name),
        ["alpha-3"],
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  } finally {
    await s.stop();
  }
});

test("an empty continuation token lists from the start and is echoed empty", async () => {
  const r = await t.s3.send(new ListObjectsV2Command({ Bucket: "edges", ContinuationToken: "" }));
  assert.equal(r.ContinuationToken, "");
  assert.equal(r.IsTruncated, false);
  assert.deepEqual(
    r.Contents?.map((o) => o.Key),
    ["a/1", "a/2", "b", "c"],
  );
});

test("encoding-type=url: the prefix and keys come back URL-encoded", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "edges", Key: "sp ace/ü+1", Body: "x" }));
  try {
    // The JS SDK hands the listing back as sent, encoded.
    const r = await t.s3.send(
      new ListObjectsV2Command({ Bucket: "edges", Prefix: "sp ace/", EncodingType: "url" }),
    );
    assert.equal(r.EncodingType, "url");
    assert.equal(r.Prefix, "sp%20ace/");
    assert.deepEqual(
      r.Contents?.map((o) => o.Key),
      ["sp%20ace/%C3%BC%2B1"],
    );
  } finally {
    await t.s3.send(new DeleteObjectCommand({ Bucket: "edges", Key: "sp ace/ü+1" }));
  }
});

test("object tags keep their order, integer-like keys too, also from x-amz-tagging", async () => {
  const TagSet = [
    { Key: "zeta", Value: "1" },
    { Key: "10", Value: "ten" },
    { Key: "2", Value: "two" },
    { Key: "alpha", Value: "" },
  ];
  await t.s3.send(new PutObjectCommand({ Bucket: "edges", Key: "tagged", Body: "x" }));
  await t.s3.send(new PutObjectTaggingCommand({ Bucket: "edges", Key: "tagged", Tagging: { TagSet } }));
  const got = await t.s3.send(new GetObjectTaggingCommand({ Bucket: "edges", Key: "tagged" }));
  assert.deepEqual(got.TagSet, TagSet);
  await t.s3.send(
    new PutObjectCommand({ Bucket: "edges", Key: "tagged2", Body: "x", Tagging: "b=1&3=x&1=y" }),
  );
  const fromHeader = await t.s3.send(new GetObjectTaggingCommand({ Bucket: "edges", Key: "tagged2" }));
  assert.deepEqual(
    fromHeader.TagSet?.map((x) => x.Key),
    ["b", "3", "1"],
  );
  const dup = await s3Error(
    t.s3.send(new PutObjectCommand({ Bucket: "edges", Key: "t3", Body: "x", Tagging: "a=1&a=2" })),
  );
  assert.equal(dup.name, "InvalidTag");
});

test("object tags a journal wrote as an object still load, as pairs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-old-tags-"));
  try {
    mkdirSync(join(dir, ".scar-store"), { recursive: true });
    mkdirSync(join(dir, "old"));
    writeFileSync(join(dir, "old", "k"), "x");
    const records = [
      { op: "mkb", b: "old", t: 1_700_000_000_000 },
      {
        op: "put",
        b: "old",
        o: {
          key: "k",
          path: "old/k",
          size: 1,
          etag: "9dd4e461268c8034f5c8564e155c67a6",
          mtime: 1_700_000_000_000,
          headers: {},
          meta: {},
          tags: { b: "2", a: "1" },
        },
      },
    ];
    writeFileSync(join(dir, ".scar-store", "journal"), records.map((r) => `${JSON.stringify(r)}\n`).join(""));
    const old = await withStore({ dataDir: dir });
    try {
      const got = await old.s3.send(new GetObjectTaggingCommand({ Bucket: "old", Key: "k" }));
      assert.deepEqual(
        got.TagSet?.map((x) => `${x.Key}=${x.Value}`),
        ["b=2", "a=1"],
      );
      const head = await old.s3.send(new GetObjectCommand({ Bucket: "old", Key: "k" }));
      assert.equal(head.TagCount, 2);
      await head.Body!.transformToString();
    } finally {
      await old.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
