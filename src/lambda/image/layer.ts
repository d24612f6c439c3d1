/**
 * A reproducible image layer: the same entries give the same bytes, so the same digest. Entries are
 * sorted by name, every parent directory is written once, owners are 0:0 with no names, every mtime is
 * LAYER_MTIME, and the tar goes through one gzip stream of a fixed level (node's zlib writes no name
 * and no time in the gzip header). The layer is written straight into the image store's blobs.
 */
import { createReadStream, statSync } from "node:fs";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { Digester } from "../../engine/images/digest.js";
import type { ContentStore } from "../../engine/images/store.js";
import { END_OF_ARCHIVE, entryHeader, padding } from "../../engine/images/tarwriter.js";

/** 2000-01-01T00:00:00Z: a fixed time for every entry (0 makes some tools warn). */
export const LAYER_MTIME = 946684800;
// zlib's default. Measured on the runtime layer (node 20, 108 MB): level 9 gave 39.6 MB in 43 s,
// level 6 39.7 MB in 26 s (a loaded 2-core machine)
const GZIP_LEVEL = 6;

export type LayerEntry =
  | { path: string; type: "file"; mode: number; source: string }
  | { path: string; type: "file"; mode: number; data: Buffer }
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "symlink"; target: string };

export interface BuiltLayer {
  /** digest of the compressed blob (in the store) */
  digest: string;
  /** digest of the uncompressed tar (the config's rootfs.diff_ids) */
  diffId: string;
  /** compressed bytes */
  size: number;
  uncompressedSize: number;
}

function relative(path: string): string {
  const n = posix.normalize(path).replace(/^\/+/, "").replace(/\/+$/, "");
  if (n === "" || n === "." || n.startsWith("../") || n === "..")
    throw new Error(`bad path in a layer: "${path}"`);
  return n;
}

/** The entries with their parents added (0755 directories) and sorted by name, each name once. */
export function normalizeEntries(entries: LayerEntry[]): LayerEntry[] {
  const byName = new Map<string, LayerEntry>();
  for (const e of entries) {
    const name = relative(e.path);
    if (byName.has(name) && byName.get(name)!.type !== "dir")
      throw new Error(`the layer has "${e.path}" twice`);
    byName.set(name, { ...e, path: name });
    for (let d = posix.dirname(name); d !== "."; d = posix.dirname(d))
      if (!byName.has(d)) byName.set(d, { path: d, type: "dir", mode: 0o755 });
  }
  return [...byName.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function* tarStream(entries: LayerEntry[]): AsyncGenerator<Buffer> {
  const base = { uid: 0, gid: 0, mtime: LAYER_MTIME };
  for (const e of normalizeEntries(entries)) {
    if (e.type === "dir") {
      yield entryHeader({ ...base, name: `${e.path}/`, type: "dir", mode: e.mode });
    } else if (e.type === "symlink") {
      yield entryHeader({ ...base, name: e.path, type: "symlink", mode: 0o777, linkname: e.target });
    } else if ("data" in e) {
      yield entryHeader({ ...base, name: e.path, type: "file", mode: e.mode, size: e.data.length });
      yield e.data;
      yield padding(e.data.length);
    } else {
      const size = statSync(e.source).size;
      yield entryHeader({ ...base, name: e.path, type: "file", mode: e.mode, size });
      let read = 0;
      for await (const c of createReadStream(e.source, { highWaterMark: 1 << 20 })) {
        read += (c as Buffer).length;
        if (read > size) break;
        yield c as Buffer;
      }
      // a file that changed while it was read would make a layer unlike its header: refuse it
      if (read !== size) throw new Error(`${e.source} changed while it was added to the image`);
      yield padding(size);
    }
  }
  yield END_OF_ARCHIVE;
}

/** Writes the layer (gzip) into the store's blobs; returns its digests and sizes. */
export async function writeLayer(store: ContentStore, entries: LayerEntry[]): Promise<BuiltLayer> {
  const diff = new Digester();
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const c of tarStream(entries)) {
      diff.update(c);
      yield c;
    }
  }
  const gzip = createGzip({ level: GZIP_LEVEL, chunkSize: 1 << 20 });
  const source = Readable.from(hashed());
  source.on("error", (e) => gzip.destroy(e));
  source.pipe(gzip);
  const digest = await store.ingest(gzip);
  return { digest, diffId: diff.digest(), size: store.blobSize(digest)!, uncompressedSize: diff.bytes };
}
