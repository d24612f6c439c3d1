// Damage to the store's journal: a record that fails its check is reported with its position and the
// store refuses to start without changing anything; `scar store fsck` reports it, `scar store repair`
// keeps the journal aside and rebuilds what the damaged lines held from the files on disk. A torn
// tail (an unfinished last write) is dropped without fuss.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { StoreDamagedError } from "../../src/engine/store/backend.js";
import { startStore } from "../../src/engine/store/index.js";
import { withStore } from "../engine/store/helpers.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;

function scar(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const body = (bucket: string, key: string) => `${bucket}/${key} says hello`;

/** A data dir with two buckets and 25 objects, its journal compacted (as after any restart). */
async function populated(): Promise<{ dir: string; journal: string; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "scar-fault-journal-"));
  const a = await withStore({ dataDir: dir });
  for (const [bucket, n] of [
    ["alpha", 20],
    ["beta", 5],
  ] as const) {
    await a.store.backend.createBucket(bucket);
    for (let i = 0; i < n; i++) {
      await a.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `k/${i}`, Body: body(bucket, `k/${i}`) }));
    }
  }
  await a.stop();
  // A start rewrites the journal compactly: mkb alpha, its puts, mkb beta, its puts, seq.
  await (await withStore({ dataDir: dir })).stop();
  const journal = join(dir, ".scar-store", "journal");
  return { dir, journal, lines: readFileSync(journal, "utf8").split("\n").slice(0, -1) };
}

/** Changes one byte in the JSON of line `n` (1-based). */
function corrupt(journal: string, n: number): number {
  const buf = readFileSync(journal);
  let offset = 0;
  for (let i = 1; i < n; i++) offset = buf.indexOf(0x0a, offset) + 1;
  buf[offset + 20]! ^= 0x01;
  writeFileSync(journal, buf);
  return offset;
}

async function contents(dir: string): Promise<Map<string, string>> {
  const t = await withStore({ dataDir: dir });
  try {
    const out = new Map<string, string>();
    const buckets = (await t.s3.send(new ListBucketsCommand({}))).Buckets ?? [];
    for (const b of buckets) {
      const listed = (await t.s3.send(new ListObjectsV2Command({ Bucket: b.Name! }))).Contents ?? [];
      for (const o of listed) {
        const r = await t.s3.send(new GetObjectCommand({ Bucket: b.Name!, Key: o.Key! }));
        out.set(`${b.Name}/${o.Key}`, await r.Body!.transformToString());
      }
    }
    return out;
  } finally {
    await t.stop();
  }
}

function expected(): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < 20; i++) m.set(`alpha/k/${i}`, body("alpha", `k/${i}`));
  for (let i = 0; i < 5; i++) m.set(`beta/k/${i}`, body("beta", `k/${i}`));
  return m;
}

