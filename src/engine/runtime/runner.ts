/**
 * The run lifecycle: one isolated container per RunRequest.
 *
 *   prepare (run folder, config.json, upper/work folders, the overlay mounted by the helper of the
 *   engine's private mount namespace, see mountns.ts)
 *   -> `crun|runc run` in the foreground, in that namespace; stdout/stderr streamed and captured with a cap
 *   -> timeout: SIGTERM to every process, grace, SIGKILL of the whole container
 *   -> exit code + reason (ok | error | timeout | oom | start-error)
 *   -> cleanup: the overlay's umount (by the helper), runtime state and cgroup (if the runtime left
 *      them), run folder
 *
 * A Runner owns a state folder (runs/, the runtime's --root, a lock) and sweeps what a crashed
 * engine left there when it starts.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { chmod, chown, readdir, rename, rm, stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { release } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { type ContainerRuntime, type RuntimeName, runtimeErrors, stopSignal } from "./adapters.js";
import { type BundleHost, type BundleState, prepareBundle } from "./bundle.js";
import {
  CgroupPlacementError,
  makeRunnerParent,
  oomKillsIn,
  placeEngine,
  staleRunnerParents,
  type V2Placement,
} from "./cgroup2.js";
import {
  type CgroupMode,
  cgroupMode,
  cgroupParent,
  hierarchyDirs,
  oomKillCount,
  oomKillLogged,
  removeCgroup,
  removeParent,
  swapAccounting,
} from "./cgroups.js";
import { findBinary, nofileHardLimit, openRuntime, staticBusybox } from "./detect.js";
import { type Disk, DiskPool } from "./disk.js";
import {
  type EnvironmentHost,
  environmentId,
  type PreparedBundle,
  prepareEnvironmentBundle,
  startEnvironment,
} from "./environment.js";
import { signalNumber } from "./exec.js";
import { MountError, type Started, shellQuote } from "./mountns.js";
import { CappedBuffer } from "./output.js";
import {
  chooseRootlessOverlay,
  devFuseUsable,
  hostNetworkFiles,
  type OverlaySupport,
  probeFuseOverlay,
  probeOverlay,
} from "./rootfs.js";
import {
  chownCommands,
  containerSpec,
  containerUser,
  mappingKey,
  type RootlessLimits,
  type RootlessMode,
  rootlessMode,
  userxattrKernel,
} from "./rootless.js";
import { type HostFacts, SpecError } from "./spec.js";
import { type SweepReport, sweep } from "./sweep.js";
import type {
  BindMount,
  Environment,
  EnvironmentRequest,
  RunReason,
  RunRequest,
  RunResult,
} from "./types.js";
import { UserError } from "./user.js";

export interface RunnerOptions {
  /** folder owned by this runner: run folders, runtime state, lock. Use a local disk (ext4/xfs), not overlay/tmpfs */
  stateDir: string;
  /** "auto" (default): crun if it works here, else runc */
  runtime?: RuntimeName | "auto";
  /** "auto" (default): overlay if this kernel/file system can, else the copy fallback; "copy" forces the fallback */
  rootfs?: "auto" | "copy" | "fuse-overlayfs";
  /** sweep leftovers of an earlier (crashed) runner with the same stateDir when opening; default true */
  sweep?: boolean;
  /** use a static busybox for the mount helper's `sh`, `mount` and `umount` when the host has one; default true */
  busybox?: boolean;
  /** make a disk of this many bytes in the background at start (the usual RunRequest.diskBytes), see disk.ts */
  prewarmDiskBytes?: number;
  /**
   * keep one environment bundle prepared ahead per image and disk size (startEnvironment's spares:
   * a mounted overlay on its disk, folders and FIFOs), so that an environment's start is config.json
   * and the runtime's start; default false
   */
  spareBundles?: boolean;
  /**
   * Keeps the image store from deleting these layer folders (ImageStore.leaseLayerDirs): taken for
   * every bundle mounted over an image's layers (a run, a warm environment, a spare bundle) before
   * its mount, and released once the mount is gone, so that `scar image rm|prune` leave the layers
   * of a live container alone whoever started it
   */
  leaseLayers?: (layers: readonly string[]) => () => void;
}

export interface RuntimeInfo {
  runtime: RuntimeName;
  binary: string;
  version: string;
  cgroupMode: CgroupMode;
  workaround: "none" | "private-mount-namespace";
  rootfs: "overlay" | "copy";
  overlay: OverlaySupport;
  /** runtimes tried before and why they were skipped */
  skipped: string[];
  /** the static busybox used by the mount helper's `sh`, `mount` and `umount` (faster), if any */
  busybox?: string;
  /** how RunRequest.diskBytes is enforced: "loop ext4", or why it is not ("unavailable: ...") */
  disk: string;
  /**
   * set when the engine runs as an ordinary user (rootless.ts): its id mapping; then no cgroup limit
   * (RunRequest.limits) and no disk limit holds, only the time limit
   */
  rootless?: RootlessMode;
  /**
   * rootless: the cgroup delegated to the engine's user and the limits it holds (cgroup v2 with a
   * systemd user session), or why there is none
   */
  rootlessLimits?: RootlessLimits;
}

const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;
const DEFAULT_GRACE_MS = 2000;

