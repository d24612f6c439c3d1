/**
 * A warm execution environment (issue 14): one long-lived container of an image whose first process
 * is scar's agent, running invocations one at a time.
 *
 *   start: the container is prepared as a run's (runner.ts: spec with the same isolation and limits,
 *   overlay root, the disk when diskBytes is set) with two more mounts, the agent binary read-only at
 *   /.scar/agent (the entrypoint, no cmd) and the environment's /tmp; the mount helper starts
 *   `crun|runc run` with stdin/stdout/stderr on three FIFOs of the run folder (mountns.ts `serve`):
 *   stdin/stdout carry the agent's frames, stderr its diagnostics. Started when the agent says hello.
 *   invoke: R with the merged environment -> O/E chunks (captured with a cap, streamed) -> X, mapped
 *   to a RunReason; the environment's own memory cgroup's OOM-kill counter and its disk decide oom
 *   and disk. An engine-side guard kills the container when no X comes in time.
 *   close: EOF on the agent's stdin (it kills everything and exits), SIGKILL if it does not end
 *   promptly, then what a run's cleanup does (runtime state, cgroup, umount, folder, disk).
 *
 * The environment lives in the runner's runs/ folder and cgroup parent under an id starting with
 * "e": a start-up sweep after a crash finds and removes it as it does a run's leftovers.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, lstat, mkdir, readdir, rename, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { isAbsolute, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { ContainerRuntime } from "./adapters.js";
import { runtimeErrors } from "./adapters.js";
import { AGENT_BUILD_HINT, agentBinaryPath } from "./agent-binary.js";
import { AgentClient, type AgentExit, AgentLostError, AgentProtocolError } from "./agent-client.js";
import { type BundleState, prepareBundle } from "./bundle.js";
import { type CgroupMode, oomKillCount, oomKillLogged, oomKillsOf } from "./cgroups.js";
import type { Disk, DiskPool } from "./disk.js";
import { signalNumber } from "./exec.js";
import { MountError } from "./mountns.js";
import { CappedBuffer } from "./output.js";
import { hostNetworkFiles } from "./rootfs.js";
import { containerSpec, containerUser, type RootlessMode } from "./rootless.js";
import { type HostFacts, processEnv, SpecError } from "./spec.js";
import type {
  BindMount,
  Environment,
  EnvironmentInvocation,
  EnvironmentInvocationResult,
  EnvironmentRequest,
  RunReason,
} from "./types.js";
import { type ResolvedUser, UserError } from "./user.js";

/** Where the agent binary is mounted in every environment (read-only); its entrypoint. */
export const AGENT_PATH = "/.scar/agent";

/** How long an agent may take from the container's start to its hello before the start fails. */
const HELLO_TIMEOUT_MS = 30_000;
/** After an invocation's time limit, how long the agent has to report the kill before the engine kills the container. */
const GUARD_MS = 5000;
/** How long close() waits for the agent to exit on EOF before it kills the container. */
const CLOSE_GRACE_MS = 2000;
const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;
const OOM_MESSAGE = "killed by the kernel's OOM killer (the environment's memory limit reached)";

/** The environment could not be started; `message` says why (the runtime's or the agent's words). */
export class EnvironmentStartError extends Error {
  override name = "EnvironmentStartError";
}

