import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEvent } from "../../src/supervisor/index.js";

const s3 = (key: string, extra: Record<string, unknown> = {}) => ({
  Records: [
    {
      eventSource: "aws:s3",
      eventName: "ObjectCreated:Put",
      eventTime: "2026-11-22T10:00:00.000Z",
      awsRegion: "us-east-1",
      s3: { bucket: { name: "photos", arn: "arn:aws:s3:::photos" }, object: { key, size: 3, eTag: "abc" } },
      ...extra,
    },
  ],
});

test("S3 record: bucket, key decoded as S3 encodes it (spaces as '+', UTF-8 escapes), time", () => {
  const p = parseEvent(s3("input/my+holiday+%C3%A9t%C3%A9%2B1.jpg"));
  assert.deepEqual(p.event, {
    kind: "storage",
    source: "aws:s3",
    bucket: "photos",
    key: "input/my holiday été+1.jpg",
    fileName: "my holiday été+1.jpg",
    eventTime: "2026-11-22T10:00:00.000Z",
  });
  assert.deepEqual(p.params, {});
  assert.equal(JSON.parse(p.raw).Records[0].s3.bucket.name, "photos");
});

test("MinIO record, and a record without eventTime (SCAR's own event launcher sent those)", () => {
  const minio = s3("in/a.txt");
  minio.Records[0]!.eventSource = "minio:s3";
  assert.equal((parseEvent(minio).event as { source: string }).source, "minio:s3");
  const old = s3("in/a.txt");
  delete (old.Records[0] as Record<string, unknown>).eventTime;
  const ev = parseEvent(old).event;
  assert.equal(ev.kind, "storage");
  assert.equal((ev as { eventTime?: string }).eventTime, undefined);
});

test("event given as JSON text or bytes is parsed the same", () => {
  const text = JSON.stringify(s3("in/a.txt"));
  assert.equal(parseEvent(text).event.kind, "storage");
  assert.equal(parseEvent(Buffer.from(text)).event.kind, "storage");
});

test("API Gateway: query parameters become CONT_VAR_ values, a JSON body holding an S3 event is that event", () => {
  const p = parseEvent({
    httpMethod: "POST",
    queryStringParameters: { size: "10", mode: "fast" },
    body: JSON.stringify(s3("in/x.png")),
  });
  assert.deepEqual(p.params, { size: "10", mode: "fast" });
  assert.equal(p.event.kind, "storage");
});

test("API Gateway: a base64 body (how SCAR sends files) becomes the file's bytes", () => {
  const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]);
  const p = parseEvent({ httpMethod: "POST", body: bytes.toString("base64") });
  assert.equal(p.event.kind, "other");
  assert.deepEqual((p.event as { body: Buffer }).body, bytes);
  const flagged = parseEvent({
    httpMethod: "POST",
    isBase64Encoded: true,
    body: Buffer.from('{"a":1}').toString("base64"),
  });
  assert.equal((flagged.event as { body: Buffer }).body.toString(), '{"a":1}');
});

test("delegated event: the inner event, with the storage provider it names", () => {
  const minio = s3("in/a.txt");
  minio.Records[0]!.eventSource = "minio:s3";
  const p = parseEvent({ event: minio, storage_provider: "minio.cluster2" });
  assert.equal((p.event as { providerId?: string }).providerId, "minio.cluster2");
  assert.equal((p.event as { key: string }).key, "in/a.txt");
});

test("SCAR run payloads: a base64 script, or container arguments as a JSON list in a string", () => {
  const script = "echo hello\n";
  const a = parseEvent({ script: Buffer.from(script).toString("base64") });
  assert.equal(a.event.kind, "other");
  assert.equal((a.event as { script?: Buffer }).script?.toString(), script);
  const b = parseEvent({ cmd_args: JSON.stringify(["df", "-h"]) });
  assert.deepEqual((b.event as { cmdArgs?: string[] }).cmdArgs, ["df", "-h"]);
  // The payload itself is still the event file's content.
  assert.deepEqual(JSON.parse((b.event as { body: Buffer }).body.toString()), {
    cmd_args: JSON.stringify(["df", "-h"]),
  });
});

test("unknown bodies: an empty invocation is {}, plain text that is not base64 is kept as it is", () => {
  assert.equal((parseEvent({}).event as { body: Buffer }).body.toString(), "{}");
  assert.equal((parseEvent("hello world!").event as { body: Buffer }).body.toString(), "hello world!");
  assert.equal((parseEvent("[1,2]").event as { body: Buffer }).body.toString(), "[1,2]");
});

test("a storage record without a bucket is an error, not a crash later", () => {
  assert.throws(
    () => parseEvent({ Records: [{ eventSource: "aws:s3", s3: { object: { key: "k" } } }] }),
    /without s3\.bucket\.name/,
  );
});
