/**
 * The function image, built without Docker: the user's image plus two layers, recorded in the local
 * image store under `input.tag`.
 *
 *   layer n+1  scar's runtime under /opt/scar (runtime-layer.ts): the same for every function built by
 *              one scar, so it is compressed once (cached by its content key) and a registry that has it
 *              already skips it; a push after a script edit sends only the small layer below
 *   layer n+2  /var/task: function_config.yaml (SCAR's content, function-config.ts), the init script,
 *              `extra_payload`
 *
 * The config is the base image's with Entrypoint = the runtime (through its own loader), no Cmd,
 * WorkingDir /var/task, PATH=/var/task:<the image's PATH> (as SCAR's Dockerfile), the function's
 * `container.environment.Variables` as ENV, and architecture amd64.
 *
 * Manifest type: a single-platform Docker Image Manifest V2, Schema 2 with gzip layers. Lambda takes
 * Docker v2 schema 2 and OCI image manifests of one platform; it refuses image indexes / manifest
 * lists (what `docker buildx` makes when it adds provenance attestations), with "The image manifest or
 * layer media type for the source image ... is not supported"; the image must target one architecture.
 * Sources: AWS's "Create a Lambda function using a container image"
 * (docs.aws.amazon.com/lambda/latest/dg/images-create.html: requirements, one architecture per image)
 * and AWS re:Post "does lambda not support multi architecture container images manifests"
 * (repost.aws/questions/QUIZjd2sL_TtCuoqtg5Q30LA: single-image manifests only; `--provenance=false`).
 * Size: at most 10 GB uncompressed, all layers together (Lambda quotas, "Container image code package
 * size": docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
 *
 * Reproducible: every input is content (base image digest, runtime files, function files); the layers
 * are written with fixed times and order (layer.ts), the JSON with a fixed key order, and the config
 * keeps the base image's `created`. The same inputs give the same manifest digest.
 */
import { existsSync, lstatSync, readdirSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { type ImageStore, RegistryError } from "../../engine/images/index.js";
import { formatReference, ImageReferenceError, parseReference } from "../../engine/images/reference.js";
import { type ImageRecord, layerRecords, type Pin } from "../../engine/images/store.js";
import {
  formatPlatform,
  type ImageConfig,
  type ImageConfigFile,
  type Manifest,
  MEDIA,
  type Platform,
} from "../../engine/images/types.js";
import { functionConfigYaml } from "./function-config.js";
import { type BuiltLayer, type LayerEntry, writeLayer } from "./layer.js";
import { type RuntimeFiles, runtimeFiles, runtimeKey } from "./runtime-layer.js";
import type { BuildFunctionImageInput, BuiltFunctionImage } from "./types.js";

/** Lambda's limit on a container image: 10 GB uncompressed, all layers (see the header). */
export const LAMBDA_MAX_UNCOMPRESSED_BYTES = 10 * 1024 * 1024 * 1024;
export const LAMBDA_PLATFORM: Platform = { os: "linux", architecture: "amd64" };
export const TASK_ROOT = "/var/task";
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A build refused before anything was written: the message says what is wrong and what to do. */
export class FunctionImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FunctionImageError";
  }
}

export interface BuildOptions {
  /** Lambda's limit; a smaller one for tests */
  maxUncompressedBytes?: number;
  /** the Node binary carried into the image (default: the one running scar) */
  node?: string;
}

const gb = (n: number) => `${(n / 1024 ** 3).toFixed(2)} GB`;

