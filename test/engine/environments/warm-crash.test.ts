/**
 * `kill -9` of an engine with warm execution environments (issue 14): after the restart no container
 * of the killed engine is left (its processes are dead, its containers, cgroups and run folders
 * gone), and every upload acknowledged before the kill is processed once. The engine runs as
 * `scar serve` in a child process, uploads go through the S3 API.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ImageStore } from "../../../src/engine/images/index.js";
import { makeFixture } from "../runtime/fixtures.js";
import { runnerLeftovers } from "./warm-suite.js";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scar-warm-crash-"));
const dataDir = join(root, "data");
const stateDir = join(dataDir, "runtime");
const fixture = makeFixture();
const UPLOADS = 120;
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

/** Processes in the engine's containers' cgroups, as pid and start time (a pid may be reused later). */
function containerProcesses(): string[] {
  const tag = createHash("sha256").update(stateDir).digest("hex").slice(0, 10);
  const out: string[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!readFileSync(`/proc/${p}/cgroup`, "utf8").includes(`/scar-${tag}/`)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue; // dead, waiting to be reaped
      out.push(`${p}@${fields[19]}`);
    } catch {
      // gone
    }
  }
  return out;
}

async function outputs(s3: S3Client): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(
      new ListObjectsV2Command({ Bucket: "warm", Prefix: "out/", ContinuationToken: token }),
    );
    keys.push(...(r.Contents ?? []).map((c) => c.Key!.slice(4)).filter((k) => k !== ""));
    token = r.NextContinuationToken;
  } while (token);
  return keys;
}

async function waitForOutputs(s3: S3Client, names: string[]): Promise<string[]> {
  let done: string[] = [];
  for (let i = 0; i < 1800; i++) {
    done = await outputs(s3);
    if (names.every((a) => done.includes(a))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return done;
}

test("kill -9 with warm environments: none is left after the restart, every acknowledged upload is processed once", async () => {
  await new ImageStore({ dataDir }).import(fixture.base, {
    format: "rootfs",
    tag: "localhost/warm-crash/busybox:1",
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
      image: "localhost/warm-crash/busybox:1",
      memory: "64Mi",
      script: 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
      input: [{ storage_provider: "minio", path: "warm/in" }],
      output: [{ storage_provider: "minio", path: "warm/out" }],
    }),
  });
  assert.equal(created.status, 201, await created.text());

  let s3 = client(engine.s3);
  // First some uploads processed, so that the function's environments are up and warm.
  const first = ["warm-up-1.txt", "warm-up-2.txt", "warm-up-3.txt"];
  await Promise.all(
    first.map((n) => s3.send(new PutObjectCommand({ Bucket: "warm", Key: `in/${n}`, Body: n }))),
  );
  const warmed = await waitForOutputs(s3, first);
  assert.deepEqual(
    first.filter((n) => !warmed.includes(n)),
    [],
    "the first uploads were processed",
  );

  const acknowledged: string[] = [...first];
  let killed = false;
  let before: string[] = [];
  const uploads = Array.from({ length: UPLOADS }, (_, i) => `file-${String(i).padStart(4, "0")}.txt`);
  let next = 0;
  const worker = async () => {
    while (next < uploads.length) {
      const name = uploads[next++]!;
      if (!killed && acknowledged.length >= UPLOADS / 2) {
        killed = true;
        before = containerProcesses();
        engine.child.kill("SIGKILL");
      }
      try {
        await s3.send(new PutObjectCommand({ Bucket: "warm", Key: `in/${name}`, Body: name }));
        acknowledged.push(name);
      } catch {
        // not acknowledged: the engine was gone
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await engine.exited;
  s3.destroy();
  assert.ok(killed, "the engine was killed during the uploads");
  assert.ok(before.length > 0, "it had environments (container processes) when it was killed");

  engine = await serve();
  const survivors = containerProcesses().filter((p) => before.includes(p));
  assert.deepEqual(survivors, [], "no process of the killed engine's containers runs after the restart");
  s3 = client(engine.s3);
  const done = await waitForOutputs(s3, acknowledged);
  const missing = acknowledged.filter((a) => !done.includes(a));
  assert.deepEqual(missing, [], `${missing.length} acknowledged uploads have no output`);

  // Exactly one job per upload: no duplicates from redelivered events.
  let jobs = 0;
  let page: string | undefined = "";
  while (page !== undefined) {
    const r = (await (
      await fetch(`${engine.api}/system/logs/copy${page ? `?page=${page}` : ""}`, {
        headers: { authorization: auth },
      })
    ).json()) as { jobs: object; next_page?: string };
    jobs += Object.keys(r.jobs).length;
    page = r.next_page;
  }
  assert.ok(jobs >= acknowledged.length, `${jobs} jobs for ${acknowledged.length} acknowledged uploads`);
  assert.ok(jobs <= UPLOADS + first.length, `${jobs} jobs: no event made two`);
  s3.destroy();

  engine.child.kill("SIGTERM");
  await engine.exited;
  assert.deepEqual(containerProcesses(), [], "the stopped engine's containers are gone");
  const runtime = existsSync(join(stateDir, "crun")) ? "crun" : "runc";
  assert.deepEqual(runnerLeftovers(stateDir, runtime), { runs: [], containers: [], cgroups: [] });
});
