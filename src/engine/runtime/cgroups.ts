/**
 * What the host's cgroups look like, where our containers' cgroups go, and how to find and remove
 * the ones a crashed engine left behind.
 */
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/**
 * - `v2`: unified hierarchy only.
 * - `v1`: legacy controllers only (or cgroup2 mounted with no controllers in it).
 * - `hybrid`: v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified that holds controllers:
 *   crun refuses to run there unless that mount is hidden (see mountns.ts).
 */
export type CgroupMode = "v1" | "v2" | "hybrid" | "none";

const CGROUP2_MAGIC = 0x63677270;
const ROOT = "/sys/fs/cgroup";

/** What decides the cgroup mode: the file system at /sys/fs/cgroup, the unified mount's controllers, our cgroups. */
export interface CgroupLayout {
  /** /sys/fs/cgroup is a cgroup2 mount, another file system (v1's tmpfs), or missing */
  root: "cgroup2" | "other" | "missing";
  /** text of /sys/fs/cgroup/unified/cgroup.controllers when that is a cgroup2 mount */
  unifiedControllers?: string;
  /** text of /proc/self/cgroup */
  procSelfCgroup: string;
}

export function classifyCgroups(l: CgroupLayout): CgroupMode {
  if (l.root === "missing") return "none";
  if (l.root === "cgroup2") return "v2";
  if (l.unifiedControllers !== undefined) return l.unifiedControllers.trim() === "" ? "v1" : "hybrid";
  const own = parseProcCgroup(l.procSelfCgroup);
  return own.has("memory") || own.has("pids") ? "v1" : "none";
}

function fsType(p: string): CgroupLayout["root"] {
  try {
    return statfsSync(p).type === CGROUP2_MAGIC ? "cgroup2" : "other";
  } catch {
    return "missing";
  }
}

export function readCgroupLayout(): CgroupLayout {
  const root = fsType(ROOT);
  let procSelfCgroup = "";
  try {
    procSelfCgroup = readFileSync("/proc/self/cgroup", "utf8");
  } catch {
    // no /proc: nothing to classify by
  }
  const unified = join(ROOT, "unified");
  if (root !== "other" || fsType(unified) !== "cgroup2") return { root, procSelfCgroup };
  let unifiedControllers = "";
  try {
    unifiedControllers = readFileSync(join(unified, "cgroup.controllers"), "utf8").trim();
  } catch {
    // an unreadable list counts as empty, as before
  }
  return { root, unifiedControllers, procSelfCgroup };
}

export function cgroupMode(): CgroupMode {
  return classifyCgroups(readCgroupLayout());
}

/**
 * A /proc/<pid>/cgroup text as our cgroup per v1 controller name ("memory", "pids", "systemd" for
 * name=systemd, ...) and "" for the v2 line (`0::<path>`).
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(",")) out.set(c.replace(/^name=/, ""), m[2]!);
  }
  return out;
}

/** Our own cgroup, per v1 controller name ("memory", "pids", ...) and "" for v2. */
export function ownCgroups(): Map<string, string> {
  return parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
}

/**
 * The cgroup under which a runner puts its containers, as an absolute path that the OCI runtime
 * creates in every hierarchy: `<our memory cgroup>/scar-<tag>` (v1/hybrid; keeps the containers inside
 * the engine's own memory accounting) or `/scar-<tag>` (v2 in the root cgroup; see cgroup2.ts for
 * where a runner's go on v2). `tag` separates runners with different
 * state folders, so one runner's sweep never touches another's containers.
 */
export function cgroupParent(mode: CgroupMode, tag: string): string {
  const own = ownCgroups();
  const base = mode === "v2" ? "/" : (own.get("memory") ?? "/");
  return `${base.replace(/\/+$/, "")}/scar-${tag}`;
}

/** Directories of `parent` in every mounted hierarchy (that exist). */
export function hierarchyDirs(parent: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(ROOT);
  } catch {
    return out;
  }
  if (statfsSafe(ROOT) === CGROUP2_MAGIC) return existsSync(join(ROOT, parent)) ? [join(ROOT, parent)] : [];
  for (const e of entries) {
    const d = join(ROOT, e, parent);
    if (existsSync(d)) out.push(d);
  }
  return out;
}

