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
import { chooseMapping, chownCommands } from "../../../src/engine/runtime/rootless.js";
import {
  NOBODY,
  NOBODY_UID,
  nobodyEnv,
  nobodyRoot,
  ownersArchive,
  rootlessSkip,
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

const skip = rootlessSkip() || (!existsSync("/usr/bin/newuidmap") && "no newuidmap (package uidmap)");
const place = skip ? undefined : nobodyRoot("scar-rootless-owners-");
after(() => place?.cleanup());

/** Runs the child as the ordinary user with these /etc/subuid and /etc/subgid texts. */
function child(name: string, subids: string) {
  const work = place!.dir(name);
  const archive = join(place!.root, `${name}.tar`);
  const ids = join(place!.root, `${name}.subids`);
  writeFileSync(ids, subids);
  const script = new URL("./rootless-owners-child.js", import.meta.url).pathname;
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
      script,
      work,
      archive,
    ],
    { encoding: "utf8", env: nobodyEnv(work), cwd: work, timeout: 600_000 },
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
