/**
 * Safe unpacking of one image layer into its own directory, ready to be an overlayfs lower.
 *
 * The layer is applied "on top of" the layers below it without touching them: every path of the tar
 * is resolved in the merged view (this layer, then the lower layers top-down, honouring their
 * whiteouts), symlinks met on the way are followed *inside the image root* (an absolute or `..`-heavy
 * target can never leave it), a lower layer is looked into only below folders of its own (as overlayfs
 * does; the kernel would follow a lower's symlink that a higher folder hides out of the layer), and
 * what is written lands only in this layer's directory, whose own parents are real directories
 * created by us. So no entry can write outside the layer, whatever
 * symlinks earlier entries or earlier layers planted.
 *
 * Hostile input is refused: `..` in names, hard links to missing targets or directories, oversized
 * headers, truncated entries, names or link targets that are too long. Device nodes, FIFOs and other
 * special files are skipped (the runtime provides /dev). Whiteouts become overlayfs whiteouts (a 0/0
 * character device for `.wh.NAME`, `trusted.overlay.opaque=y` for `.wh..wh..opq`) when we are root;
 * unpacked by an ordinary user (a rootless engine, whose overlay is mounted with `userxattr` in a
 * user namespace, Linux 5.11 and later) the opaque marker is `user.overlay.opaque=y` (anyone may make
 * a 0/0 whiteout device since Linux 5.8). They are also listed in the result so a copying fallback
 * can apply them (see materialize()).
 *
 * Owners are kept only as root. An ordinary user's layers are all the user's (with a rootless engine's
 * single id mapping, root's in the container), and their setuid and setgid bits are dropped: such a
 * program could only ever run as the engine's user, so the bit gains a container nothing and would
 * let anyone who reaches the data folder run it as that user. What the tar said is recorded instead
 * (`UnpackResult.owners`: every entry not owned by 0:0), so that a rootless engine with subordinate
 * id ranges can give the files those owners later, from inside its user namespace, where they are
 * ids it maps (the engine's `layer-owners.ts`); the bits stay dropped there too.
 *
 * Because the result depends on the lower layers, unpacked layers are keyed by ChainID, not DiffID.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { decompressStream } from "./compression.js";
import { Digester } from "./digest.js";
import { ByteReader, readTar, type TarHeader, type TarLimits } from "./tar.js";

const execFileP = promisify(execFile);

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

export class UnsafeLayerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeLayerError";
  }
}

/** An entry's owner as the layer's tar gave it: path (relative, `/`-separated; "" is the root), uid, gid. */
export type LayerOwner = [path: string, uid: number, gid: number];

/** A layer already unpacked, as seen by the layers above it. */
export interface LowerLayer {
  /** its root directory (the overlay lower) */
  dir: string;
  /** paths (relative, `/`-separated) this layer whites out in the layers below it */
  whiteouts: string[];
  /** directories of this layer that hide the content of the layers below them ("" is the root) */
  opaque: string[];
  /** unpacked without owners: the owners its tar gave (not 0:0), for directories copied up from it */
  owners?: readonly LayerOwner[];
}

/** A lower layer's entry as a ForeignReader saw it (times in seconds since the epoch). */
export interface ForeignStat {
  kind: Node["kind"];
  target?: string;
  mode: number;
  mtime: number;
  atime: number;
}

/**
 * Reads the lower layers' entries this process may not reach: a rootless engine's layers whose
 * folders it gave to subordinate ids (layer-owners.ts) are closed to its user outside its user
 * namespace (a 0750 folder of uid 1000), so a layer unpacked later that writes under one asks, on
 * EACCES only, a reader that is root of that namespace (the engine's foreign-reader.ts).
 */
export interface ForeignReader {
  /** the entry at `path` (not following a last symlink); undefined when there is none */
  lstat(path: string): Promise<ForeignStat | undefined>;
  /** copies the file `src` into the new file `dst` (which this process may write) */
  copyFile(src: string, dst: string): Promise<void>;
}

