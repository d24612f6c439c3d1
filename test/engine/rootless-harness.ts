/**
 * What the rootless tests share: they run as root (as `npm test` does in CI) and drop to `nobody`
 * themselves (setpriv), in folders of nobody's own under a temp folder others may enter (mkdtemp
 * makes it 0700 root). And an image archive whose second layer whites out a file and makes a folder
 * opaque, unpacked by nobody the way a rootless engine unpacks it.
 */

import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { join } from "node:path";
import { craftTar, tempDir } from "./images/helpers.js";
import { busyboxLayer } from "./images/registry-harness.js";

/**
 * The ordinary user the rootless tests run as: nobody, or the one SCAR_TEST_ROOTLESS_UID names (the
 * cgroup v2 VM's user with a systemd user session, scripts/test-hosts.sh).
 */
export const NOBODY_UID = Number(process.env.SCAR_TEST_ROOTLESS_UID || 65534);
/**
 * What that user's engine should find, as the host's set-up makes it (test-hosts.sh sets these for
 * its user): a delegated cgroup with memory, pids and cpu (`SCAR_TEST_ROOTLESS_LIMITS=1`), and
 * /etc/subuid ranges with newuidmap (`SCAR_TEST_ROOTLESS_MAPPING=ranges`). Default: neither (nobody
 * on a hybrid-cgroup host).
 */
