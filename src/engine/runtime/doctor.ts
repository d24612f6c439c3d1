/**
 * What `scar doctor` checks for the local engine: privileges, cgroups, OCI runtimes, overlayfs, user
 * namespaces, helper tools, and a real test container. Each check says what is missing and the command
 * that installs it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cgroupMode, oomKillLogged } from "./cgroups.js";
import { findBinary, installCommand, isStatic, runtimeVersion } from "./detect.js";
import { ALLOWED_SYSCALLS } from "./seccomp.js";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface Check {
  name: string;
  status: CheckStatus;
  /** what was found */
  value: string;
  /** what to run to fix it */
  fix?: string;
}

export interface DoctorReport {
  /** the local engine can run containers here */
  ok: boolean;
  runtime?: string;
  cgroupMode: string;
  overlay?: string;
  userNamespaces: string;
  checks: Check[];
}

function readNumber(p: string): number | undefined {
  try {
    return Number(readFileSync(p, "utf8").trim());
  } catch {
    return undefined;
  }
}

export function userNamespaces(): { status: CheckStatus; value: string } {
  const max = readNumber("/proc/sys/user/max_user_namespaces");
  if (max === undefined) return { status: "warn", value: "unknown (no /proc/sys/user/max_user_namespaces)" };
  if (max === 0) return { status: "warn", value: "disabled (user.max_user_namespaces = 0)" };
  const clone = readNumber("/proc/sys/kernel/unprivileged_userns_clone");
  if (clone === 0)
    return { status: "warn", value: `root only (kernel.unprivileged_userns_clone = 0), max ${max}` };
  // Available to the engine, but its containers do not run in one yet (rootless containers: issue 20).
  return {
    status: "ok",
    value: `available (max ${max}); not used by containers yet: root in a container is root on the host, held by dropped capabilities, no-new-privileges and the seccomp profile`,
  };
}

export async function diagnose(opts: { container?: boolean } = {}): Promise<DoctorReport> {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  checks.push(
    root
      ? { name: "privileges", status: "ok", value: "root" }
      : {
          name: "privileges",
          status: "fail",
          value: `uid ${process.getuid?.()}: the local engine needs root`,
          fix: "sudo scar ...",
        },
  );

  const mode = cgroupMode();
  checks.push({
    name: "cgroups",
    status: mode === "none" ? "fail" : "ok",
    value:
      mode === "hybrid"
        ? "hybrid (v1 controllers + cgroup2 with controllers): crun runs in a private mount namespace that hides the cgroup2 mount"
        : mode === "none"
          ? "not mounted: no memory or pids limits possible"
          : mode,
  });

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

  const kmsg = oomKillLogged("/scar-doctor/none");
  checks.push(
    kmsg === undefined
      ? {
          name: "oom detection",
          status: "warn",
          value: "/dev/kmsg not readable: OOM kills are told apart by the global counter only",
        }
      : { name: "oom detection", status: "ok", value: "exact (kernel log names the container's cgroup)" },
  );

  const un = userNamespaces();
  checks.push({ name: "user namespaces", status: un.status, value: un.value });

  let runtime: string | undefined;
  let overlay: string | undefined;
  if (root && mode !== "none" && (versions.crun || versions.runc)) {
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
        overlay = i.overlay.overlay
          ? `overlayfs${i.overlay.volatile ? " (volatile upper)" : ""}`
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
        checks.push(
          i.disk === "loop ext4"
            ? {
                name: "disk limit",
                status: "ok",
                value:
                  "each run writes to its own ext4 disk of its limit (FDL lambda.ephemeral_storage, default 512 MB)",
              }
            : {
                name: "disk limit",
                status: "warn",
                value: `${i.disk}: what a run writes is not limited`,
                ...(i.disk.includes("mkfs.ext4") ? { fix: installCommand("e2fsprogs") } : {}),
              },
        );
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
      value: `not tried (${!root ? "needs root" : "no cgroups"})`,
    });
  } else {
    checks.push({
      name: "runtime",
      status: "fail",
      value: "no OCI runtime installed",
      fix: installCommand("crun"),
    });
  }
  return {
    ok: !checks.some((c) => c.status === "fail"),
    runtime,
    cgroupMode: mode,
    overlay,
    userNamespaces: un.value,
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
      value: `test container ran (${ms} ms with ${r.rootfs} rootfs, memory and pids limits)`,
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
