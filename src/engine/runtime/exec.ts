/**
 * A small promise wrapper around child_process.spawn for the helper commands the runtime calls
 * (mount, umount, crun/runc kill/delete/list). Output is collected in memory: these commands print
 * little. Never throws for a non-zero exit; callers look at `code`.
 */
import { spawn } from "node:child_process";

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** kill the command (SIGKILL) after this many ms */
  timeoutMs?: number;
}

export function exec(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: opts.timeoutMs,
      killSignal: "SIGKILL",
    });
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", (err) => {
      resolve({ code: 127, signal: null, stdout, stderr: stderr + String(err.message) });
    });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** First line of a command's error output, for error messages. */
export function firstLine(s: string): string {
  return s.trim().split("\n")[0]?.trim() ?? "";
}

/** A signal's number, for the 128 + n exit status a shell reports; 0 when not one of these. */
export function signalNumber(s: NodeJS.Signals): number {
  const n = (
    {
      SIGHUP: 1,
      SIGINT: 2,
      SIGQUIT: 3,
      SIGABRT: 6,
      SIGKILL: 9,
      SIGSEGV: 11,
      SIGPIPE: 13,
      SIGTERM: 15,
    } as Record<string, number>
  )[s];
  return n ?? 0;
}
