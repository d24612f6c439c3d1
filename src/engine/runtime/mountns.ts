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
 * The same helper mounts and unmounts the runs' overlay root file systems (one line per
 * argument on its stdin, one answer line on its stdout): a run's overlay exists only in this
 * namespace, never in the host's mount table, and costs one fork of the helper's (static busybox)
 * `mount` instead of a new namespace + `sh` + `mount` exec chain per run. The runtime, started in this
 * namespace, bind-mounts the overlay into the container's own namespace.
 *
 * The helper also starts the runtime itself (`start`): a fork of a 2 MB shell instead of a fork of
 * the engine (Node forks to spawn; with the engine's ~150 MB resident that costs ~4.5 ms of the main
 * thread per run, measured in the engine bench) and no `nsenter` exec. The runtime's stdout and
 * stderr go to two FIFOs in the run's folder, which this process reads as sockets; the exit status
 * comes back as a tagged line ("exit <id> <status>") whenever the run ends, between the in-order
 * answers.
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
import { constants, mkdtempSync, open, readlinkSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RootlessMode, writeIdMaps } from "./rootless.js";

export interface NamespaceOptions {
  unshare?: string;
  /** mounts to unmount in the namespace; default the cgroup2 mount that makes crun refuse hybrid hosts */
  hide?: string[];
  /** a static busybox for the helper's `sh`, `mount` and `umount` (no dynamic loading per mount) */
  busybox?: string;
  /**
   * a file the helper reuses for mount's and umount's error output (truncated, not created, per
   * request: a new file per run would cost an inode allocation), in a folder only root can write to
   * (the shell's `2>` follows a symlink another user could plant in /tmp or /dev/shm); default a
   * file in a private folder of its own (mkdtemp, 0700), removed when the helper ends
   */
  errorFile?: string;
  /**
   * rootless (rootless.ts): the namespace is also a user namespace of this user, whose id maps this
   * process writes before the helper starts; mounts are then hidden under an empty tmpfs (a mount
   * inherited from the host is locked in there: it cannot be unmounted)
   */
  userns?: RootlessMode;
  /**
   * on cgroup v2: the engine's delegated cgroup (cgroup2.ts), bound over /sys/fs/cgroup in the
   * namespace, so that the runtimes (which enable controllers in every cgroup from the root down to a
   * container's) see it as the root and write nothing above it: no `+hugetlb` in systemd's
   * system.slice, and a rootless runtime finds its whole path writable. Containers' cgroup paths
   * are then given relative to it (spec.ts).
   */
  cgroupRoot?: string;
  /**
   * rootless: the fuse-overlayfs binary for `prepareRun(..., { fuse: true })` (runs' overlays where
   * the kernel refuses overlay in a user namespace)
   */
  fuseOverlayfs?: string;
}

/** Thrown when the helper cannot mount or unmount; `message` is what mount/umount said. */
export class MountError extends Error {}

interface Helper {
  child: ChildProcess;
  /** answers awaited, in the order the requests were written (the helper answers in order) */
  pending: ((answer: string | undefined) => void)[];
  /**
   * background work by tag ("exit <id>", "done <id>"): called with the rest of its tagged line
   * (undefined: the helper ended first)
   */
  tagged: Map<string, (rest: string | undefined) => void>;
}

