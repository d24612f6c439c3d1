/**
 * The private mount namespace's helper on its own: overlay mounts and umounts on request, visible
 * only in its namespace, with mount's own message when one fails. Needs root (like the runtime tests).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { findBinary, isStatic } from "../../../src/engine/runtime/detect.js";
import { MountError, PrivateMountNamespace } from "../../../src/engine/runtime/mountns.js";
import { mountsMentioning } from "./fixtures.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "scar-mountns-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function runDirs(name: string) {
  const d = join(dir, name);
  const [lower, base, upper, work, merged] = ["l", "b", "u", "w", "m"].map((x) => join(d, x)) as [
    string,
    string,
    string,
    string,
    string,
  ];
  for (const x of [lower, base, upper, work, merged]) mkdirSync(x, { recursive: true });
  writeFileSync(join(lower, "hello"), "from the lower\n");
  /** a read-only overlay (no upper) needs two lowers */
  const ro = `lowerdir=${lower}:${base}`;
  return { lower, upper, work, merged, ro };
}

const busybox = findBinary("busybox");
for (const bb of [undefined, ...(busybox && isStatic(busybox) ? [busybox] : [])]) {
  test(`the helper mounts and unmounts an overlay in its namespace only (${bb ? "static busybox" : "system sh and mount"})`, async () => {
    const ns = await PrivateMountNamespace.create({
      hide: [],
      errorFile: join(dir, `err-${bb ? "bb" : "sys"}`),
      ...(bb ? { busybox: bb } : {}),
    });
    try {
      const d = runDirs(bb ? "bb" : "sys");
      await ns.mountOverlay(`lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, d.merged, "/");
      assert.equal(mountsMentioning(d.merged, ns.pid).length, 1);
      assert.deepEqual(mountsMentioning(d.merged), [], "not in the host's namespace");
      assert.equal(readFileSync(`/proc/${ns.pid}/root${d.merged}/hello`, "utf8"), "from the lower\n");
      await ns.unmount(d.merged);
      assert.deepEqual(mountsMentioning(d.merged, ns.pid), []);
      // unmounting what is not mounted is fine
      await ns.unmount(d.merged);
      // mount's own message comes back
      await assert.rejects(
        ns.mountOverlay(
          `lowerdir=${join(dir, "missing")},upperdir=${d.upper},workdir=${d.work}`,
          d.merged,
          "/",
        ),
        (e: unknown) =>
          e instanceof MountError && /mount overlay: .*\S/.test(e.message) && !/failed$/.test(e.message),
      );
      // a request line cannot be split by a path with a newline
      await assert.rejects(ns.mountOverlay("lowerdir=/x", `${d.merged}\nmount`, "/"), MountError);
      // requests in a row are answered in order
      const many = await Promise.allSettled(
        [1, 2, 3].map((i) => ns.mountOverlay(i === 2 ? "bad" : d.ro, d.merged, "/")),
      );
      assert.deepEqual(
        many.map((m) => m.status),
        ["fulfilled", "rejected", "fulfilled"],
      );
      await ns.unmount(d.merged);
      await ns.unmount(d.merged);
      assert.deepEqual(mountsMentioning(d.merged, ns.pid), []);
    } finally {
      ns.close();
    }
  });
}

test("requests to a helper that is gone fail, and ensure() starts a new one", async () => {
  const ns = await PrivateMountNamespace.create({ hide: [], errorFile: join(dir, "err-restart") });
  try {
    const old = ns.pid;
    process.kill(old, "SIGKILL");
    while (ns.alive) await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(ns.unmount(join(dir, "nothing")), MountError);
    await ns.ensure();
    assert.notEqual(ns.pid, old);
    const d = runDirs("restart");
    await ns.mountOverlay(d.ro, d.merged, "/");
    assert.equal(mountsMentioning(d.merged, ns.pid).length, 1);
    await ns.unmount(d.merged);
  } finally {
    ns.close();
  }
});
