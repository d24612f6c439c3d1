import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { EmbeddedStoreProvider } from "../../src/engine/embedded-provider.js";
import { type RunningStore, type StoreEvent, startStore } from "../../src/engine/store/index.js";
import { StorageError } from "../../src/storage/types.js";

const root = mkdtempSync(join(tmpdir(), "scar-embedded-"));
const events: StoreEvent[] = [];
let store: RunningStore;
let provider: EmbeddedStoreProvider;

before(async () => {
  store = await startStore({
    dataDir: join(root, "store"),
    host: "127.0.0.1",
    port: 0,
    onCommit: (ev) => void events.push(...ev),
  });
  await store.backend.createBucket("media");
  await store.backend.setNotification("media", {
    rules: [
      {
        id: "r1",
        kind: "Lambda",
        arn: "arn:scar:lambda:local:function:f",
        events: ["s3:ObjectCreated:*"],
        filters: [{ name: "prefix", value: "in/" }],
      },
    ],
    eventBridge: false,
  });
  provider = new EmbeddedStoreProvider("s3.default", store.backend);
});
after(async () => {
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

test("upload commits like a PutObject: S3 clients read it, with S3's ETag, and notifications fire", async () => {
  const src = join(root, "src.txt");
  writeFileSync(src, "in-process bytes");
  await provider.upload(src, "media", "in/sub dir/é.txt");
  const s3 = new S3Client({
    endpoint: store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "scar", secretAccessKey: "scar-secret-key" },
  });
  const r = await s3.send(new GetObjectCommand({ Bucket: "media", Key: "in/sub dir/é.txt" }));
  assert.equal(await r.Body!.transformToString(), "in-process bytes");
  assert.equal(r.ETag, `"${createHash("md5").update("in-process bytes").digest("hex")}"`);
  s3.destroy();
  assert.equal(events.length, 1);
  assert.equal(events[0]!.key, "in/sub dir/é.txt");
  assert.equal(events[0]!.record.eventName, "s3:ObjectCreated:Put", "the DESIGN.md event contract");
});

test("download copies the object's bytes", async () => {
  const dest = join(root, "dest.txt");
  await provider.download("media", "in/sub dir/é.txt", dest);
  assert.equal(readFileSync(dest, "utf8"), "in-process bytes");
});

test("missing objects and buckets are storage errors naming them", async () => {
  await assert.rejects(
    provider.download("media", "nope", join(root, "x")),
    (e: unknown) =>
      e instanceof StorageError && /'nope' from bucket 'media' failed: NoSuchKey/.test(e.message),
  );
  const src = join(root, "src.txt");
  await assert.rejects(
    provider.upload(src, "nobucket", "k"),
    (e: unknown) => e instanceof StorageError && /NoSuchBucket/.test(e.message),
  );
});

test("a folder marker is an empty application/x-directory object, committed like any upload", async () => {
  await provider.putFolderMarker("media", "in/folder/");
  const o = store.backend.head("media", "in/folder/");
  assert.equal(o.size, 0);
  assert.equal(o.headers["content-type"], "application/x-directory");
  assert.equal(o.etag, createHash("md5").digest("hex"));
  assert.equal(
    events.at(-1)!.key,
    "in/folder/",
    "its notification fires (the engine ignores keys ending in '/')",
  );
});