export interface UnpackOptions extends TarLimits {
  /** the layers below, bottom to top */
  lowers?: LowerLayer[];
  /** for lower layers' entries this process may not read (EACCES): see ForeignReader */
  foreign?: ForeignReader;
  /** stop with an error past this many uncompressed bytes (a decompression bomb); default unlimited */
  maxBytes?: number;
  /**
   * write overlay whiteout devices and opaque xattrs: `true`/"trusted" (root's overlay), "user" (a
   * rootless overlay's `userxattr`), false; default "trusted" as root, "user" for an ordinary user on
   * Linux 5.11 and later, else none
   */
  overlayMarkers?: boolean | "trusted" | "user";
  /** keep file owners from the layer (default: when running as root) */
  preserveOwners?: boolean;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream */
  diffId: string;
  compression: string;
  /** uncompressed bytes read */
  size: number;
  entries: number;
  whiteouts: string[];
  opaque: string[];
  /** whether `dir` carries overlayfs whiteout devices and opaque xattrs */
  overlay: boolean;
  /** special files not created (devices, FIFOs, unknown types) */
  skipped: { path: string; type: string }[];
  /**
   * unpacked without owners (an ordinary user's unpack): the owners the tar gave, for every entry not
   * owned by 0:0, sorted by path; undefined when the owners were kept
   */
  owners?: LayerOwner[];
}

interface Node {
  kind: "dir" | "file" | "symlink" | "other";
  target?: string;
}

interface DirAttrs {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** Splits a tar name into clean components; refuses `..`. Leading `/` and `./` are dropped. */
export function cleanPath(name: string, what = "path"): string[] {
  if (name.includes("\0")) throw new UnsafeLayerError(`NUL byte in layer ${what}`);
  const parts = name.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) throw new UnsafeLayerError(`layer ${what} "${name}" leaves the root (..)`);
  for (const p of parts)
    if (Buffer.byteLength(p) > 255)
      throw new UnsafeLayerError(`layer ${what} component longer than 255 bytes`);
  return parts;
}

/** files up to this size are buffered and written in the background, several at a time */
const SMALL_FILE = 1 << 20;
const PARALLEL_WRITES = 16;

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** The markers a layer unpacked by this process carries by default (see UnpackOptions.overlayMarkers). */
export function defaultMarkers(): "trusted" | "user" | false {
  if (isRoot) return "trusted";
  const m = /^(\d+)\.(\d+)/.exec(release());
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return major > 5 || (major === 5 && minor >= 11) ? "user" : false;
}

const denied = (e: unknown) => (e as NodeJS.ErrnoException).code === "EACCES";

class LowerView {
  private readonly cache = new Map<string, Node | null>();
  /** what the foreign reader said of entries this process could not lstat */
  private readonly foreignStats = new Map<string, ForeignStat>();
  readonly whiteouts: Set<string>;
  readonly opaque: Set<string>;
  readonly owners: Map<string, [number, number]>;
  constructor(
    readonly layer: LowerLayer,
    private readonly foreign: ForeignReader | undefined,
  ) {
    this.whiteouts = new Set(layer.whiteouts);
    this.opaque = new Set(layer.opaque);
    this.owners = new Map((layer.owners ?? []).map(([p, u, g]) => [p, [u, g]]));
  }
  async get(path: string): Promise<Node | null> {
    let n = this.cache.get(path);
    if (n !== undefined) return n;
    n = null;
    // Only below a folder of this layer's own: below anything else (a symlink that a higher layer's
    // folder hides) overlayfs looks no further, and the kernel would follow the link out of the layer.
    const slash = path.lastIndexOf("/");
    if (slash > 0 && (await this.get(path.slice(0, slash)))?.kind !== "dir") {
      this.cache.set(path, null);
      return null;
    }
    const abs = join(this.layer.dir, path);
    try {
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) n = { kind: "dir" };
      else if (st.isSymbolicLink()) n = { kind: "symlink", target: fs.readlinkSync(abs) };
      else if (st.isFile()) n = { kind: "file" };
      else if (this.whiteouts.has(path)) n = null;
      else n = { kind: "other" };
    } catch (e) {
      if (denied(e) && this.foreign) {
        const st = await this.foreign.lstat(abs);
        if (st) this.foreignStats.set(path, st);
        if (!st || (st.kind === "other" && this.whiteouts.has(path))) n = null;
        else n = st.kind === "symlink" ? { kind: "symlink", target: st.target! } : { kind: st.kind };
      } else if (
        (e as NodeJS.ErrnoException).code !== "ENOENT" &&
        (e as NodeJS.ErrnoException).code !== "ENOTDIR"
      )
        throw e;
    }
    this.cache.set(path, n);
    return n;
  }
  /** mode and times of an entry get() found, read by this process or else by the foreign reader */
  async attrs(path: string): Promise<{ mode: number; mtime: number; atime: number }> {
    const known = this.foreignStats.get(path);
    if (known) return known;
    const abs = join(this.layer.dir, path);
    try {
      const st = fs.lstatSync(abs);
      return { mode: st.mode & 0o7777, mtime: st.mtimeMs / 1000, atime: st.atimeMs / 1000 };
    } catch (e) {
      const st = denied(e) ? await this.foreign?.lstat(abs) : undefined;
      if (!st) throw e;
      this.foreignStats.set(path, st);
      return st;
    }
  }
  /** copies the file at `path` to `dst`, a new file */
  async copyFile(path: string, dst: string): Promise<void> {
    const src = join(this.layer.dir, path);
    try {
      fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
    } catch (e) {
      if (!denied(e) || !this.foreign) throw e;
      await this.foreign.copyFile(src, dst);
    }
  }
}

