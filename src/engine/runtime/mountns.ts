/**
 * The hybrid-cgroup workaround, done once per engine instead of once per run.
 *
 * crun refuses to run when /sys/fs/cgroup/unified (cgroup2) holds controllers next to the v1
 * hierarchies ("cgroups in hybrid mode not supported"). Hiding that mount in a private mount namespace
 * makes crun see plain v1, which works. We create that namespace once: a tiny helper process
 * (`unshare -m` + one `umount` + `cat`) lives in it for as long as the engine does, and every command that
 * must see the same mounts (crun, and the mount/umount of run root file systems) is started through
 * `nsenter --mount=/proc/<helper>/ns/mnt`, which costs one exec, not a namespace setup and an umount.
 *
 * The helper reads its stdin, a pipe from this process: when the engine exits or dies, the pipe closes,
 * the helper exits, and the namespace (with every overlay mount made in it) is freed by the kernel once
 * the last container in it is gone. Nothing of it shows in the host's mount table.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";

export class PrivateMountNamespace {
  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
  ) {}

  /** Starts the helper; rejects with the helper's error output when the namespace cannot be made. */
  static async create(opts: { unshare?: string; hide?: string[] } = {}): Promise<PrivateMountNamespace> {
    const hide = opts.hide ?? ["/sys/fs/cgroup/unified"];
    const script = `${hide.map((p) => `umount ${shellQuote(p)}`).join(" && ")} && echo ready && exec cat >/dev/null`;
    const child = spawn(opts.unshare ?? "unshare", ["-m", "--propagation", "private", "sh", "-c", script], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const onExit = (code: number | null) =>
        reject(
          new Error(`cannot create a private mount namespace (exit ${code}): ${err.trim() || out.trim()}`),
        );
      child.once("error", reject);
      child.once("exit", onExit);
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.includes("ready")) {
          child.off("exit", onExit);
          resolve();
        }
      });
    });
    // The helper must not keep the engine's event loop alive.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as Socket | null)?.unref?.();
    return new PrivateMountNamespace(child, child.pid!);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** argv prefix that runs a command inside the namespace */
  prefix(wd?: string): string[] {
    const p = ["nsenter", `--mount=/proc/${this.pid}/ns/mnt`];
    if (wd) p.push(`--wd=${wd}`);
    p.push("--");
    return p;
  }

  close(): void {
    this.child.stdin?.end();
    if (this.alive) this.child.kill("SIGTERM");
  }
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
