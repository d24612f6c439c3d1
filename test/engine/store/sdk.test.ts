import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { type TestStore, withStore } from "./helpers.js";

let t: TestStore;
before(async () => {
  t = await withStore();
});
after(async () => {
  await t.stop();
});

test("sdk: create bucket, put, get, head, list, delete", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "smoke" }));
  const buckets = await t.s3.send(new ListBucketsCommand({}));
  assert.deepEqual(buckets.Buckets?.map((b) => b.Name), ["smoke"]);
  const put = await t.s3.send(
    new PutObjectCommand({ Bucket: "smoke", Key: "hello.txt", Body: "hello world", ContentType: "text/plain", Metadata: { who: "me" } }),
  );
  assert.equal(put.ETag, '"5eb63bbbe01eeed093cb22bb8f5acdc3"');
  const got = await t.s3.send(new GetObjectCommand({ Bucket: "smoke", Key: "hello.txt" }));
  assert.equal(await got.Body?.transformToString(), "hello world");
  assert.equal(got.ContentType, "text/plain");
  assert.deepEqual(got.Metadata, { who: "me" });
  const head = await t.s3.send(new HeadObjectCommand({ Bucket: "smoke", Key: "hello.txt" }));
  assert.equal(head.ContentLength, 11);
  const list = await t.s3.send(new ListObjectsV2Command({ Bucket: "smoke" }));
  assert.deepEqual(list.Contents?.map((c) => [c.Key, c.Size]), [["hello.txt", 11]]);
  await t.s3.send(new DeleteObjectCommand({ Bucket: "smoke", Key: "hello.txt" }));
  await assert.rejects(t.s3.send(new GetObjectCommand({ Bucket: "smoke", Key: "hello.txt" })), { name: "NoSuchKey" });
});