function ancestors(path: string): string[] {
  const out = [""];
  let i = path.indexOf("/");
  while (i >= 0) {
    out.push(path.slice(0, i));
    i = path.indexOf("/", i + 1);
  }
  return out;
}

class LayerWriter {
  readonly nodes = new Map<string, Node>();
  readonly whiteouts = new Set<string>();
  readonly opaque = new Set<string>();
  readonly dirAttrs = new Map<string, DirAttrs>();
  readonly skipped: { path: string; type: string }[] = [];
  /** without owners: what the tar said of each entry not owned by 0:0 (directories: see dirAttrs) */
  readonly owned = new Map<string, [number, number]>();
  private readonly lowers: LowerView[];

  constructor(
    readonly root: string,
    lowers: LowerLayer[],
    readonly owners: boolean,
    foreign?: ForeignReader,
  ) {
    this.lowers = lowers.map((l) => new LowerView(l, foreign)).reverse(); // top-down
    this.nodes.set("", { kind: "dir" });
  }

  private hides(marks: { whiteouts: Set<string>; opaque: Set<string> }, path: string): boolean {
    for (const a of ancestors(path)) {
      if (marks.opaque.has(a)) return true;
      if (a !== "" && marks.whiteouts.has(a)) return true;
    }
    return marks.whiteouts.has(path);
  }

  /** What is at `path` in the merged view (this layer over the lowers), or undefined. */
  async lookup(path: string, ownToo = true): Promise<{ node: Node; lower?: LowerView } | undefined> {
    const own = ownToo ? this.nodes.get(path) : undefined;
    if (own) return { node: own };
    if (this.hides(this, path)) return undefined;
    for (const l of this.lowers) {
      const n = await l.get(path);
      if (n) return { node: n, lower: l };
      if (this.hides(l, path)) return undefined;
    }
    return undefined;
  }

