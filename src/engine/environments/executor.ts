/**
 * The supervisor's Executor on warm execution environments (issue 14): an invocation runs as a new
 * process in a container of its function that may have run earlier invocations, as on Lambda.
 *
 *   warm (an idle environment waits): workspace() takes it and hands the supervisor the
 *   environment's own fresh /tmp/<id>/input|output (on its disk) -> the supervisor stages in there
 *   -> the agent runs the command -> the supervisor stages out from there -> the workspace's
 *   release: the folders removed, the environment released. Nothing is copied twice.
 *   cold (none waits): the supervisor stages into a workspace on the data disk -> run() acquires an
 *   environment (a cold start, or one released meanwhile) -> its fresh /tmp/<id>/input|output -> the
 *   staged files moved in -> the agent runs the command -> the outputs moved back into the workspace
 *   -> the folders removed -> release
 *
 * The container's limits are the function's, as with ContainerExecutor, but they hold for the whole
 * environment: its memory limit is all its processes', its disk holds its root file system's writes
 * and its invocation folders.
 */
import { lstat, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { CappedOutput } from "../../supervisor/capped-output.js";
import type { ExecRequest, ExecResult, Executor, Workspace } from "../../supervisor/types.js";
import {
  type ContainerFunction,
  containerWorkspace,
  DEFAULT_DISK_MIB,
  oomKillWarning,
} from "../container-executor.js";
import { processArgs, resolveUser } from "../runtime/index.js";
import type { Environment, EnvironmentInvocationResult, EnvironmentRequest } from "../runtime/types.js";
import { giveEntries, moveEntries, type Owner } from "./move.js";
import type { EnvironmentPool, Lease, PoolKey } from "./pool.js";

export interface WarmFunction extends ContainerFunction {
  /** The function's name and deployed revision: environments are never shared across either. */
  key: PoolKey;
  /** The most environments the function may have at once (its concurrency). */
  maxEnvironments: number;
}

export interface WarmExecutorOptions {
  /** Output kept per invocation (stdout and stderr together); default 6 MiB, Lambda's response limit. */
  maxOutputBytes?: number;
}

/** Starts one environment (the runner's startEnvironment). */
export type StartEnvironment = (req: EnvironmentRequest) => Promise<Environment>;

/** An environment taken by workspace() for one request, until the workspace's release. */
interface Held {
  lease: Lease;
  requestId: string;
  /** false once an invocation in it left it unusable */
  reusable: boolean;
}

export class WarmContainerExecutor implements Executor {
  private readonly maxOutput: number;
  private readonly diskMiB: number;
  private held: Held | undefined;

  constructor(
    private readonly pool: EnvironmentPool,
    private readonly startEnvironment: StartEnvironment,
    private readonly fn: WarmFunction,
    opts: WarmExecutorOptions = {},
  ) {
    this.maxOutput = opts.maxOutputBytes ?? 6 * 1024 * 1024;
    this.diskMiB = fn.diskMiB ?? DEFAULT_DISK_MIB;
  }

  /**
   * With an idle warm environment: its own invocation folders, which the supervisor stages into and
   * out of directly (on the environment's disk, so inputs count against it as the script's files do).
   * Else a workspace on the data disk, moved into an environment by run().
   */
  async workspace(root: string, requestId: string): Promise<Workspace> {
    const lease = this.held ? undefined : this.pool.acquireIdle(this.fn.key);
    if (!lease) return containerWorkspace(root, requestId);
    const held: Held = { lease, requestId, reusable: true };
    let folders: { hostInput: string; hostOutput: string };
    try {
      folders = await lease.env.prepareInvocation(requestId);
    } catch {
      // the environment cannot take an invocation: it goes, and run() finds another one
      this.pool.release(lease.env, false);
      return containerWorkspace(root, requestId);
    }
    this.held = held;
    return {
      ...containerWorkspace(root, requestId),
      ...folders,
      ...((await crossDevice(lease.env, folders.hostOutput, dirname(root)))
        ? { onOtherFileSystem: true }
        : {}),
      release: () => this.releaseHeld(held),
      // Staged straight onto the environment's disk: an input past it is told as run() tells it, and
      // as there the environment is not reused (what an earlier invocation left on its root file
      // system may be what fills the disk).
      noRoom: () => {
        held.reusable = false;
        return inputPastDisk(this.diskMiB);
      },
    };
  }

  /** The end of a held environment's request: its folders removed, the environment given back. */
  private async releaseHeld(held: Held): Promise<void> {
    if (this.held !== held) return;
    this.held = undefined;
    let reusable = held.reusable;
    try {
      await held.lease.env.finishInvocation(held.requestId);
    } catch {
      reusable = false; // folders it could not remove would be in the next invocation's way
    }
    this.pool.release(held.lease.env, reusable);
  }

  async run(req: ExecRequest): Promise<ExecResult> {
    const c = req.command;
    const config = this.fn.image.config;
    // As ContainerExecutor asks the runner: a script through the image's /bin/sh; arguments after
    // the image's Entrypoint (in place of its Cmd); else Entrypoint and Cmd. The working folder is
    // the image's: the environment's agent runs there and its invocations start there.
    const argv =
      c.kind === "script"
        ? ["/bin/sh", c.path]
        : processArgs(config, c.kind === "args" ? { cmd: c.args } : {});
    if (argv.length === 0)
      return failed("start-error", "nothing to run: the image has no Entrypoint or Cmd and none was given");
    let owner: Owner | undefined;
    try {
      const u = resolveUser(config.User, this.fn.image.layers);
      if (u.uid !== 0 || u.gid !== 0) owner = { uid: u.uid, gid: u.gid };
    } catch (err) {
      return failed("start-error", (err as Error).message);
    }

    const held = this.held;
    if (held && req.workspace.release) {
      // staged in place by the supervisor: the folders are the environment's already
      const { env } = held.lease;
      const r = await this.invoke(env, req, argv, owner, true);
      if (!r.reusable) held.reusable = false;
      return { ...r.result, environment: { id: env.id, start: "warm", startMs: 0 } };
    }
    let lease: Lease;
    try {
      lease = await this.pool.acquire(this.fn.key, {
        max: this.fn.maxEnvironments,
        memoryBytes: this.fn.memoryMiB * 1024 * 1024,
        start: () => this.startEnvironment(this.environmentRequest()),
        ...(req.signal ? { signal: req.signal } : {}),
      });
    } catch (err) {
      if (req.signal?.aborted) return failed("error", "aborted");
      return failed("start-error", (err as Error).message ?? String(err));
    }
    const { env } = lease;
    const environment = { id: env.id, start: lease.start, startMs: lease.start === "cold" ? env.startMs : 0 };
    let reusable = false;
    try {
      const r = await this.invoke(env, req, argv, owner);
      reusable = r.reusable;
      return { ...r.result, environment };
    } finally {
      try {
        await env.finishInvocation(req.requestId);
      } catch {
        reusable = false; // folders it could not remove would be in the next invocation's way
      }
      this.pool.release(env, reusable);
    }
  }

  private async invoke(
    env: Environment,
    req: ExecRequest,
    argv: string[],
    owner: Owner | undefined,
    inPlace = false,
  ): Promise<{ result: ExecResult; reusable: boolean }> {
    const ws = req.workspace;
    let folders: { hostInput: string; hostOutput: string };
    let cross = false;
    try {
      if (inPlace) {
        folders = ws;
        if (owner) await giveEntries(ws.hostInput, owner);
      } else {
        folders = await env.prepareInvocation(req.requestId);
        cross = await crossDevice(env, folders.hostInput, dirname(dirname(ws.hostInput)));
        await moveEntries(ws.hostInput, folders.hostInput, owner, { crossDevice: cross });
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Inputs live on the environment's disk, with what the function writes.
      if (e.code === "ENOSPC" || e.code === "EDQUOT")
        return { result: failed("disk", inputPastDisk(this.diskMiB)), reusable: false };
      return {
        result: failed("start-error", `the input could not be placed in the environment: ${e.message}`),
        reusable: false,
      };
    }
    const out = new CappedOutput(this.maxOutput, req.onOutput);
    let r: EnvironmentInvocationResult;
    try {
      r = await env.invoke({
        requestId: req.requestId,
        argv,
        env: req.env,
        ...(req.timeoutMs !== null ? { timeoutMs: req.timeoutMs } : {}),
        outputLimitBytes: this.maxOutput,
        onStdout: out.push,
        onStderr: out.push,
        ...(req.signal ? { signal: req.signal } : {}),
      });
    } catch (err) {
      // A misuse (it was busy): a bug of the pool's, told as the job's failure, not a crash.
      return {
        result: failed("error", `the environment refused the invocation: ${(err as Error).message}`),
        reusable: false,
      };
    }
    let message = r.message;
    let reason = r.reason;
    // Reached through host paths, the folders must still be folders: a link the invocation put in
    // place of one would resolve against the host's root, and stage-out would read (and the cleanup
    // delete) host files.
    const replaced = await notAFolder(folders);
    if (replaced !== undefined) {
      const seen =
        replaced === folders.hostInput
          ? ws.input
          : replaced === folders.hostOutput
            ? ws.output
            : dirname(ws.output);
      return {
        result: {
          reason: "error",
          exitCode: r.exitCode,
          output: out.result(),
          startedAt: r.startedAt,
          endedAt: r.endedAt,
          detail: `the invocation replaced its folder ${seen} by something that is not a folder (a link?): its outputs are not staged out`,
        },
        reusable: false,
      };
    }
    if (reason === "disk")
      message = `The function wrote more than its disk limit of ${this.diskMiB} MiB (root file system, input and output folders together) and failed. Raise the limit with the FDL key lambda.ephemeral_storage (MB, up to 10240).`;
    // Only a run whose outputs the supervisor uploads needs them (a timed-out one uploads what it
    // wrote before the kill, SCAR's timeout_threshold rule).
    let reusable = r.reusable;
    if (!inPlace && (reason === "ok" || reason === "timeout")) {
      try {
        await moveEntries(folders.hostOutput, ws.hostOutput, undefined, { crossDevice: cross });
      } catch (err) {
        reason = "error";
        message = `the outputs could not be copied out of the environment: ${(err as Error).message}`;
        reusable = false;
      }
    }
    return {
      result: {
        reason,
        exitCode: r.exitCode,
        output: out.result(),
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        ...(message ? { detail: message } : {}),
        ...(r.oomKilled ? { warnings: [oomKillWarning(this.fn.memoryMiB)] } : {}),
      },
      reusable,
    };
  }

  /**
   * Starts one environment of the function and leaves it idle in the pool, so that the next
   * invocation is warm (the engine's `warmPrewarm`, at deploy). Rejects with the start's error.
   */
  async prewarm(): Promise<void> {
    const lease = await this.pool.acquire(this.fn.key, {
      max: this.fn.maxEnvironments,
      memoryBytes: this.fn.memoryMiB * 1024 * 1024,
      start: () => this.startEnvironment(this.environmentRequest()),
    });
    this.pool.release(lease.env, true);
  }

  /** What an environment of this function is started with. */
  environmentRequest(): EnvironmentRequest {
    return {
      image: this.fn.image,
      limits: {
        memoryBytes: this.fn.memoryMiB * 1024 * 1024,
        swapBytes: 0,
        pids: this.fn.pids ?? 1024,
        ...(this.fn.cpus ? { cpus: this.fn.cpus } : {}),
      },
      diskBytes: this.diskMiB * 1024 * 1024,
      network: this.fn.network ?? "none",
      seccomp: this.fn.seccomp ?? "default",
      hostname: "scar",
    };
  }
}

/** Why an input could not be placed in an environment whose disk is `diskMiB` MiB. */
function inputPastDisk(diskMiB: number): string {
  return `The input does not fit the function's disk of ${diskMiB} MiB (its input and output folders and root file system together). Raise the limit with the FDL key lambda.ephemeral_storage (MB, up to 10240).`;
}

/**
 * The first of an invocation's folders (/tmp/<id>, then its input and output folders) that exists
 * and is not a folder (lstat: a link is not followed), if any. Nothing of the invocation runs any
 * more (the agent killed its processes), so what this finds stays so.
 */
async function notAFolder(f: { hostInput: string; hostOutput: string }): Promise<string | undefined> {
  for (const p of [dirname(f.hostOutput), f.hostInput, f.hostOutput]) {
    const st = await lstat(p).catch(() => undefined);
    if (st && !st.isDirectory()) return p;
  }
  return undefined;
}

/** Each environment's file system (st_dev of its invocation folders): stat'ed once per environment. */
const environmentDevices = new WeakMap<Environment, number>();
/** The data disk's file system, by work folder (the parent of every request's workspace). */
const workDevices = new Map<string, number>();

/**
 * Whether `env`'s invocation folders (`envFolder` one of them) and the work folder `workRoot` are on
 * two file systems (an environment with a disk of its own: always), so that moving files between
 * them is a copy and a rename would only fail with EXDEV. False when either cannot be told (the
 * rename is tried, and falls back to a copy).
 */
async function crossDevice(env: Environment, envFolder: string, workRoot: string): Promise<boolean> {
  try {
    let e = environmentDevices.get(env);
    if (e === undefined) {
      e = (await stat(envFolder)).dev;
      environmentDevices.set(env, e);
    }
    let w = workDevices.get(workRoot);
    if (w === undefined) {
      w = (await stat(workRoot)).dev;
      workDevices.set(workRoot, w);
    }
    return e !== w;
  } catch {
    return false;
  }
}

function failed(reason: ExecResult["reason"], detail: string): ExecResult {
  const now = Date.now();
  return { reason, exitCode: null, output: Buffer.alloc(0), startedAt: now, endedAt: now, detail };
}
