import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { EmbeddedStoreProvider } from "../../src/engine/embedded-provider.js";
import { type RunningStore, type StoreEvent, startStore } from "../../src/engine/store/index.js";
import { parseFdl } from "../../src/fdl/index.js";
import { StorageError } from "../../src/storage/types.js";
import { HostExecutor } from "../../src/supervisor/host-executor.js";
import { invoke } from "../../src/supervisor/index.js";

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

/** The stored file of an object (after its rename into place has landed). */
function storedFile(key: string): string {
  return store.backend.abs(store.backend.head("media", key).path);
}

test("download copies by default: appending to or overwriting the copy leaves the stored object as it was", async () => {
  const src = join(root, "keep.txt");
  writeFileSync(src, "stored bytes");
  await provider.upload(src, "media", "in/keep.txt");
  const dest = join(root, "keep-copy.txt");
  await provider.download("media", "in/keep.txt", dest);
  assert.notEqual(statSync(dest).ino, statSync(storedFile("in/keep.txt")).ino, "a file of its own");
  appendFileSync(dest, " and more");
  assert.equal(readFileSync(storedFile("in/keep.txt"), "utf8"), "stored bytes");
  writeFileSync(dest, "replaced");
  assert.equal(readFileSync(storedFile("in/keep.txt"), "utf8"), "stored bytes");
});