/** What an environment needs of its Runner (runner.ts). */
export interface EnvironmentHost {
  readonly runtime: ContainerRuntime;
  readonly runsDir: string;
  readonly cgroupParent: string;
  /** the cgroup (path under the hierarchy's root) a container of this id is given (cgroup v2: nested) */
  containerCgroup(id: string): string;
  readonly cgroupMode: CgroupMode;
  readonly facts: Omit<HostFacts, "cgroupsPath">;
  readonly rootfs: "overlay" | "copy";
  readonly overlayVolatile: boolean;
  /** the overlay is mounted with `userxattr` (rootless) */
  readonly overlayUserxattr: boolean;
  /** the overlay is fuse-overlayfs's (rootless, where the kernel's is refused) */
  readonly overlayFuse?: boolean;
  /** set when the engine runs as an ordinary user (rootless.ts): no cgroup limits, ids mapped */
  readonly rootless?: RootlessMode;
  readonly disks?: DiskPool;
  /**
   * Removes what the runtime left of container `id`, unmounts its overlay, deletes its folder and
   * puts its disk back in the pool, as after a run, then calls `unlease` (the bundle's lease on its
   * layers); resolves when all of that is done.
   */
  release(
    id: string,
    dir: string,
    mounted: string | undefined,
    disk: Disk | undefined,
    unlease: (() => void) | undefined,
  ): Promise<void>;
  /** RunnerOptions.leaseLayers: the image store's lease on layers an overlay is mounted over */
  readonly leaseLayers?: (layers: readonly string[]) => () => void;
  /** an environment is starting: the runner's close() closes it, its sweep leaves it alone */
  track(env: Environment): void;
  /** the environment ended (closed, or its start failed): the runner forgets it */
  forget(id: string): void;
}

/**
 * An environment's bundle folder, prepared (bundle.ts) with what only environments have: the third
 * FIFO for the agent's stdin, the /tmp the container gets and the aside folder beside it. Made on the
 * way when an environment starts, or ahead of need by the runner (Runner.startEnvironment's spares):
 * everything but config.json, which needs the environment's request.
 */
export interface PreparedBundle {
  /** the container's id: its folder in runs/, its runtime state and cgroup are named after it */
  readonly id: string;
  readonly dir: string;
  readonly state: BundleState;
  /** the disk (RunRequest.diskBytes) its overlay's upper and /tmp live on */
  disk?: Disk;
  /**
   * releases the image store's lease on its layers (EnvironmentHost.leaseLayers), taken before its
   * overlay is mounted; whoever holds the bundle (a spare, then its environment) has it called when
   * the bundle is released
   */
  unlease?: () => void;
  /** everything is in place (a failed or unfinished one is released, never used) */
  ready: boolean;
}

/** A new bundle id: environments' start with "e" (the sweep tells them from runs by nothing else). */
export function environmentId(): string {
  return `e${Date.now().toString(36)}${randomBytes(5).toString("hex")}`;
}

/**
 * Prepares `b` for an environment of `layers` with a disk of `diskBytes` (none when undefined or
 * on the copy fallback). Throws SpecError when the disk cannot be made; on any failure, `b` says
 * what to release (EnvironmentHost.release).
 */
export async function prepareEnvironmentBundle(
  host: EnvironmentHost,
  b: PreparedBundle,
  layers: readonly string[],
  diskBytes: number | undefined,
  config?: (b: PreparedBundle) => unknown,
): Promise<void> {
  // before anything is mounted over the layers: prune must not delete them from under the overlay
  b.unlease ??= host.leaseLayers?.(layers);
  if (diskBytes !== undefined && host.disks && host.rootfs === "overlay") {
    try {
      b.disk = await host.disks.acquire(diskBytes);
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      throw new SpecError(`cannot make the environment's ${diskBytes >> 20} MiB disk: ${e.message}`);
    }
  }
  await prepareBundle(
    {
      namespace: host.runtime.host.namespace,
      rootfs: host.rootfs,
      overlayVolatile: host.overlayVolatile,
      overlayUserxattr: host.overlayUserxattr,
      overlayFuse: host.overlayFuse ?? false,
    },
    b.state,
    {
      dir: b.dir,
      layers,
      stdin: true,
      ...(b.disk ? { disk: b.disk } : {}),
      ...(config ? { config: config(b) } : {}),
    },
  );
  const tmp = b.disk ? host.disks!.view(b.disk, "mounts", "0") : join(b.dir, "tmp");
  if (!b.disk) await mkdir(tmp);
  // a /tmp as images have it: anyone may write, only the owner may delete (the invocation folders
  // in it are the image user's, see prepareInvocation)
  await chmod(tmp, 0o1777);
  await mkdir(b.disk ? host.disks!.view(b.disk, "mounts", "aside") : join(b.dir, "aside"));
  b.ready = true;
}

