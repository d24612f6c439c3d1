import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  type LowerLayer,
  materialize,
  UnsafeLayerError,
  unpackLayer,
} from "../../../src/engine/images/unpack.js";
import { chunks, craftTar, hasCommand, isRoot, tempDir } from "./helpers.js";

const work = tempDir("scar-unpack-");
after(() => fs.rmSync(work, { recursive: true, force: true }));
let n = 0;

/** A fresh layer directory plus an "outside" directory that must stay untouched. */
function fresh() {
  const base = join(work, String(n++));
  const dir = join(base, "layer");
  const outside = join(base, "outside");
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(outside);
  return { base, dir, outside };
}

async function unpack(tar: Buffer, dir: string, lowers: LowerLayer[] = [], opts = {}) {
  const r = await unpackLayer(chunks(tar, 700), dir, { lowers, ...opts });
  return { ...r, layer: { dir, whiteouts: r.whiteouts, opaque: r.opaque } as LowerLayer };
}

function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(join(root, r));
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(r);
      } else if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(join(root, r))}`);
      else if (st.isCharacterDevice()) out.push(`${r} (c ${st.rdev})`);
      else out.push(`${r} = ${fs.readFileSync(join(root, r), "utf8")}`);
    }
  };
  walk("");
  return out;
}

test("unpacks files, directories, symlinks and hard links with modes, owners and times", async () => {
  const { dir } = fresh();
  const tar = craftTar([
    { name: "./", type: "dir", mode: 0o755 },
    { name: "etc/", type: "dir", mode: 0o750, uid: 12, gid: 34, mtime: 1_000_000 },
    { name: "etc/motd", data: "hello\n", mode: 0o640, uid: 12, gid: 34, mtime: 1_500_000 },
    { name: "bin/sh", data: "#!fake", mode: 0o4755 },
    { name: "bin/ash", type: "symlink", linkname: "sh" },
    { name: "bin/hard", type: "link", linkname: "bin/sh" },
    { name: `deep/${"d".repeat(120)}/${"f".repeat(120)}`, data: "long name via PAX" },
  ]);
  const r = await unpack(tar, dir);
  assert.equal(r.diffId, `sha256:${createHash("sha256").update(tar).digest("hex")}`);
  assert.equal(r.compression, "none");
  assert.equal(fs.readFileSync(join(dir, "etc/motd"), "utf8"), "hello\n");
  const motd = fs.statSync(join(dir, "etc/motd"));
  assert.equal(motd.mode & 0o7777, 0o640);
  assert.equal(motd.mtimeMs, 1_500_000_000);
  const etc = fs.statSync(join(dir, "etc"));
  assert.equal(etc.mode & 0o7777, 0o750);
  assert.equal(etc.mtimeMs, 1_000_000_000, "directory times are set after their content is written");
  if (isRoot) {
    assert.equal(motd.uid, 12);
    assert.equal(motd.gid, 34);
    assert.equal(fs.statSync(join(dir, "bin/sh")).mode & 0o7777, 0o4755);
  }
  assert.equal(fs.readlinkSync(join(dir, "bin/ash")), "sh");
  assert.equal(fs.statSync(join(dir, "bin/hard")).ino, fs.statSync(join(dir, "bin/sh")).ino);
  assert.equal(
    fs.readFileSync(join(dir, "deep", "d".repeat(120), "f".repeat(120)), "utf8"),
    "long name via PAX",
  );
});

test("gzip and zstd layers are detected and the DiffID covers the uncompressed tar", async () => {
  const tar = craftTar([{ name: "a.txt", data: "compressed" }]);
  const diff = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
  const g = fresh();
  const rg = await unpack(gzipSync(tar), g.dir);
  assert.equal(rg.compression, "gzip");
  assert.equal(rg.diffId, diff);
  assert.equal(fs.readFileSync(join(g.dir, "a.txt"), "utf8"), "compressed");
  assert.ok(hasCommand("zstd"), "zstd is installed by scripts/install-deps.sh");
  const z = fresh();
  const zst = execFileSync("zstd", ["-q", "-c"], { input: tar });
  const rz = await unpack(zst, z.dir);
  assert.equal(rz.compression, "zstd");
  assert.equal(rz.diffId, diff);
  assert.equal(fs.readFileSync(join(z.dir, "a.txt"), "utf8"), "compressed");
});

test("attack: .. in a name is refused", async () => {
  const { dir, outside } = fresh();
  const tar = craftTar([{ name: "../outside/pwned", data: "x" }]);
  await assert.rejects(unpack(tar, dir), UnsafeLayerError);
  const tar2 = craftTar([{ name: "a/../../outside/pwned", data: "x" }]);
  await assert.rejects(unpack(tar2, fresh().dir), UnsafeLayerError);
  assert.deepEqual(fs.readdirSync(outside), []);
});

test("attack: absolute names stay inside the root", async () => {
  const { dir, outside } = fresh();
  await unpack(craftTar([{ name: `${outside}/pwned`, data: "x" }]), dir);
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.equal(fs.readFileSync(join(dir, outside, "pwned"), "utf8"), "x");
});

test("attack: a symlink out of the root, then a write through it, stays inside", async () => {
  const { dir, outside } = fresh();
  const tar = craftTar([
    { name: "abs", type: "symlink", linkname: outside },
    { name: "abs/pwned", data: "1" },
    { name: "rel", type: "symlink", linkname: "../../../../../../../../../.." },
    { name: `rel${outside}/pwned2`, data: "2" },
    { name: "loop", type: "symlink", linkname: "loop" },
  ]);
  await unpack(tar, dir);
  assert.deepEqual(fs.readdirSync(outside), []);
  // the symlinks were resolved inside the image root
  assert.equal(fs.readFileSync(join(dir, outside, "pwned"), "utf8"), "1");
  assert.equal(fs.readFileSync(join(dir, outside, "pwned2"), "utf8"), "2");
  assert.equal(fs.readlinkSync(join(dir, "abs")), outside, "the symlink itself is kept as written");
  const tarLoop = craftTar([
    { name: "loop", type: "symlink", linkname: "loop" },
    { name: "loop/x", data: "x" },
  ]);
  await assert.rejects(unpack(tarLoop, fresh().dir), /too many levels of symbolic links/);
});

test("attack: a symlink planted by a lower layer cannot be written through", async () => {
  const l1 = fresh();
  const { outside } = l1;
  const r1 = await unpack(
    craftTar([
      { name: "escape", type: "symlink", linkname: outside },
      { name: "up", type: "symlink", linkname: "../../../../../../../.." },
    ]),
    l1.dir,
  );
  const l2 = fresh();
  await unpack(
    craftTar([
      { name: "escape/pwned", data: "1" },
      { name: `up${outside}/pwned2`, data: "2" },
    ]),
    l2.dir,
    [r1.layer],
  );
  assert.deepEqual(fs.readdirSync(outside), []);
  assert.deepEqual(fs.readdirSync(l2.outside), []);
  assert.equal(fs.readFileSync(join(l2.dir, outside, "pwned"), "utf8"), "1");
  assert.equal(fs.readFileSync(join(l2.dir, outside, "pwned2"), "utf8"), "2");
  assert.deepEqual(listTree(l1.dir).sort(), [`escape -> ${outside}`, "up -> ../../../../../../../.."]);
});

test("attack: hard links to outside the root or to missing files are refused", async () => {
  const { dir, outside, base } = fresh();
  fs.writeFileSync(join(outside, "secret"), "s");
  await assert.rejects(
    unpack(craftTar([{ name: "h", type: "link", linkname: "../outside/secret" }]), dir),
    UnsafeLayerError,
  );
  await assert.rejects(
    unpack(craftTar([{ name: "h", type: "link", linkname: join(outside, "secret") }]), fresh().dir),
    /missing/,
  );
  await assert.rejects(
    unpack(
      craftTar([
        { name: "s", type: "symlink", linkname: base },
        { name: "h", type: "link", linkname: "s/outside/secret" },
      ]),
      fresh().dir,
    ),
    /missing/,
  );
  await assert.rejects(
    unpack(
      craftTar([
        { name: "d/", type: "dir" },
        { name: "h", type: "link", linkname: "d" },
      ]),
      fresh().dir,
    ),
    /directory/,
  );
  assert.equal(fs.statSync(join(outside, "secret")).nlink, 1);
});

test("attack: a lower layer's symlink that a higher layer's folder hides is not followed", async () => {
  // layer 1: /a -> the host's folder; layer 2: a folder /a (overlay shows it, not the link); layer 3:
  // a hard link to a/secret, which must not be the host's file read through layer 1's link
  const { outside } = fresh();
  fs.writeFileSync(join(outside, "secret"), "host secret\n");
  const l1 = fresh();
  const r1 = await unpack(craftTar([{ name: "a", type: "symlink", linkname: outside }]), l1.dir);
  const l2 = fresh();
  const r2 = await unpack(craftTar([{ name: "a/", type: "dir" }]), l2.dir, [r1.layer]);
  const l3 = fresh();
  await assert.rejects(
    unpack(craftTar([{ name: "x", type: "link", linkname: "a/secret" }]), l3.dir, [r1.layer, r2.layer]),
    /points at missing "a\/secret"/,
  );
  // nor does a file written there find the host's folder's entries below it
  const l4 = fresh();
  await unpack(craftTar([{ name: "a/secret/inner", data: "x" }]), l4.dir, [r1.layer, r2.layer]);
  assert.deepEqual(listTree(l4.dir), ["a/", "a/secret/", "a/secret/inner = x"]);
  assert.equal(fs.readFileSync(join(outside, "secret"), "utf8"), "host secret\n");
});

test("a hard link to a file of a lower layer copies it up", async () => {
  const l1 = fresh();
  const r1 = await unpack(craftTar([{ name: "usr/bin/tool", data: "tool", mode: 0o755 }]), l1.dir);
  const l2 = fresh();
  await unpack(craftTar([{ name: "bin/tool2", type: "link", linkname: "usr/bin/tool" }]), l2.dir, [r1.layer]);
  assert.equal(fs.readFileSync(join(l2.dir, "bin/tool2"), "utf8"), "tool");
  assert.equal(fs.statSync(join(l2.dir, "usr/bin/tool")).ino, fs.statSync(join(l2.dir, "bin/tool2")).ino);
  assert.equal(fs.statSync(join(l1.dir, "usr/bin/tool")).nlink, 1, "the lower layer is not touched");
});

test("attack: device nodes and FIFOs are not created", async () => {
  const { dir } = fresh();
  const r = await unpack(
    craftTar([
      { name: "dev/sda", type: "block", devmajor: 8, devminor: 0 },
      { name: "dev/mem", type: "char", devmajor: 1, devminor: 1 },
      { name: "fifo", type: "fifo" },
      { name: "ok", data: "ok" },
    ]),
    dir,
  );
  assert.deepEqual(fs.readdirSync(join(dir, "dev")), []);
  assert.equal(fs.existsSync(join(dir, "fifo")), false);
  assert.deepEqual(
    r.skipped.map((s) => s.path),
    ["dev/sda", "dev/mem", "fifo"],
  );
});

test("attack: huge PAX and GNU long-name headers are refused before being buffered", async () => {
  const paxHuge = craftTar([{ name: "x", type: "raw", typeflag: "x", size: 4 * 1024 * 1024 * 1024 }], {
    end: false,
  });
  await assert.rejects(unpack(paxHuge, fresh().dir), /PAX header of 4294967296 bytes exceeds/);
  const gnuHuge = craftTar([{ name: "././@LongLink", type: "raw", typeflag: "L", size: 50 * 1024 * 1024 }], {
    end: false,
  });
  await assert.rejects(unpack(gnuHuge, fresh().dir), /GNU long name header .* exceeds/);
  const longName = craftTar([{ name: `${"a/".repeat(3000)}x`, data: "x" }]);
  await assert.rejects(unpack(longName, fresh().dir), /longer than 4096/);
});

test("a decompression bomb stops at maxBytes", async () => {
  const big = craftTar([{ name: "zeros", data: Buffer.alloc(4 * 1024 * 1024) }]);
  await assert.rejects(
    unpack(gzipSync(big), fresh().dir, [], { maxBytes: 1024 * 1024 }),
    /larger than the limit/,
  );
});

test("truncated entries are errors; a missing end-of-archive after complete entries is tolerated", async () => {
  const full = craftTar([{ name: "f", data: "0123456789".repeat(100) }]);
  await assert.rejects(unpack(full.subarray(0, 700), fresh().dir), /truncated/);
  const noEnd = craftTar([{ name: "f", data: "abc" }], { end: false });
  const { dir } = fresh();
  await unpack(noEnd.subarray(0, 512 + 3), dir); // no padding and no end blocks, as `umoci insert` writes
  assert.equal(fs.readFileSync(join(dir, "f"), "utf8"), "abc");
  const garbage = Buffer.alloc(1024, 0x41);
  await assert.rejects(unpack(garbage, fresh().dir), /checksum/);
});

/** The two-layer image of the whiteout tests, checked through materialize() and a real overlay mount. */
async function whiteoutLayers() {
  const l1 = fresh();
  const r1 = await unpack(
    craftTar([
      { name: "a/1", data: "a1" },
      { name: "a/2", data: "a2" },
      { name: "b/x", data: "bx" },
      { name: "c/y", data: "cy" },
      { name: "c/sub/deep", data: "deep" },
      { name: "d", data: "file d" },
    ]),
    l1.dir,
  );
  const l2 = fresh();
  const r2 = await unpack(
    craftTar([
      { name: "a/.wh.1", data: "" },
      { name: ".wh.b", data: "" },
      { name: "c/.wh..wh..opq", data: "" },
      { name: "c/z", data: "cz" },
      { name: ".wh.d", data: "" },
      { name: "d/", type: "dir" },
      { name: "d/new", data: "dir d" },
      { name: "e/.wh.never-existed", data: "" },
    ]),
    l2.dir,
    [r1.layer],
  );
  return { l1: r1.layer, l2: r2.layer, r2 };
}

const expectedMerged = ["a/", "a/2 = a2", "c/", "c/z = cz", "d/", "d/new = dir d", "e/"];

test("whiteouts and opaque directories are applied as the OCI image spec says", async () => {
  const { l1, l2, r2 } = await whiteoutLayers();
  assert.deepEqual(r2.whiteouts, ["a/1", "b"], "a whiteout of nothing is dropped");
  assert.deepEqual(r2.opaque, ["c", "d"]);
  const flat = join(fresh().base, "flat");
  materialize([l1, l2], flat);
  assert.deepEqual(listTree(flat), expectedMerged);
});

test("the layer directories work as overlayfs lowers", {
  skip: !isRoot && "needs root to mount",
}, async () => {
  const { l1, l2 } = await whiteoutLayers();
  const mnt = join(fresh().base, "mnt");
  fs.mkdirSync(mnt);
  const m = spawnSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${l2.dir}:${l1.dir}`, mnt]);
  assert.equal(m.status, 0, m.stderr?.toString());
  try {
    assert.deepEqual(listTree(mnt), expectedMerged);
  } finally {
    spawnSync("umount", [mnt]);
  }
});