test("download with mayLink hard-links the stored file; a later overwrite of the key leaves the link's bytes alone", async () => {
  const dest = join(root, "linked.txt");
  await provider.download("media", "in/keep.txt", dest, { mayLink: true });
  assert.equal(statSync(dest).ino, statSync(storedFile("in/keep.txt")).ino, "the same inode");
  const src = join(root, "keep2.txt");
  writeFileSync(src, "version 2");
  await provider.upload(src, "media", "in/keep.txt");
  assert.equal(readFileSync(dest, "utf8"), "stored bytes", "an overwrite is a new file, renamed over");
  assert.equal(readFileSync(storedFile("in/keep.txt"), "utf8"), "version 2");
  // Where it cannot link (another file system), it copies.
  if (existsSync("/dev/shm")) {
    const other = mkdtempSync("/dev/shm/scar-embedded-");
    try {
      await provider.download("media", "in/keep.txt", join(other, "x"), { mayLink: true });
      assert.equal(readFileSync(join(other, "x"), "utf8"), "version 2");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }
});

/**
 * What is in the store's temp folder but the empty temp files made ahead for copies (their names
 * made durable at once, backend.durableTempPath).
 */
function leftInTmp(): string[] {
  const tmp = join(root, "store", ".scar-store", "tmp");
  return readdirSync(tmp).filter(
    (n) => lstatSync(join(tmp, n)).size > 0 || !lstatSync(join(tmp, n)).isFile(),
  );
}

test("upload with consume takes the file by rename, made the store's own (owner, 0600), fsynced and committed like a PutObject", async () => {
  const src = join(root, "out.bin");
  writeFileSync(src, "a container's output");
  chownSync(src, 1000, 1000);
  chmodSync(src, 0o4755); // setuid, as a script could leave it
  const ino = statSync(src).ino;
  const before = events.length;
  await provider.upload(src, "media", "in/out.bin", { consume: true });
  assert.equal(existsSync(src), false, "the file was taken, not copied");
  const st = statSync(storedFile("in/out.bin"));
  assert.equal(st.ino, ino, "the same inode, renamed");
  assert.equal(st.uid, process.getuid!());
  assert.equal(st.gid, process.getgid!());
  assert.equal(st.mode & 0o7777, 0o600, "no setuid bit, nobody else's permissions");
  const o = store.backend.head("media", "in/out.bin");
  assert.equal(o.size, "a container's output".length);
  assert.equal(o.etag, createHash("md5").update("a container's output").digest("hex"));
  assert.equal(events.length, before + 1, "its notification fires");
  assert.deepEqual(leftInTmp(), [], "nothing left in tmp");
});

test("a copy is written into a temp file made ahead, whose name was durable before its commit", async () => {
  const tmp = await store.backend.durableTempPath();
  const abs = store.backend.abs(tmp);
  assert.ok(tmp.startsWith(join(".scar-store", "tmp")), tmp);
  assert.equal(statSync(abs).size, 0, "it exists (made with the others), empty");
  rmSync(abs);
  const src = join(root, "copied.txt");
  writeFileSync(src, "copied bytes");
  await provider.upload(src, "media", "in/copied.txt");
  assert.equal(readFileSync(storedFile("in/copied.txt"), "utf8"), "copied bytes");
  assert.equal(readFileSync(src, "utf8"), "copied bytes", "left where it was");
  assert.deepEqual(leftInTmp(), []);
});

test("upload with consume copies a file it must not take: another name shares it, or it is on another file system", async () => {
  const src = join(root, "shared.txt");
  writeFileSync(src, "shared bytes");
  linkSync(src, join(root, "shared-2.txt"));
  await provider.upload(src, "media", "in/shared.txt", { consume: true });
  assert.equal(readFileSync(src, "utf8"), "shared bytes", "left where it was");
  assert.notEqual(statSync(storedFile("in/shared.txt")).ino, statSync(src).ino);
  appendFileSync(join(root, "shared-2.txt"), "!");
  assert.equal(readFileSync(storedFile("in/shared.txt"), "utf8"), "shared bytes");
  if (existsSync("/dev/shm")) {
    const other = mkdtempSync("/dev/shm/scar-embedded-");
    try {
      writeFileSync(join(other, "x"), "elsewhere");
      await provider.upload(join(other, "x"), "media", "in/elsewhere.txt", { consume: true });
      assert.equal(readFileSync(storedFile("in/elsewhere.txt"), "utf8"), "elsewhere");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }
});

test("upload with consume never follows a link put where a file was listed, and leaves nothing behind", async () => {
  const secret = join(root, "secret.txt");
  writeFileSync(secret, "host secret");
  const src = join(root, "sneaky.txt");
  symlinkSync(secret, src);
  await assert.rejects(
    provider.upload(src, "media", "in/sneaky.txt", { consume: true }),
    (e: unknown) => e instanceof StorageError,
  );
  assert.throws(() => store.backend.head("media", "in/sneaky.txt"), /NoSuchKey|not exist/i);
  assert.equal(readFileSync(secret, "utf8"), "host secret");
  assert.deepEqual(leftInTmp(), []);
});

test("stage-out takes a file only at its last upload, and never when the files are kept for the answer", async () => {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "s.sh"), 'echo twice > "$TMP_OUTPUT_DIR/both.txt"\n');
  const yaml =
    "functions:\n  aws:\n  - lambda:\n      name: two-outputs\n      init_script: s.sh\n      container:\n        image: busybox\n      output:\n      - path: media/copy-a\n      - path: media/copy-b\n";
  writeFileSync(join(dir, "f.yaml"), yaml);
  const f = parseFdl(join(dir, "f.yaml"), yaml).functions[0]!;
  const common = {
    fn: f,
    executor: new HostExecutor(),
    storage: () => provider,
    workRoot: join(root, "work"),
  };
  const r = await invoke({ ...common, event: {} });
  assert.equal(r.reason, "ok", r.log.join("\n"));
  assert.equal(readFileSync(storedFile("copy-a/both.txt"), "utf8"), "twice\n");
  assert.equal(readFileSync(storedFile("copy-b/both.txt"), "utf8"), "twice\n");
  const kept = await invoke({ ...common, event: {}, keepOutputs: { maxBytes: 1024 } });
  assert.equal(kept.reason, "ok", kept.log.join("\n"));
  assert.equal(kept.kept?.kind, "files");
  assert.deepEqual(
    kept.kept?.kind === "files" ? kept.kept.files.map((x) => [x.rel, x.data.toString()]) : [],
    [["both.txt", "twice\n"]],
  );
});
