// A full disk under the store (a small tmpfs as its data dir): the failing upload gets an S3 error
// and leaves no temp file, later uploads work once there is room, shutdown does not hang, a restart
// on a full disk works, and the free-space reserve refuses uploads before the disk is full.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { type RunningStore, type StoreOptions, startStore } from "../../src/engine/store/index.js";
import { Journal, readJournal } from "../../src/engine/store/journal.js";

const CREDS = { accessKeyId: "diskkey", secretAccessKey: "disksecret" };
const bin = new URL("../../../bin/scar", import.meta.url).pathname;

/** Mounts an 8 MiB tmpfs, runs `fn` on it, and always unmounts it. Skips when mounting is not allowed. */
async function onSmallDisk(t: { skip(m: string): void }, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "scar-fault-disk-"));
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=8m", "scar-fault-disk", dir], {
    encoding: "utf8",
  });
  if (m.status !== 0) {
    rmdirSync(dir);
    t.skip(`cannot mount a tmpfs: ${m.stderr.trim()}`);
    return;
  }
  try {
    await fn(dir);
  } finally {
    // Lazily if something still holds it, so a failing test never leaves a mount behind.
    if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
    rmdirSync(dir);
  }
}

/** Writes a file at `path` until the disk has no byte left. */
function fill(path: string): void {
  const fd = openSync(path, "w");
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function client(url: string): S3Client {
  // One attempt: a 507 is retried by default, and the test wants to see the first answer.
  return new S3Client({
    endpoint: url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDS,
    maxAttempts: 1,
  });
}

async function start(
  dataDir: string,
  extra: Partial<StoreOptions> = {},
): Promise<{ store: RunningStore; s3: S3Client }> {
  const store = await startStore({ dataDir, port: 0, credentials: CREDS, ...extra });
  return { store, s3: client(store.url) };
}

async function rejectsWithFullDisk(p: Promise<unknown>, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    // An S3 error document with a status, not a closed connection.
    assert.ok(e instanceof S3ServiceException, `not an S3 error: ${e.name}: ${e.message}`);
    assert.equal(e.$metadata.httpStatusCode, 507);
    assert.equal(e.name, "InsufficientStorage");
    if (message) assert.match(e.message, message);
    return true;
  });
}

/**
 * Two 5 MiB uploads at once on an 8 MiB disk: each fits the free space when it starts, together they
 * do not, so the disk fills up half-way through writing (at least one of them fails there).
 */
async function overfill(s3: S3Client, bucket: string): Promise<void> {
  const results = await Promise.allSettled(
    ["one", "two"].map((k) =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: `big-${k}`, Body: Buffer.alloc(5 << 20, 2) })),
    ),
  );
  const failed = results.filter((r) => r.status === "rejected");
  assert.ok(failed.length >= 1, "both 5 MiB uploads fit on an 8 MiB disk");
  for (const f of failed) await rejectsWithFullDisk(Promise.reject(f.reason), /disk is full/);
}

const tempFiles = (dir: string) => readdirSync(join(dir, ".scar-store", "tmp"));

