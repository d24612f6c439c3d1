// The metadata journal: torn tails are dropped, and compaction while serving keeps every object.
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { Journal, readJournal } from "../../../src/engine/store/journal.js";
import { withStore } from "./helpers.js";

test("a torn last line is ignored; earlier records are kept", () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-journal-"));
  try {
    const p = join(dir, "journal");
    appendFileSync(p, `${"0".repeat(8)} {"op":"x"}\n`);
    assert.deepEqual(readJournal(p), []);
    rmSync(p);
    // A well-formed record followed by a half-written one.
    const json = '{"op":"mkb","b":"x","t":1}';
    const crc = (readJournalCrc(json) >>> 0).toString(16).padStart(8, "0");
    appendFileSync(p, `${crc} ${json}\n${crc} {"op":"mk`);
    assert.deepEqual(readJournal(p), [{ op: "mkb", b: "x", t: 1 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("records safe to lose (acks) skip the commit's fsyncs; they stay in order with committed ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-journal-"));
  try {
    const p = join(dir, "journal");
    let syncs = 0;
    const j = new Journal(p, async () => {
      syncs++;
    });
    await j.open();
    j.append([{ op: "ack", ids: [1] }]);
    await j.exclusive(async () => {}); // waits until that batch is written
    assert.equal(syncs, 0, "an ack-only batch ran the temp folder's fsync");
    assert.deepEqual(readJournal(p), [{ op: "ack", ids: [1] }]);
    // An ack queued with a record that must be durable goes through the durable path with it.
    const committed = j.commit([{ op: "put", n: 1 }]);
    j.append([{ op: "ack", ids: [2] }]);
    await committed;
    await j.close();
    assert.ok(syncs >= 1);
    assert.deepEqual(readJournal(p), [
      { op: "ack", ids: [1] },
      { op: "put", n: 1 },
      { op: "ack", ids: [2] },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function readJournalCrc(s: string): number {
  let c = ~0 >>> 0;
  for (const b of Buffer.from(s)) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

test("compaction while serving: concurrent writes survive it and a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-compact-"));
  try {
    const a = await withStore({ dataDir: dir, compactBytes: 8192 });
    await a.store.backend.createBucket("c");
    const want = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const key = `k${i}`;
          const body = `round ${round} of ${key}`;
          await a.s3.send(new PutObjectCommand({ Bucket: "c", Key: key, Body: body }));
          want.set(key, body);
        }),
      );
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          await a.s3.send(new DeleteObjectCommand({ Bucket: "c", Key: `k${i * 4}` }));
          want.delete(`k${i * 4}`);
        }),
      );
    }
    const lines = readFileSync(join(dir, ".scar-store", "journal"), "utf8").split("\n").length;
    // 300 changes were made; a compacted journal holds about one line per live object.
    assert.ok(lines < 200, `journal has ${lines} lines`);
    await a.stop();
    const b = await withStore({ dataDir: dir });
    const listed = (await b.s3.send(new ListObjectsV2Command({ Bucket: "c" })))
      .Contents!.map((c) => c.Key!)
      .sort();
    assert.deepEqual(listed, [...want.keys()].sort());
    for (const [k, v] of want) {
      const r = await b.s3.send(new GetObjectCommand({ Bucket: "c", Key: k }));
      assert.equal(await r.Body!.transformToString(), v);
    }
    await b.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