test("a layer writing through a directory symlink of a lower layer (usrmerge) lands in the target", async () => {
  const l1 = fresh();
  const r1 = await unpack(
    craftTar([
      { name: "usr/bin/ls", data: "ls" },
      { name: "bin", type: "symlink", linkname: "usr/bin" },
    ]),
    l1.dir,
  );
  const l2 = fresh();
  const r2 = await unpack(craftTar([{ name: "bin/foo", data: "foo" }]), l2.dir, [r1.layer]);
  const flat = join(fresh().base, "flat");
  materialize([r1.layer, r2.layer], flat);
  assert.deepEqual(listTree(flat), [
    "bin -> usr/bin",
    "usr/",
    "usr/bin/",
    "usr/bin/foo = foo",
    "usr/bin/ls = ls",
  ]);
});

test("later entries replace earlier ones; a file replaces a directory and the reverse", async () => {
  const { dir } = fresh();
  await unpack(
    craftTar([
      { name: "x/inner", data: "i" },
      { name: "x", data: "now a file" },
      { name: "y", data: "a file" },
      { name: "y/", type: "dir" },
      { name: "y/z", data: "z" },
      { name: "s", type: "symlink", linkname: "/etc" },
      { name: "s", data: "replaced symlink" },
    ]),
    dir,
  );
  assert.deepEqual(listTree(dir), ["s = replaced symlink", "x = now a file", "y/", "y/z = z"]);
});

