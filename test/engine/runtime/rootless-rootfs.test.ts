/**
 * Rootless layers with their tars' owners (engine/layer-owners.ts), as an ordinary user (nobody here,
 * the VM's `scar` there) in a mount namespace of the test's own whose /etc/subuid and /etc/subgid are
 * files of the test's (bound over them, for that namespace only): with a range for the user, the
 * engine maps subordinate ids and `stat` in the container shows the tar's 0, 1000 and 65534; without
 * one, every file is the user's, root's in the container. Setuid and setgid bits are dropped in both.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { shellQuote } from "../../../src/engine/runtime/mountns.js";
import { chooseRootlessOverlay, devFuseUsable } from "../../../src/engine/runtime/rootfs.js";
import { chooseMapping, chownCommands } from "../../../src/engine/runtime/rootless.js";
import {
  bin,
  NOBODY,
  NOBODY_UID,
  nobodyEnv,
  nobodyRoot,
  ownersArchive,
  rootlessSkip,
  sharedBaseArchive,
} from "../rootless-harness.js";

test("chown commands: grouped by owner, unmapped owners left to root, long lists split", () => {
  const mode = chooseMapping({
    uid: 1000,
    gid: 1000,
    user: "ana",
    newuidmap: "/x",
    newgidmap: "/y",
    subuid: "ana:100000:2000\n",
    subgid: "ana:100000:2000\n",
  });
  const { commands, unmapped } = chownCommands(
    "/l",
    [
      ["", 5, 5],
      ["a b", 1000, 1000],
      ["c'd", 5, 5],
      ["far", 65534, 65534],
    ],
    mode,
    "chown",
    shellQuote,
  );
  assert.equal(unmapped, 1, "65534 is past the 2000 subordinate ids");
  assert.deepEqual(commands, ["chown -h 5:5 '/l' '/l/c'\\''d' && chown -h 1000:1000 '/l/a b'"]);
  const many = chownCommands(
    "/l",
    Array.from({ length: 5000 }, (_, i) => [`some/long/enough/path/${i}`, 7, 7] as [string, number, number]),
    mode,
    "chown",
    shellQuote,
  );
  assert.ok(many.commands.length > 1);
  for (const c of many.commands) assert.ok(c.length <= 32_100 && c.startsWith("chown -h 7:7 "));
  assert.equal(many.commands.join(" ").split("'/l/some").length - 1, 5000, "every path once");
});

test("rootless root file systems: kernel overlay, else fuse-overlayfs, else a copy, each said why", async () => {
  const ok = { overlay: true, volatile: true, userxattr: true };
  const fused = (fuse: string) => Promise.resolve({ overlay: true, volatile: false, fuse });
  const refused = (error: string) => () => Promise.resolve({ overlay: false, volatile: false, error });
  const all = { kernel: true as const, fuseOverlayfs: "/usr/bin/fuse-overlayfs", devFuse: true as const };
  let fuseTried = 0;
  const countFuse = (f: string) => {
    fuseTried++;
    return fused(f);
  };
  assert.deepEqual(await chooseRootlessOverlay(all, () => Promise.resolve(ok), countFuse), ok);
  assert.equal(fuseTried, 0, "the kernel's overlay mounted: fuse-overlayfs is not tried");
  assert.deepEqual(
    await chooseRootlessOverlay(all, refused("mount overlay: Operation not permitted"), fused),
    {
      overlay: true,
      volatile: false,
      fuse: "/usr/bin/fuse-overlayfs",
      error: "kernel overlay: mount overlay: Operation not permitted",
    },
  );
  assert.deepEqual(
    await chooseRootlessOverlay({ ...all, kernel: "kernel 5.4.0 < 5.11" }, refused("not called"), fused),
    {
      overlay: true,
      volatile: false,
      fuse: "/usr/bin/fuse-overlayfs",
      error: "kernel overlay: kernel 5.4.0 < 5.11",
    },
  );
  assert.deepEqual(
    await chooseRootlessOverlay({ ...all, forceFuse: true }, () => Promise.resolve(ok), fused),
    {
      overlay: true,
      volatile: false,
      fuse: "/usr/bin/fuse-overlayfs",
      error: "kernel overlay: not asked for",
    },
  );
  const { fuseOverlayfs: _, ...noFuse } = all;
  assert.deepEqual(await chooseRootlessOverlay(noFuse, refused("EPERM"), fused), {
    overlay: false,
    volatile: false,
    error: "kernel overlay: EPERM; fuse-overlayfs: not installed",
  });
  assert.deepEqual(
    await chooseRootlessOverlay({ ...all, devFuse: "no /dev/fuse" }, refused("EPERM"), fused),
    {
      overlay: false,
      volatile: false,
      error: "kernel overlay: EPERM; fuse-overlayfs: no /dev/fuse",
    },
  );
  assert.deepEqual(await chooseRootlessOverlay(all, refused("EPERM"), refused("fuse: device not found")), {
    overlay: false,
    volatile: false,
    error: "kernel overlay: EPERM; fuse-overlayfs: fuse: device not found",
  });
  assert.equal(devFuseUsable("/nonexistent/fuse"), "no /nonexistent/fuse");
});

const skip = rootlessSkip() || (!existsSync("/usr/bin/newuidmap") && "no newuidmap (package uidmap)");
const place = skip ? undefined : nobodyRoot("scar-rootless-rootfs-");
after(() => place?.cleanup());

/** fuse-overlayfs can run for the user here: installed, and /dev/fuse open to it; else why not */
const fuseSkip =
  skip ||
  (!existsSync("/usr/bin/fuse-overlayfs") && "no fuse-overlayfs (package fuse-overlayfs)") ||
  (spawnSync(NOBODY[0]!, [...NOBODY.slice(1), "test", "-r", "/dev/fuse", "-a", "-w", "/dev/fuse"]).status !==
    0 &&
    "/dev/fuse is not open to the user");