export class Runner {
  private readonly active = new Map<string, () => void>();
  /** runs whose overlay is being unmounted in the background, before their folder goes */
  private readonly finishing = new Map<string, Promise<void>>();
  /** warm environments (environment.ts) started and not yet closed */
  private readonly environments = new Map<string, Environment>();
  /**
   * environment bundles prepared ahead (spareBundles), by image layers and disk size, at most one
   * each and MAX_SPARES in all (the oldest is released first); a spare is taken by the next
   * environment of that key, and another one prepared after it started
   */
  private readonly spares = new Map<string, Spare>();
  /** RunnerOptions.spareBundles */
  private spareBundles = false;
  /** RunnerOptions.leaseLayers */
  private leaseLayers: ((layers: readonly string[]) => () => void) | undefined;
  private closed = false;
  private trashing: Promise<void> | undefined;
  private trashAgain = false;

  private constructor(
    readonly runtime: ContainerRuntime,
    readonly info: RuntimeInfo,
    readonly stateDir: string,
    /** cgroup (absolute path in every hierarchy) under which this runner's containers live */
    readonly cgroupParent: string,
    private readonly facts: Omit<HostFacts, "cgroupsPath">,
    /** the runs' disks (disk limits), when this host can make them */
    private readonly disks?: DiskPool,
    /** on cgroup v2: the engine's delegated subtree (cgroup2.ts) and its runner's parents left by gone engines */
    readonly cgroupV2?: { placement: V2Placement; staleParents: string[] },
  ) {}

  /** Detects the runtime, applies the hybrid-cgroup workaround once, probes overlayfs, sweeps leftovers. */
  static async open(opts: RunnerOptions): Promise<Runner> {
    const stateDir = resolve(opts.stateDir);
    mkdirSync(join(stateDir, "runs"), { recursive: true });
    mkdirSync(join(stateDir, "trash"), { recursive: true });
    takeLock(stateDir);
    let opened: Awaited<ReturnType<typeof openRuntime>>;
    let placement: V2Placement | undefined;
    const bb = (opts.busybox ?? true) ? await staticBusybox() : undefined;
    const rootless = rootlessMode();
    const fuseOverlayfs = rootless && opts.rootfs !== "copy" ? findBinary("fuse-overlayfs") : undefined;
    let rootlessLimits: RootlessLimits | undefined;
    try {
      // on cgroup v2, out of the cgroup systemd manages into a delegated one, before the mount
      // helper starts (it and the runtimes it starts live in the engine's leaf); rootless, a user
      // without one (no systemd user session) runs without limits
      if (cgroupMode() === "v2") {
        try {
          placement = await placeEngine();
        } catch (e) {
          if (!rootless || !(e instanceof CgroupPlacementError)) throw e;
          rootlessLimits = {
            held: [],
            why: e.install ? `${e.message}; to get them: ${e.install}` : e.message,
          };
        }
      }
      if (rootless && placement)
        rootlessLimits = {
          held: placement.controllers,
          cgroup: placement.delegated,
          ...(placement.missing.length ? { why: "not delegated to this user" } : {}),
        };
      opened = await openRuntime({
        stateDir,
        prefer: opts.runtime ?? "auto",
        // the namespace's helper mounts the runs' overlays
        namespace: opts.rootfs !== "copy",
        ...(bb ? { busybox: bb } : {}),
        ...(rootless ? { rootless } : {}),
        ...(placement ? { cgroupRoot: placement.delegated } : {}),
        ...(rootless && fuseOverlayfs ? { fuseOverlayfs } : {}),
      });
    } catch (e) {
      releaseLock(stateDir);
      throw e;
    }
    const { runtime } = opened;
    try {
      mkdirSync(runtime.stateDir, { recursive: true });
      const scratch = () => join(stateDir, "runs", `probe-${randomBytes(4).toString("hex")}`);
      // rootless: the kernel's overlay in the user namespace, else fuse-overlayfs, else a copy
      const overlay: OverlaySupport =
        opts.rootfs === "copy"
          ? { overlay: false, volatile: false, error: "disabled" }
          : rootless
            ? await chooseRootlessOverlay(
                {
                  kernel: userxattrKernel(release()) || `kernel ${release()} < 5.11`,
                  ...(fuseOverlayfs ? { fuseOverlayfs } : {}),
                  devFuse: devFuseUsable(),
                  forceFuse: opts.rootfs === "fuse-overlayfs",
                },
                () => probeOverlay(runtime.host, scratch(), true),
                (fuse) => probeFuseOverlay(runtime.host, scratch(), fuse),
              )
            : await probeOverlay(runtime.host, scratch(), false);
      const tag = createHash("sha256").update(stateDir).digest("hex").slice(0, 10);
      // Disk limits need the namespace's helper (it mounts the disks) and mkfs.ext4.
      const mkfs = findBinary("mkfs.ext4");
      const mount = findBinary("mount");
      const ns = runtime.host.namespace;
      const disks =
        ns && mkfs && mount && overlay.overlay && !rootless
          ? new DiskPool(ns, join(stateDir, "disks"), mkfs, mount)
          : undefined;
      if (disks) {
        mkdirSync(disks.dir, { recursive: true });
        // a crashed engine's disks went with its namespace; their image files stay until now
        if (opts.sweep ?? true) await disks.clear();
        if (opts.prewarmDiskBytes) disks.prewarm(opts.prewarmDiskBytes);
      }
      const info: RuntimeInfo = {
        runtime: runtime.name,
        binary: runtime.binary,
        version: runtime.version,
        cgroupMode: opened.cgroupMode,
        workaround: opened.workaround,
        rootfs: overlay.overlay ? "overlay" : "copy",
        overlay,
        skipped: opened.skipped,
        ...(bb ? { busybox: bb } : {}),
        disk: disks
          ? "loop ext4"
          : `unavailable: ${rootless ? "rootless (loop disks need root)" : !mkfs ? "no mkfs.ext4 (e2fsprogs)" : !mount ? "no mount (util-linux)" : !ns ? "no private mount namespace" : "no overlayfs (runs use a copy)"}`,
        ...(rootless ? { rootless } : {}),
        ...(rootlessLimits ? { rootlessLimits } : {}),
      };
      const runner = new Runner(
        runtime,
        info,
        stateDir,
        placement ? makeRunnerParent(placement, tag) : cgroupParent(opened.cgroupMode, tag),
        {
          nofileHard: nofileHardLimit(),
          swapAccounting: swapAccounting(opened.cgroupMode),
          ...(placement ? { cgroupRoot: placement.delegated } : {}),
        },
        disks,
        placement ? { placement, staleParents: staleRunnerParents(placement, tag) } : undefined,
      );
      runner.spareBundles = opts.spareBundles ?? false;
      runner.leaseLayers = opts.leaseLayers;
      if (disks && runner.spareBundles) disks.keepSpare = true;
      if (opts.sweep ?? true) await runner.sweep();
      return runner;
    } catch (e) {
      runtime.host.namespace?.close();
      releaseLock(stateDir);
      throw e;
    }
  }

