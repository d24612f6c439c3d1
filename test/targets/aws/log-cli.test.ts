/**
 * `scar log --target aws` (the real binary, the real SDK clients): CloudWatch Logs and AWS Batch at
 * their SDK endpoints (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, AWS_ENDPOINT_URL_BATCH) answered by a small
 * server holding log events and jobs, Lambda by LambdaHttp. `-ri` of a lambda-batch request and of
 * the Batch job it was delegated to (SCAR's "Batch job status" and the job's stream of
 * /aws/batch/job), and `--follow`, which prints what arrives later (also events CloudWatch takes in
 * late, with a time at or before the last shown), once, until Ctrl-C.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { bin, runScar } from "../../cli/harness.js";
import { LambdaHttp } from "./lambda-http.js";

const work = mkdtempSync(join(tmpdir(), "scar-aws-log-"));
const cfgDir = join(work, "cfg");
const NAME = "scar-batchy";
const GROUP = `/aws/lambda/${NAME}`;
const JOB = "3b9a7f1c-0d2e-4c55-9a11-aa00bb11cc22";
let lambda: LambdaHttp;
let server: Server;
let url: string;

interface Event {
  group: string;
  stream: string;
  timestamp: number;
  message: string;
}
const events: Event[] = [];
const jobs = new Map<string, Record<string, unknown>>();
let filterCalls = 0;
/** FilterLogEvents calls without a nextToken: one a poll of `--follow`. */
let firstPages = 0;

