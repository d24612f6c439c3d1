/**
 * Pulling: resolve the reference to a manifest (choosing the host's platform from an index), fetch the
 * config, download the missing layer blobs in parallel (verified by digest, retried, resumed with Range
 * requests), unpack them bottom-up as soon as each one and the layers below it are ready, and record
 * the image. An image already present costs one manifest request (none for a digest reference) and
 * downloads nothing. Concurrent pulls of one image share one download, and so do concurrent downloads
 * of one blob.
 */
import * as fsp from "node:fs/promises";
import { Digester, DigestMismatchError } from "./digest.js";
import { formatReference, type ImageReference, parseReference, repositoryName } from "./reference.js";
import { type RegistryClient, RegistryError, Repository } from "./registry.js";
import { type ContentStore, type ImageRecord, layerRecords } from "./store.js";
import {
  configPlatform,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageConfigFile,
  INDEX_TYPES,
  type Index,
  MANIFEST_TYPES,
  type Manifest,
  MEDIA,
  type Platform,
} from "./types.js";

export type PullEvent =
  | { type: "resolved"; ref: string; digest: string; layers: number; platform: string }
  | {
      type: "layer";
      digest: string;
      status: "cached" | "present" | "downloading" | "downloaded" | "unpacked";
      size: number;
    }
  | { type: "progress"; digest: string; bytes: number; size: number }
  | { type: "retry"; digest: string; attempt: number; error: string }
  | { type: "done"; ref: string; digest: string; downloaded: number; upToDate: boolean };

export interface PullOptions {
  /** the platform to choose from an index (default: this host's) */
  platform?: Platform;
  onProgress?: (e: PullEvent) => void;
  /** stop unpacking a layer past this many uncompressed bytes */
  maxLayerBytes?: number;
}

export interface PullerOptions {
  /** parallel blob downloads (default 3) */
  concurrency?: number;
  /** attempts per blob download (default 5) */
  retries?: number;
  /** first backoff in ms (default 200) */
  backoffMs?: number;
}

interface Inflight {
  promise: Promise<ImageRecord>;
  listeners: Set<(e: PullEvent) => void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Picks the manifest for a platform out of an index, as Docker does (variant only when asked for). */
export function choosePlatform(index: Index, want: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter(
    (m) =>
      (MANIFEST_TYPES.includes(m.mediaType) || INDEX_TYPES.includes(m.mediaType)) &&
      m.platform?.os === want.os &&
      m.platform?.architecture === want.architecture,
  );
  if (want.variant) {
    const exact = candidates.find((m) => m.platform?.variant === want.variant);
    if (exact) return exact;
    // arm64 images usually carry no variant, or v8
    return candidates.find((m) => !m.platform?.variant);
  }
  return candidates[0];
}

class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

export class Puller {
  private readonly inflight = new Map<string, Inflight>();
  private readonly blobs = new Map<string, Promise<number>>();
  private readonly limiter: Limiter;
  private readonly retries: number;
  private readonly backoff: number;

  constructor(
    readonly store: ContentStore,
    readonly client: RegistryClient,
    opts: PullerOptions = {},
  ) {
    this.limiter = new Limiter(opts.concurrency ?? 3);
    this.retries = opts.retries ?? 5;
    this.backoff = opts.backoffMs ?? 200;
  }

  /** Pulls an image; concurrent calls for the same reference and platform share one pull. */
  pull(refStr: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(refStr);
    const platform = opts.platform ?? hostPlatform();
    const key = `${formatReference(ref)} ${formatPlatform(platform)}`;
    const existing = this.inflight.get(key);
    if (existing) {
      if (opts.onProgress) existing.listeners.add(opts.onProgress);
      return existing.promise;
    }
    const listeners = new Set<(e: PullEvent) => void>();
    if (opts.onProgress) listeners.add(opts.onProgress);
    const emit = (e: PullEvent) => {
      for (const l of listeners) {
        try {
          l(e);
        } catch {}
      }
    };
    const promise = this.doPull(ref, platform, emit, opts).finally(() => this.inflight.delete(key));
    this.inflight.set(key, { promise, listeners });
    return promise;
  }

