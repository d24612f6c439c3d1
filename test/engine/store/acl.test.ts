// Canned ACLs of objects and buckets, enforced for anonymous requests as S3 does (issue 18):
// a private object in a public-read bucket stays private. @aws-sdk/client-s3 and aws-cli v2.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { awsEnv, run, s3Error, type TestStore, withStore } from "./helpers.js";

const ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers";
let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "pub", ACL: "public-read" }));
  await t.s3.send(new CreateBucketCommand({ Bucket: "dropbox", ACL: "public-read-write" }));
});
after(async () => {
  await t.stop();
});

async function anonymous(path: string, init?: RequestInit): Promise<number> {
  const r = await fetch(`${t.store.url}${path}`, init);
  await r.arrayBuffer();
  return r.status;
}

test("a private object in a public-read bucket is not served to anonymous readers", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "pub", Key: "private.txt", Body: "secret" }));
  await t.s3.send(
    new PutObjectCommand({ Bucket: "pub", Key: "public.txt", Body: "hello", ACL: "public-read" }),
  );
  assert.equal(await anonymous("/pub/private.txt"), 403);
  assert.equal(await anonymous("/pub/private.txt", { method: "HEAD" }), 403);
  assert.equal(await anonymous("/pub/public.txt"), 200);
  assert.equal(await anonymous("/pub?list-type=2"), 200, "the bucket's ACL lets anyone list");
});

test("GetObjectAcl and PutObjectAcl, by header and by document", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "pub", Key: "later.txt", Body: "soon public" }));
  const before = await t.s3.send(new GetObjectAclCommand({ Bucket: "pub", Key: "later.txt" }));
  assert.deepEqual(
    before.Grants?.map((g) => g.Permission),
    ["FULL_CONTROL"],
  );
  await t.s3.send(new PutObjectAclCommand({ Bucket: "pub", Key: "later.txt", ACL: "public-read" }));
  const now = await t.s3.send(new GetObjectAclCommand({ Bucket: "pub", Key: "later.txt" }));
  assert.ok(now.Grants?.some((g) => g.Grantee?.URI === ALL_USERS && g.Permission === "READ"));
  assert.equal(await anonymous("/pub/later.txt"), 200);
  // The same policy sent as a document, minus the AllUsers grant: private again.
  await t.s3.send(
    new PutObjectAclCommand({
      Bucket: "pub",
      Key: "later.txt",
      AccessControlPolicy: {
        Owner: now.Owner,
        Grants: now.Grants?.filter((g) => g.Grantee?.URI !== ALL_USERS),
      },
    }),
  );
  assert.equal(await anonymous("/pub/later.txt"), 403);
});

test("every canned ACL is accepted and shown; grants to other accounts are not implemented", async () => {
  for (const acl of [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
  ] as const) {
    await t.s3.send(new PutObjectCommand({ Bucket: "pub", Key: `acl-${acl}`, Body: acl, ACL: acl }));
    const got = await t.s3.send(new GetObjectAclCommand({ Bucket: "pub", Key: `acl-${acl}` }));
    const uris = (got.Grants ?? []).flatMap((g) =>
      g.Grantee?.URI ? [`${g.Grantee.URI.split("/").pop()} ${g.Permission}`] : [],
    );
    const expected: Record<string, string[]> = {
      "public-read": ["AllUsers READ"],
      "public-read-write": ["AllUsers READ", "AllUsers WRITE"],
      "authenticated-read": ["AuthenticatedUsers READ"],
    };
    assert.deepEqual(uris, expected[acl] ?? [], acl);
    assert.equal(await anonymous(`/pub/acl-${acl}`), acl.startsWith("public-read") ? 200 : 403, acl);
  }
  await t.s3.send(new PutBucketAclCommand({ Bucket: "pub", ACL: "authenticated-read" }));
  const b = await t.s3.send(new GetBucketAclCommand({ Bucket: "pub" }));
  assert.ok(b.Grants?.some((g) => g.Grantee?.URI?.endsWith("AuthenticatedUsers")));
  assert.equal(await anonymous("/pub?list-type=2"), 403);
  await t.s3.send(new PutBucketAclCommand({ Bucket: "pub", ACL: "public-read" }));
  const bad = await t.s3
    .send(new PutObjectCommand({ Bucket: "pub", Key: "x", Body: "x", GrantRead: 'id="someone-else"' }))
    .catch((e: S3ServiceException) => e);
  assert.ok(bad instanceof S3ServiceException);
  assert.equal(bad.$metadata.httpStatusCode, 501);
});

test("a copy does not take its source's ACL; a multipart upload's x-amz-acl reaches its object", async () => {
  await t.s3.send(new PutObjectCommand({ Bucket: "pub", Key: "src", Body: "shared", ACL: "public-read" }));
  await t.s3.send(new CopyObjectCommand({ Bucket: "pub", Key: "copy", CopySource: "pub/src" }));
  assert.equal(await anonymous("/pub/copy"), 403);
  const { UploadId } = await t.s3.send(
    new CreateMultipartUploadCommand({ Bucket: "pub", Key: "mp", ACL: "public-read" }),
  );
  const p = await t.s3.send(
    new UploadPartCommand({ Bucket: "pub", Key: "mp", UploadId, PartNumber: 1, Body: "parts" }),
  );
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "pub",
      Key: "mp",
      UploadId,
      MultipartUpload: { Parts: [{ ETag: p.ETag, PartNumber: 1 }] },
    }),
  );
  assert.equal(await anonymous("/pub/mp"), 200);
});

