/**
 * Builds the OCI runtime spec (config.json) of one run from the image config and the run's overrides.
 * Pure: everything it needs about the host comes in `HostFacts`.
 *
 * What every container gets: own pid, mount, ipc, uts and cgroup namespaces, an own network namespace
 * with loopback only (unless network "host"), a small capability set (podman's default, a subset of
 * Docker's), no-new-privileges, scar's seccomp profile (unless "unconfined"), masked and read-only /proc
 * and /sys paths, rlimits within the host's hard limits, and memory/swap/pids/CPU limits when asked for.
 */
import { defaultSeccompProfile } from "./seccomp.js";
import type { OciImageConfig, RunRequest } from "./types.js";
import type { ResolvedUser } from "./user.js";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** podman's default set; Docker's default minus AUDIT_WRITE, MKNOD and NET_RAW */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_NET_BIND_SERVICE",
  "CAP_SETFCAP",
  "CAP_SETGID",
  "CAP_SETPCAP",
  "CAP_SETUID",
  "CAP_SYS_CHROOT",
];

export const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

export interface HostFacts {
  /** hard RLIMIT_NOFILE of the host (root cannot raise rlimits without CAP_SYS_RESOURCE) */
  nofileHard: number;
  /** the kernel accounts swap in the memory cgroup */
  swapAccounting: boolean;
  /** absolute cgroup path of this container */
  cgroupsPath: string;
  /**
   * cgroup v2: the engine's delegated cgroup, which the runtimes see as /sys/fs/cgroup (mountns.ts):
   * `cgroupsPath` is given to them relative to it
   */
  cgroupRoot?: string;
}

/** `path` as the runtimes see it when `root` is their /sys/fs/cgroup. */
export function cgroupPathUnder(root: string | undefined, path: string): string {
  if (!root || root === "/") return path;
  const r = root.replace(/\/+$/, "");
  if (path !== r && !path.startsWith(`${r}/`)) throw new SpecError(`cgroup ${path} is not under ${r}`);
  return path.slice(r.length) || "/";
}

export interface SpecInput {
  rootfs: string;
  config: OciImageConfig;
  request: Omit<RunRequest, "image">;
  user: ResolvedUser;
  host: HostFacts;
}

export class SpecError extends Error {}

/** The argv Docker would run: entrypoint + cmd, with the request's overrides. */
export function processArgs(config: OciImageConfig, req: Pick<RunRequest, "entrypoint" | "cmd">): string[] {
  const entrypoint = req.entrypoint ?? config.Entrypoint ?? [];
  // Docker: overriding the entrypoint drops the image's Cmd
  const cmd = req.cmd ?? (req.entrypoint !== undefined ? [] : (config.Cmd ?? []));
  return [...entrypoint, ...cmd];
}

/** Image Env, then the request's env on top; PATH and HOME filled in when missing. */
export function processEnv(
  config: OciImageConfig,
  extra: Record<string, string> | undefined,
  home?: string,
): string[] {
  const env = new Map<string, string>();
  for (const e of config.Env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
    else if (e !== "") env.set(e, "");
  }
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (k === "" || k.includes("=") || k.includes("\0") || v.includes("\0"))
      throw new SpecError(`invalid environment variable name or value: ${JSON.stringify(k)}`);
    env.set(k, v);
  }
  if (!env.has("PATH")) env.set("PATH", DEFAULT_PATH);
  if (!env.has("HOME") && home) env.set("HOME", home);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function absolute(p: string, what: string): string {
  if (!p.startsWith("/")) throw new SpecError(`${what} must be an absolute path: ${p}`);
  return p;
}

export function buildSpec(input: SpecInput): Record<string, unknown> {
  const { config, request: req, user, host } = input;
  const args = processArgs(config, req);
  if (args.length === 0)
    throw new SpecError("nothing to run: the image has no Entrypoint or Cmd and none was given");
  const cwd = absolute(req.workdir || config.WorkingDir || "/", "working directory");
  const limits = req.limits ?? {};
  const nofile = Math.min(limits.nofile ?? 1024, host.nofileHard);
  const root = user.uid === 0;
  const caps = [...DEFAULT_CAPABILITIES];

  const namespaces: { type: string }[] = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: "cgroup" },
  ];
  if ((req.network ?? "none") === "none") namespaces.push({ type: "network" });

  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: "rwm" }],
  };
  if (limits.memoryBytes !== undefined) {
    const mem: Record<string, number> = { limit: Math.floor(limits.memoryBytes) };
    if (host.swapAccounting) mem.swap = Math.floor(limits.memoryBytes + (limits.swapBytes ?? 0));
    resources.memory = mem;
  }
  if (limits.pids !== undefined) resources.pids = { limit: Math.floor(limits.pids) };
  if (limits.cpus !== undefined) {
    const period = 100_000;
    resources.cpu = { period, quota: Math.max(1000, Math.round(limits.cpus * period)) };
  }

  const mounts: Record<string, unknown>[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
  ];
  for (const m of req.mounts ?? []) {
    absolute(m.source, "mount source");
    absolute(m.destination, "mount destination");
    mounts.push({
      destination: m.destination,
      type: "bind",
      source: m.source,
      options: ["rbind", m.readonly ? "ro" : "rw", "nosuid", "nodev", "rprivate"],
    });
  }

  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: {
        uid: user.uid,
        gid: user.gid,
        ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}),
      },
      args,
      env: processEnv(config, req.env, user.home),
      cwd,
      capabilities: {
        bounding: caps,
        effective: root ? caps : [],
        permitted: root ? caps : [],
        inheritable: [],
        ambient: [],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }],
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: req.hostname ?? "scar",
    mounts,
    linux: {
      cgroupsPath: cgroupPathUnder(host.cgroupRoot, host.cgroupsPath),
      resources,
      namespaces,
      ...((req.seccomp ?? "default") === "default" ? { seccomp: defaultSeccompProfile() } : {}),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}
