// The metadata journal: torn tails are dropped, damaged lines reported, and compaction while serving
// keeps every object.
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

test("a torn last line is dropped; a damaged complete line is reported and the records after it are kept", () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-journal-"));
  try {
    const p = join(dir, "journal");
    const line = (json: string) => `${(readJournalCrc(json) >>> 0).toString(16).padStart(8, "0")} ${json}\n`;
    const a = '{"op":"mkb","b":"x","t":1}';
    const b = '{"op":"mkb","b":"y","t":2}';
    // A well-formed record followed by a half-written one: the tail is torn, not damage.
    appendFileSync(p, `${line(a)}${line(b).slice(0, 15)}`);
    let r = readJournal(p);
    assert.deepEqual(r.records, [{ op: "mkb", b: "x", t: 1 }]);
    assert.deepEqual(r.damaged, []);
    assert.deepEqual(r.torn, { line: 2, offset: line(a).length, length: 15, reason: "unfinished last line" });
    assert.equal(r.completeBytes, line(a).length);
    rmSync(p);
    // A complete line whose checksum fails, between two good ones: reported with its position.
    appendFileSync(p, `${line(a)}${"0".repeat(8)} {"op":"x"}\n${line(b)}`);
    r = readJournal(p);
    assert.deepEqual(r.records, [
      { op: "mkb", b: "x", t: 1 },
      { op: "mkb", b: "y", t: 2 },
    ]);
    assert.deepEqual(r.damaged, [
      { line: 2, offset: line(a).length, length: 19, reason: "checksum mismatch" },
    ]);
    assert.equal(r.torn, null);
    rmSync(p);
    // Lines without a checksum (an earlier format, or written by hand) still load; broken JSON is damage.
    appendFileSync(p, `${a}\n{"op":"mkb","b":\n${line(b)}`);
    r = readJournal(p);
    assert.deepEqual(r.records, [
      { op: "mkb", b: "x", t: 1 },
      { op: "mkb", b: "y", t: 2 },
    ]);
    assert.equal(r.unchecked, 1);
    assert.deepEqual(
      r.damaged.map((d) => [d.line, d.reason]),
      [[2, "not valid JSON"]],
    );
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
    assert.deepEqual(readJournal(p).records, [{ op: "ack", ids: [1] }]);
    // An ack queued with a record that must be durable goes through the durable path with it.
    const committed = j.commit([{ op: "put", n: 1 }]);
    j.append([{ op: "ack", ids: [2] }]);
    await committed;
    await j.close();
    assert.ok(syncs >= 1);
    assert.deepEqual(readJournal(p).records, [
      { op: "ack", ids: [1] },
      { op: "put", n: 1 },
      { op: "ack", ids: [2] },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("records whose temp files have durable names skip the temp folder's fsync, unless batched with others", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-journal-"));
  try {
    const p = join(dir, "journal");
    let syncs = 0;
    const j = new Journal(p, async () => {
      syncs++;
    });
    await j.open();
    await j.commit([{ op: "put", n: 1 }], { beforeCommit: false });
    assert.equal(syncs, 0, "the temp folder's fsync ran for a record that needs none");
    // in one batch with a record that needs it, it runs (once)
    await Promise.all([
      j.commit([{ op: "put", n: 2 }], { beforeCommit: false }),
      j.commit([{ op: "put", n: 3 }]),
    ]);
    assert.equal(syncs, 1);
    await j.close();
    assert.deepEqual(
      readJournal(p).records.map((r) => (r as { n: number }).n),
      [1, 2, 3],
    );
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
