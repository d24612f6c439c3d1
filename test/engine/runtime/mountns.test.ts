/**
 * The private mount namespace's helper on its own: overlay mounts and umounts on request, visible
 * only in its namespace, with mount's own message when one fails. Needs root (like the runtime tests).
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
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
/** A run folder (with its empty rootfs mount point) under `dir`. */
function runFolder(name: string): string {
  const r = join(dir, name);
  mkdirSync(join(r, "rootfs"), { recursive: true });
  return r;
}

for (const bb of [undefined, ...(busybox && isStatic(busybox) ? [busybox] : [])]) {
  test(`the helper mounts and unmounts a run's overlay in its namespace only (${bb ? "static busybox" : "system sh and mount"})`, async () => {
    const ns = await PrivateMountNamespace.create({
      hide: [],
      errorFile: join(dir, `err-${bb ? "bb" : "sys"}`),
      ...(bb ? { busybox: bb } : {}),
    });
    try {
      const tag = bb ? "bb" : "sys";
      const d = runDirs(tag);
      const r = runFolder(`${tag}-r0`);
      await ns.prepareRun(`lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, r, "/");
      const rootfs = join(r, "rootfs");
      assert.equal(mountsMentioning(rootfs, ns.pid).length, 1);
      assert.deepEqual(mountsMentioning(rootfs), [], "not in the host's namespace");
      assert.equal(readFileSync(`/proc/${ns.pid}/root${rootfs}/hello`, "utf8"), "from the lower\n");
      await ns.finishRun("r0", r, true);
      assert.deepEqual(mountsMentioning(rootfs, ns.pid), []);
      // mount's own message comes back
      const bad = runFolder(`${tag}-bad`);
      await assert.rejects(
        ns.prepareRun(`lowerdir=${join(dir, "missing")},upperdir=${d.upper},workdir=${d.work}`, bad, "/"),
        (e: unknown) =>
          e instanceof MountError && /mount overlay: .*\S/.test(e.message) && !/failed$/.test(e.message),
      );
      // a request line cannot be split by a path with a newline
      await assert.rejects(ns.prepareRun("lowerdir=/x", `${bad}\nmount`, "/"), MountError);
      // requests in a row are answered in order
      const folders = [1, 2, 3].map((i) => runFolder(`${tag}-r${i}`));
      const many = await Promise.allSettled(
        folders.map((f, i) => ns.prepareRun(i === 1 ? "bad" : d.ro, f, "/")),
      );
      assert.deepEqual(
        many.map((m) => m.status),
        ["fulfilled", "rejected", "fulfilled"],
      );
      await Promise.all([ns.finishRun("r1", folders[0]!, true), ns.finishRun("r3", folders[2]!, true)]);
      for (const f of folders) assert.deepEqual(mountsMentioning(join(f, "rootfs"), ns.pid), []);
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
    await assert.rejects(ns.makeFifos(runFolder("gone")), MountError);
    await ns.ensure();
    assert.notEqual(ns.pid, old);
    const d = runDirs("restart");
    const r = runFolder("restart-run");
    await ns.prepareRun(d.ro, r, "/");
    assert.equal(mountsMentioning(join(r, "rootfs"), ns.pid).length, 1);
    await ns.finishRun("restart", r, true);
  } finally {
    ns.close();
  }
});

for (const bb of [undefined, ...(busybox && isStatic(busybox) ? [busybox] : [])]) {
  test(`the helper prepares a run's folder, starts a command with its output in FIFOs, and ends the folder in the background (${bb ? "static busybox" : "system sh"})`, async () => {
    const ns = await PrivateMountNamespace.create({
      hide: [],
      errorFile: join(dir, `err-run-${bb ? "bb" : "sys"}`),
      ...(bb ? { busybox: bb } : {}),
    });
    try {
      const d = runDirs(bb ? "run-bb" : "run-sys");
      const runDir = join(d.merged, "..", "run");
      mkdirSync(join(runDir, "rootfs"), { recursive: true });
      await ns.prepareRun(`lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, runDir, "/");
      assert.equal(mountsMentioning(join(runDir, "rootfs"), ns.pid).length, 1);

      // stdout and stderr apart, the exit status as the shell gives it, arguments passed verbatim
      const started = await ns.start(
        "r1",
        ["sh", "-c", `cat "$1/hello"; echo "it's $2" >&2; exit 3`, "sh", join(runDir, "rootfs"), "a b"],
        runDir,
      );
      const read = (s: NodeJS.ReadableStream) =>
        new Promise<string>((res) => {
          let t = "";
          s.setEncoding("utf8");
          s.on("data", (c: string) => {
            t += c;
          });
          s.on("end", () => res(t));
        });
      const [out, err, status] = await Promise.all([
        read(started.stdout),
        read(started.stderr),
        started.exited,
      ]);
      assert.equal(out, "from the lower\n");
      assert.equal(err, "it's a b\n");
      assert.equal(status, 3);
      // a run id is a tag on a line: nothing else is accepted
      await assert.rejects(ns.start("a b", ["true"], runDir), MountError);

      // the folder goes, after its overlay is unmounted
      await ns.finishRun("r1", runDir, true);
      assert.deepEqual(mountsMentioning(join(runDir, "rootfs"), ns.pid), []);
      assert.throws(() => readFileSync(join(runDir, "stdout")), /ENOENT/);

      // a prepare that cannot mount leaves nothing mounted and no FIFO
      mkdirSync(join(runDir, "rootfs"), { recursive: true });
      await assert.rejects(ns.prepareRun(`lowerdir=${join(dir, "missing")}`, runDir, "/"), MountError);
      assert.deepEqual(mountsMentioning(join(runDir, "rootfs"), ns.pid), []);
      assert.throws(() => readFileSync(join(runDir, "stdout")), /ENOENT/);
      // without an overlay: FIFOs alone, and the folder is removed without an unmount
      await ns.makeFifos(runDir);
      const s2 = await ns.start("r2", ["sh", "-c", "echo two"], runDir);
      assert.equal(await read(s2.stdout), "two\n");
      assert.equal(await s2.exited, 0);
      s2.stderr.destroy();
      await ns.finishRun("r2", runDir, false);
      assert.throws(() => readFileSync(join(runDir, "config.json")), /ENOENT/);

      // remove: any folder, in the background
      const other = join(dir, `other-${bb ? "bb" : "sys"}`);
      mkdirSync(join(other, "a", "b"), { recursive: true });
      writeFileSync(join(other, "a", "b", "f"), "x");
      await ns.remove("w1", other);
      assert.throws(() => readFileSync(join(other, "a", "b", "f")), /ENOENT/);
    } finally {
      ns.close();
    }
  });
}

for (const bb of [undefined, ...(busybox && isStatic(busybox) ? [busybox] : [])]) {
  test(`a command served with a stdin FIFO reads what this process writes, and EOF when it closes it (${bb ? "static busybox" : "system sh"})`, async () => {
    const ns = await PrivateMountNamespace.create({
      hide: [],
      errorFile: join(dir, `err-serve-${bb ? "bb" : "sys"}`),
      ...(bb ? { busybox: bb } : {}),
    });
    try {
      const d = runDirs(bb ? "serve-bb" : "serve-sys");
      const runDir = join(d.merged, "..", "run");
      mkdirSync(join(runDir, "rootfs"), { recursive: true });
      await ns.prepareRun(`lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, runDir, "/", true);
      const s = await ns.start(
        "s1",
        ["sh", "-c", 'while read -r l; do echo "got $l"; done; echo eof'],
        runDir,
        true,
      );
      assert.ok(s.stdin, "a writable stdin");
      let out = "";
      s.stdout.setEncoding("utf8");
      const ended = new Promise<void>((res) => s.stdout.on("end", res));
      let waiting: (() => void) | undefined;
      s.stdout.on("data", (c: string) => {
        out += c;
        waiting?.();
      });
      const seen = (text: string) =>
        new Promise<void>((res) => {
          waiting = () => out.includes(text) && res();
          waiting();
        });
      s.stderr.resume();
      // a conversation: the command answers each line while its stdin stays open
      s.stdin.write("one\n");
      await seen("got one\n");
      s.stdin.write("two\n");
      await seen("got two\n");
      s.stdin.end();
      await ended;
      assert.equal(out, "got one\ngot two\neof\n");
      assert.equal(await s.exited, 0);
      await ns.finishRun("s1", runDir, true);
      assert.deepEqual(mountsMentioning(join(runDir, "rootfs"), ns.pid), []);

      // without an overlay: the three FIFOs alone; plain `start` still reads /dev/null
      mkdirSync(runDir, { recursive: true });
      await ns.makeFifos(runDir, true);
      assert.ok(statSync(join(runDir, "stdin")).isFIFO());
      const plain = await ns.start("s2", ["sh", "-c", "cat; echo done"], runDir);
      assert.equal(plain.stdin, undefined);
      plain.stderr.resume();
      let text = "";
      plain.stdout.setEncoding("utf8").on("data", (c: string) => {
        text += c;
      });
      assert.equal(await plain.exited, 0);
      assert.equal(text, "done\n");
      await ns.finishRun("s2", runDir, false);
    } finally {
      ns.close();
    }
  });
}

test("a command started by the helper that is killed ends with 128 + the signal, and a helper that dies ends what it started", async () => {
  const ns = await PrivateMountNamespace.create({ hide: [], errorFile: join(dir, "err-kill") });
  try {
    const runDir = join(dir, "kill-run");
    mkdirSync(runDir, { recursive: true });
    await ns.makeFifos(runDir);
    const s = await ns.start("k1", ["sh", "-c", "kill -9 $$"], runDir);
    s.stdout.resume();
    s.stderr.resume();
    assert.equal(await s.exited, 137);

    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true });
    await ns.makeFifos(runDir);
    const long = await ns.start("k2", ["sleep", "30"], runDir);
    long.stdout.resume();
    long.stderr.resume();
    process.kill(ns.pid, "SIGKILL");
    assert.equal(await long.exited, undefined, "the waiter is answered when the helper is gone");
  } finally {
    ns.close();
  }
});