  private async doPull(
    ref: ImageReference,
    platform: Platform,
    emit: (e: PullEvent) => void,
    opts: PullOptions,
  ): Promise<ImageRecord> {
    const name = formatReference(ref);
    const names = [name];
    if (ref.digest && ref.tag) names.push(formatReference({ ...ref, digest: undefined }));

    // a digest reference already present needs no network at all
    if (ref.digest) {
      const have = this.store.find(ref.digest);
      if (have && this.complete(have)) {
        emit({ type: "done", ref: name, digest: have.digest, downloaded: 0, upToDate: true });
        return this.store.putImage(have, names);
      }
    }

    const repo = new Repository(this.client, ref.registry, ref.repository);
    let top = await repo.getManifest(ref.digest ?? ref.tag!);
    let indexDigest: string | undefined;
    let indexBytes: Buffer | undefined;
    if (INDEX_TYPES.includes(top.mediaType)) {
      const index = JSON.parse(top.bytes.toString("utf8")) as Index;
      const chosen = choosePlatform(index, platform);
      if (!chosen) {
        const avail = index.manifests
          .map((m) => (m.platform ? formatPlatform(m.platform) : "?"))
          .filter((p) => p !== "unknown/unknown")
          .join(", ");
        throw new RegistryError(
          `${name} has no image for ${formatPlatform(platform)} (it has: ${avail || "none"})`,
        );
      }
      indexDigest = top.digest;
      indexBytes = top.bytes;
      top = await repo.getManifest(chosen.digest);
      if (INDEX_TYPES.includes(top.mediaType))
        throw new RegistryError(`${name}: nested indexes are not supported`);
    }
    if (top.mediaType === MEDIA.dockerSchema1 || top.mediaType === MEDIA.dockerSchema1Signed)
      throw new RegistryError(
        `${name} uses the deprecated Docker schema 1 manifest format, which is not supported`,
      );
    if (!MANIFEST_TYPES.includes(top.mediaType))
      throw new RegistryError(`${name}: unsupported manifest type ${top.mediaType}`);

    const manifest = JSON.parse(top.bytes.toString("utf8")) as Manifest;
    const existing = this.store.find(top.digest);
    if (existing && this.complete(existing)) {
      this.store.putBlob(top.bytes, top.digest);
      if (indexBytes) this.store.putBlob(indexBytes, indexDigest);
      emit({ type: "done", ref: name, digest: top.digest, downloaded: 0, upToDate: true });
      return this.store.putImage({ ...existing, ...(indexDigest ? { indexDigest } : {}) }, names);
    }

    const release = this.store.lease([
      top.digest,
      manifest.config.digest,
      ...manifest.layers.map((l) => l.digest),
      ...(indexDigest ? [indexDigest] : []),
    ]);
    try {
      let downloaded = 0;
      if (!this.store.hasBlob(manifest.config.digest)) {
        const res = await repo.getBlob(manifest.config.digest);
        if (Number(res.headers.get("content-length") ?? 0) > 8 << 20)
          throw new RegistryError("image config too large");
        await this.store.ingest((res.body ?? []) as AsyncIterable<Uint8Array>, manifest.config.digest);
        downloaded += manifest.config.size;
      }
      const config = JSON.parse(
        this.store.readBlob(manifest.config.digest).toString("utf8"),
      ) as ImageConfigFile;
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length)
        throw new RegistryError(
          `${name}: the config lists ${diffIds.length} layers but the manifest ${manifest.layers.length}`,
        );
      const layers = layerRecords(manifest, diffIds);
      const releaseChains = this.store.lease(layers.map((l) => l.chainId));
      try {
        emit({
          type: "resolved",
          ref: name,
          digest: top.digest,
          layers: layers.length,
          platform: formatPlatform(configPlatform(config)),
        });
        // which layers need their blob: those not unpacked (nor any layer above them: unpack goes bottom-up)
        let firstMissing = layers.findIndex((l) => !this.store.getLayer(l.chainId));
        if (firstMissing < 0) firstMissing = layers.length;
        const blobReady: Promise<number>[] = layers.map((l, i) => {
          if (i < firstMissing) {
            emit({ type: "layer", digest: l.digest, status: "cached", size: l.size });
            return Promise.resolve(0);
          }
          if (this.store.hasBlob(l.digest)) {
            emit({ type: "layer", digest: l.digest, status: "present", size: l.size });
            return Promise.resolve(0);
          }
          return this.downloadBlob(repo, manifest.layers[i]!, emit);
        });
        // unpack in order as blobs arrive; wait for every download to settle before failing
        const settled = Promise.allSettled(blobReady);
        try {
          for (let i = firstMissing; i < layers.length; i++) {
            downloaded += await blobReady[i]!;
            if (!this.store.getLayer(layers[i]!.chainId)) {
              await this.store.ensureLayer(layers, i, { maxBytes: opts.maxLayerBytes });
              emit({ type: "layer", digest: layers[i]!.digest, status: "unpacked", size: layers[i]!.size });
            }
          }
        } finally {
          await settled;
        }
        this.store.putBlob(top.bytes, top.digest);
        if (indexBytes) this.store.putBlob(indexBytes, indexDigest);
        const rec: Omit<ImageRecord, "names"> = {
          digest: top.digest,
          mediaType: top.mediaType,
          configDigest: manifest.config.digest,
          layers,
          platform: configPlatform(config),
          source: repositoryName(ref),
          added: new Date().toISOString(),
        };
        if (indexDigest) rec.indexDigest = indexDigest;
        if (config.created) rec.created = config.created;
        const out = await this.store.putImage(rec, names);
        emit({ type: "done", ref: name, digest: top.digest, downloaded, upToDate: false });
        return out;
      } finally {
        releaseChains();
      }
    } finally {
      release();
    }
  }

