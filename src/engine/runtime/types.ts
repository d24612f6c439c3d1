/**
 * Public types of the container runtime: what the images side hands us (ImageInput), what a caller
 * asks for (RunRequest) and what it gets back (RunResult).
 */

/**
 * The part of an OCI image configuration (image-spec `config` object, same field names) that decides
 * how a container starts. Every field is optional, as in the image spec.
 */
export interface OciImageConfig {
  /** e.g. "0", "1000:1000", "nobody", "app:staff"; names are looked up in the image's /etc/passwd and /etc/group */
  User?: string;
  /** "KEY=value" entries */
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  /** signal that asks the container to stop (Docker's STOPSIGNAL), sent on timeout before the SIGKILL; default SIGTERM */
  StopSignal?: string;
}

/**
 * The seam with src/engine/images: one image, ready to run.
 *
 * - `config`: the image's OCI config (Entrypoint, Cmd, Env, WorkingDir, User).
 * - `layers`: absolute paths of the unpacked layer directories, **bottom to top** (base layer first),
 *   in overlayfs format (whiteouts as 0/0 character devices, opaque directories with the
 *   `trusted.overlay.opaque=y` xattr). They are used as read-only overlay lowers and are never
 *   written to; they must not change while a run uses them.
 */
export interface ImageInput {
  config: OciImageConfig;
  layers: string[];
}

export interface BindMount {
  /** absolute host path (file or directory); must exist */
  source: string;
  /** absolute path inside the container; created in the run's own upper layer if missing */
  destination: string;
  readonly?: boolean;
  /**
   * with RunRequest.diskBytes: the container writes into a folder of the run's disk instead (within
   * the limit), whose files are copied into `source` when the run ends, unless the disk filled up
   */
  onDisk?: boolean;
}

export interface RunLimits {
  /** memory limit in bytes (cgroup memory.limit_in_bytes / memory.max) */
  memoryBytes?: number;
  /** swap allowed on top of memoryBytes; default 0 (no swap). Ignored when the kernel has no swap accounting */
  swapBytes?: number;
  /** maximum number of processes/threads in the container */
  pids?: number;
  /** CPU quota in cores, e.g. 0.5 or 2 */
  cpus?: number;
  /** RLIMIT_NOFILE (soft = hard); capped at the host's hard limit; default 1024 */
  nofile?: number;
}

export type RunReason = "ok" | "error" | "timeout" | "oom" | "disk" | "start-error";

export interface RunRequest {
  image: ImageInput;
  /** replaces the image's Entrypoint (Docker semantics: also drops the image's Cmd unless `cmd` is given) */
  entrypoint?: string[];
  /** replaces the image's Cmd */
  cmd?: string[];
  /** added to (and overriding) the image's Env */
  env?: Record<string, string>;
  /** replaces the image's WorkingDir */
  workdir?: string;
  /** replaces the image's User */
  user?: string;
  mounts?: BindMount[];
  limits?: RunLimits;
  /**
   * the most the run may write to its root file system and its `onDisk` mounts together (a loop ext4
   * file system of that size, see disk.ts); past it writes fail with ENOSPC and the reason is "disk".
   * Not enforced when the runner has no disks (RuntimeInfo.disk) or runs on a copy of the layers
   */
  diskBytes?: number;
  /**
   * "default": scar's seccomp profile (seccomp.ts: an allow-list, the rest fails with EPERM);
   * "unconfined": no seccomp filter. Default "default"
   */
  seccomp?: "default" | "unconfined";
  /** "none" (default): own network namespace with loopback only; "host": the host's network */
  network?: "none" | "host";
  hostname?: string;
  /**
   * wall-clock limit for the container; on expiry SIGTERM (or the image's StopSignal) to every
   * process, then SIGKILL after `graceMs`; with `graceMs: 0`, SIGKILL to every process at once
   */
  timeoutMs?: number;
  /** default 2000; 0: no stop signal, the container is killed at the limit (the engine's functions) */
  graceMs?: number;
  /** bytes of stdout and of stderr kept in the result (each); default 1 MiB. The rest is dropped and counted */
  outputLimitBytes?: number;
  /** streamed output, every chunk (also the ones beyond the cap) */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** aborting kills the container like a timeout does; the reason is then "error" */
  signal?: AbortSignal;
}

export interface RunTimings {
  /** rootfs + bundle preparation */
  prepareMs: number;
  /** runtime start until the container (and the runtime process) exited */
  runMs: number;
  /** removal of what the runtime left (normally nothing); the overlay's umount and the run folder's deletion follow in the background (Runner.drain) */
  cleanupMs: number;
}

