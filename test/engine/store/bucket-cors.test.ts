/**
 * A bucket's own CORS rules: Put/Get/DeleteBucketCors with the AWS SDK (kept across a restart), the
 * preflights and actual responses a browser gets by them (raw requests, as a browser sends them), and
 * the store-wide allowlist of scar.cfg still taking precedence. A real browser: api-cors-browser.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DeleteBucketCorsCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  PutBucketCorsCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { s3Error, withStore } from "./helpers.js";

const APP = "http://app.example.test:3000";

const RULES = [
  {
    ID: "uploads",
    AllowedOrigins: ["http://*.example.test:3000"],
    AllowedMethods: ["PUT", "GET"],
    AllowedHeaders: ["content-type", "x-amz-meta-*"],
    ExposeHeaders: ["ETag"],
    MaxAgeSeconds: 120,
  },
  { AllowedOrigins: ["*"], AllowedMethods: ["GET", "HEAD"] },
];

function preflight(url: string, origin: string, method: string, headers: string[] = []) {
  return fetch(url, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      ...(headers.length > 0 ? { "access-control-request-headers": headers.join(",") } : {}),
    },
  });
}

test("PutBucketCors, GetBucketCors and DeleteBucketCors, kept across a restart", async () => {
  const t = await withStore();
  let again: Awaited<ReturnType<typeof withStore>> | undefined;
  try {
    await t.store.backend.createBucket("web");
    const none = await s3Error(t.s3.send(new GetBucketCorsCommand({ Bucket: "web" })));
    assert.equal(none.name, "NoSuchCORSConfiguration");
    assert.equal(none.$metadata.httpStatusCode, 404);
    await t.s3.send(new PutBucketCorsCommand({ Bucket: "web", CORSConfiguration: { CORSRules: RULES } }));
    const got = await t.s3.send(new GetBucketCorsCommand({ Bucket: "web" }));
    assert.deepEqual((got.CORSRules ?? []).map(strip), RULES);

    await t.store.close();
    again = await withStore({ dataDir: t.dir });
    const kept = await again.s3.send(new GetBucketCorsCommand({ Bucket: "web" }));
    assert.deepEqual(kept.CORSRules, got.CORSRules);
    await again.s3.send(new DeleteBucketCorsCommand({ Bucket: "web" }));
    assert.equal(
      (await s3Error(again.s3.send(new GetBucketCorsCommand({ Bucket: "web" })))).name,
      "NoSuchCORSConfiguration",
    );
  } finally {
    t.s3.destroy();
    await again?.stop();
    await t.stop().catch(() => undefined);
  }
});

/** The SDK leaves absent lists undefined; compare without them. */
function strip(r: object): object {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined));
}

test("bad CORS documents are refused with S3's errors", async () => {
  const t = await withStore();
  try {
    await t.store.backend.createBucket("web");
    const put = (rules: object[]) =>
      s3Error(
        t.s3.send(
          new PutBucketCorsCommand({ Bucket: "web", CORSConfiguration: { CORSRules: rules as never } }),
        ),
      );
    const method = await put([{ AllowedOrigins: ["*"], AllowedMethods: ["PATCH"] }]);
    assert.equal(method.name, "InvalidRequest");
    assert.match(method.message, /Unsupported method is PATCH/);
    const stars = await put([{ AllowedOrigins: ["http://*.*.test"], AllowedMethods: ["GET"] }]);
    assert.match(stars.message, /can not have more than one wildcard/);
    assert.equal((await put([])).name, "MalformedXML");
    const many = await put(
      Array.from({ length: 101 }, () => ({ AllowedOrigins: ["*"], AllowedMethods: ["GET"] })),
    );
    assert.match(many.message, /should not exceed allowed limit of 100 rules/);
    const missing = await s3Error(
      t.s3.send(new PutBucketCorsCommand({ Bucket: "nope", CORSConfiguration: { CORSRules: RULES } })),
    );
    assert.equal(missing.name, "NoSuchBucket");
  } finally {
    await t.stop();
  }
});

