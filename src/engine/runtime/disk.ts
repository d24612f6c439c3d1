/**
 * The disk limit of a run: what one run may write to its root file system (the overlay's upper) and
 * to its output folders together. Each run gets a small ext4 file system of that size, a sparse image
 * file on a loop device, mounted in the engine's private mount namespace (mountns.ts): the overlay's
 * upper and work folders and the output folders live in it, so a write past the limit fails in the
 * container with ENOSPC, and the host's disk never takes more than the limit from one run.
 *
 * Why not a tmpfs: its pages are charged to the container's memory cgroup, so a 128 MiB function
 * writing 200 MiB would be OOM-killed instead of failing with a full disk, and its memory limit would
 * stop meaning memory. Why not project quotas: they need the data disk made with the quota feature
 * and quota tools; a loop file system needs only mkfs.ext4 and the loop driver.
 *
 * Making one costs ~100 ms (mkfs, loop set-up, mount), so disks are pooled by size: a finished run's
 * disk is wiped (`rm -rf` of its folders, which the run folder's deletion cost anyway) and reused, and
 * is mounted with `discard` so that deleted files give their blocks back to the host's disk. The pool
 * lives as long as the namespace's helper; a new helper (after a kill) starts a new pool.
 */
import { mkdir, readdir, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { type PrivateMountNamespace, shellQuote } from "./mountns.js";

export interface Disk {
  /** where it is mounted, in the helper's namespace */
  path: string;
  /** the limit asked for */
  limitBytes: number;
  /** the helper it belongs to (its pid): the disk is gone with it */
  helper: number;
}

/** ext4's own metadata takes ~3.5% of a small file system; the image is that much larger than the limit */
export function imageBytes(limitBytes: number): number {
  return Math.ceil((limitBytes + limitBytes / 25 + (4 << 20)) / 4096) * 4096;
}

/** The disk is full: less than 2 MiB (or 1%) left, or no inode left. What a write past the limit leaves. */
export function isFull(s: { bsize: number; blocks: number; bavail: number; ffree: number }): boolean {
  const left = s.bavail * s.bsize;
  return s.ffree === 0 || left < Math.max(2 << 20, (s.blocks * s.bsize) / 100);
}

export class DiskPool {
  private readonly free = new Map<number, Disk[]>();
  private seq = 0;
  /** disks being made ahead of need (prewarm) */
  private readonly warming = new Set<Promise<void>>();
  /** sizes a disk is being made of ahead of need, or soon will be (keepSpare) */
  private readonly refilling = new Set<number>();
  /**
   * after an acquire took the last free disk of its size, make another one of that size in the
   * background (a moment later, off the taker's path): the engine's environments keep their disks,
   * so without this every environment start after the first made one (75-250 ms under load)
   */
  keepSpare = false;

  constructor(
    private readonly ns: PrivateMountNamespace,
    /** folder of the image files and mount points (on the runner's state disk) */
    readonly dir: string,
    private readonly mkfs: string,
    /**
     * util-linux's mount, for `-o loop`: it takes a free loop device (creating one when all are
     * taken) and tries again when another mount took it first; busybox's mount fails both ways when
     * disks are made in parallel (seen with 12 at once: 5 "can't setup loop device")
     */
    private readonly mount: string,
  ) {}

  /**
   * Makes a disk of `limitBytes` in the background and puts it in the pool, so that the first run of
   * that size does not wait ~100 ms for mkfs and mount (the engine's default size, at start).
   */
  prewarm(limitBytes: number): void {
    const p: Promise<void> = this.make(limitBytes)
      .then((d) => this.putBack(d))
      .catch(() => {
        // the first run will try again and say why
      })
      .finally(() => this.warming.delete(p));
    this.warming.add(p);
  }

  /**
   * A disk of `limitBytes` with empty `upper`, `work` and `mounts/0` folders: a free one, or a new one.
   * (`<path>.err`, next to it, takes the error output of the helper's work on it.)
   */
  async acquire(limitBytes: number): Promise<Disk> {
    const list = this.free.get(limitBytes) ?? [];
    if (this.keepSpare) this.refill(limitBytes);
    for (let d = list.pop(); d; d = list.pop()) {
      if (d.helper === this.ns.pid) return d;
      // made by a helper that is gone (its namespace, and the mount with it)
      void rm(`${d.path}.img`, { force: true }).then(() => rm(d.path, { recursive: true, force: true }));
    }
    return this.make(limitBytes);
  }

  /** A disk of `limitBytes` made 250 ms from now when the pool will have none free and none is being made. */
  private refill(limitBytes: number): void {
    if ((this.free.get(limitBytes)?.length ?? 0) > 1 || this.refilling.has(limitBytes)) return;
    this.refilling.add(limitBytes);
    setTimeout(() => {
      if (!this.ns.alive) {
        this.refilling.delete(limitBytes);
        return;
      }
      this.prewarm(limitBytes);
      void this.settled().finally(() => this.refilling.delete(limitBytes));
    }, 250).unref();
  }

  private async make(limitBytes: number): Promise<Disk> {
    const name = `d${Date.now().toString(36)}${(++this.seq).toString(36)}`;
    const path = join(this.dir, name);
    const img = `${path}.img`;
    const a = this.ns.applet;
    const q = shellQuote;
    const command = [
      `${a}mkdir ${q(path)}`,
      `${a}truncate -s ${imageBytes(limitBytes)} ${q(img)}`,
      // no journal (the data is thrown away), lazy inode tables, no reserved blocks: a fast mkfs
      `${q(this.mkfs)} -q -F -O ^has_journal,^resize_inode -E nodiscard,lazy_itable_init=1 -m 0 ${q(img)} >/dev/null`,
      `${q(this.mount)} -n -o loop,discard,nosuid,nodev ${q(img)} ${q(path)}`,
      `${a}mkdir -p -m 755 ${q(`${path}/upper`)} ${q(`${path}/work`)} ${q(`${path}/mounts/0`)}`,
    ].join(" && ");
    const helper = this.ns.pid;
    try {
      await this.ns.shell(name, command, `${path}.err`, `make a ${limitBytes >> 20} MiB disk`);
    } catch (e) {
      await Promise.all([rm(img, { force: true }), rm(`${path}.err`, { force: true })]);
      throw e;
    }
    return { path, limitBytes, helper };
  }

  /** `dir` of the disk (e.g. "upper", "mounts/0") as this process sees it */
  view(d: Disk, ...parts: string[]): string {
    return this.ns.view(join(d.path, ...parts));
  }

  async full(d: Disk): Promise<boolean> {
    return isFull(await statfs(this.view(d)));
  }

  /** The folders of a run's disk-backed mounts (mounts/0, which every disk has, mounts/1 ...). */
  async mountFolders(d: Disk, n: number): Promise<string[]> {
    const dirs = Array.from({ length: n }, (_, i) => join(d.path, "mounts", String(i)));
    await Promise.all(dirs.slice(1).map((p) => mkdir(this.ns.view(p))));
    return dirs;
  }

  /** Copies the files of a disk folder into `dest` (a host folder), owners and modes kept, links not followed. */
  async copyOut(id: string, d: Disk, from: string, dest: string): Promise<void> {
    if ((await readdir(this.ns.view(from))).length === 0) return;
    const a = this.ns.applet;
    await this.ns.shell(
      id,
      `${a}cp -a ${shellQuote(`${from}/.`)} ${shellQuote(`${dest}/`)}`,
      `${d.path}.err`,
      `copy the outputs to ${dest}`,
    );
  }

  /** Empties a disk (its overlay unmounted) and puts it back in the pool; a disk that cannot be emptied is dropped. */
  async release(id: string, d: Disk): Promise<void> {
    if (d.helper !== this.ns.pid || !this.ns.alive) return;
    const a = this.ns.applet;
    const q = (n: string) => shellQuote(join(d.path, n));
    try {
      await this.ns.shell(
        id,
        `${a}rm -rf ${q("upper")} ${q("work")} ${q("mounts")} && ${a}mkdir -p -m 755 ${q("upper")} ${q("work")} ${q("mounts/0")}`,
        `${d.path}.err`,
        `empty the disk ${d.path}`,
      );
    } catch {
      return;
    }
    this.putBack(d);
  }

  private putBack(d: Disk): void {
    const list = this.free.get(d.limitBytes) ?? [];
    list.push(d);
    this.free.set(d.limitBytes, list);
  }

  /** Where the free disks (emptied, waiting for their next run) are mounted, in the helper's namespace. */
  freePaths(): string[] {
    return [...this.free.values()].flat().map((d) => d.path);
  }

  /** Resolves when the disks being made ahead of need are made. */
  async settled(): Promise<void> {
    await Promise.all(this.warming);
  }

  /** Forgets every disk (their helper is gone or going) and deletes the image files. */
  async clear(): Promise<void> {
    await this.settled();
    this.free.clear();
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.map((n) => rm(join(this.dir, n), { recursive: true, force: true })));
  }
}