test("without an error file of the caller's, the helper writes through no symlink planted in /dev/shm or /tmp", async () => {
  // Where a helper used to put its error output: /dev/shm/scar-mount-helper-<pid>-<n>.err, a path
  // any local user could plant a symlink at (the shell's `2>` follows it, as root).
  const planted: string[] = [];
  const targets: string[] = [];
  for (let n = 1; n <= 20; n++) {
    const link = `/dev/shm/scar-mount-helper-${process.pid}-${n}.err`;
    const target = join(dir, `planted-${n}`);
    rmSync(link, { force: true });
    symlinkSync(target, link);
    planted.push(link);
    targets.push(target);
  }
  const ours = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith("scar-mount-helper-")));
  const before = ours();
  const ns = await PrivateMountNamespace.create({ hide: [] });
  try {
    // a failing mount writes its message to the error file, which comes back in the error
    const bad = runFolder("planted-bad");
    await assert.rejects(ns.prepareRun(`lowerdir=${join(dir, "missing")}`, bad, "/"), (e: unknown) => {
      assert.ok(e instanceof MountError && /mount overlay: .*\S/.test(e.message), String(e));
      assert.doesNotMatch(e.message, /failed$/);
      return true;
    });
    for (const t of targets)
      assert.equal(existsSync(t), false, `nothing was written through the link to ${t}`);
    const made = [...ours()].filter((n) => !before.has(n));
    assert.equal(made.length, 1, "one private folder for the helper's error file");
    const st = statSync(join(tmpdir(), made[0]!));
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, process.getuid!());
  } finally {
    ns.close();
    for (const l of planted) rmSync(l, { force: true });
  }
  while (ns.alive) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(
    [...ours()].filter((n) => !before.has(n)),
    [],
    "the folder is removed with the helper",
  );
});
