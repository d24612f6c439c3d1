/**
 * GET /system/jobs/<id>/log?follow=true over real HTTP (fetch) against a real engine and container:
 * a job prints a line, waits at a gate the test holds (job-gate.ts), prints a second line. The
 * stream carries the first line while the job waits, the second once the gate opens, then END,
 * REPORT and `end`; joined, its text is the stored log. A finished job's stream is its whole log
 * and `end` at once; auth as the other /system routes.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Json, useApiEngine } from "./api-harness.js";
import { type JobGate, openGate } from "./job-gate.js";

const IMAGE = "localhost/scar-test/busybox:follow";
const t = useApiEngine({ prefix: "scar-api-log-follow-", image: IMAGE });

let gate: JobGate;
before(async () => {
  gate = await openGate();
});
after(() => gate.close());

interface Event {
  event: string;
  data: Json;
}

/** Reads server-sent events from a fetch body; `onEvent` sees each one as it comes. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: Event) => void): Promise<Event[]> {
  const all: Event[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event = "";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (event === "") continue; // a comment (keep-alive)
      const e = { event, data: JSON.parse(data) };
      all.push(e);
      onEvent(e);
    }
  }
  return all;
}

test("a running job's log follows live: the first line, then the second, then END and REPORT", async () => {
  const script = gate.script("first line", "second line");
  const svc = { name: "follow", image: IMAGE, memory: "128Mi", script, scar: { network: "host" } };
  const d = await t.call("POST", "/system/services", { body: svc });
  assert.equal(d.status, 201, await d.clone().text());
  const job = await t.call("POST", "/job/follow", { body: "{}" });
  assert.equal(job.status, 201, await job.clone().text());
  const id = (await job.json()).jobID as string;

  const r = await fetch(`${t.api.url}/system/jobs/${id}/log?follow=true`, {
    headers: { authorization: t.adminAuth },
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/event-stream/);
  let text = "";
  let firstWhileWaiting = false;
  const events = await readEvents(r.body!, (e) => {
    if (e.event !== "log") return;
    text += e.data;
    if (!firstWhileWaiting && text.includes("first line\n")) {
      firstWhileWaiting = true;
      assert.doesNotMatch(text, /second line/, "the job is still held at the gate");
      void gate.release(); // once it waits at the gate (it may not be there yet)
    }
  });
  assert.ok(firstWhileWaiting, "the first line came before the gate opened");
  assert.match(text, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST\n/);
  assert.match(text, /first line\n(.*\n)*second line\n/);
  assert.match(text, new RegExp(`END RequestId: ${id}\nREPORT RequestId: ${id}\t.*\n$`));
  const last = events[events.length - 1]!;
  assert.equal(last.event, "end");
  assert.deepEqual(last.data, { status: "succeeded", attempts: 1 });
  const logEvents = events.filter((e) => e.event === "log");
  assert.ok(
    logEvents.findIndex((e) => e.data.includes("first line")) <
      logEvents.findIndex((e) => e.data.includes("second line")),
    "two lines, two events",
  );
  // what was sent is what is stored
  const stored = await t.call("GET", `/system/jobs/${id}/log`);
  assert.equal(await stored.text(), text);

  // a finished job: its whole log and `end` at once
  const again = await fetch(`${t.api.url}/system/jobs/${id}/log?follow=true`, {
    headers: { authorization: t.adminAuth },
  });
  const done = await readEvents(again.body!, () => {});
  assert.deepEqual(
    done.map((e) => e.event),
    ["log", "end"],
  );
  assert.equal(done[0]!.data, text);
});

test("following a log needs the admin, and a job that is there", async () => {
  const anon = await t.call("GET", "/system/jobs/00000000-0000-4000-8000-000000000000/log?follow=true", {
    auth: null,
  });
  assert.equal(anon.status, 401);
  const missing = await t.call("GET", "/system/jobs/00000000-0000-4000-8000-000000000000/log?follow=true");
  assert.equal(missing.status, 404);
});
