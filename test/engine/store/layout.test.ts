// Keys S3 allows but file systems do not like: they must round-trip, never escape the data dir and
// never clash. Plus pagination over 10,000 keys and signed aws-chunked uploads sent byte by byte.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join, relative } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { CREDS, type TestStore, withStore } from "./helpers.js";

const EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e";
let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "hostile" }));
});
after(async () => {
  await t.stop();
});

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

test("hostile keys round-trip, coexist and stay inside the data dir", async () => {
  const keys = [
    "a",
    "a/b",
    "a/b/c",
    "a/",
    "a//b",
    "/leading",
    "../../../../etc/passwd",
    "x/../../escape",
    "./dot",
    "..",
    ".",
    "sp ace/and\ttab",
    "ünïcödé/日本語/😀.txt",
    `${"k".repeat(300)}/long-segment`,
    "x".repeat(1024),
    "nul-free?query#hash%20percent+plus",
    "CON",
    "trailing.",
    ".scar-store/journal",
    "\u00e9", // precomposed é
    "e\u0301", // decomposed é: a different key
  ];
  for (const k of keys) {
    await t.s3.send(new PutObjectCommand({ Bucket: "hostile", Key: k, Body: `content of ${k}` }));
  }
  for (const k of keys) {
    const r = await t.s3.send(new GetObjectCommand({ Bucket: "hostile", Key: k }));
    assert.equal(await r.Body!.transformToString(), `content of ${k}`, `key ${JSON.stringify(k)}`);
  }
  const listed = (await t.s3.send(new ListObjectsV2Command({ Bucket: "hostile" }))).Contents!.map(
    (c) => c.Key,
  );
  assert.equal(listed.length, keys.length);
  assert.deepEqual(new Set(listed), new Set(keys));
  // Every stored file is inside the data dir, and the readable ones sit at their key's path.
  for (const f of walk(t.dir)) assert.ok(!relative(t.dir, f).startsWith(".."), f);
  // "a" was first, so it is the plain file; "a/b" and "a/b/c" live under hashed names.
  assert.equal(readFileSync(join(t.dir, "hostile", "a"), "utf8"), "content of a");
  assert.equal(
    readFileSync(join(t.dir, "hostile", "ünïcödé", "日本語", "😀.txt"), "utf8"),
    "content of ünïcödé/日本語/😀.txt",
  );
  assert.ok(statSync(join(t.dir, "hostile", "sp ace")).isDirectory());
  const tooLong = await t.s3
    .send(new PutObjectCommand({ Bucket: "hostile", Key: "y".repeat(1025), Body: "x" }))
    .catch((e) => e);
  assert.equal(tooLong.name, "KeyTooLongError");
  // Deleting keeps the others intact and leaves no empty folders behind.
  for (const k of keys) await t.s3.send(new DeleteObjectCommand({ Bucket: "hostile", Key: k }));
  assert.deepEqual(readdirSync(join(t.dir, "hostile")), []);
});

test("ListObjectsV2 pages through 10,000 keys in order, with and without a delimiter", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "many" }));
  const keys: string[] = [];
  for (let d = 0; d < 100; d++)
    for (let i = 0; i < 100; i++) keys.push(`d${String(d).padStart(3, "0")}/f${i}`);
  // The listing is what is under test: the keys go in through the store's own commit path (temp
  // file, journal, rename) without 10,000 HTTP round trips.
  const backend = t.store.backend;
  const ctx = { requestId: "test", principal: "test", sourceIp: "127.0.0.1" };
  for (let i = 0; i < keys.length; i += 100) {
    await Promise.all(
      keys.slice(i, i + 100).map(async (key) => {
        const tmp = backend.newTempPath();
        writeFileSync(backend.abs(tmp), "");
        await backend.commitObject(
          "many",
          { key, size: 0, etag: EMPTY_MD5, headers: {}, meta: {} },
          tmp,
          "s3:ObjectCreated:Put",
          ctx,
        );
      }),
    );
  }
  const expected = [...keys].sort();
  const got: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const r: ListObjectsV2CommandOutput = await t.s3.send(
      new ListObjectsV2Command({ Bucket: "many", ContinuationToken: token }),
    );
    got.push(...r.Contents!.map((c) => c.Key!));
    token = r.NextContinuationToken;
    pages++;
  } while (token);
  assert.equal(pages, 10);
  assert.deepEqual(got, expected);
  const prefixes: string[] = [];
  token = undefined;
  do {
    const r: ListObjectsV2CommandOutput = await t.s3.send(
      new ListObjectsV2Command({ Bucket: "many", Delimiter: "/", MaxKeys: 7, ContinuationToken: token }),
    );
    assert.equal(r.Contents, undefined);
    prefixes.push(...r.CommonPrefixes!.map((c) => c.Prefix!));
    token = r.NextContinuationToken;
  } while (token);
  assert.equal(prefixes.length, 100);
  assert.equal(new Set(prefixes).size, 100);
});

