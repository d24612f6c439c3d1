// Reads racing overwrites of one key, and overwrites racing deletes, must see bytes that match the
// metadata they get and leave the folder exactly as the journal says (also after a restart), however
// the file-system steps of the commits interleave.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, readdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import type { Backend, StoreEvent } from "../../../src/engine/store/backend.js";
import { withStore } from "./helpers.js";

const md5 = (b: Buffer | string) => createHash("md5").update(b).digest("hex");

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size + 1);
  let got = 0;
  for (let n = 1; n > 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, got);
  closeSync(fd);
  return buf.subarray(0, got);
}

/** A body that says which writer and round made it; sizes vary so short and long reads both happen. */
function body(writer: number, round: number): string {
  const head = `writer ${writer} round ${round} `;
  return head + "x".repeat(((writer * 7 + round * 13) % 9) * 1000 + (writer === 0 ? 300 * 1024 : 0));
}

test("reads racing overwrites get the bytes of the metadata they get, also inside the commit hook", async () => {
  let backend: Backend | null = null;
  const seen: string[] = [];
  const problems: string[] = [];
  const t = await withStore({
    onCommit: (events: StoreEvent[]) => {
      // The hook runs while the committed file is still being renamed into place.
      for (const e of events) {
        const { meta, fd } = backend!.openObject(e.bucket, e.key);
        const bytes = readAll(fd, meta.size);
        if (bytes.length !== meta.size || md5(bytes) !== meta.etag)
          problems.push(
            `${e.key}: ${bytes.length} bytes, md5 ${md5(bytes)}, metadata ${meta.size} ${meta.etag}`,
          );
        seen.push(meta.etag);
      }
    },
  });
  backend = t.store.backend;
  try {
    await backend.createBucket("race");
    await t.s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: "race",
        NotificationConfiguration: {
          QueueConfigurations: [
            { Id: "q", QueueArn: "arn:aws:sqs:us-east-1:1:q", Events: ["s3:ObjectCreated:*"] },
          ],
        },
      }),
    );
    await t.s3.send(new PutObjectCommand({ Bucket: "race", Key: "hot", Body: body(9, 0) }));
    const bodies = new Map<string, string>();
    let writing = true;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let round = 1; round <= 15; round++) {
        const b = body(w, round);
        bodies.set(md5(b), b);
        await t.s3.send(new PutObjectCommand({ Bucket: "race", Key: "hot", Body: b }));
      }
    });
    bodies.set(md5(body(9, 0)), body(9, 0));
    let reads = 0;
    const readers = Array.from({ length: 4 }, async () => {
      while (writing) {
        // (A hung test is worse than a failed one: a reader's failure stops it.)
        const r = await t.s3.send(new GetObjectCommand({ Bucket: "race", Key: "hot" }));
        const text = await r.Body!.transformToString();
        const etag = r.ETag!.replace(/"/g, "");
        assert.equal(md5(text), etag, "a GET's bytes match its ETag");
        assert.equal(bodies.get(etag), text);
        assert.equal(Number(r.ContentLength), Buffer.byteLength(text));
        reads++;
      }
    });
    try {
      await Promise.all(writers);
    } finally {
      writing = false;
      // A failed reader stops reading; the others stop once the writers are done.
      await Promise.allSettled(readers);
    }
    await Promise.all(readers);
    assert.ok(reads > 0);
    assert.deepEqual(problems, []);
    assert.equal(seen.length, 91);
    // The last committed object is at its plain path, and no temp file is left.
    const final = await t.s3.send(new GetObjectCommand({ Bucket: "race", Key: "hot" }));
    assert.equal(readFileSync(join(t.dir, "race", "hot"), "utf8"), await final.Body!.transformToString());
    assert.deepEqual(readdirSync(join(t.dir, ".scar-store", "tmp")), []);
  } finally {
    await t.stop();
  }
});

