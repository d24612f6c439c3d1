// The in-memory index keeps every object's metadata (README: "Listing keeps every key of a bucket in
// memory"), so its size per object is what an engine's heap grows by as files come in and results go
// out (issue 14's 10,000-file run). V8 shares one hidden class among objects of the same shape; an
// object made by `{ ...o, extra }` gets one of its own (~360 bytes more). This checks that index
// entries written by PUT share theirs.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { type TestStore, withStore } from "./helpers.js";

// V8's own test intrinsic, compiled after the flag is set (only this function uses it).
setFlagsFromString("--allow-natives-syntax");
const haveSameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: object, b: object) => boolean;

let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "shapes" }));
});
after(async () => t.stop());

test("objects written by PUT share one hidden class in the index", async () => {
  for (let i = 0; i < 40; i++)
    await t.s3.send(new PutObjectCommand({ Bucket: "shapes", Key: `in/${i}.txt`, Body: `file ${i}` }));
  const entries = [...t.store.backend.bucket("shapes").objects.values()];
  assert.equal(entries.length, 40);
  const own = entries.filter((o) => !haveSameMap(o, entries[0]!)).length;
  assert.equal(own, 0, `${own} of 40 index entries have a hidden class of their own`);
});
