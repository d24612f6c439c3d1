/**
 * Where the engine's containers' cgroups go on a cgroup v2 host, under v2's two rules:
 *
 * - a cgroup holds processes or child cgroups with controllers, never both ("no internal
 *   processes"): the engine's own process leaves the cgroup it makes children in, for a leaf
 *   `<delegated>/scar-engine`;
 * - a cgroup belongs to one manager: under systemd the engine writes only inside a subtree systemd
 *   delegated (`Delegate=yes`), never into slices, services or session scopes systemd owns.
 *
 * The subtree, once per process (every runner of the process shares it):
 * - the engine already runs in a delegated unit (a service or scope with `Delegate=yes`, e.g.
 *   `systemd-run --scope -p Delegate=yes scar serve`), or in a cgroup no systemd manages (no systemd as
 *   PID 1, or the root of a container's cgroup namespace): that cgroup; every process in it moves
 *   into the leaf;
 * - systemd is PID 1 and the engine's cgroup is not delegated (a login session, a plain service):
 *   systemd is asked (D-Bus, `busctl`) for a transient scope `scar-engine-<pid>.scope` holding the
 *   engine's process, with `Delegate=yes` and memory, pids and cpu accounting (so that systemd itself
 *   enables those controllers on the slices above it). Only this process moves, at start, once;
 *   starting a container costs no D-Bus call (as crun/runc's `--systemd-cgroup` would: a transient
 *   unit per container). The scope ends when its last process does (the engine and any container
 *   it left running), and systemd removes its cgroups then;
 * - the real root cgroup (no systemd, no namespace): the root, which may hold processes and
 *   children at once, as before.
 *
 * An ordinary user's (rootless) engine does the same with the user's own systemd: its cgroup when
 * the user's manager delegated it, else a transient scope asked of the user's manager over the user
 * bus (`busctl --user`; `$XDG_RUNTIME_DIR/bus`, `/run/user/<uid>/bus` when the variable is unset),
 * the way rootless podman gets one. The manager moves the process itself (from a login session's
 * scope it asks the system's systemd to), and `user@.service` delegates memory, pids and cpu on
 * systemd >= 252. Without a user session (no bus) the placement fails with why, and the rootless
 * engine goes without limits (runner.ts).
 *
 * In it: `cgroup.subtree_control` gets `+cpu +memory +pids` (those the cgroup has), and each runner
 * makes `scar-<tag>` with the same, under which each run gets `<run id>` (the engine's: it keeps the
 * run's `memory.events`, whose counts include its children's, after the runtime removed the
 * container's own cgroup `<run id>/ctr`).
 */
import { execFile } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { parseProcCgroup } from "./cgroups.js";
import { findBinary, RuntimeUnavailableError } from "./detect.js";
import { USER_SESSION } from "./host-checks.js";

const ROOT = "/sys/fs/cgroup";
/** the engine's processes' leaf in its delegated cgroup */
export const ENGINE_LEAF = "scar-engine";
/** the controllers the engine's limits need */
export const LIMIT_CONTROLLERS = ["cpu", "memory", "pids"] as const;

export interface V2Placement {
  /** the cgroup (path under the cgroup2 mount) whose subtree is the engine's */
  delegated: string;
  /**
   * how it got it: `root` (the real root cgroup), `own` (its cgroup was delegated or unmanaged; its
   * processes moved into the leaf), `scope` (a transient systemd scope made for it), `inherited` (a
   * parent process of scar's placed it already)
   */
  how: "root" | "own" | "scope" | "inherited";
  /** the limit controllers enabled for the children of `delegated` */
  controllers: string[];
  /** the limit controllers the engine could not get (their limits do not hold) */
  missing: string[];
}

/** The engine found no cgroup it may make its containers' in (`scar serve` prints it with its fix). */
export class CgroupPlacementError extends RuntimeUnavailableError {
  constructor(message: string, fix?: string) {
    super(message, fix);
    this.name = "CgroupPlacementError";
  }
}

let placed: Promise<V2Placement> | undefined;

/** Moves this process into its leaf of a delegated cgroup, once per process; where that is. */
export function placeEngine(): Promise<V2Placement> {
  placed ??= place().catch((e: unknown) => {
    placed = undefined;
    throw e;
  });
  return placed;
}

