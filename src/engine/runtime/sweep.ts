/**
 * Removes what runs of a crashed (or killed) engine left behind in its state folder: containers in
 * the runtime's state, overlay mounts, cgroups and run folders. Warm environments (environment.ts)
 * live in the same places (ids starting with "e"), so an abandoned one goes the same way; the
 * runner names its live ones, like its runs in progress, in `active`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { type ContainerRuntime, Host } from "./adapters.js";
import { childCgroups, removeCgroup, removeParent } from "./cgroups.js";
import { removeFolder, unmount } from "./rootfs.js";

export interface SweepReport {
  containers: string[];
  mounts: string[];
  cgroups: string[];
  dirs: string[];
}

/** Mount points at or under `dir` in a mountinfo file, deepest first. */
export function mountsUnder(dir: string, mountinfo = "/proc/self/mountinfo"): string[] {
  let text: string;
  try {
    text = readFileSync(mountinfo, "utf8");
  } catch {
    return [];
  }
  const prefix = dir.endsWith(sep) ? dir : dir + sep;
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f.length < 5) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mp === dir || mp.startsWith(prefix)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

export interface SweepInput {
  runtime: ContainerRuntime;
  runsDir: string;
  /** folders of finished runs waiting for deletion: all of it goes */
  trashDir: string;
  cgroupParent: string;
  /** the same runner's parent cgroups in places a gone engine used (cgroup v2: its systemd scope) */
  staleCgroupParents?: readonly string[];
  /** ids of runs in progress and of live environments in this process; never touched */
  active: ReadonlySet<string>;
}

export async function sweep(input: SweepInput): Promise<SweepReport> {
  const { runtime, runsDir, active } = input;
  const report: SweepReport = { containers: [], mounts: [], cgroups: [], dirs: [] };

  // 1. containers the runtime still knows (its state folder is this engine's own)
  for (const id of await runtime.list()) {
    if (active.has(id)) continue;
    await runtime.delete(id, true);
    report.containers.push(id);
  }

  // 2. cgroups of runs that are not running any more
  for (const name of childCgroups(input.cgroupParent)) {
    if (active.has(name)) continue;
    if (await removeCgroup(input.cgroupParent, name)) report.cgroups.push(name);
  }
  for (const parent of input.staleCgroupParents ?? []) {
    for (const name of childCgroups(parent)) if (await removeCgroup(parent, name)) report.cgroups.push(name);
    removeParent(parent);
  }

  // 3. mounts under the runs folder, in the host's namespace and in the engine's private one
  const ns = runtime.host.namespace;
  const infos = ["/proc/self/mountinfo", ...(ns?.alive ? [`/proc/${ns.pid}/mountinfo`] : [])];
  const isActive = (p: string) => [...active].some((id) => p.startsWith(join(runsDir, id) + sep));
  for (const info of infos) {
    for (const mp of mountsUnder(runsDir, info)) {
      if (isActive(mp)) continue;
      // a mount in the host's namespace (runc, or crun without the workaround) or in the private one
      await unmount(info === "/proc/self/mountinfo" ? new Host() : runtime.host, mp);
      report.mounts.push(mp);
    }
  }

  // 4. run folders
  let entries: string[] = [];
  try {
    entries = readdirSync(runsDir);
  } catch {
    // no runs yet
  }
  for (const name of entries) {
    if (active.has(name)) continue;
    await removeFolder(runtime.host, join(runsDir, name));
    report.dirs.push(name);
  }
  let trash: string[] = [];
  try {
    trash = readdirSync(input.trashDir);
  } catch {
    // none
  }
  for (const name of trash) await removeFolder(runtime.host, join(input.trashDir, name));
  return report;
}
