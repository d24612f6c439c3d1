/**
 * What the job-database fault tests share: a scratch folder whose small tmpfs mounts are always
 * undone (also when a test fails), a way to fill such a disk, an engine whose job database is on
 * one, and a busybox function on a running engine.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { startApi } from "../../src/engine/api/index.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";

export interface Scratch {
  /** the temp folder, removed after the file's tests */
  root: string;
  /** mounts a tmpfs of `size` (e.g. "4m") on `dir`, creating it; returns `dir` */
  mountTmpfs(dir: string, size: string): string;
  /** unmounts `dir` now rather than after the tests */
  unmount(dir: string): void;
}

/** A temp folder named `prefix…`; what is still mounted in it is lazily unmounted before removal. */
export function scratch(prefix: string): Scratch {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const mounts = new Set<string>();
  after(() => {
    for (const m of mounts) execFileSync("umount", ["-l", m]);
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    mountTmpfs(dir, size) {
      mkdirSync(dir, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
      mounts.add(dir);
      return dir;
    },
    unmount(dir) {
      execFileSync("umount", [dir]);
      mounts.delete(dir);
    },
  };
}

/** Writes zeros to `dir`/filler until the file system says it is full; returns what removes it. */
export function fill(dir: string): () => void {
  const file = join(dir, "filler");
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
  return () => rmSync(file);
}

/**
 * Imports the busybox root file system `rootfs` as the function's image and creates the function
 * through the API at `apiUrl`; returns the admin's Authorization header for further requests.
 */
export async function createFunction(
  engine: Engine,
  apiUrl: string,
  rootfs: string,
  fn: { name: string; image: string; script: string; [field: string]: unknown },
): Promise<string> {
  await engine.images.import(rootfs, { format: "rootfs", tag: fn.image, changes: ["ENV PATH=/bin"] });
  const a = engine.credentials.admin;
  const auth = `Basic ${Buffer.from(`${a.user}:${a.password}`).toString("base64")}`;
  const created = await fetch(`${apiUrl}/system/services`, {
    method: "POST",
    headers: { authorization: auth },
    body: JSON.stringify({ memory: "64Mi", ...fn }),
  });
  assert.equal(created.status, 201, await created.text());
  return auth;
}

/**
 * Starts an engine whose jobs folder (`disk`/data/jobs) is a 4 MB tmpfs, and its API on a free
 * port; what the engine logs is collected in `lines`. `options` override the test defaults.
 */
export async function startOnSmallDisk(disk: Scratch, options: Partial<EngineOptions> = {}) {
  const dataDir = join(disk.root, "data");
  const jobsDir = disk.mountTmpfs(join(dataDir, "jobs"), "4m");
  const lines: string[] = [];
  const engine = await Engine.start({
    dataDir,
    s3Port: 0,
    concurrency: 1,
    pollMs: 20,
    log: (m) => lines.push(m),
    ...options,
  });
  const api = await startApi(engine, { port: 0 });
  return { jobsDir, lines, engine, api };
}
