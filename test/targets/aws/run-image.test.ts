/**
 * `scar run --target aws` (the real binary and the real LambdaClient) against a Lambda at
 * AWS_ENDPOINT_URL_LAMBDA whose Invoke runs the function's real image in scar's emulator (real
 * crun/runc): what the user sees is the runtime's own response, request id and log tail, through the
 * SDK's own serialisation (X-Amz-Log-Result, X-Amz-Function-Error, x-amzn-RequestId).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { apiGatewayEvent } from "../../../src/engine/api/invoke.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { parseFdl } from "../../../src/fdl/load.js";
import { ImageFunction } from "../../../src/lambda/emulator/image-runtime.js";
import { buildFunctionImage } from "../../../src/lambda/image/builder.js";
import { functionEnvironment } from "../../../src/targets/aws/function-env.js";
import { runScar } from "../../cli/harness.js";
import { busyboxRootfs } from "../../engine/images/helpers.js";
import { type InvokeAnswer, type LambdaFn, LambdaHttp } from "./lambda-http.js";

const work = mkdtempSync(join(tmpdir(), "scar-aws-run-image-"));
const cfgDir = join(work, "cfg");
const ROLE = "arn:aws:iam::123456789012:role/scar-lambda";
const NAME = "scar-say";
let images: ImageStore;
let runner: Runner;
let lambda: LambdaHttp;
const running = new Map<string, ImageFunction>();
const API_ID = "apiscar1";
const SLOW = "scar-slow";
let logsAndBatch: Server;
let logsUrl: string;
const logEvents: { group: string; stream: string; timestamp: number; message: string }[] = [];
const batchJobs = new Map<string, Record<string, unknown>>();

/**
 * CloudWatch Logs' FilterLogEvents (the function's log as the emulator wrote it) and AWS Batch's
 * SubmitJob / DescribeJobs at their SDK endpoints. A submitted job is SUCCEEDED at once; its stream
 * in /aws/batch/job says which request it ran (its variables, as SubmitJob gave them).
 */
async function startLogsAndBatch(): Promise<void> {
  logsAndBatch = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    const send = (status: number, doc: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json", "x-amzn-RequestId": randomUUID() });
      res.end(JSON.stringify(doc));
    };
    if (req.headers["x-amz-target"] === "Logs_20140328.FilterLogEvents") {
      const all = logEvents.filter(
        (e) =>
          e.group === body.logGroupName &&
          (!body.logStreamNames || (body.logStreamNames as string[]).includes(e.stream)),
      );
      if (all.length === 0)
        return send(400, {
          __type: "ResourceNotFoundException",
          message: "The specified log group does not exist.",
        });
      return send(200, {
        events: all.map((e) => ({ ...e, logStreamName: e.stream, eventId: String(logEvents.indexOf(e)) })),
      });
    }
    if (req.url === "/v1/submitjob") {
      const jobId = randomUUID();
      const env =
        (body.containerOverrides as { environment?: { name: string; value: string }[] })?.environment ?? [];
      const stream = `${body.jobDefinition}/default/${jobId.slice(0, 8)}`;
      batchJobs.set(jobId, {
        jobId,
        jobName: body.jobName,
        jobQueue: body.jobQueue,
        status: "SUCCEEDED",
        container: { logStreamName: stream },
        environment: env,
      });
      logEvents.push({
        group: "/aws/batch/job",
        stream,
        timestamp: Date.now(),
        message: `batch job of queue ${body.jobQueue}: ${env
          .map((e) => e.name)
          .sort()
          .join(",")}\n`,
      });
      return send(200, {
        jobId,
        jobName: body.jobName,
        jobArn: `arn:aws:batch:eu-west-1:123456789012:job/${jobId}`,
      });
    }
    if (req.url === "/v1/describejobs")
      return send(200, {
        jobs: ((body.jobs as string[]) ?? []).map((id) => batchJobs.get(id)).filter(Boolean),
      });
    send(400, { __type: "UnknownOperationException", message: `${req.method} ${req.url}` });
  });
  await new Promise<void>((r) => logsAndBatch.listen(0, "127.0.0.1", r));
  logsUrl = `http://127.0.0.1:${(logsAndBatch.address() as AddressInfo).port}`;
}
let apiGateway: Server;
let apiUrl: string;
/** The last asynchronous invocation API Gateway passed on. */
let lastAsync: Promise<InvokeAnswer> | undefined;