test("without root: no overlay markers and no owners, whiteouts still listed for materialize()", async () => {
  const l1 = fresh();
  const r1 = await unpack(craftTar([{ name: "a/x", data: "x", uid: 7 }]), l1.dir, [], {
    overlayMarkers: false,
    preserveOwners: false,
  });
  const l2 = fresh();
  const r2 = await unpack(craftTar([{ name: "a/.wh.x", data: "" }]), l2.dir, [r1.layer], {
    overlayMarkers: false,
    preserveOwners: false,
  });
  assert.equal(r2.overlay, false);
  assert.deepEqual(r2.whiteouts, ["a/x"]);
  assert.equal(fs.existsSync(join(l2.dir, "a/x")), false, "no whiteout device");
  assert.equal(fs.statSync(join(l1.dir, "a/x")).uid, process.getuid?.() ?? 0);
  const flat = join(fresh().base, "flat");
  materialize([r1.layer, r2.layer], flat);
  assert.deepEqual(listTree(flat), ["a/"]);
});

test("hard links to files written just before them in the same layer", async () => {
  const { dir } = fresh();
  const entries: Parameters<typeof craftTar>[0] = [];
  for (let i = 0; i < 200; i++) {
    entries.push({ name: `d${i % 7}/f${i}`, data: `file ${i}` });
    entries.push({ name: `links/l${i}`, type: "link", linkname: `d${i % 7}/f${i}` });
  }
  await unpack(craftTar(entries), dir);
  for (let i = 0; i < 200; i++) {
    assert.equal(fs.readFileSync(join(dir, `links/l${i}`), "utf8"), `file ${i}`);
    assert.equal(fs.statSync(join(dir, `links/l${i}`)).nlink, 2);
  }
});