export const EXPECT = {
  limits: process.env.SCAR_TEST_ROOTLESS_LIMITS === "1",
  mapping: process.env.SCAR_TEST_ROOTLESS_MAPPING === "ranges" ? "ranges" : "single",
} as const;
export const NOBODY = ["setpriv", `--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, "--clear-groups", "--"];
export const bin = new URL("../../../bin/scar", import.meta.url).pathname;

function asNobodyOk(...argv: string[]): boolean {
  return spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], { stdio: "ignore" }).status === 0;
}

/** Why the rootless tests cannot run here (false when they can). */
export function rootlessSkip(): string | false {
  if (process.getuid?.() !== 0) return "needs root to drop to nobody";
  if (!asNobodyOk("test", "-x", bin))
    return "the checkout is not reachable by nobody (a folder above it is closed)";
  if (!asNobodyOk("unshare", "-Ur", "true")) return "this kernel gives nobody no user namespace";
  return false;
}

/** A temp folder others may enter, holding folders of nobody's own (`nobodyDir`). */
export function nobodyRoot(prefix: string): { root: string; dir(name: string): string; cleanup(): void } {
  const root = tempDir(prefix);
  fs.chmodSync(root, 0o755);
  return {
    root,
    dir(name: string) {
      const d = join(root, name);
      fs.mkdirSync(d, { recursive: true });
      fs.chownSync(d, NOBODY_UID, NOBODY_UID);
      return d;
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** Runs `argv` as nobody with HOME=`home` and no SCAR_* variables of the caller's. */
export function asNobody(
  home: string,
  argv: string[],
  opts: { timeout?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], {
    encoding: "utf8",
    env: nobodyEnv(home),
    cwd: home,
    timeout: opts.timeout ?? 180_000,
  });
}

export function nobodyEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of Object.keys(env)) if (k.startsWith("SCAR_") || k.startsWith("XDG_")) delete env[k];
  return env;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * A `docker save` archive of two layers: busybox with /etc/issue, /opq/old and /etc/motd, then a layer
 * that whites out /etc/issue, makes /opq opaque (with /opq/new), changes /etc/motd and adds a
 * setuid program and /etc/owned, uid 1000's in the tar.
 */
export async function layeredArchive(): Promise<Buffer> {
  const base = Buffer.concat([
    (await busyboxLayer()).subarray(0, -1024), // without its end-of-archive blocks
    craftTar([
      { name: "etc/issue", data: "base issue\n" },
      { name: "etc/motd", data: "from base\n" },
      { name: "opq/", type: "dir" },
      { name: "opq/old", data: "hidden\n" },
    ]),
  ]);
  const top = craftTar([
    { name: "etc/.wh.issue", data: "" },
    { name: "etc/motd", data: "from top\n" },
    { name: "opq/", type: "dir" },
    { name: "opq/.wh..wh..opq", data: "" },
    { name: "opq/new", data: "visible\n" },
    { name: "bin/suid", data: "#!/bin/sh\nid -u\n", mode: 0o4755 },
    { name: "etc/owned", data: "uid 1000's\n", uid: 1000, gid: 1000 },
  ]);
  return dockerArchive([base, top]);
}

/**
 * A `docker save` archive whose layers' tar owners are 0, 1000 and 65534: busybox with /home/app
 * (1000:1000, 0750) holding a file of 1000's, then a layer with /srv/nobody (65534:65534), /etc/rootfile
 * (0:0), a setuid program of 1000's and a setgid one of group 50, a hard link to 1000's file, and a
 * file in /home/app named without its folder (the folder copied up from below keeps 1000:1000).
 */
export async function ownersArchive(): Promise<Buffer> {
  const base = await ownersBase();
  const top = craftTar([
    { name: "srv/", type: "dir", mode: 0o755 },
    { name: "srv/nobody", data: "n\n", uid: 65534, gid: 65534 },
    { name: "etc/rootfile", data: "r\n" },
    { name: "bin/suid", data: "#!/bin/sh\nid -u\n", mode: 0o4755, uid: 1000, gid: 1000 },
    { name: "bin/sgid", data: "#!/bin/sh\nid -g\n", mode: 0o2755, gid: 50 },
    { name: "home/app/new", data: "new\n", uid: 1000, gid: 1000 },
    { name: "srv/link", type: "link", linkname: "srv/nobody", uid: 65534, gid: 65534 },
  ]);
  return dockerArchive([base, top]);
}

/** ownersArchive's first layer: busybox with /home/app (1000:1000, 0750) and its file /home/app/data. */
async function ownersBase(): Promise<Buffer> {
  return Buffer.concat([
    (await busyboxLayer()).subarray(0, -1024),
    craftTar([
      { name: "home/", type: "dir", mode: 0o755 },
      { name: "home/app/", type: "dir", mode: 0o750, uid: 1000, gid: 1000 },
      { name: "home/app/data", data: "app data\n", mode: 0o640, uid: 1000, gid: 1000 },
    ]),
  ]);
}

/**
 * An image that shares ownersArchive's first layer and whose second writes under that layer's 0750
 * folder of uid 1000: a file and a folder of 1000's, a hard link to the folder's file (copied up from
 * below), and a whiteout of a file the folder does not have.
 */
export async function sharedBaseArchive(): Promise<Buffer> {
  const top = craftTar([
    { name: "home/app/later", data: "later\n", mode: 0o640, uid: 1000, gid: 1000 },
    { name: "home/app/sub/", type: "dir", mode: 0o700, uid: 1000, gid: 1000 },
    { name: "home/app/sub/deep", data: "deep\n", uid: 1000, gid: 1000 },
    { name: "home/app/linked", type: "link", linkname: "home/app/data", uid: 1000, gid: 1000 },
    { name: "home/app/.wh.never", data: "" },
  ]);
  return dockerArchive([await ownersBase(), top]);
}

/** A `docker save` archive of these layer tars, bottom to top (Cmd /bin/sh, PATH=/bin). */
function dockerArchive(layers: Buffer[]): Buffer {
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === "arm64" ? "arm64" : "amd64",
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
    }),
  );
  return craftTar([
    ...layers.flatMap((l) => [
      { name: `${sha(l)}/`, type: "dir" as const },
      { name: `${sha(l)}/layer.tar`, data: l },
    ]),
    { name: `${sha(config)}.json`, data: config },
    {
      name: "manifest.json",
      data: JSON.stringify([
        { Config: `${sha(config)}.json`, RepoTags: null, Layers: layers.map((l) => `${sha(l)}/layer.tar`) },
      ]),
    },
  ]);
}
