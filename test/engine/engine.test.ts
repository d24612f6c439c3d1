/**
 * The engine end to end, nothing mocked: deploy from an FDL, upload through the S3 API, the job
 * runs in a crun/runc container, the result lands in the output bucket, the job record tells how.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DeployError, Engine } from "../../src/engine/engine.js";
import { STAGES } from "../../src/engine/jobs/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { waitFor } from "./api-harness.js";
import { type Fixture, makeFixture } from "./runtime/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "scar-engine-"));
const IMAGE = "localhost/scar-test/busybox:1";
let fixture: Fixture;
let engine: Engine;
let s3: S3Client;

async function startEngine() {
  engine = await Engine.start({ dataDir: join(root, "data"), s3Port: 0, concurrency: 2 });
  const c = engine.credentials.s3;
  s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
}

before(async () => {
  fixture = makeFixture();
  await startEngine();
  await engine.images.import(fixture.base, { format: "rootfs", tag: IMAGE, changes: ["ENV PATH=/bin"] });
});
after(async () => {
  s3.destroy();
  await engine.close();
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function spec(name: string, lambda: string, script: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "script.sh"), script);
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n      init_script: script.sh\n      container:\n        image: ${IMAGE}\n${lambda}`;
  const file = join(dir, "fn.yaml");
  writeFileSync(file, yaml);
  return parseFdl(file, yaml).functions[0]!;
}

async function objectText(bucket: string, key: string): Promise<string | undefined> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await r.Body!.transformToString();
  } catch {
    return undefined;
  }
}

test("an upload to the input folder becomes a job whose result lands in the output folder", async () => {
  await engine.deploy(
    spec(
      "upper",
      "      input:\n      - path: photos/in\n      output:\n      - path: photos/out\n",
      'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\necho "did $STORAGE_OBJECT_KEY"\n',
    ),
  );
  const folders = await s3.send(new ListObjectsV2Command({ Bucket: "photos" }));
  assert.deepEqual(
    (folders.Contents ?? []).map((c) => c.Key).sort(),
    ["in/", "out/"],
    "deploy creates the bucket and folder markers",
  );
  await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "in/a b.txt", Body: "hello engine" }));
  assert.equal(await waitFor("the output", () => objectText("photos", "out/a b.txt")), "HELLO ENGINE");

  const page = engine.jobs.list("upper");
  assert.equal(page.jobs.length, 1, "exactly one job per upload (folder markers start none)");
  const job = await waitFor("the job to finish", async () => {
    const j = engine.jobs.get(page.jobs[0]!.id)!;
    return j.status === "succeeded" ? j : undefined;
  });
  assert.deepEqual(job.trigger, { type: "object", bucket: "photos", key: "in/a b.txt" });
  assert.equal(job.reason, "ok");
  assert.equal(job.exitCode, 0);
  assert.deepEqual(job.outputKeys, ["photos/out/a b.txt"]);
  for (const s of STAGES) {
    assert.equal(typeof job.stages[s], "number", `stage ${s} has a time`);
  }
  const log = engine.jobs.log(job.id) ?? "";
  assert.match(log, /supervisor - INFO - Downloading item from bucket 'photos' with key 'in\/a b.txt'/);
  assert.match(log, /^did in\/a b.txt$/m);
});

test("sync invocation returns the script's output", async () => {
  await engine.deploy(spec("hello", "", 'echo "hello from $AWS_LAMBDA_FUNCTION_NAME"\n'));
  const { job, result } = await engine.invoke("hello", {}, { sync: true });
  assert.equal(job.status, "succeeded");
  assert.equal(result?.output.toString(), "hello from hello\n");
  assert.equal(Buffer.from(result!.response.body, "base64").toString(), "hello from hello\n");
});

test("invocations arriving together share one commit (one fsync) of the job database, and each returns once it is committed", async () => {
  await engine.deploy(spec("grouped", "", "echo grouped\n"));
  const calls: number[] = [];
  // The batcher commits with enqueueManyUnsynced, then fsyncs the WAL once on the thread pool.
  const enqueueMany = engine.jobs.enqueueManyUnsynced.bind(engine.jobs);
  engine.jobs.enqueueManyUnsynced = (inputs) => {
    calls.push(inputs.length);
    return enqueueMany(inputs);
  };
  try {
    const jobs = await Promise.all(
      Array.from({ length: 5 }, () => engine.invoke("grouped", {}, { sync: false })),
    );
    assert.deepEqual(calls, [5], "one transaction for the five");
    for (const { job } of jobs) assert.ok(engine.jobs.get(job.id), "committed before invoke returned");
    for (const { job } of jobs) assert.equal((await waitJob(job.id)).status, "succeeded");
  } finally {
    engine.jobs.enqueueManyUnsynced = enqueueMany;
  }
});

async function waitJob(id: string) {
  return waitFor(`job ${id} to finish`, () => {
    const j = engine.jobs.get(id);
    return j && (j.status === "succeeded" || j.status === "failed" || j.status === "dead") ? j : undefined;
  });
}

test("network: host lets the script reach the store with the endpoint and keys it is given; none is loopback only", async () => {
  const script =
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    'echo "endpoint=${AWS_ENDPOINT_URL:-unset} key=${AWS_ACCESS_KEY_ID:-unset}"\n' +
    'wget -O /dev/null "$STORE/" 2>&1 | grep -o "HTTP/1.1 [0-9]*" || echo unreachable\n';
  const open = spec("net-host", "", script);
  await engine.deploy({ ...open, network: "host", environment: { STORE: engine.store.url } });
  const closed = spec("net-none", "", script);
  await engine.deploy({ ...closed, environment: { STORE: engine.store.url } });
  const host = (await engine.invoke("net-host", {}, { sync: true })).result!.output.toString();
  // the function's own key pair (function-keys.ts), never the engine's
  const keys = JSON.parse(readFileSync(join(root, "data", "function-keys"), "utf8"));
  assert.notEqual(keys["net-host"].accessKeyId, engine.credentials.s3.accessKeyId);
  assert.equal(host, `endpoint=${engine.store.url} key=${keys["net-host"].accessKeyId}\nHTTP/1.1 403\n`);
  const none = (await engine.invoke("net-none", {}, { sync: true })).result!.output.toString();
  assert.equal(none, "endpoint=unset key=unset\nunreachable\n");
});

test("a two-step workflow: the first function's output triggers the second", async () => {
  await engine.deploy(
    spec(
      "step1",
      "      input:\n      - path: flow/start\n      output:\n      - path: flow/middle\n",
      'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"; echo step1 >> "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n',
    ),
  );
  await engine.deploy(
    spec(
      "step2",
      "      input:\n      - path: flow/middle\n      output:\n      - path: flow/end\n",
      'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"; echo step2 >> "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n',
    ),
  );
  await s3.send(new PutObjectCommand({ Bucket: "flow", Key: "start/doc.txt", Body: "start\n" }));
  assert.equal(
    await waitFor("the end of the workflow", () => objectText("flow", "end/doc.txt")),
    "start\nstep1\nstep2\n",
  );
});

test("a deployment that would loop with a deployed function is refused", async () => {
  await assert.rejects(
    engine.deploy(
      spec(
        "step3",
        "      input:\n      - path: flow/end\n      output:\n      - path: flow/start\n",
        "true\n",
      ),
    ),
    (err: unknown) =>
      err instanceof DeployError &&
      /these functions form a loop: .*step1 -> step2 -> step3/.test(err.message),
  );
  assert.equal(engine.registry.get("step3"), undefined);
});

test("a failing script is a failed job with its log; the engine keeps going", async () => {
  await engine.deploy(spec("broken", "      input:\n      - path: bad/in\n", "echo about to fail; exit 4\n"));
  await s3.send(new PutObjectCommand({ Bucket: "bad", Key: "in/x", Body: "x" }));
  const job = await waitFor("the first attempt", async () => {
    const j = engine.jobs.list("broken").jobs[0];
    return j && j.attempts >= 1 && j.reason === "script-error" ? j : undefined;
  });
  assert.equal(job.exitCode, 4);
  assert.match(engine.jobs.log(job.id) ?? "", /about to fail/);
  const { result } = await engine.invoke("hello", {}, { sync: true });
  assert.equal(result?.output.toString(), "hello from hello\n", "other functions still run");
});

test("deployed functions and their triggers survive a restart", async () => {
  s3.destroy();
  await engine.close();
  await startEngine();
  assert.ok(engine.registry.get("upper"));
  await s3.send(new PutObjectCommand({ Bucket: "photos", Key: "in/after-restart.txt", Body: "again" }));
  assert.equal(await waitFor("the output", () => objectText("photos", "out/after-restart.txt")), "AGAIN");
});
