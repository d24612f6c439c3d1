/**
 * Rootless containers: what changes when the engine runs as an ordinary user, in one place.
 *
 * The design is rootless podman's. The engine's helper (mountns.ts) lives in a user namespace of the
 * engine's user plus a mount namespace owned by it; in there the user is root (uid 0 of the
 * namespace, with every capability over the namespace's own mounts), so the helper mounts the runs'
 * overlays (the kernel's, from Linux 5.11, with `userxattr`: opaque directories are
 * `user.overlay.opaque` xattrs, which an ordinary user can set; whiteouts stay 0/0 character
 * devices, which anyone may make since Linux 5.8) and starts crun or runc, which see they are in a
 * user namespace and run rootless. The containers inherit that user namespace (the spec asks for
 * none of its own), as podman's do.
 *
 * Two ways to map ids, the way podman chooses:
 * - `single`: only the user's own uid and gid, as uid/gid 0 of the namespace (what a host without
 *   newuidmap, or without /etc/subuid ranges for the user, allows). Every file of an image then
 *   belongs to the user (root in the container); an image whose `User` is another id runs as root of
 *   the namespace, that is as the engine's user (there is no other id to switch to), and setuid bits
 *   are dropped at unpack (engine/images: they could only ever lead to the engine's user).
 * - `ranges`: the user as 0, then the user's /etc/subuid and /etc/subgid ranges from 1, written by
 *   newuidmap/newgidmap (setuid helpers from the `uidmap` package). Containers may then switch to
 *   an image's other users (their input and output folders are opened to them, container-executor.ts).
 *   The layers get their tars' owners: an ordinary user's unpack (engine/images) cannot chown into
 *   subordinate ids from outside the namespace, so it records them, and before an image's first
 *   container the helper, root of the namespace, chowns the layers' files to them (chownCommands,
 *   Runner.giveLayerOwners, engine/layer-owners.ts), as rootless podman's storage has them. Setuid
 *   and setgid bits stay dropped. Tested as nobody with ranges of the test's own
 *   (test/engine/runtime/rootless-rootfs.test.ts) and in the cgroup v2 VM.
 * The engine writes the maps itself, after the helper has made its namespace and before it does
 * anything (the helper waits for a line from the engine, then re-executes its shell so that it holds
 * its capabilities as the namespace's root).
 *
 * Limits: memory, pids and cpu limits need a cgroup delegated to the user. On cgroup v2 with a
 * systemd user session the engine gets one (a scope of the user's manager, cgroup2.ts), the helper
 * binds it over /sys/fs/cgroup, and the runtimes, root of the namespace that owns those files, make
 * the containers' cgroups in it with their limits; OOM kills are read from its memory.events as as
 * root. Without one (cgroup v1 or hybrid, no user session, no user bus) runs go without those limits,
 * and the engine's log and each job's log say why. The disk limit needs loop mounts (root). The time
 * limit always holds: the runner kills the container's init, whose death ends its pid namespace.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { promisify } from "node:util";
import { findBinary } from "./detect.js";
import { kernelAtLeast, type SubidRange, subidRanges } from "./host-checks.js";
import { buildSpec, type SpecInput } from "./spec.js";
import { type ResolvedUser, resolveUser } from "./user.js";

const execFileP = promisify(execFile);

/** One line of a uid_map or gid_map: ids `inside`..+count of the namespace are `outside`..+count. */
export interface IdMapping {
  inside: number;
  outside: number;
  count: number;
}

export interface RootlessMode {
  uid: number;
  gid: number;
  mapping: "single" | "ranges";
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** the newuidmap/newgidmap binaries (ranges only) */
  newuidmap?: string;
  newgidmap?: string;
}

export interface RootlessFacts {
  uid: number;
  gid: number;
  user?: string;
  newuidmap?: string;
  newgidmap?: string;
  /** text of /etc/subuid and /etc/subgid */
  subuid: string;
  subgid: string;
}

/** How a user's namespace maps ids: ranges when newuidmap/newgidmap and both ranges exist, else single. */
export function chooseMapping(f: RootlessFacts): RootlessMode {
  const own = (id: number): IdMapping[] => [{ inside: 0, outside: id, count: 1 }];
  const uids = subidRanges(f.subuid, f.user, f.uid);
  const gids = subidRanges(f.subgid, f.user, f.uid);
  if (f.newuidmap && f.newgidmap && uids.length > 0 && gids.length > 0)
    return {
      uid: f.uid,
      gid: f.gid,
      mapping: "ranges",
      uidMap: [...own(f.uid), ...followOn(uids)],
      gidMap: [...own(f.gid), ...followOn(gids)],
      newuidmap: f.newuidmap,
      newgidmap: f.newgidmap,
    };
  return { uid: f.uid, gid: f.gid, mapping: "single", uidMap: own(f.uid), gidMap: own(f.gid) };
}

