/**
 * scar's Lambda runtime end to end: `node dist/src/lambda/bootstrap.js` as a real process served by
 * the Runtime API emulator, staging through the AWS SDK into scar's embedded store (AWS_ENDPOINT_URL).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CREDS } from "../engine/store/helpers.js";
import { functionFolder, type Lab, lab, responseOutput, s3Event } from "./helpers.js";

const IN = "scar-in";
const OUT = "scar-out";
let l: Lab;

before(async () => {
  l = await lab([IN, OUT]);
});
after(async () => {
  await l.stop();
});

const base = {
  name: "scar-test",
  container: { image: "debian:bookworm", timeout_threshold: 2 },
  timeout: 30,
  input: [{ storage_provider: "s3", path: `${IN}/photos` }],
  output: [{ storage_provider: "s3", path: `${OUT}/results` }],
};

test("an S3 event: the object is staged in, the script runs, its output lands in the output bucket", async () => {
  await l.put(IN, "photos/my dog.txt", "hello lambda\n");
  const script = [
    'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").up"',
    'echo "key=$STORAGE_OBJECT_KEY in=$INPUT_FILE_PATH"',
  ].join("\n");
  const emu = await l.emulator(functionFolder(base, script));
  const r = await emu.invoke(s3Event(IN, "photos/my dog.txt"), { timeoutMs: 20_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  const body = r.body as { statusCode: number; headers: Record<string, string> };
  assert.equal(body.statusCode, 200);
  assert.equal(body.headers["amz-lambda-request-id"], r.requestId);
  assert.equal(body.headers["amz-log-group-name"], "/aws/lambda/scar-test");
  assert.equal(
    responseOutput(r.body).toString(),
    `key=photos/my dog.txt in=/tmp/${r.requestId}/input/my dog.txt\n`,
  );
  assert.equal((await l.get(OUT, "results/my dog.txt.up"))?.toString(), "HELLO LAMBDA\n");
  const logs = r.logs!.join("\n");
  assert.match(logs, new RegExp(`^START RequestId: ${r.requestId} Version: \\$LATEST$`, "m"));
  assert.match(logs, / - supervisor - INFO - SUPERVISOR: Initializing AWS Lambda supervisor$/m);
  assert.match(
    logs,
    / - supervisor - INFO - Downloading item from bucket 'scar-in' with key 'photos\/my dog.txt'$/m,
  );
  assert.match(logs, / - supervisor - INFO - Uploading file 'results\/my dog.txt.up' to bucket 'scar-out'$/m);
  assert.match(logs, new RegExp(`^END RequestId: ${r.requestId}$`, "m"));
  assert.match(
    logs,
    new RegExp(
      `^REPORT RequestId: ${r.requestId}\tDuration: [0-9.]+ ms\tBilled Duration: \\d+ ms\tMemory Size: 512 MB\tInit Duration: [0-9.]+ ms$`,
      "m",
    ),
  );
});

test("an API Gateway proxy event: the base64 body is the input file, query parameters are CONT_VAR_*", async () => {
  const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0a, 0x41]);
  const emu = await l.emulator(
    functionFolder({ ...base, output: [] }, 'printf "%s:" "$CONT_VAR_size"; cat "$INPUT_FILE_PATH"'),
  );
  const event = {
    resource: "/{proxy+}",
    path: "/launch",
    httpMethod: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    queryStringParameters: { size: "42" },
    body: bytes.toString("base64"),
    isBase64Encoded: true,
  };
  const r = await emu.invoke(event, { timeoutMs: 20_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.deepEqual(responseOutput(r.body), Buffer.concat([Buffer.from("42:"), bytes]));
});

test("a direct payload is saved as the input file; the trace id reaches the script", async () => {
  const emu = await l.emulator(
    functionFolder({ ...base, output: [] }, 'cat "$INPUT_FILE_PATH"; echo; echo "trace=$_X_AMZN_TRACE_ID"'),
  );
  const traceId = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";
  const r = await emu.invoke({ hello: "world", n: 1 }, { timeoutMs: 20_000, traceId });
  assert.equal(r.status, "success", JSON.stringify(r));
  assert.equal(responseOutput(r.body).toString(), `{"hello":"world","n":1}\ntrace=${traceId}\n`);
  // The next invocation without a trace id does not inherit the previous one.
  const r2 = await emu.invoke({ again: true }, { timeoutMs: 20_000 });
  assert.equal(responseOutput(r2.body).toString(), '{"again":true}\ntrace=\n');
});

test("SCAR's {\"script\"} payload runs that script instead of the function's", async () => {
  const emu = await l.emulator(functionFolder({ ...base, output: [] }, "echo the-function-script"));
  const run = 'echo "run-script $AWS_LAMBDA_REQUEST_ID"\nls "$TMP_INPUT_DIR"\n';
  const r = await emu.invoke({ script: Buffer.from(run).toString("base64") }, { timeoutMs: 20_000 });
  assert.equal(r.status, "success", JSON.stringify(r));
  const out = responseOutput(r.body).toString().split("\n");
  assert.equal(out[0], `run-script ${r.requestId}`);
  assert.ok(out.includes("script.sh"), out.join("|"));
  assert.ok(!out.includes("the-function-script"));
});

test("a failing script: an error with SCAR's message, and its partial outputs are not uploaded", async () => {
  const emu = await l.emulator(
    functionFolder(base, 'echo partial > "$TMP_OUTPUT_DIR/failed.txt"; echo about to fail; exit 3'),
  );
  const r = await emu.invoke({ go: 1 }, { timeoutMs: 20_000 });
  assert.equal(r.status, "error");
  assert.equal(r.errorType, "UserScriptError");
  assert.deepEqual(r.body, { errorType: "UserScriptError", errorMessage: "User script exited with code 3!" });
  const logs = r.logs!.join("\n");
  assert.match(logs, / - supervisor - WARNING - User script exited with code 3!$/m);
  assert.match(logs, /^about to fail$/m);
  assert.equal(await l.get(OUT, "results/failed.txt"), undefined);
});

test("timeout_threshold: the script is stopped before the deadline, what it wrote is uploaded, the error says it timed out", async () => {
  const cfg = { ...base, timeout: 30, container: { image: "debian:bookworm", timeout_threshold: 5 } };
  const emu = await l.emulator(
    functionFolder(cfg, 'echo partial > "$TMP_OUTPUT_DIR/part.txt"; echo started; exec sleep 60'),
  );
  // 8 s to the deadline: the script gets floor(7.9..) - 5 = 2 s; the runtime answers well before Lambda's end.
  const r = await emu.invoke({ go: 1 }, { timeoutMs: 8_000 });
  assert.equal(r.status, "error", JSON.stringify(r));
  assert.deepEqual(r.body, {
    errorType: "ContainerTimeoutExpiredWarning",
    errorMessage: "Container timeout expired.\nContainer execution stopped.",
  });
  assert.equal((await l.get(OUT, "results/part.txt"))?.toString(), "partial\n");
  const logs = r.logs!.join("\n");
  assert.match(logs, /Executing the function. Timeout set to '2' seconds$/m);
  assert.match(logs, /WARNING - Container timeout expired.\\nContainer execution stopped.$/m);
  assert.match(
    logs,
    /Uploaded after the timeout \(written before the kill\): 1 file: 'scar-out\/results\/part.txt'$/m,
  );
});

test("a configuration that cannot be read is an init error, with the reason", async () => {
  const emu = await l.emulator(functionFolder({ ...base, timeout: 5000 }, "echo never"));
  const r = await emu.invoke({}, { timeoutMs: 20_000 });
  assert.equal(r.status, "error");
  assert.equal(r.errorType, "Runtime.ConfigError");
  const msg = (r.body as { errorMessage: string }).errorMessage;
  assert.match(
    msg,
    /^the function configuration \(.*function_config.yaml\) is not valid:\n {2}timeout: timeout 5000 is out of range/,
  );
});

test("an output larger than Lambda's 6 MB response is cut to fit (its start and end kept), not a crash", async () => {
  const emu = await l.emulator(
    functionFolder(
      { ...base, output: [] },
      "echo first-line; head -c 6000000 /dev/zero | tr '\\0' a; echo; echo last-line",
    ),
  );
  const r = await emu.invoke({}, { timeoutMs: 30_000 });
  assert.equal(r.status, "success", JSON.stringify(r).slice(0, 500));
  const out = responseOutput(r.body).toString();
  assert.ok(out.startsWith("first-line\n"), out.slice(0, 100));
  assert.ok(out.endsWith("last-line\n"), out.slice(-100));
  assert.ok(Buffer.byteLength(JSON.stringify(r.body)) <= 6 * 1024 * 1024);
  // The runtime is still there for the next invocation.
  const again = await emu.invoke({}, { timeoutMs: 30_000 });
  assert.equal(again.status, "success");
});

test("storage providers of the configuration: minio.<id> and s3.<id> use their own endpoint and keys", async () => {
  await l.put(IN, "photos/p.txt", "from minio\n");
  const cfg = {
    ...base,
    input: [{ storage_provider: "minio.lab", path: `${IN}/photos` }],
    output: [{ storage_provider: "s3.keys", path: `${OUT}/named` }],
    storage_providers: {
      minio: {
        lab: {
          endpoint: l.store.store.url,
          access_key: CREDS.accessKeyId,
          secret_key: CREDS.secretAccessKey,
        },
      },
      s3: { keys: { access_key: CREDS.accessKeyId, secret_key: CREDS.secretAccessKey, region: "us-east-1" } },
    },
  };
  // The role's keys are wrong: only the providers' own keys can reach the store.
  const emu = await l.emulator(functionFolder(cfg, 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.txt"'), {
    AWS_ACCESS_KEY_ID: "AKIDWRONG",
    AWS_SECRET_ACCESS_KEY: "wrong-secret",
  });
  const event = s3Event(IN, "photos/p.txt") as { Records: { eventSource: string }[] };
  event.Records[0]!.eventSource = "minio:s3";
  const r = await emu.invoke(event, { timeoutMs: 20_000 });
  assert.equal(r.status, "success", JSON.stringify(r.body));
  assert.equal((await l.get(OUT, "named/copy.txt"))?.toString(), "from minio\n");
});
