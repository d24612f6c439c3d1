// Each function has its own key pair for the embedded store (issue 18): made at deploy, kept in the
// data dir (0600) across restarts, removed with the function, and limited to the function's
// buckets. A real container (crun/runc, network: host) signs S3 requests with it from a busybox
// shell: its own buckets list, another bucket answers AccessDenied in its log.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
} from "@aws-sdk/client-s3";
import { Engine } from "../../src/engine/engine.js";
import { parseFdl } from "../../src/fdl/index.js";
import type { FunctionSpec } from "../../src/fdl/spec.js";
import { type Fixture, makeFixture } from "./runtime/fixtures.js";
import { S3LS } from "./s3ls-shell.js";

const root = mkdtempSync(join(tmpdir(), "scar-fnkeys-"));
const IMAGE = "localhost/scar-test/busybox:1";
let fixture: Fixture;
let engine: Engine;
let admin: S3Client;

async function startEngine() {
  engine = await Engine.start({ dataDir: join(root, "data"), s3Port: 0, concurrency: 1 });
  admin = client(engine.credentials.s3);
}

function client(c: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
}

before(async () => {
  fixture = makeFixture();
  await startEngine();
  await engine.images.import(fixture.base, { format: "rootfs", tag: IMAGE, changes: ["ENV PATH=/bin"] });
});
after(async () => {
  admin.destroy();
  await engine.close();
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function spec(name: string, io: string, script: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "script.sh"), script);
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n      init_script: script.sh\n      container:\n        image: ${IMAGE}\n${io}`;
  const file = join(dir, "fn.yaml");
  writeFileSync(file, yaml);
  return { ...parseFdl(file, yaml).functions[0]!, network: "host" };
}

function keysFile(): Record<string, { accessKeyId: string; secretAccessKey: string }> {
  return JSON.parse(readFileSync(join(root, "data", "function-keys"), "utf8"));
}

test("a function's key pair reaches its own buckets; another bucket is AccessDenied in its log", async () => {
  await admin.send(new CreateBucketCommand({ Bucket: "not-yours" }));
  await admin.send(new PutObjectCommand({ Bucket: "not-yours", Key: "secret.txt", Body: "s" }));
  const script = `${S3LS}\necho "key=$AWS_ACCESS_KEY_ID"\ns3ls keys-in\ns3ls keys-out\ns3ls not-yours\n`;
  await engine.deploy(
    spec(
      "keyed",
      "      input:\n      - path: keys-in/in\n      output:\n      - path: keys-out/out\n",
      script,
    ),
  );
  await admin.send(new PutObjectCommand({ Bucket: "keys-out", Key: "out/x.txt", Body: "x" }));
  const mine = keysFile().keyed!;
  assert.equal(statSync(join(root, "data", "function-keys")).mode & 0o777, 0o600);
  assert.notEqual(mine.accessKeyId, engine.credentials.s3.accessKeyId);

  const { job, result } = await engine.invoke("keyed", {}, { sync: true });
  const out = result!.output.toString();
  assert.match(out, new RegExp(`^key=${mine.accessKeyId}$`, "m"));
  assert.match(out, /^keys-in: HTTP\/1.1 200 OK <Key>in\/<\/Key>$/m);
  assert.match(out, /^keys-out: HTTP\/1.1 200 OK <Key>out\/<\/Key><Key>out\/x.txt<\/Key>$/m);
  assert.match(out, /^not-yours: HTTP\/1.1 403 Forbidden <Code>AccessDenied<\/Code>$/m);
  assert.match(
    engine.jobs.log(job.id) ?? "",
    /^not-yours: HTTP\/1.1 403 Forbidden <Code>AccessDenied<\/Code>$/m,
  );

  // the same key pair from outside: its buckets only, with the engine's rights there
  const fn = client(mine);
  try {
    const names = ((await fn.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
    assert.deepEqual(names, ["keys-in", "keys-out"]);
  } finally {
    fn.destroy();
  }
});

test("the key pair survives a restart and goes with the function", async () => {
  const before = keysFile().keyed!;
  admin.destroy();
  await engine.close();
  await startEngine();
  assert.deepEqual(keysFile().keyed, before);
  const out = (await engine.invoke("keyed", {}, { sync: true })).result!.output.toString();
  assert.match(out, /^keys-in: HTTP\/1.1 200 OK/m);
  assert.match(out, /^not-yours: HTTP\/1.1 403 Forbidden <Code>AccessDenied<\/Code>$/m);

  assert.equal(await engine.remove("keyed"), true);
  assert.equal(keysFile().keyed, undefined);
  const fn = client(before);
  try {
    await assert.rejects(fn.send(new ListBucketsCommand({})), (e: S3ServiceException) => {
      assert.equal(e.name, "InvalidAccessKeyId");
      return true;
    });
  } finally {
    fn.destroy();
  }
});