/** Subordinate ranges laid out from id 1 on, one after the other (at most 2^32 - 2 ids). */
function followOn(ranges: SubidRange[]): IdMapping[] {
  const out: IdMapping[] = [];
  let next = 1;
  for (const r of ranges) {
    const count = Math.min(r.count, 0xfffffffe - next);
    if (count <= 0) break;
    out.push({ inside: next, outside: r.start, count });
    next += count;
  }
  return out;
}

function readText(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

/** The rootless mode of this process, or undefined when it runs as root. */
export function rootlessMode(): RootlessMode | undefined {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return undefined;
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    // a uid without a passwd entry: ranges are then looked up by number
  }
  const newuidmap = findBinary("newuidmap");
  const newgidmap = findBinary("newgidmap");
  return chooseMapping({
    uid,
    gid: process.getegid?.() ?? uid,
    ...(user !== undefined ? { user } : {}),
    ...(newuidmap ? { newuidmap } : {}),
    ...(newgidmap ? { newgidmap } : {}),
    subuid: readText("/etc/subuid"),
    subgid: readText("/etc/subgid"),
  });
}

/** "0 1000 1" lines, as /proc/<pid>/uid_map takes them. */
export function mapText(m: readonly IdMapping[]): string {
  return m.map((l) => `${l.inside} ${l.outside} ${l.count}\n`).join("");
}

/**
 * Writes the id maps of the user namespace of process `pid` (just made by `unshare --user`, waiting).
 * A single mapping is written directly (an unprivileged process may map its own ids; gid_map only
 * after setgroups is denied); ranges go through the setuid newuidmap/newgidmap.
 */
