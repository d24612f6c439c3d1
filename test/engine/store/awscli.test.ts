// The store driven by Debian's awscli v2 (/usr/bin/aws; the `aws` first on PATH may be v1).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { awsEnv, run, type TestStore, withStore } from "./helpers.js";

const AWS = "/usr/bin/aws";
let t: TestStore;
let home: string;
let env: Record<string, string>;

before(async () => {
  t = await withStore();
  home = mkdtempSync(join(tmpdir(), "scar-awscli-"));
  env = awsEnv(home, t.store);
});
after(async () => {
  await t.stop();
  rmSync(home, { recursive: true, force: true });
});

async function aws(...args: string[]) {
  return run(AWS, ["--endpoint-url", t.store.url, "--no-cli-pager", ...args], env);
}
async function ok(...args: string[]): Promise<string> {
  const r = await aws(...args);
  assert.equal(r.code, 0, `aws ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

test("awscli v2 is the one under test", {
  skip: !existsSync(AWS) && "awscli v2 is not installed",
}, async () => {
  const r = await run(AWS, ["--version"], env);
  assert.match(r.stdout + r.stderr, /aws-cli\/2\./);
});

test("aws s3: mb, cp up/down, ls, multipart > 16 MiB, sync, presign, rm, rb", {
  skip: !existsSync(AWS) && "no awscli",
}, async () => {
  await ok("s3", "mb", "s3://cli-bucket");
  const work = join(home, "work");
  mkdirSync(join(work, "up", "sub"), { recursive: true });
  writeFileSync(join(work, "up", "a.txt"), "alpha\n");
  writeFileSync(join(work, "up", "sub", "b c.txt"), "bravo charlie\n");
  const big = randomBytes(17 * 1024 * 1024 + 123);
  writeFileSync(join(work, "big.bin"), big);

  // Independent commands run side by side: each awscli start costs seconds of CPU.
  await Promise.all([
    ok("s3", "cp", "--no-progress", join(work, "up", "a.txt"), "s3://cli-bucket/single/a.txt"),
    ok("s3", "cp", "--no-progress", join(work, "big.bin"), "s3://cli-bucket/big.bin"),
    ok("s3", "sync", "--no-progress", join(work, "up"), "s3://cli-bucket/synced/"),
  ]);
  const [headOut, ls, top] = await Promise.all([
    ok("s3api", "head-object", "--bucket", "cli-bucket", "--key", "big.bin"),
    ok("s3", "ls", "--recursive", "s3://cli-bucket/synced/"),
    ok("s3", "ls", "s3://cli-bucket/"),
    // A copy inside the store of an object above the multipart threshold uses UploadPartCopy.
    ok("s3", "cp", "--no-progress", "s3://cli-bucket/big.bin", "s3://cli-bucket/big-copy.bin"),
  ]);
  const head = JSON.parse(headOut);
  assert.equal(head.ContentLength, big.length);
  assert.match(head.ETag, /^"[0-9a-f]{32}-3"$/); // 8 MiB parts: 3 parts
  const listed = ls
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).slice(3).join(" "))
    .sort();
  assert.deepEqual(listed, ["synced/a.txt", "synced/sub/b c.txt"]);
  assert.match(top, /PRE single\//);
  assert.match(top, /PRE synced\//);
  assert.match(top, /big\.bin/);
  const [, , again] = await Promise.all([
    ok("s3", "cp", "--no-progress", "s3://cli-bucket/big-copy.bin", join(work, "big.down")),
    ok("s3", "sync", "--no-progress", "s3://cli-bucket/synced/", join(work, "down")),
    // A second sync has nothing to do.
    ok("s3", "sync", "--no-progress", join(work, "up"), "s3://cli-bucket/synced/"),
  ]);
  assert.equal(md5(readFileSync(join(work, "big.down"))), md5(big));
  assert.equal(readFileSync(join(work, "down", "sub", "b c.txt"), "utf8"), "bravo charlie\n");
  assert.equal(again.trim(), "");

  const url = (await ok("s3", "presign", "s3://cli-bucket/single/a.txt", "--expires-in", "300")).trim();
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "alpha\n");

  const rb = await aws("s3", "rb", "s3://cli-bucket");
  assert.notEqual(rb.code, 0);
  assert.match(rb.stderr, /BucketNotEmpty/);
  await ok("s3", "rm", "--recursive", "s3://cli-bucket/");
  await ok("s3", "rb", "s3://cli-bucket");
});

test("aws s3api: put/get/list/copy/delete-objects and errors", {
  skip: !existsSync(AWS) && "no awscli",
}, async () => {
  await ok("s3api", "create-bucket", "--bucket", "api-bucket");
  const file = join(home, "obj.json");
  writeFileSync(file, '{"x":1}');
  const put = JSON.parse(
    await ok(
      "s3api",
      "put-object",
      "--bucket",
      "api-bucket",
      "--key",
      "dir/obj.json",
      "--body",
      file,
      "--content-type",
      "application/json",
      "--metadata",
      "color=blue",
    ),
  );
  assert.equal(put.ETag, `"${md5(Buffer.from('{"x":1}'))}"`);
  const out = join(home, "got.json");
  const got = JSON.parse(
    await ok("s3api", "get-object", "--bucket", "api-bucket", "--key", "dir/obj.json", out),
  );
  assert.equal(got.ContentType, "application/json");
  assert.deepEqual(got.Metadata, { color: "blue" });
  assert.equal(readFileSync(out, "utf8"), '{"x":1}');
  await ok(
    "s3api",
    "copy-object",
    "--bucket",
    "api-bucket",
    "--key",
    "copy.json",
    "--copy-source",
    "api-bucket/dir/obj.json",
  );
  const list = JSON.parse(await ok("s3api", "list-objects-v2", "--bucket", "api-bucket", "--delimiter", "/"));
  assert.deepEqual(
    list.Contents.map((c: { Key: string }) => c.Key),
    ["copy.json"],
  );
  assert.deepEqual(list.CommonPrefixes, [{ Prefix: "dir/" }]);
  const del = JSON.parse(
    await ok(
      "s3api",
      "delete-objects",
      "--bucket",
      "api-bucket",
      "--delete",
      '{"Objects":[{"Key":"copy.json"},{"Key":"dir/obj.json"}]}',
    ),
  );
  assert.equal(del.Deleted.length, 2);
  const missing = await aws(
    "s3api",
    "get-object",
    "--bucket",
    "api-bucket",
    "--key",
    "nope",
    join(home, "x"),
  );
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /NoSuchKey/);
  await ok("s3api", "delete-bucket", "--bucket", "api-bucket");
});
