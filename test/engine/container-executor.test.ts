/**
 * The engine's invocation path end to end, with nothing mocked: an object in the embedded store ->
 * the supervisor -> a crun/runc container over busybox layers -> results back in the store.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ContainerExecutor } from "../../src/engine/container-executor.js";
import { EmbeddedStoreProvider } from "../../src/engine/embedded-provider.js";
import { Runner } from "../../src/engine/runtime/index.js";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { S3Provider } from "../../src/storage/s3.js";
import { type InvocationRequest, invoke } from "../../src/supervisor/index.js";
import { type Fixture, makeFixture } from "./runtime/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "scar-cexec-"));
const work = join(root, "work");
let fixture: Fixture;
let runner: Runner;
let store: RunningStore;
let s3: S3Client;
let provider: S3Provider;

before(async () => {
  fixture = makeFixture();
  runner = await Runner.open({ stateDir: join(root, "runtime") });
  store = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0 });
  const credentials = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials });
  provider = new S3Provider("s3.default", { endpoint: store.url, ...credentials });
  await s3.send(new CreateBucketCommand({ Bucket: "media" }));
});
after(async () => {
  provider.destroy();
  s3.destroy();
  await store.close();
  await runner.close();
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function fn(lambda: string, script?: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  if (script !== undefined) writeFileSync(join(dir, "script.sh"), script);
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: fn1\n      memory: 128\n      container:\n        image: busybox\n${script !== undefined ? "      init_script: script.sh\n" : ""}${lambda}`;
  const file = join(dir, "fn.yaml");
  writeFileSync(file, yaml);
  return parseFdl(file, yaml).functions[0]!;
}

function run(f: FunctionSpec, event: unknown, extra: Partial<InvocationRequest> = {}) {
  const executor = new ContainerExecutor(runner, { image: fixture.image, memoryMiB: f.memory });
  return invoke({ fn: f, event, executor, storage: () => provider, workRoot: work, ...extra });
}

const s3Event = (key: string) => ({
  Records: [
    {
      eventSource: "aws:s3",
      eventTime: "2026-11-22T10:00:00.000Z",
      s3: { bucket: { name: "media", arn: "arn:aws:s3:::media" }, object: { key } },
    },
  ],
});
const IO = "      input:\n      - path: media/in\n      output:\n      - path: media/out\n";

async function get(key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: "media", Key: key }));
  return r.Body!.transformToString();
}

test("an upload is processed in a container that sees /tmp/<request id>/input and output", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/note.txt", Body: "container me" }));
  const f = fn(
    IO,
    [
      'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/note.txt"',
      'echo "input=$INPUT_FILE_PATH output=$TMP_OUTPUT_DIR"',
      'echo "host=$(hostname) pid=$$ net=$(ls /sys/class/net | tr "\\n" " ")"',
      "cat /etc/motd",
    ].join("\n"),
  );
  const r = await run(f, s3Event("in/note.txt"), { requestId: "r-1" });
  assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
  assert.equal(await get("out/note.txt"), "CONTAINER ME");
  const out = r.output.toString().split("\n");
  assert.equal(out[0], "input=/tmp/r-1/input/note.txt output=/tmp/r-1/output");
  assert.equal(out[1], "host=scar pid=1 net=lo ", "own pid and network namespaces, loopback only");
  assert.equal(out[2], "from top", "the image's top layer is visible");
  assert.deepEqual(readdirSync(work), [], "the workspace is removed");
});

test("no script: the image's command runs; container arguments replace its CMD", async () => {
  const f = fn("");
  const a = await run(f, {});
  assert.equal(a.reason, "ok");
  assert.equal(a.output.toString(), "image cmd\n");
  const b = await run(f, { cmd_args: JSON.stringify(["/bin/echo", "from", "args"]) });
  assert.equal(b.output.toString(), "from args\n");
});

test("a run script sent with the invocation runs inside the container", async () => {
  const f = fn("");
  const r = await run(f, {
    script: Buffer.from("echo $GREETING from $(cat /etc/motd)\n").toString("base64"),
  });
  assert.equal(r.output.toString(), "image from from top\n");
});

test("script failure, timeout and memory limit end with their reasons", async () => {
  const failing = await run(fn("", "echo bad >&2; exit 7\n"), {});
  assert.equal(failing.reason, "script-error");
  assert.equal(failing.exitCode, 7);
  assert.equal(failing.output.toString(), "bad\n");

  const slow = await run(fn("      timeout: 2\n      timeout_threshold: 1\n", "sleep 20\n"), {});
  assert.equal(slow.reason, "timeout");

  // 128 MiB limit; the string doubles until it does not fit.
  const hungry = await run(fn("", "awk 'BEGIN { s = \"x\"; while (1) s = s s }'\n"), {});
  assert.equal(hungry.reason, "oom", hungry.log.join("\n"));
});

test("staged through the embedded store: a root script appending to and overwriting its input leaves the stored object as it was; its outputs become the store's files", async () => {
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/mine.txt", Body: "stored input" }));
  const f = fn(
    IO,
    [
      'echo appended >> "$INPUT_FILE_PATH"',
      'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/seen.txt"',
      'echo overwritten > "$INPUT_FILE_PATH"',
      // a file the container's root hands to another user, setuid: the store must not keep either
      'chown 1000:1000 "$TMP_OUTPUT_DIR/seen.txt"; chmod 4777 "$TMP_OUTPUT_DIR/seen.txt"',
    ].join("\n"),
  );
  const embedded = new EmbeddedStoreProvider("s3.default", store.backend);
  const r = await run(f, s3Event("in/mine.txt"), { storage: () => embedded });
  assert.equal(r.reason, "ok", `${r.log.join("\n")}\n${r.output}`);
  assert.equal(await get("in/mine.txt"), "stored input", "the stored input is unchanged");
  assert.equal(await get("out/seen.txt"), "stored inputappended\n", "the script wrote its own copy");
  const st = statSync(store.backend.abs(store.backend.head("media", "out/seen.txt").path));
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [process.getuid!(), process.getgid!(), 0o600]);
});
