/**
 * Stage-out is as durable as an upload: kill -9 of a process staging outputs into the embedded store
 * (files renamed into it, or copied into temp files made ahead with durable names, see
 * embedded-provider.ts), then a restart: every output whose upload returned is there byte for byte
 * (renamed ones owned by the store's user with mode 0600), and no other object exists half-written.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { startStore } from "../../src/engine/store/index.js";

const child = new URL("./take-child.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scar-staging-crash-"));
after(() => rmSync(root, { recursive: true, force: true }));

// the child's content rule (take-child.ts), repeated here so that a wrong file cannot pass
const contentOf = (key: string) => `${key}:`.repeat(50 + ((key.length * 37) % 400));

async function stageAndKill(dataDir: string, src: string, mode: "take" | "copy"): Promise<string[]> {
  mkdirSync(src);
  const p = spawn(process.execPath, [child, dataDir, src, mode], { stdio: ["ignore", "pipe", "inherit"] });
  const acked: string[] = [];
  let buf = "";
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on("data", (d) => {
      buf += d;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      acked.push(...lines);
      if (acked.length >= 150) {
        p.kill("SIGKILL");
        resolve();
      }
    });
    p.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`the child exited by itself: ${code}`));
    });
  });
  await new Promise((r) => p.once("close", r));
  return acked;
}

test("kill -9 while outputs are renamed into the store: every acknowledged one survives, whole and the store's", async () => {
  const dataDir = join(root, "store");
  const src = join(root, "src");
  const acked = await stageAndKill(dataDir, src, "take");
  const store = await startStore({ dataDir, host: "127.0.0.1", port: 0 });
  try {
    const b = store.backend;
    for (const key of acked) {
      const o = b.head("out", key);
      const file = b.abs(o.path);
      assert.equal(readFileSync(file, "utf8"), contentOf(key), key);
      assert.equal(existsSync(join(src, key)), false, `${key} was taken by rename, not copied`);
      const st = statSync(file);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [process.getuid!(), process.getgid!(), 0o600]);
    }
    // Objects committed but not yet acknowledged when the kill came are whole too.
    for (const o of b.bucket("out").objects.values())
      assert.equal(readFileSync(b.abs(o.path), "utf8"), contentOf(o.key), o.key);
  } finally {
    await store.close();
  }
});

test("kill -9 while outputs are copied into temp files made ahead: every acknowledged one survives whole; no temp file is left", async () => {
  const dataDir = join(root, "store-copy");
  const src = join(root, "src-copy");
  const acked = await stageAndKill(dataDir, src, "copy");
  const store = await startStore({ dataDir, host: "127.0.0.1", port: 0 });
  try {
    const b = store.backend;
    for (const key of acked) {
      assert.equal(readFileSync(b.abs(b.head("out", key).path), "utf8"), contentOf(key), key);
      assert.equal(existsSync(join(src, key)), true, `${key} was copied`);
    }
    for (const o of b.bucket("out").objects.values())
      assert.equal(readFileSync(b.abs(o.path), "utf8"), contentOf(o.key), o.key);
    // the temp files made ahead and never used went at the start, with every uncommitted one
    assert.deepEqual(readdirSync(join(dataDir, ".scar-store", "tmp")), []);
  } finally {
    await store.close();
  }
});
