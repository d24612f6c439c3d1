/**
 * A container's bundle folder, prepared the same way for a run (runner.ts) and for a warm
 * environment (environment.ts): the folder, its root file system (an overlay over the image's
 * layers mounted by the private mount namespace's helper, with the FIFOs the helper starts the
 * runtime on; else a copy of the layers) and, when given, its config.json, written while the helper
 * mounts.
 *
 * The caller owns `state`: it says what exists (the overlay's mount point and the helper that
 * mounted it) also when preparing failed half way, so that the caller's cleanup undoes exactly that.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Disk } from "./disk.js";
import type { PrivateMountNamespace } from "./mountns.js";
import { MountError } from "./mountns.js";
import { copyLayers, OverlayError, overlayMount } from "./rootfs.js";

/** What the runner knows that preparing a bundle needs. */
export interface BundleHost {
  /** the private mount namespace (undefined: no helper, runs on a copy) */
  readonly namespace: PrivateMountNamespace | undefined;
  readonly rootfs: "overlay" | "copy";
  readonly overlayVolatile: boolean;
  /** the overlay is mounted with `userxattr` (rootless) */
  readonly overlayUserxattr: boolean;
  /** the overlay is fuse-overlayfs's (rootless, where the kernel's is refused) */
  readonly overlayFuse?: boolean;
}

/** What a prepared bundle holds; filled in as preparing goes. */
export interface BundleState {
  /** "overlay" until an overlay could not be mounted, then "copy" */
  kind: "overlay" | "copy";
  /** the overlay's mount point, once a mount was asked for (the caller's cleanup unmounts it) */
  mounted?: string;
  /** the helper (pid) in whose namespace the overlay is mounted */
  mountedBy?: number;
  /** the helper made the runtime's FIFOs with the overlay (else `start` has them made first) */
  fifos: boolean;
}

export interface BundleOptions {
  /** the bundle folder (made here; its parent must exist) */
  dir: string;
  layers: readonly string[];
  /** the container's disk: the overlay's upper and work folders live on it (disk.ts) */
  disk?: Disk;
  /** a third FIFO for the runtime's stdin (a warm environment's agent) */
  stdin?: boolean;
  /** the OCI spec, written as config.json while the overlay is mounted; else the caller writes it */
  config?: unknown;
}

/** Prepares `opts.dir`; throws what went wrong (then `state` says what to undo). */
export async function prepareBundle(
  host: BundleHost,
  state: BundleState,
  opts: BundleOptions,
): Promise<void> {
  const { dir, disk } = opts;
  const ns = host.namespace;
  const rootfs = join(dir, "rootfs");
  state.kind = host.rootfs;
  state.fifos = false;
  // Asynchronous file system calls: on a busy ext4 (the store fsyncs every upload) a mkdir can
  // wait milliseconds for the journal, which would stall the whole engine's event loop
  // (measured in the engine bench: ~4 ms of blocked main thread per run with mkdirSync).
  await mkdir(dir);
  let preparing: Promise<unknown> | undefined;
  if (state.kind === "overlay" && ns) {
    const upper = disk ? join(disk.path, "upper") : join(dir, "upper");
    const work = disk ? join(disk.path, "work") : join(dir, "work");
    await Promise.all(disk ? [mkdir(rootfs)] : [mkdir(rootfs), mkdir(upper), mkdir(work)]);
    // the upper's root is the container's /: 0755 whatever the engine's umask (077), or a container
    // whose user is not root could not even exec its command (on a disk, the helper creates it with
    // umask 022)
    if (!disk) await chmod(upper, 0o755);
    try {
      const m = overlayMount(
        opts.layers,
        { upper, work, merged: rootfs },
        host.overlayFuse
          ? { volatile: false, fuse: true }
          : { volatile: host.overlayVolatile, userxattr: host.overlayUserxattr },
      );
      // Mounted by the helper (with the FIFOs for the output), in the engine's private namespace
      // only, where the runtime runs, while this process writes the bundle; unmounted in cleanup.
      state.mounted = rootfs;
      state.mountedBy = ns.pid;
      preparing = ns.prepareRun(m.options, dir, m.wd, opts.stdin ?? false, host.overlayFuse ?? false).then(
        () => undefined,
        (e: unknown) => e,
      );
    } catch (e) {
      if (!(e instanceof OverlayError)) throw e;
      state.kind = "copy";
    }
  } else {
    state.kind = "copy";
    await mkdir(rootfs);
  }
  let written: unknown;
  if (opts.config !== undefined)
    written = await writeFile(join(dir, "config.json"), JSON.stringify(opts.config)).then(
      () => undefined,
      (e: unknown) => e ?? new Error("config.json not written"),
    );
  // (the mount's answer first, also when the write failed: `state` must say whether it is mounted)
  const prepareError = await preparing;
  if (prepareError !== undefined) {
    if (!(prepareError instanceof MountError)) throw prepareError;
    // overlayfs refused these layers (on a file system it cannot use?): a copy; a failed prepare
    // leaves nothing mounted
    state.kind = "copy";
    state.mounted = undefined;
    state.mountedBy = undefined;
  }
  if (written !== undefined) throw written;
  state.fifos = preparing !== undefined && prepareError === undefined;
  if (state.kind === "copy") await copyLayers(opts.layers, rootfs);
}