  /**
   * Rootless with subordinate id ranges and an overlay root: the key (rootless.ts mappingKey) under
   * which layers unpacked by this user get their tar's owners (giveLayerOwners); undefined when they
   * cannot (a single mapping: every file stays the user's, root's in the container; the copy
   * fallback copies from outside the namespace).
   */
  get ownersKey(): string | undefined {
    const mode = this.info.rootless;
    if (mode?.mapping !== "ranges" || this.info.rootfs !== "overlay" || !this.runtime.host.namespace)
      return undefined;
    return mappingKey(mode);
  }

  /**
   * Gives the entries of an unpacked layer `dir` (all this user's) the owners its tar gave, by
   * `chown -h` as root of the helper's user namespace, where they are mapped ids (see ownersKey).
   * Owners the maps do not hold stay root's; their count is returned.
   */
  async giveLayerOwners(
    dir: string,
    owners: readonly (readonly [string, number, number])[],
  ): Promise<{ unmapped: number }> {
    const ns = this.runtime.host.namespace;
    const mode = this.info.rootless;
    if (!ns || !mode || this.ownersKey === undefined)
      throw new Error("layer owners are given only by a rootless runner with subordinate id ranges");
    await ns.ensure();
    const { commands, unmapped } = chownCommands(dir, owners, mode, `${ns.applet}chown`, shellQuote);
    const id = `owners-${randomBytes(6).toString("hex")}`;
    const errorFile = join(this.stateDir, `${id}.err`);
    try {
      for (const c of commands) await ns.shell(id, c, errorFile, `chown in ${dir}`);
    } finally {
      rmSync(errorFile, { force: true });
    }
    return { unmapped };
  }

  get runsDir(): string {
    return join(this.stateDir, "runs");
  }

  /** finished runs' folders waiting for deletion */
  get trashDir(): string {
    return join(this.stateDir, "trash");
  }

  /** Removes leftovers of runs that are not in progress in this runner. */
  sweep(): Promise<SweepReport> {
    return sweep({
      runtime: this.runtime,
      runsDir: this.runsDir,
      trashDir: this.trashDir,
      cgroupParent: this.cgroupParent,
      staleCgroupParents: this.cgroupV2?.staleParents ?? [],
      active: new Set([
        ...this.active.keys(),
        ...this.finishing.keys(),
        ...this.environments.keys(),
        ...[...this.spares.values()].map((s) => s.bundle.id),
      ]),
    });
  }

  /** Kills runs in progress, waits for their cleanup, and ends the private mount namespace. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.environments.values()].map((e) => e.close()));
    await Promise.all([...this.spares.keys()].map((k) => this.dropSpare(k)));
    const pending = [...this.active.values()];
    for (const kill of pending) kill();
    while (this.active.size > 0) await new Promise((r) => setTimeout(r, 10));
    await this.drain();
    removeParent(this.cgroupParent);
    this.runtime.host.namespace?.close();
    await this.disks?.clear();
    releaseLock(this.stateDir);
  }

  /**
   * Starts a warm execution environment: a container of the image with the agent as its process,
   * which runs invocations one at a time (environment.ts). Rejects with EnvironmentStartError when
   * it cannot start; close() (or this runner's close()) ends it.
   */
  async startEnvironment(req: EnvironmentRequest): Promise<Environment> {
    if (this.closed) throw new Error("runner is closed");
    const host = this.environmentHost();
    if (!this.spareBundles) return startEnvironment(host, req);
    const key = spareKey(req);
    const env = await startEnvironment(host, req, await this.takeSpare(key));
    // the next one of this image, off this start's path: a moment after it (its first invocation
    // runs meanwhile)
    this.scheduleSpare(key, req);
    return env;
  }

