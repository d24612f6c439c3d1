/**
 * The content-addressed image store, under `<dataDir>/images`:
 *
 *   blobs/sha256/<hex>          manifests, configs and layer blobs as downloaded, verified by digest
 *   layers/<chainhex>/fs/       one unpacked layer (an overlayfs lower), keyed by ChainID
 *   layers/<chainhex>/layer.json  its DiffID, whiteouts, opaque dirs, size (written last: marks it complete)
 *   images.json                 image records by manifest digest, and names (tags) pointing at them
 *   leases/<pid>-<id>.json      layers in use by a live process (prune leaves them alone)
 *   pins/<group>/<key>.json     a blob kept for reuse though no image may use it (scar's Lambda runtime
 *                               layer): prune keeps each group's most recently used one, `--all` not
 *   tmp/<pid>-<id>              work in progress; renamed into place when complete, so a crash leaves
 *                               only temp files, which prune removes
 *
 * Several processes (the engine and the CLI) may share a store: writes of content are atomic renames
 * of complete, verified files, and images.json is changed under a lock file.
 *
 * Unpacked layers keep their modes, setuid bits included (images rely on them inside a container):
 * the data folder, images/, layers/ and tmp/ are 0700, so no other host user can reach them.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ensurePrivateDir } from "../data-dir.js";
import { chainIds, checkDigest, Digester, DigestMismatchError, digestHex } from "./digest.js";
import { formatReference, parseReference } from "./reference.js";
import type { ImageConfigFile, Manifest, Platform } from "./types.js";
import {
  type ForeignReader,
  type LayerOwner,
  type LowerLayer,
  materialize,
  type UnpackResult,
  unpackLayer,
} from "./unpack.js";

export interface LayerRecord {
  /** digest of the blob as stored/distributed (compressed or not) */
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  chainId: string;
}

/** A manifest's layers with their DiffIDs (from the config, one a layer: the caller checks) and chain IDs. */
export function layerRecords(manifest: Manifest, diffIds: string[]): LayerRecord[] {
  const chains = chainIds(diffIds);
  return manifest.layers.map((l, i) => ({
    digest: l.digest,
    mediaType: l.mediaType,
    size: l.size,
    diffId: diffIds[i]!,
    chainId: chains[i]!,
  }));
}

export interface ImageRecord {
  /** digest of the image manifest */
  digest: string;
  mediaType: string;
  /** the image ID: digest of the config blob */
  configDigest: string;
  layers: LayerRecord[];
  platform: Platform;
  /** digest of the index (manifest list) the manifest was chosen from, if any */
  indexDigest?: string;
  /** `registry/repository` the blobs came from (enables cross-repository mounts when pushing) */
  source?: string;
  /** the image's creation time from its config */
  created?: string;
  /** when this store got it */
  added: string;
  /** canonical names (`docker.io/library/busybox:latest`) pointing at this image; filled in on read */
  names: string[];
}

export interface LayerMeta {
  chainId: string;
  diffId: string;
  parent?: string;
  size: number;
  whiteouts: string[];
  opaque: string[];
  overlay: boolean;
  skipped: { path: string; type: string }[];
  created: string;
  /**
   * unpacked by an ordinary user: the owners its tar gave (entries not owned by 0:0), its files being
   * all the user's; absent when unpacked as root (the files have them)
   */
  owners?: LayerOwner[];
  /**
   * the id maps (rootless.ts mappingKey) under which a rootless engine gave the files those owners,
   * inside its user namespace (engine/layer-owners.ts); absent while the files are all the user's
   */
  ownersMapped?: string;
}

export interface ContentStoreOptions {
  /**
   * removes a folder this process may not empty itself: a layer whose files a rootless engine gave to
   * subordinate ids (in its user namespace); without it such a removal fails with EACCES
   */
  removeForeign?: (path: string) => Promise<void>;
  /**
   * a reader, for one unpack, of the lower layers' entries this process may not read: those folders
   * a rootless engine gave to subordinate ids (ForeignReader); without it unpacking a layer that
   * writes under such a folder fails with EACCES. Closed after the unpack.
   */
  readForeign?: () => ForeignReader & { close(): Promise<void> };
}