/** The user's image as a store record: pulled, found in the store, or imported from its archive. */
async function baseImage(input: BuildFunctionImageInput): Promise<ImageRecord> {
  const { images, source } = input;
  const progress = (detail: string) => input.onProgress?.({ stage: "pull", detail });
  if (source.kind === "file") {
    if (!existsSync(source.path))
      throw new FunctionImageError(
        `container.image_file '${source.path}' does not exist: give the path of a \`docker save\` or OCI archive`,
      );
    progress(`importing ${source.path}`);
    try {
      const r = await images.import(source.path, { platform: LAMBDA_PLATFORM });
      const rec = r.images[0];
      if (!rec || r.format === "rootfs")
        throw new FunctionImageError(
          `container.image_file '${source.path}' is not an image archive: make it with \`docker save\` or \`skopeo copy ... docker-archive:\``,
        );
      return rec;
    } catch (err) {
      if (err instanceof FunctionImageError) throw err;
      const msg = (err as Error).message;
      if (/no image manifest for this platform/.test(msg))
        throw new FunctionImageError(
          `container.image_file '${source.path}' has no linux/amd64 image, the only platform scar builds Lambda images for: save the amd64 image (\`docker save\` after \`docker pull --platform linux/amd64\`)`,
        );
      throw new FunctionImageError(`cannot read container.image_file '${source.path}': ${msg}`);
    }
  }
  let ref: string;
  try {
    ref = formatReference(parseReference(source.reference));
  } catch (err) {
    if (err instanceof ImageReferenceError)
      throw new FunctionImageError(
        `container.image '${source.reference}' is not an image reference: ${err.message}`,
      );
    throw err;
  }
  const local = images.find(source.reference);
  if (local) return local;
  progress(`pulling ${source.reference}`);
  try {
    return await images.pull(source.reference, {
      platform: LAMBDA_PLATFORM,
      onProgress: (e) => {
        if (e.type === "layer" && e.status === "downloaded") progress(`downloaded ${e.digest.slice(7, 19)}`);
      },
    });
  } catch (err) {
    const msg = (err as Error).message;
    if (err instanceof RegistryError && / has no image for /.test(msg))
      throw new FunctionImageError(
        `container.image '${source.reference}' is a manifest list without linux/amd64, the platform of scar's Lambda functions: use an image built for amd64`,
      );
    if (
      err instanceof RegistryError &&
      (err.status === 404 || /MANIFEST_UNKNOWN|NAME_UNKNOWN|not found/i.test(msg))
    )
      throw new FunctionImageError(
        `container.image '${source.reference}' does not exist (${ref}): check its name and tag, or \`scar image pull\` it first`,
      );
    throw new FunctionImageError(`cannot pull container.image '${source.reference}': ${msg}`);
  }
}

/** The image store's pin group of the runtime layer (ContentStore.writePin). */
export const RUNTIME_PIN_GROUP = "lambda-runtime";

/**
 * The runtime layer, compressed once per runtime content (26-35 s for Node's 100 MB): a pin of the
 * store, keyed by the runtime's content key, so `scar image prune` keeps the blob for the next build
 * though no image may use it (`prune --all` removes it). The blob is leased until `release` (the
 * build's end), so a prune meanwhile cannot take it from under the build.
 */
async function runtimeLayer(
  images: ImageStore,
  rt: RuntimeFiles,
): Promise<{ layer: BuiltLayer; release: () => void }> {
  const store = images.store;
  const key = runtimeKey(rt);
  const cached = store.readPin<BuiltLayer & Pin>(RUNTIME_PIN_GROUP, key);
  if (cached) {
    const release = store.lease([cached.digest]);
    if (store.blobSize(cached.digest) === cached.size) return { layer: cached, release };
    release(); // removed since (prune --all): built again
  }
  const layer = await writeLayer(
    store,
    rt.files.map((f) => ({ path: f.path, type: "file", mode: f.mode, source: f.source })),
  );
  const release = store.lease([layer.digest]);
  store.writePin<BuiltLayer & Pin>(RUNTIME_PIN_GROUP, key, { ...layer, what: "scar's Lambda runtime layer" });
  return { layer, release };
}

/** Files of a file or folder (`extra_payload`), as layer entries under `dest`. */
function payloadEntries(src: string, dest: string): LayerEntry[] {
  const st = lstatSync(src);
  if (st.isSymbolicLink()) return [{ path: dest, type: "symlink", target: readlinkSync(src) }];
  if (st.isFile()) return [{ path: dest, type: "file", mode: st.mode & 0o111 ? 0o755 : 0o644, source: src }];
  if (!st.isDirectory()) return [];
  const out: LayerEntry[] = [{ path: dest, type: "dir", mode: 0o755 }];
  for (const name of readdirSync(src).sort()) out.push(...payloadEntries(join(src, name), `${dest}/${name}`));
  return out;
}