  /**
   * Prepares a bundle for the first environment of this image and disk size now, if none is
   * prepared or being prepared (spareBundles; else nothing): what the engine does when a function is
   * deployed, so that its first invocation's start is config.json and the runtime's start, without
   * the disk and the overlay on its way (no environment is started: that costs the function's memory
   * for as long as it idles, see the engine's `warmPrewarm`).
   */
  prepareEnvironmentAhead(req: Pick<EnvironmentRequest, "image" | "diskBytes">): void {
    if (this.closed || !this.spareBundles) return;
    this.scheduleSpare(spareKey(req), req, 0);
  }

  /** ids of the warm environments started and not yet closed */
  environmentIds(): string[] {
    return [...this.environments.keys()];
  }

  /**
   * The disks mounted on purpose (paths in the mount helper's namespace): `pooled`, emptied and
   * waiting in the pool for their next run or environment (as many as were in use at once, at most);
   * `held` by warm environments and by bundles prepared ahead. A disk mount that is neither (with no
   * run under way) is a leak.
   */
  disksInUse(): { pooled: string[]; held: string[] } {
    const held = [
      ...[...this.environments.values()].map((e) => e.diskPath),
      ...[...this.spares.values()].map((s) => s.bundle.disk?.path),
    ].filter((p): p is string => p !== undefined);
    return { pooled: this.disks?.freePaths() ?? [], held };
  }

  /** ids of the environment bundles prepared ahead (spareBundles), ready or being prepared */
  spareBundleIds(): string[] {
    return [...this.spares.values()].map((s) => s.bundle.id);
  }

  /**
   * The spare of `key` for an environment to take over (it leaves the pool), if there is one: one
   * still waiting for its turn is prepared now, one being prepared is waited for (both sooner done
   * than a bundle begun now).
   */
  private async takeSpare(key: string): Promise<PreparedBundle | undefined> {
    const s = this.spares.get(key);
    if (!s) return undefined;
    this.spares.delete(key);
    s.hurry();
    await s.done;
    if (!s.bundle.ready) return undefined;
    const ns = this.runtime.host.namespace;
    const helper = ns?.alive ? ns.pid : undefined;
    // made in a namespace that is gone (its helper was killed): its mounts went with it
    const stale =
      (s.bundle.disk !== undefined && s.bundle.disk.helper !== helper) ||
      (s.bundle.state.mountedBy !== undefined && s.bundle.state.mountedBy !== helper);
    if (!stale) return s.bundle;
    void this.releaseSpare(s.bundle);
    return undefined;
  }

  private scheduleSpare(
    key: string,
    req: Pick<EnvironmentRequest, "image" | "diskBytes">,
    delayMs = SPARE_DELAY_MS,
  ): void {
    if (this.closed || this.spares.has(key)) return;
    const id = environmentId();
    const bundle: PreparedBundle = {
      id,
      dir: join(this.runsDir, id),
      state: { kind: this.info.rootfs, fifos: false },
      ready: false,
    };
    let hurry = () => {};
    const turn = new Promise<void>((r) => {
      // (not unref'd: drain() waits for it)
      const t = setTimeout(r, delayMs);
      hurry = () => {
        clearTimeout(t);
        r();
      };
    });
    const spare: Spare = { bundle, layers: req.image.layers, done: Promise.resolve(), hurry: () => hurry() };
    spare.done = (async () => {
      await turn;
      // (taken meanwhile: prepared for its taker, which waits)
      if (this.closed || spare.cancelled) return;
      try {
        await prepareEnvironmentBundle(this.environmentHost(), bundle, req.image.layers, req.diskBytes);
      } catch {
        // the next environment prepares its own and says what fails
        if (this.spares.get(key) === spare) this.spares.delete(key);
        bundle.ready = false;
        await this.releaseSpare(bundle);
      }
    })();
    this.spares.set(key, spare);
    for (const k of [...this.spares.keys()].slice(0, Math.max(0, this.spares.size - MAX_SPARES)))
      void this.dropSpare(k);
  }

  /**
   * Releases the spares prepared for an image (its layer folders, as EnvironmentRequest.image has
   * them): its last function was removed or moved to another image, and a spare's mount would keep
   * the layers from `scar image rm|prune` until the engine stops.
   */
  async dropSpareBundles(layers: readonly string[]): Promise<void> {
    const of = JSON.stringify(layers);
    await Promise.all(
      [...this.spares].filter(([, s]) => JSON.stringify(s.layers) === of).map(([k]) => this.dropSpare(k)),
    );
  }

  /** Releases the spare of `key` (when it is prepared). */
  private async dropSpare(key: string): Promise<void> {
    const s = this.spares.get(key);
    if (!s) return;
    this.spares.delete(key);
    s.cancelled = true;
    s.hurry();
    await s.done;
    if (s.bundle.ready) await this.releaseSpare(s.bundle);
  }

  /** Unmounts a prepared bundle's overlay (if its helper still holds it), deletes it, puts its disk back. */
  private async releaseSpare(b: PreparedBundle): Promise<void> {
    const ns = this.runtime.host.namespace;
    const { mounted, mountedBy } = b.state;
    const stillMounted = ns?.alive && ns.pid === mountedBy ? mounted : undefined;
    await this.cleanup(b.id, b.dir, stillMounted, b.disk, b.unlease).catch(() => undefined);
    await this.finishing.get(b.id);
  }

