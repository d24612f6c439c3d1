// Bucket notification configuration and the events the store delivers for it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { StoreEvent } from "../../../src/engine/store/index.js";
import { type TestStore, withStore } from "./helpers.js";

let t: TestStore;
const hooked: StoreEvent[] = [];
const live: StoreEvent[] = [];
let failNext = 0;

before(async () => {
  t = await withStore({
    onCommit: async (events) => {
      // Deliberately slow: the client must not get its answer before this has finished.
      await new Promise((r) => setTimeout(r, 20));
      if (failNext > 0) {
        failNext--;
        throw new Error("engine database unavailable");
      }
      hooked.push(...events);
    },
  });
  t.store.subscribe((e) => live.push(e));
  await t.s3.send(new CreateBucketCommand({ Bucket: "fn-in" }));
  await t.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: "fn-in",
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Id: "to-fn",
            LambdaFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:fn",
            Events: ["s3:ObjectCreated:*"],
            Filter: {
              Key: {
                FilterRules: [
                  { Name: "prefix", Value: "in/" },
                  { Name: "suffix", Value: ".txt" },
                ],
              },
            },
          },
        ],
        QueueConfigurations: [
          {
            Id: "removals",
            QueueArn: "arn:aws:sqs:us-east-1:000000000000:q",
            Events: ["s3:ObjectRemoved:Delete"],
          },
        ],
      },
    }),
  );
});
after(async () => {
  await t.stop();
});

async function expectError(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: unknown) => e instanceof S3ServiceException && e.name === code);
}

function take(): { name: string; key: string; id: string }[] {
  const out = hooked
    .splice(0)
    .map((e) => ({ name: e.record.eventName, key: e.record.s3.object.key, id: e.configurationId }));
  return out;
}

test("configuration round-trips and S3's validation rules apply", async () => {
  const cfg = await t.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: "fn-in" }));
  assert.equal(cfg.LambdaFunctionConfigurations?.[0]?.Id, "to-fn");
  assert.deepEqual(cfg.LambdaFunctionConfigurations?.[0]?.Filter?.Key?.FilterRules, [
    { Name: "prefix", Value: "in/" },
    { Name: "suffix", Value: ".txt" },
  ]);
  assert.equal(cfg.QueueConfigurations?.[0]?.QueueArn, "arn:aws:sqs:us-east-1:000000000000:q");
  await t.s3.send(new CreateBucketCommand({ Bucket: "cfg-rules" }));
  const arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  const put = (NotificationConfiguration: object) =>
    t.s3.send(
      new PutBucketNotificationConfigurationCommand({ Bucket: "cfg-rules", NotificationConfiguration }),
    );
  // Overlapping prefixes with a shared event type are refused...
  await expectError(
    put({
      LambdaFunctionConfigurations: [
        {
          LambdaFunctionArn: arn,
          Events: ["s3:ObjectCreated:*"],
          Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "a/" }] } },
        },
        {
          LambdaFunctionArn: arn,
          Events: ["s3:ObjectCreated:Put"],
          Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "a/b/" }] } },
        },
      ],
    }),
    "InvalidArgument",
  );
  // ...disjoint prefixes, or disjoint event types, are fine.
  await put({
    LambdaFunctionConfigurations: [
      {
        LambdaFunctionArn: arn,
        Events: ["s3:ObjectCreated:*"],
        Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "a/" }] } },
      },
      {
        LambdaFunctionArn: arn,
        Events: ["s3:ObjectCreated:*"],
        Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "b/" }] } },
      },
      {
        LambdaFunctionArn: arn,
        Events: ["s3:ObjectRemoved:*"],
        Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "a/" }] } },
      },
    ],
  });
  await expectError(
    put({ LambdaFunctionConfigurations: [{ LambdaFunctionArn: arn, Events: ["s3:ObjectMade:*"] }] }),
    "InvalidArgument",
  );
  await expectError(
    put({
      LambdaFunctionConfigurations: [
        {
          LambdaFunctionArn: arn,
          Events: ["s3:ObjectCreated:*"],
          Filter: { Key: { FilterRules: [{ Name: "middle", Value: "x" }] } },
        },
      ],
    }),
    "InvalidArgument",
  );
  // An empty configuration turns notifications off.
  await put({});
  const empty = await t.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: "cfg-rules" }));
  assert.equal(empty.LambdaFunctionConfigurations, undefined);
});

