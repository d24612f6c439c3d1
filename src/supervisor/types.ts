/** The supervisor's seams: how a script is run (Executor) and where it sees its files (Workspace). */

/** Folders of one invocation: where the supervisor stages files, and where the script sees them. */
export interface Workspace {
  /** Host folders, written and read by the supervisor. */
  hostInput: string;
  hostOutput: string;
  /** The same folders as the script sees them (`/tmp/<request id>/input|output` in a container). */
  input: string;
  output: string;
  /**
   * The script cannot change a file of its input folder in place (the folder is read-only to it, or
   * copy-on-write): staging may then hard-link a stored object there instead of copying it. Leave it
   * unset when the script may write its input folder's files: a hard link shares the stored file's
   * inode, and root in a container (CAP_DAC_OVERRIDE, CAP_FOWNER) can write any file it sees, so an
   * append to the input would change the stored object. Also unset when the executor changes the
   * input files' owner or mode (it would change the stored file's).
   */
  inputReadOnly?: boolean;
  /**
   * The folders are on a file system of their own (a warm environment's disk), not the data disk:
   * stage-out does not offer its outputs to be taken (`consume`), since a provider keeping its objects
   * on the data disk would try a rename that fails (EXDEV) before copying.
   */
  onOtherFileSystem?: boolean;
  /**
   * Set when the executor made the folders itself and owns them (a warm environment's own, on its
   * disk): they exist already, and the supervisor calls this once it is done with them (after
   * stage-out) instead of removing the request's folder.
   */
  release?: () => Promise<void>;
  /**
   * Called when a write into these folders found no room (ENOSPC, EDQUOT) and they are on a disk of
   * the function's own size (a warm environment's): returns what that means, and stage-in fails with
   * reason `disk` and these words, as when the executor moves the input onto that disk itself (the
   * executor may also stop reusing that disk). Unset (a workspace on the data disk): a stage-error,
   * since a full data disk may have room on a retry.
   */
  noRoom?: () => string;
}

export type Command =
  /** `/bin/sh <script>`; `hostPath` is staged into the input folder, `path` is how the script sees it. */
  | { kind: "script"; hostPath: string; path: string }
  /** The image's entrypoint with these arguments instead of its CMD. */
  | { kind: "args"; args: string[] }
  /** The image's entrypoint and CMD as they are. */
  | { kind: "default" };

export interface ExecRequest {
  requestId: string;
  command: Command;
  env: Record<string, string>;
  workspace: Workspace;
  /** null: no limit. */
  timeoutMs: number | null;
  /** Output as it is produced, for live logs. */
  onOutput?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export type ExecReason = "ok" | "error" | "timeout" | "oom" | "disk" | "start-error";

export interface ExecResult {
  reason: ExecReason;
  exitCode: number | null;
  /** stdout and stderr interleaved as produced (capped by the executor: its start and its end, capped-output.ts). */
  output: Buffer;
  /** When the process started and ended (ms since the epoch). */
  startedAt?: number;
  endedAt?: number;
  /** A short explanation for start-error/oom/timeout/disk, for the log. */
  detail?: string;
  /**
   * What the run went through without failing (a process of it OOM-killed while the script exited
   * 0): one WARNING line each in the log.
   */
  warnings?: string[];
  /**
   * Where it ran, when the executor keeps warm execution environments (issue 14): "cold" when the
   * environment was started for this invocation (`startMs` is that start), "warm" when it was reused.
   * Absent when each invocation gets its own fresh container (`isolation: invocation`).
   */
  environment?: { id: string; start: "cold" | "warm"; startMs: number };
}

/** Runs one command for one invocation: on the host, in a crun/runc container, in Lambda... */
export interface Executor {
  /**
   * Lays out the workspace folders of a request under `root` (host side) and says how the script will
   * see them; or makes them elsewhere and says so (Workspace.release). A rejection is the request's
   * start-error (nothing could be made ready to run it).
   */
  workspace(root: string, requestId: string, signal?: AbortSignal): Workspace | Promise<Workspace>;
  run(req: ExecRequest): Promise<ExecResult>;
}
