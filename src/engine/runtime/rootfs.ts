/**
 * The root file system of one run: an overlay mount with the image layers as read-only lowers and a
 * fresh upper (so a run never copies or changes the image), or, where overlayfs cannot be mounted, a
 * per-run copy of the layers with the whiteouts applied (slow, but correct).
 */
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Host } from "./adapters.js";
import { exec, firstLine } from "./exec.js";
import type { BindMount } from "./types.js";

export interface OverlaySupport {
  overlay: boolean;
  /** the `volatile` option (no syncs of the throw-away upper) works */
  volatile: boolean;
  /** mounted with `userxattr` (rootless: in a user namespace, opaque markers are user.overlay.* xattrs) */
  userxattr?: boolean;
  /**
   * rootless, where the kernel's overlay is refused in a user namespace: the runs' overlays are
   * mounted by this fuse-overlayfs binary instead (it reads the same whiteouts and user.overlay.opaque)
   */
  fuse?: string;
  /** why there is no overlay; with `fuse`, why the kernel's was not used */
  error?: string;
}

export interface RunDirs {
  upper: string;
  work: string;
  merged: string;
}

/** Classic mount(2) takes one page of options. */
const MAX_OPTIONS = 4000;

/** What an overlay mount asks for besides its folders. */
export interface OverlayFlags {
  volatile: boolean;
  userxattr?: boolean;
  /**
   * for fuse-overlayfs (no `volatile` or `userxattr`; `allow_other`, or the FUSE mount would refuse
   * every container user but the mounter: an image's other users, mapped from subordinate ids)
   */
  fuse?: boolean;
}

function overlayOptions(
  layers: readonly string[],
  dirs: RunDirs,
  flags: OverlayFlags,
  base?: string,
): string {
  const rel = (p: string) => (base ? relative(base, p) || "." : p);
  const lower = [...layers].reverse().map(rel).join(":");
  const dirsPart = `lowerdir=${lower},upperdir=${rel(dirs.upper)},workdir=${rel(dirs.work)}`;
  if (flags.fuse) return `${dirsPart},allow_other`;
  return `${dirsPart}${flags.volatile ? ",volatile" : ""}${flags.userxattr ? ",userxattr" : ""}`;
}

function commonDir(paths: readonly string[]): string {
  let common = dirname(paths[0]!);
  for (const p of paths) {
    while (common !== "/" && !(p === common || p.startsWith(common + sep))) common = dirname(common);
  }
  return common;
}

export class OverlayError extends Error {}

/**
 * The overlay mount options for a run, and the folder `mount` must run in (paths are made relative
 * to a common parent when the absolute ones do not fit in one page). Throws OverlayError.
 */
export function overlayMount(
  layers: readonly string[],
  dirs: RunDirs,
  volatile: boolean | OverlayFlags,
): { options: string; wd: string } {
  const flags = typeof volatile === "boolean" ? { volatile } : volatile;
  if (layers.length === 0) throw new OverlayError("the image has no layers");
  for (const p of [...layers, dirs.upper, dirs.work]) {
    if (/[,:\\]/.test(p)) throw new OverlayError(`overlayfs cannot take a path with ',', ':' or '\\': ${p}`);
  }
  const options = overlayOptions(layers, dirs, flags);
  if (options.length <= MAX_OPTIONS) return { options, wd: "/" };
  const wd = commonDir([...layers, dirs.upper, dirs.work]);
  const rel = overlayOptions(layers, dirs, flags, wd);
  if (rel.length > MAX_OPTIONS)
    throw new OverlayError(`too many layers for one overlay mount (${layers.length})`);
  return { options: rel, wd };
}

/** Mounts an overlay at dirs.merged in the host's (or the engine's private) mount namespace. */
export async function mountOverlay(
  host: Host,
  layers: readonly string[],
  dirs: RunDirs,
  volatile: boolean | OverlayFlags,
): Promise<void> {
  const { options, wd } = overlayMount(layers, dirs, volatile);
  const r = await host.exec("mount", ["-t", "overlay", "overlay", "-o", options, dirs.merged], { wd });
  if (r.code !== 0) throw new OverlayError(`mount overlay: ${firstLine(r.stderr) || `exit ${r.code}`}`);
}

