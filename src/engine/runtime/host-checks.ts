/**
 * `scar doctor`'s judgement of the host facts host-info.ts reads: the cgroup layout and delegation,
 * systemd, user namespaces, subordinate ids, the overlay flavour, and which limits hold as root and
 * which hold rootless (rootless.ts). Pure functions of text, so hosts unlike this one (cgroup v2
 * with systemd, no root) are covered by tests with fixture text. Each missing piece says what it
 * costs and the package or sysctl that fixes it.
 */
import { type CgroupMode, classifyCgroups, parseProcCgroup } from "./cgroups.js";
import { installCommand } from "./detect.js";
import type { Cgroup2Dir, HostInfo } from "./host-info.js";
import type { RootlessLimits } from "./rootless.js";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface Check {
  name: string;
  status: CheckStatus;
  /** what was found (and, when something is missing, what that costs) */
  value: string;
  /** what to run to fix it */
  fix?: string;
}

/** How the checks name an ordinary user's engine (rootless.ts). */
export const ROOTLESS = "rootless";

/** The words of a controllers file ("cpuset cpu io memory pids"). */
export function controllerSet(text: string | undefined): Set<string> {
  return new Set((text ?? "").split(/\s+/).filter((w) => w !== ""));
}

/** "6.8.0-45-generic" >= 5.11? */
export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/** Whether /proc/filesystems lists `fs` ("nodev\toverlay"). */
export function hasFilesystem(procFilesystems: string, fs: string): boolean {
  return procFilesystems.split("\n").some((l) => l.trim().split(/\s+/).pop() === fs);
}

export interface SubidRange {
  start: number;
  count: number;
}

