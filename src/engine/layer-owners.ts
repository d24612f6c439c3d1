/**
 * A rootless engine's layers with the owners their tars gave, the way rootless podman has them.
 *
 * An ordinary user unpacks every file as its own (engine/images cannot chown to other ids from
 * outside a user namespace) and records what the tar said (LayerMeta.owners). When the engine's user
 * namespace maps subordinate id ranges (newuidmap and /etc/subuid, /etc/subgid), those owners are
 * ids of the namespace: before a container of the image first runs, the runner's helper, root of that
 * namespace, chowns the layer's entries to them (Runner.giveLayerOwners), and layer.json records
 * the maps it was done under (LayerMeta.ownersMapped), so that it is done once per layer and again
 * only if the maps change. Inside the container `stat` then shows the tar's owners; on the host the
 * files belong to the user's subordinate ids. Setuid and setgid bits stay dropped (they were at
 * unpack; chown would clear them anyway).
 *
 * Without ranges (a single mapping) nothing changes: every file is the user's, root's in the
 * container (`scar doctor` says so). Layers given to subordinate ids cannot be deleted by the user
 * from outside the namespace, nor their closed folders (0750 of uid 1000) read: the image store
 * removes them through `removeForeignTree` and reads them, to unpack a layer above one, through a
 * NamespaceReader (foreign-reader.ts); `foreignAccess` gives it both.
 */
import { NamespaceReader } from "./foreign-reader.js";
import type { ImageStore, ImageStoreOptions, LayerMeta, ResolvedImage } from "./images/index.js";
import { type RootlessMode, type Runner, runInUserNamespace } from "./runtime/index.js";

export class LayerOwners {
  /** layers done (or with nothing to do) under the runner's maps, by ChainID */
  private readonly done = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly images: ImageStore,
    private readonly runner: Runner,
    private readonly log: (m: string) => void = () => {},
  ) {}

  /** Gives the image's layers their owners when the runner can (Runner.ownersKey); else nothing. */
  async give(image: ResolvedImage): Promise<void> {
    const key = this.runner.ownersKey;
    if (key === undefined) return;
    await Promise.all(image.chainIds.map((c, i) => this.layer(c, image.layerDirs[i]!, key)));
  }

  private layer(chainId: string, dir: string, key: string): Promise<void> {
    if (this.done.has(chainId)) return Promise.resolve();
    let p = this.inflight.get(chainId);
    if (!p) {
      p = this.giveNow(chainId, dir, key).finally(() => this.inflight.delete(chainId));
      this.inflight.set(chainId, p);
    }
    return p;
  }

  private async giveNow(chainId: string, dir: string, key: string): Promise<void> {
    const meta: LayerMeta | undefined = this.images.store.getLayer(chainId);
    if (!meta) throw new Error(`layer ${chainId} is not unpacked`);
    if (meta.owners && meta.owners.length > 0 && meta.ownersMapped !== key) {
      const { unmapped } = await this.runner.giveLayerOwners(dir, meta.owners);
      if (unmapped > 0)
        this.log(
          `layer ${chainId}: ${unmapped} entries are owned by ids your /etc/subuid or /etc/subgid ranges do not cover; they stay root's in the container`,
        );
      this.images.store.markOwnersMapped(chainId, key);
    }
    this.done.add(chainId);
  }
}

/**
 * Removes a folder holding files a rootless engine gave to subordinate ids: `rm -rf` as root of a
 * user namespace with the same maps (the image store's removeForeign).
 */
export async function removeForeignTree(mode: RootlessMode, path: string): Promise<void> {
  const r = await runInUserNamespace(mode, ["rm", "-rf", "--", path]);
  if (r.code !== 0)
    throw new Error(`rm -rf ${path} in a user namespace: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/**
 * The image store's options for layers given to subordinate ids, for this process (only rootless
 * with subordinate ranges; else none): their removal (removeForeignTree), and the reading of their
 * closed folders when a layer above them is unpacked (foreign-reader.ts).
 */
export function foreignAccess(
  mode: RootlessMode | undefined,
): Pick<ImageStoreOptions, "removeForeign" | "readForeign"> {
  if (mode?.mapping !== "ranges") return {};
  return { removeForeign: (p) => removeForeignTree(mode, p), readForeign: () => new NamespaceReader(mode) };
}