export interface RunResult {
  id: string;
  reason: RunReason;
  /** exit code of the container's main process; 128+N when killed by signal N; null for a start error */
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  /** bytes dropped beyond outputLimitBytes */
  stdoutDropped: number;
  stderrDropped: number;
  /** for reason "start-error" (and runtime failures): what the OCI runtime said */
  message?: string;
  /** which root file system was used: an overlay over the layers, or a per-run copy (fallback) */
  rootfs: "overlay" | "copy";
  /**
   * true when the kernel's OOM killer killed a process of the container during the run. With an exit
   * other than 0 the reason is then "oom"; with exit 0 it stays "ok" (a child was killed, the script
   * went on): the caller tells the log. Absent when no OOM kill was seen.
   */
  oomKilled?: true;
  timings: RunTimings;
}

/**
 * A warm execution environment (issue 14): one long-lived container of a function's image whose
 * first process is scar's agent (a static binary mounted at `/.scar/agent`, needing nothing from the
 * image). It runs one invocation at a time, each as a new process, and stays up between them.
 * `Runner.startEnvironment` makes one; engine/environments pools them per function.
 */
export interface EnvironmentRequest {
  image: ImageInput;
  /** replaces the image's WorkingDir / User, as in RunRequest */
  workdir?: string;
  user?: string;
  /** extra mounts fixed for the environment's life (the invocation folders are not among them) */
  mounts?: BindMount[];
  /** the memory limit is the whole environment's (all its processes), as on Lambda */
  limits?: RunLimits;
  /** the environment's disk: its root file system's writes and its /tmp (inputs, outputs) together */
  diskBytes?: number;
  seccomp?: "default" | "unconfined";
  network?: "none" | "host";
  hostname?: string;
}

export interface EnvironmentInvocation {
  /** the request id: the invocation's folders are /tmp/<requestId>/input and /tmp/<requestId>/output */
  requestId: string;
  /** what to exec (argv[0] is looked up in the invocation's PATH when it has no slash) */
  argv: string[];
  /** the invocation's environment variables, added to (and overriding) the image's Env */
  env?: Record<string, string>;
  /** wall-clock limit; at the limit the invocation's whole process tree is killed */
  timeoutMs?: number;
  /** bytes of stdout and of stderr kept in the result (each); default 1 MiB */
  outputLimitBytes?: number;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** aborting kills the invocation like a timeout does; the reason is then "error" */
  signal?: AbortSignal;
}

export interface EnvironmentInvocationResult {
  reason: RunReason;
  /** exit code; 128+N when killed by signal N; null when it never started */
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutDropped: number;
  stderrDropped: number;
  message?: string;
  /**
   * false when the environment must not run another invocation (a timeout, an OOM kill, a full disk,
   * a lost or confused agent): the pool closes it and the next invocation gets a fresh one
   */
  reusable: boolean;
  /** as RunResult's: an OOM kill in the environment during the invocation (then never reusable) */
  oomKilled?: true;
  /** when the invocation's process started and ended (ms since the epoch) */
  startedAt: number;
  endedAt: number;
}

export interface Environment {
  readonly id: string;
  /** ms from the request until the agent answered (container start, overlay, disk, agent hello) */
  readonly startMs: number;
  /** the memory limit it was started with (bytes), for the pool's memory accounting; 0 = none */
  readonly memoryBytes: number;
  /** false once the container has ended or close() was called */
  readonly alive: boolean;
  /** where its disk (EnvironmentRequest.diskBytes) is mounted in the mount helper's namespace, if it has one */
  readonly diskPath?: string | undefined;
  /**
   * Makes fresh, empty `/tmp/<requestId>/input` and `output` folders (owned by the image's user) and
   * returns their paths as this process can reach them (on the environment's disk, or on the data
   * disk when there is no disk limit), so the caller can stage inputs in and outputs out.
   */
  prepareInvocation(requestId: string): Promise<{ hostInput: string; hostOutput: string }>;
  /** runs one invocation; rejects only on misuse (one at a time); failures are results */
  invoke(inv: EnvironmentInvocation): Promise<EnvironmentInvocationResult>;
  /** removes the invocation's folders (after stage-out) */
  finishInvocation(requestId: string): Promise<void>;
  /** kills the container, unmounts and deletes what it used; safe to call twice */
  close(): Promise<void>;
}