  /** Resolves directory components in the merged view, following symlinks inside the root. */
  async resolveDirs(comps: string[]): Promise<string[]> {
    let out: string[] = [];
    const queue = [...comps];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        out.pop();
        continue;
      }
      const p = out.length === 0 ? c : `${out.join("/")}/${c}`;
      const found = await this.lookup(p);
      if (!found || found.node.kind === "dir") {
        out.push(c);
        continue;
      }
      if (found.node.kind === "symlink") {
        if (++hops > 255) throw new UnsafeLayerError(`too many levels of symbolic links at "${p}"`);
        const t = found.node.target!;
        if (t.startsWith("/")) out = [];
        queue.unshift(...t.split("/"));
        continue;
      }
      throw new UnsafeLayerError(`"${p}" is not a directory`);
    }
    return out;
  }

  private async lowerDirAttrs(path: string): Promise<DirAttrs | undefined> {
    for (const l of this.lowers) {
      const n = await l.get(path);
      if (n?.kind === "dir") {
        if (!this.owners) {
          // unpacked without owners, the lower's files are all the user's: its tar's owner is recorded
          const [uid, gid] = l.owners.get(path) ?? [0, 0];
          const { mode, mtime } = await l.attrs(path);
          return { mode, uid, gid, mtime };
        }
        const st = fs.statSync(join(l.layer.dir, path));
        return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtimeMs / 1000 };
      }
      if (n || this.hides(l, path)) return undefined;
    }
    return undefined;
  }

  /** Makes sure the directories exist in this layer (copying attributes up from the lowers). */
  async ensureDirs(comps: string[]): Promise<void> {
    let p = "";
    for (const c of comps) {
      p = p === "" ? c : `${p}/${c}`;
      const own = this.nodes.get(p);
      if (own?.kind === "dir") continue;
      if (own) await this.remove(p);
      const attrs = (await this.lowerDirAttrs(p)) ?? { mode: 0o755, uid: 0, gid: 0, mtime: 0 };
      const hiddenBelow = this.whiteouts.delete(p);
      fs.mkdirSync(join(this.root, p), { mode: 0o700 });
      this.nodes.set(p, { kind: "dir" });
      if (!this.dirAttrs.has(p)) this.dirAttrs.set(p, attrs);
      if (hiddenBelow) this.opaque.add(p);
    }
  }

  /** Removes whatever this layer has at `path` (recursively). */
  async remove(path: string): Promise<void> {
    const n = this.nodes.get(path);
    if (!n) return;
    await this.flush();
    fs.rmSync(join(this.root, path), { recursive: true, force: true });
    this.nodes.delete(path);
    this.owned.delete(path);
    if (n.kind === "dir") {
      const prefix = `${path}/`;
      for (const k of [...this.nodes.keys()]) if (k.startsWith(prefix)) this.nodes.delete(k);
      for (const k of [...this.owned.keys()]) if (k.startsWith(prefix)) this.owned.delete(k);
      for (const k of [...this.dirAttrs.keys()])
        if (k === path || k.startsWith(prefix)) this.dirAttrs.delete(k);
      for (const k of [...this.whiteouts]) if (k.startsWith(prefix)) this.whiteouts.delete(k);
      for (const k of [...this.opaque]) if (k === path || k.startsWith(prefix)) this.opaque.delete(k);
    }
  }

  /** Resolves a tar name to its place in this layer: parents resolved and created, last component kept. */
  async place(
    name: string,
    what = "path",
  ): Promise<{ path: string; parent: string[]; base: string } | undefined> {
    const comps = cleanPath(name, what);
    if (comps.length === 0) return undefined;
    const base = comps[comps.length - 1]!;
    const parent = await this.resolveDirs(comps.slice(0, -1));
    return { path: parent.length === 0 ? base : `${parent.join("/")}/${base}`, parent, base };
  }

  private setOwner(path: string, h: TarHeader): void {
    if (this.owners) fs.lchownSync(join(this.root, path), h.uid, h.gid);
    else this.record(path, h.uid, h.gid);
  }

  /** Without owners: remembers a non-directory entry's owner (directories' are in dirAttrs). */
  private record(path: string, uid: number, gid: number): void {
    if (uid !== 0 || gid !== 0) this.owned.set(path, [uid, gid]);
    else this.owned.delete(path);
  }

  /** Without owners: every entry's owner the tar gave that is not 0:0, sorted by path. */
  ownerList(): LayerOwner[] {
    const all = new Map(this.owned);
    for (const [p, a] of this.dirAttrs) if (a.uid !== 0 || a.gid !== 0) all.set(p, [a.uid, a.gid]);
    return [...all.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([p, [u, g]]) => [p, u, g]);
  }

  async apply(header: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    // without the owners, no setuid or setgid program (see the module doc)
    const h = !this.owners && header.type === "file" ? { ...header, mode: header.mode & ~0o6000 } : header;
    const comps = cleanPath(h.name);
    if (comps.length === 0) {
      if (h.type === "dir") this.dirAttrs.set("", { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      return;
    }
    const base = comps[comps.length - 1]!;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const parent = await this.resolveDirs(comps.slice(0, -1));
      await this.ensureDirs(parent);
      const pdir = parent.join("/");
      if (base === OPAQUE_MARKER) {
        this.opaque.add(pdir);
        return;
      }
      const target = base.slice(WHITEOUT_PREFIX.length);
      if (target === "" || target === "." || target === "..")
        throw new UnsafeLayerError(`bad whiteout "${h.name}"`);
      const wpath = pdir === "" ? target : `${pdir}/${target}`;
      const own = this.nodes.get(wpath);
      if (own) {
        // whiteouts only hide lower layers; an entry of this layer stays, but no longer merges with below
        if (own.kind === "dir") this.opaque.add(wpath);
        return;
      }
      // a whiteout of something the lower layers do not have is a no-op (and overlayfs would list it)
      if (await this.lookup(wpath, false)) this.whiteouts.add(wpath);
      return;
    }
    const placed = (await this.place(h.name))!;
    const { path } = placed;
    await this.ensureDirs(placed.parent);
    const abs = join(this.root, path);
    const own = this.nodes.get(path);
    const wasWhiteout = this.whiteouts.delete(path);

    if (h.type === "dir") {
      if (own && own.kind !== "dir") await this.remove(path);
      if (own?.kind !== "dir") {
        fs.mkdirSync(abs, { mode: 0o700 });
        this.nodes.set(path, { kind: "dir" });
      }
      if (wasWhiteout) this.opaque.add(path);
      this.dirAttrs.set(path, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      return;
    }
    if (own) await this.remove(path);

    switch (h.type) {
      case "file": {
        if (!this.owners) this.record(path, h.uid, h.gid);
        if (h.size <= SMALL_FILE) {
          const parts: Buffer[] = [];
          for await (const chunk of body) parts.push(Buffer.from(chunk));
          await this.writeLater(abs, parts, h);
          this.nodes.set(path, { kind: "file" });
          return;
        }
        const fd = fs.openSync(
          abs,
          fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
          0o600,
        );
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
          }
          if (this.owners) fs.fchownSync(fd, h.uid, h.gid);
          fs.fchmodSync(fd, h.mode);
          fs.futimesSync(fd, h.mtime, h.mtime);
        } finally {
          fs.closeSync(fd);
        }
        this.nodes.set(path, { kind: "file" });
        return;
      }
      case "symlink": {
        if (h.linkname === "") throw new UnsafeLayerError(`symlink "${h.name}" has an empty target`);
        fs.symlinkSync(h.linkname, abs);
        this.setOwner(path, h);
        fs.lutimesSync(abs, h.mtime, h.mtime);
        this.nodes.set(path, { kind: "symlink", target: h.linkname });
        return;
      }
      case "link": {
        const t = await this.place(h.linkname, "hard link target");
        if (!t) throw new UnsafeLayerError(`hard link "${h.name}" points at the root`);
        if (t.path === path) return;
        let tnode = this.nodes.get(t.path);
        if (!tnode) {
          const below = await this.lookup(t.path);
          if (!below) throw new UnsafeLayerError(`hard link "${h.name}" points at missing "${h.linkname}"`);
          if (below.node.kind === "dir")
            throw new UnsafeLayerError(`hard link "${h.name}" points at a directory`);
          if (!below.lower || below.node.kind === "other")
            throw new UnsafeLayerError(`hard link "${h.name}" points at a special file`);
          await this.ensureDirs(t.parent);
          await this.copyUp(below.lower, t.path, below.node);
          tnode = this.nodes.get(t.path)!;
        }
        if (tnode.kind === "dir") throw new UnsafeLayerError(`hard link "${h.name}" points at a directory`);
        if (tnode.kind === "other")
          throw new UnsafeLayerError(`hard link "${h.name}" points at a special file`);
        await this.flush(); // the target may still be being written in the background
        fs.linkSync(join(this.root, t.path), abs);
        this.nodes.set(path, { ...tnode });
        // one inode: the link's owner is its target's
        const to = this.owned.get(t.path);
        if (to) this.owned.set(path, [...to]);
        return;
      }
      default:
        // devices, FIFOs and unknown types are not created: the runtime provides /dev
        this.skipped.push({
          path,
          type: h.type === "other" ? `typeflag ${JSON.stringify(h.typeflag)}` : h.type,
        });
        return;
    }
  }

  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;

  /**
   * Writes a small file in the background (node's thread pool) so several files are created at once;
   * the path was resolved and checked already, its parent is a directory of ours. Anything that could
   * touch a pending path (removal, hard links, the end of the layer) waits for flush() first.
   */
  private async writeLater(abs: string, parts: Buffer[], h: TarHeader): Promise<void> {
    while (this.pending.size >= PARALLEL_WRITES) await Promise.race(this.pending);
    if (this.failure) throw this.failure;
    const owners = this.owners;
    const task = (async () => {
      const fh = await fsp.open(
        abs,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        if (parts.length > 0) await fh.writeFile(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        if (owners) await fh.chown(h.uid, h.gid);
        await fh.chmod(h.mode);
        await fh.utimes(h.mtime, h.mtime);
      } finally {
        await fh.close();
      }
    })()
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (this.failure) throw this.failure;
  }

  private async copyUp(lower: LowerView, path: string, node: Node): Promise<void> {
    const dst = join(this.root, path);
    if (this.owners) {
      // as root: every lower is readable, and the owners are the lower's files' own
      const src = join(lower.layer.dir, path);
      const st = fs.lstatSync(src);
      if (node.kind === "symlink") fs.symlinkSync(node.target!, dst);
      else fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
      fs.lchownSync(dst, st.uid, st.gid);
      if (node.kind !== "symlink") fs.chmodSync(dst, st.mode & 0o7777);
      fs.lutimesSync(dst, st.atime, st.mtime);
    } else {
      const st = await lower.attrs(path);
      if (node.kind === "symlink") fs.symlinkSync(node.target!, dst);
      else await lower.copyFile(path, dst);
      this.record(path, ...(lower.owners.get(path) ?? [0, 0]));
      if (node.kind !== "symlink") fs.chmodSync(dst, st.mode);
      fs.lutimesSync(dst, st.atime, st.mtime);
    }
    this.nodes.set(path, { ...node });
  }

  finishDirs(): void {
    const dirs = [...this.dirAttrs.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [p, a] of dirs) {
      const abs = p === "" ? this.root : join(this.root, p);
      if (this.owners) fs.chownSync(abs, a.uid, a.gid);
      fs.chmodSync(abs, a.mode);
      fs.utimesSync(abs, a.mtime, a.mtime);
    }
  }
}