  private environmentHost(): EnvironmentHost {
    return {
      runtime: this.runtime,
      runsDir: this.runsDir,
      cgroupParent: this.cgroupParent,
      containerCgroup: (id) => this.containerCgroup(id),
      cgroupMode: this.info.cgroupMode,
      facts: this.facts,
      rootfs: this.info.rootfs,
      overlayVolatile: this.info.overlay.volatile,
      overlayUserxattr: this.info.overlay.userxattr ?? false,
      overlayFuse: this.info.overlay.fuse !== undefined,
      ...(this.info.rootless ? { rootless: this.info.rootless } : {}),
      ...(this.disks ? { disks: this.disks } : {}),
      track: (env) => this.environments.set(env.id, env),
      forget: (id) => this.environments.delete(id),
      ...(this.leaseLayers ? { leaseLayers: this.leaseLayers } : {}),
      release: async (id, dir, mounted, disk, unlease) => {
        await this.cleanup(id, dir, mounted, disk, unlease);
        await this.finishing.get(id);
      },
    };
  }

  private get bundleHost(): BundleHost {
    return {
      namespace: this.runtime.host.namespace,
      rootfs: this.info.rootfs,
      overlayVolatile: this.info.overlay.volatile,
      overlayUserxattr: this.info.overlay.userxattr ?? false,
      overlayFuse: this.info.overlay.fuse !== undefined,
    };
  }

  async run(req: RunRequest): Promise<RunResult> {
    if (this.closed) throw new Error("runner is closed");
    const id = `r${Date.now().toString(36)}${randomBytes(5).toString("hex")}`;
    const dir = join(this.runsDir, id);
    const t0 = performance.now();
    const limit = req.outputLimitBytes ?? DEFAULT_OUTPUT_LIMIT;
    const out = { stdout: new CappedBuffer(limit), stderr: new CappedBuffer(limit) };
    let rootfsKind: "overlay" | "copy" = this.info.rootfs;
    const timings = { prepareMs: 0, runMs: 0, cleanupMs: 0 };
    const result = (reason: RunReason, exitCode: number | null, message?: string): RunResult => ({
      id,
      reason,
      exitCode,
      stdout: out.stdout.result(),
      stderr: out.stderr.result(),
      stdoutDropped: out.stdout.dropped,
      stderrDropped: out.stderr.dropped,
      ...(message ? { message } : {}),
      rootfs: rootfsKind,
      timings,
    });

    await this.runtime.host.namespace?.ensure();
    const ctl: RunControl = {};
    /** the overlay mount point, once a mount was asked for */
    let mounted: string | undefined;
    /** the run's disk (RunRequest.diskBytes) */
    let disk: Disk | undefined;
    /** the image store's lease on the layers, released once the overlay over them is gone */
    const unlease = this.leaseLayers?.(req.image.layers);
    this.active.set(id, () => {
      if (ctl.kill) ctl.kill("close");
      else ctl.pending = "close";
    });
    try {
      // ---- prepare: spec first (user errors end here, before anything is created)
      const rootfs = join(dir, "rootfs");
      const pidFile = join(dir, "pid");
      const logFile = join(dir, "runtime.log");
      let spec: Record<string, unknown>;
      try {
        for (const l of req.image.layers) {
          if (!isAbsolute(l) || !existsSync(l)) throw new SpecError(`image layer folder missing: ${l}`);
        }
        for (const m of req.mounts ?? []) {
          if (!existsSync(m.source)) throw new SpecError(`mount source missing: ${m.source}`);
        }
        const rootless = this.info.rootless;
        const user = containerUser(req.user ?? req.image.config.User, req.image.layers, rootless);
        const { image: _image, ...rest } = req;
        // The run's disk holds the overlay's upper and work folders and the onDisk mounts' folders:
        // what the run writes there counts against its limit (disk.ts).
        if (req.diskBytes !== undefined && this.disks && rootfsKind === "overlay") {
          try {
            disk = await this.disks.acquire(req.diskBytes);
            rest.mounts = await this.diskMounts(disk, req.mounts ?? []);
          } catch (e) {
            if (!(e instanceof MountError)) throw e;
            throw new SpecError(`cannot make the run's ${req.diskBytes >> 20} MiB disk: ${e.message}`);
          }
        }
        if (req.network === "host")
          rest.mounts = [...hostNetworkFiles(req.mounts ?? []), ...(rest.mounts ?? [])];
        spec = containerSpec(
          {
            rootfs,
            config: req.image.config,
            request: rest,
            user,
            host: { ...this.facts, cgroupsPath: this.containerCgroup(id) },
          },
          rootless,
        );
      } catch (e) {
        if (e instanceof SpecError || e instanceof UserError) {
          timings.prepareMs = performance.now() - t0;
          return result("start-error", null, e.message);
        }
        throw e;
      }
      const bundle: BundleState = { kind: rootfsKind, fifos: false };
      try {
        await prepareBundle(this.bundleHost, bundle, { dir, layers: req.image.layers, disk, config: spec });
      } finally {
        rootfsKind = bundle.kind;
        mounted = bundle.mounted;
      }
      const argv = this.runtime.runArgv({ bundle: dir, id, pidFile, logFile });
      /** the helper made the FIFOs with the overlay */
      const fifos = bundle.fifos;
      timings.prepareMs = performance.now() - t0;

      // ---- run
      const t1 = performance.now();
      const oomBefore = oomKillCount();
      const run = await this.execute(id, pidFile, argv, req, out, ctl, fifos);
      timings.runMs = performance.now() - t1;

      // ---- reason
      const { code, signal, killedFor } = run;
      const started = existsSync(pidFile);
      const errors = runtimeErrors(fileText(logFile));
      const exitCode = code ?? (signal ? 128 + signalNumber(signal) : null);
      if (disk && started && !(killedFor === "abort" || killedFor === "close")) {
        // A full disk is why the run failed (or why its files are cut short, if the script went on):
        // its onDisk folders are not copied out.
        if (await this.disks!.full(disk).catch(() => false))
          return result(
            "disk",
            exitCode,
            `wrote more than its disk limit of ${disk.limitBytes >> 20} MiB (root file system and output folder together)`,
          );
        const copyError = await this.copyOut(id, disk, req.mounts ?? []);
        if (copyError) return result("error", exitCode, copyError);
      }
      if (killedFor === "timeout")
        return result("timeout", exitCode, `killed after the ${req.timeoutMs} ms timeout`);
      if (killedFor) return result("error", exitCode, killedFor === "abort" ? "aborted" : "runner closed");
      if (!started && exitCode !== 0) {
        return result(
          "start-error",
          null,
          errors.join("; ") || `${this.runtime.name} exited with ${exitCode}`,
        );
      }
      // One rule for runs and warm invocations (environment.ts; README, Reasons): an OOM kill in the
      // container fails the run unless its script exited 0 (a child was killed and the script
      // coped); then the run is ok and says so. (Rootless without a delegated cgroup: no memory limit, so no OOM kill
      // of this container's own.)
      if ((!this.info.rootless || this.cgroupV2) && this.oomKilled(id, oomBefore, exitCode)) {
        if (exitCode !== 0)
          return result("oom", exitCode, "killed by the kernel's OOM killer (memory limit reached)");
        return { ...result("ok", 0), oomKilled: true };
      }
      if (exitCode === 0) return result("ok", 0);
      return result("error", exitCode, errors.length > 0 ? errors.join("; ") : undefined);
    } finally {
      const t2 = performance.now();
      await this.cleanup(id, dir, mounted, disk, unlease);
      timings.cleanupMs = performance.now() - t2;
      this.active.delete(id);
    }
  }