/**
 * API Gateway's stage `scar` at AWS_ENDPOINT_URL_API_GATEWAY (LocalStack's paths): `{proxy+}` ANY as
 * a Lambda proxy integration. The request becomes the proxy event, the function's proxy response
 * the HTTP answer (its body passed as it is: no binary media types, as SCAR's API has none); with
 * X-Amz-Invocation-Type Event the function is invoked asynchronously and API Gateway, which gets no
 * proxy response, answers 502.
 */
async function startApiGateway(): Promise<void> {
  apiGateway = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const m = /^\/restapis\/([^/]+)\/scar\/_user_request_(\/.*)$/.exec(url.pathname);
    const fn = [...lambda.functions.values()].find(
      (f) =>
        m &&
        (f.config.Environment as { Variables: Record<string, string> }).Variables.API_GATEWAY_ID === m[1],
    );
    const json = (status: number, message: string) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message }));
    };
    if (!m || !fn || !lambda.invoke) return json(403, "Forbidden");
    const event = Buffer.from(
      JSON.stringify(apiGatewayEvent(req, new URL(`${m[2]}${url.search}`, url), Buffer.concat(chunks))),
    );
    if (req.headers["x-amz-invocation-type"] === "Event") {
      lastAsync = lambda.invoke(fn, event, randomUUID(), "Event");
      return json(502, "Internal server error");
    }
    const a = await lambda.invoke(fn, event, randomUUID(), "RequestResponse");
    const p = a.payload as { statusCode?: number; headers?: Record<string, string>; body?: string };
    if (a.functionError || typeof p?.statusCode !== "number") return json(502, "Internal server error");
    res.writeHead(p.statusCode, p.headers ?? {});
    res.end(p.body ?? "");
  });
  await new Promise<void>((r) => apiGateway.listen(0, "127.0.0.1", r));
  apiUrl = `http://127.0.0.1:${(apiGateway.address() as AddressInfo).port}`;
}