  private complete(rec: ImageRecord): boolean {
    return rec.layers.every((l) => this.store.getLayer(l.chainId)) && this.store.hasBlob(rec.configDigest);
  }

  /** Downloads one blob into the store (shared by concurrent callers). Resolves to the bytes fetched. */
  private downloadBlob(repo: Repository, desc: Descriptor, emit: (e: PullEvent) => void): Promise<number> {
    let p = this.blobs.get(desc.digest);
    if (!p) {
      p = this.limiter
        .run(() => this.fetchBlob(repo, desc, emit))
        .finally(() => this.blobs.delete(desc.digest));
      this.blobs.set(desc.digest, p);
    }
    return p;
  }

  private async fetchBlob(repo: Repository, desc: Descriptor, emit: (e: PullEvent) => void): Promise<number> {
    if (this.store.hasBlob(desc.digest)) return 0;
    if (desc.mediaType === MEDIA.dockerForeignLayer && desc.urls?.length)
      throw new RegistryError(
        `layer ${desc.digest} is a foreign layer (${desc.urls[0]}); those are not supported`,
      );
    emit({ type: "layer", digest: desc.digest, status: "downloading", size: desc.size });
    const tmp = this.store.tempPath("dl");
    const fh = await fsp.open(tmp, "w", 0o600);
    let digester = new Digester(desc.digest.slice(0, desc.digest.indexOf(":")));
    let offset = 0;
    let fetched = 0;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await repo.getBlob(desc.digest, offset);
          if (offset > 0 && res.status !== 206) {
            // the server ignored the Range request: start over
            offset = 0;
            digester = new Digester(digester.algorithm);
            await fh.truncate(0);
          }
          let lastReport = 0;
          for await (const chunk of res.body ?? []) {
            const b = Buffer.from(chunk);
            if (offset + b.length > desc.size)
              throw new DigestMismatchError(
                desc.digest,
                "(more bytes than the descriptor's size)",
                `layer ${desc.digest}`,
              );
            await fh.write(b, 0, b.length, offset);
            digester.update(b);
            offset += b.length;
            fetched += b.length;
            if (offset - lastReport >= 1 << 20 || offset === desc.size) {
              lastReport = offset;
              emit({ type: "progress", digest: desc.digest, bytes: offset, size: desc.size });
            }
          }
          if (offset < desc.size) throw new Error(`connection closed after ${offset} of ${desc.size} bytes`);
          break;
        } catch (e) {
          if (
            e instanceof DigestMismatchError ||
            (e instanceof RegistryError && e.status !== undefined && e.status < 500)
          )
            throw e;
          if (attempt >= this.retries) throw e;
          emit({ type: "retry", digest: desc.digest, attempt, error: (e as Error).message });
          await sleep(this.backoff * 2 ** (attempt - 1));
        }
      }
      await fh.close();
      const got = digester.digest();
      if (got !== desc.digest) throw new DigestMismatchError(desc.digest, got, `layer blob`);
      if (!this.store.hasBlob(desc.digest)) this.store.commitBlobFile(tmp, desc.digest);
      emit({ type: "layer", digest: desc.digest, status: "downloaded", size: desc.size });
      return fetched;
    } finally {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
    }
  }
}