// ---- A SigV4 streaming signer written from the spec, independent of the store's own code.
const hex = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
const hmac = (k: Buffer | string, s: string) => createHmac("sha256", k).update(s).digest();

/** A PUT of an empty body signed with UNSIGNED-PAYLOAD; rejects unless S3 answers 200. */
function unsignedPayloadPut(
  port: number,
  path: string,
  agent: Agent,
  host = `127.0.0.1:${port}`,
): Promise<void> {
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  const date = amzDate.slice(0, 8);
  const scope = `${date}/us-east-1/s3/aws4_request`;
  const headers: Record<string, string> = {
    host,
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    "x-amz-date": amzDate,
  };
  const signed = Object.keys(headers).sort();
  const canonical = [
    "PUT",
    path,
    "",
    ...signed.map((h) => `${h}:${headers[h]}`),
    "",
    signed.join(";"),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const key0 = hmac(
    hmac(hmac(hmac(`AWS4${CREDS.secretAccessKey}`, date), "us-east-1"), "s3"),
    "aws4_request",
  );
  const sig = hmac(key0, `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`).toString("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  headers["content-length"] = "0";
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "PUT", path, headers, agent }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${path}: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

function signedChunkedPut(port: number, key: string, chunks: Buffer[], tamper = false) {
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  const date = amzDate.slice(0, 8);
  const scope = `${date}/us-east-1/s3/aws4_request`;
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "x-amz-date": amzDate,
    "x-amz-decoded-content-length": String(total),
    "content-encoding": "aws-chunked",
  };
  const signed = Object.keys(headers).sort();
  const path = `/hostile/${key}`;
  const canonical = [
    "PUT",
    path,
    "",
    ...signed.map((h) => `${h}:${headers[h]}`),
    "",
    signed.join(";"),
    headers["x-amz-content-sha256"],
  ].join("\n");
  const key0 = hmac(
    hmac(hmac(hmac(`AWS4${CREDS.secretAccessKey}`, date), "us-east-1"), "s3"),
    "aws4_request",
  );
  const seed = hmac(key0, `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`).toString("hex");
  let prev = seed;
  const body: Buffer[] = [];
  for (const c of [...chunks, Buffer.alloc(0)]) {
    const sig = hmac(
      key0,
      `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${prev}\n${hex("")}\n${hex(c)}`,
    ).toString("hex");
    prev = sig;
    const data = tamper && c.length ? Buffer.from(c).fill(0x21, 0, 1) : c;
    body.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`), data, Buffer.from("\r\n"));
  }
  const payload = Buffer.concat(body);
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${seed}`;
  headers["content-length"] = String(payload.length);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "PUT", path, headers }, (res) => {
      let s = "";
      res.on("data", (d) => {
        s += d;
      });
      res.on("end", () => resolve({ status: res.statusCode!, body: s }));
    });
    req.on("error", reject);
    // Dribble the body in odd pieces so chunk headers straddle reads.
    let i = 0;
    const step = () => {
      if (i >= payload.length) return req.end();
      req.write(payload.subarray(i, i + 777), step);
      i += 777;
    };
    step();
  });
}

test("STREAMING-AWS4-HMAC-SHA256-PAYLOAD: chunk signatures verified; a forged chunk is refused and stores nothing", async () => {
  const chunks = [Buffer.alloc(65536, "a"), Buffer.alloc(65536, "b"), Buffer.from("end")];
  const ok = await signedChunkedPut(t.store.port, "chunked-ok", chunks);
  assert.equal(ok.status, 200, ok.body);
  const r = await t.s3.send(new GetObjectCommand({ Bucket: "hostile", Key: "chunked-ok" }));
  assert.ok(Buffer.from(await r.Body!.transformToByteArray()).equals(Buffer.concat(chunks)));
  const bad = await signedChunkedPut(t.store.port, "chunked-bad", chunks, true);
  assert.equal(bad.status, 403);
  assert.match(bad.body, /<Code>SignatureDoesNotMatch<\/Code>/);
  const missing = await t.s3
    .send(new GetObjectCommand({ Bucket: "hostile", Key: "chunked-bad" }))
    .catch((e) => e);
  assert.equal(missing.name, "NoSuchKey");
});

test("virtual-host style: <bucket>.localhost addresses the bucket", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "vhost" }));
  const agent = new Agent({ keepAlive: false });
  await unsignedPayloadPut(t.store.port, "/dir/file.txt", agent, `vhost.localhost:${t.store.port}`);
  agent.destroy();
  const r = await t.s3.send(new GetObjectCommand({ Bucket: "vhost", Key: "dir/file.txt" }));
  assert.equal((await r.Body!.transformToByteArray()).length, 0);
});
