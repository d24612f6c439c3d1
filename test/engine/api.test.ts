/** The OSCAR-compatible HTTP API over a real engine, spoken to with plain HTTP as oscar-cli would. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { useApiEngine } from "./api-harness.js";

const IMAGE = "localhost/scar-test/busybox:api";
const t = useApiEngine({
  prefix: "scar-api-",
  image: IMAGE,
  api: { limits: { maxBodyBytes: 1024 * 1024, maxResponseBytes: 1024 * 1024 } },
});
const call = t.call;

const service = {
  name: "greyify",
  image: IMAGE,
  memory: "128Mi",
  cpu: "0.5",
  script: 'echo "got $(cat "$INPUT_FILE_PATH")"\necho "param=$CONT_VAR_x"\n',
  environment: { variables: { MODE: "test" } },
  input: [{ storage_provider: "minio.default", path: "grey/in" }],
  output: [{ storage_provider: "minio.default", path: "grey/out" }],
};

test("health answers Ok without auth; /system needs the admin", async () => {
  const h = await call("GET", "/health", { auth: null });
  assert.equal(h.status, 200);
  assert.equal(await h.text(), "Ok");
  const r = await call("GET", "/system/services", { auth: null });
  assert.equal(r.status, 401);
  assert.match((await r.json()).error, /authentication required/);
  const bad = await call("GET", "/system/services", {
    auth: `Basic ${Buffer.from("scar:wrong").toString("base64")}`,
  });
  assert.equal(bad.status, 401);
  const info = await call("GET", "/system/info");
  assert.equal((await info.json()).serverless_backend.name, "scar-local");
});

test("create, read and list a service in OSCAR's JSON", async () => {
  const c = await call("POST", "/system/services", { body: service });
  assert.equal(c.status, 201, await c.text());
  const again = await call("POST", "/system/services", { body: service });
  assert.equal(again.status, 409);
  const r = await call("GET", "/system/services/greyify");
  assert.equal(r.status, 200);
  const s = await r.json();
  assert.equal(s.name, "greyify");
  assert.equal(s.memory, "128Mi");
  assert.equal(s.cpu, "0.5");
  assert.equal(s.script, service.script);
  assert.deepEqual(s.environment, { variables: { MODE: "test" }, secrets: {} });
  assert.deepEqual(s.input, [{ storage_provider: "minio.default", path: "grey/in" }]);
  assert.match(s.token, /^[0-9a-f]{64}$/);
  const list = await (await call("GET", "/system/services")).json();
  assert.deepEqual(
    list.map((x: { name: string }) => x.name),
    ["greyify"],
  );
});

test("an invalid definition is a 400 naming the problem; a bad body too", async () => {
  const r = await call("POST", "/system/services", { body: { ...service, name: "Bad_Name" } });
  assert.equal(r.status, 400);
  const e = await r.json();
  assert.match(e.error, /not a valid service name/);
  assert.equal(e.details[0].path, "functions.oscar[0].local.name");
  // An aws function (scar.provider) is a Lambda function: Lambda's name rule, capitals and '_' too.
  const lambda = await call("POST", "/system/services", {
    body: { ...service, name: "Lambda_Name", input: [], output: [], scar: { provider: "aws" } },
  });
  assert.equal(lambda.status, 201, await lambda.text());
  assert.equal((await call("DELETE", "/system/services/Lambda_Name")).status, 204);
  const j = await call("POST", "/system/services", { body: "{not json" });
  assert.equal(j.status, 400);
  assert.match((await j.json()).error, /not valid JSON/);
});

test("POST /run: the body (base64, as oscar-cli sends files) is the input; the answer is base64 output", async () => {
  const token = (await (await call("GET", "/system/services/greyify")).json()).token;
  const r = await call("POST", "/run/greyify?x=1", {
    body: Buffer.from("a file").toString("base64"),
    auth: `Bearer ${token}`,
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("x-scar-request-id") ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(r.headers.get("x-scar-output"), "logs");
  assert.equal(Buffer.from(await r.text(), "base64").toString(), "got a file\nparam=\n");
  const noAuth = await call("POST", "/run/greyify", { body: "x", auth: null });
  assert.equal(noAuth.status, 401);
  const wrong = await call("POST", "/run/greyify", { body: "x", auth: "Bearer nope" });
  assert.equal(wrong.status, 401);
  const missing = await call("POST", "/run/nothere", { body: "x" });
  assert.equal(missing.status, 404);
  // A caller may name the job (scar run does, to name it on Ctrl-C): a UUID not taken yet.
  const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const named = await call("POST", "/run/greyify", {
    body: "x",
    auth: `Bearer ${token}`,
    headers: { "x-scar-request-id": id },
  });
  assert.equal(named.status, 200);
  assert.equal(named.headers.get("x-scar-request-id"), id);
  const taken = await call("POST", "/run/greyify", { body: "x", headers: { "x-scar-request-id": id } });
  assert.equal(taken.status, 409);
  const bad = await call("POST", "/run/greyify", { body: "x", headers: { "x-scar-request-id": "../x" } });
  assert.equal(bad.status, 400);
});

// The first 4 bytes of the input choose what the script leaves in its output folder; the rest is data.
const filesService = {
  name: "outfiles",
  image: IMAGE,
  script: `mode=$(head -c 4 "$INPUT_FILE_PATH")
out="$TMP_OUTPUT_DIR"
case "$mode" in
  one:) tail -c +5 "$INPUT_FILE_PATH" > "$out/result.bin" ;;
  zip:) mkdir -p "$out/a/b" "$out/c"
        printf 'top file' > "$out/top.txt"
        tail -c +5 "$INPUT_FILE_PATH" > "$out/a/b/deep.bin"
        printf '' > "$out/c/empty" ;;
  big:) dd if=/dev/urandom of="$out/big.bin" bs=1024 count=1100 2>/dev/null ;;
  fail) echo partial > "$out/partial.txt"; echo "failing"; exit 3 ;;
esac
echo "mode $mode done"
`,
  output: [{ storage_provider: "minio.default", path: "files/out" }],
};

async function runFiles(mode: string, data: Buffer = Buffer.alloc(0), headers: Record<string, string> = {}) {
  const token = (await (await call("GET", "/system/services/outfiles")).json()).token;
  return fetch(`${t.api.url}/run/outfiles`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...headers },
    body: Buffer.concat([Buffer.from(mode), data]).toString("base64"),
  });
}

const stored = (key: string) => t.engine.store.backend.bucket("files").objects.has(key);

test("POST /run answers with the one output file, base64 of its exact bytes; it is staged out too", async () => {
  const c = await call("POST", "/system/services", { body: filesService });
  assert.equal(c.status, 201, await c.text());
  const data = randomBytes(70_000); // binary, every byte value likely
  const r = await runFiles("one:", data);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-scar-output"), "file:result.bin");
  assert.equal(r.headers.get("x-scar-job-status"), "succeeded");
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
  assert.ok(Buffer.from(await r.text(), "base64").equals(data));
  assert.ok(stored("out/result.bin"));
  // scar's addition: the script's output instead, whatever the files.
  const logs = await runFiles("one:", data, { "x-scar-response": "logs" });
  assert.equal(logs.headers.get("x-scar-output"), "logs");
  assert.equal(Buffer.from(await logs.text(), "base64").toString(), "mode one: done\n");
});

test("POST /run answers with a zip of several output files, entries named by their relative paths", async () => {
  const data = randomBytes(5000);
  const r = await runFiles("zip:", data);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-scar-output"), "zip:3");
  const zipFile = join(t.root, "answer.zip");
  writeFileSync(zipFile, Buffer.from(await r.text(), "base64"));
  const names = execFileSync("unzip", ["-Z1", zipFile], { encoding: "utf8" }).trim().split("\n").sort();
  assert.deepEqual(names, ["a/b/deep.bin", "c/empty", "top.txt"]);
  const entry = (name: string) => execFileSync("unzip", ["-p", zipFile, name]);
  assert.ok(entry("a/b/deep.bin").equals(data));
  assert.equal(entry("top.txt").toString(), "top file");
  assert.equal(entry("c/empty").length, 0);
  execFileSync("unzip", ["-tq", zipFile]); // CRCs check out
  for (const k of ["out/a/b/deep.bin", "out/c/empty", "out/top.txt"]) assert.ok(stored(k), k);
});

test("POST /run without output files answers with the script's output; so does a failed script", async () => {
  const r = await runFiles("none");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-scar-output"), "logs");
  assert.equal(Buffer.from(await r.text(), "base64").toString(), "mode none done\n");
  const f = await runFiles("fail");
  assert.equal(f.status, 200);
  assert.equal(f.headers.get("x-scar-job-status"), "failed");
  assert.equal(f.headers.get("x-scar-output"), "logs");
  assert.equal(Buffer.from(await f.text(), "base64").toString(), "failing\n");
  assert.ok(!stored("out/partial.txt"));
});

test("POST /run with output files over the answer's limit: a JSON error naming the sizes; the engine goes on", async () => {
  const r = await runFiles("big:");
  assert.equal(r.status, 500);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  const id = r.headers.get("x-scar-request-id");
  assert.match(id ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(r.headers.get("x-scar-job-status"), "succeeded");
  const { error } = (await r.json()) as { error: string };
  assert.match(error, /left 1 file \(1\.1 MiB\) in its output folder, more than the 1 MiB/);
  assert.match(error, /uploaded to its outputs \(1 object, e\.g\. 'files\/out\/big\.bin'\)/);
  assert.match(error, /x-scar-response: logs/);
  assert.ok(stored("out/big.bin"));
  // The same function answers again, and its workspaces are gone.
  const again = await runFiles("one:", Buffer.from("small"));
  assert.equal(again.status, 200);
  assert.equal(Buffer.from(await again.text(), "base64").toString(), "small");
  await t.engine.runner.drain(); // workspaces are deleted in the background
  assert.deepEqual(
    readdirSync(join(t.engine.dataDir, "work")).filter((d) => d !== "api"),
    [],
  );
});

test("POST /run with a storage event answers with the script's output, as faas-supervisor does", async () => {
  // An object whose first bytes make the script write a file, then an event naming it.
  assert.equal((await runFiles("one:", Buffer.from("one:from the bucket"))).status, 200);
  const event = {
    Records: [
      {
        eventSource: "minio:s3",
        s3: { bucket: { name: "files" }, object: { key: "out/result.bin" } },
      },
    ],
  };
  const token = (await (await call("GET", "/system/services/outfiles")).json()).token;
  const r = await call("POST", "/run/outfiles", { body: event, auth: `Bearer ${token}` });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-scar-output"), "logs");
  assert.equal(Buffer.from(await r.text(), "base64").toString(), "mode one: done\n");
});

test("POST /job: 201 with the job id; the job shows in /system/logs with its log", async () => {
  const r = await call("POST", "/job/greyify", { body: JSON.stringify({ hello: "async" }) });
  assert.equal(r.status, 201);
  const { jobID } = await r.json();
  let status = "";
  for (let i = 0; i < 600 && status !== "Succeeded"; i++) {
    const logs = await (await call("GET", "/system/logs/greyify")).json();
    status = logs.jobs[jobID]?.status ?? "";
    if (status !== "Succeeded") await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(status, "Succeeded");
  const text = await (await call("GET", `/system/logs/greyify/${jobID}`)).text();
  assert.match(text, new RegExp(`^START RequestId: ${jobID} Version: \\$LATEST$`, "m"));
  assert.match(text, /^got \{"hello":"async"\}$/m);
  assert.match(text, new RegExp(`^END RequestId: ${jobID}$`, "m"));
  assert.match(text, new RegExp(`^REPORT RequestId: ${jobID}\\tDuration: `, "m"));
  const rec = await (await call("GET", `/system/jobs/${jobID}`)).json();
  assert.equal(rec.status, "succeeded");
  assert.deepEqual(rec.trigger, { type: "http", path: "/job/greyify" });
});

test("oversized bodies get 413; unknown paths 404; wrong methods 405", async () => {
  const big = await call("POST", "/job/greyify", { body: Buffer.alloc(2 * 1024 * 1024, 97) });
  assert.equal(big.status, 413);
  assert.equal((await call("GET", "/nope")).status, 404);
  assert.equal((await call("PATCH", "/system/services")).status, 405);
});

test("service definitions leave no scratch files behind", () => {
  assert.deepEqual(readdirSync(join(t.engine.dataDir, "work", "api")), []);
});

test("update with PUT, delete with DELETE (buckets and objects are kept)", async () => {
  const u = await call("PUT", "/system/services", { body: { ...service, memory: "256Mi" } });
  assert.equal(u.status, 204, await u.text());
  assert.equal((await (await call("GET", "/system/services/greyify")).json()).memory, "256Mi");
  const d = await call("DELETE", "/system/services/greyify");
  assert.equal(d.status, 204);
  assert.equal((await call("GET", "/system/services/greyify")).status, 404);
  assert.ok(t.engine.store.backend.listBuckets().some((b) => b.name === "grey"));
});
