// Signature rules the store enforces as S3 does (issue 18): x-amz-* headers that are not signed do
// not act, the credential scope must be the request's, and anonymous requests learn only whether
// a bucket exists. Requests are made with @aws-sdk/client-s3 and changed after signing by a
// middleware, the way a man in the middle (or a buggy proxy) would.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  GetBucketAclCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { CREDS, run, s3Error, type TestStore, withStore } from "./helpers.js";

let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "sig" }));
  await t.s3.send(new PutObjectCommand({ Bucket: "sig", Key: "secret", Body: "private bytes" }));
});
after(async () => {
  await t.stop();
});

/** A client whose requests get `change` applied after they were signed. */
function tampering(change: (headers: Record<string, string>) => void, region = "us-east-1"): S3Client {
  const c = new S3Client({ endpoint: t.store.url, region, forcePathStyle: true, credentials: CREDS });
  const tamper = (next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
    const req = (args as { request: { headers: Record<string, string> } }).request;
    change(req.headers);
    return next(args);
  };
  c.middlewareStack.addRelativeTo(
    tamper as unknown as Parameters<typeof c.middlewareStack.addRelativeTo>[0],
    { relation: "after", toMiddleware: "awsAuthMiddleware", name: "tamper", override: true },
  );
  return c;
}

test("an unsigned x-amz-copy-source added to a signed PUT does not copy", async () => {
  const c = tampering((h) => {
    h["x-amz-copy-source"] = "/sig/secret";
  });
  try {
    const e = await s3Error(c.send(new PutObjectCommand({ Bucket: "sig", Key: "stolen", Body: "" })));
    assert.equal(e.$metadata.httpStatusCode, 403);
    assert.match(e.message, /not signed/);
    const gone = await s3Error(t.s3.send(new HeadObjectCommand({ Bucket: "sig", Key: "stolen" })));
    assert.equal(gone.$metadata.httpStatusCode, 404);
  } finally {
    c.destroy();
  }
});

test("an unsigned x-amz-acl: public-read does not make a new bucket public", async () => {
  const c = tampering((h) => {
    h["x-amz-acl"] = "public-read";
  });
  try {
    const e = await s3Error(c.send(new CreateBucketCommand({ Bucket: "open-door" })));
    assert.equal(e.$metadata.httpStatusCode, 403);
  } finally {
    c.destroy();
  }
  // Not created at all, so certainly not public.
  const r = await fetch(`${t.store.url}/open-door/`);
  assert.equal(r.status, 404);
  await r.arrayBuffer();
});

test("a signature for another region, service or day is refused by its scope", async () => {
  const other = new S3Client({
    endpoint: t.store.url,
    region: "eu-west-1",
    forcePathStyle: true,
    credentials: CREDS,
  });
  try {
    const e = await s3Error(other.send(new GetObjectCommand({ Bucket: "sig", Key: "secret" })));
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.name, "AuthorizationHeaderMalformed");
    assert.match(e.message, /region 'eu-west-1' is wrong; expecting 'us-east-1'/);
  } finally {
    other.destroy();
  }
  const service = tampering((h) => {
    h.authorization = h.authorization!.replace("/s3/aws4_request", "/sqs/aws4_request");
  });
  const day = tampering((h) => {
    h.authorization = h.authorization!.replace(/Credential=([^/]+)\/\d{8}\//, "Credential=$1/20200101/");
  });
  try {
    const e1 = await s3Error(service.send(new GetObjectCommand({ Bucket: "sig", Key: "secret" })));
    assert.equal(e1.name, "AuthorizationHeaderMalformed");
    assert.match(e1.message, /service/);
    const e2 = await s3Error(day.send(new GetObjectCommand({ Bucket: "sig", Key: "secret" })));
    assert.equal(e2.name, "AuthorizationHeaderMalformed");
    assert.match(e2.message, /credential date/);
  } finally {
    service.destroy();
    day.destroy();
  }
});

test("a presigned URL for another region is refused; one for this region works", async () => {
  const other = new S3Client({
    endpoint: t.store.url,
    region: "eu-west-1",
    forcePathStyle: true,
    credentials: CREDS,
  });
  try {
    const bad = await fetch(
      await getSignedUrl(other, new GetObjectCommand({ Bucket: "sig", Key: "secret" })),
    );
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /AuthorizationQueryParametersError/);
  } finally {
    other.destroy();
  }
  const good = await fetch(await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "sig", Key: "secret" })));
  assert.equal(await good.text(), "private bytes");
  const tooLong = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "sig", Key: "secret" }), {
    expiresIn: 604800,
  });
  const r = await fetch(tooLong.replace("X-Amz-Expires=604800", "X-Amz-Expires=604801"));
  assert.equal(r.status, 400);
  assert.match(await r.text(), /AuthorizationQueryParametersError/);
});

test("anonymous: a missing bucket is NoSuchBucket, an existing private one AccessDenied", async () => {
  const missing = await fetch(`${t.store.url}/no-such-bucket-here/key`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /NoSuchBucket/);
  const priv = await fetch(`${t.store.url}/sig/secret`);
  assert.equal(priv.status, 403);
  assert.match(await priv.text(), /AccessDenied/);
  // Signed requests still work, with every x-amz header signed by the SDK.
  const acl = await t.s3.send(new GetBucketAclCommand({ Bucket: "sig" }));
  assert.ok(acl.Owner);
});

test("Expect: 100-continue: the body is asked for only after the signature is checked", async () => {
  const t = await withStore();
  const dir = mkdtempSync(join(tmpdir(), "scar-continue-"));
  try {
    await t.s3.send(new CreateBucketCommand({ Bucket: "cont" }));
    const file = join(dir, "body");
    writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 7));
    const url = await getSignedUrl(t.s3, new PutObjectCommand({ Bucket: "cont", Key: "big" }));
    const put = (u: string) =>
      run("curl", [
        "-sS",
        "-v",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect: 100-continue",
        "-T",
        file,
        u,
      ]);
    const ok = await put(url);
    assert.equal(ok.stdout, "200", ok.stderr);
    assert.match(ok.stderr, /< HTTP\/1\.1 100 Continue/);
    assert.equal(t.store.backend.head("cont", "big").size, 2 * 1024 * 1024);
    const bad = await put(url.replace(/X-Amz-Signature=[0-9a-f]+/, `X-Amz-Signature=${"0".repeat(64)}`));
    assert.equal(bad.stdout, "403", bad.stderr);
    assert.doesNotMatch(bad.stderr, /100 Continue/);
  } finally {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