function statfsSafe(p: string): number {
  try {
    return statfsSync(p).type;
  } catch {
    return 0;
  }
}

/** Names of the child cgroups of `parent` in any hierarchy. */
export function childCgroups(parent: string): string[] {
  const names = new Set<string>();
  for (const d of hierarchyDirs(parent)) {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
  }
  return [...names];
}

/**
 * Kills whatever still runs in `parent/name` and removes that cgroup from every hierarchy.
 * Returns true when nothing of it is left.
 */
export async function removeCgroup(parent: string, name: string): Promise<boolean> {
  // deepest first: on cgroup v2 a run's cgroup holds the container's (`<run id>/ctr`)
  const dirs = hierarchyDirs(parent)
    .map((d) => join(d, name))
    .filter((d) => existsSync(d))
    .flatMap((d) => [...subCgroups(d), d]);
  for (let attempt = 0; attempt < 50 && dirs.length > 0; attempt++) {
    for (const d of dirs) {
      for (const pid of readPids(d)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      // v2 has cgroup.kill; harmless to try
      try {
        if (existsSync(join(d, "cgroup.kill"))) writeFileSync(join(d, "cgroup.kill"), "1");
      } catch {
        // ignore
      }
    }
    for (let i = dirs.length - 1; i >= 0; i--) {
      try {
        rmdirSync(dirs[i]!);
        dirs.splice(i, 1);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") dirs.splice(i, 1);
      }
    }
    if (dirs.length > 0) await new Promise((r) => setTimeout(r, 20));
  }
  return dirs.length === 0;
}

/** The cgroups below `dir`, deepest first. */
function subCgroups(dir: string): string[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory())
    .flatMap((e) => [...subCgroups(join(dir, e.name)), join(dir, e.name)]);
}

/** Removes the runner's (empty) parent cgroup from every hierarchy; ignores a busy one. */
export function removeParent(parent: string): void {
  for (const d of hierarchyDirs(parent)) {
    try {
      rmdirSync(d);
    } catch {
      // still in use by another run, or gone
    }
  }
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map(Number);
  } catch {
    return [];
  }
}

/** Kernel-wide count of OOM kills (memcg ones included), from /proc/vmstat; -1 if unknown. */
export function oomKillCount(): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync("/proc/vmstat", "utf8"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/**
 * Whether the kernel log records an OOM kill of a process in `cgroupPath` (the kernel prints
 * `oom-kill:...,task_memcg=<path>,...` for every OOM kill); undefined when /dev/kmsg cannot be read.
 * Reads the whole ring buffer, so call it only when an OOM kill is likely (exit 137 and the global
 * counter went up).
 */
export function oomKillLogged(cgroupPath: string): boolean | undefined {
  let fd: number;
  try {
    fd = openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const needle = `task_memcg=${cgroupPath},`;
  const buf = Buffer.alloc(8192);
  try {
    for (let i = 0; i < 200_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EPIPE") continue; // records overwritten while reading: go on with the next
        if (code === "EAGAIN") return false; // end of the log
        return undefined;
      }
      if (n <= 0) return false;
      if (buf.toString("utf8", 0, n).includes(needle)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Whether the v1 memory controller accounts swap (memory.memsw.*); always true for v2. */
export function swapAccounting(mode: CgroupMode): boolean {
  if (mode === "v2") return true;
  return existsSync(join(ROOT, "memory", "memory.memsw.limit_in_bytes"));
}

/**
 * The OOM kills the kernel counted in one container's memory cgroup (`cgroupPath`, absolute): v1
 * `memory.oom_control`'s `oom_kill` line (kernel >= 4.13), v2 `memory.events`' `oom_kill`; -1 when
 * it cannot be read (no memory controller, the cgroup is gone). Unlike a run's cgroup, an
 * environment's stays while its container lives, so its own counter says whether an invocation was
 * OOM-killed.
 */
export function oomKillsOf(mode: CgroupMode, cgroupPath: string): number {
  const file =
    mode === "v2"
      ? join(ROOT, cgroupPath, "memory.events")
      : join(ROOT, "memory", cgroupPath, "memory.oom_control");
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, "utf8"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}