/** Mounts fuse-overlayfs (binary `fuse`) at dirs.merged in the helper's namespace; it daemonizes. */
export async function mountFuseOverlay(
  host: Host,
  fuse: string,
  layers: readonly string[],
  dirs: RunDirs,
): Promise<void> {
  const { options, wd } = overlayMount(layers, dirs, { volatile: false, fuse: true });
  const r = await host.exec(fuse, ["-o", options, dirs.merged], { wd });
  // (it says "unknown argument ignored: lazytime" on success: only the exit status counts)
  if (r.code !== 0)
    throw new OverlayError(
      `fuse-overlayfs: ${firstLine(r.stderr.replace(/^unknown argument ignored.*\n/gm, "")) || `exit ${r.code}`}`,
    );
}

/** What a rootless engine may mount its runs' root file systems with (chooseRootlessOverlay). */
export interface RootlessOverlayFacts {
  /** the kernel can mount overlay in a user namespace (`userxattr`, Linux 5.11); else why not */
  kernel: true | string;
  /** the fuse-overlayfs binary, when installed */
  fuseOverlayfs?: string;
  /** /dev/fuse can be opened for reading and writing by this user; else why not */
  devFuse: true | string;
  /** only fuse-overlayfs (RunnerOptions.rootfs "fuse-overlayfs") */
  forceFuse?: boolean;
}

/**
 * A rootless engine's root file systems: the kernel's overlay in the user namespace, else
 * fuse-overlayfs (a FUSE daemon per run: slower, but no copy of the image per run), else a copy.
 * Each candidate is tried for real (the probes); the first that mounts wins, and `error` says why
 * the ones before it did not.
 */
export async function chooseRootlessOverlay(
  f: RootlessOverlayFacts,
  probeKernel: () => Promise<OverlaySupport>,
  probeFuse: (fuse: string) => Promise<OverlaySupport>,
): Promise<OverlaySupport> {
  const why: string[] = [];
  if (f.forceFuse) why.push("kernel overlay: not asked for");
  else if (f.kernel !== true) why.push(`kernel overlay: ${f.kernel}`);
  else {
    const k = await probeKernel();
    if (k.overlay) return k;
    why.push(`kernel overlay: ${k.error ?? "refused"}`);
  }
  if (!f.fuseOverlayfs) why.push("fuse-overlayfs: not installed");
  else if (f.devFuse !== true) why.push(`fuse-overlayfs: ${f.devFuse}`);
  else {
    const u = await probeFuse(f.fuseOverlayfs);
    if (u.overlay) return { ...u, error: why.join("; ") };
    why.push(`fuse-overlayfs: ${u.error ?? "refused"}`);
  }
  return { overlay: false, volatile: false, error: why.join("; ") };
}

/** Whether this process may open /dev/fuse for reading and writing; else why not. */
export function devFuseUsable(path = "/dev/fuse"): true | string {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `no ${path}` : `${path}: ${code ?? (e as Error).message}`;
  }
}

/** Tries a fuse-overlayfs mount in `scratch` (made and removed here), in the helper's namespace. */
export async function probeFuseOverlay(host: Host, scratch: string, fuse: string): Promise<OverlaySupport> {
  const dirs = { upper: join(scratch, "u"), work: join(scratch, "w"), merged: join(scratch, "m") };
  const lower = join(scratch, "l");
  for (const d of [lower, dirs.upper, dirs.work, dirs.merged]) mkdirSync(d, { recursive: true });
  try {
    await mountFuseOverlay(host, fuse, [lower], dirs);
    await unmount(host, dirs.merged);
    return { overlay: true, volatile: false, fuse };
  } catch (e) {
    return { overlay: false, volatile: false, error: (e as Error).message };
  } finally {
    await removeFolder(host, scratch);
  }
}

/** Unmounts a run's root file system; lazily if it is still busy. Missing or unmounted is fine. */
export async function unmount(host: Host, merged: string): Promise<void> {
  const r = await host.exec("umount", [merged]);
  if (r.code === 0 || /not mounted|no mount point|not found/i.test(r.stderr)) return;
  const l = await host.exec("umount", ["-l", merged]);
  if (l.code !== 0 && !/not mounted|no mount point|not found/i.test(l.stderr))
    throw new Error(`umount ${merged}: ${firstLine(l.stderr)}`);
}