async function runBatched(cmd: string, fixed: string[], paths: string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 500) {
    await execFileP(cmd, [...fixed, ...paths.slice(i, i + 500)]);
  }
}

/** Writes overlayfs whiteouts (0/0 char devices) and opaque markers (<flavour>.overlay.opaque=y). */
async function writeOverlayMarkers(
  root: string,
  whiteouts: string[],
  opaque: string[],
  flavour: "trusted" | "user",
): Promise<void> {
  if (whiteouts.length > 0) {
    await runBatched(
      "sh",
      ["-c", 'for p do mknod "$p" c 0 0 || exit 1; done', "sh"],
      whiteouts.map((w) => join(root, w)),
    );
  }
  if (opaque.length > 0) {
    try {
      await runBatched(
        "setfattr",
        ["-n", `${flavour}.overlay.opaque`, "-v", "y", "--"],
        opaque.map((o) => (o === "" ? root : join(root, o))),
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        throw new Error("setfattr not found: install the 'attr' package (scripts/install-deps.sh)");
      throw e;
    }
  }
}

/**
 * Unpacks a layer (gzip, zstd or plain tar) into `dest`, which must exist and be empty.
 * Returns the DiffID computed over the uncompressed stream; the caller compares it with the config.
 */
export async function unpackLayer(
  source: AsyncIterable<Buffer | Uint8Array>,
  dest: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  let compression = "none";
  const plain = await decompressStream(source, (c) => {
    compression = c;
  });
  const diff = new Digester();
  const max = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  const hashed = (async function* () {
    for await (const c of plain) {
      diff.update(c);
      if (diff.bytes > max)
        throw new UnsafeLayerError(`layer is larger than the limit of ${max} bytes uncompressed`);
      yield c;
    }
  })();
  const reader = new ByteReader(hashed);
  const w = new LayerWriter(dest, opts.lowers ?? [], opts.preserveOwners ?? isRoot, opts.foreign);
  let entries = 0;
  try {
    for await (const { header, body } of readTar(reader, opts)) {
      entries++;
      await w.apply(header, body);
    }
    await reader.drain(); // the digest covers the bytes after the end-of-archive marker too
  } finally {
    await w.flush().catch(() => {});
    await reader.close();
  }
  await w.flush();
  w.finishDirs();
  const hasLowers = (opts.lowers ?? []).length > 0;
  const whiteouts = [...w.whiteouts].sort();
  const opaque = [...w.opaque].sort();
  const asked = opts.overlayMarkers ?? defaultMarkers();
  const flavour = asked === true ? "trusted" : asked;
  const overlay = flavour !== false;
  if (flavour) await writeOverlayMarkers(dest, hasLowers ? whiteouts : [], hasLowers ? opaque : [], flavour);
  return {
    diffId: diff.digest(),
    compression,
    size: diff.bytes,
    entries,
    whiteouts,
    opaque,
    overlay,
    skipped: w.skipped,
    ...(w.owners ? {} : { owners: w.ownerList() }),
  };
}

/**
 * Flattens layers (bottom to top) into `dest` by copying, applying whiteouts and opaque directories:
 * the fallback where overlayfs cannot be used. Never follows a symlink inside `dest`.
 */
export function materialize(layers: LowerLayer[], dest: string): void {
  fs.mkdirSync(dest, { recursive: true });
  for (const layer of layers) {
    const wh = new Set(layer.whiteouts);
    for (const o of layer.opaque) {
      const d = o === "" ? dest : join(dest, o);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(d);
      } catch {}
      if (st?.isDirectory())
        for (const e of fs.readdirSync(d)) fs.rmSync(join(d, e), { recursive: true, force: true });
    }
    for (const w of layer.whiteouts) fs.rmSync(join(dest, w), { recursive: true, force: true });
    copyTree(layer.dir, dest, "", wh);
  }
}

