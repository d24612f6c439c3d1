// Where a PUT's bytes go (Backend.choosePath): a new key's plain path is looked at on the thread
// pool, not with a synchronous lstat on the event loop's thread, and the answers stay right when
// PUTs of keys that clash ("a" and "a/b") run at once. Real store, real S3 client.
import assert from "node:assert/strict";
import fs, { readFileSync, rmSync, statSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { type TestStore, withStore } from "./helpers.js";

let t: TestStore;
before(async () => {
  t = await withStore();
  await t.s3.send(new CreateBucketCommand({ Bucket: "paths" }));
});
after(async () => {
  const dir = t.dir;
  await t.stop();
  rmSync(dir, { recursive: true, force: true });
});

const put = (Key: string, Body: string) => t.s3.send(new PutObjectCommand({ Bucket: "paths", Key, Body }));
const get = async (Key: string) =>
  (await t.s3.send(new GetObjectCommand({ Bucket: "paths", Key }))).Body!.transformToString();

test("a PUT of a new key makes no synchronous lstat of its path", async () => {
  await put("in/first", "first"); // its folder is made
  const bucketDir = join(t.dir, "paths");
  const seen: string[] = [];
  const mutableFs = fs as { lstatSync: typeof fs.lstatSync };
  const original = fs.lstatSync;
  mutableFs.lstatSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    if (String(p).startsWith(bucketDir)) seen.push(String(p));
    return (original as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.lstatSync;
  syncBuiltinESMExports();
  try {
    for (let i = 0; i < 10; i++) await put(`in/k${i}`, `content ${i}`);
    await Promise.all(Array.from({ length: 10 }, (_, i) => put(`in/c${i}`, `concurrent ${i}`)));
  } finally {
    mutableFs.lstatSync = original;
    syncBuiltinESMExports();
  }
  assert.deepEqual(seen, []);
  for (let i = 0; i < 10; i++) {
    // at their readable paths, as before
    assert.equal(readFileSync(join(bucketDir, "in", `k${i}`), "utf8"), `content ${i}`);
    assert.equal(await get(`in/c${i}`), `concurrent ${i}`);
  }
});

test("PUTs of clashing keys at once: every one stored, one plain path per clash", async () => {
  for (let round = 0; round < 20; round++) {
    const keys = [`r${round}`, `r${round}/sub`, `r${round}/sub/leaf`];
    // each round in another order: the probes of the later keys meet the earlier one's rename
    const order = round % 2 ? [...keys].reverse() : keys;
    const results = await Promise.allSettled(order.map((k) => put(k, `content of ${k}`)));
    for (const r of results) assert.equal(r.status, "fulfilled", String((r as PromiseRejectedResult).reason));
    for (const k of keys) assert.equal(await get(k), `content of ${k}`);
    // the plain path r<n> is one key's file, or the folder of the others' plain paths
    const top = statSync(join(t.dir, "paths", `r${round}`));
    if (top.isFile())
      assert.equal(readFileSync(join(t.dir, "paths", `r${round}`), "utf8"), `content of r${round}`);
  }
  // and all of it again after a restart (the journal's moves replayed)
  const dir = t.dir;
  t.s3.destroy();
  await t.store.close();
  t = await withStore({ dataDir: dir });
  for (let round = 0; round < 20; round++)
    for (const k of [`r${round}`, `r${round}/sub`, `r${round}/sub/leaf`])
      assert.equal(await get(k), `content of ${k}`);
});