/** The container's process as this process talks to it. */
interface Launched {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** the runtime's exit status (128 + n when killed by signal n); undefined when unknown */
  exited: Promise<number | undefined>;
}

/** Starts one environment (Runner.startEnvironment). */
export async function startEnvironment(
  host: EnvironmentHost,
  req: EnvironmentRequest,
  /** a bundle prepared ahead for this image and disk size (ready), taken over by the environment */
  prepared?: PreparedBundle,
): Promise<Environment> {
  const t0 = performance.now();
  const ready = prepared?.ready === true ? prepared : undefined;
  const env = new WarmEnvironment(host, req, ready?.id ?? environmentId(), ready);
  host.track(env);
  try {
    await env.start();
  } catch (e) {
    await env.close();
    if (e instanceof SpecError || e instanceof UserError || e instanceof MountError)
      throw new EnvironmentStartError(e.message);
    throw e;
  }
  env.startMs = performance.now() - t0;
  return env;
}

class WarmEnvironment implements Environment {
  startMs = 0;
  readonly memoryBytes: number;
  private readonly dir: string;
  private user!: ResolvedUser;
  /** its folder, root file system and disk (bundle.ts), prepared ahead or on the way */
  private readonly bundle: PreparedBundle;
  private launched: Launched | undefined;
  private client: AgentClient | undefined;
  /** the runtime's exit status, once it exited */
  private ended: number | undefined | null = null;
  private closing: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private busy = false;
  /** no more invocations: closed, or an invocation left it unusable */
  private broken = false;
  /** the agent's diagnostics (stderr), the last few KiB, for messages */
  private diagnostics = "";
  private readonly killTimers: NodeJS.Timeout[] = [];
  /** the next invocation's folders, made ahead of need outside /tmp (see prepareInvocation) */
  private spare: Promise<string | undefined> | undefined;
  /** the container's OOM kill counter as read after the last invocation: the next one's "before" */
  private oomSeen: number | undefined;
  /** finished invocations' folders being deleted in the background (waited for by close()) */
  private readonly removing = new Set<Promise<unknown>>();

  constructor(
    private readonly host: EnvironmentHost,
    private readonly req: EnvironmentRequest,
    readonly id: string,
    prepared: PreparedBundle | undefined,
  ) {
    this.dir = join(host.runsDir, id);
    this.memoryBytes = req.limits?.memoryBytes ?? 0;
    this.bundle = prepared ?? { id, dir: this.dir, state: { kind: host.rootfs, fifos: false }, ready: false };
  }

  private get disk(): Disk | undefined {
    return this.bundle.disk;
  }

  get diskPath(): string | undefined {
    return this.bundle.disk?.path;
  }

  get alive(): boolean {
    if (this.launched === undefined || this.ended !== null || this.closing !== undefined) return false;
    // its disk is reached through the helper that mounted it: without it, no invocation folders
    const ns = this.host.runtime.host.namespace;
    return !this.disk || (ns?.alive === true && ns.pid === this.disk.helper);
  }

  /** the environment's /tmp as the helper's namespace (and the runtime) sees it */
  private get tmpSource(): string {
    return this.disk ? join(this.disk.path, "mounts", "0") : join(this.dir, "tmp");
  }

  /** the environment's /tmp as this process reaches it */
  private get tmpView(): string {
    return this.disk ? this.host.disks!.view(this.disk, "mounts", "0") : join(this.dir, "tmp");
  }

  /**
   * A folder next to /tmp on the same file system, which the container does not see (on a disk, in
   * `mounts/`, which the disk's wipe empties before its next use): spare
   * invocation folders are made there, and finished ones are moved there to be deleted.
   */
  private get asideSource(): string {
    return this.disk ? join(this.disk.path, "mounts", "aside") : join(this.dir, "aside");
  }

  private get asideView(): string {
    return this.disk ? this.host.disks!.view(this.disk, "mounts", "aside") : join(this.dir, "aside");
  }

  start(): Promise<void> {
    this.starting ??= this.prepareAndLaunch();
    return this.starting;
  }

