/**
 * OSCAR's presigned URLs (POST /system/buckets/<b>/presign, OSCAR ≥ 4.0) and the version /system/info
 * reports so that OSCAR's clients turn on what the engine answers. The URLs are used with plain
 * fetch, as a browser or curl would, against the engine's own store.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { OSCAR_API_VERSION } from "../../src/engine/api/routes.js";
import { useApiEngine } from "./api-harness.js";

const t = useApiEngine({ prefix: "scar-oscar-presign-" });

async function presign(bucket: string, body: object) {
  return t.call("POST", `/system/buckets/${bucket}/presign`, { body });
}

test("/system/info names the OSCAR release the API follows, and scar's own version apart", async () => {
  const info = await (await t.call("GET", "/system/info")).json();
  assert.equal(info.version, OSCAR_API_VERSION);
  assert.match(info.version, /^v4\./);
  assert.equal(info.serverless_backend.name, "scar-local");
  assert.match(info.serverless_backend.version, /^\d+\.\d+\.\d+/);
});

test("an upload URL takes a PUT with its signed content type; a download URL gives the object back", async () => {
  assert.equal((await t.call("POST", "/system/buckets", { body: { bucket_name: "shared" } })).status, 201);
  const up = await presign("shared", {
    object_key: "/in/photo.txt",
    operation: "upload",
    content_type: "text/plain",
    extra_headers: { "x-amz-meta-origin": "presign-test" },
  });
  assert.equal(up.status, 200, await up.clone().text());
  const u = await up.json();
  assert.equal(u.object_key, "in/photo.txt");
  assert.equal(u.method, "PUT");
  assert.deepEqual(u.headers, { "Content-Type": "text/plain", "X-Amz-Meta-Origin": "presign-test" });
  const expiresIn = (Date.parse(u.expires_at) - Date.now()) / 1000;
  assert.ok(expiresIn > 800 && expiresIn <= 900, `expires_at ${u.expires_at}: 900 s by default`);
  assert.ok(u.url.startsWith(`${t.engine.store.url}/shared/in/photo.txt?`), u.url);
  assert.doesNotMatch(u.url, new RegExp(t.engine.credentials.s3.secretAccessKey));

  // Without the signed header the store refuses the URL; with it, the object is written.
  const bare = await fetch(u.url, {
    method: "PUT",
    body: "hello",
    headers: { "content-type": "text/plain" },
  });
  assert.equal(bare.status, 403, await bare.text());
  const put = await fetch(u.url, { method: "PUT", body: "hello", headers: u.headers });
  assert.equal(put.status, 200, await put.text());

  const down = await (await presign("shared", { object_key: "in/photo.txt", operation: "download" })).json();
  assert.equal(down.method, "GET");
  assert.equal(down.headers, undefined);
  const got = await fetch(down.url);
  assert.equal(got.status, 200);
  assert.equal(await got.text(), "hello");
  assert.equal(got.headers.get("x-amz-meta-origin"), "presign-test");

  // A download's content type is a response override, as OSCAR signs it.
  const typed = await (
    await presign("shared", { object_key: "in/photo.txt", operation: "download", content_type: "image/png" })
  ).json();
  const typedGot = await fetch(typed.url);
  assert.equal(typedGot.headers.get("content-type"), "image/png");
  await typedGot.arrayBuffer();

  // An altered URL (another key) is refused by the store.
  const altered = await fetch(down.url.replace("/in/photo.txt?", "/in/other.txt?"));
  assert.equal(altered.status, 403);
  await altered.arrayBuffer();
});

test("an expired URL is refused by the store", async () => {
  await t.call("POST", "/system/buckets", { body: { bucket_name: "short" } });
  const u = await (await presign("short", { object_key: "k", operation: "upload", expires_in: 1 })).json();
  await sleep(2100);
  const r = await fetch(u.url, { method: "PUT", body: "late" });
  assert.equal(r.status, 403);
  assert.match(await r.text(), /expired/i);
});

test("bad presign requests get OSCAR's 400s, a missing bucket 404, no admin 401", async () => {
  await t.call("POST", "/system/buckets", { body: { bucket_name: "checks" } });
  const cases: [object, RegExp][] = [
    [{ operation: "upload" }, /object_key and operation are required/],
    [{ object_key: "/", operation: "upload" }, /Object key cannot be empty/],
    [{ object_key: "k", operation: "delete" }, /Unsupported operation 'delete'/],
    [{ object_key: "k", operation: "upload", expires_in: 604801 }, /Allowed range is 1-604800 seconds/],
    [{ object_key: "k", operation: "upload", expires_in: -5 }, /Invalid expiration requested: -5/],
    [{ object_key: "k", operation: "upload", extra_headers: { a: 1 } }, /extra_headers.a must be a string/],
  ];
  for (const [body, why] of cases) {
    const r = await presign("checks", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(await r.text(), why);
  }
  const missing = await presign("nope", { object_key: "k", operation: "download" });
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /Bucket 'nope' not found/);
  const anon = await t.call("POST", "/system/buckets/checks/presign", {
    body: { object_key: "k", operation: "download" },
    auth: null,
  });
  assert.equal(anon.status, 401);
});