export async function writeIdMaps(pid: number, mode: RootlessMode): Promise<void> {
  if (mode.mapping === "single") {
    await writeFile(`/proc/${pid}/setgroups`, "deny");
    await writeFile(`/proc/${pid}/uid_map`, mapText(mode.uidMap));
    await writeFile(`/proc/${pid}/gid_map`, mapText(mode.gidMap));
    return;
  }
  const args = (m: IdMapping[]) => newidmapArgs(pid, m);
  for (const [bin, map] of [
    [mode.newuidmap!, mode.uidMap],
    [mode.newgidmap!, mode.gidMap],
  ] as const) {
    try {
      await execFileP(bin, args(map), { timeout: 10_000 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`${bin} failed: ${(err.stderr ?? "").trim() || err.message}`);
    }
  }
}

/** newuidmap's and newgidmap's arguments: the pid, then inside, outside and count of each line. */
export function newidmapArgs(pid: number, m: readonly IdMapping[]): string[] {
  return [String(pid), ...m.flatMap((l) => [l.inside, l.outside, l.count].map(String))];
}

/** The id maps as one string: what layer owners applied under them are marked with (layer-owners.ts). */
export function mappingKey(mode: RootlessMode): string {
  return `uid ${mapText(mode.uidMap).trim().replace(/\n/g, ",")}; gid ${mapText(mode.gidMap).trim().replace(/\n/g, ",")}`;
}

/**
 * The `chown -h` command lines (at most ~32 KB each) that give the entries of `dir` the owners a
 * layer's tar gave them, run as root of the namespace, where they are mapped ids. An owner the maps
 * do not hold stays root's (the user's), as with a single mapping; those are counted in `unmapped`.
 */
export function chownCommands(
  dir: string,
  owners: readonly (readonly [string, number, number])[],
  mode: RootlessMode,
  chown: string,
  quote: (s: string) => string,
): { commands: string[]; unmapped: number } {
  const groups = new Map<string, string[]>();
  let unmapped = 0;
  for (const [path, uid, gid] of owners) {
    if (!mapped(mode.uidMap, uid) || !mapped(mode.gidMap, gid)) {
      unmapped++;
      continue;
    }
    const k = `${uid}:${gid}`;
    const g = groups.get(k) ?? [];
    groups.set(k, g);
    g.push(quote(path === "" ? dir : `${dir}/${path}`));
  }
  // one `chown -h uid:gid paths...` per owner and ~32 KB, joined by && up to ~32 KB a command
  const MAX = 32_000;
  const lines: string[] = [];
  for (const [k, paths] of groups) {
    let line = "";
    for (const q of paths) {
      if (line && line.length + q.length >= MAX) {
        lines.push(line);
        line = "";
      }
      line = line ? `${line} ${q}` : `${chown} -h ${k} ${q}`;
    }
    if (line) lines.push(line);
  }
  const commands: string[] = [];
  for (const l of lines) {
    const last = commands.length - 1;
    if (last >= 0 && commands[last]!.length + l.length < MAX) commands[last] += ` && ${l}`;
    else commands.push(l);
  }
  return { commands, unmapped };
}

/** Whether `id` of the namespace maps to some id of the host. */
export function mapped(m: readonly IdMapping[], id: number): boolean {
  return m.some((l) => id >= l.inside && id < l.inside + l.count);
}

/**
 * The user a container of these layers runs as (`name`: the request's or the image's User), for a
 * run and an environment alike: resolved in the layers, then mapped when the engine is rootless.
 */
export function containerUser(
  name: string | undefined,
  layers: readonly string[],
  mode: RootlessMode | undefined,
): ResolvedUser {
  const user = resolveUser(name, layers);
  return mode ? rootlessUser(user, mode) : user;
}

/** A container's spec, for a run and an environment alike: made rootless when the engine is. */
export function containerSpec(input: SpecInput, mode: RootlessMode | undefined): Record<string, unknown> {
  const spec = buildSpec(input);
  // a rootless engine's runtimes have a cgroup root only when a cgroup was delegated to it
  return mode ? rootlessSpec(spec, mode, input.host.cgroupRoot !== undefined) : spec;
}

/**
 * The user a container runs as, rootless: an id the namespace does not map cannot be switched to, so
 * with a single mapping a non-root image user runs as root of the namespace (the engine's user).
 */
export function rootlessUser(user: ResolvedUser, mode: RootlessMode): ResolvedUser {
  const gids = user.additionalGids.filter((g) => mapped(mode.gidMap, g));
  if (mapped(mode.uidMap, user.uid) && mapped(mode.gidMap, user.gid))
    return { ...user, additionalGids: gids };
  return { ...user, uid: 0, gid: 0, additionalGids: [] };
}

type Spec = Record<string, unknown> & {
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: Record<string, unknown>;
};

/**
 * A spec built for root, made rootless: a cgroup and its limits only with a delegated cgroup
 * (`delegated`, see the module doc), no device rules (the device cgroup is root's), devpts without
 * `gid=5` when gid 5 is not mapped, and with the host's network (no network namespace of the
 * container's own, so sysfs cannot be mounted anew) the host's /sys bound read-only, as runc's
 * rootless spec and podman do.
 */
export function rootlessSpec(
  spec: Record<string, unknown>,
  mode: RootlessMode,
  delegated = false,
): Record<string, unknown> {
  const s = spec as Spec;
  const linux = { ...s.linux };
  if (delegated && linux.resources) {
    const { devices: _devices, ...resources } = linux.resources as Record<string, unknown>;
    linux.resources = resources;
  } else {
    delete linux.cgroupsPath;
    delete linux.resources;
  }
  const ownNetwork = ((linux.namespaces as { type: string }[] | undefined) ?? []).some(
    (n) => n.type === "network",
  );
  const mounts = s.mounts.map((m) => {
    if (m.type === "devpts" && !mapped(mode.gidMap, 5))
      return { ...m, options: (m.options ?? []).filter((o) => o !== "gid=5") };
    if (m.type === "sysfs" && !ownNetwork)
      return { ...m, type: "bind", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"] };
    return m;
  });
  return { ...s, mounts, linux };
}

/** Whether the kernel's overlay can be mounted in a user namespace (`userxattr`, Linux 5.11). */
export function userxattrKernel(release: string): boolean {
  return kernelAtLeast(release, 5, 11);
}

/** What a rootless engine's cgroup gives it (runner.ts): the limit controllers held, or why none. */
export interface RootlessLimits {
  /** the limit controllers (memory, pids, cpu) the delegated cgroup has */
  held: string[];
  /** the delegated cgroup */
  cgroup?: string;
  /** why there is none (or why some are missing) */
  why?: string;
}

const NO_CGROUP: RootlessLimits = { held: [], why: "no cgroup is delegated to this user" };

/** The one line the engine's log and each job's log carry about what a rootless engine cannot limit. */
export function rootlessNote(mode: RootlessMode, limits: RootlessLimits = NO_CGROUP): string {
  const ids =
    mode.mapping === "single"
      ? "only your own uid is mapped, so every container runs as you (root in its namespace)"
      : `your uid and ${mode.uidMap.slice(1).reduce((n, l) => n + l.count, 0)} subordinate uids are mapped`;
  const disk = "no disk limit (loop disks need root); the time limit holds";
  if (limits.held.length === 0)
    return `rootless: no memory, pids or cpu limits (${limits.why ?? NO_CGROUP.why}) and ${disk}; ${ids}`;
  const missing = ["memory", "pids", "cpu"].filter((c) => !limits.held.includes(c));
  const words = (l: string[]) => (l.length > 1 ? `${l.slice(0, -1).join(", ")} and ${l.at(-1)}` : l.join(""));
  return `rootless: ${words(limits.held)} limits hold (cgroup ${limits.cgroup ?? "?"}, delegated to this user)${missing.length ? `, no ${words(missing)} limit (${limits.why ?? "not delegated to this user"})` : ""}; ${disk}; ${ids}`;
}

/** Why a rootless engine cannot run here: the helper's namespace could not be made. */
export function rootlessFailure(message: string): string {
  return `cannot make the user namespace the rootless engine runs its containers in: ${message}`;
}
