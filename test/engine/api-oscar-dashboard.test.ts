/**
 * The requests the OSCAR dashboard (grycap/oscar-dashboard, `src/api/` and its MinIO context) makes
 * from its own origin, replayed against the engine with the CORS preflights a browser sends first:
 * login (/system/info, /system/config), the services list, create (the dashboard's own create
 * model), view and update (its form sends back what GET gave), the bucket list and an upload with
 * the AWS SDK to the service's input, its logs, and delete. A browser runs them the same way
 * (api-cors-browser.test.ts); the real dashboard was driven in Chromium too (see the report).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ListBucketsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { defaultConfig } from "../../src/config/defaults.js";
import { startApi } from "../../src/engine/api/index.js";
import { type Json, useApiEngine, waitFor } from "./api-harness.js";

const IMAGE = "localhost/scar-test/busybox:dashboard";
const ORIGIN = "http://127.0.0.1:5173";
const cfg = defaultConfig();
cfg.local.cors_origins = [ORIGIN];
const t = useApiEngine({
  prefix: "scar-oscar-dashboard-",
  image: IMAGE,
  engine: { corsOrigins: [ORIGIN] },
  api: { scarConfig: cfg },
});

/** A preflight as Chromium sends it before a request with these headers. */
async function preflight(base: string, method: string, path: string, headers: string[], origin = ORIGIN) {
  return fetch(`${base}${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      ...(headers.length > 0 ? { "access-control-request-headers": headers.join(",") } : {}),
    },
  });
}

/** The request after its preflight, as axios sends it from the dashboard's page. */
async function dashboard(method: string, path: string, body?: unknown): Promise<Response> {
  const headers = ["authorization", ...(body !== undefined ? ["content-type"] : [])];
  const pre = await preflight(t.api.url, method, path, headers);
  assert.equal(pre.status, 204, `preflight of ${method} ${path}: ${await pre.text()}`);
  assert.equal(pre.headers.get("access-control-allow-origin"), ORIGIN);
  assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
  assert.match(pre.headers.get("access-control-allow-methods") ?? "", new RegExp(method));
  assert.equal(pre.headers.get("access-control-allow-headers"), headers.join(", "));
  const r = await t.call(method, path, {
    headers: {
      origin: ORIGIN,
      accept: "application/json, text/plain, */*",
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: body as object } : {}),
  });
  assert.equal(r.headers.get("access-control-allow-origin"), ORIGIN, `${method} ${path}`);
  return r as unknown as Response;
}

async function ok(method: string, path: string, body?: unknown): Promise<Json> {
  const r = await dashboard(method, path, body);
  const text = await r.text();
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
}

/** The dashboard's S3 client (MinioContext): the AWS SDK on minio_provider, with the page's Origin. */
function s3For(provider: Json, seen: Headers[]): S3Client {
  const s3 = new S3Client({
    endpoint: provider.endpoint,
    region: provider.region,
    forcePathStyle: true,
    credentials: { accessKeyId: provider.access_key, secretAccessKey: provider.secret_key },
  });
  s3.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      request.headers.origin = ORIGIN;
      // what the browser asks in the preflight: the SDK's own headers
      const names = Object.keys(request.headers)
        .map((h) => h.toLowerCase())
        .filter((h) => !["host", "content-length", "origin", "user-agent"].includes(h));
      const url = new URL(provider.endpoint);
      const req = args.request as { method: string; path: string };
      const pre = await preflight(url.origin, req.method, req.path, names);
      assert.equal(
        pre.status,
        204,
        `store preflight of ${req.method} ${req.path} (${names}): ${await pre.text()}`,
      );
      assert.equal(pre.headers.get("access-control-allow-origin"), ORIGIN);
      const out = await next(args);
      const res = out.response as { headers: Record<string, string> };
      seen.push(new Headers(res.headers));
      return out;
    },
    { step: "finalizeRequest", name: "dashboardOrigin", priority: "low" },
  );
  return s3;
}

test("the dashboard's whole flow: login, list, create, view, update, upload, logs, delete", async () => {
  // login: getInfoApi with basic auth, then the config (AuthContext reads config.oidc_groups)
  const info = await ok("GET", "/system/info");
  assert.equal(typeof info.version, "string");
  const config = await ok("GET", "/system/config");
  assert.ok(Array.isArray(config.config.oidc_groups));
  assert.deepEqual(await ok("GET", "/system/services"), []);
  assert.ok(Array.isArray(await ok("GET", "/system/buckets")));
  // create: the model CreateUpdateButton sends
  const created = await dashboard("POST", "/system/services", {
    cpu: "0.2",
    image: IMAGE,
    imageRules: [null],
    imagePullSecrets: [],
    input: [{ storage_provider: "minio.default", path: "dash/in", prefix: [], suffix: [] }],
    limitsMemory: "256",
    log_level: "INFO",
    memory: "256Mi",
    name: "dash",
    output: [{ storage_provider: "minio.default", path: "dash/out", prefix: [], suffix: [] }],
    script: 'echo "got $(cat "$INPUT_FILE_PATH")"\n',
    environment: { variables: {}, secrets: {} },
    visibility: "private",
    allowed_users: [],
    valid: true,
  });
  assert.equal(created.status, 201, await created.text());
  // view: what the form and the lists read without checking
  const svc = await ok("GET", "/system/services/dash");
  for (const k of ["labels", "annotations", "expose", "mount", "synchronous"])
    assert.equal(typeof svc[k], "object", k);
  assert.ok(Array.isArray(svc.allowed_users));
  assert.equal(svc.visibility, "private");
  assert.deepEqual(svc.environment, { variables: {}, secrets: {} });
  assert.equal(svc.storage_providers.minio.default.endpoint, t.engine.store.url);
  const list = await ok("GET", "/system/services");
  assert.deepEqual(
    list.map((s: Json) => s.name),
    ["dash"],
  );
  assert.equal((await ok("GET", "/system/services/dash/deployment")).state, "ready");
  // update: the form sends back the service it read, changed
  assert.equal((await dashboard("PUT", "/system/services", { ...svc, memory: "128Mi" })).status, 204);
  assert.equal((await ok("GET", "/system/services/dash")).memory, "128Mi");
  // a duplicate: the dashboard shows the body as text ("Failed to create service: <body>")
  const dup = await dashboard("POST", "/system/services", { name: "dash", image: IMAGE, script: "true" });
  assert.equal(dup.status, 409);
  assert.match(dup.headers.get("content-type") ?? "", /^text\/plain/);
  assert.match(await dup.text(), /^A service with the provided name already exists/);
  // buckets: the service's bucket is listed with its service; then the browser's S3 calls
  const buckets = await ok("GET", "/system/buckets");
  assert.equal(buckets.find((b: Json) => b.bucket_name === "dash").metadata.from_service, "dash");
  const seen: Headers[] = [];
  const s3 = s3For(config.minio_provider, seen);
  try {
    const listed = await s3.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === "dash"));
    await s3.send(new PutObjectCommand({ Bucket: "dash", Key: "in/photo.txt", Body: "pixels" }));
  } finally {
    s3.destroy();
  }
  assert.equal(seen.length, 2, "ListBuckets and PutObject went through the preflight check");
  for (const h of seen) {
    assert.equal(h.get("access-control-allow-origin"), ORIGIN);
    assert.match(h.get("access-control-expose-headers") ?? "", /etag/);
  }
  // logs: the job the upload started, and its log
  const jobs = await waitFor("the upload's job", async () => {
    const l = await ok("GET", "/system/logs/dash");
    const done = Object.entries(l.jobs as Record<string, { status: string }>).filter(
      ([, j]) => j.status === "Succeeded",
    );
    return done.length > 0 ? done : undefined;
  });
  const log = await dashboard("GET", `/system/logs/dash/${jobs[0]![0]}`);
  assert.match(await log.text(), /got pixels/);
  assert.ok((await ok("GET", "/system/logs")).logs.length >= 0);
  assert.equal((await ok("GET", "/system/status")).cluster.nodes_count, 1);
  assert.ok((await ok("GET", "/system/metrics/dash")).metrics.length > 0);
  // delete
  assert.equal((await dashboard("DELETE", "/system/services/dash")).status, 204);
  assert.deepEqual(await ok("GET", "/system/services"), []);
});

test("preflights from other origins, or for other headers, are refused on the API and the store", async () => {
  const other = "http://evil.example";
  for (const base of [t.api.url, t.engine.store.url]) {
    const r = await preflight(base, "GET", "/", ["authorization"], other);
    assert.equal(r.status, 403, base);
    assert.equal(r.headers.get("access-control-allow-origin"), null);
    assert.match(await r.text(), /local\.cors_origins/);
  }
  const api = await t.call("GET", "/system/info", { headers: { origin: other } });
  assert.equal(api.status, 200, "the server answers; the browser keeps the answer from the page");
  assert.equal(api.headers.get("access-control-allow-origin"), null);
  const header = await preflight(t.api.url, "GET", "/system/info", ["authorization", "x-custom"]);
  assert.equal(header.status, 403);
  assert.match(await header.text(), /x-custom/);
  // A method S3 has no CORS rule for is a malformed preflight: 400, as S3 answers it.
  const method = await preflight(t.engine.store.url, "PATCH", "/dash", []);
  assert.equal(method.status, 400);
  // the store takes the SDK's checksum headers
  const sdk = await preflight(t.engine.store.url, "PUT", "/dash/in/x", [
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "authorization",
    "content-type",
    "x-amz-checksum-crc32",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-user-agent",
  ]);
  assert.equal(sdk.status, 204);
});

test("without local.cors_origins (the default) no page may call the API", async () => {
  const plain = await startApi(t.engine, { port: 0 });
  try {
    const r = await preflight(plain.url, "GET", "/system/info", ["authorization"]);
    assert.equal(r.status, 403);
    assert.match(await r.text(), /add 'http:\/\/127\.0\.0\.1:5173' to local\.cors_origins/);
  } finally {
    await plain.close();
  }
});
