/**
 * Runs the command as a plain process on this machine, without a container: no isolation, no image.
 * It is the baseline the container executor is measured against, and it lets the supervisor be
 * tested on its own. Scripts see the host folders themselves as their input and output.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { CappedOutput } from "./capped-output.js";
import type { ExecRequest, ExecResult, Executor, Workspace } from "./types.js";

export interface HostExecutorOptions {
  /** Largest output kept: its start and its end, the middle dropped with a marker (Lambda's response limit is 6 MB). */
  maxOutputBytes?: number;
  /** Grace between SIGTERM and SIGKILL on timeout. */
  killGraceMs?: number;
}

export class HostExecutor implements Executor {
  private readonly maxOutput: number;
  private readonly grace: number;

  constructor(opts: HostExecutorOptions = {}) {
    this.maxOutput = opts.maxOutputBytes ?? 6 * 1024 * 1024;
    this.grace = opts.killGraceMs ?? 2000;
  }

  workspace(root: string): Workspace {
    const input = join(root, "input");
    const output = join(root, "output");
    return { hostInput: input, hostOutput: output, input, output };
  }

  run(req: ExecRequest): Promise<ExecResult> {
    const c = req.command;
    if (c.kind === "default") {
      return Promise.resolve({
        reason: "start-error",
        exitCode: null,
        output: Buffer.alloc(0),
        detail: "this function has no script, and the host executor has no image whose command it could run",
      });
    }
    const [file, args] = c.kind === "script" ? ["/bin/sh", [c.hostPath]] : [c.args[0]!, c.args.slice(1)];
    const env = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: req.workspace.hostInput,
      ...req.env,
    };
    return new Promise((resolve) => {
      const out = new CappedOutput(this.maxOutput, req.onOutput);
      let timedOut = false;
      const startedAt = Date.now();
      // Own process group, so a timeout kills everything the script started.
      const child = spawn(file, args, {
        cwd: req.workspace.hostOutput,
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.on("data", out.push);
      child.stderr.on("data", out.push);
      const killGroup = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      const stop = () => {
        killGroup("SIGTERM");
        setTimeout(() => killGroup("SIGKILL"), this.grace).unref();
      };
      const timer =
        req.timeoutMs === null
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              stop();
            }, req.timeoutMs);
      req.signal?.addEventListener("abort", stop, { once: true });
      child.on("error", (err) => {
        clearTimeout(timer);
        resolve({
          reason: "start-error",
          exitCode: null,
          output: Buffer.alloc(0),
          startedAt,
          endedAt: Date.now(),
          detail: err.message,
        });
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const output = out.result();
        const endedAt = Date.now();
        if (timedOut) {
          resolve({
            reason: "timeout",
            exitCode: code,
            output,
            startedAt,
            endedAt,
            detail: `stopped after ${req.timeoutMs} ms`,
          });
        } else {
          const exitCode = code ?? (signal ? 128 : null);
          resolve({
            reason: code === 0 ? "ok" : "error",
            exitCode,
            output,
            startedAt,
            endedAt,
            ...(signal ? { detail: `killed by ${signal}` } : {}),
          });
        }
      });
    });
  }
}