  private async prepareAndLaunch(): Promise<void> {
    const { host, req } = this;
    const agent = agentBinaryPath();
    if (!agent) throw new SpecError(`scar's agent is not built: ${AGENT_BUILD_HINT}`);
    const ns = host.runtime.host.namespace;
    await ns?.ensure();
    for (const l of req.image.layers)
      if (!isAbsolute(l) || !existsSync(l)) throw new SpecError(`image layer folder missing: ${l}`);
    for (const m of req.mounts ?? []) {
      if (!existsSync(m.source)) throw new SpecError(`mount source missing: ${m.source}`);
      if (m.onDisk) throw new SpecError(`an environment's mounts cannot be onDisk: ${m.destination}`);
    }
    this.user = containerUser(req.user ?? req.image.config.User, req.image.layers, host.rootless);
    const spec = () => {
      const mounts: BindMount[] = [
        ...(req.mounts ?? []),
        { source: agent, destination: AGENT_PATH, readonly: true },
        { source: this.tmpSource, destination: "/tmp" },
      ];
      if (req.network === "host") mounts.unshift(...hostNetworkFiles(mounts));
      return containerSpec(
        {
          rootfs: join(this.dir, "rootfs"),
          config: req.image.config,
          request: {
            entrypoint: [AGENT_PATH],
            cmd: [],
            mounts,
            ...(req.workdir !== undefined ? { workdir: req.workdir } : {}),
            ...(req.limits ? { limits: req.limits } : {}),
            ...(req.seccomp ? { seccomp: req.seccomp } : {}),
            ...(req.network ? { network: req.network } : {}),
            ...(req.hostname !== undefined ? { hostname: req.hostname } : {}),
          },
          user: this.user,
          host: { ...host.facts, cgroupsPath: host.containerCgroup(this.id) },
        },
        host.rootless,
      );
    };
    // A bundle prepared ahead needs only its config.json; else it is prepared now, config.json
    // written while the helper mounts the overlay.
    if (this.bundle.ready) await writeFile(join(this.dir, "config.json"), JSON.stringify(spec()));
    else await prepareEnvironmentBundle(host, this.bundle, req.image.layers, req.diskBytes, spec);
    const fifos = this.bundle.state.fifos;

    const argv = host.runtime.runArgv({
      bundle: this.dir,
      id: this.id,
      pidFile: join(this.dir, "pid"),
      logFile: join(this.dir, "runtime.log"),
    });
    if (this.closing) throw new SpecError("the environment was closed while it started");
    const launched = await this.launch(argv, fifos);
    this.launched = launched;
    // the first invocation's folders, made while the container starts (see prepareInvocation)
    this.spare ??= this.makeSpare();
    launched.stderr.setEncoding("utf8");
    launched.stderr.on("data", (d: string) => {
      this.diagnostics = (this.diagnostics + d).slice(-4096);
    });
    void launched.exited.then((status) => {
      this.ended = status;
      for (const t of this.killTimers.splice(0)) clearTimeout(t);
    });
    if (this.closing) throw new SpecError("the environment was closed while it started");
    try {
      this.client = await AgentClient.connect(launched.stdin, launched.stdout, {
        helloTimeoutMs: HELLO_TIMEOUT_MS,
      });
    } catch (e) {
      if (!(e instanceof AgentLostError || e instanceof AgentProtocolError)) throw e;
      // the container ended (the runtime's log says why) or its agent did not answer
      if (this.ended === null) {
        this.kill();
        await launched.exited;
      }
      throw new SpecError(this.startFailure(this.ended ?? undefined, e.message));
    }
  }

  /** Why the container ended before its agent said hello: the runtime's errors, else the agent's. */
  private startFailure(status: number | undefined, lost: string): string {
    const errors = runtimeErrors(fileText(join(this.dir, "runtime.log")));
    if (errors.length > 0) return errors.join("; ");
    const said = this.diagnostics.trim();
    return `the environment's agent did not start (${lost}; the container's status ${status ?? "unknown"})${said ? `: ${said}` : ""}`;
  }