/**
 * Runs a child script (default rootless-rootfs-child.js, given `<name>.tar`) as the ordinary user
 * with these /etc/subuid and /etc/subgid texts.
 */
function child(
  name: string,
  subids: string,
  script = "rootless-rootfs-child.js",
  archives = [join(place!.root, `${name}.tar`)],
) {
  const work = place!.dir(name);
  const archive = archives[0]!;
  const ids = join(place!.root, `${name}.subids`);
  writeFileSync(ids, subids);
  const path = new URL(`./${script}`, import.meta.url).pathname;
  const r = spawnSync(
    "unshare",
    [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$1" /etc/subuid && mount --bind "$1" /etc/subgid && shift && exec "$@"',
      "sh",
      ids,
      ...NOBODY,
      process.execPath,
      path,
      work,
      ...archives,
    ],
    {
      encoding: "utf8",
      env: { ...nobodyEnv(work), ...(fuseSkip ? {} : { SCAR_TEST_FUSE: "1" }) },
      cwd: work,
      timeout: 600_000,
    },
  );
  return { r, archive };
}

test("rootless with subordinate ranges: the container sees the tar's owners", { skip }, async () => {
  const archive = join(place!.root, "ranges.tar");
  writeFileSync(archive, await ownersArchive());
  const { r } = child("ranges", `${NOBODY_UID}:200000:65536\n`);
  assert.equal(r.status, 0, `the child failed: ${r.stderr}${r.stdout}`);
  const x = JSON.parse(r.stdout);
  assert.equal(x.mapping, "ranges");
  assert.deepEqual(x.recorded, [
    [
      ["home/app", 1000, 1000],
      ["home/app/data", 1000, 1000],
    ],
    [
      ["bin/sgid", 0, 50],
      ["bin/suid", 1000, 1000],
      ["home/app", 1000, 1000],
      ["home/app/new", 1000, 1000],
      ["srv/link", 65534, 65534],
      ["srv/nobody", 65534, 65534],
    ],
  ]);
  assert.deepEqual(x.mapped, [x.ownersKey, x.ownersKey]);
  assert.deepEqual(x.logged, []);
  assert.equal(x.reason, "ok", JSON.stringify(x));
  assert.equal(
    x.stdout,
    [
      "/etc/rootfile 0 0 644",
      "/home/app 1000 1000 750",
      "/home/app/data 1000 1000 640",
      "/home/app/new 1000 1000 644",
      "/srv/nobody 65534 65534 644",
      "/srv/link 65534 65534 644",
      "/bin/suid 1000 1000 755",
      "/bin/sgid 0 50 755",
      "",
    ].join("\n"),
    "the tar's owners; no setuid or setgid bit",
  );
  // on the host: the subordinate ids (1 is 200000), the user for root
  assert.deepEqual(x.host, {
    user: NOBODY_UID,
    "home/app": 200000 + 999,
    "srv/nobody": 200000 + 65533,
    "etc/rootfile": NOBODY_UID,
    suidMode: 0o755,
  });
  assert.deepEqual(x.layersLeft, [], "layers of subordinate ids removed (in a user namespace)");
  if (fuseSkip) return;
  // the same layers through fuse-overlayfs: the same owners, writable, and open to uid 1000
  assert.equal(x.fuse.overlay.fuse, "/usr/bin/fuse-overlayfs", JSON.stringify(x.fuse));
  assert.equal(x.fuse.root.reason, "ok", JSON.stringify(x.fuse));
  assert.equal(x.fuse.root.stdout, `${x.stdout}fuse-root\nw\n`);
  assert.deepEqual(x.fuse.app, { reason: "ok", stdout: "1000\napp data\n", stderr: "" });
  assert.deepEqual(x.fuse.runsLeft, []);
});

