/**
 * The engine's private mount namespace and the helper that lives in it.
 *
 * crun refuses to run when /sys/fs/cgroup/unified (cgroup2) holds controllers next to the v1
 * hierarchies ("cgroups in hybrid mode not supported"). Hiding that mount in a private mount namespace
 * makes crun see plain v1, which works. We create that namespace once: a tiny helper process
 * (`unshare -m`, one `umount`, then a `sh` loop) lives in it for as long as the engine does, and every
 * runtime command is started through `nsenter --mount=/proc/<helper>/ns/mnt`, which costs one exec, not
 * an extra umount per run.
 *
 * The same helper mounts and unmounts the runs' overlay root file systems on request (one line per
 * argument on its stdin, one answer line on its stdout): a run's overlay exists only in this
 * namespace, never in the host's mount table, and costs one fork of the helper's (static busybox)
 * `mount` instead of a new namespace + `sh` + `mount` exec chain per run. The runtime, started in this
 * namespace, bind-mounts the overlay into the container's own namespace.
 *
 * The helper reads its stdin, a pipe from this process: when the engine exits or dies, the pipe closes,
 * the helper exits, and the namespace (with any overlay still mounted in it) is freed by the kernel once
 * the last process in it (a runtime still waiting for its container) is gone. Nothing of it shows in the
 * host's mount table.
 *
 * Limit: the namespace is a copy of the host's mounts when the engine starts (private propagation).
 * A bind-mount source must be on a file system that was mounted before that (plain folders on the
 * engine's disk are; a file system mounted on the host later is not visible to the containers).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import type { Socket } from "node:net";

export interface NamespaceOptions {
  unshare?: string;
  /** mounts to unmount in the namespace; default the cgroup2 mount that makes crun refuse hybrid hosts */
  hide?: string[];
  /** a static busybox for the helper's `sh`, `mount` and `umount` (no dynamic loading per mount) */
  busybox?: string;
  /**
   * a file the helper reuses for mount's and umount's error output (truncated, not created, per
   * request: a new file per run would cost an inode allocation); default a file in /dev/shm
   */
  errorFile?: string;
}

/** Thrown when the helper cannot mount or unmount; `message` is what mount/umount said. */
export class MountError extends Error {}

interface Helper {
  child: ChildProcess;
  /** answers awaited, in the order the requests were written (the helper answers in order) */
  pending: ((answer: string | undefined) => void)[];
}

export class PrivateMountNamespace {
  private restarting: Promise<void> | undefined;

  private constructor(
    private helper: Helper,
    private readonly opts: NamespaceOptions,
  ) {}

  /** Starts the helper; rejects with the helper's error output when the namespace cannot be made. */
  static async create(opts: NamespaceOptions = {}): Promise<PrivateMountNamespace> {
    return new PrivateMountNamespace(await startHelper(opts), opts);
  }

  get pid(): number {
    return this.helper.child.pid!;
  }

  get alive(): boolean {
    return this.helper.child.exitCode === null && this.helper.child.signalCode === null;
  }

  /** the mounts hidden in this namespace */
  get hidden(): string[] {
    return this.opts.hide ?? DEFAULT_HIDE;
  }

