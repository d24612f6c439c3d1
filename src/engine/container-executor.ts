/**
 * The supervisor's Executor on the engine's container runtime: each invocation runs in its own
 * crun/runc container over the function's image, seeing only its input and output folders (at
 * `/tmp/<request id>/input|output`, as in SCAR), with the function's memory and CPU limits, and a disk
 * limit on what it writes to its root file system and output folder (Lambda's ephemeral storage).
 */
import { chmod, lchown, readdir } from "node:fs/promises";
import { join } from "node:path";
import { CappedOutput } from "../supervisor/capped-output.js";
import type { ExecRequest, ExecResult, Executor, Workspace } from "../supervisor/types.js";
import {
  type ImageInput,
  type RunLimits,
  type Runner,
  type RunRequest,
  resolveUser,
  rootlessUser,
} from "./runtime/index.js";

export interface ContainerFunction {
  image: ImageInput;
  /** MiB; becomes the container's memory limit (no swap). */
  memoryMiB: number;
  /** Cores; absent: no CPU quota. */
  cpus?: number;
  /** Processes and threads; default 1024. */
  pids?: number;
  /** "none": loopback only (default); "host": the host's network, for scripts that call the S3 API or the internet. */
  network?: "none" | "host";
  /** "unconfined": no seccomp filter (FDL `lambda.container.seccomp`); default scar's profile. */
  seccomp?: "default" | "unconfined";
  /** MiB the invocation may write to its root file system and output folder; default 512 (Lambda's /tmp). */
  diskMiB?: number;
}

/**
 * An invocation's folders: staged on the host under `root`, seen by the container as
 * `/tmp/<request id>/input|output` (as in SCAR); both executors use it.
 */
export function containerWorkspace(root: string, requestId: string): Workspace {
  return {
    hostInput: join(root, "input"),
    hostOutput: join(root, "output"),
    input: `/tmp/${requestId}/input`,
    output: `/tmp/${requestId}/output`,
  };
}

/**
 * The log's line for a run that had a process OOM-killed but whose script exited 0 (the runtime's
 * `oomKilled` with reason ok): the job succeeded, and whoever reads its log learns why an output may
 * be missing.
 */
export function oomKillWarning(memoryMiB: number): string {
  return `A process of this function was killed for lack of memory (limit ${memoryMiB} MiB); the script still exited 0, so the job succeeded. If that process mattered, raise the function's memory (FDL key memory)`;
}

/** Lambda's default ephemeral storage (/tmp), MB. */
export const DEFAULT_DISK_MIB = 512;

export interface ContainerExecutorOptions {
  /** Output kept per invocation (stdout and stderr together); default 6 MiB, Lambda's response limit. */
  maxOutputBytes?: number;
}

export class ContainerExecutor implements Executor {
  private readonly maxOutput: number;
  private readonly diskMiB: number;

  constructor(
    private readonly runner: Runner,
    private readonly fn: ContainerFunction,
    opts: ContainerExecutorOptions = {},
  ) {
    this.maxOutput = opts.maxOutputBytes ?? 6 * 1024 * 1024;
    this.diskMiB = fn.diskMiB ?? DEFAULT_DISK_MIB;
  }

  workspace(root: string, requestId: string): Workspace {
    return containerWorkspace(root, requestId);
  }

  async run(req: ExecRequest): Promise<ExecResult> {
    const ws = req.workspace;
    await this.handOver(ws);
    const out = new CappedOutput(this.maxOutput, req.onOutput);
    const limits: RunLimits = {
      memoryBytes: this.fn.memoryMiB * 1024 * 1024,
      swapBytes: 0,
      pids: this.fn.pids ?? 1024,
      ...(this.fn.cpus ? { cpus: this.fn.cpus } : {}),
    };
    const c = req.command;
    const request: RunRequest = {
      image: this.fn.image,
      ...(c.kind === "script" ? { entrypoint: ["/bin/sh", c.path], cmd: [] } : {}),
      ...(c.kind === "args" ? { cmd: c.args } : {}),
      env: req.env,
      mounts: [
        { source: ws.hostInput, destination: ws.input },
        { source: ws.hostOutput, destination: ws.output, onDisk: true },
      ],
      limits,
      // What the invocation writes to its root file system and output folder is limited together.
      diskBytes: this.diskMiB * 1024 * 1024,
      network: this.fn.network ?? "none",
      seccomp: this.fn.seccomp ?? "default",
      hostname: "scar",
      // At the time limit the whole container is killed at once, as SCAR's supervisor kills its
      // process: a stop signal first would let the script run on (and write outputs) during a grace.
      ...(req.timeoutMs !== null ? { timeoutMs: req.timeoutMs, graceMs: 0 } : {}),
      outputLimitBytes: this.maxOutput,
      onStdout: out.push,
      onStderr: out.push,
      ...(req.signal ? { signal: req.signal } : {}),
    };
    const startedAt = Date.now();
    const r = await this.runner.run(request);
    if (r.reason === "disk")
      r.message = `The function wrote more than its disk limit of ${this.diskMiB} MiB (root file system and output folder together) and failed. Raise the limit with the FDL key lambda.ephemeral_storage (MB, up to 10240).`;
    return {
      reason: r.reason,
      exitCode: r.exitCode,
      output: out.result(),
      startedAt,
      endedAt: Date.now(),
      ...(r.message ? { detail: r.message } : {}),
      ...(r.oomKilled ? { warnings: [oomKillWarning(this.fn.memoryMiB)] } : {}),
    };
  }

  /**
   * Gives the input and output folders (private to the engine: 0700, files 0600) to the user the
   * image runs as, so that a function whose image sets a non-root `User` reads its input and writes
   * its output. Containers share the host's user ids (no user namespace), but the workspace sits in
   * the engine's data folder, which no other host user can enter. Nothing to do for root.
   *
   * Rootless, the engine cannot give files away: with a single id mapping every container runs as
   * root of its namespace, the engine's user (nothing to do); with subordinate ids, the folders are
   * opened to everyone instead (still behind the private data folder), and what the container writes
   * with its usual umask stays readable by the engine, which uploads it.
   */
  private async handOver(ws: Workspace): Promise<void> {
    let user: { uid: number; gid: number };
    const rootless = this.runner.info.rootless;
    try {
      const resolved = resolveUser(this.fn.image.config.User, this.fn.image.layers);
      user = rootless ? rootlessUser(resolved, rootless) : resolved;
    } catch {
      return; // an unknown user: the runner refuses to start the container and says why
    }
    if (user.uid === 0 && user.gid === 0) return;
    if (rootless) {
      const open = async (path: string): Promise<void> => {
        await chmod(path, 0o777);
        for (const e of await readdir(path, { withFileTypes: true })) {
          if (e.isDirectory()) await open(join(path, e.name));
          else if (e.isFile()) await chmod(join(path, e.name), 0o644);
        }
      };
      await open(ws.hostInput);
      await open(ws.hostOutput);
      return;
    }
    const give = async (path: string): Promise<void> => {
      await lchown(path, user.uid, user.gid);
      for (const e of await readdir(path, { withFileTypes: true })) {
        if (e.isDirectory()) await give(join(path, e.name));
        else await lchown(join(path, e.name), user.uid, user.gid);
      }
    };
    await give(ws.hostInput);
    await give(ws.hostOutput);
  }
}
