/** run (sync with Lambda's log tail, errors, Event), ls and log on the aws target, over the client mocks. */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { RequestLines } from "../../../src/targets/aws/log-group.js";
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

test("log --follow -ri: a request whose lines come in two polls, other streams' lines left out", async () => {
  const ev = (stream: string, timestamp: number, message: string) => ({
    logStreamName: stream,
    timestamp,
    message,
    eventId: `${stream}-${timestamp}`,
  });
  s.logEvents = [
    ev("a", 1, "START RequestId: r-1 Version: $LATEST\n"),
    ev("a", 2, "REPORT RequestId: r-1\n"),
    ev("b", 3, "START RequestId: r-7 Version: $LATEST\n"),
    ev("b", 4, "converting\n"),
  ];
  const { t } = target();
  // as `scar log --follow -ri r-7` polls: one filter and one seen-map for every poll
  const q = { request: new RequestLines("r-7"), seen: new Map<string, number>() };
  const first = await t.logText("scar-cowsay", q);
  assert.equal(first.text, "START RequestId: r-7 Version: $LATEST\nconverting\n");
  // the rest arrives, with a concurrent request's lines of another stream in between
  s.logEvents.push(
    ev("c", 5, "START RequestId: r-8 Version: $LATEST\n"),
    ev("b", 5, "done\nEND RequestId: r-7\n"),
    ev("c", 6, "not r-7's\n"),
    ev("b", 7, "REPORT RequestId: r-7\tDuration: 3.00 ms\n"),
    ev("b", 8, "after the request\n"),
  );
  const second = await t.logText("scar-cowsay", { ...q, startTime: first.last });
  assert.equal(second.text, "done\nEND RequestId: r-7\nREPORT RequestId: r-7\tDuration: 3.00 ms\n");
  assert.equal(second.last, 8);
  // a later poll shows nothing more of it
  s.logEvents.push(ev("b", 9, "START RequestId: r-9 Version: $LATEST\n"));
  assert.equal((await t.logText("scar-cowsay", { ...q, startTime: second.last })).text, "");
});