before(async () => {
  images = new ImageStore({ dataDir: join(work, "data") });
  runner = await Runner.open({ stateDir: join(work, "runtime") });
  const root = join(work, "rootfs");
  busyboxRootfs(root, ["sh", "echo", "printf", "cat"]);
  await images.import(root, { format: "rootfs", tag: "localhost/say:1", changes: ["ENV PATH=/bin"] });
  writeFileSync(
    join(work, "say.sh"),
    [
      '[ -n "$CONT_VAR_WHO" ] && to=" to $CONT_VAR_WHO"',
      'echo "said by $AWS_LAMBDA_FUNCTION_NAME: $GREETING$to"',
      '[ -s "$INPUT_FILE_PATH" ] && { echo "input:"; cat "$INPUT_FILE_PATH"; }',
      "true",
    ].join("\n"),
  );
  const text = JSON.stringify({
    functions: {
      aws: [
        {
          lambda: {
            name: NAME,
            runtime: "image",
            memory: 256,
            timeout: 60,
            init_script: "say.sh",
            container: {
              image: "localhost/say:1",
              timeout_threshold: 2,
              environment: { Variables: { GREETING: "hola" } },
            },
          },
          iam: { role: ROLE },
        },
      ],
    },
  });
  const file = join(work, "say.yaml");
  writeFileSync(file, text);
  const def = parseFdl(file, text);
  const spec = def.functions[0]!;
  const built = await buildFunctionImage({
    spec,
    storageProviders: def.storage_providers,
    source: { kind: "registry", reference: "localhost/say:1" },
    images,
    tag: `scar-lambda/${NAME}:latest`,
  });

  // a lambda-batch function whose script outlives Lambda's time: delegated to AWS Batch
  writeFileSync(join(work, "slow.sh"), 'echo "slow work starts"\nsleep 60\n');
  const slowText = JSON.stringify({
    functions: {
      aws: [
        {
          lambda: {
            name: SLOW,
            runtime: "image",
            memory: 256,
            timeout: 4,
            execution_mode: "lambda-batch",
            init_script: "slow.sh",
            container: { image: "localhost/say:1", timeout_threshold: 2 },
          },
          iam: { role: ROLE },
        },
      ],
    },
  });
  writeFileSync(join(work, "slow.yaml"), slowText);
  const slowDef = parseFdl(join(work, "slow.yaml"), slowText);
  const slowBuilt = await buildFunctionImage({
    spec: slowDef.functions[0]!,
    storageProviders: slowDef.storage_providers,
    source: { kind: "registry", reference: "localhost/say:1" },
    images,
    tag: `scar-lambda/${SLOW}:latest`,
  });

  lambda = await LambdaHttp.start("eu-west-1");
  lambda.add({
    FunctionName: SLOW,
    Role: ROLE,
    MemorySize: 256,
    Timeout: 4,
    Code: { ImageUri: slowBuilt.reference },
    Environment: { Variables: functionEnvironment(slowDef.functions[0]!, slowDef.storage_providers) },
    Tags: { createdby: "scar" },
  });
  await startLogsAndBatch();
  // what `scar init` leaves: the image, scar's variables and tags (init itself is tested over mocks)
  lambda.add({
    FunctionName: NAME,
    Role: ROLE,
    MemorySize: 256,
    Timeout: 60,
    Code: { ImageUri: built.reference },
    Environment: { Variables: functionEnvironment(spec, def.storage_providers, { apiId: API_ID }) },
    Tags: { createdby: "scar" },
  });
  // Lambda's Invoke: the payload through the function image, one warm environment per function
  lambda.invoke = async (fn: LambdaFn, payload: Buffer, requestId: string) => {
    let f = running.get(fn.imageUri);
    if (!f) {
      f = await ImageFunction.start({
        runner,
        images,
        reference: fn.imageUri,
        functionName: String(fn.config.FunctionName),
        memoryMB: Number(fn.config.MemorySize),
        region: lambda.region,
        env: {
          ...(fn.config.Environment as { Variables: Record<string, string> }).Variables,
          AWS_EC2_METADATA_DISABLED: "true",
          // Lambda's credentials of the role; the SDK's endpoint of Batch for the delegated jobs
          AWS_ACCESS_KEY_ID: "ASIASCARROLE",
          AWS_SECRET_ACCESS_KEY: "scar-role-secret",
          AWS_ENDPOINT_URL_BATCH: logsUrl,
        },
      });
      running.set(fn.imageUri, f);
    }
    const r = await f.invoke(JSON.parse(payload.toString("utf8")), {
      timeoutMs: Number(fn.config.Timeout) * 1000,
      requestId,
    });
    // what Lambda writes to the function's log group
    const t = Date.now();
    logEvents.push(
      ...(r.logs ?? []).map((l, i) => ({
        group: `/aws/lambda/${fn.config.FunctionName}`,
        stream: "2026/12/04/[$LATEST]0123",
        timestamp: t + i,
        message: `${l}\n`,
      })),
    );
    return {
      payload: r.body,
      ...(r.status !== "success" ? { functionError: "Unhandled" } : {}),
      logs: r.logs ?? [],
    };
  };

  await startApiGateway();
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({
      scar: { config_version: "2.0.0", target: "aws" },
      local: { data_dir: join(work, "engine") },
      aws: { iam: { role: ROLE }, lambda: { region: "eu-west-1" } },
    }),
  );
});

after(async () => {
  for (const f of running.values()) await f.close();
  await runner?.close();
  await lambda?.close();
  logsAndBatch?.closeAllConnections();
  await new Promise((r) => logsAndBatch?.close(r));
  apiGateway?.closeAllConnections();
  await new Promise((r) => apiGateway?.close(r));
  rmSync(work, { recursive: true, force: true });
});