function functionLayerEntries(input: BuildFunctionImageInput): LayerEntry[] {
  const { spec } = input;
  const entries: LayerEntry[] = [
    { path: TASK_ROOT, type: "dir", mode: 0o755 },
    {
      path: `${TASK_ROOT}/function_config.yaml`,
      type: "file",
      mode: 0o644,
      data: Buffer.from(functionConfigYaml(spec, input.storageProviders)),
    },
  ];
  if (spec.script) {
    if (!existsSync(spec.script))
      throw new FunctionImageError(
        `init_script '${spec.script}' does not exist: fix the path in the FDL file`,
      );
    entries.push({
      path: `${TASK_ROOT}/${basename(spec.script)}`,
      type: "file",
      mode: 0o755,
      source: spec.script,
    });
  }
  const extra = (spec.raw.lambda as Record<string, unknown> | undefined)?.extra_payload;
  if (typeof extra === "string" && extra !== "") {
    const dir = spec.source.file ? join(spec.source.file, "..") : process.cwd();
    const path = extra.startsWith("/") ? extra : join(dir, extra);
    if (!existsSync(path))
      throw new FunctionImageError(
        `extra_payload '${extra}' does not exist (${path}): fix the path in the FDL file`,
      );
    const st = lstatSync(path);
    // SCAR copies a folder's contents, or the file itself, into the package root (/var/task)
    if (st.isDirectory())
      for (const name of readdirSync(path).sort())
        entries.push(...payloadEntries(join(path, name), `${TASK_ROOT}/${name}`));
    else entries.push(...payloadEntries(path, `${TASK_ROOT}/${basename(path)}`));
  }
  return entries;
}

function imageConfig(
  base: ImageConfig,
  entrypoint: string[],
  variables: Record<string, string>,
): ImageConfig {
  const env = new Map<string, string>();
  for (const e of base.Env ?? []) {
    const i = e.indexOf("=");
    env.set(i < 0 ? e : e.slice(0, i), i < 0 ? "" : e.slice(i + 1));
  }
  const path = env.get("PATH") || DEFAULT_PATH;
  env.set("PATH", path.split(":").includes(TASK_ROOT) ? path : `${TASK_ROOT}:${path}`);
  env.set("LAMBDA_TASK_ROOT", TASK_ROOT);
  for (const k of Object.keys(variables).sort()) env.set(k, variables[k]!);
  const out: ImageConfig = { ...base, Entrypoint: entrypoint, WorkingDir: TASK_ROOT };
  delete out.Cmd;
  out.Env = [...env].map(([k, v]) => `${k}=${v}`);
  return out;
}

/** Docker's layer media types for the base layers (the blobs stay as they are). */
function dockerLayerType(mediaType: string, digest: string): string {
  if (mediaType === MEDIA.ociLayerGzip || mediaType === MEDIA.dockerLayerGzip) return MEDIA.dockerLayerGzip;
  if (mediaType === MEDIA.ociLayer || mediaType === MEDIA.dockerLayer) return MEDIA.dockerLayer;
  throw new FunctionImageError(
    `the base image has a layer Lambda cannot read (${digest}, ${mediaType}): use an image whose layers are gzip or plain tar`,
  );
}

function containerVariables(spec: BuildFunctionImageInput["spec"]): Record<string, string> {
  const container = (spec.raw.lambda as Record<string, unknown> | undefined)?.container as
    | { environment?: { Variables?: Record<string, unknown> } }
    | undefined;
  const vars = container?.environment?.Variables ?? {};
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)]));
}

