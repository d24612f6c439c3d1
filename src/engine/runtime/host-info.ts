/**
 * The raw facts of this host that decide how (and whether) the engine can run containers: who we
 * are, the cgroup layout, user namespaces, subordinate ids, overlay support. Only reading here, kept
 * as the files' own text, so that host-checks.ts (which judges them) can be tested with fixture
 * text of hosts unlike this one (cgroup v2 with systemd, no root).
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { release, userInfo } from "node:os";
import { join } from "node:path";
import { type CgroupLayout, parseProcCgroup, readCgroupLayout } from "./cgroups.js";
import { findBinary } from "./detect.js";

const CGROUP_ROOT = "/sys/fs/cgroup";

/** One cgroup2 folder as the engine sees it. */
export interface Cgroup2Dir {
  /** path under the cgroup2 mount, "/" for the root */
  path: string;
  /** text of cgroup.controllers: what this cgroup may enable for its children */
  controllers: string;
  /** text of cgroup.subtree_control: what it has enabled for them */
  subtreeControl: string;
  /** we may create child cgroups here and move processes in (a delegated cgroup, or root) */
  writable: boolean;
  ownerUid: number;
}

export interface HostInfo {
  uid: number;
  /** the user's name, when the passwd database has one */
  user?: string;
  kernelRelease: string;
  /** /sys/fs/cgroup, its unified mount, /proc/self/cgroup */
  cgroups: CgroupLayout;
  /** on cgroup v2: the root cgroup (where a root engine's containers go) and the engine's own */
  v2Root?: Cgroup2Dir;
  v2Own?: Cgroup2Dir;
  /** text of /proc/1/comm ("systemd" when systemd is PID 1) */
  pid1: string;
  /** the sysctls, undefined when the kernel has no such file */
  sysctl: {
    maxUserNamespaces?: number;
    unprivilegedUsernsClone?: number;
    apparmorRestrictUnprivilegedUserns?: number;
  };
  /** the kernel was built with user namespaces (/proc/self/ns/user exists) */
  userNamespacesBuilt: boolean;
  /** `unshare -Ur true` as this user: undefined when it worked, else why not */
  unshareProbe: { ok: true } | { ok: false; error: string };
  newuidmap?: string;
  newgidmap?: string;
  /** text of /etc/subuid and /etc/subgid ("" when missing) */
  subuid: string;
  subgid: string;
  /** text of /proc/filesystems */
  procFilesystems: string;
  /** overlay is a module of this kernel that modprobe could load */
  overlayModule: boolean;
  fuseOverlayfs?: string;
  /** /dev/fuse can be used by a rootless engine: open to this user, or (as root) to every user */
  devFuse: boolean;
  mkfsExt4?: string;
  loopControl: boolean;
}

function text(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function sysctl(p: string): number | undefined {
  try {
    const n = Number(readFileSync(p, "utf8").trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The cgroup `path` of the cgroup2 file system mounted at `mount`; undefined when it is not there. */
export function readCgroup2Dir(mount: string, path: string): Cgroup2Dir | undefined {
  const dir = join(mount, path);
  let ownerUid: number;
  try {
    ownerUid = statSync(dir).uid;
  } catch {
    return undefined; // in a cgroup namespace whose path is not under our mount
  }
  let writable = true;
  try {
    accessSync(dir, constants.W_OK);
    accessSync(join(dir, "cgroup.procs"), constants.W_OK);
  } catch {
    writable = false;
  }
  return {
    path,
    controllers: text(join(dir, "cgroup.controllers")).trim(),
    subtreeControl: text(join(dir, "cgroup.subtree_control")).trim(),
    writable,
    ownerUid,
  };
}

/** Whether `unshare -Ur true` works for this user: the one test that settles every sysctl and LSM rule. */
export function probeUnshare(): HostInfo["unshareProbe"] {
  const unshare = findBinary("unshare");
  if (!unshare) return { ok: false, error: "unshare is not installed" };
  try {
    execFileSync(unshare, ["-Ur", "true"], { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
    return { ok: true };
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    const said = err.stderr?.toString().trim();
    return { ok: false, error: said || err.message };
  }
}

/** Everything a user-namespace verdict needs (cheap: one `unshare`). */
export function readUsernsInfo(): Pick<HostInfo, "uid" | "sysctl" | "userNamespacesBuilt" | "unshareProbe"> {
  return {
    uid: process.getuid?.() ?? -1,
    sysctl: {
      maxUserNamespaces: sysctl("/proc/sys/user/max_user_namespaces"),
      unprivilegedUsernsClone: sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
      apparmorRestrictUnprivilegedUserns: sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
    },
    userNamespacesBuilt: existsSync("/proc/self/ns/user"),
    unshareProbe: probeUnshare(),
  };
}

export function readHostInfo(): HostInfo {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    // a uid without a passwd entry
  }
  const cgroups = readCgroupLayout();
  const ownV2 = parseProcCgroup(cgroups.procSelfCgroup).get("");
  const kernelRelease = release();
  const info: HostInfo = {
    ...readUsernsInfo(),
    ...(user !== undefined ? { user } : {}),
    kernelRelease,
    cgroups,
    pid1: text("/proc/1/comm").trim(),
    subuid: text("/etc/subuid"),
    subgid: text("/etc/subgid"),
    procFilesystems: text("/proc/filesystems"),
    overlayModule: ["", ".xz", ".zst", ".gz"].some((z) =>
      existsSync(`/lib/modules/${kernelRelease}/kernel/fs/overlayfs/overlay.ko${z}`),
    ),
    devFuse: devFuseOpen(),
    loopControl: existsSync("/dev/loop-control"),
  };
  if (cgroups.root === "cgroup2") {
    const root = readCgroup2Dir(CGROUP_ROOT, "/");
    if (root) info.v2Root = root;
    const own = ownV2 !== undefined ? readCgroup2Dir(CGROUP_ROOT, ownV2) : undefined;
    if (own) info.v2Own = own;
  }
  for (const [key, bin] of [
    ["newuidmap", "newuidmap"],
    ["newgidmap", "newgidmap"],
    ["fuseOverlayfs", "fuse-overlayfs"],
    ["mkfsExt4", "mkfs.ext4"],
  ] as const) {
    const p = findBinary(bin);
    if (p) info[key] = p;
  }
  return info;
}

/** See HostInfo.devFuse. */
function devFuseOpen(): boolean {
  try {
    if (process.getuid?.() !== 0) {
      accessSync("/dev/fuse", constants.R_OK | constants.W_OK);
      return true;
    }
    return (statSync("/dev/fuse").mode & 0o006) === 0o006;
  } catch {
    return false;
  }
}