/**
 * rm -rf of a folder of the engine's; what this process may not enter (an overlay's `work/work`
 * folder is mode 000, and rootless the engine's user is not root outside the helper's namespace) is
 * removed by `rm -rf` in the helper's namespace, where it is.
 */
export async function removeFolder(host: Host, path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== "EACCES" && code !== "EPERM") || !host.namespace) throw e;
    const r = await host.exec("rm", ["-rf", path]);
    if (r.code !== 0) throw new Error(`rm -rf ${path}: ${firstLine(r.stderr)}`);
  }
}

/**
 * Tries an overlay mount (with and without `volatile`) in `scratch`, which it creates and removes;
 * with `userxattr` (rootless) only so.
 */
export async function probeOverlay(host: Host, scratch: string, userxattr = false): Promise<OverlaySupport> {
  const dirs = { upper: join(scratch, "u"), work: join(scratch, "w"), merged: join(scratch, "m") };
  const lower = join(scratch, "l");
  for (const d of [lower, dirs.upper, dirs.work, dirs.merged]) mkdirSync(d, { recursive: true });
  let error: string | undefined;
  try {
    for (const volatile of [true, false]) {
      try {
        await mountOverlay(host, [lower], dirs, { volatile, userxattr });
        await unmount(host, dirs.merged);
        return { overlay: true, volatile, ...(userxattr ? { userxattr } : {}) };
      } catch (e) {
        error = (e as Error).message;
        await removeFolder(host, dirs.work);
        mkdirSync(dirs.work);
      }
    }
    return { overlay: false, volatile: false, error };
  } finally {
    await removeFolder(host, scratch);
  }
}

/**
 * The fallback: copies the layers, bottom to top, into `dest`, applying overlay whiteouts
 * (0/0 character devices delete what lower layers had; directories with the
 * `trusted.overlay.opaque=y` xattr, or `user.overlay.opaque=y` when unpacked rootless, hide the lower
 * layers' contents, read with `getfattr` when it is installed).
 */
export async function copyLayers(layers: readonly string[], dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  for (const layer of layers) {
    for (const rel of await opaqueDirs(layer)) {
      const target = join(dest, rel);
      try {
        for (const e of readdirSync(target)) rmSync(join(target, e), { recursive: true, force: true });
      } catch {
        // not there in the lower layers
      }
    }
    const r = await exec("cp", ["-a", "--reflink=auto", `${layer}/.`, `${dest}/`]);
    if (r.code !== 0) throw new Error(`copy of layer ${layer} failed: ${firstLine(r.stderr)}`);
    for (const rel of whiteouts(layer)) rmSync(join(dest, rel), { recursive: true, force: true });
  }
}

function whiteouts(layer: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(layer, { recursive: true, withFileTypes: true })) {
    if (!e.isCharacterDevice()) continue;
    const p = join(e.parentPath, e.name);
    if (lstatSync(p).rdev === 0) out.push(relative(layer, p));
  }
  return out;
}

async function opaqueDirs(layer: string): Promise<string[]> {
  // "# file: PATH" followed by 'trusted.overlay.opaque="y"' (or user.) for each directory that has it
  const dump = await exec("getfattr", [
    "-R",
    "-P",
    "--absolute-names",
    "-d",
    "-m",
    "^(trusted|user)\\.overlay\\.opaque$",
    layer,
  ]);
  if (dump.code === 127) return []; // getfattr (package attr) not installed
  const out: string[] = [];
  let file: string | undefined;
  for (const line of dump.stdout.split("\n")) {
    if (line.startsWith("# file: ")) file = line.slice(8);
    else if (file && /^(trusted|user)\.overlay\.opaque="y"$/.test(line.trim()))
      out.push(relative(layer, file));
  }
  return out;
}

/** With the host's network, the host's DNS and hosts files too (read-only), as Docker does; the run's own mounts win. */
export function hostNetworkFiles(mounts: readonly BindMount[]): BindMount[] {
  return ["/etc/resolv.conf", "/etc/hosts"]
    .filter((p) => existsSync(p) && !mounts.some((m) => m.destination === p))
    .map((p) => ({ source: realpathSync(p), destination: p, readonly: true }));
}
