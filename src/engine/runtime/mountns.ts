/**
 * The hybrid-cgroup workaround, done once per engine instead of once per run.
 *
 * crun refuses to run when /sys/fs/cgroup/unified (cgroup2) holds controllers next to the v1
 * hierarchies ("cgroups in hybrid mode not supported"). Hiding that mount in a private mount namespace
 * makes crun see plain v1, which works. We create that namespace once: a tiny helper process
 * (`unshare -m` + one `umount` + `cat`) lives in it for as long as the engine does, and every crun command
 * (and a run's own overlay mount namespace, see rootfs.ts) is started through
 * `nsenter --mount=/proc/<helper>/ns/mnt`, which costs one exec, not an extra umount per run.
 *
 * The helper reads its stdin, a pipe from this process: when the engine exits or dies, the pipe closes,
 * the helper exits, and the namespace is freed by the kernel once the last container in it is gone.
 * Nothing of it shows in the host's mount table.
 *
 * Limit: the namespace is a copy of the host's mounts when the engine starts (private propagation).
 * A bind-mount source must be on a file system that was mounted before that (plain folders on the
 * engine's disk are; a file system mounted on the host later is not visible to the containers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";

export class PrivateMountNamespace {
  private restarting: Promise<void> | undefined;

  private constructor(
    private child: ChildProcess,
    private readonly hide: string[],
    private readonly unshare: string,
  ) {}

  /** Starts the helper; rejects with the helper's error output when the namespace cannot be made. */
  static async create(opts: { unshare?: string; hide?: string[] } = {}): Promise<PrivateMountNamespace> {
    const hide = opts.hide ?? ["/sys/fs/cgroup/unified"];
    const unshare = opts.unshare ?? "unshare";
    return new PrivateMountNamespace(await startHelper(unshare, hide), hide, unshare);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts a new helper (a new namespace) if the old one is gone, e.g. killed by someone. */
  async ensure(): Promise<void> {
    if (this.alive) return;
    this.restarting ??= startHelper(this.unshare, this.hide)
      .then((c) => {
        this.child = c;
      })
      .finally(() => {
        this.restarting = undefined;
      });
    await this.restarting;
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

async function startHelper(unshare: string, hide: string[]): Promise<ChildProcess> {
  const script = `${hide.map((p) => `umount ${shellQuote(p)}`).join(" && ")} && echo ready && exec cat >/dev/null`;
  const child = spawn(unshare, ["-m", "--propagation", "private", "sh", "-c", script], {
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
  return child;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
