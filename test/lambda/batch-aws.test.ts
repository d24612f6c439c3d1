/**
 * The real BatchSubmitter (@aws-sdk/client-batch) behind the runtime: the function's runtime loop in
 * this process against the Runtime API emulator, with the Batch client answered by an SDK mock, so the
 * test sees the SubmitJob call as AWS would receive it.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { BatchClient, SubmitJobCommand } from "@aws-sdk/client-batch";
import { mockClient } from "aws-sdk-client-mock";
import { AwsBatchSubmitter } from "../../src/lambda/batch-aws.js";
import { RuntimeApiEmulator } from "../../src/lambda/emulator/runtime-api-server.js";
import { runRuntime } from "../../src/lambda/runtime.js";
import { functionEnv, functionFolder, type Lab, lab, responseOutput } from "./helpers.js";

let l: Lab;
const client = new BatchClient({
  region: "us-east-1",
  credentials: { accessKeyId: "x", secretAccessKey: "y" },
});
const batchMock = mockClient(client);
before(async () => {
  l = await lab(["batch-out"]);
});
beforeEach(() => {
  batchMock.reset();
  batchMock.on(SubmitJobCommand).resolves({ jobId: "8f1c-job", jobName: "scar-batch", jobArn: "arn:job" });
});
after(async () => {
  batchMock.restore();
  await l.stop();
});

const base = {
  name: "scar-batch",
  execution_mode: "batch",
  container: { image: "debian:bookworm" },
  timeout: 30,
  output: [{ storage_provider: "s3", path: "batch-out" }],
};

async function invoke(config: Record<string, unknown>, event: unknown) {
  const folder = functionFolder(config, 'echo ran > "$TMP_OUTPUT_DIR/ran.txt"');
  const emu = await RuntimeApiEmulator.start({ functionName: "scar-batch" });
  const logs: string[] = [];
  try {
    const env = { ...functionEnv(l.store, folder.configFile), AWS_LAMBDA_RUNTIME_API: emu.address };
    const runtime = runRuntime({
      env,
      batch: new AwsBatchSubmitter(client),
      invocations: 1,
      write: (t) => logs.push(t.toString()),
    });
    const r = await emu.invoke(event, { timeoutMs: 20_000 });
    await runtime;
    return { ...r, log: logs.join("") };
  } finally {
    await emu.close();
  }
}

test("SubmitJob carries the event, the run script and the context as SCAR sends them", async () => {
  const script = Buffer.from("echo in batch\n").toString("base64");
  const event = { script, Records: [{ eventSource: "none" }] };
  const r = await invoke(base, event);
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.equal(
    responseOutput(r.body).toString(),
    "Job delegated to batch.\nCheck batch logs with:\n  scar log -n scar-batch -ri 8f1c-job",
  );
  const calls = batchMock.commandCalls(SubmitJobCommand);
  assert.equal(calls.length, 1);
  const input = calls[0]!.args[0].input;
  assert.equal(input.jobName, "scar-batch");
  assert.equal(input.jobQueue, "scar-batch");
  assert.equal(input.jobDefinition, "scar-batch");
  assert.equal(input.nodeOverrides, undefined);
  const env = input.containerOverrides!.environment!;
  assert.deepEqual(
    env.map((e) => e.name),
    ["SCRIPT", "EVENT", "CONTEXT", "AWS_LAMBDA_REQUEST_ID"],
  );
  const vars = Object.fromEntries(env.map((e) => [e.name, e.value]));
  assert.equal(vars.SCRIPT, script);
  assert.deepEqual(JSON.parse(vars.EVENT!), event);
  assert.equal(vars.AWS_LAMBDA_REQUEST_ID, r.requestId);
  assert.deepEqual(Object.keys(JSON.parse(vars.CONTEXT!)), [
    "function_name",
    "memory_limit_in_mb",
    "aws_request_id",
    "log_group_name",
    "log_stream_name",
  ]);
  assert.equal(await l.get("batch-out", "ran.txt"), undefined, "nothing ran in the function");
});

test("a multi-node job definition gets the variables on every node", async () => {
  const r = await invoke(
    { ...base, batch: { multi_node_parallel: { enabled: true, number_nodes: 3, main_node_index: 0 } } },
    { n: 1 },
  );
  assert.equal(r.status, "success", JSON.stringify(r));
  const input = batchMock.commandCalls(SubmitJobCommand)[0]!.args[0].input;
  assert.equal(input.containerOverrides, undefined);
  const node = input.nodeOverrides!.nodePropertyOverrides![0]!;
  assert.equal(node.targetNodes, "0:");
  const vars = Object.fromEntries(node.containerOverrides!.environment!.map((e) => [e.name, e.value]));
  assert.deepEqual(JSON.parse(vars.EVENT!), { n: 1 });
});

test("Batch refusing the job fails the invocation with Batch's reason", async () => {
  batchMock.reset();
  batchMock
    .on(SubmitJobCommand)
    .rejects(Object.assign(new Error("Job queue scar-batch does not exist"), { name: "ClientException" }));
  const r = await invoke(base, { n: 2 });
  assert.equal(r.status, "error", JSON.stringify(r));
  assert.match(r.log, /ERROR - Submitting the AWS Batch job failed: Job queue scar-batch does not exist\n/);
});
