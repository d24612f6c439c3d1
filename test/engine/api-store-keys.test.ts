/**
 * POST/DELETE /system/store-keys: a key pair of the store lent to a function run outside the engine
 * (`scar emulate`), limited to the buckets asked for; refused input, the admin only, and a DELETE
 * that takes back lent key pairs only (never the admin's). Used with a real S3 client.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ServiceException,
} from "@aws-sdk/client-s3";
import { useApiEngine } from "./api-harness.js";

const t = useApiEngine({ prefix: "scar-store-keys-" });

function client(c: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: t.engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
}

const code = (name: string) => (e: S3ServiceException) => e.name === name;

test("a lent key pair reaches its buckets only, until it is given back", async () => {
  const admin = client(t.engine.credentials.s3);
  for (const b of ["lent-mine", "lent-other"]) await admin.send(new CreateBucketCommand({ Bucket: b }));
  const r = await t.call("POST", "/system/store-keys", { body: { buckets: ["lent-mine"], ttl_seconds: 60 } });
  assert.equal(r.status, 201);
  const pair = await r.json();
  assert.match(pair.accessKeyId, /^SCAREM[0-9A-F]{16}$/);
  assert.deepEqual(pair.buckets, ["lent-mine"]);
  const lent = client(pair);
  await lent.send(new ListObjectsV2Command({ Bucket: "lent-mine" }));
  await assert.rejects(lent.send(new ListObjectsV2Command({ Bucket: "lent-other" })), code("AccessDenied"));
  assert.equal((await t.call("DELETE", `/system/store-keys/${pair.accessKeyId}`)).status, 204);
  await assert.rejects(
    lent.send(new ListObjectsV2Command({ Bucket: "lent-mine" })),
    code("InvalidAccessKeyId"),
  );
  // only lent key pairs: again, or the admin's, is 404 and the admin's keeps working
  assert.equal((await t.call("DELETE", `/system/store-keys/${pair.accessKeyId}`)).status, 404);
  const adminId = t.engine.credentials.s3.accessKeyId;
  assert.equal((await t.call("DELETE", `/system/store-keys/${adminId}`)).status, 404);
  await admin.send(new ListObjectsV2Command({ Bucket: "lent-other" }));
  lent.destroy();
  admin.destroy();
});

test("bad requests are 400 with the reason; without the admin's credentials 401", async () => {
  for (const [body, reason] of [
    [{ buckets: ["Bad_Bucket"], ttl_seconds: 60 }, /not a valid bucket name/],
    [{ buckets: "lent-mine", ttl_seconds: 60 }, /buckets must be a list/],
    [{ buckets: [], ttl_seconds: 0 }, /ttl_seconds must be a whole number/],
    [{ buckets: [], ttl_seconds: 86_401 }, /ttl_seconds must be a whole number/],
  ] as const) {
    const r = await t.call("POST", "/system/store-keys", { body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match((await r.json()).error, reason);
  }
  const anon = await t.call("POST", "/system/store-keys", {
    body: { buckets: [], ttl_seconds: 5 },
    auth: null,
  });
  assert.equal(anon.status, 401);
});