  /** Starts a new helper (a new namespace) if the old one is gone, e.g. killed by someone. */
  async ensure(): Promise<void> {
    if (this.alive) return;
    this.restarting ??= startHelper(this.opts)
      .then((h) => {
        this.helper = h;
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

  /**
   * Mounts an overlay (`options` as for `mount -o`, paths in it relative to `wd` or absolute) at
   * `target` in this namespace. Throws MountError with mount's message.
   */
  async mountOverlay(options: string, target: string, wd: string): Promise<void> {
    const answer = await this.request(["mount", options, target, wd]);
    if (answer !== "ok") throw new MountError(`mount overlay: ${failure(answer)}`);
  }

  /** Unmounts `target` in this namespace (lazily if busy); a target that is not mounted is fine. */
  async unmount(target: string): Promise<void> {
    const answer = await this.request(["umount", "", target, "/"]);
    if (answer === "ok") return;
    const msg = failure(answer);
    if (!/not mounted|no mount point|not found|invalid argument/i.test(msg))
      throw new MountError(`umount ${target}: ${msg}`);
  }

  private request(lines: string[]): Promise<string> {
    for (const l of lines)
      if (l.includes("\n") || l.includes("\0"))
        return Promise.reject(
          new MountError(`a path with a newline cannot be mounted: ${JSON.stringify(l)}`),
        );
    const h = this.helper;
    if (!this.alive || !h.child.stdin?.writable)
      return Promise.reject(new MountError("the mount namespace helper is gone"));
    return new Promise<string>((resolve, reject) => {
      if (h.pending.length === 0) (h.child.stdout as unknown as Socket).ref();
      h.pending.push((answer) => {
        if (h.pending.length === 0) (h.child.stdout as unknown as Socket).unref();
        if (answer === undefined) reject(new MountError("the mount namespace helper ended"));
        else resolve(answer);
      });
      h.child.stdin!.write(`${lines.join("\n")}\n`);
    });
  }

  close(): void {
    this.helper.child.stdin?.end();
    if (this.alive) this.helper.child.kill("SIGTERM");
  }
}

const DEFAULT_HIDE = ["/sys/fs/cgroup/unified"];
let helpers = 0;

/** "fail <first line of the command's error output>" -> that line */
function failure(answer: string): string {
  return answer.replace(/^fail ?/, "").trim() || "failed";
}

/**
 * The helper: hides `hide`, says "ready", then serves requests of four lines each (op, mount
 * options, target, working directory) with one answer line ("ok", or "fail " and the first line of
 * the command's error output), until its stdin closes. Its only forks are the mount and umount
 * commands themselves.
 */
export function helperScript(hide: readonly string[], errorFile: string, busybox?: string): string {
  const bb = busybox ? `${shellQuote(busybox)} ` : "";
  const umount = `${bb}umount -n`;
  const e = shellQuote(errorFile);
  const fail = `{ m=; IFS= read -r m <${e}; echo "fail $m"; }`;
  return [
    ...hide.map((p) => `${umount} ${shellQuote(p)} || exit 1`),
    "echo ready",
    "while IFS= read -r op && IFS= read -r o && IFS= read -r t && IFS= read -r wd; do",
    '  case "$op" in',
    `  mount) if cd "$wd" 2>${e} && ${bb}mount -n -t overlay overlay -o "$o" "$t" 2>${e}; then echo ok; else ${fail}; fi; cd / ;;`,
    `  umount) if ${umount} "$t" 2>${e} || ${umount} -l "$t" 2>${e}; then echo ok; else ${fail}; fi ;;`,
    '  *) echo "fail unknown request $op" ;;',
    "  esac",
    "done",
  ].join("\n");
}

async function startHelper(opts: NamespaceOptions): Promise<Helper> {
  const hide = opts.hide ?? DEFAULT_HIDE;
  const sh = opts.busybox ? [opts.busybox, "sh"] : ["sh"];
  const errorFile = opts.errorFile ?? `/dev/shm/scar-mount-helper-${process.pid}-${++helpers}.err`;
  const child = spawn(
    opts.unshare ?? "unshare",
    ["-m", "--propagation", "private", ...sh, "-c", helperScript(hide, errorFile, opts.busybox)],
    { stdio: ["pipe", "pipe", "pipe"], cwd: "/" },
  );
  const helper: Helper = { child, pending: [] };
  let err = "";
  const onErr = (d: string) => {
    err += d;
  };
  child.stderr!.setEncoding("utf8").on("data", onErr);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    const onExit = (code: number | null) =>
      reject(
        new Error(`cannot create a private mount namespace (exit ${code}): ${err.trim() || out.trim()}`),
      );
    const onData = (d: string) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      if (out.slice(0, nl) !== "ready") return onExit(null);
      child.off("exit", onExit);
      child.stdout!.off("data", onData);
      resolve();
    };
    child.once("error", reject);
    child.once("exit", onExit);
    child.stdout!.setEncoding("utf8").on("data", onData);
  });
  child.stderr!.off("data", onErr).resume();
  // answers, one line each, in request order
  let buf = "";
  child.stdout!.on("data", (d: string) => {
    buf += d;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      helper.pending.shift()?.(line);
    }
  });
  child.once("exit", () => {
    for (const p of helper.pending.splice(0)) p(undefined);
    rmSync(errorFile, { force: true });
  });
  // The helper must not keep the engine's event loop alive (requests ref its stdout while they wait).
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as Socket | null)?.unref?.();
  child.stdin!.on("error", () => {
    // the helper is gone; its exit answers what is pending
  });
  return helper;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