for (const where of ["start", "middle", "end"] as const) {
  test(`a corrupted journal record at the ${where}: refused with its position, fsck reports it, repair restores every object`, async () => {
    const { dir, journal, lines } = await populated();
    try {
      // Line 1 creates bucket alpha; line 10 is one of alpha's objects; the last line is the counter.
      const line = where === "start" ? 1 : where === "middle" ? 10 : lines.length;
      const offset = corrupt(journal, line);
      const damaged = readFileSync(journal);

      await assert.rejects(startStore({ dataDir: dir, port: 0 }), (e: Error) => {
        assert.ok(e instanceof StoreDamagedError, String(e));
        assert.match(e.message, new RegExp(`${journal}.* line ${line} \\(byte offset ${offset},`));
        assert.ok(e.message.includes(`scar store fsck --data-dir ${dir}`), e.message);
        assert.ok(e.message.includes(`scar store repair --data-dir ${dir}`), e.message);
        return true;
      });
      // Refusing changed nothing: the journal is byte for byte the damaged one, no lock is left.
      assert.deepEqual(readFileSync(journal), damaged);
      assert.equal(existsSync(join(dir, ".scar-store", "lock")), false);

      const fsck = await scar(["store", "fsck", "--data-dir", dir, "--json"]);
      assert.equal(fsck.code, 1, fsck.stderr);
      const report = JSON.parse(fsck.stdout);
      assert.deepEqual(
        report.damaged.map((d: { line: number; offset: number }) => [d.line, d.offset]),
        [[line, offset]],
      );
      assert.equal(report.records, lines.length - 1, "every other record is still read");
      if (where === "start") {
        assert.deepEqual(report.lostBuckets, ["alpha"]);
        assert.equal(report.orphans.length, 20);
      } else if (where === "middle") {
        assert.deepEqual(
          report.orphans.map((o: { bucket: string; key: string }) => `${o.bucket}/${o.key}`),
          ["alpha/k/16"],
        );
      } else assert.equal(report.orphans.length, 0);
      const human = await scar(["store", "fsck", "--data-dir", dir]);
      assert.equal(human.code, 1);
      assert.match(human.stdout, new RegExp(`DAMAGED line ${line} \\(byte offset ${offset}`));
      assert.match(human.stdout, /scar store repair --data-dir/);

      const repaired = await scar(["store", "repair", "--data-dir", dir, "--json"]);
      assert.equal(repaired.code, 0, repaired.stderr);
      const r = JSON.parse(repaired.stdout);
      // The damaged journal was kept aside before anything was rewritten.
      assert.deepEqual(readFileSync(r.savedJournal), damaged);
      assert.equal(r.adopted.length, where === "start" ? 20 : where === "middle" ? 1 : 0);

      assert.deepEqual(await contents(dir), expected());
      const again = await scar(["store", "fsck", "--data-dir", dir]);
      assert.equal(again.code, 0, again.stdout);
      assert.match(again.stdout, /clean$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("a torn tail (an unfinished last write) is dropped silently and everything before it is kept", async () => {
  const { dir, journal, lines } = await populated();
  try {
    // Cut the last line (the counter) in the middle, as a crash during its write leaves it.
    const size = readFileSync(journal).length;
    truncateSync(journal, size - Math.floor(lines.at(-1)!.length / 2));
    const fsck = await scar(["store", "fsck", "--data-dir", dir, "--json"]);
    const report = JSON.parse(fsck.stdout);
    assert.equal(report.torn.line, lines.length);
    assert.deepEqual(report.damaged, []);
    assert.equal(fsck.code, 0, "an unfinished write is not damage");
    assert.deepEqual(await contents(dir), expected());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("journals written without checksums (earlier versions) still load", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-fault-journal-"));
  try {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, ".scar-store"), { recursive: true });
    mkdirSync(join(dir, "old"), { recursive: true });
    writeFileSync(join(dir, "old", "a.txt"), "old bytes");
    const put = {
      op: "put",
      b: "old",
      o: { key: "a.txt", path: "old/a.txt", size: 9, etag: "x", mtime: 1, headers: {}, meta: {} },
    };
    writeFileSync(
      join(dir, ".scar-store", "journal"),
      `${JSON.stringify({ op: "mkb", b: "old", t: 1 })}\n${JSON.stringify(put)}\n`,
    );
    assert.deepEqual(await contents(dir), new Map([["old/a.txt", "old bytes"]]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fsck and repair refuse a data dir a running store holds", async () => {
  const t = await withStore();
  try {
    for (const cmd of ["fsck", "repair"]) {
      const r = await scar(["store", cmd, "--data-dir", t.dir]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`in use by process ${process.pid}`));
    }
  } finally {
    await t.stop();
  }
});

test("repair forgets objects whose file is gone and sets aside files whose key cannot be known", async () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-fault-journal-"));
  try {
    const a = await withStore({ dataDir: dir });
    await a.store.backend.createBucket("gamma");
    // "x//y" has an empty segment, so its bytes live under .scar-store/keys with a hashed name.
    for (const k of ["x//y", "plain", "gone"]) {
      await a.s3.send(new PutObjectCommand({ Bucket: "gamma", Key: k, Body: `${k} body` }));
    }
    const hashed = a.store.backend.head("gamma", "x//y").path;
    await a.stop();
    await (await withStore({ dataDir: dir })).stop();
    rmSync(join(dir, "gamma", "gone"));
    // The hashed key's record is lost: its file cannot be adopted (its name is a hash of the key).
    const journal = join(dir, ".scar-store", "journal");
    const lines = readFileSync(journal, "utf8").split("\n");
    const line = lines.findIndex((l) => l.includes('"key":"x//y"')) + 1;
    corrupt(journal, line);

    const fsck = JSON.parse((await scar(["store", "fsck", "--data-dir", dir, "--json"])).stdout);
    assert.deepEqual(
      fsck.missing.map((m: { key: string }) => m.key),
      ["gone"],
    );
    assert.deepEqual(
      fsck.orphans.map((o: { path: string; key?: string }) => [o.path, o.key]),
      [[hashed, undefined]],
    );
    const repaired = await scar(["store", "repair", "--data-dir", dir]);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.match(repaired.stdout, /forgotten \(file gone\): gamma\/gone/);
    assert.match(repaired.stdout, /set aside: .*-> \.scar-store\/lost\+found\//);
    const r = /set aside: \S+ -> (\S+)/.exec(repaired.stdout)!;
    assert.equal(readFileSync(join(dir, r[1]!), "utf8"), "x//y body");
    assert.deepEqual(await contents(dir), new Map([["gamma/plain", "plain body"]]));
    assert.equal((await scar(["store", "fsck", "--data-dir", dir])).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
