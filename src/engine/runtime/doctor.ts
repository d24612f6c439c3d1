/**
 * What `scar doctor` checks for the local engine: privileges, cgroups (mode, delegation, systemd), OCI
 * runtimes, overlayfs, user namespaces and subordinate ids, which limits hold as root and rootless,
 * helper tools, and a real test container. The host's facts are judged in host-checks.ts; each check
 * says what is missing, what that costs and the command that installs or fixes it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentBinaryPath } from "./agent-binary.js";
import { type CgroupMode, oomKillLogged } from "./cgroups.js";
import { findBinary, installCommand, isStatic, runtimeVersion } from "./detect.js";
import {
  type Blocker,
  type Check,
  cgroupDelegationCheck,
  cgroupModeOf,
  cgroupsCheck,
  type LimitWhere,
  limitChecks,
  limitsWhere,
  type OverlayFlavour,
  overlayFlavour,
  overlayFlavourCheck,
  rootlessLimitFound,
  subordinateIdsCheck,
  systemdCheck,
  systemdIsPid1,
  userNamespacesCheck,
  usernsBlocker,
  warmEnvironmentsCheck,
} from "./host-checks.js";
import { type Cgroup2Dir, readHostInfo } from "./host-info.js";
import { engineRefusal } from "./privileges.js";
import { type RootlessMode, rootlessMode, rootlessNote } from "./rootless.js";
import { ALLOWED_SYSCALLS } from "./seccomp.js";

export type { Check, CheckStatus } from "./host-checks.js";

export interface DoctorReport {
  /** the local engine can run containers here */
  ok: boolean;
  runtime?: string;
  cgroupMode: string;
  overlay?: string;
  userNamespaces: string;
  /** the host's mode, as the checks judge it (see host-checks.ts) */
  host: {
    root: boolean;
    cgroupMode: CgroupMode;
    /** on cgroup v2: the engine's own cgroup and the root's */
    cgroupV2?: { own?: Cgroup2Dir; root?: Cgroup2Dir };
    systemdPid1: boolean;
    pid1: string;
    userNamespaces: { available: boolean; blocker?: Blocker };
    overlayFlavour: OverlayFlavour;
    /** which limits hold for a root engine, and which rootless */
    limits: LimitWhere[];
    /** an ordinary user's engine: how it maps ids ("single": only the user's own; "ranges": /etc/subuid) */
    rootless?: { mapping: RootlessMode["mapping"] };
  };
  checks: Check[];
}