test("rootless with subordinate ranges: an image pulled later writes under a closed folder of a shared, mapped layer", {
  skip,
}, async () => {
  // the first image's /home/app is uid 1000's, 0750, once mapped: closed to the user outside the
  // namespace; the second image's top layer puts files in it, which unpacking looks up below
  const first = join(place!.root, "shared-first.tar");
  const second = join(place!.root, "shared-second.tar");
  writeFileSync(first, await ownersArchive());
  writeFileSync(second, await sharedBaseArchive());
  const { r } = child("shared", `${NOBODY_UID}:200000:65536\n`, "rootless-shared-layer-child.js", [
    first,
    second,
  ]);
  assert.equal(r.status, 0, `the child failed: ${r.stderr}${r.stdout}`);
  const x = JSON.parse(r.stdout);
  assert.equal(x.mapping, "ranges");
  assert.equal(x.error, undefined, "the second image unpacks");
  assert.equal(x.shared, true, "both images use one first layer");
  assert.deepEqual(x.recorded, [
    ["home/app", 1000, 1000],
    ["home/app/data", 1000, 1000],
    ["home/app/later", 1000, 1000],
    ["home/app/linked", 1000, 1000],
    ["home/app/sub", 1000, 1000],
    ["home/app/sub/deep", 1000, 1000],
  ]);
  assert.equal(x.run.reason, "ok", JSON.stringify(x.run));
  assert.equal(
    x.run.stdout,
    [
      "/home/app 1000 1000 750",
      "/home/app/data 1000 1000 640",
      "/home/app/later 1000 1000 640",
      "/home/app/sub 1000 1000 700",
      "/home/app/sub/deep 1000 1000 644",
      "/home/app/linked 1000 1000 640",
      "app data",
      "deep",
      ".",
      "..",
      "data",
      "later",
      "linked",
      "sub",
      "",
    ].join("\n"),
  );
  assert.deepEqual(x.layersLeft, [], "layers of subordinate ids removed");
});

