/**
 * CORS in a real browser: headless Chromium (Debian's, driven by playwright-core) loads a page from an
 * origin in scar.cfg's local.cors_origins (a server of its own on loopback: a page fulfilled by request
 * interception could not call loopback servers at all here, whatever the CORS headers) and calls the engine's API (basic auth) and its object
 * store (a custom x-amz-* header, so the browser sends a preflight) with fetch; a page from another
 * origin is kept from reading the answers. Skipped when /usr/bin/chromium is missing
 * (scripts/install-deps.sh installs it).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutBucketCorsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { chromium } from "playwright-core";
import { defaultConfig } from "../../src/config/defaults.js";
import { useApiEngine } from "./api-harness.js";

const CHROMIUM = "/usr/bin/chromium";

/** A server of one empty page on a free loopback port: a page's origin, as a dashboard served here has. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>page</title>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
const allowedPage = await pageServer();
const otherPage = await pageServer();
after(() => {
  allowedPage.server.close();
  otherPage.server.close();
});
const cfg = defaultConfig();
cfg.local.cors_origins = [allowedPage.origin];
const t = useApiEngine({
  prefix: "scar-cors-browser-",
  engine: { corsOrigins: [allowedPage.origin] },
  api: { scarConfig: cfg },
});

test("a page from an allowed origin reads the API and the store; another origin's page cannot", {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)`,
}, async () => {
  const made = await t.call("POST", "/system/buckets", {
    body: { bucket_name: "shared", visibility: "public" },
  });
  assert.equal(made.status, 201, await made.text());
  const s3 = new S3Client({
    endpoint: t.engine.store.url,
    region: t.engine.store.region,
    forcePathStyle: true,
    credentials: t.engine.credentials.s3,
  });
  try {
    await s3.send(new PutObjectCommand({ Bucket: "shared", Key: "hello.txt", Body: "hi" }));
  } finally {
    s3.destroy();
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.route(/^http:\/\/127\.0\.0\.1:4700[12]\//, (r) =>
      r.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>page</title>" }),
    );
    const calls = (api: string, store: string, auth: string) =>
      page.evaluate(
        async ({ api, store, auth }) => {
          const result = async (p: Promise<Response>) => {
            try {
              const r = await p;
              return { status: r.status, body: await r.text() };
            } catch (e) {
              return { error: String(e) };
            }
          };
          return {
            info: await result(fetch(`${api}/system/info`, { headers: { authorization: auth } })),
            list: await result(
              fetch(`${store}/shared?list-type=2`, { headers: { "x-amz-user-agent": "page" } }),
            ),
          };
        },
        { api, store, auth },
      );
    await page.goto(`${allowedPage.origin}/`);
    const allowed = await calls(t.api.url, t.engine.store.url, t.adminAuth);
    assert.equal(allowed.info.status, 200, JSON.stringify(allowed.info));
    assert.equal(JSON.parse(allowed.info.body!).serverless_backend.name, "scar-local");
    assert.equal(allowed.list.status, 200, JSON.stringify(allowed.list));
    assert.match(allowed.list.body!, /<Key>hello\.txt<\/Key>/);
    await page.goto(`${otherPage.origin}/`);
    const refused = await calls(t.api.url, t.engine.store.url, t.adminAuth);
    assert.match(refused.info.error ?? "", /Failed to fetch/);
    assert.match(refused.list.error ?? "", /Failed to fetch/);
  } finally {
    await browser.close();
  }
});

test("a bucket's own CORS rules let another origin's page upload with a presigned URL", {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-deps.sh installs it)`,
}, async () => {
  const s3 = new S3Client({
    endpoint: t.engine.store.url,
    region: t.engine.store.region,
    forcePathStyle: true,
    credentials: t.engine.credentials.s3,
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    for (const b of ["uploads", "closed"]) await s3.send(new CreateBucketCommand({ Bucket: b }));
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: "uploads",
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedOrigins: [otherPage.origin],
              AllowedMethods: ["PUT"],
              AllowedHeaders: ["content-type"],
              ExposeHeaders: ["ETag"],
            },
          ],
        },
      }),
    );
    const url = (bucket: string) =>
      getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: bucket, Key: "from-page.txt", ContentType: "text/plain" }),
      );
    const page = await browser.newPage();
    await page.goto(`${otherPage.origin}/`);
    const upload = (u: string) =>
      page.evaluate(async (u) => {
        try {
          const r = await fetch(u, {
            method: "PUT",
            body: "from the page",
            headers: { "content-type": "text/plain" },
          });
          return { status: r.status, etag: r.headers.get("etag") };
        } catch (e) {
          return { error: String(e) };
        }
      }, u);
    const ok = await upload(await url("uploads"));
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.match(ok.etag ?? "", /^"[0-9a-f]{32}"$/, "the rule exposes ETag to the page");
    const got = await s3.send(new GetObjectCommand({ Bucket: "uploads", Key: "from-page.txt" }));
    assert.equal(await got.Body!.transformToString(), "from the page");
    const refused = await upload(await url("closed"));
    assert.match(refused.error ?? "", /Failed to fetch/);
    assert.equal(t.engine.store.backend.buckets.get("closed")!.objects.size, 0);
  } finally {
    await browser.close();
    s3.destroy();
  }
});