/** This process's cgroup v2 path ("/..."), from /proc/self/cgroup. */
export function ownCgroup2(): string {
  const own = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8")).get("");
  if (own === undefined)
    throw new CgroupPlacementError("this process has no cgroup v2 (no `0::` line in /proc/self/cgroup)");
  return own;
}

/** The folder of cgroup `path` under the cgroup2 mount. */
export function cgroupDir(path: string): string {
  return join(ROOT, path);
}

async function place(): Promise<V2Placement> {
  const own = ownCgroup2();
  const user = (process.geteuid?.() ?? 0) !== 0;
  // The real root (no memory.max there) may hold processes and children at once; the root of a
  // cgroup namespace (a container's) is a cgroup like any other.
  if (!user && own === "/" && !existsSync(join(ROOT, "memory.max"))) return enable("/", "root");
  if (basename(own) === ENGINE_LEAF && (!user || writable(dirname(own))))
    return enable(dirname(own), "inherited");
  if (readPid1() !== "systemd" ? !user || writable(own) : await delegatedBySystemd(own, user)) {
    moveAll(own, join(own, ENGINE_LEAF));
    return enable(own, "own");
  }
  if (readPid1() !== "systemd")
    throw new CgroupPlacementError(
      `this user's cgroup ${own} is not delegated to it (not writable), and no systemd runs here to ask for one`,
      "have the init system delegate a cgroup to this user",
    );
  const scope = await startScope(user);
  moveAll(scope, join(scope, ENGINE_LEAF));
  return enable(scope, "scope");
}

/** Whether this process may make child cgroups in `path` and move processes into them. */
function writable(path: string): boolean {
  try {
    for (const f of ["", "cgroup.procs", "cgroup.subtree_control"])
      accessSync(join(cgroupDir(path), f), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The environment of a command that talks to this user's systemd (`systemctl --user`, `busctl
 * --user`): the user bus is found through XDG_RUNTIME_DIR, which a login session sets and `su`,
 * `setpriv` or cron do not: then the usual place, /run/user/<uid>.
 */
export function userBusEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.XDG_RUNTIME_DIR || env.DBUS_SESSION_BUS_ADDRESS) return env;
  return { ...env, XDG_RUNTIME_DIR: `/run/user/${process.geteuid?.() ?? 0}` };
}

function readPid1(): string {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * Whether systemd delegated `path` (or a cgroup above it) to its processes. A cgroup named after
 * no unit exists only inside a delegated subtree (systemd makes only units' cgroups); a unit's
 * cgroup is delegated when the unit says `Delegate=yes`.
 */
async function delegatedBySystemd(path: string, user: boolean): Promise<boolean> {
  // an ordinary user may write only where some manager gave the cgroup to it
  if (user && !writable(path)) return false;
  const name = basename(path);
  if (!/\.(service|scope|slice)$/.test(name)) return true;
  if (name.endsWith(".slice")) return false;
  const systemctl = findBinary("systemctl");
  if (!systemctl) return false;
  try {
    const { stdout } = await run(
      systemctl,
      [...(user ? ["--user"] : []), "show", "--property=Delegate", "--value", name],
      user ? { env: userBusEnv() } : {},
    );
    return stdout.trim() === "yes";
  } catch {
    return false;
  }
}

const run = promisify(execFile);

/**
 * Asks systemd (the user's own for an ordinary user) for a transient scope with Delegate=yes holding
 * this process; its cgroup path.
 */
async function startScope(user: boolean): Promise<string> {
  const busctl = findBinary("busctl");
  const unit = `scar-engine-${process.pid}.scope`;
  const fix = user
    ? USER_SESSION
    : "start scar in a delegated cgroup instead: systemd-run --scope -p Delegate=yes scar serve (or a service with Delegate=yes)";
  const whose = user ? "your systemd user session" : "systemd";
  if (!busctl)
    throw new CgroupPlacementError(`busctl (systemd) is missing to ask ${whose} for a delegated cgroup`, fix);
  const props = [
    ["PIDs", "au", "1", String(process.pid)],
    ["Delegate", "b", "true"],
    ["CollectMode", "s", "inactive-or-failed"],
    ["MemoryAccounting", "b", "true"],
    ["TasksAccounting", "b", "true"],
    ["CPUAccounting", "b", "true"],
    ["Description", "s", "scar engine: its containers' cgroups"],
  ];
  const args = [
    ...(user ? ["--user"] : []),
    "call",
    "--quiet",
    "org.freedesktop.systemd1",
    "/org/freedesktop/systemd1",
    "org.freedesktop.systemd1.Manager",
    "StartTransientUnit",
    "ssa(sv)a(sa(sv))",
    unit,
    "fail",
    String(props.length),
    ...props.flat(),
    "0",
  ];
  try {
    await run(busctl, args, { timeout: 30_000, ...(user ? { env: userBusEnv() } : {}) });
  } catch (e) {
    const said = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new CgroupPlacementError(
      `${whose} did not make the scope ${unit} for the containers' cgroups: ${said}`,
      fix,
    );
  }
  // systemd moves the process when the unit starts, right after the job is queued
  for (let i = 0; i < 500; i++) {
    const now = ownCgroup2();
    if (basename(now) === unit) return now;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new CgroupPlacementError(`systemd made ${unit} but did not move this process into it`, fix);
}

/** Moves every process of cgroup `from` into `leaf` (made if missing), until none is left. */
function moveAll(from: string, leaf: string): void {
  mkdirSync(cgroupDir(leaf), { recursive: true });
  const procs = join(cgroupDir(from), "cgroup.procs");
  for (let attempt = 0; attempt < 20; attempt++) {
    const pids = readFileSync(procs, "utf8")
      .split("\n")
      .filter((l) => l !== "");
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        writeFileSync(join(cgroupDir(leaf), "cgroup.procs"), pid);
      } catch {
        // exited meanwhile (a new one is read again above)
      }
    }
  }
  throw new CgroupPlacementError(
    `processes keep appearing in ${cgroupDir(from)}: cannot make it hold only child cgroups`,
  );
}