/** A command started by the helper (see PrivateMountNamespace.start). */
export interface Started {
  /** the command's stdout and stderr (the FIFOs, opened for reading) */
  stdout: Socket;
  stderr: Socket;
  /**
   * with `stdin: true`: the command's stdin (the FIFO, opened for reading and writing, so that
   * neither side's open waits); ending it is the command's EOF
   */
  stdin?: Socket;
  /** the exit status as a shell gives it (128 + n when killed by signal n); undefined if the helper ended first */
  exited: Promise<number | undefined>;
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
    const p = ["nsenter"];
    // into the user namespace first (as its root: the engine's own ids, which it maps to 0; nsenter's
    // own switch to 0 would call setgroups, which a single mapping denies)
    if (this.opts.userns) p.push("--preserve-credentials", `--user=/proc/${this.pid}/ns/user`);
    p.push(`--mount=/proc/${this.pid}/ns/mnt`);
    if (wd) p.push(`--wd=${wd}`);
    p.push("--");
    return p;
  }

  /**
   * Prepares a run's folder `dir` in one request: the overlay (`options` as for `mount -o`, paths in
   * it relative to `wd` or absolute) at `dir/rootfs`, and the FIFOs `start` writes to (and, with
   * `stdin`, the one it reads from). Throws MountError with mount's message, and then nothing is mounted.
   */
  async prepareRun(options: string, dir: string, wd: string, stdin = false, fuse = false): Promise<void> {
    if (fuse && !this.opts.fuseOverlayfs) throw new MountError("fuse-overlayfs: not given to the helper");
    const op = fuse ? "fprepare" : "prepare";
    const answer = await this.request([stdin ? `${op}-stdin` : op, options, dir, wd]);
    if (answer !== "ok")
      throw new MountError(`${fuse ? "fuse-overlayfs" : "mount overlay"}: ${failure(answer)}`);
  }

  /**
   * Makes the two FIFOs (`stdout`, `stderr`) that `start` writes to, and with `stdin` the one it
   * reads from, in `dir` (runs without an overlay).
   */
  async makeFifos(dir: string, stdin = false): Promise<void> {
    const answer = await this.request([stdin ? "fifos-stdin" : "fifos", "", dir, "/"]);
    if (answer !== "ok") throw new MountError(`mkfifo in ${dir}: ${failure(answer)}`);
  }

  /**
   * Starts `argv` in this namespace, in the background, with stdin from /dev/null and stdout/stderr
   * into the FIFOs in `dir` (opened for reading here first, so that their writer's open never
   * waits). `id` ([A-Za-z0-9_-]) tags the exit status. With `stdin` (FIFOs made with `stdin`), its
   * stdin is the FIFO `dir/stdin`, which this process holds open for writing (`Started.stdin`): the
   * command reads EOF once this process closes it, or dies.
   */
  async start(id: string, argv: readonly string[], dir: string, stdin = false): Promise<Started> {
    checkId(id);
    const opened = await Promise.allSettled([
      openFifo(join(dir, "stdout")),
      openFifo(join(dir, "stderr")),
      ...(stdin ? [openFifo(join(dir, "stdin"), "write")] : []),
    ]);
    const socks = opened.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    const failed = opened.find((o) => o.status === "rejected");
    try {
      if (failed) throw failed.reason;
      const { finished } = await this.background("exit", id, [
        stdin ? "serve" : "start",
        argv.map(shellQuote).join(" "),
        dir,
        id,
      ]);
      return {
        stdout: socks[0]!,
        stderr: socks[1]!,
        ...(stdin ? { stdin: socks[2]! } : {}),
        exited: finished.then((rest) => (rest === undefined ? undefined : Number(rest))),
      };
    } catch (e) {
      for (const s of socks) s.destroy();
      throw e;
    }
  }

  /**
   * Ends a run's folder in the background: unmounts `dir/rootfs` when `mounted` (lazily if busy),
   * then deletes `dir`. Resolves when both are done; rejects with MountError when the unmount
   * failed, and then the folder stays (for the next sweep).
   */
  finishRun(id: string, dir: string, mounted: boolean): Promise<void> {
    return this.untilDone(id, ["finish", mounted ? "1" : "", dir, id], `umount ${dir}/rootfs`);
  }

  /** Deletes `path` (a folder with no mount in it) in the background; resolves when it is gone. */
  remove(id: string, path: string): Promise<void> {
    return this.untilDone(id, ["remove", "", path, id], `rm -rf ${path}`);
  }

  /**
   * Runs the shell command line `command` (quote its arguments with shellQuote) in this namespace, in
   * the background; resolves when it succeeded, rejects with MountError(`what: <first line of its
   * error output>`) when it failed. `errorFile` takes that output (a path of the caller's). In the
   * command, `${this.applet}` before a busybox applet's name runs it the cheap way.
   */
  shell(id: string, command: string, errorFile: string, what: string): Promise<void> {
    return this.untilDone(id, ["shell", command, errorFile, id], what);
  }

  /** what goes before an applet's name (mkdir, rm, cp, mount ...) in a `shell` command */
  get applet(): string {
    return this.opts.busybox ? APPLET : "";
  }

  /** `path` of this namespace as this process sees it (the namespace's mounts included) */
  view(path: string): string {
    return `/proc/${this.pid}/root${path}`;
  }

  /** Runs a request answered by "done <id> ok|fail <message>"; MountError(`what: message`) if it failed. */
  private async untilDone(id: string, lines: string[], what: string): Promise<void> {
    checkId(id);
    const { finished } = await this.background("done", id, lines);
    const rest = await finished;
    if (rest !== "ok") throw new MountError(`${what}: ${failure(rest ?? "fail the helper ended")}`);
  }

  /**
   * Sends a request whose work goes on in the background; resolves (once the helper took it) with a
   * promise of the rest of the line tagged `<word> <id>` that it prints when the work is done.
   */
  private async background(
    word: string,
    id: string,
    lines: string[],
  ): Promise<{ finished: Promise<string | undefined> }> {
    const h = this.helper;
    const tag = `${word} ${id}`;
    if (h.tagged.has(tag)) throw new MountError(`${tag} is already in progress`);
    const finished = new Promise<string | undefined>((resolve) => h.tagged.set(tag, resolve));
    // the helper's stdout keeps the event loop alive until the tagged line arrives
    (h.child.stdout as unknown as Socket).ref();
    const unref = () => {
      if (h.pending.length === 0 && h.tagged.size === 0) (h.child.stdout as unknown as Socket).unref();
    };
    void finished.then(unref);
    try {
      const answer = await this.request(lines);
      if (answer !== "ok") throw new MountError(`${lines[0]}: ${failure(answer)}`);
    } catch (e) {
      h.tagged.delete(tag);
      unref();
      throw e;
    }
    // (wrapped: an async function's promise of a promise would wait for the inner one)
    return { finished };
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
        if (h.pending.length === 0 && h.tagged.size === 0) (h.child.stdout as unknown as Socket).unref();
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
/** In the helper's shell: busybox's path before an applet, or nothing when its sh runs applets itself */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
const APPLET = '${B:+"$B"} ';

/** "fail <first line of the command's error output>" -> that line */
function failure(answer: string): string {
  return answer.replace(/^fail ?/, "").trim() || "failed";
}

/**
 * The helper: hides `hide`, says "ready", then serves requests of four lines each (op, mount
 * options or command, target folder, working directory or run id) with one answer line ("ok", or
 * "fail " and the first line of the command's error output), until its stdin closes. Its only forks
 * are the commands themselves (mount, umount, mkfifo, rm) and, for `start`, `finish`, `remove` and
 * `shell` (a command line of the engine's), one background subshell each, which does the work and then prints "exit <id> <status>" or
 * "done <id> ok|fail <message>". `jobs` (a builtin) frees finished background jobs' entries, which
 * busybox's shell would otherwise keep.
 */
export function helperScript(
  hide: readonly string[],
  errorFile: string,
  busybox?: string,
  cover = false,
  cgroupRoot?: string,
  fuseOverlayfs?: string,
): string {
  // With busybox's own sh, the applets go through $B: empty when that sh runs an applet named
  // without a path in a fork of itself, with no exec (its standalone mode, as Debian's static build
  // has: mkfifo, umount and rm then cost no exec, ~0.3 ms of CPU each; mount re-executes busybox
  // anyway); else busybox's path.
  const bb = busybox ? APPLET : "";
  const umount = `${bb}umount -n`;
  const e = shellQuote(errorFile);
  const fail = `{ m=; IFS= read -r m <${e}; echo "fail $m"; }`;
  // fuse-overlayfs's first line may be its noise about mount options: the first other line
  const ffail = `{ m=; while IFS= read -r m; do case "$m" in "unknown argument ignored"*) m= ;; *) break ;; esac; done <${e}; echo "fail $m"; }`;
  // ("$si": the request asked for a stdin FIFO too, see `serve`)
  const fifos = `${bb}mkfifo -m 600 "$t/stdout" "$t/stderr" \${si:+"$t/stdin"} 2>${e}`;
  return [
    // what the runtime makes for the container (mount points, /dev) must not inherit the engine's
    // private umask (077): a container whose user is not root could not reach its input
    "umask 022",
    ...(busybox
      ? [`if [ "$(command -v mkfifo)" = mkfifo ]; then B=; else B=${shellQuote(busybox)}; fi`]
      : []),
    ...hide.map((p) =>
      cover
        ? `${bb}mount -n -t tmpfs -o ro,size=4k,mode=755 scar-hidden ${shellQuote(p)} || exit 1`
        : `${umount} ${shellQuote(p)} || exit 1`,
    ),
    ...(cgroupRoot && cgroupRoot !== "/"
      ? [`${bb}mount -n -o bind ${shellQuote(`/sys/fs/cgroup${cgroupRoot}`)} /sys/fs/cgroup || exit 1`]
      : []),
    "echo ready",
    "while IFS= read -r op && IFS= read -r o && IFS= read -r t && IFS= read -r wd; do",
    // "prepare-stdin", "fifos-stdin": as without the suffix, with a third FIFO for `serve`'s stdin
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
    '  si=; case "$op" in *-stdin) si=1; op=${op%-stdin} ;; esac',
    '  case "$op" in',
    `  fifos) if ${fifos}; then echo ok; else ${fail}; fi ;;`,
    // if the FIFOs cannot be made, the overlay is unmounted again: a failed prepare leaves no mount
    `  prepare) if cd "$wd" 2>${e} && ${bb}mount -n -t overlay overlay -o "$o" "$t/rootfs" 2>${e}; then cd /; if ${fifos}; then echo ok; else ${fail}; ${umount} "$t/rootfs"; fi; else cd /; ${fail}; fi ;;`,
    // the same with fuse-overlayfs (rootless, where the kernel's overlay is refused): it daemonizes
    // once mounted; its one line of noise on success ("unknown argument ignored: lazytime") is dropped
    ...(fuseOverlayfs
      ? [
          `  fprepare) if cd "$wd" 2>${e} && ${shellQuote(fuseOverlayfs)} -o "$o" "$t/rootfs" 2>${e} </dev/null >/dev/null; then cd /; if ${fifos}; then echo ok; else ${fail}; ${umount} "$t/rootfs"; fi; else cd /; ${ffail}; fi ;;`,
        ]
      : []),
    `  start) jobs >/dev/null; ( eval "$o" </dev/null >"$t/stdout" 2>"$t/stderr"; echo "exit $wd $?" ) & echo ok ;;`,
    // as start, reading the stdin FIFO (held open for writing by the engine: this open does not wait)
    `  serve) jobs >/dev/null; ( eval "$o" <"$t/stdin" >"$t/stdout" 2>"$t/stderr"; echo "exit $wd $?" ) & echo ok ;;`,
    `  finish) jobs >/dev/null; ( if [ -z "$o" ] || ${umount} "$t/rootfs" 2>"$t/umount.err" || ${umount} -l "$t/rootfs" 2>"$t/umount.err"; then ${bb}rm -rf "$t"; echo "done $wd ok"; else m=; IFS= read -r m <"$t/umount.err"; echo "done $wd fail $m"; fi ) & echo ok ;;`,
    `  remove) jobs >/dev/null; ( ${bb}rm -rf "$t"; echo "done $wd ok" ) & echo ok ;;`,
    // a command line of the engine's (the run's disk: make, copy out, wipe), error output into $t
    `  shell) jobs >/dev/null; ( if eval "$o" 2>"$t"; then echo "done $wd ok"; else m=; IFS= read -r m <"$t"; echo "done $wd fail $m"; fi ) & echo ok ;;`,
    '  *) echo "fail unknown request $op" ;;',
    "  esac",
    "done",
  ].join("\n");
}

async function startHelper(opts: NamespaceOptions): Promise<Helper> {
  const hide = opts.hide ?? DEFAULT_HIDE;
  const sh = opts.busybox ? [opts.busybox, "sh"] : ["sh"];
  // Without a file of the caller's, one in a folder nobody else can plant a symlink in.
  const ownFolder = opts.errorFile ? undefined : mkdtempSync(join(tmpdir(), "scar-mount-helper-"));
  const errorFile = opts.errorFile ?? join(ownFolder!, "mount.err");
  const script = helperScript(
    hide,
    errorFile,
    opts.busybox,
    opts.userns !== undefined,
    opts.cgroupRoot,
    opts.fuseOverlayfs,
  );
  // Rootless: the helper waits for its id maps (one line from this process), then executes its shell
  // again, so that it holds its capabilities as the namespace's root (capabilities are reckoned at exec)
  const argv = opts.userns
    ? [
        "--user",
        "-m",
        "--propagation",
        "private",
        ...sh,
        "-c",
        'IFS= read -r go && [ "$go" = go ] && exec "$@"',
        "scar-userns",
        ...sh,
        "-c",
        script,
      ]
    : ["-m", "--propagation", "private", ...sh, "-c", script];
  const child = spawn(opts.unshare ?? "unshare", argv, { stdio: ["pipe", "pipe", "pipe"], cwd: "/" });
  // when it ends, also when it could not start ('error' without 'exit' when the spawn fails)
  const removeErrorFile = () => rmSync(ownFolder ?? errorFile, { recursive: true, force: true });
  child.once("exit", removeErrorFile);
  child.once("error", removeErrorFile);
  const helper: Helper = { child, pending: [], tagged: new Map() };
  let err = "";
  const onErr = (d: string) => {
    err += d;
  };
  child.stderr!.setEncoding("utf8").on("data", onErr);
  const mapped = opts.userns ? mapIds(child, opts.userns) : undefined;
  await new Promise<void>((resolve, reject) => {
    mapped?.catch((e: Error) => {
      child.kill("SIGKILL");
      reject(new Error(`cannot create a user namespace: ${e.message}`));
    });
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
      const m = /^(exit|done) (\S+) ?(.*)$/.exec(line);
      if (m) {
        // "<exit|done> <id> <rest>": background work ended (at any time, between in-order answers)
        const tag = `${m[1]} ${m[2]}`;
        const done = helper.tagged.get(tag);
        helper.tagged.delete(tag);
        done?.(m[3]);
      } else helper.pending.shift()?.(line);
    }
  });
  child.once("exit", () => {
    for (const p of helper.pending.splice(0)) p(undefined);
    for (const done of helper.tagged.values()) done(undefined);
    helper.tagged.clear();
  });
  // The helper must not keep the engine's event loop alive (requests ref its stdout while they wait).
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as Socket | null)?.unref?.();
  child.stdin!.on("error", () => {
    // the helper is gone; its exit answers what is pending
  });
  return helper;
}