const scar = (args: string[], env: Record<string, string> = {}) =>
  runScar([args[0]!, "--target", "aws", ...args.slice(1)], {
    cfgDir,
    cwd: work,
    timeout: 180_000,
    env: {
      AWS_ENDPOINT_URL_LAMBDA: lambda.url,
      AWS_ENDPOINT_URL_API_GATEWAY: apiUrl,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: logsUrl,
      AWS_ENDPOINT_URL_BATCH: logsUrl,
      AWS_ACCESS_KEY_ID: "AKIDSCARTEST",
      AWS_SECRET_ACCESS_KEY: "scar-test-secret",
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: join(work, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(work, "no-aws-creds"),
      ...env,
    },
  });

test("a sync run prints the runtime's output, its request id and the log tail Lambda returns", async () => {
  const r = await scar(["run", "-n", NAME]);
  assert.equal(r.code, 0, r.stderr);
  const id = /^Request Id: (\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, /^Log Group Name: \/aws\/lambda\/scar-say$/m);
  assert.match(r.stdout, /^said by scar-say: hola$/m);
  // the tail: Lambda's START ... REPORT lines of this very request, with the supervisor's own
  assert.match(r.stderr, new RegExp(`^START RequestId: ${id} Version: \\$LATEST$`, "m"));
  assert.match(r.stderr, / - supervisor - INFO - SUPERVISOR: Initializing AWS Lambda supervisor$/m);
  assert.match(
    r.stderr,
    new RegExp(`^REPORT RequestId: ${id}\\tDuration: [0-9.]+ ms\\t.*Memory Size: 256 MB`, "m"),
  );
  assert.doesNotMatch(r.stderr, /^error:/m);
});

test("-s sends the script in the payload; -o saves the decoded body, byte for byte; -j has LogResult", async () => {
  writeFileSync(join(work, "bytes.sh"), "printf '\\000\\001\\377binary\\n'\n");
  const r = await scar(["run", "-n", NAME, "-s", "bytes.sh", "-o", "out.bin"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Output saved in file 'out.bin'$/m);
  assert.deepEqual(readFileSync(join(work, "out.bin")), Buffer.from([0, 1, 255, ...Buffer.from("binary\n")]));
  const j = await scar(["run", "-n", NAME, "-j", "--", "sh", "-c", "echo args $0"]);
  assert.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout) as {
    LambdaOutput: { StatusCode: number; Payload: string; RequestId: string; LogResult: string };
  };
  assert.equal(doc.LambdaOutput.StatusCode, 200);
  assert.equal(doc.LambdaOutput.Payload, "args sh\n");
  assert.match(doc.LambdaOutput.LogResult, new RegExp(`^END RequestId: ${doc.LambdaOutput.RequestId}$`, "m"));
});

test("a failing script: exit 1, the runtime's error message and the tail, no stack", async () => {
  writeFileSync(join(work, "fail.sh"), 'echo "about to fail"\nexit 3\n');
  const r = await scar(["run", "-n", NAME, "-s", "fail.sh"]);
  assert.equal(r.code, 1, r.stdout);
  const id = /^Request Id: (\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  assert.match(r.stdout, /^User script exited with code 3!$/m);
  assert.match(r.stderr, /^about to fail$/m);
  assert.match(
    r.stderr,
    new RegExp(`^error: Error in function response: '${NAME}' failed \\(request ${id}\\)$`, "m"),
  );
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

test("throttled Invokes are sent again by the SDK; past the last attempt, one line and a hint", async () => {
  const THROTTLED = { status: 429, type: "TooManyRequestsException", message: "Rate exceeded" };
  lambda.fail("Invoke", 2, THROTTLED);
  const calls = lambda.calls.length;
  const r = await scar(["run", "-n", NAME]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^said by scar-say: hola$/m);
  assert.deepEqual(
    lambda.calls.slice(calls).filter((c) => c === "Invoke"),
    ["Invoke", "Invoke", "Invoke"],
  );
  lambda.fail("Invoke", 20, THROTTLED);
  const t = await scar(["run", "-n", NAME], { AWS_MAX_ATTEMPTS: "2" });
  lambda.clearFaults();
  assert.equal(t.code, 1);
  assert.equal(
    t.stderr,
    "error: invoking 'scar-say' failed: TooManyRequestsException: Rate exceeded\n" +
      "hint: AWS kept throttling the requests after every retry: wait a minute and run the same command again\n",
  );
});

test("update -n changes memory and Lambda variables; image flags and bad values are refused", async () => {
  const before = lambda.calls.length;
  const r = await scar(["update", "-n", NAME, "-m", "384", "--le", "MODE=fast"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Function '${NAME}' successfully updated.\n`);
  const fn = lambda.functions.get(NAME)!;
  assert.equal(fn.config.MemorySize, 384);
  const vars = (fn.config.Environment as { Variables: Record<string, string> }).Variables;
  assert.equal(vars.MODE, "fast");
  assert.ok(vars.FDL, "scar's variables kept");
  assert.deepEqual(lambda.calls.slice(before, before + 2), ["GetFunction", "UpdateFunctionConfiguration"]);
  assert.equal(lambda.calls.at(-1), "GetFunctionConfiguration", "waited until Lambda applied it");
  const img = await scar(["update", "-n", NAME, "-e", "A=b", "-s", "say.sh"]);
  assert.equal(img.code, 2);
  assert.match(
    img.stderr,
    /^error: on the aws target, 'scar update -n' changes .*; -s, -e change the function image$/m,
  );
  assert.match(img.stderr, /^hint: give the function definition: scar update -f FDL -n scar-say$/m);
  const big = await scar(["update", "-n", NAME, "-m", "20000"]);
  assert.equal(big.code, 1);
  assert.match(big.stderr, /^error: function 'scar-say': memory 20000 MB is out of Lambda's range$/m);
  assert.equal(lambda.functions.get(NAME)!.config.MemorySize, 384, "nothing changed");
});

test("invoke through the API's URL: GET, -db with -p and -o, and -a (API Gateway's 502 is success)", async () => {
  const g = await scar(["invoke", "-n", NAME]);
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stdout, /^Request Id: \S+\nLog Group Name: \/aws\/lambda\/scar-say\n/);
  assert.match(g.stdout, /^said by scar-say: hola$/m);
  assert.doesNotMatch(g.stdout, /^input:/m, "a GET has no body");
  writeFileSync(join(work, "words.txt"), "some words\n");
  const p = await scar(["invoke", "-n", NAME, "-db", "words.txt", "-p", '{"WHO": "world"}', "-o", "inv.out"]);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stdout, "Output saved in file 'inv.out'\n");
  assert.equal(
    readFileSync(join(work, "inv.out"), "utf8"),
    "said by scar-say: hola to world\ninput:\nsome words\n",
  );
  lastAsync = undefined;
  const a = await scar(["invoke", "-n", NAME, "-a"]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^Function 'scar-say' launched correctly$/m);
  const pending = lastAsync as Promise<InvokeAnswer> | undefined;
  assert.ok(pending, "API Gateway passed the request on as an Event");
  const done = await pending;
  assert.ok(done.logs.includes("said by scar-say: hola"), done.logs.join("\n"));
});

test("lambda-batch: a script out of time goes to AWS Batch; log -ri of the request and of its job", async () => {
  const r = await scar(["run", "-n", SLOW]);
  assert.equal(r.code, 0, r.stderr);
  const id = /^Request Id: (\S+)$/m.exec(r.stdout)?.[1];
  const job = new RegExp(
    `^Job delegated to batch\\.\\nCheck batch logs with:\\n  scar log -n ${SLOW} -ri (\\S+)$`,
    "m",
  ).exec(r.stdout)?.[1];
  assert.ok(id && job, r.stdout);
  assert.ok(batchJobs.has(job), "the job id is the one SubmitJob gave");
  assert.equal(batchJobs.get(job)!.jobQueue, SLOW);

  const lambdaPart = await scar(["log", "-n", SLOW, "-ri", id]);
  assert.equal(lambdaPart.code, 0, lambdaPart.stderr);
  const lines = lambdaPart.stdout.split("\n");
  assert.equal(lines[0], `START RequestId: ${id} Version: $LATEST`);
  assert.ok(lines.includes("slow work starts"), lambdaPart.stdout);
  // SCAR's notice on three lines, as in the response
  assert.ok(
    lambdaPart.stdout.includes(
      ` - supervisor - INFO - Job delegated to batch.\nCheck batch logs with:\n  scar log -n ${SLOW} -ri ${job}\n`,
    ),
    lambdaPart.stdout,
  );
  assert.match(lines.at(-2)!, new RegExp(`^REPORT RequestId: ${id}\\t`));

  const batchPart = await scar(["log", "-n", SLOW, "-ri", job]);
  assert.equal(batchPart.code, 0, batchPart.stderr);
  assert.match(
    batchPart.stdout,
    /^Batch job status: SUCCEEDED\nbatch job of queue scar-slow: \S*EVENT\S*\n$/,
  );
});
