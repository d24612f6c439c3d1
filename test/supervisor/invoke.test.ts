/**
 * Whole invocations through the supervisor: the real embedded store (S3 API over loopback) for
 * stage-in and stage-out, and scripts run as host processes by the HostExecutor.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { type RunningStore, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { S3Provider } from "../../src/storage/s3.js";
import { type Executor, HostExecutor, type InvocationRequest, invoke } from "../../src/supervisor/index.js";

const root = mkdtempSync(join(tmpdir(), "scar-supervisor-"));
const work = join(root, "work");
let store: RunningStore;
let s3: S3Client;
let provider: S3Provider;

before(async () => {
  store = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0 });
  const creds = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials: creds });
  provider = new S3Provider("s3.default", { endpoint: store.url, ...creds });
  for (const b of ["media", "other"]) await s3.send(new CreateBucketCommand({ Bucket: b }));
});
after(async () => {
  provider.destroy();
  s3.destroy();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

/** A function from an FDL snippet (lines under `lambda:`, and under `container:`), with `script` written beside it. */
function fn(lambda: string, script?: string, container = ""): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  if (script !== undefined) writeFileSync(join(dir, "script.sh"), script);
  const file = join(dir, "fn.yaml");
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: fn1\n      container:\n        image: busybox\n${container}${script !== undefined ? "      init_script: script.sh\n" : ""}${lambda}`;
  writeFileSync(file, yaml);
  return parseFdl(file, yaml).functions[0]!;
}

function s3Event(bucket: string, key: string) {
  return {
    Records: [
      {
        eventSource: "aws:s3",
        eventName: "ObjectCreated:Put",
        eventTime: "2026-11-22T10:00:00.000Z",
        s3: {
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeURIComponent(key).replace(/%2F/g, "/"), size: 1 },
        },
      },
    ],
  };
}

async function put(bucket: string, key: string, body: string) {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}
async function get(bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return r.Body!.transformToString();
}
async function keys(bucket: string, prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((c) => c.Key!).sort();
}

function run(f: FunctionSpec, event: unknown, extra: Partial<InvocationRequest> = {}) {
  return invoke({
    fn: f,
    event,
    executor: new HostExecutor(),
    storage: () => provider,
    workRoot: work,
    ...extra,
  });
}

const IO = "      input:\n      - path: media/in\n      output:\n      - path: media/out\n";

test("an uploaded file is staged in, processed, and its result uploaded under the output folder", async () => {
  await put("media", "in/hello world.txt", "hello");
  const f = fn(
    IO,
    'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\necho processed\n',
  );
  const r = await run(f, s3Event("media", "in/hello world.txt"), { requestId: "req-1" });
  assert.equal(r.reason, "ok", r.log.join("\n"));
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.outputs, [
    { storage_provider: "s3.default", bucket: "media", key: "out/hello world.txt" },
  ]);
  assert.equal(await get("media", "out/hello world.txt"), "HELLO");
  assert.equal(r.output.toString(), "processed\n");
  assert.equal(r.response.statusCode, 200);
  assert.equal(Buffer.from(r.response.body, "base64").toString(), "processed\n");
  assert.deepEqual(r.response.headers, {
    "amz-lambda-request-id": "req-1",
    "amz-log-group-name": "/aws/lambda/fn1",
    "amz-log-stream-name": "req-1",
  });
  assert.ok(
    r.log.some((l) =>
      / - supervisor - INFO - Downloading item from bucket 'media' with key 'in\/hello world.txt'$/.test(l),
    ),
  );
  assert.deepEqual(readdirSync(work), [], "the workspace is removed");
});

test("the script sees the whole ABI: new names, legacy names, its variables, the event", async () => {
  await put("media", "in/env.txt", "x");
  const f = fn(
    IO,
    'env > "$TMP_OUTPUT_DIR/env.txt"\n',
    "        environment:\n          Variables:\n            COLOR: gray\n            EQ: a=b=c\n",
  );
  const r = await run(f, s3Event("media", "in/env.txt"), {
    requestId: "req-env",
    platformEnv: { AWS_ENDPOINT_URL: store.url },
  });
  assert.equal(r.reason, "ok", r.log.join("\n"));
  const env = Object.fromEntries(
    (await get("media", "out/env.txt"))
      .trim()
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  const input = join(work, "req-env", "input");
  const output = join(work, "req-env", "output");
  assert.equal(env.INPUT_FILE_PATH, join(input, "env.txt"));
  assert.equal(env.TMP_INPUT_DIR, input);
  assert.equal(env.TMP_OUTPUT_DIR, output);
  assert.equal(env.SCAR_INPUT_FILE, join(input, "env.txt"));
  assert.equal(env.SCAR_INPUT_DIR, input);
  assert.equal(env.SCAR_OUTPUT_DIR, output);
  assert.equal(env.STORAGE_OBJECT_KEY, "in/env.txt");
  assert.equal(env.EVENT_TIME, "2026-11-22T10:00:00.000Z");
  assert.equal(env.REQUEST_ID, "req-env");
  assert.equal(env.AWS_LAMBDA_REQUEST_ID, "req-env");
  assert.equal(JSON.parse(env.EVENT!).Records[0].s3.bucket.name, "media");
  assert.equal(env.COLOR, "gray");
  assert.equal(env.EQ, "a=b=c");
  assert.equal(env.AWS_ENDPOINT_URL, store.url);
});

test("sub-folders of the output are kept; several outputs with suffix filters each get their files", async () => {
  await put("media", "in/clip.mkv", "v");
  const f = fn(
    "      input:\n      - path: media/in\n      output:\n      - path: media/video\n        suffix: [avi]\n      - path: other/audio\n        suffix: [wav]\n      - path: media/all\n",
    'mkdir -p "$TMP_OUTPUT_DIR/frames"\necho a > "$TMP_OUTPUT_DIR/clip.avi"\necho w > "$TMP_OUTPUT_DIR/clip.wav"\necho f > "$TMP_OUTPUT_DIR/frames/001.jpg"\n',
  );
  const r = await run(f, s3Event("media", "in/clip.mkv"));
  assert.equal(r.reason, "ok", r.log.join("\n"));
  assert.deepEqual(await keys("media", "video/"), ["video/clip.avi"]);
  assert.deepEqual(await keys("other", "audio/"), ["audio/clip.wav"]);
  assert.deepEqual(await keys("media", "all/"), ["all/clip.avi", "all/clip.wav", "all/frames/001.jpg"]);
});

test("script order: a run script in the event > container arguments > the function's script", async () => {
  const f = fn("", "echo init-script\n");
  const a = await run(f, { script: Buffer.from("echo run-script\n").toString("base64") });
  assert.equal(a.output.toString(), "run-script\n");
  const b = await run(f, { cmd_args: JSON.stringify(["/bin/echo", "from", "args"]) });
  assert.equal(b.output.toString(), "from args\n");
  const c = await run(f, {});
  assert.equal(c.output.toString(), "init-script\n");
});

test("scar run -e: variables of one invocation (scar_env) reach the script, values with '=' intact", async () => {
  const f = fn("", 'echo "$TEST1/$TEST2/$KEPT"\n');
  f.environment = { TEST1: "from-function", KEPT: "kept" };
  const r = await run(f, { scar_env: { TEST1: "45", TEST2: "a=b=c" } });
  assert.equal(r.output.toString(), "45/a=b=c/kept\n");
  const bad = await run(f, { scar_env: { TEST1: 45 } });
  assert.equal(bad.reason, "event-error");
});

test("a direct invocation's body is the input file: JSON as text, other bodies base64-decoded", async () => {
  const f = fn("", 'cat "$INPUT_FILE_PATH"; echo; basename "$INPUT_FILE_PATH"\n');
  const a = await run(f, { hello: "world" });
  const [content, name] = a.output.toString().trim().split("\n");
  assert.deepEqual(JSON.parse(content!), { hello: "world" });
  assert.match(name!, /^event-file-[0-9a-f-]{36}$/);
  const b = await run(f, {
    httpMethod: "POST",
    body: Buffer.from("binary\u0001data").toString("base64"),
    queryStringParameters: { q: "1" },
  });
  assert.equal(b.output.toString().split("\n")[0], "binary\u0001data");
});

test("keepOutputs: the output folder's files come back for a direct invocation that succeeded, not otherwise", async () => {
  await put("media", "in/keep.txt", "k");
  const f = fn(IO, 'mkdir -p "$TMP_OUTPUT_DIR/d"\nprintf x > "$TMP_OUTPUT_DIR/d/x.txt"\necho "$1"\n');
  const direct = await run(f, { hello: 1 }, { keepOutputs: { maxBytes: 10 } });
  assert.equal(direct.reason, "ok", direct.log.join("\n"));
  assert.deepEqual(direct.kept, { kind: "files", files: [{ rel: "d/x.txt", data: Buffer.from("x") }] });
  assert.deepEqual(direct.outputs, [{ storage_provider: "s3.default", bucket: "media", key: "out/d/x.txt" }]);
  // faas-supervisor answers a storage event with the output, whatever the files; and nothing is kept unasked.
  assert.equal(
    (await run(f, s3Event("media", "in/keep.txt"), { keepOutputs: { maxBytes: 10 } })).kept,
    undefined,
  );
  assert.equal((await run(f, { hello: 1 })).kept, undefined);
  const failing = fn(IO, 'printf x > "$TMP_OUTPUT_DIR/x.txt"\nexit 1\n');
  assert.equal((await run(failing, {}, { keepOutputs: { maxBytes: 10 } })).kept, undefined);
  const big = await run(f, {}, { keepOutputs: { maxBytes: 0 } });
  assert.deepEqual(big.kept, { kind: "too-large", count: 1, bytes: 1, maxBytes: 0 });
  assert.ok(
    big.log.some((l) => /WARNING - The output folder holds 1 file of 1 bytes, more than the 0 bytes/.test(l)),
  );
  assert.deepEqual(readdirSync(work), [], "the workspace is removed");
});

test("query parameters of an HTTP call reach the script as CONT_VAR_<name>", async () => {
  const f = fn("", 'echo "$CONT_VAR_size/$CONT_VAR_mode"\n');
  const r = await run(f, { httpMethod: "GET", queryStringParameters: { size: "10", mode: "fast" } });
  assert.equal(r.output.toString(), "10/fast\n");
});

test("a failing script: reason script-error with its exit code and output; its files are not uploaded", async () => {
  await put("media", "in/bad.txt", "x");
  const f = fn(IO, 'echo partial > "$TMP_OUTPUT_DIR/bad.txt"\necho oops >&2\nexit 3\n');
  const r = await run(f, s3Event("media", "in/bad.txt"));
  assert.equal(r.reason, "script-error");
  assert.equal(r.exitCode, 3);
  assert.equal(r.output.toString(), "oops\n");
  assert.deepEqual(r.outputs, []);
  assert.deepEqual(await keys("media", "out/bad"), []);
  assert.ok(r.log.some((l) => l.endsWith("WARNING - User script exited with code 3!")));
  assert.equal(
    r.response.statusCode,
    200,
    "as in SCAR, the script's exit code does not make the response an error",
  );
});

test("timeout: the script and its children are stopped at timeout - threshold; what was written is uploaded", async () => {
  await put("media", "in/slow.txt", "x");
  const f = fn(
    `${IO}      timeout: 2\n`,
    'echo early > "$TMP_OUTPUT_DIR/slow.txt"\nsleep 30 &\necho $! > "$TMP_OUTPUT_DIR/child.pid"\nwait\n',
    "        timeout_threshold: 1\n",
  );
  const r = await run(f, s3Event("media", "in/slow.txt"));
  assert.equal(r.reason, "timeout");
  assert.equal(await get("media", "out/slow.txt"), "early\n");
  const pid = Number(await get("media", "out/child.pid"));
  await new Promise((res) => setTimeout(res, 2500)); // SIGKILL follows SIGTERM after the grace
  assert.equal(existsSync(`/proc/${pid}`), false, "the script's child process was killed with it");
});

test("a missing input object is a stage error with a 500 response, not a crash", async () => {
  const f = fn(IO, "echo never\n");
  const r = await run(f, s3Event("media", "in/does-not-exist.txt"));
  assert.equal(r.reason, "stage-error");
  assert.match(r.detail!, /downloading 'in\/does-not-exist\.txt' from bucket 'media' failed: NoSuchKey/);
  assert.equal(r.response.statusCode, 500);
  assert.match(JSON.parse(Buffer.from(r.response.body, "base64").toString()).exception, /NoSuchKey/);
  assert.equal(r.output.length, 0, "the script never ran");
});

test("the executor's execution environment (cold or warm) is part of the result; none without one", async () => {
  await put("media", "in/env.txt", "x");
  const f = fn(IO, "echo ran\n");
  const host = new HostExecutor();
  // The host executor keeps no environments: this one reports the first run as a cold start of
  // "env-a" and the next ones as warm, as the engine's warm executor does.
  let runs = 0;
  const warmish: Executor = {
    workspace: (root) => host.workspace(root),
    run: async (req) => ({
      ...(await host.run(req)),
      environment: { id: "env-a", start: runs++ === 0 ? "cold" : "warm", startMs: runs === 1 ? 12.5 : 0 },
    }),
  };
  const first = await run(f, s3Event("media", "in/env.txt"), { executor: warmish });
  assert.equal(first.reason, "ok", first.log.join("\n"));
  assert.deepEqual(first.environment, { id: "env-a", start: "cold", startMs: 12.5 });
  const second = await run(f, s3Event("media", "in/env.txt"), { executor: warmish });
  assert.deepEqual(second.environment, { id: "env-a", start: "warm", startMs: 0 });
  const fresh = await run(f, s3Event("media", "in/env.txt"));
  assert.equal(fresh.reason, "ok");
  assert.equal("environment" in fresh, false);
});