/**
 * Writes the id maps of the helper's new user namespace, then lets it go on. `unshare` makes the
 * namespace before it executes the shell that waits for the line: wait until the child's user
 * namespace is not this process's own.
 */
async function mapIds(child: ChildProcess, mode: RootlessMode): Promise<void> {
  const own = readlinkSync("/proc/self/ns/user");
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
      throw new Error("unshare ended before its namespace was made");
    let ns: string | undefined;
    try {
      ns = readlinkSync(`/proc/${child.pid}/ns/user`);
    } catch {
      // not started yet
    }
    if (ns !== undefined && ns !== own) break;
    if (i > 2000) throw new Error("unshare made no user namespace within 10 s");
    await new Promise((r) => setTimeout(r, 5));
  }
  await writeIdMaps(child.pid, mode);
  child.stdin!.write("go\n");
}

/**
 * Runs `argv` as root of a new user namespace of this user, with the ids of `mode` mapped (no mount
 * namespace, no helper): what a rootless engine's user needs outside the engine to remove files it
 * gave to subordinate ids (engine/images' layers, see layer-owners.ts). Resolves with the exit code
 * and error output.
 */
export async function runInUserNamespace(
  mode: RootlessMode,
  argv: readonly string[],
  unshare = "unshare",
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(
    unshare,
    ["--user", "sh", "-c", 'IFS= read -r go && [ "$go" = go ] && exec "$@"', "scar-userns", ...argv],
    { stdio: ["pipe", "ignore", "pipe"], cwd: "/" },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => resolve(code));
  });
  try {
    await mapIds(child, mode);
  } catch (e) {
    child.kill("SIGKILL");
    await exited.catch(() => {});
    throw new Error(`cannot create a user namespace: ${(e as Error).message}`);
  }
  child.stdin!.end();
  return { code: await exited, stderr };
}