  /**
   * Starts `argv` (the runtime's run): through the mount namespace's helper with three FIFOs when
   * there is one, else as a child of this process with pipes.
   */
  private async launch(argv: readonly string[], fifos: boolean): Promise<Launched> {
    const ns = this.host.runtime.host.namespace;
    if (ns?.alive) {
      if (!fifos) await ns.makeFifos(this.dir, true);
      const s = await ns.start(this.id, argv, this.dir, true);
      const closed = (sock: Socket) =>
        new Promise<void>((res) => {
          if (sock.closed) res();
          else sock.once("close", () => res());
        });
      return {
        stdin: s.stdin!,
        stdout: s.stdout,
        stderr: s.stderr,
        exited: Promise.all([s.exited, closed(s.stdout), closed(s.stderr)]).then(([status]) => {
          // the runtime is gone: nobody reads the stdin FIFO any more
          s.stdin?.destroy();
          return status;
        }),
      };
    }
    const cmd = this.host.runtime.host.command(argv[0]!, argv.slice(1));
    const child = spawn("/bin/sh", ["-c", 'umask 022 && exec "$@"', "sh", cmd.file, ...cmd.args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.on("error", () => {
      // the container is gone; its exit says so
    });
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited: new Promise((res) => {
        child.once("error", () => res(undefined));
        child.once("close", (code, signal) => res(code ?? (signal ? 128 + signalNumber(signal) : undefined)));
      }),
    };
  }

  async prepareInvocation(requestId: string): Promise<{ hostInput: string; hostOutput: string }> {
    checkRequestId(requestId);
    if (!this.alive) throw new Error(`environment ${this.id} has ended`);
    const base = join(this.tmpView, requestId);
    const folders = { hostInput: join(base, "input"), hostOutput: join(base, "output") };
    // The folders were made ahead, out of the container's sight (no process of an earlier invocation
    // can have written into them): one rename puts them in place. Made ahead, their mkdirs, chmods
    // and chowns (8-25 ms on a loaded machine) are off the invocation's path.
    const spare = await (this.spare ?? this.makeSpare());
    this.spare = this.makeSpare();
    if (spare !== undefined) {
      try {
        await rename(spare, base);
        return folders;
      } catch {
        // something an earlier invocation left under that name: it goes first, then the same
      }
      await rm(base, { recursive: true, force: true });
      try {
        await rename(spare, base);
        return folders;
      } catch {
        void rm(spare, { recursive: true, force: true }).catch(() => undefined);
      }
    }
    // whatever an earlier invocation left under that name (its processes are gone: the agent kills
    // them all at the end of each invocation) goes first
    await rm(base, { recursive: true, force: true });
    await this.makeFolders(base);
    return folders;
  }

  /** An invocation's folder with its input and output, 0755, the image user's. */
  private async makeFolders(base: string): Promise<void> {
    await mkdir(base);
    const all = [base, join(base, "input"), join(base, "output")];
    await Promise.all(all.slice(1).map((p) => mkdir(p)));
    // 0755 whatever the engine's umask (077), owned by the image's user, as the executor hands a
    // run's workspace over (container-executor.ts)
    // (rootless: the engine's own files are root's in the namespace; it cannot give them away)
    const give = !this.host.rootless && (this.user.uid !== 0 || this.user.gid !== 0);
    await Promise.all(
      all.map(async (p) => {
        await chmod(p, 0o755);
        if (give) await chown(p, this.user.uid, this.user.gid);
      }),
    );
  }

  /** Spare invocation folders, aside; undefined when they cannot be made (then made in place). */
  private async makeSpare(): Promise<string | undefined> {
    if (!this.alive) return undefined;
    const base = join(this.asideView, `n${randomBytes(6).toString("hex")}`);
    try {
      await this.makeFolders(base);
      return base;
    } catch {
      await rm(base, { recursive: true, force: true }).catch(() => undefined);
      return undefined;
    }
  }

  async finishInvocation(requestId: string): Promise<void> {
    checkRequestId(requestId);
    const ns = this.host.runtime.host.namespace;
    // Moved aside at once (the name is free for nothing else: request ids are unique), deleted in
    // the background by the helper's `rm -rf`, which costs this process nothing (Node's recursive rm
    // runs on its main thread); close() waits for it.
    const trash = `t${randomBytes(6).toString("hex")}`;
    let moved = false;
    try {
      await rename(join(this.tmpView, requestId), join(this.asideView, trash));
      moved = true;
    } catch {
      // already gone, or the aside folder is: deleted in place below
    }
    const source = moved ? join(this.asideSource, trash) : join(this.tmpSource, requestId);
    const view = moved ? join(this.asideView, trash) : join(this.tmpView, requestId);
    const remove = async (): Promise<void> => {
      // An invocation's few files go in process, with a handful of unlinks on the thread pool; a
      // fork of the helper's `rm -rf` costs its shell several ms of CPU per invocation.
      // What was /tmp/<id> may be a link the invocation put there (to a host path, as this process
      // would resolve it): the link goes, never what it points to.
      // (removeSmallTree reads the folder through it; `rm -rf` and rm() remove a link itself)
      const st = await lstat(view).catch(() => undefined);
      if (st?.isDirectory() && (await removeSmallTree(Buffer.from(view)).catch(() => false))) return;
      if (ns?.alive && (this.disk === undefined || this.disk.helper === ns.pid)) {
        await ns.remove(`${this.id}-${trash}`, source).catch(() => undefined);
        if (!existsSync(view)) return;
      }
      await rm(view, { recursive: true, force: true });
    };
    if (!moved) return remove();
    const p = remove().catch(() => undefined);
    this.removing.add(p);
    void p.finally(() => this.removing.delete(p));
  }

  async invoke(inv: EnvironmentInvocation): Promise<EnvironmentInvocationResult> {
    if (this.busy) throw new Error(`environment ${this.id} runs one invocation at a time`);
    const limit = inv.outputLimitBytes ?? DEFAULT_OUTPUT_LIMIT;
    const out = { stdout: new CappedBuffer(limit), stderr: new CappedBuffer(limit) };
    // the process's start and end as the agent reported them (S, X), once there are
    let startedAt = Date.now();
    let endedAt: number | undefined;
    const result = (
      reason: RunReason,
      exitCode: number | null,
      reusable: boolean,
      message?: string,
    ): EnvironmentInvocationResult => {
      if (!reusable) this.broken = true;
      return {
        reason,
        exitCode,
        stdout: out.stdout.result(),
        stderr: out.stderr.result(),
        stdoutDropped: out.stdout.dropped,
        stderrDropped: out.stderr.dropped,
        ...(message ? { message } : {}),
        reusable,
        startedAt,
        endedAt: endedAt ?? Date.now(),
      };
    };
    if (!this.alive || !this.client)
      return result("error", null, false, `environment ${this.id} has ended${this.said()}`);
    if (this.broken)
      return result("error", null, false, `environment ${this.id} is not reusable after its last invocation`);
    let env: string[];
    try {
      env = processEnv(this.req.image.config, inv.env, this.user.home);
      if (inv.argv.length === 0) throw new SpecError("nothing to run: the invocation's argv is empty");
    } catch (e) {
      if (e instanceof SpecError) return result("start-error", null, true, e.message);
      throw e;
    }
    this.busy = true;
    const client = this.client;
    // The container's counter as the end of the last invocation left it (read then): nothing but the
    // idle agent runs in between, so it cannot have moved (an OOM kill of the agent itself ends the
    // environment): one read of a cgroup file on the engine's thread fewer per warm invocation. (The
    // kernel's counter, for when the container's is gone by the end, moves with every container's
    // kills: it is read before each invocation.)
    const oomBefore = this.oomSeen ?? this.oomKills();
    const oomGlobalBefore = oomKillCount();
    // The engine's guard: when the agent does not report the end by the time limit (or an abort) and
    // a few seconds more, the container goes, with everything in it.
    let guard: NodeJS.Timeout | undefined;
    let fireGuard: (() => void) | undefined;
    const guarded = new Promise<"guard">((res) => {
      fireGuard = () => res("guard");
    });
    const armGuard = (ms: number) => {
      clearTimeout(guard);
      guard = setTimeout(fireGuard!, ms);
    };
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      client.kill(inv.requestId);
      armGuard(GUARD_MS);
    };
    try {
      const exit = client
        .run({
          id: inv.requestId,
          argv: inv.argv,
          env,
          ...(inv.timeoutMs ? { timeoutMs: inv.timeoutMs } : {}),
          onStdout: (c: Buffer) => {
            out.stdout.push(c);
            inv.onStdout?.(c);
          },
          onStderr: (c: Buffer) => {
            out.stderr.push(c);
            inv.onStderr?.(c);
          },
        })
        .catch((e: unknown) => {
          if (e instanceof AgentLostError || e instanceof AgentProtocolError) return e;
          throw e;
        });
      if (inv.timeoutMs) armGuard(inv.timeoutMs + GUARD_MS);
      inv.signal?.addEventListener("abort", onAbort, { once: true });
      if (inv.signal?.aborted) onAbort();
      const x = await Promise.race([exit, guarded]);
      if (x === "guard") {
        this.kill();
        await this.launched!.exited;
        if (aborted) return result("error", 137, false, "aborted (the environment's agent did not answer)");
        return result(
          "timeout",
          137,
          false,
          `killed after the ${inv.timeoutMs} ms timeout (the environment's agent did not answer)`,
        );
      }
      if (x instanceof Error) {
        // closed meanwhile: close() ends the agent (and with it what ran) and the container
        if (this.closing)
          return result("error", null, false, "the environment was closed during the invocation");
        // no X: the agent (or its container) is gone, or it broke the protocol. Whatever it ran goes too.
        if (this.ended === null) {
          this.kill();
          await this.launched!.exited;
        }
        if (this.oomKilled(oomBefore, oomGlobalBefore)) return result("oom", 137, false, OOM_MESSAGE);
        return result("error", null, false, `the environment's agent was lost: ${x.message}${this.said()}`);
      }
      startedAt = x.startedAt;
      endedAt = x.endedAt;
      // The rule a run's reason follows too (runner.ts): an OOM kill fails the invocation unless its
      // script exited 0; then it is ok and says so. Either way the environment is replaced: the kill
      // may have hit what the next invocation relies on (a server it left, a cache in /tmp).
      const oomKilled = this.oomKilled(oomBefore, oomGlobalBefore);
      const exitedZero = x.kind === "exited" && x.code === 0;
      if (oomKilled && !exitedZero) return result("oom", exitCodeOf(x), false, OOM_MESSAGE);
      if (this.disk && (await this.host.disks!.full(this.disk).catch(() => false)))
        return result(
          "disk",
          exitCodeOf(x),
          false,
          `wrote more than its disk limit of ${this.disk.limitBytes >> 20} MiB (root file system and /tmp together)`,
        );
      switch (x.kind) {
        case "exited":
          if (oomKilled) return { ...result("ok", 0, false), oomKilled: true };
          return x.code === 0 ? result("ok", 0, true) : result("error", x.code, true);
        case "signaled":
          return result("error", 128 + x.code, true, `killed by signal ${x.code}`);
        case "timeout":
          return result("timeout", 137, false, `killed after the ${inv.timeoutMs} ms timeout`);
        case "killed":
          return result("error", 137, true, aborted ? "aborted" : "killed");
        default:
          // exec-error: nothing ran, the environment is as it was
          return result("start-error", null, true, x.message || `cannot start ${inv.argv[0]}`);
      }
    } finally {
      clearTimeout(guard);
      inv.signal?.removeEventListener("abort", onAbort);
      this.busy = false;
    }
  }

