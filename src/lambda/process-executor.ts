/**
 * The function's Executor inside Lambda: the script runs as a process of the function's own
 * environment (the user's image is the function's root file system), with its workspace in
 * `/tmp/<request id>/input|output` as SCAR's scripts expect. A Lambda function has no container of
 * its own to start, so the host executor does the work; what differs is the message when there is
 * nothing to run: SCAR's image mode needs a script (reference/scar-behaviour.md §5.3).
 */
import { HostExecutor, type HostExecutorOptions } from "../supervisor/host-executor.js";
import type { ExecRequest, ExecResult, Executor, Workspace } from "../supervisor/types.js";

/**
 * The most output a response can carry: Lambda refuses a response over 6 MB, and the output goes in
 * it base64-encoded (4 bytes for 3) next to a few headers. Past it the start and end are kept.
 */
export const MAX_RESPONSE_OUTPUT = Math.floor(((6 * 1024 * 1024 - 8 * 1024) * 3) / 4);

export class LambdaProcessExecutor implements Executor {
  private readonly host: HostExecutor;

  constructor(opts: HostExecutorOptions = {}) {
    this.host = new HostExecutor({ maxOutputBytes: MAX_RESPONSE_OUTPUT, ...opts });
  }

  workspace(root: string): Workspace {
    return this.host.workspace(root);
  }

  run(req: ExecRequest): Promise<ExecResult> {
    if (req.command.kind === "default")
      return Promise.resolve({
        reason: "start-error",
        exitCode: null,
        output: Buffer.alloc(0),
        detail: "Init: Script not defined.",
      });
    return this.host.run(req);
  }
}