test("a full disk: S3 error, no temp file left, uploads work again once there is room, close and restart do not fail", {
  timeout: 120_000,
}, async (t) => {
  await onSmallDisk(t, async (dir) => {
    const logs: string[] = [];
    let { store, s3 } = await start(dir, { reserve: { bytes: 0 }, log: (m) => logs.push(m) });
    let open = true;
    try {
      await store.backend.createBucket("b");
      await s3.send(new PutObjectCommand({ Bucket: "b", Key: "before", Body: "kept" }));

      // The disk fills up half-way through writing an upload.
      await overfill(s3, "b");
      assert.deepEqual(tempFiles(dir), [], "the failed upload's temp file is left");
      assert.ok(
        logs.some((l) => /disk is full/.test(l)),
        `nothing logged: ${logs}`,
      );

      // With no byte left even 6 bytes fail, with an S3 error.
      fill(join(dir, "filler"));
      await rejectsWithFullDisk(s3.send(new PutObjectCommand({ Bucket: "b", Key: "small", Body: "6bytes" })));
      assert.deepEqual(tempFiles(dir), []);

      // Room again: uploads work.
      rmSync(join(dir, "filler"));
      await s3.send(new PutObjectCommand({ Bucket: "b", Key: "small", Body: "6bytes" }));
      const got = await s3.send(new GetObjectCommand({ Bucket: "b", Key: "small" }));
      assert.equal(await got.Body!.transformToString(), "6bytes");

      // Closing on a full disk finishes (the test's timeout is the only guard against a hang).
      fill(join(dir, "filler"));
      s3.destroy();
      open = false;
      await store.close();

      // A restart on a full disk, with an upload a crash left in tmp/: tmp/ is emptied first, so the
      // lock file can be written, and the store serves what it has.
      rmSync(join(dir, "filler"));
      writeFileSync(join(dir, ".scar-store", "tmp", "left-by-a-crash"), Buffer.alloc(1 << 20, 3));
      fill(join(dir, "filler"));
      ({ store, s3 } = await start(dir, { reserve: { bytes: 0 } }));
      open = true;
      assert.deepEqual(tempFiles(dir), []);
      const kept = await s3.send(new GetObjectCommand({ Bucket: "b", Key: "before" }));
      assert.equal(await kept.Body!.transformToString(), "kept");
      await rejectsWithFullDisk(
        s3.send(new PutObjectCommand({ Bucket: "b", Key: "big", Body: Buffer.alloc(2 << 20, 2) })),
      );
    } finally {
      if (open) {
        s3.destroy();
        await store.close();
      }
    }
  });
});

test("the free-space reserve refuses an upload before the disk is full, and smaller ones still fit", {
  timeout: 60_000,
}, async (t) => {
  await onSmallDisk(t, async (dir) => {
    const { store, s3 } = await start(dir, { reserve: { bytes: 4 << 20 } });
    try {
      await store.backend.createBucket("b");
      const before = statfsSync(dir);
      await rejectsWithFullDisk(
        s3.send(new PutObjectCommand({ Bucket: "b", Key: "too-big", Body: Buffer.alloc(5 << 20, 1) })),
        /reserve/,
      );
      // Refused before a byte was written.
      assert.deepEqual(tempFiles(dir), []);
      assert.equal(statfsSync(dir).bfree, before.bfree);
      await s3.send(new PutObjectCommand({ Bucket: "b", Key: "fits", Body: Buffer.alloc(1 << 20, 1) }));
    } finally {
      s3.destroy();
      await store.close();
    }
  });
});

test("scar store serve on a full disk: the S3 error, a log line, and SIGTERM ends it", {
  timeout: 60_000,
}, async (t) => {
  await onSmallDisk(t, async (dir) => {
    mkdirSync(join(dir, "data"));
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(
      bin,
      [
        "store",
        "serve",
        "--data-dir",
        join(dir, "data"),
        "--port",
        "0",
        "--reserve",
        "0",
        "--access-key",
        CREDS.accessKeyId,
        "--secret-key",
        CREDS.secretAccessKey,
      ],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d) => {
          out += d;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`store exited early with ${code}: ${stderr}`)));
      });
      const s3 = client(url);
      await s3.send(new (await import("@aws-sdk/client-s3")).CreateBucketCommand({ Bucket: "bkt" }));
      await overfill(s3, "bkt");
      assert.deepEqual(readdirSync(join(dir, "data", ".scar-store", "tmp")), []);
      s3.destroy();
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /disk is full/);
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  });
});

test("a journal batch that fails on a full disk is cut off again: the next one is not glued to half a line", {
  timeout: 60_000,
}, async (t) => {
  await onSmallDisk(t, async (dir) => {
    const path = join(dir, "journal");
    const j = new Journal(path);
    await j.open();
    try {
      await j.commit([{ op: "mkb", b: "first", t: 1 }]);
      fill(join(dir, "filler"));
      // The file's last page has room for part of this record: the write stops half-way.
      await assert.rejects(j.commit([{ op: "mkb", b: "x".repeat(20_000), t: 2 }]), /ENOSPC/);
      let r = readJournal(path);
      assert.deepEqual(r.damaged, []);
      assert.equal(r.torn, null, "half a record was left in the journal");
      rmSync(join(dir, "filler"));
      await j.commit([{ op: "mkb", b: "third", t: 3 }]);
      r = readJournal(path);
      assert.deepEqual(r.damaged, []);
      assert.deepEqual(
        r.records.map((x) => (x as { b: string }).b),
        ["first", "third"],
      );
    } finally {
      await j.close();
    }
  });
});