/** FilterLogEvents (awsJson1.1, X-Amz-Target Logs_20140328.*) and Batch's DescribeJobs (restJson1). */
async function startLogsAndBatch(): Promise<void> {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    const send = (status: number, doc: unknown, type = "application/x-amz-json-1.1") => {
      res.writeHead(status, { "Content-Type": type, "x-amzn-RequestId": "req" });
      res.end(JSON.stringify(doc));
    };
    if (req.headers["x-amz-target"] === "Logs_20140328.FilterLogEvents") {
      filterCalls++;
      if (!body.nextToken) firstPages++;
      const group = String(body.logGroupName);
      if (!events.some((e) => e.group === group))
        return send(400, {
          __type: "ResourceNotFoundException",
          message: "The specified log group does not exist.",
        });
      const streams = body.logStreamNames as string[] | undefined;
      const start = body.startTime as number | undefined;
      const all = events.filter(
        (e) =>
          e.group === group &&
          (!streams || streams.includes(e.stream)) &&
          (start === undefined || e.timestamp >= start),
      );
      // three events a page, as CloudWatch pages its answers
      const from = body.nextToken ? Number(body.nextToken) : 0;
      return send(200, {
        events: all.slice(from, from + 3).map((e) => ({
          logStreamName: e.stream,
          timestamp: e.timestamp,
          ingestionTime: e.timestamp,
          message: e.message,
          eventId: String(events.indexOf(e)),
        })),
        ...(from + 3 < all.length ? { nextToken: String(from + 3) } : {}),
      });
    }
    if (req.method === "POST" && req.url === "/v1/describejobs") {
      const found = ((body.jobs as string[]) ?? []).map((id) => jobs.get(id)).filter(Boolean);
      return send(200, { jobs: found }, "application/json");
    }
    send(400, { __type: "UnknownOperationException", message: `${req.method} ${req.url}` });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const lambdaLines = (id: string, stream: string, t: number, middle: string[]) =>
  [
    `START RequestId: ${id} Version: $LATEST`,
    ...middle,
    `END RequestId: ${id}`,
    `REPORT RequestId: ${id}\tDuration: 1.00 ms`,
  ].map((message, i) => ({ group: GROUP, stream, timestamp: t + i, message: `${message}\n` }));

before(async () => {
  lambda = await LambdaHttp.start("eu-west-1");
  lambda.add({
    FunctionName: NAME,
    Role: "arn:aws:iam::123456789012:role/scar-lambda",
    Code: { ImageUri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/scar-batchy:latest" },
    Environment: { Variables: { FDL: Buffer.from('{"execution_mode":"lambda-batch"}').toString("base64") } },
    Tags: { createdby: "scar" },
  });
  await startLogsAndBatch();
  events.push(
    ...lambdaLines("r-1", "2026/12/04/[$LATEST]aaa", 1000, ["quick work done"]),
    // the request that ran out of time and went to AWS Batch (SCAR's message)
    ...lambdaLines("r-2", "2026/12/04/[$LATEST]aaa", 2000, [
      "Job delegated to batch.",
      `Check batch logs with:\n  scar log -n ${NAME} -ri ${JOB}`,
    ]),
    {
      group: "/aws/batch/job",
      stream: `${NAME}/default/0f0f`,
      timestamp: 3000,
      message: "batch: converting big.mov\n",
    },
    { group: "/aws/batch/job", stream: `${NAME}/default/0f0f`, timestamp: 3001, message: "batch: done\n" },
    { group: "/aws/batch/job", stream: "someone-else/default/1e1e", timestamp: 3002, message: "not ours\n" },
  );
  jobs.set(JOB, {
    jobId: JOB,
    jobName: `${NAME}-r-2`,
    jobQueue: NAME,
    jobDefinition: NAME,
    status: "SUCCEEDED",
    createdAt: 2500,
    startedAt: 2600,
    container: { logStreamName: `${NAME}/default/0f0f` },
  });
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({
      scar: { config_version: "2.0.0", target: "aws" },
      local: { data_dir: join(work, "engine") },
      aws: { lambda: { region: "eu-west-1" } },
    }),
  );
});

after(async () => {
  await lambda?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(work, { recursive: true, force: true });
});

const env = () => ({
  AWS_ENDPOINT_URL_LAMBDA: lambda.url,
  AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: url,
  AWS_ENDPOINT_URL_BATCH: url,
  AWS_ACCESS_KEY_ID: "AKIDSCARTEST",
  AWS_SECRET_ACCESS_KEY: "scar-test-secret",
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_CONFIG_FILE: join(work, "no-aws-config"),
  AWS_SHARED_CREDENTIALS_FILE: join(work, "no-aws-creds"),
});
const scar = (args: string[]) => runScar(args, { cfgDir, cwd: work, env: env() });

test("log: every page of the group; -ri of a request, and of the Batch job it was delegated to", async () => {
  const all = await scar(["log", "-n", NAME]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout.split("\n").filter((l) => l.startsWith("START")).length, 2);
  assert.match(all.stdout, /^quick work done$/m);

  const r2 = await scar(["log", "-n", NAME, "-ri", "r-2"]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(
    r2.stdout,
    `START RequestId: r-2 Version: $LATEST\nJob delegated to batch.\nCheck batch logs with:\n  scar log -n ${NAME} -ri ${JOB}\nEND RequestId: r-2\nREPORT RequestId: r-2\tDuration: 1.00 ms\n`,
  );

  const job = await scar(["log", "-n", NAME, "-ri", JOB]);
  assert.equal(job.code, 0, job.stderr);
  assert.equal(job.stdout, "Batch job status: SUCCEEDED\nbatch: converting big.mov\nbatch: done\n");

  // a job still running: its status, no log yet
  jobs.get(JOB)!.status = "RUNNING";
  const running = await scar(["log", "-n", NAME, "-ri", JOB]);
  jobs.get(JOB)!.status = "SUCCEEDED";
  assert.equal(running.stdout, "Batch job status: RUNNING\n");
});

test("log --follow prints what arrives later, once, until Ctrl-C", { timeout: 90_000 }, async () => {
  const f = follow(["log", "-n", NAME, "--follow"]);
  const { child, exited, until } = f;
  try {
    await until(
      "the log so far",
      () => /following the logs/.test(f.err) && /REPORT RequestId: r-2/.test(f.out),
    );
    const polls = filterCalls;
    // CloudWatch takes events in late: one of the same millisecond as the last shown, one older
    events.push(
      {
        group: GROUP,
        stream: "2026/12/04/[$LATEST]ccc",
        timestamp: 2003,
        message: "same millisecond, later\n",
      },
      { group: GROUP, stream: "2026/12/04/[$LATEST]ddd", timestamp: 1500, message: "older, ingested late\n" },
      ...lambdaLines("r-3", "2026/12/04/[$LATEST]bbb", 5000, ["a later request"]),
    );
    await until(
      "the later events",
      () =>
        /REPORT RequestId: r-3/.test(f.out) && /same millisecond/.test(f.out) && /ingested late/.test(f.out),
    );
    // one more round after it: nothing printed twice
    await until("another poll", () => filterCalls > polls + 1);
    child.kill("SIGINT");
    assert.equal(await exited, 0, f.err);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  for (const line of [
    "a later request",
    "same millisecond, later",
    "older, ingested late",
    "quick work done",
  ])
    assert.equal(f.out.split("\n").filter((l) => l === line).length, 1, line);
  assert.equal(f.out.split("\n").filter((l) => l.startsWith("START RequestId: r-1")).length, 1);
  assert.doesNotMatch(f.err, /^error:/m);
});

test("log --follow -ri finds a request whose lines come in two polls", { timeout: 90_000 }, async () => {
  const [start, work1, ...rest] = lambdaLines("r-5", "2026/12/04/[$LATEST]eee", 7000, [
    "r-5 at work",
    "r-5 done",
  ]);
  events.push(start!, work1!);
  const f = follow(["log", "-n", NAME, "--follow", "-ri", "r-5"]);
  const { child, exited, until } = f;
  try {
    await until(
      "the request's first lines",
      () => /following the logs/.test(f.err) && /r-5 at work/.test(f.out),
    );
    events.push(...rest);
    const polls = firstPages;
    // two whole polls after the rest arrived
    await until("two more polls", () => firstPages > polls + 2);
    child.kill("SIGINT");
    assert.equal(await exited, 0, f.err);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  assert.equal(
    f.out,
    "START RequestId: r-5 Version: $LATEST\nr-5 at work\nr-5 done\nEND RequestId: r-5\nREPORT RequestId: r-5\tDuration: 1.00 ms\n",
  );
});

/** `scar <args>` in the background, its output gathered, and a wait for what it prints. */
function follow(args: string[]) {
  const child = spawn(bin, args, {
    cwd: work,
    env: { ...process.env, SCAR_CONFIG_FOLDER: cfgDir, ...env() },
  });
  const f = {
    child,
    out: "",
    err: "",
    exited: new Promise<number | null>((r) => child.on("close", (code) => r(code))),
    async until(what: string, ok: () => boolean) {
      while (!ok()) {
        if (child.exitCode !== null) assert.fail(`scar exited while waiting for ${what}: ${f.err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  child.stdout.on("data", (d: Buffer) => {
    f.out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    f.err += d.toString();
  });
  return f;
}