test("rootless with subordinate ranges: scar image import, rm and prune of images whose layers were given their owners", {
  skip,
}, async () => {
  const first = join(place!.root, "prune-first.tar");
  const second = join(place!.root, "prune-second.tar");
  writeFileSync(first, await ownersArchive());
  writeFileSync(second, await sharedBaseArchive());
  const { r } = child("prune", `${NOBODY_UID}:200000:65536\n`, "rootless-prune-child.js", [
    bin,
    first,
    second,
  ]);
  assert.equal(r.status, 0, `the child failed: ${r.stderr}${r.stdout}`);
  const x = JSON.parse(r.stdout);
  assert.equal(x.mapping, "ranges");
  const dir = (chainId: string) => chainId.replace(/^sha256:/, "");
  const [base, firstTop] = (x.first as string[]).map(dir);
  const secondTop = dir(x.second[1]);
  assert.equal(dir(x.second[0]), base, "one shared first layer");
  assert.deepEqual(x.before, [base, firstTop, secondTop].sort());
  assert.match(x.rm, /^Untagged: localhost\/prune\/first:1\n/);
  // rm deletes what no other image uses; the prune after it finds nothing left
  assert.match(x.rm, /Deleted: sha256:[0-9a-f]{64}\n/);
  assert.equal(x.prune, "Removed 0 images, 0 blobs, 0 unpacked layers; reclaimed 0 B\n");
  assert.deepEqual(
    x.afterFirst,
    [base, secondTop].sort(),
    "the first image's own layer is gone, given owners and all",
  );
  assert.equal(x.run.reason, "ok", JSON.stringify(x.run));
  assert.equal(x.run.stdout, "/home/app/data 1000 1000 640\n/home/app/later 1000 1000 640\napp data\n");
  assert.equal(x.pruneAll.images.length, 1);
  assert.equal(x.pruneAll.layers, 2, "prune --all removes both layers, given owners and all");
  assert.deepEqual(x.afterAll, [], "no layer left");
});

test("fuse-overlayfs: a crashed engine's daemon ends with the next runner's sweep", {
  skip: fuseSkip,
}, async () => {
  const work = place!.dir("crash");
  const archive = join(place!.root, "crash.tar");
  writeFileSync(archive, await ownersArchive());
  const script = new URL("./rootless-fuse-crash-child.js", import.meta.url).pathname;
  const run = (mode: string) =>
    spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, script, mode, work, archive], {
      encoding: "utf8",
      env: nobodyEnv(work),
      cwd: work,
      timeout: 300_000,
    });
  const crashed = run("crash");
  assert.equal(crashed.signal, "SIGKILL", `the first runner killed itself: ${crashed.stderr}`);
  const r = run("reopen");
  assert.equal(r.status, 0, `the second runner failed: ${r.stderr}${r.stdout}`);
  assert.deepEqual(JSON.parse(r.stdout), {
    before: 1,
    after: 0,
    sleepers: 0,
    reason: "ok",
    stdout: "app data\n",
  });
});

test("rootless without subordinate ranges: every file is the user's, root's inside", { skip }, async () => {
  const archive = join(place!.root, "single.tar");
  writeFileSync(archive, await ownersArchive());
  const { r } = child("single", "");
  assert.equal(r.status, 0, `the child failed: ${r.stderr}${r.stdout}`);
  const x = JSON.parse(r.stdout);
  assert.equal(x.mapping, "single");
  assert.equal(x.ownersKey, undefined);
  assert.deepEqual(x.mapped, [null, null]);
  assert.equal(x.reason, "ok", JSON.stringify(x));
  assert.match(x.stdout, /^\/etc\/rootfile 0 0 644\n\/home\/app 0 0 750\n/);
  assert.match(x.stdout, /\/srv\/nobody 0 0 644\n/);
  assert.match(x.stdout, /\/bin\/suid 0 0 755\n\/bin\/sgid 0 0 755\n$/);
  assert.equal(x.host["srv/nobody"], NOBODY_UID);
  assert.deepEqual(x.layersLeft, []);
});