/** Builds the function image into the local store (see the header). */
export async function buildFunctionImage(
  input: BuildFunctionImageInput,
  opts: BuildOptions = {},
): Promise<BuiltFunctionImage> {
  const { images } = input;
  const store = images.store;
  const limit = opts.maxUncompressedBytes ?? LAMBDA_MAX_UNCOMPRESSED_BYTES;
  let tag: string;
  try {
    tag = formatReference(parseReference(input.tag));
  } catch (err) {
    throw new FunctionImageError(`'${input.tag}' cannot name an image: ${(err as Error).message}`);
  }
  // everything that can be refused from the function's own files, before any download
  const fnEntries = functionLayerEntries(input);
  const rt = runtimeFiles(opts.node);

  const base = await baseImage(input);
  if (base.platform.os !== "linux" || base.platform.architecture !== "amd64")
    throw new FunctionImageError(
      `the image ${base.names[0] ?? base.digest} is ${formatPlatform(base.platform)}; scar builds Lambda functions for linux/amd64: use an amd64 image`,
    );
  const baseBytes = base.layers.reduce((n, l) => n + (store.getLayer(l.chainId)?.size ?? 0), 0);
  if (baseBytes > limit)
    throw new FunctionImageError(
      `the image ${base.names[0] ?? base.digest} is ${gb(baseBytes)} uncompressed, over Lambda's ${gb(limit)} limit for container images: use a smaller base image`,
    );
  const releases = [store.lease([base.digest, ...base.layers.map((l) => l.chainId)])];
  try {
    input.onProgress?.({ stage: "layer", detail: "scar's runtime" });
    const { layer: runtime, release: releaseRuntime } = await runtimeLayer(images, rt);
    releases.push(releaseRuntime);
    input.onProgress?.({ stage: "layer", detail: "the function's files" });
    const fn = await writeLayer(store, fnEntries);
    const total = baseBytes + runtime.uncompressedSize + fn.uncompressedSize;
    if (total > limit)
      throw new FunctionImageError(
        `the function image would be ${gb(total)} uncompressed, over Lambda's ${gb(limit)} limit for container images: use a smaller base image or extra_payload`,
      );

    input.onProgress?.({ stage: "config" });
    const baseConfig = store.config(base);
    const config: ImageConfigFile = {
      ...(baseConfig.created ? { created: baseConfig.created } : {}),
      architecture: "amd64",
      os: "linux",
      config: imageConfig(baseConfig.config ?? {}, rt.entrypoint, containerVariables(input.spec)),
      rootfs: { type: "layers", diff_ids: [...base.layers.map((l) => l.diffId), runtime.diffId, fn.diffId] },
      history: [
        ...(baseConfig.history ?? []),
        { created_by: "scar: Lambda runtime under /opt/scar", comment: "scar" },
        {
          created_by: "scar: function_config.yaml, init script, extra_payload in /var/task",
          comment: "scar",
        },
      ],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = store.putBlob(configBytes);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { mediaType: MEDIA.dockerConfig, size: configBytes.length, digest: configDigest },
      layers: [
        ...base.layers.map((l) => ({
          mediaType: dockerLayerType(l.mediaType, l.digest),
          size: l.size,
          digest: l.digest,
        })),
        { mediaType: MEDIA.dockerLayerGzip, size: runtime.size, digest: runtime.digest },
        { mediaType: MEDIA.dockerLayerGzip, size: fn.size, digest: fn.digest },
      ],
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const digest = store.putBlob(manifestBytes);
    const layers = layerRecords(manifest, config.rootfs.diff_ids);
    const unpackLease = store.lease([
      digest,
      configDigest,
      ...layers.map((l) => l.digest),
      ...layers.map((l) => l.chainId),
    ]);
    try {
      for (let i = 0; i < layers.length; i++) await store.ensureLayer(layers, i);
      await store.putImage(
        {
          digest,
          mediaType: MEDIA.dockerManifest,
          configDigest,
          layers,
          platform: LAMBDA_PLATFORM,
          ...(base.source ? { source: base.source } : {}),
          ...(config.created ? { created: config.created } : {}),
          added: new Date().toISOString(),
        },
        [tag],
      );
    } finally {
      unpackLease();
    }
    input.onProgress?.({ stage: "done", detail: digest });
    return {
      reference: tag,
      digest,
      layerBytes: runtime.size + fn.size,
      compressedBytes: manifest.layers.reduce((n, l) => n + l.size, 0),
      uncompressedBytes: total,
    };
  } finally {
    for (const release of releases) release();
  }
}