/**
 * Starts `argv` as root of a new user namespace of this user with the ids of `mode` mapped, as
 * runInUserNamespace does, but for a conversation: the child's stdin and stdout are pipes (its stdin
 * once the namespace's "go" line is written), its stderr ignored. Rejects when the namespace cannot
 * be made (the child is then gone).
 */
export async function spawnInUserNamespace(
  mode: RootlessMode,
  argv: readonly string[],
  unshare = "unshare",
): Promise<ChildProcess> {
  const child = spawn(
    unshare,
    ["--user", "sh", "-c", 'IFS= read -r go && [ "$go" = go ] && exec "$@"', "scar-userns", ...argv],
    { stdio: ["pipe", "pipe", "ignore"], cwd: "/" },
  );
  const failed = new Promise<never>((_, reject) => child.once("error", reject));
  failed.catch(() => {}); // an error after the start is the caller's (its pipes end)
  try {
    await Promise.race([mapIds(child, mode), failed]);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`cannot create a user namespace: ${(e as Error).message}`);
  }
  return child;
}

/**
 * Opens a FIFO for reading without waiting for its writer (O_NONBLOCK), as a socket: libuv waits
 * for data (no EOF before a writer has come and gone), and the socket ends when the last writer
 * closes. For writing: opened O_RDWR (an O_WRONLY open would wait for a reader, or fail with
 * O_NONBLOCK), used as a write-only socket; its reader sees EOF when this process closes it.
 */
function openFifo(path: string, mode: "read" | "write" = "read"): Promise<Socket> {
  const flags = (mode === "read" ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
  return new Promise((resolve, reject) =>
    open(path, flags, (err, fd) => {
      if (err) reject(new MountError(`open ${path}: ${err.message}`));
      else if (mode === "read") resolve(new Socket({ fd, readable: true, writable: false }));
      else resolve(new Socket({ fd, readable: false, writable: true }));
    }),
  );
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new MountError(`invalid request id ${JSON.stringify(id)}`);
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
