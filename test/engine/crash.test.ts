/**
 * The promise of the engine: no acknowledged upload is ever without its job, even when the engine
 * is killed with SIGKILL in the middle of a burst of uploads. The engine runs as `scar serve` in a
 * child process; uploads go through the S3 API; after the kill the engine is started again and
 * every upload that was acknowledged must get exactly one output.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ImageStore } from "../../src/engine/images/index.js";
import { makeFixture } from "./runtime/fixtures.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scar-crash-"));
const dataDir = join(root, "data");
const fixture = makeFixture();
const UPLOADS = 200;
after(() => {
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  api: string;
  s3: string;
  exited: Promise<unknown>;
}

async function serve(): Promise<Served> {
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--port", "0", "--s3-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (b) => {
    out += b;
  });
  child.stderr!.resume();
  const exited = new Promise((res) => child.on("exit", res));
  for (let i = 0; i < 1200 && !/functions:/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  const api = /API: +(http:\/\/\S+)/.exec(out)?.[1];
  const s3 = /object store: +(http:\/\/\S+)/.exec(out)?.[1];
  if (!api || !s3) throw new Error(`scar serve did not start: ${out}`);
  return { child, api, s3, exited };
}

function client(url: string): S3Client {
  const { s3 } = JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8"));
  return new S3Client({
    endpoint: url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: s3,
    maxAttempts: 1,
  });
}

test(`${UPLOADS} uploads with the engine killed -9 in the middle: every acknowledged upload is processed once`, async () => {
  // The image goes into the engine's store before the engine starts (one writer at a time).
  await new ImageStore({ dataDir }).import(fixture.base, {
    format: "rootfs",
    tag: "localhost/crash/busybox:1",
    changes: ["ENV PATH=/bin"],
  });
  let engine = await serve();
  const { admin } = JSON.parse(readFileSync(join(dataDir, "credentials"), "utf8"));
  const auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString("base64")}`;
  const created = await fetch(`${engine.api}/system/services`, {
    method: "POST",
    headers: { authorization: auth },
    body: JSON.stringify({
      name: "copy",
      image: "localhost/crash/busybox:1",
      memory: "64Mi",
      script: 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
      input: [{ storage_provider: "minio", path: "crash/in" }],
      output: [{ storage_provider: "minio", path: "crash/out" }],
    }),
  });
  assert.equal(created.status, 201, await created.text());

  let s3 = client(engine.s3);
  const acknowledged: string[] = [];
  let killed = false;
  const uploads = Array.from({ length: UPLOADS }, (_, i) => `file-${String(i).padStart(4, "0")}.txt`);
  let next = 0;
  const worker = async () => {
    while (next < uploads.length) {
      const name = uploads[next++]!;
      if (!killed && acknowledged.length >= UPLOADS / 2) {
        killed = true;
        engine.child.kill("SIGKILL");
      }
      try {
        await s3.send(new PutObjectCommand({ Bucket: "crash", Key: `in/${name}`, Body: name }));
        acknowledged.push(name);
      } catch {
        // Not acknowledged: the engine was gone. The client would retry; this test does not.
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await engine.exited;
  s3.destroy();
  assert.ok(killed, "the engine was killed during the uploads");
  assert.ok(acknowledged.length >= UPLOADS / 2);

  engine = await serve();
  s3 = client(engine.s3);
  const outputs = async () => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(
        new ListObjectsV2Command({ Bucket: "crash", Prefix: "out/", ContinuationToken: token }),
      );
      keys.push(...(r.Contents ?? []).map((c) => c.Key!.slice(4)).filter((k) => k !== ""));
      token = r.NextContinuationToken;
    } while (token);
    return keys;
  };
  let done: string[] = [];
  for (let i = 0; i < 1800; i++) {
    done = await outputs();
    if (acknowledged.every((a) => done.includes(a))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const missing = acknowledged.filter((a) => !done.includes(a));
  assert.deepEqual(missing, [], `${missing.length} acknowledged uploads have no output`);

  // Exactly one job per upload: no duplicates from redelivered events.
  const logs = await (
    await fetch(`${engine.api}/system/logs/copy`, { headers: { authorization: auth } })
  ).json();
  let jobs = Object.keys((logs as { jobs: object }).jobs).length;
  let page = (logs as { next_page?: string }).next_page;
  while (page) {
    const more = (await (
      await fetch(`${engine.api}/system/logs/copy?page=${page}`, { headers: { authorization: auth } })
    ).json()) as {
      jobs: object;
      next_page?: string;
    };
    jobs += Object.keys(more.jobs).length;
    page = more.next_page;
  }
  assert.ok(jobs >= acknowledged.length, `${jobs} jobs for ${acknowledged.length} acknowledged uploads`);
  assert.ok(jobs <= UPLOADS, `${jobs} jobs for at most ${UPLOADS} uploads: no event made two jobs`);
  s3.destroy();
  engine.child.kill("SIGTERM");
  await engine.exited;
});