test("overwrites and deletes racing on the same keys leave the folder as the journal says", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-race-"));
  try {
    const a = await withStore({ dataDir: dir });
    await a.store.backend.createBucket("r");
    const keys = ["k0", "k1", "d/k2", "d/k3"];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let round = 0; round < 12; round++) {
          const key = keys[(w + round) % keys.length]!;
          if ((w + round) % 3 === 0) await a.s3.send(new DeleteObjectCommand({ Bucket: "r", Key: key }));
          else await a.s3.send(new PutObjectCommand({ Bucket: "r", Key: key, Body: body(w, round) }));
        }
      }),
    );
    const state = async (s: typeof a) => {
      const listed = ((await s.s3.send(new ListObjectsV2Command({ Bucket: "r" }))).Contents ?? []).map(
        (c) => c.Key!,
      );
      const out = new Map<string, string>();
      for (const k of listed) {
        const r = await s.s3.send(new GetObjectCommand({ Bucket: "r", Key: k }));
        const text = await r.Body!.transformToString();
        assert.equal(md5(text), r.ETag!.replace(/"/g, ""));
        // Every live key is a plain file holding exactly its bytes.
        assert.equal(readFileSync(join(dir, "r", k), "utf8"), text);
        out.set(k, text);
      }
      // ... and there is no other file: deleted keys left nothing behind.
      const files = readdirSync(join(dir, "r"), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath ?? e.path, e.name).slice(join(dir, "r").length + 1))
        .sort();
      assert.deepEqual(files, [...out.keys()].sort());
      assert.deepEqual(readdirSync(join(dir, ".scar-store", "tmp")), []);
      return out;
    };
    const before = await state(a);
    await a.stop();
    const b = await withStore({ dataDir: dir });
    assert.deepEqual(await state(b), before);
    await b.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tag updates racing overwrites and deletes leave the same objects, metadata and bytes after a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-tag-race-"));
  try {
    const a = await withStore({ dataDir: dir });
    await a.store.backend.createBucket("t");
    const keys = ["a", "b"];
    for (const k of keys) await a.s3.send(new PutObjectCommand({ Bucket: "t", Key: k, Body: body(0, 0) }));
    let writing = true;
    // Tag updates straight on the backend, as fast as they go (over HTTP they would rarely overlap a
    // commit), while PUTs and DELETEs of the same keys commit.
    const taggers = Array.from({ length: 2 }, async (_, w) => {
      for (let n = 0; writing; n++) {
        await a.store.backend
          .updateObject("t", keys[n % keys.length]!, (o) => ({ ...o, tags: [["w", `${w}-${n}`]] }))
          .catch((e: { code?: string }) => assert.equal(e.code, "NoSuchKey"));
        if (n % 8 === 0) await new Promise((r) => setImmediate(r));
      }
    });
    try {
      await Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let round = 1; round <= 15; round++) {
            const key = keys[(w + round) % keys.length]!;
            if (round % 5 === 0) await a.s3.send(new DeleteObjectCommand({ Bucket: "t", Key: key }));
            else await a.s3.send(new PutObjectCommand({ Bucket: "t", Key: key, Body: body(w, round) }));
          }
        }),
      );
    } finally {
      writing = false;
      await Promise.all(taggers);
    }
    const state = async (s: typeof a) => {
      const out = new Map<string, string>();
      const listed = (await s.s3.send(new ListObjectsV2Command({ Bucket: "t" }))).Contents ?? [];
      for (const c of listed) {
        const r = await s.s3.send(new GetObjectCommand({ Bucket: "t", Key: c.Key! }));
        const text = await r.Body!.transformToString();
        // the metadata describes the bytes that are there
        assert.equal(md5(text), r.ETag!.replace(/"/g, ""), `${c.Key}: ETag and bytes agree`);
        assert.equal(Number(r.ContentLength), Buffer.byteLength(text));
        out.set(c.Key!, `${r.ETag} ${text}`);
      }
      return out;
    };
    let before: Map<string, string>;
    try {
      before = await state(a);
    } finally {
      await a.stop();
    }
    const b = await withStore({ dataDir: dir });
    try {
      assert.deepEqual(await state(b), before);
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