/** The ranges /etc/subuid (or /etc/subgid) gives a user, listed by name or by uid. */
export function subidRanges(text: string, user: string | undefined, uid: number): SubidRange[] {
  const out: SubidRange[] = [];
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if (who === undefined || start === undefined || count === undefined) continue;
    if (who !== user && who !== String(uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

export function cgroupModeOf(info: Pick<HostInfo, "cgroups">): CgroupMode {
  return classifyCgroups(info.cgroups);
}

/** "cgroup v1" or "hybrid cgroups", for sentences about either. */
function v1Words(mode: CgroupMode): string {
  return mode === "hybrid" ? "hybrid cgroups" : `cgroup ${mode}`;
}

const MODE_TEXT: Record<CgroupMode, string> = {
  v1: "v1 (legacy controllers only)",
  hybrid:
    "hybrid (v1 controllers + cgroup2 with controllers): crun runs in a private mount namespace that hides the cgroup2 mount",
  v2: "unified v2",
  none: "not mounted: no memory or pids limits possible",
};

export function cgroupsCheck(info: Pick<HostInfo, "cgroups">): Check {
  const mode = cgroupModeOf(info);
  return {
    name: "cgroups",
    status: mode === "none" ? "fail" : "ok",
    value: MODE_TEXT[mode],
    ...(mode === "none"
      ? { fix: "mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)" }
      : {}),
  };
}

export function systemdIsPid1(info: Pick<HostInfo, "pid1">): boolean {
  return info.pid1 === "systemd";
}

/** The fix that moves a user's process into a cgroup systemd delegates to it. */
const DELEGATED_SCOPE = "systemd-run --user --scope -p Delegate=yes scar serve";
/** What gives an ordinary user's engine a delegated cgroup on a systemd host. */
export const USER_SESSION =
  "a systemd user session for the user: log in, or keep one without a login: loginctl enable-linger <user> (an administrator's command); its bus needs the dbus-user-session package";
/** The systemd drop-in that delegates cpu (and io, cpuset) to users' services, not only memory and pids. */
const DELEGATE_ALL =
  "mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload (then log in again)";

function describeV2(d: Cgroup2Dir | undefined): string {
  if (!d) return "not found under /sys/fs/cgroup (a cgroup namespace?)";
  return `${d.path} (${d.writable ? "writable" : "not writable"}, owner uid ${d.ownerUid}; controllers: ${d.controllers || "none"}; subtree_control: ${d.subtreeControl || "none"})`;
}

/**
 * On cgroup v2: is the engine's own cgroup delegated to it (writable), and what does it hold. A root
 * engine puts its containers under the root cgroup; a rootless one would need its own cgroup
 * delegated, which systemd does for a user's services and `systemd-run --user --scope` (the rootless
 * runtime does not use one yet: see rootlessCgroupLimit).
 */
export function cgroupDelegationCheck(
  info: Pick<HostInfo, "cgroups" | "uid" | "v2Own" | "v2Root" | "pid1">,
): Check {
  const mode = cgroupModeOf(info);
  if (mode !== "v2")
    return {
      name: "cgroup delegation",
      status: "skip",
      value:
        mode === "none"
          ? "no cgroups"
          : `${v1Words(mode)}: v1 controllers cannot be delegated to a user safely, so containers run ${ROOTLESS} would have no memory, pids or cpu limits here`,
    };
  const own = `own cgroup ${describeV2(info.v2Own)}`;
  if (info.uid === 0)
    return {
      name: "cgroup delegation",
      status: "ok",
      value: `root: ${rootPlacement(info)} (controllers: ${info.v2Root?.controllers || "none"}); ${own}`,
    };
  if (info.v2Own?.writable) return { name: "cgroup delegation", status: "ok", value: `delegated: ${own}` };
  return {
    name: "cgroup delegation",
    status: "warn",
    value: `not delegated: ${own}; ${ROOTLESS} containers would need a cgroup of their own to set limits in`,
    fix: systemdIsPid1(info)
      ? DELEGATED_SCOPE
      : "have your init system delegate a cgroup to this user (systemd does it for user services)",
  };
}

/** Where a root engine's containers go on cgroup v2 (cgroup2.ts decides it the same way at start). */
function rootPlacement(info: Pick<HostInfo, "v2Own" | "pid1">): string {
  const own = info.v2Own?.path;
  if (own === "/") return "containers go under the root cgroup";
  const leaf = "the engine moves into a leaf (scar-engine) and its containers go beside it";
  if (!systemdIsPid1(info)) return `${leaf}, in its own cgroup`;
  return `${leaf}, in its own cgroup when systemd delegated it (Delegate=yes), else in a transient scope systemd makes for it (scar-engine-<pid>.scope, Delegate=yes)`;
}

export function systemdCheck(info: Pick<HostInfo, "pid1" | "cgroups"> & { uid?: number }): Check {
  if (systemdIsPid1(info))
    return { name: "systemd", status: "ok", value: "PID 1 (it can delegate cgroups to users)" };
  const v2 = cgroupModeOf(info) === "v2";
  const not = `not PID 1 (PID 1 is ${info.pid1 || "unknown"})`;
  // an ordinary user's engine is the rootless one: what it costs that user, not what root needs
  if (info.uid !== undefined && info.uid !== 0)
    return {
      name: "systemd",
      status: "ok",
      value: `${not}: no systemd delegates a cgroup to you, so your ${ROOTLESS} engine's containers get no memory, pids or cpu limits${v2 ? " unless its cgroup is delegated to you another way" : ""} (see cgroup delegation)`,
    };
  return {
    name: "systemd",
    status: "ok",
    value: `${not}: not needed by a root engine${v2 ? `; a ${ROOTLESS} engine (an ordinary user's) would need another way to get a delegated cgroup` : ""}`,
  };
}

export interface Blocker {
  /** what stops it, naming the sysctl or package */
  reason: string;
  fix: string;
}

type UsernsFacts = Pick<HostInfo, "uid" | "sysctl" | "userNamespacesBuilt" | "unshareProbe">;

/**
 * Why this user cannot make a user namespace, naming the sysctl (or the kernel option, or the
 * package) that decides it; undefined when `unshare -Ur true` worked. The sysctls come first: they
 * say what to change, where unshare's own message only says "Operation not permitted".
 */
export function usernsBlocker(f: UsernsFacts): Blocker | undefined {
  const persist = (kv: string) => `sysctl -w ${kv} (to keep it: echo ${kv} > /etc/sysctl.d/90-userns.conf)`;
  if (!f.userNamespacesBuilt)
    return { reason: "the kernel is built without user namespaces", fix: "a kernel with CONFIG_USER_NS=y" };
  if (f.sysctl.maxUserNamespaces === 0)
    return { reason: "user.max_user_namespaces = 0", fix: persist("user.max_user_namespaces=15000") };
  if (f.uid !== 0 && f.sysctl.unprivilegedUsernsClone === 0)
    return {
      reason: "kernel.unprivileged_userns_clone = 0 (only root may make them)",
      fix: persist("kernel.unprivileged_userns_clone=1"),
    };
  if (f.uid !== 0 && f.sysctl.apparmorRestrictUnprivilegedUserns === 1 && !f.unshareProbe.ok)
    return {
      reason:
        "kernel.apparmor_restrict_unprivileged_userns = 1 (AppArmor denies them to unconfined programs)",
      fix: persist("kernel.apparmor_restrict_unprivileged_userns=0"),
    };
  if (f.unshareProbe.ok) return undefined;
  if (/not installed/.test(f.unshareProbe.error))
    return { reason: "unshare is not installed", fix: installCommand("util-linux") };
  return {
    reason: `'unshare -Ur true' fails: ${f.unshareProbe.error}`,
    fix: "check the kernel's user namespace sysctls and any LSM policy that restricts them",
  };
}

export function userNamespacesCheck(f: UsernsFacts & Pick<HostInfo, "user">): Check {
  const b = usernsBlocker(f);
  const who = f.user ?? `uid ${f.uid}`;
  if (b)
    return {
      name: "user namespaces",
      status: "warn",
      value: `not available to ${who}: ${b.reason}; a ${ROOTLESS} engine (one started by an ordinary user) needs them, so only root can start the engine here`,
      fix: b.fix,
    };
  const max = f.sysctl.maxUserNamespaces;
  return {
    name: "user namespaces",
    status: "ok",
    value: `available (unshare -Ur works for ${who}${max !== undefined ? `, max ${max}` : ""}): ${f.uid === 0 ? `an ordinary user's engine runs its containers in one (${ROOTLESS}); a root engine's containers share the host's ids, held by dropped capabilities, no-new-privileges and the seccomp profile` : `your engine runs ${ROOTLESS}, its containers in a user namespace of yours`}`,
  };
}

/** newuidmap/newgidmap and /etc/subuid, /etc/subgid ranges: what maps an image's many owners rootless. */
export function subordinateIdsCheck(
  info: Pick<HostInfo, "uid" | "user" | "newuidmap" | "newgidmap" | "subuid" | "subgid">,
): Check {
  const uids = subidRanges(info.subuid, info.user, info.uid);
  const gids = subidRanges(info.subgid, info.user, info.uid);
  const missing: string[] = [];
  if (!info.newuidmap || !info.newgidmap) missing.push("newuidmap/newgidmap not installed");
  if (uids.length === 0) missing.push(`no /etc/subuid range for ${info.user ?? info.uid}`);
  if (gids.length === 0) missing.push(`no /etc/subgid range for ${info.user ?? info.uid}`);
  const found = `${uids.reduce((n, r) => n + r.count, 0)} subordinate uids, ${gids.reduce((n, r) => n + r.count, 0)} gids`;
  if (info.uid === 0)
    return {
      name: "subordinate ids",
      status: "skip",
      value: `not needed as root (a ${ROOTLESS} engine maps an image's other users and its files' owners to its user's /etc/subuid, /etc/subgid ranges with newuidmap/newgidmap); newuidmap ${info.newuidmap ? "installed" : "not installed"}`,
    };
  if (missing.length === 0)
    return {
      name: "subordinate ids",
      status: "ok",
      value: `${found}, newuidmap/newgidmap installed: in ${ROOTLESS} containers an image's files have the owners its layers give (your subordinate ids on the host, given before the image's first container) and its other users can be switched to; setuid and setgid bits are dropped`,
    };
  const fixes: string[] = [];
  if (!info.newuidmap || !info.newgidmap) fixes.push(uidmapInstall());
  if (uids.length === 0 || gids.length === 0)
    fixes.push(
      `ask an administrator to run: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${info.user ?? info.uid}`,
    );
  return {
    name: "subordinate ids",
    status: "warn",
    value: `${missing.join("; ")}: ${ROOTLESS} containers map only your own uid: every file of an image is yours (root in the container, whatever owner its layers give), an image's other User runs as root of the namespace (you), and setuid bits are dropped`,
    fix: fixes.join("; "),
  };
}

/** newuidmap's package differs by distribution. */
function uidmapInstall(): string {
  const cmd = installCommand("uidmap");
  if (cmd.includes("dnf ") || cmd.includes("zypper ")) return cmd.replace("uidmap", "shadow-utils");
  if (cmd.includes("apk ")) return cmd.replace("uidmap", "shadow-uidmap");
  return cmd;
}

export interface OverlayFlavour {
  /** what a root engine mounts */
  root: "kernel overlay" | "copy fallback";
  /**
   * what a rootless engine mounts: the kernel's overlay in its user namespace, else fuse-overlayfs,
   * else a copy (the runner tries them in that order: rootfs.ts chooseRootlessOverlay)
   */
  rootless: "overlay in a user namespace" | "fuse-overlayfs" | "copy fallback";
}

export function overlayFlavour(
  info: Pick<HostInfo, "procFilesystems" | "overlayModule" | "kernelRelease" | "fuseOverlayfs" | "devFuse">,
): OverlayFlavour {
  const kernel = hasFilesystem(info.procFilesystems, "overlay") || info.overlayModule;
  return {
    root: kernel ? "kernel overlay" : "copy fallback",
    rootless:
      kernel && kernelAtLeast(info.kernelRelease, 5, 11)
        ? "overlay in a user namespace"
        : info.fuseOverlayfs && info.devFuse
          ? "fuse-overlayfs"
          : "copy fallback",
  };
}

export function overlayFlavourCheck(
  info: Pick<
    HostInfo,
    "uid" | "procFilesystems" | "overlayModule" | "kernelRelease" | "fuseOverlayfs" | "devFuse"
  >,
): Check {
  const f = overlayFlavour(info);
  const loaded = hasFilesystem(info.procFilesystems, "overlay");
  const kernel = loaded
    ? "kernel overlay"
    : info.overlayModule
      ? "kernel overlay (module, loaded at first mount)"
      : "no kernel overlay";
  const fuse = !info.fuseOverlayfs
    ? "fuse-overlayfs not installed"
    : !info.devFuse
      ? "fuse-overlayfs installed, but /dev/fuse is missing or closed to you"
      : "fuse-overlayfs installed";
  const userns = kernelAtLeast(info.kernelRelease, 5, 11)
    ? `kernel ${info.kernelRelease} >= 5.11: overlay with userxattr`
    : `kernel ${info.kernelRelease} < 5.11: no overlay in a user namespace`;
  const rootless =
    f.rootless === "overlay in a user namespace"
      ? `the kernel's overlay in a user namespace (${userns}); fuse-overlayfs where the kernel refuses that mount${info.fuseOverlayfs && info.devFuse ? "" : ` (${fuse}: then a copy per run)`}`
      : f.rootless === "fuse-overlayfs"
        ? `fuse-overlayfs (${userns}; ${fuse}): a FUSE daemon per run, slower than the kernel's overlay, no copy`
        : `copy fallback: each run copies the image (${kernel === "no kernel overlay" ? kernel : userns}; ${fuse})`;
  const value = `as root: ${f.root === "kernel overlay" ? kernel : "copy fallback (each run copies the image: slow, and as much disk as the image)"}; ${ROOTLESS}: ${rootless}`;
  if (info.uid === 0 && f.root === "copy fallback")
    return {
      name: "overlay flavour",
      status: "warn",
      value,
      fix: "a kernel with CONFIG_OVERLAY_FS (or modprobe overlay)",
    };
  if (info.uid !== 0 && f.rootless === "copy fallback")
    return {
      name: "overlay flavour",
      status: "warn",
      value,
      fix: `${info.fuseOverlayfs ? "make /dev/fuse readable and writable by users (crw-rw-rw-)" : installCommand("fuse-overlayfs")}, or a kernel of 5.11 or later (the overlay in a user namespace), or run scar as root`,
    };
  return { name: "overlay flavour", status: "ok", value };
}

export type LimitName = "memory" | "pids" | "cpu" | "disk";

export interface Holds {
  holds: boolean;
  /** how it is held, or what is missing and what that costs */
  how: string;
  fix?: string;
}

export interface LimitWhere {
  limit: LimitName;
  root: Holds;
  rootless: Holds;
}

const CONTROLLER: Record<Exclude<LimitName, "disk">, string> = { memory: "memory", pids: "pids", cpu: "cpu" };
const UNLIMITED: Record<LimitName, string> = {
  memory: "a function may use all of the machine's memory",
  pids: "a fork bomb in a function reaches the machine",
  cpu: "a function may use every core",
  disk: "what a run writes is not limited",
};

function rootCgroupLimit(
  limit: Exclude<LimitName, "disk">,
  info: Pick<HostInfo, "cgroups" | "v2Root">,
): Holds {
  const mode = cgroupModeOf(info);
  const c = CONTROLLER[limit];
  const have =
    mode === "v2"
      ? controllerSet(info.v2Root?.controllers).has(c)
      : mode !== "none" && parseProcCgroup(info.cgroups.procSelfCgroup).has(c);
  if (have) return { holds: true, how: `cgroup ${mode === "v2" ? "v2" : "v1"} ${c} controller` };
  return {
    holds: false,
    how: `no ${c} controller${mode === "none" ? " (no cgroups)" : ""}: ${UNLIMITED[limit]}`,
    fix:
      limit === "memory"
        ? "boot with cgroup_enable=memory on the kernel command line"
        : `a kernel with the ${c} cgroup controller`,
  };
}

function rootlessCgroupLimit(
  limit: Exclude<LimitName, "disk">,
  info: Pick<HostInfo, "cgroups" | "v2Own" | "pid1"> & { uid?: number },
): Holds {
  const mode = cgroupModeOf(info);
  const c = CONTROLLER[limit];
  if (mode !== "v2")
    return {
      holds: false,
      how: `${v1Words(mode)}: v1 controllers cannot be delegated to a user: ${UNLIMITED[limit]}`,
      fix: "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line)",
    };
  // root's own cgroup says nothing of a user's: their engine's comes from their systemd user session
  if (info.uid === 0 && systemdIsPid1(info))
    return {
      holds: true,
      how: `cgroup v2 ${c} controller, for an ordinary user whose systemd user session delegates it (user@.service; \`scar doctor\` as that user says)`,
    };
  if (!info.v2Own?.writable)
    return systemdIsPid1(info)
      ? {
          holds: false,
          how: `the engine's cgroup is not delegated to it, so the engine asks the user's systemd user session for a scope (\`scar doctor\` as that user says whether it got one); without a session: ${UNLIMITED[limit]}`,
          fix: USER_SESSION,
        }
      : {
          holds: false,
          how: `the engine's cgroup is not delegated to it: ${UNLIMITED[limit]}`,
          fix: "delegate a cgroup to the engine's user",
        };
  if (!controllerSet(info.v2Own.controllers).has(c))
    return {
      holds: false,
      how: `${c} is not delegated (the parent's cgroup.subtree_control lacks it): ${UNLIMITED[limit]}`,
      fix: systemdIsPid1(info) ? DELEGATE_ALL : `enable ${c} in the parent cgroup's cgroup.subtree_control`,
    };
  return { holds: true, how: `cgroup v2 ${c} controller, in the cgroup delegated to this user` };
}

/** What a rootless runner found (runner.ts: its delegated cgroup, or why none), as one limit's Holds. */
export function rootlessLimitFound(limit: Exclude<LimitName, "disk">, found: RootlessLimits): Holds {
  const c = CONTROLLER[limit];
  if (found.held.includes(c))
    return { holds: true, how: `cgroup v2 ${c} controller in ${found.cgroup}, delegated to this user` };
  return {
    holds: false,
    how: `${found.held.length > 0 ? `${c} is not delegated to this user` : (found.why ?? "no delegated cgroup")}: ${UNLIMITED[limit]}`,
    fix: found.held.length > 0 ? DELEGATE_ALL : USER_SESSION,
  };
}

function rootDisk(
  info: Pick<
    HostInfo,
    | "mkfsExt4"
    | "loopControl"
    | "procFilesystems"
    | "overlayModule"
    | "kernelRelease"
    | "fuseOverlayfs"
    | "devFuse"
  >,
): Holds {
  if (overlayFlavour(info).root !== "kernel overlay")
    return {
      holds: false,
      how: `no overlay (runs use the copy fallback): ${UNLIMITED.disk}`,
      fix: "a kernel with CONFIG_OVERLAY_FS",
    };
  if (!info.mkfsExt4)
    return { holds: false, how: `no mkfs.ext4: ${UNLIMITED.disk}`, fix: installCommand("e2fsprogs") };
  if (!info.loopControl)
    return { holds: false, how: `no /dev/loop-control: ${UNLIMITED.disk}`, fix: "modprobe loop" };
  return { holds: true, how: "each run's own loop-mounted ext4 disk (FDL lambda.ephemeral_storage)" };
}

/** Which of memory, pids, cpu and disk limits hold for a root engine here, and which would rootless. */
export function limitsWhere(info: HostInfo): LimitWhere[] {
  const out: LimitWhere[] = (["memory", "pids", "cpu"] as const).map((limit) => ({
    limit,
    root: rootCgroupLimit(limit, info),
    rootless: rootlessCgroupLimit(limit, info),
  }));
  out.push({
    limit: "disk",
    root: rootDisk(info),
    rootless: {
      holds: false,
      how: `loop-mounted disks need root: ${UNLIMITED.disk} (the time limit still holds)`,
    },
  });
  return out;
}

/** One check per limit: judged for the user scar runs as, the other side said too. */
export function limitChecks(limits: LimitWhere[], root: boolean): Check[] {
  return limits.map((l) => {
    const mine = root ? l.root : l.rootless;
    const other = root ? l.rootless : l.root;
    const value = root
      ? `as root: ${mine.how}; ${ROOTLESS}: ${other.holds ? "" : "not held, "}${other.how}`
      : `${ROOTLESS}: ${mine.holds ? "" : "not held, "}${mine.how}; as root: ${other.how}`;
    return {
      name: `${l.limit} limit`,
      status: mine.holds ? "ok" : "warn",
      value,
      ...(!mine.holds && mine.fix ? { fix: mine.fix } : {}),
    };
  });
}

/**
 * Warm execution environments (issue 14) run invocations through scar's agent, a static binary built
 * with scar (scripts/build-agent.mjs); `agent` is its path, undefined when it was not built.
 */
export function warmEnvironmentsCheck(agent: string | undefined, fix: string): Check {
  return agent
    ? { name: "warm environments", status: "ok", value: `available (scar's agent: ${agent})` }
    : {
        name: "warm environments",
        status: "warn",
        value:
          "off: scar's agent was not built (no gcc or static C library when scar was built); every invocation starts a container of its own (slower)",
        fix,
      };
}
