/**
 * The Runtime API emulator against a runtime written with scar's Runtime API client: results, errors,
 * Lambda's timeout (the runtime is killed and a new one started), a runtime that dies, bad requests.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { request } from "undici";
import { RuntimeApiEmulator } from "../../src/lambda/emulator/runtime-api-server.js";
import { RuntimeApiClient, type RuntimeApiError } from "../../src/lambda/runtime-api-client.js";

const dir = mkdtempSync(join(tmpdir(), "scar-emulator-"));
const fake = join(dir, "runtime.mjs");
let emu: RuntimeApiEmulator;

before(async () => {
  const client = new URL("../../src/lambda/runtime-api-client.js", import.meta.url).href;
  // A runtime whose event says what to do: answer, fail, exit, or never answer.
  writeFileSync(
    fake,
    `import { RuntimeApiClient } from ${JSON.stringify(client)};
console.log("runtime started");
const c = RuntimeApiClient.fromEnv();
for (;;) {
  const inv = await c.next();
  const ev = JSON.parse(inv.event.toString());
  console.log("got " + inv.requestId + " deadline-in-future=" + (inv.deadlineMs > Date.now()) + " arn=" + inv.functionArn);
  if (ev.answer) await c.respond(inv.requestId, { echo: ev.answer });
  else if (ev.fail) await c.reportError(inv.requestId, { errorType: "Custom.Failure", errorMessage: ev.fail });
  else if (ev.exit) process.exit(ev.exit);
  else { setInterval(() => {}, 1000); await new Promise(() => {}); }
}
`,
  );
  emu = await RuntimeApiEmulator.start({
    functionName: "fake",
    memoryMB: 256,
    runtime: { command: process.execPath, args: [fake], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  });
});
after(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a response comes back with the runtime's logs between START and END", async () => {
  const r = await emu.invoke({ answer: "hi" }, { timeoutMs: 20_000 });
  assert.equal(r.status, "success");
  assert.deepEqual(r.body, { echo: "hi" });
  const logs = r.logs!;
  const start = logs.indexOf(`START RequestId: ${r.requestId} Version: $LATEST`);
  assert.ok(start >= 0, logs.join("\n"));
  assert.equal(
    logs[start + 1],
    `got ${r.requestId} deadline-in-future=true arn=arn:aws:lambda:us-east-1:000000000000:function:fake`,
  );
  assert.equal(logs[start + 2], `END RequestId: ${r.requestId}`);
  // The first invocation of a runtime is a cold start: Lambda reports its init once.
  assert.match(logs[start + 3]!, /^REPORT RequestId: .*\tMemory Size: 256 MB\tInit Duration: [0-9.]+ ms$/);
});

test("an error report keeps its type and body", async () => {
  const r = await emu.invoke({ fail: "it broke" }, { timeoutMs: 20_000 });
  assert.equal(r.status, "error");
  assert.match(r.logs!.at(-1)!, /\tMemory Size: 256 MB$/); // a warm start: no init
  assert.equal(r.errorType, "Custom.Failure");
  assert.deepEqual(r.body, { errorType: "Custom.Failure", errorMessage: "it broke" });
});

test("at the deadline the invocation ends, the runtime is replaced, and the next one is served", async () => {
  const r = await emu.invoke({ hang: true }, { timeoutMs: 1500 });
  assert.equal(r.status, "timeout");
  assert.match((r.body as { errorMessage: string }).errorMessage, / Task timed out after 1.50 seconds$/);
  assert.ok(r.logs!.some((l) => l.endsWith(`${r.requestId} Task timed out after 1.50 seconds`)));
  const next = await emu.invoke({ answer: "again" }, { timeoutMs: 20_000 });
  assert.equal(next.status, "success");
  assert.deepEqual(next.body, { echo: "again" });
  // A fresh runtime: its start-up line is in this invocation's logs, before START.
  const logs = next.logs!;
  assert.ok(
    logs.indexOf("runtime started") < logs.indexOf(`START RequestId: ${next.requestId} Version: $LATEST`),
  );
  assert.ok(logs.includes("runtime started"), logs.join("\n"));
});

test("a runtime that exits during an invocation fails it, and a new one serves the next", async () => {
  const r = await emu.invoke({ exit: 3 }, { timeoutMs: 20_000 });
  assert.equal(r.status, "error");
  assert.equal(r.errorType, "Runtime.ExitError");
  assert.deepEqual(r.body, {
    errorMessage: "Runtime exited with error: exit status 3",
    errorType: "Runtime.ExitError",
  });
  const next = await emu.invoke({ answer: "ok" }, { timeoutMs: 20_000 });
  assert.deepEqual(next.body, { echo: "ok" });
});

test("requests the Runtime API does not know, or for an invocation that is not running, are refused", async () => {
  const base = `http://${emu.address}/2018-06-01/runtime`;
  const unknown = await request(`${base}/invocation/no-such-id/response`, { method: "POST", body: "{}" });
  assert.equal(unknown.statusCode, 400);
  assert.equal(((await unknown.body.json()) as { errorType: string }).errorType, "InvalidRequestID");
  const nowhere = await request(`${base}/nowhere`, { method: "GET" });
  assert.equal(nowhere.statusCode, 404);
  await nowhere.body.dump();
});

test("a runtime that cannot be started fails the invocation with the reason", async () => {
  const broken = await RuntimeApiEmulator.start({ runtime: { command: join(dir, "no-such-bootstrap") } });
  try {
    const r = await broken.invoke({}, { timeoutMs: 20_000 });
    assert.equal(r.status, "error");
    assert.equal(r.errorType, "Runtime.ExitError");
    assert.match(
      (r.body as { errorMessage: string }).errorMessage,
      /^Runtime could not be started: spawn .* ENOENT$/,
    );
  } finally {
    await broken.close();
  }
});

test("without a runtime of its own, the emulator still ends an invocation at its deadline and refuses a late answer", async () => {
  const bare = await RuntimeApiEmulator.start();
  const client = new RuntimeApiClient(bare.address);
  try {
    const pending = bare.invoke({ late: true }, { timeoutMs: 300, traceId: "Root=1-abc" });
    const inv = await client.next();
    assert.deepEqual(JSON.parse(inv.event.toString()), { late: true });
    assert.equal(inv.traceId, "Root=1-abc");
    const r = await pending;
    assert.equal(r.status, "timeout");
    assert.equal(r.requestId, inv.requestId);
    assert.equal(r.logs, undefined);
    await assert.rejects(
      client.respond(inv.requestId, { too: "late" }),
      (e: RuntimeApiError) => e.status === 400,
    );
  } finally {
    await client.close();
    await bare.close();
  }
});
