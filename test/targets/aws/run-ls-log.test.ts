/** run (sync with Lambda's log tail, errors, Event), ls and log on the aws target, over the client mocks. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { type FakeState, fakeAws, newState } from "./fake-aws.js";
import { type Call, fdl, type Mocks, mockAws, target } from "./fixtures.js";

let m: Mocks;
let calls: Call[];
let restore: () => void;
let s: FakeState;

beforeEach(async () => {
  ({ mocks: m, calls, restore } = mockAws());
  s = newState();
  fakeAws(m, s);
  const f = fdl(`
functions:
  aws:
  - lambda: {name: scar-cowsay, init_script: cow.sh, container: {image: grycap/cowsay}}
`);
  await target().t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });
  calls.length = 0;
});
afterEach(() => restore());

const TAIL =
  "START RequestId: r-1 Version: $LATEST\nmoo\nEND RequestId: r-1\nREPORT RequestId: r-1\tDuration: 12.00 ms\n";

test("run: RequestResponse with LogType Tail; the body decoded and the tail kept", async () => {
  s.invoke = () => ({
    StatusCode: 200,
    LogResult: Buffer.from(TAIL).toString("base64"),
    Payload: Buffer.from(
      JSON.stringify({
        statusCode: 200,
        headers: {
          "amz-log-group-name": "/aws/lambda/scar-cowsay",
          "amz-log-stream-name": "2026/12/04/[$LATEST]abc",
        },
        body: Buffer.from(" _____\n< moo >\n").toString("base64"),
        isBase64Encoded: true,
      }),
    ),
    $metadata: { requestId: "r-1" },
  });
  const r = await target().t.run("scar-cowsay", { cmd_args: '["moo"]' });
  assert.equal(r.output.toString(), " _____\n< moo >\n");
  assert.equal(r.logTail, TAIL);
  assert.equal(r.requestId, "r-1");
  assert.equal(r.logStream, "2026/12/04/[$LATEST]abc");
  assert.equal(r.ok, true);
  const inv = calls.find((c) => c.command === "Invoke")!.input;
  assert.equal(inv.InvocationType, "RequestResponse");
  assert.equal(inv.LogType, "Tail");
  assert.deepEqual(JSON.parse(Buffer.from(inv.Payload as Uint8Array).toString()), { cmd_args: '["moo"]' });
});

test("run: a function error and a timeout say so, with ok false", async () => {
  s.invoke = () => ({
    StatusCode: 200,
    FunctionError: "Unhandled",
    Payload: Buffer.from(
      JSON.stringify({ errorType: "UserScriptError", errorMessage: "User script exited with code 3!" }),
    ),
    $metadata: { requestId: "r-2" },
  });
  const r = await target().t.run("scar-cowsay", {});
  assert.equal(r.ok, false);
  assert.equal(r.output.toString(), "User script exited with code 3!");
  s.invoke = () => ({
    StatusCode: 200,
    FunctionError: "Unhandled",
    Payload: Buffer.from(
      JSON.stringify({ errorMessage: "2026-12-04T05:00:00Z r-3 Task timed out after 3.00 seconds" }),
    ),
    $metadata: { requestId: "r-3" },
  });
  const t = await target().t.run("scar-cowsay", {});
  assert.equal(t.output.toString(), "Function 'scar-cowsay' timed out after 3.00 seconds");
});

test("run -a: an Event invocation returns the request id", async () => {
  s.invoke = (i) => {
    assert.equal(i.InvocationType, "Event");
    return { StatusCode: 202, $metadata: { requestId: "r-4" } };
  };
  assert.equal(await target().t.submit("scar-cowsay", {}), "r-4");
});

test("ls: scar's functions only, with SCAR's columns' values", async () => {
  s.functions.set("not-mine", {
    config: {
      FunctionName: "not-mine",
      FunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:not-mine",
      Environment: { Variables: { FDL: "e30=" } },
    },
    tags: {},
    imageUri: "",
    permissions: new Set(),
  });
  const list = await target().t.list();
  assert.deepEqual(
    list.map((f) => [f.name, f.memory, f.timeout, f.image, f.apiUrl]),
    [["scar-cowsay", 512, 300, "grycap/cowsay", null]],
  );
});

test("log: every page in time order, one stream, one request's lines (-ri)", async () => {
  s.logEvents = [
    { logStreamName: "a", timestamp: 1, message: "START RequestId: r-1 Version: $LATEST\n" },
    { logStreamName: "a", timestamp: 2, message: "one\n" },
    { logStreamName: "a", timestamp: 3, message: "REPORT RequestId: r-1\n" },
    { logStreamName: "b", timestamp: 4, message: "START RequestId: r-2 Version: $LATEST\n" },
    { logStreamName: "b", timestamp: 5, message: "two\n" },
    { logStreamName: "b", timestamp: 6, message: "REPORT RequestId: r-2\n" },
  ];
  const { t } = target();
  const all = await t.logText("scar-cowsay");
  assert.equal(all.text.split("\n").length, 7);
  assert.equal(all.last, 6);
  assert.equal(
    (await t.logText("scar-cowsay", { stream: "b" })).text,
    "START RequestId: r-2 Version: $LATEST\ntwo\nREPORT RequestId: r-2\n",
  );
  assert.equal(
    (await t.logText("scar-cowsay", { requestId: "r-1" })).text,
    "START RequestId: r-1 Version: $LATEST\none\nREPORT RequestId: r-1\n",
  );
  assert.equal((await t.logText("scar-cowsay", { startTime: 6 })).text, "REPORT RequestId: r-2\n");
  assert.ok(calls.filter((c) => c.command === "FilterLogEvents").length >= 3, "all pages read");
});