function copyTree(srcRoot: string, dstRoot: string, rel: string, whiteouts: Set<string>): void {
  const srcDir = rel === "" ? srcRoot : join(srcRoot, rel);
  for (const name of fs.readdirSync(srcDir)) {
    const r = rel === "" ? name : `${rel}/${name}`;
    if (whiteouts.has(r)) continue;
    const src = join(srcRoot, r);
    const dst = join(dstRoot, r);
    const st = fs.lstatSync(src);
    let existing: fs.Stats | undefined;
    try {
      existing = fs.lstatSync(dst);
    } catch {}
    if (st.isDirectory()) {
      if (existing && !existing.isDirectory()) fs.rmSync(dst, { force: true });
      if (!existing?.isDirectory()) fs.mkdirSync(dst);
      copyTree(srcRoot, dstRoot, r, whiteouts);
      if (isRoot) fs.chownSync(dst, st.uid, st.gid);
      fs.chmodSync(dst, st.mode & 0o7777);
      fs.utimesSync(dst, st.atime, st.mtime);
      continue;
    }
    if (existing) fs.rmSync(dst, { recursive: true, force: true });
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (st.isFile()) fs.copyFileSync(src, dst, fs.constants.COPYFILE_FICLONE);
    else continue;
    if (isRoot) fs.lchownSync(dst, st.uid, st.gid);
    if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777);
    fs.lutimesSync(dst, st.atime, st.mtime);
  }
}
