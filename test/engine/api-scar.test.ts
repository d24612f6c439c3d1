/**
 * scar's additions to the engine API over a real engine and real HTTP: the `scar` object of service
 * JSON, per-function limits and retries, the jobs and dead-letter routes, log streams, the
 * API-Gateway-like /invoke endpoint, /metrics, and the lambda-batch delegation.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { jobsText } from "../../src/cli/commands/manage-run.js";
import { OscarTarget } from "../../src/targets/oscar.js";
import { OscarClient } from "../../src/targets/oscar-client.js";
import { type Json, useApiEngine, waitFor } from "./api-harness.js";

const IMAGE = "localhost/scar-test/busybox:api-scar";
const t = useApiEngine({
  prefix: "scar-api-scar-",
  image: IMAGE,
  engine: { backoff: { baseMs: 20, factor: 1, maxMs: 20 } },
});
const call = t.call;

async function json(method: string, path: string, body?: object): Promise<Json> {
  const r = await call(method, path, body === undefined ? {} : { body });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

function service(name: string, script: string, scar?: object, extra: object = {}): object {
  return { name, image: IMAGE, memory: "128Mi", script, ...extra, ...(scar ? { scar } : {}) };
}

async function deploy(name: string, script: string, scar?: object, extra: object = {}): Promise<void> {
  const r = await call("POST", "/system/services", { body: service(name, script, scar, extra) });
  assert.equal(r.status, 201, await r.text());
}

async function jobIn(id: string, statuses: string[]): Promise<Json> {
  return waitFor(`job ${id} to be ${statuses.join(" or ")}`, async () => {
    const j = await json("GET", `/system/jobs/${id}`);
    return statuses.includes(j.status) ? j : undefined;
  });
}

async function submit(name: string, body = "{}"): Promise<string> {
  const r = await call("POST", `/job/${name}`, { body });
  assert.equal(r.status, 201, await r.clone().text());
  return (await r.json()).jobID;
}

const STREAM = /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/;

test("the scar object is applied to the function and shown again: a round trip keeps everything", async () => {
  const scar = {
    provider: "aws",
    timeout: 30,
    timeout_threshold: 5,
    execution_mode: "lambda",
    run_script: "echo from the run script\n",
    c_args: ["-v", "x"],
    description: "a function with everything",
    api_gateway: "everything-api",
    asynchronous: true,
    log_retention_days: 7,
    concurrency: 3,
    retries: 4,
    seccomp: "unconfined",
    isolation: "invocation",
    ephemeral_storage: 1024,
  };
  await deploy("everything", "echo init\n", scar);
  const got = await json("GET", "/system/services/everything");
  // The scar object as sent, and the image's digest (read-only: sending it back changes nothing).
  const { image_digest: digest, ...own } = got.scar;
  assert.deepEqual(own, scar);
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  // The engine's additions are all under `scar`: OSCAR's fields are OSCAR's.
  assert.equal(got.provider, undefined);
  assert.equal(got.timeout, undefined);
  assert.equal(got.cpu, "0.07", "an aws function without cpu gets Lambda's share of its memory");
  const fn = t.engine.registry.get("everything")!;
  assert.equal(fn.spec.cpu, undefined, "no OSCAR default of 0.2 cores");
  assert.equal(fn.spec.cluster, undefined);
  assert.equal(fn.spec.run_script, join(t.engine.dataDir, "functions", "everything", "run_script.sh"));
  assert.ok(existsSync(fn.spec.run_script!), "the registry keeps the run script");
  assert.deepEqual(fn.spec.raw.scar, { concurrency: 3, retries: 4, log_retention_days: 7 });
  assert.deepEqual(
    [fn.spec.seccomp, fn.spec.isolation, fn.spec.ephemeral_storage],
    ["unconfined", "invocation", 1024],
  );

  // What GET answers can be sent back as it is.
  const put = await call("PUT", "/system/services", { body: got });
  assert.equal(put.status, 204, await put.text());
  const again = await json("GET", "/system/services/everything");
  assert.deepEqual(again, got);
  assert.equal(t.engine.registry.get("everything")!.spec.cpu, undefined, "still no CPU limit");

  // lambda-batch without batch limits gets SCAR's defaults; an OSCAR service keeps OSCAR's cpu.
  await deploy("oscar-style", "true\n", { execution_mode: "lambda-batch", timeout: 60 }, { cpu: "0.5" });
  const o = await json("GET", "/system/services/oscar-style");
  assert.equal(o.cpu, "0.5");
  assert.deepEqual(o.scar.batch, { vcpus: 1, memory: 1024, enable_gpu: false });
  assert.equal(o.scar.provider, "oscar");
  assert.equal(o.cluster_id, "local");
});

test("a bad scar value is a 400 naming the field; nothing is deployed and no scratch file is left", async () => {
  const cases: [object, string, RegExp][] = [
    [{ retries: 11 }, "scar.retries", /10/],
    [{ timeout: "soon" }, "scar.timeout", /number/],
    [{ concurrency: 0 }, "scar.concurrency", /1/],
    [{ seccomp: "off" }, "scar.seccomp", /default|unconfined/],
    [{ isolation: "container" }, "scar.isolation", /environment|invocation/],
    [{ ephemeral_storage: 0.5 }, "scar.ephemeral_storage", /int/i],
    [{ provider: "gcp" }, "scar.provider", /aws|oscar/],
    [{ batch: { vcpus: 1.5 } }, "scar.batch.vcpus", /int/i],
    [{ timeout: 2, timeout_threshold: 2 }, "scar.timeout_threshold", /smaller than timeout/],
    [{ concurency: 2 }, "scar", /concurency/],
  ];
  for (const [scar, path, message] of cases) {
    const r = await call("POST", "/system/services", { body: service("bad-scar", "true\n", scar) });
    assert.equal(r.status, 400, JSON.stringify(scar));
    const e = await r.json();
    assert.equal(e.details[0].path, path, JSON.stringify(e));
    assert.match(e.error, /^invalid service: scar/);
    assert.match(JSON.stringify(e.details), message);
  }
  const notObject = await call("POST", "/system/services", {
    body: service("bad-scar", "true\n", [1] as never),
  });
  assert.equal(notObject.status, 400);
  assert.equal((await call("GET", "/system/services/bad-scar")).status, 404);
  assert.deepEqual(readdirSync(join(t.engine.dataDir, "work", "api")), []);
});

test("per-function concurrency: never more jobs of the function at once than its limit", async () => {
  await deploy("one-at-a-time", "sleep 0.4\n", { concurrency: 1 });
  await deploy("unlimited", "sleep 0.4\n");
  const overlaps = async (ids: string[]) => {
    const jobs = await Promise.all(ids.map((id) => jobIn(id, ["succeeded"])));
    const spans = jobs.map((j) => [j.startedAt as number, j.stages.done as number] as const);
    let most = 0;
    for (const [s] of spans) most = Math.max(most, spans.filter(([a, b]) => a <= s && s < b).length);
    return most;
  };
  const free = await Promise.all([1, 2].map(() => submit("unlimited")));
  assert.equal(await overlaps(free), 2, "without a limit both run at once (the engine allows 2)");
  const limited = await Promise.all([1, 2, 3, 4].map(() => submit("one-at-a-time")));
  assert.equal(await overlaps(limited), 1, "the limit of 1 is kept");
});

let deadId = "";
test("retries: the function's count is used, then the job is a dead letter", async () => {
  await deploy("fails-twice", "echo failing; exit 3\n", { retries: 2 });
  await deploy("fails-once", "exit 3\n", { retries: 0 });
  deadId = await submit("fails-twice");
  const once = await submit("fails-once");
  const dead = await jobIn(deadId, ["dead"]);
  assert.equal(dead.attemptCount, 3, "1 attempt + 2 retries");
  assert.equal(dead.attempts.length, 3);
  assert.deepEqual(
    dead.attempts.map((a: Json) => [a.n, a.cycle, a.status, a.reason, a.exitCode]),
    [
      [1, 1, "failed", "script-error", 3],
      [2, 1, "failed", "script-error", 3],
      [3, 1, "failed", "script-error", 3],
    ],
  );
  const d1 = await jobIn(once, ["dead"]);
  assert.equal(d1.attemptCount, 1, "retries: 0 dead-letters at once");
});

test("jobs: list with filters and pages, counts, one job with its log names and its log", async () => {
  const all = await json("GET", "/system/jobs?limit=1000");
  assert.equal(all.jobs.length, 8);
  assert.ok(new Set(all.jobs.map((j: Json) => j.function)).size >= 3, "every function's jobs");
  const dead = await json("GET", "/system/jobs?service=fails-twice&status=dead");
  assert.deepEqual(
    dead.jobs.map((j: Json) => j.id),
    [deadId],
  );
  const j = dead.jobs[0];
  assert.equal(j.logGroup, "/aws/lambda/fails-twice");
  assert.match(j.logStream, STREAM);
  assert.ok(j.logStream.startsWith(new Date(j.stages.queued).toISOString().slice(0, 10).replace(/-/g, "/")));
  assert.ok(j.logStream.endsWith(deadId.replace(/-/g, "")));
  assert.equal(j.attempts.length, 3, "the list has the same records as /system/jobs/<id>");
  assert.deepEqual(j.children, []);
  assert.deepEqual(await json("GET", `/system/jobs/${deadId}`), j);

  const p1 = await json("GET", "/system/jobs?service=one-at-a-time&limit=3");
  assert.equal(p1.jobs.length, 3);
  const p2 = await json("GET", `/system/jobs?service=one-at-a-time&limit=3&page=${p1.next_page}`);
  assert.equal(p2.jobs.length, 1);
  assert.equal(p2.next_page, undefined);
  const statuses = await json("GET", "/system/jobs?status=succeeded,dead&limit=1000");
  assert.ok(statuses.jobs.every((x: Json) => x.status === "succeeded" || x.status === "dead"));

  for (const bad of ["status=done", "limit=0", "limit=lots", "page=x"]) {
    const r = await call("GET", `/system/jobs?${bad}`);
    assert.equal(r.status, 400, bad);
    assert.ok((await r.json()).error, bad);
  }
  assert.equal((await call("GET", "/system/jobs", { auth: null })).status, 401);

  const counts = await json("GET", "/system/jobs/counts?service=fails-twice");
  // (its last attempt reused the warm environment the first one started: a failed script leaves it usable)
  assert.deepEqual(counts, {
    "fails-twice": { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 1, starts: { cold: 0, warm: 1 } },
  });
  const everyCount = await json("GET", "/system/jobs/counts");
  assert.equal(everyCount["one-at-a-time"].succeeded, 4);
  assert.deepEqual(everyCount.everything, { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0 });

  const log = await call("GET", `/system/jobs/${deadId}/log`);
  assert.equal(log.status, 200);
  assert.match(log.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await log.text();
  assert.match(text, new RegExp(`^START RequestId: ${deadId} Version: \\$LATEST$`, "m"));
  assert.match(text, /^failing$/m);
  assert.match(text, new RegExp(`^REPORT RequestId: ${deadId}\\tDuration: .*\\tMemory Size: 128 MB`, "m"));
  assert.equal(text, await (await call("GET", `/system/logs/fails-twice/${deadId}`)).text());
  assert.equal((await call("GET", "/system/jobs/nope")).status, 404);
  assert.equal((await call("GET", "/system/jobs/nope/log")).status, 404);
});

test("retry: a dead job is redriven, a failed one runs again as a new job, others get 409", async () => {
  const r = await call("POST", `/system/jobs/${deadId}/retry`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { jobID: deadId, redriven: true });
  const again = await waitFor("the redriven job to die again", async () => {
    const j = await json("GET", `/system/jobs/${deadId}`);
    return j.status === "dead" && j.cycle === 2 ? j : undefined;
  });
  assert.equal(again.attemptCount, 6, "a redrive starts a new cycle with all its retries");

  // A sync invocation's failure is final (failed, not dead): retrying makes a new async job.
  const run = await call("POST", "/run/fails-once", { body: "payload" });
  const failedId = run.headers.get("x-scar-request-id")!;
  assert.equal((await json("GET", `/system/jobs/${failedId}`)).status, "failed");
  const retry = await call("POST", `/system/jobs/${failedId}/retry`);
  assert.equal(retry.status, 201);
  const { jobID, redriven } = await retry.json();
  assert.equal(redriven, false);
  assert.notEqual(jobID, failedId);
  const rerun = await jobIn(jobID, ["dead"]);
  assert.equal(rerun.invocation, "async");
  assert.deepEqual(rerun.trigger, { type: "http", path: "/run/fails-once", retry_of: failedId });

  const ok = (await json("GET", "/system/jobs?service=one-at-a-time&limit=1")).jobs[0].id;
  const conflict = await call("POST", `/system/jobs/${ok}/retry`);
  assert.equal(conflict.status, 409);
  assert.match((await conflict.json()).error, /succeeded: only a failed or dead job can be retried/);
  assert.equal((await call("POST", "/system/jobs/nope/retry")).status, 404);
});

test("dead letters: listed per function, redriven by function or by ids", async () => {
  const list = await json("GET", "/system/dead-letters?service=fails-once");
  assert.equal(list.jobs.length, 2);
  assert.ok(list.jobs.every((j: Json) => j.status === "dead" && j.function === "fails-once"));
  const every = await json("GET", "/system/dead-letters");
  assert.ok(every.jobs.some((j: Json) => j.function === "fails-twice"));

  const byFn = await json("POST", "/system/dead-letters/redrive?service=fails-once");
  assert.deepEqual(byFn, { redriven: 2 });
  await waitFor("the redriven jobs to die again", async () => {
    const l = await json("GET", "/system/dead-letters?service=fails-once");
    return l.jobs.length === 2 ? l : undefined;
  });
  const ids = [list.jobs[0].id, "not-a-job"];
  const byIds = await json("POST", "/system/dead-letters/redrive", { ids });
  assert.deepEqual(byIds, { redriven: 1, skipped: ["not-a-job"] });

  const neither = await call("POST", "/system/dead-letters/redrive");
  assert.equal(neither.status, 400);
  assert.match((await neither.json()).error, /service=<function>/);
  const badBody = await call("POST", "/system/dead-letters/redrive", { body: { ids: "x" } });
  assert.equal(badBody.status, 400);
  const notJson = await call("POST", "/system/dead-letters/redrive", { body: "{" });
  assert.equal(notJson.status, 400);
});

test("POST /run names the job's log group and stream", async () => {
  await deploy("hello", 'echo "hello $AWS_LAMBDA_FUNCTION_NAME"\n');
  const r = await call("POST", "/run/hello", { body: "" });
  assert.equal(r.status, 200);
  assert.equal(Buffer.from(await r.text(), "base64").toString(), "hello hello\n");
  assert.equal(r.headers.get("x-scar-log-group"), "/aws/lambda/hello");
  const stream = r.headers.get("x-scar-log-stream") ?? "";
  assert.match(stream, STREAM);
  const id = r.headers.get("x-scar-request-id")!;
  assert.equal((await json("GET", `/system/jobs/${id}`)).logStream, stream);
});

test("/invoke: SCAR's HTTP endpoint, sync and async, query parameters and a base64 file", async () => {
  await deploy(
    "endpoint",
    'echo "x=$CONT_VAR_x y=$CONT_VAR_y"\ncp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"\n',
    { api_gateway: "endpoint-api" },
    { output: [{ storage_provider: "minio.default", path: "endpoint/out" }] },
  );
  const file = Buffer.from([0xff, 0x00, 0xd8, 0x41, 0x0a, 0x80, 0xfe]);
  const r = await call("POST", "/invoke/endpoint?x=1&x=2&y=a%20b", {
    auth: null,
    body: file.toString("base64"),
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(Buffer.from(await r.text(), "base64").toString(), "x=2 y=a b\n");
  const id = r.headers.get("amz-lambda-request-id")!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(r.headers.get("amz-log-group-name"), "/aws/lambda/endpoint");
  assert.match(r.headers.get("amz-log-stream-name") ?? "", STREAM);
  const job = await json("GET", `/system/jobs/${id}`);
  assert.deepEqual(job.outputKeys, ["endpoint/out/copy.bin"]);
  const obj = t.engine.store.backend.head("endpoint", "out/copy.bin");
  assert.deepEqual(
    readFileSync(t.engine.store.backend.abs(obj.path)),
    file,
    "the base64 body is decoded into the input file",
  );

  const a = await call("PUT", "/invoke/endpoint?x=async", {
    auth: null,
    body: JSON.stringify({ hello: "json" }),
    headers: { "X-Amz-Invocation-Type": "Event", "content-type": "application/json" },
  });
  assert.equal(a.status, 202);
  const { jobID } = await a.json();
  assert.equal(a.headers.get("amz-lambda-request-id"), jobID);
  const done = await jobIn(jobID, ["succeeded"]);
  const log = await (await call("GET", `/system/jobs/${done.id}/log`)).text();
  assert.match(log, /^x=async y=$/m);
  assert.deepEqual(done.trigger, { type: "http", path: "/invoke/endpoint", method: "PUT" });

  const get = await call("GET", "/invoke/endpoint", { auth: null });
  assert.equal(get.status, 200);
  assert.equal(Buffer.from(await get.text(), "base64").toString(), "x= y=\n");

  const none = await call("POST", "/invoke/hello", { auth: null, body: "x" });
  assert.equal(none.status, 404);
  assert.match((await none.json()).error, /no HTTP endpoint .\/invoke\/hello.: a function gets one/);
  assert.equal((await call("GET", "/invoke/missing", { auth: null })).status, 404);
  assert.equal((await call("GET", "/invoke/%E0%A4%A", { auth: null })).status, 400);
});

test("jobs in warm environments: /system/jobs, the log's REPORT and /metrics say cold or warm", async () => {
  // one environment at a time, jobs one after the other: a cold start, then two warm ones
  await deploy("warm-record", "echo hi\n", { concurrency: 1 });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    ids.push(await submit("warm-record"));
    await jobIn(ids[i]!, ["succeeded"]);
  }
  const cold = await json("GET", `/system/jobs/${ids[0]}`);
  assert.equal(cold.environment.start, "cold");
  assert.ok(cold.environment.startMs > 0, "the environment's start is timed");
  const warm = await json("GET", `/system/jobs/${ids[2]}`);
  assert.deepEqual(warm.environment, { id: cold.environment.id, start: "warm", startMs: 0 });
  const listed = await json("GET", "/system/jobs?service=warm-record");
  assert.deepEqual(
    listed.jobs.map((j: Json) => j.environment?.start),
    ["warm", "warm", "cold"],
  );
  const log = await call("GET", `/system/jobs/${ids[0]}/log`);
  assert.match(await log.text(), /^REPORT RequestId: .*\tInit Duration: \d+\.\d\d ms$/m);
  const warmLog = await call("GET", `/system/jobs/${ids[1]}/log`);
  assert.doesNotMatch(await warmLog.text(), /Init Duration/);
  const metrics = await (await call("GET", "/metrics")).text();
  assert.match(metrics, /^# TYPE scar_job_starts_total gauge$/m);
  assert.match(metrics, /^scar_job_starts_total\{function="warm-record",start="cold"\} 1$/m);
  assert.match(metrics, /^scar_job_starts_total\{function="warm-record",start="warm"\} 2$/m);
  assert.match(metrics, /^scar_job_starts_total\{function="everything",start="cold"\} 0$/m);
  assert.deepEqual(await json("GET", "/system/jobs/counts?service=warm-record"), {
    "warm-record": { queued: 0, running: 0, succeeded: 3, failed: 0, dead: 0, starts: { cold: 1, warm: 2 } },
  });
  assert.equal((await json("GET", "/system/jobs/counts")).everything.starts, undefined, "none: no starts");
  // What `scar ls` on the local target gets from it: the starts apart from the jobs by status.
  const admin = t.engine.credentials.admin;
  const target = new OscarTarget(
    "local",
    new OscarClient({ url: t.api.url, user: admin.user, password: admin.password }),
    "the test's engine",
  );
  try {
    const info = await target.get("warm-record");
    assert.deepEqual(info?.jobs, { queued: 0, running: 0, succeeded: 3, failed: 0, dead: 0 });
    assert.deepEqual(info?.starts, { cold: 1, warm: 2 });
    assert.equal(jobsText(info!), "3 ok; starts: 1 cold, 2 warm");
    assert.equal((await target.list()).find((f) => f.name === "everything")?.starts, undefined);
  } finally {
    await target.close();
  }
});

test("GET /metrics: Prometheus text for the admin", async () => {
  assert.equal((await call("GET", "/metrics", { auth: null })).status, 401);
  const r = await call("GET", "/metrics");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await r.text();
  assert.match(text, /^# TYPE scar_jobs_total gauge$/m);
  assert.match(text, /^scar_jobs_total\{function="one-at-a-time",status="succeeded"\} 4$/m);
  assert.match(text, /^scar_jobs_total\{function="everything",status="queued"\} 0$/m);
  assert.match(text, /^scar_jobs_running \d+$/m);
  assert.match(text, /^scar_jobs_queued \d+$/m);
  assert.match(text, new RegExp(`^scar_functions_deployed ${t.engine.functions().length}$`, "m"));
  // Any positive run time: the jobs sleep 0.4 s, but a loaded machine may take over a second.
  assert.match(text, /^scar_job_duration_seconds\{function="one-at-a-time",quantile="0.5"\} \d+(\.\d+)?$/m);
  assert.match(text, /^scar_job_duration_seconds_count\{function="one-at-a-time"\} 4$/m);
  assert.match(text, /^scar_store_objects_total \d+$/m);
  // its 4 jobs, one at a time: one warm environment, started once and reused 3 times
  assert.match(text, /^# TYPE scar_warm_environments gauge$/m);
  assert.match(text, /^scar_warm_environments\{function="one-at-a-time",state="idle"\} 1$/m);
  assert.match(text, /^scar_warm_environments\{function="one-at-a-time",state="busy"\} 0$/m);
  assert.match(text, /^# TYPE scar_environment_starts_total counter$/m);
  assert.match(text, /^scar_environment_starts_total\{function="one-at-a-time"\} 1$/m);
  assert.match(text, /^scar_environment_reuses_total\{function="one-at-a-time"\} 3$/m);
  // Every sample line is `name{labels} value`.
  for (const line of text.trim().split("\n"))
    assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+|\w+(\{[^}]*\})? NaN)$/, line);
});

test("lambda-batch: a job that times out is delegated to a batch job, which finishes it", async () => {
  await deploy(
    "slow",
    'sleep 3\necho finished > "$TMP_OUTPUT_DIR/result.txt"\necho slow done\n',
    { execution_mode: "lambda-batch", timeout: 2, timeout_threshold: 1 },
    { output: [{ storage_provider: "minio.default", path: "slow/out" }] },
  );
  const id = await submit("slow");
  const parent = await jobIn(id, ["failed", "dead"]);
  assert.equal(parent.status, "failed", "a delegated job is not retried");
  assert.equal(parent.reason, "timeout");
  assert.ok(parent.delegatedTo);
  assert.equal(parent.children.length, 1);
  assert.equal(parent.children[0].id, parent.delegatedTo);
  const child = await jobIn(parent.delegatedTo, ["succeeded", "failed", "dead"]);
  assert.equal(child.status, "succeeded", JSON.stringify(child));
  assert.equal(child.queue, "batch");
  assert.equal(child.parentId, id);
  assert.deepEqual(child.outputKeys, ["slow/out/result.txt"]);
  const log = await (await call("GET", `/system/jobs/${id}/log`)).text();
  assert.match(log, /supervisor - WARNING - Container execution timed out/);
  assert.match(log, /supervisor - INFO - Job delegated to batch\.$/m);
  assert.match(log, new RegExp(`^  scar log -n slow -ri ${child.id}$`, "m"));
  assert.match(log, /\tStatus: timeout$/m);
  const childLog = await (await call("GET", `/system/jobs/${child.id}/log`)).text();
  assert.match(childLog, /^slow done$/m);
  assert.match(childLog, /Executing the function without a time limit/);
});