/** Enables the limit controllers for the children of `path` (those it has); what it got. */
function enable(path: string, how: V2Placement["how"]): V2Placement {
  const { controllers, missing } = enableControllers(path);
  return { delegated: path, how, controllers, missing };
}

/**
 * Writes `+cpu +memory +pids` (those `path` has) into its cgroup.subtree_control; the enabled ones
 * and the missing ones.
 */
export function enableControllers(path: string): { controllers: string[]; missing: string[] } {
  const dir = cgroupDir(path);
  const available = new Set(readFileSync(join(dir, "cgroup.controllers"), "utf8").trim().split(/\s+/));
  const want = LIMIT_CONTROLLERS.filter((c) => available.has(c));
  const missing = LIMIT_CONTROLLERS.filter((c) => !available.has(c));
  const enabled = new Set(readFileSync(join(dir, "cgroup.subtree_control"), "utf8").trim().split(/\s+/));
  const add = want.filter((c) => !enabled.has(c));
  if (add.length > 0) {
    try {
      writeFileSync(join(dir, "cgroup.subtree_control"), add.map((c) => `+${c}`).join(" "));
    } catch (e) {
      throw new CgroupPlacementError(
        `cannot enable ${add.join(", ")} for the children of ${dir}: ${(e as Error).message}` +
          ((e as NodeJS.ErrnoException).code === "EBUSY" ? " (it holds processes)" : ""),
      );
    }
  }
  return { controllers: want, missing };
}

/** The runner's parent cgroup `<delegated>/scar-<tag>`, made, with the limit controllers on for its children. */
export function makeRunnerParent(p: V2Placement, tag: string): string {
  const parent = `${p.delegated.replace(/\/+$/, "")}/scar-${tag}`;
  mkdirSync(cgroupDir(parent), { recursive: true });
  enableControllers(parent);
  return parent;
}

/**
 * Parents of the same runner (`scar-<tag>`) in the scopes of engines that are gone: a crashed
 * engine's scope lives on while containers it left run in it.
 */
export function staleRunnerParents(p: V2Placement, tag: string): string[] {
  if (p.how !== "scope") return [];
  const slice = dirname(p.delegated);
  let names: string[];
  try {
    names = readdirSync(cgroupDir(slice));
  } catch {
    return [];
  }
  return names
    .filter((n) => /^scar-engine-\d+\.scope$/.test(n) && join(slice, n) !== p.delegated)
    .map((n) => join(slice, n, `scar-${tag}`))
    .filter((c) => existsSync(cgroupDir(c)));
}

/**
 * The OOM kills in run cgroup `path` and below (memory.events' `oom_kill`, which counts the
 * children's too); undefined when the file cannot be read.
 */
export function oomKillsIn(path: string): number | undefined {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(cgroupDir(path), "memory.events"), "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