test("events: one per committed object, filters respected, hook done before the client is answered", async () => {
  take();
  await t.s3.send(new PutObjectCommand({ Bucket: "fn-in", Key: "in/a.txt", Body: "a" }));
  // No waiting: the hook has run by the time PutObject resolved.
  const first = hooked[0];
  assert.ok(first, "the commit hook saw the event before the PUT was acknowledged");
  assert.equal(first.record.eventSource, "aws:s3");
  assert.equal(first.record.eventName, "s3:ObjectCreated:Put");
  assert.equal(first.record.s3.bucket.name, "fn-in");
  assert.equal(first.record.s3.bucket.arn, "arn:aws:s3:::fn-in");
  assert.equal(first.record.s3.object.size, 1);
  assert.equal(first.record.s3.object.eTag, "0cc175b9c0f1b6a831c399e269772661");
  assert.match(first.record.s3.object.sequencer, /^[0-9A-F]{16}$/);
  assert.equal(first.destination.arn, "arn:aws:lambda:us-east-1:000000000000:function:fn");
  assert.ok(!Number.isNaN(Date.parse(first.record.eventTime)));
  await t.s3.send(new PutObjectCommand({ Bucket: "fn-in", Key: "in/b.jpg", Body: "no: suffix" }));
  await t.s3.send(new PutObjectCommand({ Bucket: "fn-in", Key: "out/c.txt", Body: "no: prefix" }));
  await t.s3.send(new PutObjectCommand({ Bucket: "fn-in", Key: "in/my file+1.txt", Body: "yes" }));
  await assert.rejects(
    t.s3.send(
      new PutObjectCommand({ Bucket: "fn-in", Key: "in/bad.txt", Body: "x", ChecksumCRC32: "AAAAAA==" }),
    ),
  );
  await t.s3.send(
    new CopyObjectCommand({ Bucket: "fn-in", Key: "in/copy.txt", CopySource: "fn-in/in/a.txt" }),
  );
  const mp = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: "fn-in", Key: "in/mp.txt" }));
  const e1 = await t.s3.send(
    new UploadPartCommand({
      Bucket: "fn-in",
      Key: "in/mp.txt",
      UploadId: mp.UploadId,
      PartNumber: 1,
      Body: "part",
    }),
  );
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: "fn-in",
      Key: "in/mp.txt",
      UploadId: mp.UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1.ETag }] },
    }),
  );
  const ab = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: "fn-in", Key: "in/aborted.txt" }));
  await t.s3.send(
    new UploadPartCommand({
      Bucket: "fn-in",
      Key: "in/aborted.txt",
      UploadId: ab.UploadId,
      PartNumber: 1,
      Body: "x",
    }),
  );
  await t.s3.send(
    new AbortMultipartUploadCommand({ Bucket: "fn-in", Key: "in/aborted.txt", UploadId: ab.UploadId }),
  );
  await t.s3.send(new DeleteObjectCommand({ Bucket: "fn-in", Key: "in/a.txt" }));
  await t.s3.send(new DeleteObjectCommand({ Bucket: "fn-in", Key: "in/never-existed.txt" }));
  await t.s3.send(new DeleteObjectsCommand({ Bucket: "fn-in", Delete: { Objects: [{ Key: "out/c.txt" }] } }));
  assert.deepEqual(take(), [
    { name: "s3:ObjectCreated:Put", key: "in/a.txt", id: "to-fn" },
    { name: "s3:ObjectCreated:Put", key: "in/my+file%2B1.txt", id: "to-fn" },
    { name: "s3:ObjectCreated:Copy", key: "in/copy.txt", id: "to-fn" },
    { name: "s3:ObjectCreated:CompleteMultipartUpload", key: "in/mp.txt", id: "to-fn" },
    { name: "s3:ObjectRemoved:Delete", key: "in/a.txt", id: "removals" },
    { name: "s3:ObjectRemoved:Delete", key: "out/c.txt", id: "removals" },
  ]);
  // Live subscribers saw the same events, in order, with increasing sequencers.
  const seq = live.map((e) => e.record.s3.object.sequencer);
  assert.deepEqual([...seq].sort(), seq);
  assert.equal(new Set(live.map((e) => e.id)).size, live.length);
});

test("a failing commit hook keeps the event pending and it is delivered again", async () => {
  take();
  failNext = 1;
  await t.s3.send(new PutObjectCommand({ Bucket: "fn-in", Key: "in/retry.txt", Body: "r" }));
  assert.equal(hooked.length, 0);
  assert.equal(t.store.pendingEvents().length, 1);
  while (t.store.pendingEvents().length > 0) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(take(), [{ name: "s3:ObjectCreated:Put", key: "in/retry.txt", id: "to-fn" }]);
});
