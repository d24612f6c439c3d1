/**
 * Pushing an image of the store to a registry: each blob (config and layers) is skipped when the
 * target repository has it, mounted from the repository it was pulled from when that is on the same
 * registry, or uploaded: in one PUT (monolithic) or, when larger than `chunkSize`, in PATCH chunks
 * then a closing PUT. The manifest goes last, byte for byte as stored, so its digest is kept. The
 * result counts what each blob cost, so a caller can say how many bytes really went over the wire.
 */
import * as fs from "node:fs";
import { parseReference } from "./reference.js";
import { type RegistryClient, Repository } from "./registry.js";
import { type ContentStore, ImageNotFoundError } from "./store.js";

export type PushEvent =
  | { type: "blob"; digest: string; size: number; status: "exists" | "mounted" | "uploading" | "uploaded" }
  | { type: "progress"; digest: string; bytes: number; size: number }
  | { type: "done"; ref: string; digest: string };

export interface PushOptions {
  /** upload blobs larger than this in chunks of this size (default 0: always monolithic) */
  chunkSize?: number;
  /** repositories (`registry/repo`) to try cross-repository mounts from, besides the image's source */
  mountFrom?: string[];
  /**
   * Per blob, more repositories (`registry/repo`) known to hold it (e.g. where an earlier push put
   * it), tried before `mountFrom`: only repositories on the target registry are used.
   */
  blobSources?: (digest: string) => string[];
  onProgress?: (e: PushEvent) => void;
}

async function* readChunks(path: string, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of fs.createReadStream(path, { highWaterMark: 1 << 20 })) {
    onBytes((c as Buffer).length);
    yield c as Buffer;
  }
}

export interface PushResult {
  /** `registry/repo:tag` pushed to */
  ref: string;
  /** the manifest's digest */
  digest: string;
  /** blob bytes sent to the registry (the manifest not included) */
  bytesUploaded: number;
  blobsUploaded: number;
  /** blobs the target repository already had */
  blobsSkipped: number;
  /** blobs mounted from another repository of the registry */
  blobsMounted: number;
}

export async function pushImage(
  store: ContentStore,
  client: RegistryClient,
  refStr: string,
  targetStr: string,
  opts: PushOptions = {},
): Promise<PushResult> {
  const rec = store.find(refStr);
  if (!rec) throw new ImageNotFoundError(refStr);
  const target = parseReference(targetStr);
  if (target.digest) throw new Error("push to a tag, not a digest");
  const repo = new Repository(client, target.registry, target.repository);
  const emit = (e: PushEvent) => opts.onProgress?.(e);

  const onTarget = (sources: string[]) => [
    ...new Set(
      sources
        .filter((s) => s.startsWith(`${target.registry}/`))
        .map((s) => s.slice(target.registry.length + 1))
        .filter((s) => s !== target.repository),
    ),
  ];
  const mountSources = (digest: string) =>
    onTarget([
      ...(opts.blobSources?.(digest) ?? []),
      ...(rec.source ? [rec.source] : []),
      ...(opts.mountFrom ?? []),
    ]);
  const counts = { bytesUploaded: 0, blobsUploaded: 0, blobsSkipped: 0, blobsMounted: 0 };

  const blobs = [
    ...rec.layers.map((l) => ({ digest: l.digest, size: l.size })),
    { digest: rec.configDigest, size: store.blobSize(rec.configDigest) ?? 0 },
  ];
  for (const b of blobs) {
    if (!store.hasBlob(b.digest))
      throw new Error(`blob ${b.digest} of ${refStr} is not in the store (pull the image again)`);
    const size = store.blobSize(b.digest)!;
    if (await repo.hasBlob(b.digest, [`repository:${target.repository}:pull,push`])) {
      emit({ type: "blob", digest: b.digest, size, status: "exists" });
      counts.blobsSkipped++;
      continue;
    }
    let location: string | undefined;
    let mounted = false;
    for (const from of mountSources(b.digest)) {
      const m = await repo.mountBlob(b.digest, from);
      mounted = m.mounted;
      if (mounted) break;
      location = m.location; // the registry opened an upload session instead
    }
    if (mounted) {
      emit({ type: "blob", digest: b.digest, size, status: "mounted" });
      counts.blobsMounted++;
      continue;
    }
    location ??= await repo.startUpload();
    emit({ type: "blob", digest: b.digest, size, status: "uploading" });
    let sent = 0;
    const progress = (n: number) => {
      sent += n;
      emit({ type: "progress", digest: b.digest, bytes: sent, size });
    };
    const path = store.blobPath(b.digest);
    const chunk = opts.chunkSize ?? 0;
    if (chunk > 0 && size > chunk) {
      const fd = fs.openSync(path, "r");
      try {
        let offset = 0;
        const buf = Buffer.alloc(chunk);
        while (offset < size) {
          const n = fs.readSync(fd, buf, 0, Math.min(chunk, size - offset), offset);
          location = await repo.uploadChunk(location, Buffer.from(buf.subarray(0, n)), offset);
          offset += n;
          progress(n);
        }
      } finally {
        fs.closeSync(fd);
      }
      await repo.finishUpload(location, b.digest);
    } else {
      await repo.finishUpload(location, b.digest, readChunks(path, progress), size);
    }
    emit({ type: "blob", digest: b.digest, size, status: "uploaded" });
    counts.blobsUploaded++;
    counts.bytesUploaded += size;
  }
  const digest = await repo.putManifest(target.tag!, store.readBlob(rec.digest), rec.mediaType);
  const ref = `${target.registry}/${target.repository}:${target.tag}`;
  emit({ type: "done", ref, digest });
  return { ref, digest, ...counts };
}