test("preflights and actual requests are answered by the first matching rule", async () => {
  const t = await withStore();
  try {
    await t.store.backend.createBucket("web");
    await t.store.backend.createBucket("plain");
    const url = `${t.store.url}/web/photo.txt`;

    // No rules: refused, saying how to allow it.
    const off = await preflight(`${t.store.url}/plain/x`, APP, "PUT");
    assert.equal(off.status, 403);
    const offBody = await off.text();
    assert.match(offBody, /<Code>AccessForbidden<\/Code>/);
    assert.match(offBody, /CORS is not enabled for this bucket.*PutBucketCors.*local\.cors_origins/s);

    await t.s3.send(new PutBucketCorsCommand({ Bucket: "web", CORSConfiguration: { CORSRules: RULES } }));
    const ok = await preflight(url, APP, "PUT", ["content-type", "x-amz-meta-owner"]);
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(ok.headers.get("access-control-allow-origin"), APP);
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
    assert.equal(ok.headers.get("access-control-allow-methods"), "PUT, GET");
    assert.equal(ok.headers.get("access-control-allow-headers"), "content-type, x-amz-meta-owner");
    assert.equal(ok.headers.get("access-control-expose-headers"), "ETag");
    assert.equal(ok.headers.get("access-control-max-age"), "120");
    await ok.arrayBuffer();

    // A header no rule allows, a method no rule allows for that origin, an origin no rule names.
    for (const [origin, method, headers] of [
      [APP, "PUT", ["x-custom"]],
      [APP, "DELETE", []],
      ["http://evil.test", "PUT", []],
    ] as [string, string, string[]][]) {
      const r = await preflight(url, origin, method, headers);
      assert.equal(r.status, 403, `${origin} ${method} ${headers}`);
      assert.match(await r.text(), /This CORS request is not allowed/);
    }

    // The wildcard rule: any origin may GET, answered with `*` and no credentials.
    const any = await preflight(url, "http://evil.test", "GET");
    assert.equal(any.status, 200);
    assert.equal(any.headers.get("access-control-allow-origin"), "*");
    assert.equal(any.headers.get("access-control-allow-credentials"), null);
    await any.arrayBuffer();

    // Actual requests: a presigned PUT and GET from the app's origin carry the rule's headers.
    await t.s3.send(new PutObjectCommand({ Bucket: "web", Key: "photo.txt", Body: "hi" }));
    const signed = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: "web", Key: "photo.txt" }));
    const get = await fetch(signed, { headers: { origin: APP } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("access-control-allow-origin"), APP);
    assert.equal(get.headers.get("access-control-expose-headers"), "ETag");
    assert.equal(await get.text(), "hi");
    // An origin no rule allows for that method gets the answer without CORS headers (the browser hides it).
    const del = await fetch(`${t.store.url}/web/photo.txt`, { method: "DELETE", headers: { origin: APP } });
    assert.equal(del.headers.get("access-control-allow-origin"), null);
    await del.arrayBuffer();
  } finally {
    await t.stop();
  }
});

test("an origin on the store-wide allowlist is answered by it, whatever the bucket's rules", async () => {
  const t = await withStore({ corsOrigins: [APP] });
  try {
    await t.store.backend.createBucket("web");
    await t.s3.send(
      new PutBucketCorsCommand({
        Bucket: "web",
        CORSConfiguration: {
          CORSRules: [{ AllowedOrigins: ["http://other.test"], AllowedMethods: ["GET"] }],
        },
      }),
    );
    const r = await preflight(`${t.store.url}/web/k`, APP, "DELETE", ["authorization"]);
    assert.equal(r.status, 204);
    assert.equal(r.headers.get("access-control-allow-origin"), APP);
    await r.arrayBuffer();
    const other = await preflight(`${t.store.url}/web/k`, "http://other.test", "GET");
    assert.equal(other.status, 200);
    await other.arrayBuffer();
  } finally {
    await t.stop();
  }
});

test("a malformed preflight is 400: no Origin, no or an unknown Access-Control-Request-Method", async () => {
  const t = await withStore({ corsOrigins: [APP] });
  try {
    await t.store.backend.createBucket("web");
    const url = `${t.store.url}/web/k`;
    const cases: [Record<string, string>, RegExp][] = [
      [{ "access-control-request-method": "PUT" }, /Origin request header needed/],
      [{ origin: APP }, /Access-Control-Request-Method request header needed/],
      [
        { origin: APP, "access-control-request-method": "PATCH" },
        /Invalid Access-Control-Request-Method: PATCH/,
      ],
    ];
    for (const [headers, why] of cases) {
      const r = await fetch(url, { method: "OPTIONS", headers });
      assert.equal(r.status, 400, JSON.stringify(headers));
      const body = await r.text();
      assert.match(body, /<Code>BadRequest<\/Code>/);
      assert.match(body, why);
    }
  } finally {
    await t.stop();
  }
});