test("without owners: the tar's owners are recorded (not 0:0), replaced entries forgotten, copied-up folders keep theirs", async () => {
  const { dir: lowerDir } = fresh();
  const low = await unpack(
    craftTar([
      { name: "home/", type: "dir" },
      { name: "home/app/", type: "dir", mode: 0o750, uid: 1000, gid: 1000 },
      { name: "home/app/f", data: "x", uid: 1000, gid: 1000 },
      { name: "srv/x", data: "x", uid: 7, gid: 8 },
    ]),
    lowerDir,
    [],
    { preserveOwners: false },
  );
  assert.deepEqual(low.owners, [
    ["home/app", 1000, 1000],
    ["home/app/f", 1000, 1000],
    ["srv/x", 7, 8],
  ]);
  const { dir } = fresh();
  const top = await unpack(
    craftTar([
      { name: "home/app/g", data: "y", uid: 1000, gid: 1000 },
      { name: "a", data: "first", uid: 5, gid: 5 },
      { name: "a", data: "again, root's" },
      { name: "b", data: "b", uid: 65534, gid: 65534 },
      { name: "c", type: "link", linkname: "b" },
      { name: "s", type: "symlink", linkname: "b", uid: 3, gid: 3 },
      { name: "u", data: "u", mode: 0o6755, uid: 9, gid: 9 },
    ]),
    dir,
    [{ ...low.layer, owners: low.owners! }],
    { preserveOwners: false },
  );
  assert.deepEqual(top.owners, [
    ["b", 65534, 65534],
    ["c", 65534, 65534],
    ["home/app", 1000, 1000],
    ["home/app/g", 1000, 1000],
    ["s", 3, 3],
    ["u", 9, 9],
  ]);
  assert.equal(fs.statSync(join(dir, "u")).mode & 0o7777, 0o755, "no setuid or setgid bit");
  const kept = await unpack(craftTar([{ name: "k", data: "k", uid: 4, gid: 4 }]), fresh().dir, [], {
    preserveOwners: true,
  });
  assert.equal(kept.owners, undefined, "owners kept on the files: nothing recorded");
});