export async function diagnose(opts: { container?: boolean } = {}): Promise<DoctorReport> {
  const info = readHostInfo();
  const checks: Check[] = [];
  const root = info.uid === 0;
  const refusal = engineRefusal(info);
  const rootless = root || refusal ? undefined : rootlessMode();
  checks.push(
    refusal
      ? { name: "privileges", status: "fail", value: refusal.message, fix: refusal.hint }
      : rootless
        ? { name: "privileges", status: "ok", value: `${rootlessNote(rootless)}` }
        : { name: "privileges", status: "ok", value: "root" },
  );

  const mode = cgroupModeOf(info);
  checks.push(cgroupsCheck(info), cgroupDelegationCheck(info), systemdCheck(info));

  const tools: [string, string][] = [
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["mount", "mount"],
    ["umount", "mount"],
  ];
  const missingTools = tools.filter(([b]) => !findBinary(b));
  checks.push(
    missingTools.length === 0
      ? { name: "tools", status: "ok", value: "unshare, nsenter, mount, umount" }
      : {
          name: "tools",
          status: "fail",
          value: `missing: ${missingTools.map(([b]) => b).join(", ")}`,
          fix: installCommand(...new Set(missingTools.map(([, p]) => p))),
        },
  );

  checks.push(
    warmEnvironmentsCheck(
      agentBinaryPath(),
      `${installCommand("gcc", "libc6-dev")}, then \`npm run build\` in the scar folder`,
    ),
  );

  const versions: Record<string, string | undefined> = {};
  for (const name of ["crun", "runc"]) {
    const bin = findBinary(name);
    versions[name] = bin ? await runtimeVersion(bin) : undefined;
  }
  checks.push(
    versions.crun
      ? { name: "crun", status: "ok", value: `${versions.crun} (preferred)` }
      : {
          name: "crun",
          status: versions.runc ? "warn" : "fail",
          value: "not installed (preferred: starts containers about 3x faster than runc)",
          fix: installCommand("crun"),
        },
  );
  checks.push(
    versions.runc
      ? { name: "runc", status: "ok", value: versions.runc }
      : {
          name: "runc",
          status: versions.crun ? "skip" : "fail",
          value: "not installed (fallback)",
          fix: installCommand("runc"),
        },
  );

  const kmsg = rootless ? undefined : oomKillLogged("/scar-doctor/none");
  checks.push(
    rootless
      ? {
          name: "oom detection",
          status: "skip",
          value: "rootless: no memory limit, so no OOM kill of a container's own",
        }
      : kmsg === undefined
        ? {
            name: "oom detection",
            status: "warn",
            value: "/dev/kmsg not readable: OOM kills are told apart by the global counter only",
          }
        : { name: "oom detection", status: "ok", value: "exact (kernel log names the container's cgroup)" },
  );

  const un = userNamespacesCheck(info);
  checks.push(un, subordinateIdsCheck(info), overlayFlavourCheck(info));
  const limits = limitsWhere(info);

  let runtime: string | undefined;
  let overlay: string | undefined;
  // as root the containers need cgroups for their limits; rootless they get none anyway
  if ((root ? mode !== "none" : rootless !== undefined) && (versions.crun || versions.runc)) {
    const { Runner } = await import("./runner.js");
    const state = mkdtempSync(join(tmpdir(), "scar-doctor-"));
    try {
      const runner = await Runner.open({ stateDir: state, sweep: false });
      try {
        const i = runner.info;
        runtime = `${i.runtime} ${i.version}`;
        checks.push({
          name: "runtime",
          status: "ok",
          value: `${runtime} (${i.binary})${i.workaround === "none" ? "" : `, hybrid-cgroup workaround: ${i.workaround}`}${i.skipped.length ? `; skipped ${i.skipped.join(", ")}` : ""}`,
        });
        overlay = i.overlay.fuse
          ? `fuse-overlayfs in a user namespace (${i.overlay.error ?? "the kernel's overlay refused"})`
          : i.overlay.overlay
            ? `overlayfs${i.overlay.volatile ? " (volatile upper)" : ""}${i.overlay.userxattr ? " in a user namespace (userxattr)" : ""}`
            : "copy fallback";
        checks.push(
          i.overlay.overlay
            ? { name: "overlay", status: "ok", value: `${overlay}: runs never copy the image` }
            : {
                name: "overlay",
                status: "warn",
                value: `not available (${i.overlay.error}); each run copies the image (slow)`,
              },
        );
        // What the runner found beats what the host's files predict.
        if (rootless && i.rootlessLimits) {
          const found = i.rootlessLimits;
          for (const l of limits) if (l.limit !== "disk") l.rootless = rootlessLimitFound(l.limit, found);
          checks[0] = { name: "privileges", status: "ok", value: rootlessNote(rootless, found) };
          const delegation = checks.findIndex((c) => c.name === "cgroup delegation");
          if (found.held.length > 0)
            checks[delegation] = {
              name: "cgroup delegation",
              status: "ok",
              value: `delegated to this user: ${found.cgroup} (the engine's; its containers' cgroups go below it)`,
            };
          const oom = checks.findIndex((c) => c.name === "oom detection");
          if (found.held.includes("memory"))
            checks[oom] = {
              name: "oom detection",
              status: "ok",
              value: `exact (memory.events of each container's cgroup, in ${found.cgroup})`,
            };
        }
        const disk = limits.find((l) => l.limit === "disk")!;
        if (root)
          disk.root =
            i.disk === "loop ext4"
              ? {
                  holds: true,
                  how: "each run writes to its own ext4 disk of its limit (FDL lambda.ephemeral_storage, default 512 MB)",
                }
              : {
                  holds: false,
                  how: `${i.disk}: what a run writes is not limited`,
                  ...(i.disk.includes("mkfs.ext4") ? { fix: installCommand("e2fsprogs") } : {}),
                };
        if (opts.container ?? true) checks.push(...(await testContainer(runner, state)));
      } finally {
        await runner.close();
      }
    } catch (e) {
      checks.push({
        name: "runtime",
        status: "fail",
        value: (e as Error).message,
        fix: (e as { install?: string }).install,
      });
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  } else if (!root || mode === "none") {
    checks.push({
      name: "runtime",
      status: "skip",
      value: `not tried (${!root ? "no user namespace for an ordinary user's engine" : "no cgroups"})`,
    });
  } else {
    checks.push({
      name: "runtime",
      status: "fail",
      value: "no OCI runtime installed",
      fix: installCommand("crun"),
    });
  }
  checks.push(...limitChecks(limits, root));
  const blocker = usernsBlocker(info);
  return {
    ok: !checks.some((c) => c.status === "fail"),
    runtime,
    cgroupMode: mode,
    overlay,
    userNamespaces: un.value,
    host: {
      root,
      cgroupMode: mode,
      ...(mode === "v2"
        ? {
            cgroupV2: {
              ...(info.v2Own ? { own: info.v2Own } : {}),
              ...(info.v2Root ? { root: info.v2Root } : {}),
            },
          }
        : {}),
      ...(rootless ? { rootless: { mapping: rootless.mapping } } : {}),
      systemdPid1: systemdIsPid1(info),
      pid1: info.pid1,
      userNamespaces: { available: blocker === undefined, ...(blocker ? { blocker } : {}) },
      overlayFlavour: overlayFlavour(info),
      limits,
    },
    checks,
  };
}

/**
 * Runs `busybox echo ok` in a one-layer image made of the host's static busybox, when there is one,
 * and reads the container's seccomp mode (2: a filter) from /proc/self/status.
 */
async function testContainer(runner: import("./runner.js").Runner, state: string): Promise<Check[]> {
  const busybox = findBinary("busybox");
  if (!busybox || !isStatic(busybox))
    return [
      {
        name: "container",
        status: "skip",
        value: "no static busybox to build a test image from",
        fix: installCommand("busybox-static"),
      },
    ];
  const layer = join(state, "layer");
  mkdirSync(join(layer, "bin"), { recursive: true });
  execFileSync("cp", [busybox, join(layer, "bin", "busybox")]);
  const r = await runner.run({
    image: { config: { Cmd: ["/bin/busybox", "echo", "ok"] }, layers: [layer] },
    limits: { memoryBytes: 64 << 20, pids: 16 },
    timeoutMs: 20_000,
  });
  const ms = Math.round(r.timings.prepareMs + r.timings.runMs + r.timings.cleanupMs);
  if (r.reason !== "ok" || r.stdout.toString() !== "ok\n")
    return [
      {
        name: "container",
        status: "fail",
        value: `test container failed: ${r.reason} ${r.message ?? r.stderr.toString().trim()}`,
      },
    ];
  const sc = await runner.run({
    image: { config: { Cmd: ["/bin/busybox", "grep", "^Seccomp:", "/proc/self/status"] }, layers: [layer] },
    timeoutMs: 20_000,
  });
  const mode = /^Seccomp:\s*(\d)/.exec(sc.stdout.toString())?.[1];
  return [
    {
      name: "container",
      status: "ok",
      value: `test container ran (${ms} ms with ${r.rootfs} rootfs, ${runner.info.rootless ? `rootless: ${runner.info.rootlessLimits?.held.includes("memory") ? "memory and pids limits" : "no memory or pids limits"}` : "memory and pids limits"})`,
    },
    mode === "2"
      ? {
          name: "seccomp",
          status: "ok",
          value: `containers run with scar's profile (${ALLOWED_SYSCALLS.length} syscalls allowed, the rest fail with EPERM; FDL seccomp: unconfined turns it off)`,
        }
      : {
          name: "seccomp",
          status: "warn",
          value: `containers run without a seccomp filter (Seccomp: ${mode ?? "unknown"}): the runtime was built without libseccomp?`,
        },
  ];
}