interface IndexFile {
  version: 1;
  images: Record<string, Omit<ImageRecord, "names">>;
  names: Record<string, string>;
}

/** A pin's record (see ContentStore.writePin); the caller may keep more fields in it. */
export interface Pin {
  digest: string;
  /** what it is, for prune's report ("scar's Lambda runtime layer") */
  what: string;
}

/** What prune or rm left in place that it would otherwise have deleted. */
export interface Kept {
  /** images prune would have removed, whose layers a running container or warm environment uses */
  images: string[];
  /** unpacked layers no image uses any more, kept because one is still mounted (or being made) */
  layers: number;
  layerBytes: number;
  /** pinned blobs kept for reuse (see ContentStore.writePin) */
  pins: { group: string; what: string; digest: string; bytes: number }[];
}

export interface PruneResult {
  /** image digests removed */
  images: string[];
  blobs: number;
  layers: number;
  bytes: number;
  kept: Kept;
}

export class ImageNotFoundError extends Error {
  constructor(readonly ref: string) {
    super(`image "${ref}" is not in the local store`);
    this.name = "ImageNotFoundError";
  }
}

const pidAlive = (pid: number) => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a released lease stays in this process's lease file (see ContentStore.lease). */
const LEASE_LINGER_MS = 5000;

export class ContentStore {
  readonly root: string;
  private readonly inflightLayers = new Map<string, Promise<LayerMeta>>();
  /** This store's leases: how many holders each ChainID or digest has now. */
  private readonly held = new Map<string, number>();
  /** What this store's lease file lists for other processes: always every held name. */
  private listed = new Set<string>();
  private relist: NodeJS.Timeout | undefined;
  /** See indexForLookup() and config(). */
  private indexSeen: { stamp: string; idx: IndexFile } | undefined;
  private readonly configs = new Map<string, ImageConfigFile>();
  private indexWrites = 0;
  private readonly leaseFile = `${process.pid}-${randomBytes(6).toString("hex")}.json`;

  constructor(
    dataDir: string,
    private readonly opts: ContentStoreOptions = {},
  ) {
    this.root = join(dataDir, "images");
    // Unpacked layers keep their setuid programs (images need them inside); only the engine's user
    // may enter the folders that hold them: the data folder, and layers/ and tmp/ themselves.
    for (const d of [dataDir, this.root, join(this.root, "layers"), join(this.root, "tmp")])
      ensurePrivateDir(d);
    for (const d of ["blobs/sha256", "leases"])
      fs.mkdirSync(join(this.root, d), { recursive: true, mode: 0o700 });
  }

  // ---- temp space -------------------------------------------------------------------------------

  /** A fresh path under tmp/ (not created), named after this process so prune can tell it is alive. */
  tempPath(tag = "t"): string {
    return join(this.root, "tmp", `${process.pid}-${tag}-${randomBytes(6).toString("hex")}`);
  }

  // ---- blobs ----------------------------------------------------------------------------------------

  blobPath(digest: string): string {
    checkDigest(digest);
    return join(this.root, "blobs", digest.slice(0, digest.indexOf(":")), digestHex(digest));
  }

