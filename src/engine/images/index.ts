/**
 * Images for the embedded engine: one ImageStore per data directory.
 *
 * The seam with the runtime is `resolve(ref)`: for an image already in the store it returns the image's
 * OCI config (Entrypoint, Cmd, Env, WorkingDir, User, ...) and the directories of its unpacked layers,
 * bottom to top, to be used as overlayfs lowers (overlay wants them top first: reverse them for
 * `lowerdir=`). Where overlayfs cannot be used, `materialize(ref, dest)` copies the image's merged file
 * system into `dest` instead (whiteouts applied). `ensure(ref)` pulls first when the image is missing.
 *
 *     const images = new ImageStore({ dataDir });
 *     const img = await images.ensure("busybox:latest");
 *     const release = images.lease(img);          // keep prune away while a container uses it
 *     mount overlay lowerdir=img.layerDirs.toReversed().join(":") ...
 *     release();
 *
 * The layer directories are shared by every container and image that uses them: never write into them.
 */
import type { CredentialSource } from "./auth.js";
import { type ImportOptions, importImage } from "./import.js";
import { type PullEvent, Puller, type PullOptions } from "./pull.js";
import { type PushOptions, pushImage } from "./push.js";
import { RegistryClient } from "./registry.js";
import { ContentStore, ImageNotFoundError, type ImageRecord } from "./store.js";
import type { ImageConfig, Platform } from "./types.js";
import type { ForeignReader } from "./unpack.js";

export type { CredentialSource, Credentials } from "./auth.js";
export { DockerCredentials, StaticCredentials } from "./auth.js";
export { DigestMismatchError } from "./digest.js";
export type { ImportOptions, ImportResult } from "./import.js";
export type { PullEvent, PullOptions } from "./pull.js";
export type { PushEvent, PushOptions, PushResult } from "./push.js";
export { familiarName, formatReference, ImageReferenceError, parseReference } from "./reference.js";
export { RegistryError } from "./registry.js";
export type { ImageRecord, Kept, LayerMeta, LayerRecord, Pin, PruneResult } from "./store.js";
export { ImageNotFoundError } from "./store.js";
export type { ImageConfig, Platform } from "./types.js";
export { type ForeignReader, type ForeignStat, type LayerOwner, UnsafeLayerError } from "./unpack.js";

/** What the runtime needs to run a container of an image. */
export interface ResolvedImage {
  /** manifest digest (`sha256:…`) */
  digest: string;
  /** image ID: the config digest */
  id: string;
  /** the names the image has in the store */
  names: string[];
  /** the runtime config, OCI image-spec field names; fields the image does not set are absent */
  config: ImageConfig;
  platform: Platform;
  /** unpacked layer directories, bottom to top (read-only overlay lowers) */
  layerDirs: string[];
  /** true when every layer carries overlayfs whiteouts/opaque markers (unpacked as root) */
  overlay: boolean;
  /** ChainIDs of the layers, bottom to top (for lease()) */
  chainIds: string[];
}

export interface ImageStoreOptions {
  /** the data directory; images live under `<dataDir>/images` (default: $SCAR_DATA_DIR or ~/.scar/data) */
  dataDir?: string;
  credentials?: CredentialSource;
  /** registries to speak plain HTTP to besides loopback ones (scar.cfg) */
  insecureRegistries?: string[];
  /** parallel blob downloads (default 3) */
  concurrency?: number;
  /** see ContentStoreOptions.removeForeign (a rootless engine's layers given to subordinate ids) */
  removeForeign?: (path: string) => Promise<void>;
  /** see ContentStoreOptions.readForeign (the same layers, read to unpack one above them) */
  readForeign?: () => ForeignReader & { close(): Promise<void> };
}

import { defaultDataDir } from "../data-dir.js";

export { defaultDataDir };

export class ImageStore {
  readonly store: ContentStore;
  readonly client: RegistryClient;
  private readonly puller: Puller;
  /** resolve()'s answers, each valid while the index is the one it was made from (see resolve). */
  private readonly resolved = new Map<string, { version: string; image: ResolvedImage }>();

