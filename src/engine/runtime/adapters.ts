/**
 * The OCI runtimes behind one interface. crun and runc take the same subcommands; they differ in how
 * global flags are spelled. Every command is started through the Host, which adds the private mount
 * namespace prefix when the hybrid-cgroup workaround is on.
 */
import { type ExecResult, exec, firstLine } from "./exec.js";
import type { PrivateMountNamespace } from "./mountns.js";

export type RuntimeName = "crun" | "runc";

/** Where helper commands run: the host's mount namespace, or the engine's private one. */
export class Host {
  constructor(private ns?: PrivateMountNamespace) {}

  get namespace(): PrivateMountNamespace | undefined {
    return this.ns;
  }

  /** argv for `file args` in the right mount namespace; `wd` is the working directory in there */
  command(file: string, args: readonly string[], wd?: string): { file: string; args: string[] } {
    if (!this.ns) return { file, args: [...args] };
    const p = this.ns.prefix(wd);
    return { file: p[0]!, args: [...p.slice(1), file, ...args] };
  }

  exec(
    file: string,
    args: readonly string[],
    opts: { wd?: string; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const c = this.command(file, args, opts.wd);
    return exec(c.file, c.args, { cwd: this.ns ? undefined : opts.wd, timeoutMs: opts.timeoutMs ?? 30_000 });
  }
}

export interface RunCommandOptions {
  bundle: string;
  id: string;
  pidFile: string;
  logFile: string;
}

/** One OCI runtime binary (crun or runc) with its own state folder. */
export interface ContainerRuntime {
  readonly name: RuntimeName;
  readonly binary: string;
  readonly version: string;
  /** the runtime's --root: container state of this engine only */
  readonly stateDir: string;
  readonly host: Host;
  /**
   * argv (binary first) that creates, starts and waits for a container in the foreground (`run`),
   * removing it when it exits. Start it through `host.command` (or inside a command that is).
   */
  runArgv(o: RunCommandOptions): string[];
  /** signal ("TERM", "KILL", "INT", "9", ...) the container's init, or every process of it with `all` */
  kill(id: string, signal: string, all?: boolean): Promise<ExecResult>;
  /** remove a container (and its cgroup); `force` kills it first */
  delete(id: string, force?: boolean): Promise<ExecResult>;
  /** ids of the containers in stateDir */
  list(): Promise<string[]>;
}

abstract class OciRuntime implements ContainerRuntime {
  abstract readonly name: RuntimeName;
  constructor(
    readonly binary: string,
    readonly version: string,
    readonly stateDir: string,
    readonly host: Host,
  ) {}

  protected abstract globals(logFile?: string): string[];

  runArgv(o: RunCommandOptions): string[] {
    return [
      this.binary,
      ...this.globals(o.logFile),
      "run",
      "--bundle",
      o.bundle,
      "--pid-file",
      o.pidFile,
      o.id,
    ];
  }

  kill(id: string, signal: string, all = false): Promise<ExecResult> {
    return this.host.exec(this.binary, [...this.globals(), "kill", ...(all ? ["--all"] : []), id, signal]);
  }

  delete(id: string, force = false): Promise<ExecResult> {
    return this.host.exec(this.binary, [...this.globals(), "delete", ...(force ? ["--force"] : []), id]);
  }

  async list(): Promise<string[]> {
    const r = await this.host.exec(this.binary, [...this.globals(), "list", "--quiet"]);
    if (r.code !== 0) throw new Error(`${this.name} list failed: ${firstLine(r.stderr)}`);
    return r.stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
  }
}

export class CrunRuntime extends OciRuntime {
  readonly name = "crun" as const;
  protected globals(logFile?: string): string[] {
    const g = [`--root=${this.stateDir}`, "--cgroup-manager=cgroupfs"];
    if (logFile) g.push(`--log=file:${logFile}`, "--log-format=json");
    return g;
  }
}

export class RuncRuntime extends OciRuntime {
  readonly name = "runc" as const;
  protected globals(logFile?: string): string[] {
    const g = ["--root", this.stateDir];
    if (logFile) g.push("--log", logFile, "--log-format", "json");
    return g;
  }
}

/** Parses the runtime's JSON log (one object a line) and returns its error messages. */
export function runtimeErrors(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const o = JSON.parse(line) as { level?: string; msg?: string };
      if (o.level === "error" || o.level === "fatal") out.push(String(o.msg ?? ""));
    } catch {
      out.push(line.trim());
    }
  }
  return out;
}

/** "SIGINT", "int", "2" -> "INT" / "2"; anything else (or nothing) -> "TERM". */
export function stopSignal(s: string | undefined): string {
  const v = (s ?? "").trim().toUpperCase().replace(/^SIG/, "");
  return /^([A-Z][A-Z0-9+-]*|[0-9]{1,2})$/.test(v) ? v : "TERM";
}