  /**
   * Whether an OOM kill happened in this container since the counts given: its own memory cgroup's
   * counter; when that is gone (the container ended: the runtime deleted it), as for a run, the
   * kernel-wide counter and the kernel log's record of a kill in this container's cgroup.
   */
  private oomKilled(before: number, globalBefore: number): boolean {
    // rootless without a delegated cgroup: no memory limit of its own to be killed at
    if (this.host.rootless && this.host.facts.cgroupRoot === undefined) return false;
    const now = this.oomKills();
    this.oomSeen = now >= 0 ? now : undefined;
    if (now >= 0 && before >= 0) return now > before;
    if (globalBefore < 0 || oomKillCount() <= globalBefore) return false;
    return oomKillLogged(this.host.containerCgroup(this.id)) ?? true;
  }

  /** The container's memory cgroup's OOM-kill count; -1 when it cannot be read. */
  private oomKills(): number {
    return oomKillsOf(this.host.cgroupMode, this.host.containerCgroup(this.id));
  }

  /** ": " and the agent's last diagnostics, if it said something */
  private said(): string {
    const d = this.diagnostics.trim();
    return d ? ` (${d})` : "";
  }

  /** SIGKILL to the container's init (the agent: the pid namespace ends with it) and to every process of it. */
  private kill(): void {
    if (this.ended !== null || !this.launched) return;
    try {
      const pid = Number(readFileSync(join(this.dir, "pid"), "utf8").trim());
      if (pid > 1) process.kill(pid, "SIGKILL");
    } catch {
      // not started, or gone
    }
    void this.host.runtime.kill(this.id, "KILL", true);
    // keep at it until the runtime is gone (the container may still have been starting)
    this.killTimers.push(setTimeout(() => this.kill(), 500));
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.broken = true;
    // a start in progress ends first (EOF makes an agent that is starting up exit at once)
    if (this.launched && this.ended === null && !this.client) this.launched.stdin.end();
    await this.starting?.catch(() => undefined);
    const launched = this.launched;
    if (launched && this.ended === null) {
      // EOF: the agent kills every process of the container and exits, and the container ends
      if (this.client) void this.client.close();
      else launched.stdin.end();
      const grace = setTimeout(() => this.kill(), CLOSE_GRACE_MS);
      await launched.exited;
      clearTimeout(grace);
    }
    for (const t of this.killTimers.splice(0)) clearTimeout(t);
    await this.spare?.catch(() => undefined);
    await Promise.all(this.removing);
    // A helper started since (the one that mounted the overlay was killed) has no such mount: the old
    // namespace, with the overlay and the disk in it, went when its last process, the runtime, ended.
    const ns = this.host.runtime.host.namespace;
    const { mounted, mountedBy } = this.bundle.state;
    const stillMounted = ns?.alive && ns.pid === mountedBy ? mounted : undefined;
    try {
      await this.host.release(this.id, this.dir, stillMounted, this.disk, this.bundle.unlease);
    } finally {
      this.host.forget(this.id);
    }
  }
}