test("public-read-write lets anyone put an object, but not copy one", async () => {
  assert.equal(await anonymous("/dropbox/drop.txt", { method: "PUT", body: "anonymous drop" }), 200);
  assert.equal(
    await anonymous("/dropbox/copied", {
      method: "PUT",
      headers: { "x-amz-copy-source": "/pub/private.txt" },
    }),
    403,
  );
  assert.equal(
    await anonymous("/pub/new.txt", { method: "PUT", body: "x" }),
    403,
    "public-read is not writable",
  );
});

test("aws-cli sets and reads an object ACL", async () => {
  const home = mkdtempSync(join(tmpdir(), "scar-acl-cli-"));
  try {
    await t.s3.send(new PutObjectCommand({ Bucket: "pub", Key: "cli.txt", Body: "cli" }));
    const env = awsEnv(home, t.store);
    const put = await run(
      "aws",
      ["s3api", "put-object-acl", "--bucket", "pub", "--key", "cli.txt", "--acl", "public-read"],
      env,
    );
    assert.equal(put.code, 0, put.stderr);
    const get = await run("aws", ["s3api", "get-object-acl", "--bucket", "pub", "--key", "cli.txt"], env);
    assert.equal(get.code, 0, get.stderr);
    assert.ok(
      JSON.parse(get.stdout).Grants.some((g: { Grantee: { URI?: string } }) => g.Grantee.URI === ALL_USERS),
    );
    assert.equal(await anonymous("/pub/cli.txt"), 200);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a bucket the engine makes public (OSCAR's visibility, MinIO's public bucket) serves every object", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "minio-public" }));
  await t.s3.send(new PutObjectCommand({ Bucket: "minio-public", Key: "result.png", Body: "pixels" }));
  assert.equal(await anonymous("/minio-public/result.png"), 403);
  await t.store.backend.setPublicObjects("minio-public", true);
  assert.equal(await anonymous("/minio-public/result.png"), 200);
  assert.equal(await anonymous("/minio-public?list-type=2"), 200);
  assert.equal(await anonymous("/minio-public/new", { method: "PUT", body: "x" }), 403, "read, not write");
  await t.store.backend.setPublicObjects("minio-public", false);
  assert.equal(await anonymous("/minio-public/result.png"), 403);
});

test("what anonymous writes is anonymous's: the bucket owner deletes it, reads it once it is granted", async () => {
  const home = mkdtempSync(join(tmpdir(), "scar-acl-anon-"));
  const ANON = "65a011a29cdf8ec533ec3d1ccaae921c";
  try {
    const env = awsEnv(home, t.store);
    const unsigned = (...args: string[]) => run("aws", ["s3api", ...args, "--no-sign-request"], env);
    for (const key of ["anon.txt", "anon-2.txt"]) {
      const put = await unsigned(
        "put-object",
        "--bucket",
        "dropbox",
        "--key",
        key,
        "--body",
        "/etc/hostname",
      );
      assert.equal(put.code, 0, put.stderr);
    }
    const listed = await t.s3.send(new ListObjectsV2Command({ Bucket: "dropbox", FetchOwner: true }));
    const owner = listed.Contents?.find((o) => o.Key === "anon.txt")?.Owner;
    assert.deepEqual(owner, { ID: ANON, DisplayName: "anonymous" });
    // the bucket owner may not read it, nor its ACL...
    const read = await s3Error(t.s3.send(new GetObjectCommand({ Bucket: "dropbox", Key: "anon.txt" })));
    assert.equal(read.name, "AccessDenied");
    const acl = await s3Error(t.s3.send(new GetObjectAclCommand({ Bucket: "dropbox", Key: "anon.txt" })));
    assert.equal(acl.name, "AccessDenied");
    // ...but may delete it
    await t.s3.send(new DeleteObjectCommand({ Bucket: "dropbox", Key: "anon-2.txt" }));
    // S3's way to take it: bucket-owner-full-control set unsigned, then a copy over itself
    const shown = await unsigned("get-object-acl", "--bucket", "dropbox", "--key", "anon.txt");
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).Owner.ID, ANON);
    const grant = await unsigned(
      "put-object-acl",
      "--bucket",
      "dropbox",
      "--key",
      "anon.txt",
      "--acl",
      "bucket-owner-full-control",
    );
    assert.equal(grant.code, 0, grant.stderr);
    const got = await t.s3.send(new GetObjectCommand({ Bucket: "dropbox", Key: "anon.txt" }));
    assert.ok((await got.Body!.transformToString()).length > 0);
    await t.s3.send(
      new CopyObjectCommand({
        Bucket: "dropbox",
        Key: "anon.txt",
        CopySource: "dropbox/anon.txt",
        MetadataDirective: "REPLACE",
      }),
    );
    const after = await t.s3.send(new ListObjectsV2Command({ Bucket: "dropbox", FetchOwner: true }));
    const taken = after.Contents?.find((o) => o.Key === "anon.txt");
    assert.notEqual(taken?.Owner?.ID, ANON);
    assert.equal(
      after.Contents?.some((o) => o.Key === "anon-2.txt"),
      false,
    );
    // anonymous has no say over what it no longer owns
    assert.equal(await anonymous("/dropbox/anon.txt?acl"), 403);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