  constructor(opts: ImageStoreOptions = {}) {
    this.store = new ContentStore(opts.dataDir ?? defaultDataDir(), {
      ...(opts.removeForeign ? { removeForeign: opts.removeForeign } : {}),
      ...(opts.readForeign ? { readForeign: opts.readForeign } : {}),
    });
    this.client = new RegistryClient({ credentials: opts.credentials, insecure: opts.insecureRegistries });
    this.puller = new Puller(this.store, this.client, { concurrency: opts.concurrency });
  }

  /**
   * The image as the runtime needs it; throws ImageNotFoundError when it is not in the store. Every
   * job calls this, so an answer is kept while the index file stays the same: layers are removed
   * only by a garbage collection, which rewrites the index. Callers must not modify what it returns.
   */
  resolve(ref: string): ResolvedImage {
    const version = this.store.indexVersion();
    const hit = this.resolved.get(ref);
    if (hit && hit.version === version) return hit.image;
    const image = this.resolveNow(ref);
    if (this.resolved.size >= 256) this.resolved.clear();
    this.resolved.set(ref, { version, image });
    return image;
  }

  private resolveNow(ref: string): ResolvedImage {
    const rec = this.store.find(ref);
    if (!rec) throw new ImageNotFoundError(ref);
    const cfg = this.store.config(rec);
    const metas = rec.layers.map((l) => {
      const m = this.store.getLayer(l.chainId);
      if (!m) throw new ImageNotFoundError(`${ref} (layer ${l.chainId} is not unpacked)`);
      return m;
    });
    return {
      digest: rec.digest,
      id: rec.configDigest,
      names: rec.names,
      config: { ...(cfg.config ?? {}) },
      platform: rec.platform,
      layerDirs: metas.map((m) => this.store.layerDir(m.chainId)),
      overlay: metas.every((m) => m.overlay),
      chainIds: metas.map((m) => m.chainId),
    };
  }

  /** resolve(), pulling the image first when it is not in the store (or always, with `pull: "always"`). */
  async ensure(
    ref: string,
    opts: PullOptions & { pull?: "missing" | "always" } = {},
  ): Promise<ResolvedImage> {
    if (opts.pull !== "always" && this.store.find(ref)) {
      try {
        return this.resolve(ref);
      } catch (e) {
        if (!(e instanceof ImageNotFoundError)) throw e;
      }
    }
    await this.pull(ref, opts);
    return this.resolve(ref);
  }

  pull(ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
    return this.puller.pull(ref, opts);
  }

  import(path: string, opts: ImportOptions = {}) {
    return importImage(this.store, path, opts);
  }

  push(ref: string, target: string, opts: PushOptions = {}) {
    return pushImage(this.store, this.client, ref, target, opts);
  }

  list(): ImageRecord[] {
    return this.store.list();
  }

  find(ref: string): ImageRecord | undefined {
    return this.store.find(ref);
  }

  remove(refs: string[], opts: { force?: boolean } = {}) {
    return this.store.remove(refs, opts);
  }

  prune(opts: { all?: boolean } = {}) {
    return this.store.prune(opts);
  }

  /** Keeps the image's layers from being pruned until the returned function is called. */
  lease(img: ResolvedImage): () => void {
    return this.store.lease(img.chainIds);
  }

  /**
   * lease() by layer folders (ResolvedImage.layerDirs), as the runtime knows an image: the runtime
   * takes one for every overlay it mounts over them, for as long as the mount lives
   * (RunnerOptions.leaseLayers). Folders that are not this store's are left out.
   */
  leaseLayerDirs(dirs: readonly string[]): () => void {
    const chains = dirs.map((d) => this.store.chainIdOfLayerDir(d)).filter((c) => c !== undefined);
    return this.store.lease(chains);
  }

  /** Copies the merged file system of an image into dest (the fallback when overlay is unavailable). */
  materialize(ref: string, dest: string): void {
    const rec = this.store.find(ref);
    if (!rec) throw new ImageNotFoundError(ref);
    this.store.materialize(rec, dest);
  }
}

export type { PullEvent as ImagePullEvent };
