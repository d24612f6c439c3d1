/**
 * Finds a working OCI runtime at start: crun (preferred: about 3x faster to start a container) or
 * runc, sets up the hybrid-cgroup workaround once when crun needs it, and says exactly what to
 * install when nothing works.
 */
import { accessSync, constants, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ContainerRuntime, CrunRuntime, Host, RuncRuntime, type RuntimeName } from "./adapters.js";
import { type CgroupMode, cgroupMode } from "./cgroups.js";
import { exec, firstLine } from "./exec.js";
import { PrivateMountNamespace } from "./mountns.js";
import { type RootlessMode, rootlessFailure } from "./rootless.js";

export class RuntimeUnavailableError extends Error {
  constructor(
    message: string,
    /** a command that installs what is missing, when known */
    readonly install?: string,
  ) {
    super(message);
    this.name = "RuntimeUnavailableError";
  }
}

const EXTRA_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Absolute path of an executable on PATH (plus the sbin folders), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":").filter((d) => d !== ""), ...EXTRA_PATH];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * The command that installs Debian/Fedora/Alpine packages here, e.g. "apt-get install -y crun"; for
 * an ordinary user, what to ask an administrator to run (scar never suggests or runs sudo itself: a
 * rootless engine's user may have none).
 */
export function installCommand(...packages: string[]): string {
  const who = process.getuid?.() === 0 ? "" : "ask an administrator to run: ";
  if (findBinary("apt-get")) return `${who}apt-get install -y --no-install-recommends ${packages.join(" ")}`;
  if (findBinary("dnf")) return `${who}dnf install -y ${packages.join(" ")}`;
  if (findBinary("apk")) return `${who}apk add ${packages.join(" ")}`;
  if (findBinary("zypper")) return `${who}zypper install -y ${packages.join(" ")}`;
  return `install ${packages.join(" or ")} with your package manager`;
}

export async function runtimeVersion(binary: string): Promise<string | undefined> {
  const r = await exec(binary, ["--version"], { timeoutMs: 10_000 });
  if (r.code !== 0) return undefined;
  const m = /version\s+(\S+)/.exec(r.stdout);
  return m ? m[1] : firstLine(r.stdout);
}

/** The hard RLIMIT_NOFILE of this process (root cannot go above it without CAP_SYS_RESOURCE). */
export function nofileHardLimit(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m && m[1] !== "unlimited") return Number(m[1]);
  } catch {
    // not Linux?
  }
  return 1_048_576;
}

export interface OpenRuntimeOptions {
  /** folder for the runtime's container state (its --root) */
  stateDir: string;
  /** "auto" (default): crun, else runc */
  prefer?: RuntimeName | "auto";
  /**
   * start the private mount namespace helper even when the runtime needs nothing hidden (it also
   * mounts the runs' overlays); default false: only for crun on a hybrid-cgroup host
   */
  namespace?: boolean;
  /** a static busybox for the helper's sh, mount and umount */
  busybox?: string;
  /** run rootless (rootless.ts): the helper's namespace is a user namespace too, and always made */
  rootless?: RootlessMode;
  /** cgroup v2: the engine's delegated cgroup, the runtimes' /sys/fs/cgroup (mountns.ts); the helper is always made then */
  cgroupRoot?: string;
  /** rootless: the fuse-overlayfs binary the helper mounts runs' overlays with where the kernel's is refused */
  fuseOverlayfs?: string;
}

export interface OpenedRuntime {
  runtime: ContainerRuntime;
  cgroupMode: CgroupMode;
  /** how crun is made to work on a hybrid-cgroup host */
  workaround: "none" | "private-mount-namespace";
  /** why runtimes that were tried first were skipped */
  skipped: string[];
}

export async function openRuntime(opts: OpenRuntimeOptions): Promise<OpenedRuntime> {
  if (process.platform !== "linux") throw new RuntimeUnavailableError("containers need Linux");
  const rootless = opts.rootless;
  const mode = cgroupMode();
  const prefer = opts.prefer ?? "auto";
  const order: RuntimeName[] = prefer === "runc" ? ["runc"] : prefer === "crun" ? ["crun"] : ["crun", "runc"];
  const skipped: string[] = [];
  for (const name of order) {
    const binary = findBinary(name);
    if (!binary) {
      skipped.push(`${name}: not installed`);
      continue;
    }
    const version = await runtimeVersion(binary);
    if (!version) {
      skipped.push(`${name}: ${binary} --version failed`);
      continue;
    }
    const stateDir = join(opts.stateDir, name);
    const hide = name === "crun" && mode === "hybrid" ? ["/sys/fs/cgroup/unified"] : [];
    let ns: PrivateMountNamespace | undefined;
    if (hide.length > 0 || opts.namespace || rootless || opts.cgroupRoot) {
      try {
        mkdirSync(opts.stateDir, { recursive: true });
        ns = await PrivateMountNamespace.create({
          hide,
          errorFile: join(opts.stateDir, "mount-helper.err"),
          ...(opts.busybox ? { busybox: opts.busybox } : {}),
          ...(rootless ? { userns: rootless } : {}),
          ...(opts.cgroupRoot ? { cgroupRoot: opts.cgroupRoot } : {}),
          ...(opts.fuseOverlayfs ? { fuseOverlayfs: opts.fuseOverlayfs } : {}),
        });
      } catch (e) {
        // rootless, the runtime can only run in there
        if (rootless) throw new RuntimeUnavailableError(rootlessFailure((e as Error).message));
        if (hide.length > 0) {
          skipped.push(`crun: hybrid cgroups and ${(e as Error).message}`);
          continue;
        }
        throw e;
      }
    }
    const host = new Host(ns);
    const rt =
      name === "crun"
        ? new CrunRuntime(binary, version, stateDir, host)
        : new RuncRuntime(binary, version, stateDir, host);
    return {
      runtime: rt,
      cgroupMode: mode,
      workaround: hide.length > 0 ? "private-mount-namespace" : "none",
      skipped,
    };
  }
  const which = prefer === "auto" ? "crun (preferred) or runc" : prefer;
  throw new RuntimeUnavailableError(
    `no usable OCI runtime: ${skipped.join("; ")}. Install ${which}.`,
    installCommand(prefer === "runc" ? "runc" : "crun"),
  );
}

/** An ELF executable without a PT_INTERP program header (no dynamic loader). */
export function isStatic(p: string): boolean {
  try {
    const b = readFileSync(p);
    if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
    const phoff = Number(b.readBigUInt64LE(0x20));
    const phentsize = b.readUInt16LE(0x36);
    const phnum = b.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * A static busybox with `sh` and `mount`, when there is one: it starts in a fraction of the time of
 * dash + util-linux mount (no dynamic loading, no libmount), which is on every run's path.
 */
export async function staticBusybox(): Promise<string | undefined> {
  const bb = findBinary("busybox");
  if (!bb || !isStatic(bb)) return undefined;
  const r = await exec(bb, ["--list"], { timeoutMs: 10_000 });
  const applets = new Set(r.stdout.split("\n"));
  return r.code === 0 && applets.has("sh") && applets.has("mount") ? bb : undefined;
}
