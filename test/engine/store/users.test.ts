// Several users in one store (issue 18): each bucket is its creator's, another user gets
// AccessDenied unless a canned ACL grants it, objects are their writer's, ListBuckets lists the
// caller's own, Get*Acl show the real owner, key pairs limited to buckets, and a journal written
// before users existed still loads as the first user's. @aws-sdk/client-s3, aws-cli v2 and boto3.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketAclCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { userIdOf } from "../../../src/engine/store/users.js";
import { awsEnv, CREDS, run, s3Error, type TestStore, withStore } from "./helpers.js";

const ALICE = { accessKeyId: "AKIDALICE", secretAccessKey: "alice-secret", user: "alice" };
const BOB = { accessKeyId: "AKIDBOB", secretAccessKey: "bob-secret", user: "bob" };
const BOB2 = { accessKeyId: "AKIDBOB2", secretAccessKey: "bob-secret-2", user: "bob" };
const LIMITED = { accessKeyId: "AKIDFN", secretAccessKey: "fn-secret", buckets: ["adm-in"] };

let t: TestStore;
const clients: S3Client[] = [];
function client(c: { accessKeyId: string; secretAccessKey: string }): S3Client {
  const s3 = new S3Client({
    endpoint: t.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
  clients.push(s3);
  return s3;
}
let alice: S3Client;
let bob: S3Client;

before(async () => {
  t = await withStore({ credentials: [CREDS, ALICE, BOB, BOB2, LIMITED] });
  alice = client(ALICE);
  bob = client(BOB);
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.stop();
});

async function denied(p: Promise<unknown>): Promise<void> {
  const e = await s3Error(p);
  assert.equal(e.name, "AccessDenied");
  assert.equal(e.$metadata.httpStatusCode, 403);
}

async function text(s3: S3Client, Bucket: string, Key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();
}

test("a bucket is its creator's: another user gets AccessDenied, and cannot take the name", async () => {
  await alice.send(new CreateBucketCommand({ Bucket: "alice-private" }));
  await alice.send(new PutObjectCommand({ Bucket: "alice-private", Key: "a.txt", Body: "alice's" }));
  assert.equal(await text(alice, "alice-private", "a.txt"), "alice's");
  await denied(bob.send(new GetObjectCommand({ Bucket: "alice-private", Key: "a.txt" })));
  await denied(bob.send(new ListObjectsV2Command({ Bucket: "alice-private" })));
  await denied(bob.send(new PutObjectCommand({ Bucket: "alice-private", Key: "b.txt", Body: "x" })));
  await denied(bob.send(new GetBucketAclCommand({ Bucket: "alice-private" })));
  await denied(bob.send(new DeleteObjectCommand({ Bucket: "alice-private", Key: "a.txt" })));
  await denied(bob.send(new DeleteBucketCommand({ Bucket: "alice-private" })));
  await denied(bob.send(new PutBucketAclCommand({ Bucket: "alice-private", ACL: "public-read-write" })));
  // a copy reads its source with the caller's rights
  await bob.send(new CreateBucketCommand({ Bucket: "bob-own" }));
  await denied(
    bob.send(new CopyObjectCommand({ Bucket: "bob-own", Key: "c", CopySource: "alice-private/a.txt" })),
  );
  const taken = await s3Error(bob.send(new CreateBucketCommand({ Bucket: "alice-private" })));
  assert.equal(taken.name, "BucketAlreadyExists");
  // the first user (the admin) is just another user here
  await denied(t.s3.send(new GetObjectCommand({ Bucket: "alice-private", Key: "a.txt" })));
});

test("ListBuckets lists the caller's own buckets; key pairs of one user share them", async () => {
  await bob.send(new CreateBucketCommand({ Bucket: "bob-list" }));
  await alice.send(new CreateBucketCommand({ Bucket: "alice-list" }));
  const names = async (s3: S3Client) =>
    ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
  const bobs = await names(bob);
  assert.ok(bobs.includes("bob-list") && !bobs.includes("alice-list"), bobs.join());
  assert.deepEqual(await names(client(BOB2)), bobs);
  const alices = await names(alice);
  assert.ok(alices.includes("alice-list") && !alices.includes("bob-list"), alices.join());
  const r = await bob.send(new ListBucketsCommand({}));
  assert.deepEqual(r.Owner, { ID: userIdOf("bob"), DisplayName: "bob" });
  // bob's second key pair writes and reads in bob's bucket as bob
  await client(BOB2).send(new PutObjectCommand({ Bucket: "bob-list", Key: "k", Body: "2" }));
  assert.equal(await text(bob, "bob-list", "k"), "2");
});

test("authenticated-read and public-read-write grant other users; objects are their writer's", async () => {
  await alice.send(new CreateBucketCommand({ Bucket: "alice-shared", ACL: "authenticated-read" }));
  await alice.send(
    new PutObjectCommand({ Bucket: "alice-shared", Key: "open", Body: "o", ACL: "authenticated-read" }),
  );
  await alice.send(new PutObjectCommand({ Bucket: "alice-shared", Key: "closed", Body: "c" }));
  const listed = await bob.send(new ListObjectsV2Command({ Bucket: "alice-shared" }));
  assert.deepEqual(
    listed.Contents?.map((o) => o.Key),
    ["closed", "open"],
  );
  assert.equal(await text(bob, "alice-shared", "open"), "o");
  await denied(bob.send(new GetObjectCommand({ Bucket: "alice-shared", Key: "closed" })));
  // READ is not WRITE
  await denied(bob.send(new PutObjectCommand({ Bucket: "alice-shared", Key: "x", Body: "x" })));
  const missing = await s3Error(bob.send(new GetObjectCommand({ Bucket: "alice-shared", Key: "none" })));
  assert.equal(missing.name, "NoSuchKey");

  // a public-read-write bucket: bob writes, the object is bob's
  await alice.send(new CreateBucketCommand({ Bucket: "alice-drop", ACL: "public-read-write" }));
  await bob.send(new PutObjectCommand({ Bucket: "alice-drop", Key: "mine", Body: "bob's" }));
  await bob.send(
    new PutObjectCommand({ Bucket: "alice-drop", Key: "for-alice", Body: "r", ACL: "bucket-owner-read" }),
  );
  await bob.send(
    new PutObjectCommand({ Bucket: "alice-drop", Key: "full", Body: "f", ACL: "bucket-owner-full-control" }),
  );
  const acl = await bob.send(new GetObjectAclCommand({ Bucket: "alice-drop", Key: "mine" }));
  assert.deepEqual(acl.Owner, { ID: userIdOf("bob"), DisplayName: "bob" });
  // the bucket owner does not read another user's private object...
  await denied(alice.send(new GetObjectCommand({ Bucket: "alice-drop", Key: "mine" })));
  await denied(alice.send(new GetObjectAclCommand({ Bucket: "alice-drop", Key: "mine" })));
  // ... but does with bucket-owner-read / bucket-owner-full-control
  assert.equal(await text(alice, "alice-drop", "for-alice"), "r");
  assert.equal(await text(alice, "alice-drop", "full"), "f");
  await denied(alice.send(new GetObjectAclCommand({ Bucket: "alice-drop", Key: "for-alice" })));
  const full = await alice.send(new GetObjectAclCommand({ Bucket: "alice-drop", Key: "full" }));
  assert.equal(full.Owner?.ID, userIdOf("bob"));
  assert.deepEqual(
    full.Grants?.map((g) => [g.Grantee?.ID, g.Permission]),
    [
      [userIdOf("bob"), "FULL_CONTROL"],
      [userIdOf("alice"), "FULL_CONTROL"],
    ],
  );
  // listings name each object's owner, and an upload's initiator
  await alice.send(new PutObjectCommand({ Bucket: "alice-drop", Key: "hers", Body: "h" }));
  const up = await bob.send(new CreateMultipartUploadCommand({ Bucket: "alice-drop", Key: "big" }));
  const listed2 = await alice.send(new ListObjectsV2Command({ Bucket: "alice-drop", FetchOwner: true }));
  assert.deepEqual(
    listed2.Contents?.map((o) => [o.Key, o.Owner?.DisplayName]),
    [
      ["for-alice", "bob"],
      ["full", "bob"],
      ["hers", "alice"],
      ["mine", "bob"],
    ],
  );
  const uploads = await alice.send(new ListMultipartUploadsCommand({ Bucket: "alice-drop" }));
  assert.deepEqual(
    uploads.Uploads?.map((u) => [u.Key, u.Initiator?.ID, u.Owner?.DisplayName]),
    [["big", userIdOf("bob"), "bob"]],
  );
  await bob.send(
    new AbortMultipartUploadCommand({ Bucket: "alice-drop", Key: "big", UploadId: up.UploadId }),
  );
  const bucketAcl = await alice.send(new GetBucketAclCommand({ Bucket: "alice-drop" }));
  assert.deepEqual(bucketAcl.Owner, { ID: userIdOf("alice"), DisplayName: "alice" });
});

test("a key pair limited to buckets reaches those only (with its user's rights there)", async () => {
  await t.s3.send(new CreateBucketCommand({ Bucket: "adm-in" }));
  await t.s3.send(new CreateBucketCommand({ Bucket: "adm-other" }));
  const fn = client(LIMITED);
  await fn.send(new PutObjectCommand({ Bucket: "adm-in", Key: "x", Body: "in" }));
  assert.equal(await text(fn, "adm-in", "x"), "in");
  await denied(fn.send(new ListObjectsV2Command({ Bucket: "adm-other" })));
  await denied(fn.send(new CopyObjectCommand({ Bucket: "adm-other", Key: "y", CopySource: "adm-in/x" })));
  const names = ((await fn.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
  assert.deepEqual(names, ["adm-in"]);
  // what it wrote is its account's, so the admin reads it as any of its objects
  assert.equal(await text(t.s3, "adm-in", "x"), "in");
});

test("key pairs come and go while the store serves", async () => {
  const carol = { accessKeyId: "AKIDCAROL", secretAccessKey: "carol-secret", user: "carol" };
  const c = client(carol);
  const before = await s3Error(c.send(new ListBucketsCommand({})));
  assert.equal(before.name, "InvalidAccessKeyId");
  t.store.users.add(carol);
  await c.send(new CreateBucketCommand({ Bucket: "carol-b" }));
  t.store.users.remove(carol.accessKeyId);
  const gone = await s3Error(c.send(new ListBucketsCommand({})));
  assert.equal(gone.name, "InvalidAccessKeyId");
});

test("aws-cli and boto3 see AccessDenied in another user's bucket", async () => {
  const home = mkdtempSync(join(tmpdir(), "scar-users-cli-"));
  try {
    const env = {
      ...awsEnv(home, t.store),
      AWS_ACCESS_KEY_ID: BOB.accessKeyId,
      AWS_SECRET_ACCESS_KEY: BOB.secretAccessKey,
    };
    const ls = await run("aws", ["s3", "ls", "s3://alice-private/"], env);
    assert.notEqual(ls.code, 0);
    assert.match(ls.stderr, /AccessDenied/);
    const own = await run("aws", ["s3", "ls"], env);
    assert.equal(own.code, 0, own.stderr);
    assert.match(own.stdout, /bob-own/);
    assert.doesNotMatch(own.stdout, /alice-/);
    const py =
      "import boto3, botocore\n" +
      "s3 = boto3.client('s3', endpoint_url=ENDPOINT)\n" +
      "try:\n  s3.get_object(Bucket='alice-private', Key='a.txt')\n  print('read')\n" +
      "except botocore.exceptions.ClientError as e:\n  print(e.response['Error']['Code'])\n";
    const r = await run("python3", ["-c", py.replace("ENDPOINT", JSON.stringify(t.store.url))], env);
    assert.equal(r.stdout.trim(), "AccessDenied", r.stderr);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a browser form (POST Object) signed by another user is AccessDenied; in a public-read-write bucket it is the signer's", async () => {
  const home = mkdtempSync(join(tmpdir(), "scar-users-post-"));
  try {
    const env = {
      ...awsEnv(home, t.store),
      AWS_ACCESS_KEY_ID: BOB.accessKeyId,
      AWS_SECRET_ACCESS_KEY: BOB.secretAccessKey,
    };
    writeFileSync(join(home, "f.txt"), "form");
    const post = async (bucket: string): Promise<string> => {
      const py =
        "import boto3, botocore.config, json\n" +
        `s3 = boto3.client('s3', endpoint_url=${JSON.stringify(t.store.url)}, region_name='us-east-1', ` +
        "config=botocore.config.Config(signature_version='s3v4', s3={'addressing_style': 'path'}))\n" +
        `print(json.dumps(s3.generate_presigned_post(${JSON.stringify(bucket)}, 'posted.txt')))\n`;
      const form = await run("python3", ["-c", py], env);
      assert.equal(form.code, 0, form.stderr);
      const { url, fields } = JSON.parse(form.stdout) as { url: string; fields: Record<string, string> };
      const args = ["-s", "-w", "\n%{http_code}", url];
      for (const [k, v] of Object.entries(fields)) args.push("-F", `${k}=${v}`);
      args.push("-F", `file=@${join(home, "f.txt")}`);
      const r = await run("curl", args);
      return r.stdout;
    };
    assert.match(await post("alice-private"), /<Code>AccessDenied<\/Code>[\s\S]*\n403$/);
    assert.match(await post("alice-drop"), /\n204$/);
    const acl = await bob.send(new GetObjectAclCommand({ Bucket: "alice-drop", Key: "posted.txt" }));
    assert.equal(acl.Owner?.DisplayName, "bob");
    await denied(alice.send(new GetObjectCommand({ Bucket: "alice-drop", Key: "posted.txt" })));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a journal written before users existed loads: its buckets and objects are the first user's", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-users-old-"));
  try {
    mkdirSync(join(dir, ".scar-store"), { recursive: true });
    mkdirSync(join(dir, "legacy"));
    writeFileSync(join(dir, "legacy", "a.txt"), "old");
    const records = [
      { op: "mkb", b: "legacy", t: 1_700_000_000_000 },
      {
        op: "put",
        b: "legacy",
        o: {
          key: "a.txt",
          path: "legacy/a.txt",
          size: 3,
          etag: "149603e6c03516362a8da23f624db945",
          mtime: 1_700_000_000_000,
          headers: {},
          meta: {},
        },
      },
    ];
    writeFileSync(join(dir, ".scar-store", "journal"), records.map((r) => `${JSON.stringify(r)}\n`).join(""));
    const old = await withStore({ dataDir: dir, credentials: [CREDS, BOB] });
    const b = new S3Client({
      endpoint: old.store.url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: BOB,
    });
    try {
      assert.equal(
        await (
          await old.s3.send(new GetObjectCommand({ Bucket: "legacy", Key: "a.txt" }))
        ).Body!.transformToString(),
        "old",
      );
      const mine = (await old.s3.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name);
      assert.deepEqual(mine, ["legacy"]);
      const acl = await old.s3.send(new GetObjectAclCommand({ Bucket: "legacy", Key: "a.txt" }));
      assert.deepEqual(acl.Owner, { ID: userIdOf("scar"), DisplayName: "scar" });
      await denied(b.send(new GetObjectCommand({ Bucket: "legacy", Key: "a.txt" })));
      assert.deepEqual((await b.send(new ListBucketsCommand({}))).Buckets ?? [], []);
    } finally {
      b.destroy();
      await old.stop();
    }
    // buckets made by the admin of the day stay that user's when another user is the first one;
    // only records that name no owner follow the admin
    const byScar = await withStore({ dataDir: dir, credentials: [CREDS, BOB] });
    await byScar.s3.send(new CreateBucketCommand({ Bucket: "scar-made" }));
    await byScar.stop();
    const aliceFirst = await withStore({
      dataDir: dir,
      credentials: [ALICE, { ...CREDS, user: "scar" }, BOB],
    });
    const a2 = new S3Client({
      endpoint: aliceFirst.store.url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: ALICE,
    });
    try {
      assert.deepEqual(
        (await a2.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name),
        ["legacy"],
      );
      assert.deepEqual(
        (await aliceFirst.s3.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name),
        ["scar-made"],
      );
    } finally {
      a2.destroy();
      await aliceFirst.stop();
    }
    // the owner survives a restart (and the compaction at start-up)
    const again = await withStore({ dataDir: dir, credentials: [CREDS, BOB] });
    const b2 = new S3Client({
      endpoint: again.store.url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: BOB,
    });
    try {
      await b2.send(new CreateBucketCommand({ Bucket: "bob-after" }));
      await again.stop();
      const third = await withStore({ dataDir: dir, credentials: [CREDS, BOB] });
      const b3 = new S3Client({
        endpoint: third.store.url,
        region: "us-east-1",
        forcePathStyle: true,
        credentials: BOB,
      });
      try {
        assert.deepEqual(
          (await b3.send(new ListBucketsCommand({}))).Buckets?.map((x) => x.Name),
          ["bob-after"],
        );
        await denied(third.s3.send(new ListObjectsV2Command({ Bucket: "bob-after" })));
      } finally {
        b3.destroy();
        await third.stop();
      }
    } finally {
      b2.destroy();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