  /**
   * The container's cgroup: `<parent>/<run id>`, or on cgroup v2 `<parent>/<run id>/ctr`, whose
   * parent (the engine's) keeps the run's memory.events after the runtime removed the container's.
   */
  private containerCgroup(id: string): string {
    return this.cgroupV2 ? `${this.cgroupParent}/${id}/ctr` : `${this.cgroupParent}/${id}`;
  }

  /**
   * Whether the kernel's OOM killer killed a process of run `id`. Cheap when none did: one cgroup
   * file (v2) or /proc/vmstat (v1); the kernel log is read only when the kernel counted a kill.
   */
  private oomKilled(id: string, oomBefore: number, exitCode: number | null): boolean {
    // cgroup v2: the run's own count (memory.events, the container's included)
    const kills = this.cgroupV2 ? oomKillsIn(`${this.cgroupParent}/${id}`) : undefined;
    if (kills !== undefined) return kills > 0;
    // v1 keeps the count only in the container's cgroup, which the runtime removed: an OOM kill
    // happened somewhere during the run, and the kernel log says whether it was in this container's
    // cgroup (without access to it, the global counter has to do)
    if (oomBefore >= 0 && oomKillCount() <= oomBefore) return false;
    // (no global counter, a kernel before 4.13: the whole log for each failed run only)
    if (oomBefore < 0 && exitCode === 0) return false;
    return oomKillLogged(this.containerCgroup(id)) ?? oomBefore >= 0;
  }

