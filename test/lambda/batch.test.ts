/**
 * lambda-batch and batch delegation, through the runtime loop in this process (so that the one thing
 * out of reach, AWS Batch's SubmitJob, can be replaced at its interface) against the Runtime API
 * emulator and the embedded store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { BatchJobRequest, BatchSubmitter } from "../../src/lambda/batch.js";
import { RuntimeApiEmulator } from "../../src/lambda/emulator/runtime-api-server.js";
import { runRuntime } from "../../src/lambda/runtime.js";
import { functionEnv, functionFolder, type Lab, lab, responseOutput } from "./helpers.js";

let l: Lab;
before(async () => {
  l = await lab(["batch-out"]);
});
after(async () => {
  await l.stop();
});

class RecordingSubmitter implements BatchSubmitter {
  readonly jobs: BatchJobRequest[] = [];
  async submit(job: BatchJobRequest): Promise<string> {
    this.jobs.push(job);
    return "job-0001";
  }
}

async function invokeInProcess(
  config: Record<string, unknown>,
  script: string,
  event: unknown,
  timeoutMs: number,
) {
  const folder = functionFolder(config, script);
  const emu = await RuntimeApiEmulator.start({ functionName: "scar-batch" });
  const batch = new RecordingSubmitter();
  const logs: string[] = [];
  try {
    const env = { ...functionEnv(l.store, folder.configFile), AWS_LAMBDA_RUNTIME_API: emu.address };
    const runtime = runRuntime({ env, batch, invocations: 1, write: (t) => logs.push(t.toString()) });
    const r = await emu.invoke(event, { timeoutMs });
    await runtime;
    return { r, jobs: batch.jobs, logs: logs.join("") };
  } finally {
    await emu.close();
  }
}

const base = {
  name: "scar-batch",
  container: { image: "debian:bookworm", timeout_threshold: 5 },
  timeout: 30,
  output: [{ storage_provider: "s3", path: "batch-out" }],
};

test("lambda-batch: a script that runs out of time uploads what it wrote, then the event goes to Batch", async () => {
  const event = { Records: [{ note: "not a storage record" }], n: 7 };
  const { r, jobs, logs } = await invokeInProcess(
    { ...base, execution_mode: "lambda-batch" },
    'echo half > "$TMP_OUTPUT_DIR/half.txt"; exec sleep 60',
    event,
    8_000,
  );
  assert.equal(r.status, "success", JSON.stringify(r));
  const message = "Job delegated to batch.\nCheck batch logs with:\n  scar log -n scar-batch -ri job-0001";
  assert.equal(responseOutput(r.body).toString(), message);
  assert.equal(jobs.length, 1);
  const job = jobs[0]!;
  assert.equal(job.jobName, "scar-batch");
  assert.equal(job.jobQueue, "scar-batch");
  assert.equal(job.jobDefinition, "scar-batch");
  const env = Object.fromEntries(job.environment.map((e) => [e.name, e.value]));
  assert.deepEqual(JSON.parse(env.EVENT!), event);
  assert.equal(env.AWS_LAMBDA_REQUEST_ID, r.requestId);
  assert.equal(env.SCRIPT, "");
  assert.equal(JSON.parse(env.CONTEXT!).aws_request_id, r.requestId);
  assert.equal((await l.get("batch-out", "half.txt"))?.toString(), "half\n");
  assert.match(
    logs,
    /INFO - Job delegated to batch\.\nCheck batch logs with:\n {2}scar log -n scar-batch -ri job-0001\n/,
  );
});

test("batch: nothing runs in the function, the event and the run script go to Batch at once", async () => {
  const script = Buffer.from("echo in batch\n").toString("base64");
  const { r, jobs } = await invokeInProcess(
    { ...base, execution_mode: "batch" },
    'echo ran > "$TMP_OUTPUT_DIR/ran.txt"',
    { script },
    20_000,
  );
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.equal(jobs.length, 1);
  const env = Object.fromEntries(jobs[0]!.environment.map((e) => [e.name, e.value]));
  assert.equal(env.SCRIPT, script);
  assert.equal(await l.get("batch-out", "ran.txt"), undefined);
});

test("a workspace that cannot be made fails the invocation with the reason; the runtime serves the next one", async () => {
  const folder = functionFolder({ ...base, output: [] }, "echo ran");
  const notAFolder = join(folder.dir, "function_config.yaml"); // a file: no workspace can be made under it
  const emu = await RuntimeApiEmulator.start({ functionName: "scar-batch" });
  const logs: string[] = [];
  try {
    const env = { ...functionEnv(l.store, folder.configFile), AWS_LAMBDA_RUNTIME_API: emu.address };
    const runtime = runRuntime({
      env,
      workRoot: notAFolder,
      invocations: 2,
      write: (t) => logs.push(t.toString()),
    });
    const first = await emu.invoke({}, { timeoutMs: 20_000 });
    const second = await emu.invoke({}, { timeoutMs: 20_000 });
    await runtime;
    assert.equal(first.status, "error");
    assert.equal(first.errorType, "Runtime.UnhandledError");
    assert.match((first.body as { errorMessage: string }).errorMessage, /ENOTDIR/);
    assert.equal(second.status, "error");
  } finally {
    await emu.close();
  }
});
