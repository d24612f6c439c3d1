/**
 * Moving an invocation's files between the workspace and its environment: within one file system
 * (a rename) and across two (/tmp and /dev/shm, a tmpfs): folders, modes, links, names that are not
 * UTF-8, and the image user's ownership.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { moveEntries } from "../../../src/engine/environments/move.js";

const disk = mkdtempSync(join(tmpdir(), "scar-move-"));
const shm = mkdtempSync("/dev/shm/scar-move-");
after(() => {
  rmSync(disk, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});

const BAD = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74]); // "bad\xff.txt"

function fill(dir: string): void {
  mkdirSync(join(dir, "sub", "deeper"), { recursive: true });
  writeFileSync(join(dir, "a.txt"), "a");
  writeFileSync(join(dir, "run.sh"), "echo hi", { mode: 0o750 });
  writeFileSync(join(dir, "sub", "deeper", "b.txt"), "b");
  symlinkSync("/etc/passwd", join(dir, "link"));
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), BAD]), "not utf-8");
}

function check(dir: string): void {
  assert.equal(readFileSync(join(dir, "a.txt"), "utf8"), "a");
  assert.equal(statSync(join(dir, "run.sh")).mode & 0o777, 0o750, "the mode is kept");
  assert.equal(readFileSync(join(dir, "sub", "deeper", "b.txt"), "utf8"), "b");
  assert.ok(lstatSync(join(dir, "link")).isSymbolicLink(), "a link stays a link (not its target)");
  assert.equal(readlinkSync(join(dir, "link")), "/etc/passwd");
  assert.equal(readFileSync(Buffer.concat([Buffer.from(`${dir}/`), BAD]), "utf8"), "not utf-8");
}

for (const [what, target] of [
  ["within one file system", () => disk],
  ["across file systems", () => shm],
] as const) {
  test(`moveEntries ${what}: everything arrives as it was`, async () => {
    const from = mkdtempSync(join(disk, "from-"));
    const to = mkdtempSync(join(target(), "to-"));
    fill(from);
    await moveEntries(from, to);
    check(to);
    assert.equal(readdirSync(from).length, what === "within one file system" ? 0 : 5);
  });
}

test("moveEntries with crossDevice copies without trying a rename (the sources stay, new inodes)", async () => {
  const from = mkdtempSync(join(disk, "from-"));
  const to = mkdtempSync(join(disk, "to-"));
  fill(from);
  const inode = statSync(join(from, "a.txt")).ino;
  await moveEntries(from, to, undefined, { crossDevice: true });
  check(to);
  assert.equal(readdirSync(from).length, 5, "copied, as across file systems");
  assert.notEqual(statSync(join(to, "a.txt")).ino, inode);
});

test("moveEntries gives what it moved to the image's user, and only that", async () => {
  const from = mkdtempSync(join(disk, "from-"));
  const to = mkdtempSync(join(shm, "to-"));
  fill(from);
  writeFileSync(join(to, "already-there"), "");
  await moveEntries(from, to, { uid: 1000, gid: 1001 });
  for (const p of ["a.txt", "sub", "sub/deeper", "sub/deeper/b.txt", "link"]) {
    const st = lstatSync(join(to, p));
    assert.deepEqual([st.uid, st.gid], [1000, 1001], p);
  }
  assert.equal(lstatSync("/etc/passwd").uid, 0, "a link's target is not touched");
  assert.equal(statSync(join(to, "already-there")).uid, 0);
  assert.ok(existsSync(join(to, "a.txt")));
});