  /** Starts `argv` (the runtime, maybe wrapped), streams its output, enforces timeout and abort. */
  private async execute(
    id: string,
    pidFile: string,
    argv: readonly string[],
    req: RunRequest,
    out: { stdout: CappedBuffer; stderr: CappedBuffer },
    ctl: RunControl,
    fifos: boolean,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; killedFor?: KillReason }> {
    const launched = await this.launch(id, argv, dirname(pidFile), fifos);
    launched.stdout.on("data", (c: Buffer) => {
      out.stdout.push(c);
      req.onStdout?.(c);
    });
    launched.stderr.on("data", (c: Buffer) => {
      out.stderr.push(c);
      req.onStderr?.(c);
    });
    let killedFor: KillReason | undefined;
    const timers: NodeJS.Timeout[] = [];
    const killInit = () => {
      try {
        const pid = Number(readFileSync(pidFile, "utf8").trim());
        if (pid > 1) process.kill(pid, "SIGKILL");
      } catch {
        // not started yet, or gone
      }
    };
    const hardKill = () => {
      killInit();
      void this.runtime.kill(id, "KILL", true);
      // keep at it until the runtime process is gone (the container may still have been starting)
      timers.push(setTimeout(hardKill, 500));
    };
    ctl.kill = (why) => {
      if (killedFor) return;
      killedFor = why;
      const grace = why === "close" ? 0 : (req.graceMs ?? DEFAULT_GRACE_MS);
      if (grace === 0) {
        // No stop signal first: a SIGTERM lets a shell script go on (its init ignores it, a foreground
        // child dies and the script runs its next line, "end", writes more output) until the SIGKILL.
        // The init's SIGKILL ends the whole pid namespace at once; `kill --all` reaches the rest.
        hardKill();
        return;
      }
      void this.runtime.kill(id, stopSignal(req.image.config.StopSignal), true);
      timers.push(setTimeout(hardKill, grace));
    };
    if (ctl.pending) ctl.kill(ctl.pending);
    const onAbort = () => ctl.kill?.("abort");
    if (req.timeoutMs !== undefined) timers.push(setTimeout(() => ctl.kill?.("timeout"), req.timeoutMs));
    req.signal?.addEventListener("abort", onAbort, { once: true });
    if (req.signal?.aborted) onAbort();
    try {
      const { code, signal } = await launched.ended;
      return { code, signal, ...(killedFor ? { killedFor } : {}) };
    } finally {
      for (const t of timers) clearTimeout(t);
      req.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Starts the runtime's `run`: through the private mount namespace's helper when there is one (no
   * fork of this process, no nsenter; the output comes through FIFOs in the run folder), else as a
   * child of this process.
   */
  private async launch(id: string, argv: readonly string[], dir: string, fifos: boolean): Promise<Launched> {
    const ns = this.runtime.host.namespace;
    let s: Started | undefined;
    if (ns?.alive) {
      try {
        if (!fifos) await ns.makeFifos(dir);
        s = await ns.start(id, argv, dir);
      } catch (e) {
        // the helper is gone (killed?): a child of this process, through nsenter, does the same
        if (!(e instanceof MountError)) throw e;
      }
    }
    if (s) {
      const closed = (sock: Socket) =>
        new Promise<void>((res) => {
          if (sock.closed) res();
          else sock.once("close", () => res());
        });
      return {
        stdout: s.stdout,
        stderr: s.stderr,
        // all output read (the FIFOs' writers, the runtime and the container, are gone) and the status known
        // (a shell's status: 128 + n when the runtime was killed by signal n, the number a signal
        // gives below too)
        ended: Promise.all([s.exited, closed(s.stdout), closed(s.stderr)]).then(([status]) => ({
          code: status ?? null,
          signal: null,
        })),
      };
    }
    const cmd = this.runtime.host.command(argv[0]!, argv.slice(1));
    // with umask 022, as the helper's commands: what the runtime makes for the container (runc's
    // mount points) must not inherit the engine's private umask (077), or a container whose user is
    // not root could not reach its input (one exec of sh more, only without a helper: runc on the
    // copy fallback, or a helper that died)
    const child = spawn("/bin/sh", ["-c", 'umask 022 && exec "$@"', "sh", cmd.file, ...cmd.args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    return {
      stdout: child.stdout,
      stderr: child.stderr,
      ended: new Promise((res) => {
        child.once("error", () => res({ code: null, signal: null }));
        child.once("close", (code, signal) => res({ code, signal }));
      }),
    };
  }

  /**
   * The request's mounts with each onDisk one's source replaced by a folder of the run's disk, made
   * with the owner and mode of the source (the container sees the same folder, within the limit).
   */
  private async diskMounts(disk: Disk, mounts: readonly BindMount[]): Promise<BindMount[]> {
    const onDisk = mounts.filter((m) => m.onDisk);
    const dirs = await this.disks!.mountFolders(disk, onDisk.length);
    await Promise.all(
      onDisk.map(async (m, i) => {
        const st = await stat(m.source);
        // the disk's folders are made root's, 0755 (the usual workspace folder): else made alike
        if (st.uid === 0 && st.gid === 0 && (st.mode & 0o7777) === 0o755) return;
        const view = this.disks!.view(disk, "mounts", String(i));
        await chown(view, st.uid, st.gid);
        await chmod(view, st.mode & 0o7777);
      }),
    );
    let i = 0;
    return mounts.map((m) => (m.onDisk ? { ...m, source: dirs[i++]! } : m));
  }

  /** Copies the onDisk mounts' files from the run's disk into their sources; the error, if one failed. */
  private async copyOut(id: string, disk: Disk, mounts: readonly BindMount[]): Promise<string | undefined> {
    const onDisk = mounts.filter((m) => m.onDisk);
    try {
      for (const [i, m] of onDisk.entries())
        await this.disks!.copyOut(`${id}-out${i}`, disk, join(disk.path, "mounts", String(i)), m.source);
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      return `the run's files could not be copied out of its disk: ${e.message}`;
    }
    return undefined;
  }

  /**
   * Removes what is left of a container or bundle `id` (see EnvironmentHost.release); `unlease`
   * (RunnerOptions.leaseLayers) is called once nothing is mounted over the image's layers any more:
   * never while a mount may remain (a failed umount keeps the layers until the engine ends).
   */
  private async cleanup(
    id: string,
    dir: string,
    mounted: string | undefined,
    disk?: Disk,
    unlease?: () => void,
  ): Promise<void> {
    // `run` deletes the container when it exits; state is left only when the runtime failed or was killed
    if (existsSync(join(this.runtime.stateDir, id))) await this.runtime.delete(id, true);
    if (hierarchyDirs(`${this.cgroupParent}/${id}`).length > 0) await removeCgroup(this.cgroupParent, id);
    const ns = this.runtime.host.namespace;
    if (ns?.alive) {
      // The overlay's umount (a few ms: the kernel tears the overlay down) and the folder's deletion
      // are off the run's path, done by the helper in the background; drain() and close() wait for
      // them, sweep() leaves them alone.
      const helper = ns.pid;
      const done = ns
        .finishRun(id, dir, mounted !== undefined)
        // the overlay is gone: the disk can be emptied and used again (not if the umount failed)
        .then(() => {
          unlease?.();
          return disk ? this.disks?.release(`${id}-wipe`, disk) : undefined;
        })
        .catch(async () => {
          // The helper was killed before it finished: its namespace, and the overlay in it, went with
          // the runtime's last process, so the folder holds no mount and goes to the trash.
          // The next helper deletes it (a rootless engine cannot delete the overlay's mode-000 work
          // folder itself; the helper, root in the user namespace, can).
          if (!ns.alive || ns.pid !== helper) {
            unlease?.();
            if (!this.closed) await ns.ensure().catch(() => undefined);
            return this.discard(id, dir).catch(() => undefined);
          }
          // still mounted (it should not be: the runtime and its container are gone): the folder
          // stays in runs/ for the next sweep, which unmounts it
        })
        .finally(() => this.finishing.delete(id));
      this.finishing.set(id, done);
      return;
    }
    // no helper: no overlay (a copy of the layers, or its namespace went with its mounts)
    unlease?.();
    await this.discard(id, dir);
  }

  /**
   * Deletes a folder of the caller's (a finished job's workspace, with no mount in it) in the
   * background and returns at once: it is renamed into the trash and deleted by the helper (or this
   * process); drain() and close() wait for both. Even the rename waits behind the disk's journal
   * commits (3-5 ms measured while jobs upload and fsync), so a job does not wait for it. A folder
   * that cannot be renamed (another file system) or deleted is left where it is.
   */
  discardFolder(path: string): Promise<void> {
    const id = `w${Date.now().toString(36)}${randomBytes(5).toString("hex")}`;
    const done = this.discard(id, path)
      .catch(() => {})
      .finally(() => this.finishing.delete(id));
    this.finishing.set(id, done);
    return Promise.resolve();
  }

  /**
   * Moves a folder with no mount in it into the trash and has it deleted: by the helper (resolves
   * when it is gone), else by this process in the background (drain() waits for that).
   */
  private async discard(id: string, dir: string): Promise<void> {
    // Deleting folders can take tens of ms on a busy disk (ext4 with online discard), so the folder
    // is renamed into the trash (one call) and deleted there, off the caller's path.
    const trashed = join(this.trashDir, id);
    try {
      await rename(dir, trashed);
    } catch {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const ns = this.runtime.host.namespace;
    // the helper's `rm -rf` costs this process nothing (Node's recursive rm runs on its main thread)
    if (ns?.alive) await ns.remove(id, trashed).catch(() => this.emptyTrash());
    else this.emptyTrash();
  }

  private emptyTrash(): void {
    if (this.trashing) {
      this.trashAgain = true;
      return;
    }
    this.trashing = (async () => {
      do {
        this.trashAgain = false;
        let names: string[] = [];
        try {
          names = await readdir(this.trashDir);
        } catch {
          // no trash folder
        }
        for (const n of names)
          await rm(join(this.trashDir, n), { recursive: true, force: true }).catch(() => {});
      } while (this.trashAgain);
    })().finally(() => {
      this.trashing = undefined;
    });
  }

  /**
   * Resolves when finished runs' overlays are unmounted, their folders deleted and their disks emptied,
   * and disks being made ahead of need are made (all of it happens in the background).
   */
  async drain(): Promise<void> {
    await Promise.all([...this.spares.values()].map((s) => s.done));
    await this.disks?.settled();
    while (this.finishing.size > 0) await Promise.all(this.finishing.values());
    while (this.trashing) await this.trashing;
  }
}

type KillReason = "timeout" | "abort" | "close";

/** Environment bundles prepared ahead, per image and disk size: at most this many at once. */
const MAX_SPARES = 4;
/**
 * How long after an environment's start its image's next bundle is prepared: the start's first
 * invocation (the reason for the start) runs first, on a 2-core machine it would share the CPU with
 * the disk's mkfs and the overlay's mount.
 */
const SPARE_DELAY_MS = 250;

/** A bundle being prepared ahead (ready when `bundle.ready`), and its preparation. */
interface Spare {
  bundle: PreparedBundle;
  /** the image's layer folders it is prepared for */
  layers: readonly string[];
  done: Promise<void>;
  /** starts the preparation now instead of after SPARE_DELAY_MS */
  hurry: () => void;
  /** dropped before its preparation began: it is not prepared */
  cancelled?: boolean;
}

/** What tells a spare bundle's use: the image's layers and the disk size (the rest is config.json). */
function spareKey(req: Pick<EnvironmentRequest, "image" | "diskBytes">): string {
  return JSON.stringify([req.image.layers, req.diskBytes ?? null]);
}

/** The runtime's process, however it was started. */
interface Launched {
  stdout: Readable;
  stderr: Readable;
  /** resolves when it has exited and all its output has been read */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface RunControl {
  kill?: (why: KillReason) => void;
  /** a kill asked for before the container was started */
  pending?: KillReason;
}

function fileText(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

function takeLock(stateDir: string): void {
  const lock = join(stateDir, "runtime.lock");
  try {
    const pid = Number(readFileSync(lock, "utf8").trim());
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`the runtime state folder ${stateDir} is in use by process ${pid}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
      }
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  writeFileSync(lock, String(process.pid));
}

function releaseLock(stateDir: string): void {
  rmSync(join(stateDir, "runtime.lock"), { force: true });
}