  hasBlob(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  blobSize(digest: string): number | undefined {
    try {
      return fs.statSync(this.blobPath(digest)).size;
    } catch {
      return undefined;
    }
  }

  readBlob(digest: string): Buffer {
    return fs.readFileSync(this.blobPath(digest));
  }

  /** Stores bytes whose digest is computed here (or checked against `expected`). Returns the digest. */
  putBlob(data: Buffer, expected?: string): string {
    const d = new Digester(expected ? expected.slice(0, expected.indexOf(":")) : "sha256");
    d.update(data);
    const digest = d.digest();
    if (expected && expected !== digest) throw new DigestMismatchError(expected, digest);
    const dest = this.blobPath(digest);
    if (!fs.existsSync(dest)) {
      fs.mkdirSync(join(dest, ".."), { recursive: true, mode: 0o700 });
      const tmp = this.tempPath("blob");
      fs.writeFileSync(tmp, data, { mode: 0o600 });
      fs.renameSync(tmp, dest);
    }
    return digest;
  }

  /**
   * Moves a complete temp file into the blob store after checking its digest (computed by the caller
   * while writing it). Returns the blob's path.
   */
  commitBlobFile(tmp: string, digest: string): string {
    const dest = this.blobPath(digest);
    fs.mkdirSync(join(dest, ".."), { recursive: true, mode: 0o700 });
    fs.renameSync(tmp, dest);
    return dest;
  }

  /** Writes a stream to the store, verifying it against `expected` when given. Returns the digest. */
  async ingest(source: AsyncIterable<Buffer | Uint8Array>, expected?: string): Promise<string> {
    const tmp = this.tempPath("blob");
    const d = new Digester(expected ? expected.slice(0, expected.indexOf(":")) : "sha256");
    const fh = await fsp.open(tmp, "w", 0o600);
    try {
      for await (const c of source) {
        const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
        d.update(b);
        await fh.write(b);
      }
    } catch (e) {
      await fh.close();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    await fh.close();
    const digest = d.digest();
    if (expected && digest !== expected) {
      fs.rmSync(tmp, { force: true });
      throw new DigestMismatchError(expected, digest);
    }
    if (this.hasBlob(digest)) fs.rmSync(tmp, { force: true });
    else this.commitBlobFile(tmp, digest);
    return digest;
  }

  // ---- unpacked layers ------------------------------------------------------------------------------

  layerPath(chainId: string): string {
    return join(this.root, "layers", digestHex(checkDigest(chainId)));
  }

  /** The overlay lower directory of an unpacked layer. */
  layerDir(chainId: string): string {
    return join(this.layerPath(chainId), "fs");
  }

  /** The ChainID of a folder layerDir() gave; undefined for any other folder (not this store's). */
  chainIdOfLayerDir(dir: string): string | undefined {
    const p = resolve(dir);
    const hex = basename(dirname(p));
    if (basename(p) !== "fs" || dirname(dirname(p)) !== join(this.root, "layers")) return undefined;
    return /^[a-f0-9]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
  }

  getLayer(chainId: string): LayerMeta | undefined {
    try {
      return JSON.parse(fs.readFileSync(join(this.layerPath(chainId), "layer.json"), "utf8")) as LayerMeta;
    } catch {
      return undefined;
    }
  }

  lowerOf(meta: LayerMeta): LowerLayer {
    return {
      dir: this.layerDir(meta.chainId),
      whiteouts: meta.whiteouts,
      opaque: meta.opaque,
      ...(meta.owners ? { owners: meta.owners } : {}),
    };
  }

  /**
   * Records that a layer's files now have the owners its tar gave, under the id maps `key` (see
   * LayerMeta.ownersMapped). layer.json is replaced atomically.
   */
  markOwnersMapped(chainId: string, key: string): void {
    const meta = this.getLayer(chainId);
    if (!meta) throw new Error(`layer ${chainId} is not unpacked`);
    const file = join(this.layerPath(chainId), "layer.json");
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString("hex")}`;
    fs.writeFileSync(tmp, `${JSON.stringify({ ...meta, ownersMapped: key })}\n`);
    fs.renameSync(tmp, file);
  }

  /** removeTree, then (for a layer given to subordinate ids) the removeForeign option's removal. */
  private async removeAll(p: string): Promise<void> {
    try {
      await removeTree(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== "EACCES" && code !== "EPERM") || !this.opts.removeForeign) throw e;
      await this.opts.removeForeign(p);
    }
  }

  /**
   * Unpacks layer `i` of a stack (the ones below must be unpacked already) from its blob, checking its
   * DiffID. Concurrent calls for the same ChainID share one unpack.
   */
  ensureLayer(layers: LayerRecord[], i: number, opts: { maxBytes?: number } = {}): Promise<LayerMeta> {
    const l = layers[i]!;
    const have = this.getLayer(l.chainId);
    if (have) return Promise.resolve(have);
    let p = this.inflightLayers.get(l.chainId);
    if (!p) {
      p = this.unpackInto(layers, i, opts).finally(() => this.inflightLayers.delete(l.chainId));
      this.inflightLayers.set(l.chainId, p);
    }
    return p;
  }

  private async unpackInto(
    layers: LayerRecord[],
    i: number,
    opts: { maxBytes?: number },
  ): Promise<LayerMeta> {
    const l = layers[i]!;
    const lowers: LowerLayer[] = [];
    for (let j = 0; j < i; j++) {
      const m = this.getLayer(layers[j]!.chainId);
      if (!m) throw new Error(`layer ${j} (${layers[j]!.chainId}) must be unpacked before layer ${i}`);
      lowers.push(this.lowerOf(m));
    }
    const tmp = this.tempPath("layer");
    fs.mkdirSync(tmp, { mode: 0o700 });
    fs.mkdirSync(join(tmp, "fs"));
    // the root of the image's file system (a "./" entry of the layer may set it): 0755 whatever the
    // umask, or a container whose user is not root could not enter its own / (copy fallback)
    fs.chmodSync(join(tmp, "fs"), 0o755);
    let r: UnpackResult;
    const foreign = i > 0 ? this.opts.readForeign?.() : undefined;
    try {
      const src = fs.createReadStream(this.blobPath(l.digest), { highWaterMark: 1 << 20 });
      r = await unpackLayer(src, join(tmp, "fs"), {
        lowers,
        maxBytes: opts.maxBytes,
        ...(foreign ? { foreign } : {}),
      });
      if (r.diffId !== l.diffId)
        throw new DigestMismatchError(l.diffId, r.diffId, `uncompressed layer ${l.digest}`);
    } catch (e) {
      await removeTree(tmp);
      throw e;
    } finally {
      await foreign?.close();
    }
    const meta: LayerMeta = {
      chainId: l.chainId,
      diffId: r.diffId,
      size: r.size,
      whiteouts: r.whiteouts,
      opaque: r.opaque,
      overlay: r.overlay,
      skipped: r.skipped,
      created: new Date().toISOString(),
      ...(r.owners ? { owners: r.owners } : {}),
    };
    if (i > 0) meta.parent = layers[i - 1]!.chainId;
    fs.writeFileSync(join(tmp, "layer.json"), `${JSON.stringify(meta)}\n`);
    try {
      fs.renameSync(tmp, this.layerPath(l.chainId));
    } catch (e) {
      // another process finished the same layer first
      await removeTree(tmp);
      const other = this.getLayer(l.chainId);
      if (!other) throw e;
      return other;
    }
    return meta;
  }

  // ---- image records --------------------------------------------------------------------------------

  private indexPath(): string {
    return join(this.root, "images.json");
  }

  private readIndex(): IndexFile {
    try {
      return JSON.parse(fs.readFileSync(this.indexPath(), "utf8")) as IndexFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, images: {}, names: {} };
      throw e;
    }
  }

  /** Changes whenever the index file does (see indexForLookup). */
  indexVersion(): string {
    this.indexForLookup();
    return `${this.indexWrites}:${this.indexSeen?.stamp ?? "none"}`;
  }

  /**
   * The index for lookups: parsed again only when the file changed (it is replaced whole, so its
   * inode changes with every write, by this process or another). Every job resolves its image, and
   * parsing the index, the image's config and its layers' metadata each time cost ~0.5 ms of the
   * engine's thread per job. Never handed to withLock, which changes the index it reads.
   */
  private indexForLookup(): IndexFile {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.indexPath());
    } catch {
      this.indexSeen = undefined;
      return this.readIndex();
    }
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (this.indexSeen?.stamp !== stamp) this.indexSeen = { stamp, idx: this.readIndex() };
    return this.indexSeen.idx;
  }

  private writeIndex(idx: IndexFile): void {
    const tmp = this.tempPath("index");
    fs.writeFileSync(tmp, `${JSON.stringify(idx, null, 1)}\n`);
    fs.renameSync(tmp, this.indexPath());
    // (another process's writes are seen by the file's identity; this one's need not be guessed)
    this.indexSeen = undefined;
    this.indexWrites++;
  }

  /** Runs fn while holding the store's lock file (held by one process at a time). */
  async withLock<T>(fn: (idx: IndexFile) => T | Promise<T>, write = true): Promise<T> {
    const lock = join(this.root, "images.lock");
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const holder = Number(fs.readFileSync(lock, "utf8").trim() || "0");
        if (holder > 0 && holder !== process.pid && !pidAlive(holder)) {
          fs.rmSync(lock, { force: true });
          continue;
        }
        if (attempt > 3000) throw new Error(`the image store is locked by process ${holder} (${lock})`);
        await sleep(10);
      }
    }
    try {
      const idx = this.readIndex();
      const out = await fn(idx);
      if (write) this.writeIndex(idx);
      return out;
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }

  private withNames(idx: IndexFile, rec: Omit<ImageRecord, "names">): ImageRecord {
    const names = Object.entries(idx.names)
      .filter(([, d]) => d === rec.digest)
      .map(([n]) => n)
      .sort();
    return { ...rec, names };
  }

  /** Adds (or updates) an image record and points the given names at it. */
  async putImage(rec: Omit<ImageRecord, "names">, names: string[]): Promise<ImageRecord> {
    return this.withLock((idx) => {
      const prev = idx.images[rec.digest];
      idx.images[rec.digest] = { ...rec, added: prev?.added ?? rec.added };
      for (const n of names) idx.names[n] = rec.digest;
      return this.withNames(idx, idx.images[rec.digest]!);
    });
  }

  list(): ImageRecord[] {
    const idx = this.readIndex();
    return Object.values(idx.images)
      .map((r) => this.withNames(idx, r))
      .sort((a, b) => b.added.localeCompare(a.added));
  }

  /**
   * Finds an image by name (`busybox`, `localhost:5000/x:1`), by `name@digest` (manifest or index
   * digest), by manifest digest, or by image ID (config digest, or a prefix of at least 4 hex digits).
   */
  find(ref: string): ImageRecord | undefined {
    return this.findIn(this.indexForLookup(), ref);
  }

  private findIn(idx: IndexFile, ref: string): ImageRecord | undefined {
    const all = Object.values(idx.images);
    const byDigest = (d: string) =>
      all.find((r) => r.digest === d || r.configDigest === d) ?? all.find((r) => r.indexDigest === d);
    if (/^sha256:[a-f0-9]{64}$/.test(ref)) {
      const r = byDigest(ref);
      return r && this.withNames(idx, r);
    }
    if (/^(sha256:)?[a-f0-9]{4,64}$/.test(ref)) {
      const hex = ref.replace(/^sha256:/, "");
      const hits = all.filter((r) => digestHex(r.configDigest).startsWith(hex));
      if (hits.length === 1) return this.withNames(idx, hits[0]!);
      if (hits.length > 1) throw new Error(`"${ref}" matches ${hits.length} images; give more digits`);
    }
    let parsed: ReturnType<typeof parseReference>;
    try {
      parsed = parseReference(ref);
    } catch {
      return undefined;
    }
    if (parsed.digest) {
      const r = byDigest(parsed.digest);
      return r && this.withNames(idx, r);
    }
    const d = idx.names[formatReference(parsed)];
    const r = d ? idx.images[d] : undefined;
    return r && this.withNames(idx, r);
  }

  /** The image's config (parsed once per digest: a blob never changes). Do not modify it. */
  config(rec: ImageRecord): ImageConfigFile {
    let cfg = this.configs.get(rec.configDigest);
    if (!cfg) {
      cfg = JSON.parse(this.readBlob(rec.configDigest).toString("utf8")) as ImageConfigFile;
      this.configs.set(rec.configDigest, cfg);
    }
    return cfg;
  }

  // ---- pins: blobs kept for reuse ------------------------------------------------------------------

  private pinPath(group: string, key: string): string {
    if (!/^[a-z0-9-]+$/.test(group) || !/^[A-Za-z0-9._-]+$/.test(key))
      throw new Error(`invalid pin ${JSON.stringify(`${group}/${key}`)}`);
    return join(this.root, "pins", group, `${key}.json`);
  }

  /**
   * Keeps `pin.digest`, a blob made to be reused (scar's Lambda runtime layer, costly to make again),
   * though no image may use it: prune and rm keep the most recently used pin of each group and its
   * blob (older ones are what an older build of scar made), `prune --all` removes them all.
   * `pin.what` names it in prune's report.
   */
  writePin<T extends Pin>(group: string, key: string, pin: T): void {
    const file = this.pinPath(group, key);
    fs.mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = this.tempPath("pin");
    fs.writeFileSync(tmp, JSON.stringify(pin));
    fs.renameSync(tmp, file);
  }

  /**
   * A pin written by writePin, marked as used now (prune keeps the most recently used one of its
   * group); undefined when there is none. Its blob may be gone (removed by `prune --all` or by hand):
   * the caller checks.
   */
  readPin<T extends Pin>(group: string, key: string): T | undefined {
    const file = this.pinPath(group, key);
    let pin: T;
    try {
      pin = JSON.parse(fs.readFileSync(file, "utf8")) as T;
    } catch {
      return undefined;
    }
    try {
      const now = new Date();
      fs.utimesSync(file, now, now);
    } catch {
      // removed meanwhile (prune --all): the caller finds its blob gone, or leases it first
    }
    return pin;
  }

  /** Per group, the pins newest first (by last use), with their files. */
  private pins(): { group: string; pins: { file: string; pin: Pin }[] }[] {
    const dir = join(this.root, "pins");
    const out: { group: string; pins: { file: string; pin: Pin }[] }[] = [];
    for (const group of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const pins: { file: string; pin: Pin; used: number }[] = [];
      for (const name of fs.readdirSync(join(dir, group))) {
        const file = join(dir, group, name);
        try {
          const pin = JSON.parse(fs.readFileSync(file, "utf8")) as Pin;
          checkDigest(pin.digest);
          pins.push({ file, pin, used: fs.statSync(file).mtimeMs });
        } catch {
          // half of one (it is written by rename: should not be) or not a pin: it keeps nothing
          pins.push({ file, pin: { digest: "", what: "" }, used: -1 });
        }
      }
      pins.sort((a, b) => b.used - a.used);
      out.push({ group, pins });
    }
    return out;
  }

  // ---- leases, removal, garbage collection ----------------------------------------------------------

  /**
   * Marks unpacked layers (by ChainID) and blobs (by digest) as in use until release(): prune and rm
   * keep them, across processes too. The runtime leases an image's layers while a container runs.
   *
   * Other processes learn of this store's leases from one file, leases/<pid>-<id>.json, which lists
   * a superset of what is held: it is rewritten when a lease adds a name, and trimmed to what is
   * still held LEASE_LINGER_MS after a release. A file per lease cost a create and an unlink on the
   * engine's thread per job, each waiting behind the disk's journal commits while jobs fsync.
   * This process's own prune and rm go by what is held now.
   */
  lease(chainIds: string[]): () => void {
    for (const c of chainIds) this.held.set(c, (this.held.get(c) ?? 0) + 1);
    if (chainIds.some((c) => !this.listed.has(c))) {
      this.listed = new Set([...this.listed, ...chainIds]);
      this.writeLeaseFile();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const c of chainIds) {
        const n = (this.held.get(c) ?? 1) - 1;
        if (n > 0) this.held.set(c, n);
        else this.held.delete(c);
      }
      this.relist ??= setTimeout(() => {
        this.relist = undefined;
        if (this.listed.size === this.held.size) return; // listed is a superset: nothing to trim
        this.listed = new Set(this.held.keys());
        try {
          this.writeLeaseFile();
        } catch {
          // the store's folder is gone or unwritable: the stale names only keep layers longer
        }
      }, LEASE_LINGER_MS).unref();
    };
  }

  /** Replaces this store's lease file at once (temp file + rename: a reader never sees half of it). */
  private writeLeaseFile(): void {
    const file = join(this.root, "leases", this.leaseFile);
    if (this.listed.size === 0) {
      fs.rmSync(file, { force: true });
      return;
    }
    const tmp = this.tempPath("lease");
    fs.writeFileSync(tmp, JSON.stringify([...this.listed]));
    fs.renameSync(tmp, file);
  }

  private leased(): Set<string> {
    const out = new Set<string>(this.held.keys());
    for (const name of fs.readdirSync(join(this.root, "leases"))) {
      if (name === this.leaseFile) continue;
      const pid = Number(name.split("-")[0]);
      const file = join(this.root, "leases", name);
      if (!pidAlive(pid)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      try {
        for (const c of JSON.parse(fs.readFileSync(file, "utf8")) as string[]) out.add(c);
      } catch {}
    }
    return out;
  }

  /** How many images use each blob and each unpacked layer (by digest / ChainID). */
  refcounts(): { blobs: Map<string, number>; layers: Map<string, number> } {
    return this.countRefs(this.readIndex());
  }

  private countRefs(idx: IndexFile) {
    const blobs = new Map<string, number>();
    const layers = new Map<string, number>();
    const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    for (const r of Object.values(idx.images)) {
      inc(blobs, r.digest);
      inc(blobs, r.configDigest);
      if (r.indexDigest) inc(blobs, r.indexDigest);
      for (const l of r.layers) {
        inc(blobs, l.digest);
        inc(layers, l.chainId);
      }
    }
    return { blobs, layers };
  }

  /**
   * Removes names; an image left without names is removed too, with the content no other image uses.
   * Returns the names untagged and the image digests deleted.
   */
  async remove(
    refs: string[],
    opts: { force?: boolean } = {},
  ): Promise<{ untagged: string[]; deleted: string[]; kept?: Kept }> {
    const untagged: string[] = [];
    const deleted: string[] = [];
    await this.withLock((idx) => {
      for (const ref of refs) {
        const rec = this.findIn(idx, ref);
        if (!rec) throw new ImageNotFoundError(ref);
        const namesOf = () => Object.keys(idx.names).filter((n) => idx.names[n] === rec.digest);
        const isTag = (n: string) => !n.includes("@");
        let byName = false;
        try {
          const n = formatReference(parseReference(ref));
          if (idx.names[n] === rec.digest) {
            delete idx.names[n];
            untagged.push(n);
            byName = true;
          }
        } catch {}
        if (!byName) {
          // by ID or manifest digest: all its names go, which needs force when it has several tags
          if (namesOf().filter(isTag).length > 1 && !opts.force)
            throw new Error(
              `image ${rec.configDigest.slice(7, 19)} has several names; remove them by name, or force`,
            );
          for (const n of namesOf()) {
            delete idx.names[n];
            untagged.push(n);
          }
        }
        // digest references (from pulls by digest) do not keep an image whose last tag was removed
        if (byName && isTag(untagged.at(-1)!) && !namesOf().some(isTag)) {
          for (const n of namesOf()) {
            delete idx.names[n];
            untagged.push(n);
          }
        }
        if (Object.values(idx.names).every((d) => d !== rec.digest)) {
          delete idx.images[rec.digest];
          deleted.push(rec.digest);
        }
      }
    });
    if (deleted.length === 0) return { untagged, deleted };
    const { kept } = await this.collect();
    return { untagged, deleted, kept };
  }

  /**
   * Prune: removes images without names (all images with `all`), then every blob and unpacked layer
   * no image uses and no live process leases, and temp files of dead processes.
   */
  async prune(opts: { all?: boolean } = {}): Promise<PruneResult> {
    const images: string[] = [];
    const inUse: string[] = [];
    await this.withLock((idx) => {
      const named = new Set(Object.values(idx.names));
      const leased = this.leased();
      for (const r of Object.values(idx.images)) {
        if (opts.all || !named.has(r.digest)) {
          if (r.layers.some((l) => leased.has(l.chainId))) {
            inUse.push(r.digest);
            continue;
          }
          delete idx.images[r.digest];
          images.push(r.digest);
          for (const [n, d] of Object.entries(idx.names)) if (d === r.digest) delete idx.names[n];
        }
      }
    });
    const gc = await this.collect(opts);
    return { images, ...gc, kept: { ...gc.kept, images: inUse } };
  }

  /**
   * Deletes blobs and layers no image references (and no lease holds), and dead temp files; keeps
   * the most recently used pin of each group and its blob (see writePin), none with `all`. Says what
   * it kept that it would have deleted but for a lease, and the pins it kept.
   */
  async collect(opts: { all?: boolean } = {}): Promise<Omit<PruneResult, "images">> {
    return this.withLock(async (idx) => {
      const { blobs, layers } = this.countRefs(idx);
      const leased = this.leased();
      const kept: Kept = { images: [], layers: 0, layerBytes: 0, pins: [] };
      let nb = 0;
      let nl = 0;
      let bytes = 0;
      const pinned = new Set<string>();
      for (const { group, pins } of this.pins()) {
        for (const [i, { file, pin }] of pins.entries()) {
          const size = pin.digest ? this.blobSize(pin.digest) : undefined;
          if (i === 0 && !opts.all && size !== undefined) {
            pinned.add(pin.digest);
            kept.pins.push({ group, what: pin.what, digest: pin.digest, bytes: size });
          } else fs.rmSync(file, { force: true });
        }
      }
      for (const alg of fs.readdirSync(join(this.root, "blobs"))) {
        for (const hex of fs.readdirSync(join(this.root, "blobs", alg))) {
          const digest = `${alg}:${hex}`;
          if (blobs.has(digest) || leased.has(digest) || pinned.has(digest)) continue;
          const p = join(this.root, "blobs", alg, hex);
          bytes += fs.statSync(p).size;
          fs.rmSync(p, { force: true });
          nb++;
        }
      }
      for (const hex of fs.readdirSync(join(this.root, "layers"))) {
        const chain = `sha256:${hex}`;
        if (layers.has(chain) || this.inflightLayers.has(chain)) continue;
        const meta = this.getLayer(chain);
        if (leased.has(chain)) {
          // mounted under a container or a warm environment (or being made): deleting it would
          // pull the files from under them
          kept.layers++;
          kept.layerBytes += meta?.size ?? 0;
          continue;
        }
        const trash = this.tempPath("trash");
        fs.renameSync(join(this.root, "layers", hex), trash);
        await this.removeAll(trash);
        bytes += meta?.size ?? 0;
        nl++;
      }
      for (const name of fs.readdirSync(join(this.root, "tmp"))) {
        const pid = Number(name.split("-")[0]);
        if (pidAlive(pid) && !name.includes("-trash-")) continue;
        await this.removeAll(join(this.root, "tmp", name));
      }
      return { blobs: nb, layers: nl, bytes, kept };
    }, false);
  }

  /** Copies an image's file system, layers applied, into dest (the fallback where overlay cannot be used). */
  materialize(rec: ImageRecord, dest: string): void {
    const lowers = rec.layers.map((l) => {
      const m = this.getLayer(l.chainId);
      if (!m) throw new Error(`layer ${l.chainId} of ${rec.digest} is not unpacked`);
      return this.lowerOf(m);
    });
    materialize(lowers, dest);
  }
}

/** rm -rf that also copes with directories whose mode forbids writing (when not root). */
export async function removeTree(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EACCES") throw e;
    const chmodAll = (d: string) => {
      try {
        fs.chmodSync(d, 0o700);
        for (const n of fs.readdirSync(d)) {
          const c = join(d, n);
          if (fs.lstatSync(c).isDirectory()) chmodAll(c);
        }
      } catch {}
    };
    chmodAll(p);
    await fsp.rm(p, { recursive: true, force: true });
  }
}