/** The exit code of an X: its status, 128 + its signal, 137 for the agent's kills. */
function exitCodeOf(x: AgentExit): number | null {
  switch (x.kind) {
    case "exited":
      return x.code;
    case "signaled":
      return 128 + x.code;
    case "timeout":
    case "killed":
      return 137;
    default:
      return null;
  }
}

/** The most entries removeSmallTree deletes itself (an invocation's folders hold a few). */
const SMALL_TREE_ENTRIES = 64;

/**
 * Deletes `dir` and what is in it when that is a few entries at most three folders deep; false (with
 * part of it maybe deleted) when it is more, for a `rm -rf` to finish. Nothing runs in the folder any
 * more: it was moved aside after its invocation's processes were killed.
 */
async function removeSmallTree(
  dir: Buffer,
  budget = { left: SMALL_TREE_ENTRIES },
  depth = 0,
): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true, encoding: "buffer" });
  budget.left -= entries.length;
  if (budget.left < 0) return false;
  const done = await Promise.all(
    entries.map((e) => {
      const p = Buffer.concat([dir, Buffer.from("/"), e.name]);
      if (!e.isDirectory()) return unlink(p).then(() => true);
      return depth < 2 ? removeSmallTree(p, budget, depth + 1) : false;
    }),
  );
  if (done.includes(false)) return false;
  await rmdir(dir);
  return true;
}

/** A request id names a folder of /tmp: one path component. */
function checkRequestId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id) || id.length > 200)
    throw new Error(`invalid request id ${JSON.stringify(id)}: letters, digits, '.', '_' and '-' only`);
}

function fileText(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}
