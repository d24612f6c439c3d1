/**
 * Importing images from files: `docker save` archives (SCAR's `image_file`; both the classic layout with
 * `<id>/layer.tar` and the OCI-based one of newer Docker), OCI image layouts (a directory or a tar of
 * one), and a plain root file system (a directory or a tar, compressed or not) as a one-layer image,
 * like `podman import`. Every blob is stored by digest (OCI layout blobs are verified against their
 * names, layer DiffIDs against the config while unpacking).
 */
import * as fs from "node:fs";
import { basename, join, posix } from "node:path";
import { decompressStream, detectCompression } from "./compression.js";
import { Digester } from "./digest.js";
import { formatReference, parseReference } from "./reference.js";
import { type ContentStore, type ImageRecord, layerRecords } from "./store.js";
import { readTar } from "./tar.js";
import { tarDirectory } from "./tarwriter.js";
import {
  configPlatform,
  type Descriptor,
  hostPlatform,
  type ImageConfig,
  type ImageConfigFile,
  INDEX_TYPES,
  type Index,
  MANIFEST_TYPES,
  type Manifest,
  MEDIA,
  type Platform,
} from "./types.js";

export type ImportFormat = "auto" | "docker-archive" | "oci" | "rootfs";

export interface ImportOptions {
  format?: ImportFormat;
  /** the name to give the image (for a rootfs, or an archive without names) */
  tag?: string;
  /** Dockerfile-like changes to the config of a rootfs import: `CMD ["/bin/sh"]`, `ENV A=b`, `WORKDIR /w`, ... */
  changes?: string[];
  /** platform to choose from a multi-platform OCI layout (default: the host's) */
  platform?: Platform;
}

export interface ImportResult {
  format: Exclude<ImportFormat, "auto">;
  images: ImageRecord[];
}

const ARCHIVE_NAME =
  /^(?:manifest\.json|repositories|index\.json|oci-layout|blobs(?:\/.*)?|[a-f0-9]{64}(?:\.json|\.tar|\/.*)?)$/;
const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function clean(name: string): string {
  return posix.normalize(name.replace(/^\.?\/+/, "")).replace(/\/$/, "");
}

/** Looks at a tar's entry names (without storing anything) to tell an image archive from a rootfs. */
async function sniffTar(path: string): Promise<"docker-archive" | "oci" | "rootfs"> {
  const src = await decompressStream(fs.createReadStream(path, { highWaterMark: 1 << 20 }));
  let sawOciLayout = false;
  let sawIndex = false;
  for await (const { header } of readTar(src)) {
    const n = clean(header.name);
    if (n === "" || n === ".") continue;
    if (!ARCHIVE_NAME.test(n)) return "rootfs";
    if (n === "manifest.json") return "docker-archive";
    if (n === "oci-layout") sawOciLayout = true;
    if (n === "index.json") sawIndex = true;
  }
  if (sawOciLayout && sawIndex) return "oci";
  return "rootfs";
}

/** The contents of an image archive once its files are in the store: small JSON in memory, blobs by digest. */
interface ArchiveFiles {
  json: Map<string, Buffer>;
  blobs: Map<string, string>;
  read(name: string): Buffer;
  digestOf(name: string): string;
}

async function ingestArchiveTar(store: ContentStore, path: string): Promise<ArchiveFiles> {
  const json = new Map<string, Buffer>();
  const blobs = new Map<string, string>();
  const links = new Map<string, string>();
  const src = await decompressStream(fs.createReadStream(path, { highWaterMark: 1 << 20 }));
  for await (const { header, body } of readTar(src)) {
    const n = clean(header.name);
    if (header.type === "symlink" || header.type === "link") {
      const target =
        header.type === "symlink" ? posix.join(posix.dirname(n), header.linkname) : clean(header.linkname);
      links.set(n, clean(target));
      continue;
    }
    if (header.type !== "file") continue;
    const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(n);
    if (!m && (n.endsWith(".json") || n === "repositories" || n === "oci-layout") && header.size <= 8 << 20) {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c);
      json.set(n, Buffer.concat(parts));
      continue;
    }
    blobs.set(n, await store.ingest(body, m ? `${m[1]}:${m[2]}` : undefined));
  }
  const resolve = (name: string) => {
    let n = clean(name);
    for (let i = 0; i < 40 && links.has(n); i++) n = links.get(n)!;
    return n;
  };
  return {
    json,
    blobs,
    read(name) {
      const n = resolve(name);
      const j = json.get(n);
      if (j) return j;
      const d = blobs.get(n);
      if (d) return store.readBlob(d);
      throw new Error(`the archive has no file "${name}"`);
    },
    digestOf(name) {
      const n = resolve(name);
      const d = blobs.get(n);
      if (d) return d;
      const j = json.get(n);
      if (j) return store.putBlob(j);
      throw new Error(`the archive has no file "${name}"`);
    },
  };
}

function archiveDir(store: ContentStore, dir: string): ArchiveFiles {
  const json = new Map<string, Buffer>();
  const blobs = new Map<string, string>();
  const inside = (name: string) => {
    const n = clean(name);
    if (n.startsWith("..") || posix.isAbsolute(n)) throw new Error(`bad path "${name}" in the image layout`);
    return join(dir, n);
  };
  return {
    json,
    blobs,
    read(name) {
      return fs.readFileSync(inside(name));
    },
    digestOf(name) {
      const n = clean(name);
      const cached = blobs.get(n);
      if (cached) return cached;
      const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(n);
      const expected = m ? `${m[1]}:${m[2]}` : undefined;
      if (expected && store.hasBlob(expected)) return expected;
      throw new Error(`call ingest for ${name}`);
    },
  };
}

async function ingestDirBlob(
  store: ContentStore,
  dir: string,
  files: ArchiveFiles,
  name: string,
): Promise<string> {
  try {
    return files.digestOf(name);
  } catch {}
  const n = clean(name);
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(n);
  const d = await store.ingest(
    fs.createReadStream(join(dir, n), { highWaterMark: 1 << 20 }),
    m ? `${m[1]}:${m[2]}` : undefined,
  );
  files.blobs.set(n, d);
  return d;
}

function layerMediaType(store: ContentStore, digest: string, docker: boolean): string {
  const fd = fs.openSync(store.blobPath(digest), "r");
  const head = Buffer.alloc(4);
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  const c = detectCompression(head);
  if (docker)
    return c === "gzip" ? MEDIA.dockerLayerGzip : c === "zstd" ? MEDIA.ociLayerZstd : MEDIA.dockerLayer;
  return c === "gzip" ? MEDIA.ociLayerGzip : c === "zstd" ? MEDIA.ociLayerZstd : MEDIA.ociLayer;
}

/** Unpacks the layers and records the image under the given names. */
async function finish(
  store: ContentStore,
  manifestBytes: Buffer,
  mediaType: string,
  names: string[],
): Promise<ImageRecord> {
  const manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
  const digest = store.putBlob(manifestBytes);
  const config = JSON.parse(store.readBlob(manifest.config.digest).toString("utf8")) as ImageConfigFile;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length)
    throw new Error(
      `the image config lists ${diffIds.length} layers but there are ${manifest.layers.length}`,
    );
  const layers = layerRecords(manifest, diffIds);
  const release = store.lease([
    digest,
    manifest.config.digest,
    ...layers.map((l) => l.digest),
    ...layers.map((l) => l.chainId),
  ]);
  try {
    for (let i = 0; i < layers.length; i++) await store.ensureLayer(layers, i);
    const rec: Omit<ImageRecord, "names"> = {
      digest,
      mediaType,
      configDigest: manifest.config.digest,
      layers,
      platform: configPlatform(config),
      added: new Date().toISOString(),
    };
    if (config.created) rec.created = config.created;
    return await store.putImage(rec, names);
  } finally {
    release();
  }
}

function normalizeName(n: string): string {
  return formatReference(parseReference(n));
}

function defaultName(path: string): string {
  const base =
    basename(path)
      .replace(/\.(tar|tgz|tar\.gz|tar\.zst|oci)$/i, "")
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "") || "image";
  return normalizeName(`localhost/${base}:latest`);
}

async function importDockerArchive(
  store: ContentStore,
  files: ArchiveFiles,
  opts: ImportOptions,
  path: string,
): Promise<ImageRecord[]> {
  const items = JSON.parse(files.read("manifest.json").toString("utf8")) as {
    Config: string;
    RepoTags?: string[] | null;
    Layers: string[];
  }[];
  const out: ImageRecord[] = [];
  for (const item of items) {
    const configBytes = files.read(item.Config);
    const configDigest = store.putBlob(configBytes);
    const layers: Descriptor[] = item.Layers.map((l) => {
      const d = files.digestOf(l);
      return { mediaType: layerMediaType(store, d, true), digest: d, size: store.blobSize(d)! };
    });
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { mediaType: MEDIA.dockerConfig, size: configBytes.length, digest: configDigest },
      layers,
    };
    const names = (item.RepoTags ?? []).map(normalizeName);
    if (opts.tag) names.push(normalizeName(opts.tag));
    if (names.length === 0) names.push(defaultName(path));
    out.push(await finish(store, Buffer.from(JSON.stringify(manifest)), MEDIA.dockerManifest, names));
  }
  return out;
}

async function importOciLayout(
  store: ContentStore,
  files: ArchiveFiles,
  opts: ImportOptions,
  path: string,
  ingest: (name: string) => Promise<string>,
): Promise<ImageRecord[]> {
  const layout = JSON.parse(files.read("oci-layout").toString("utf8")) as { imageLayoutVersion?: string };
  if (!layout.imageLayoutVersion)
    throw new Error("not an OCI image layout (oci-layout has no imageLayoutVersion)");
  const index = JSON.parse(files.read("index.json").toString("utf8")) as Index;
  const want = opts.platform ?? hostPlatform();
  const blobName = (d: string) => `blobs/${d.replace(":", "/")}`;
  const out: ImageRecord[] = [];
  const platformOk = (p?: Platform) => !p || (p.os === want.os && p.architecture === want.architecture);

  const manifests: { desc: Descriptor; names: string[] }[] = [];
  const walk = async (descs: Descriptor[], inherited: string[], depth: number) => {
    if (depth > 4) throw new Error("OCI layout: indexes nested too deeply");
    for (const d of descs) {
      const names = [...inherited];
      const a = d.annotations ?? {};
      const full = a["io.containerd.image.name"];
      const refName = a["org.opencontainers.image.ref.name"];
      if (full) names.push(full);
      else if (refName && /[/:]/.test(refName)) names.push(refName);
      // a bare tag names the image after the layout's file or directory: localhost/<name>:<tag>
      else if (refName) names.push(`${defaultName(path).replace(/:latest$/, "")}:${refName}`);
      if (INDEX_TYPES.includes(d.mediaType)) {
        await ingest(blobName(d.digest));
        const nested = JSON.parse(store.readBlob(d.digest).toString("utf8")) as Index;
        await walk(nested.manifests, names, depth + 1);
      } else if (MANIFEST_TYPES.includes(d.mediaType) && platformOk(d.platform))
        manifests.push({ desc: d, names });
    }
  };
  await walk(index.manifests, [], 0);
  if (manifests.length === 0) throw new Error("the OCI layout has no image manifest for this platform");
  for (const { desc, names } of manifests) {
    await ingest(blobName(desc.digest));
    const bytes = store.readBlob(desc.digest);
    const m = JSON.parse(bytes.toString("utf8")) as Manifest;
    await ingest(blobName(m.config.digest));
    for (const l of m.layers) await ingest(blobName(l.digest));
    const all = names.map(normalizeName);
    if (opts.tag) all.push(normalizeName(opts.tag));
    if (all.length === 0) all.push(defaultName(path));
    out.push(await finish(store, bytes, desc.mediaType, [...new Set(all)]));
  }
  return out;
}

/** Applies Dockerfile-like instructions (as `docker import --change` takes them) to a config. */
export function applyChanges(cfg: ImageConfig, changes: string[]): ImageConfig {
  const out: ImageConfig = { ...cfg };
  const list = (v: string): string[] => {
    const t = v.trim();
    if (t.startsWith("[")) {
      const j = JSON.parse(t) as unknown;
      if (!Array.isArray(j) || !j.every((x) => typeof x === "string")) throw new Error(`bad JSON list: ${v}`);
      return j;
    }
    return ["/bin/sh", "-c", t];
  };
  for (const c of changes) {
    const m = /^\s*(\w+)\s+(.*)$/s.exec(c);
    if (!m) throw new Error(`bad change "${c}"`);
    const [, inst, arg] = m as unknown as [string, string, string];
    switch (inst.toUpperCase()) {
      case "CMD":
        out.Cmd = list(arg);
        break;
      case "ENTRYPOINT":
        out.Entrypoint = list(arg);
        break;
      case "ENV": {
        const pairs: [string, string][] = [];
        if (/^[^=\s]+=/.test(arg)) {
          for (const p of arg.match(/[^=\s]+=(?:"[^"]*"|\S*)/g) ?? []) {
            const i = p.indexOf("=");
            pairs.push([p.slice(0, i), p.slice(i + 1).replace(/^"(.*)"$/, "$1")]);
          }
        } else {
          const sp = arg.search(/\s/);
          pairs.push(sp < 0 ? [arg, ""] : [arg.slice(0, sp), arg.slice(sp).trim()]);
        }
        const env = (out.Env ?? []).filter((e) => !pairs.some(([k]) => e.startsWith(`${k}=`)));
        out.Env = [...env, ...pairs.map(([k, v]) => `${k}=${v}`)];
        break;
      }
      case "WORKDIR":
        out.WorkingDir = arg.trim();
        break;
      case "USER":
        out.User = arg.trim();
        break;
      case "LABEL": {
        out.Labels = { ...out.Labels };
        for (const p of arg.match(/[^=\s]+=(?:"[^"]*"|\S*)/g) ?? []) {
          const i = p.indexOf("=");
          out.Labels[p.slice(0, i)] = p.slice(i + 1).replace(/^"(.*)"$/, "$1");
        }
        break;
      }
      case "EXPOSE":
        out.ExposedPorts = { ...out.ExposedPorts };
        for (const p of arg.trim().split(/\s+/)) out.ExposedPorts[p.includes("/") ? p : `${p}/tcp`] = {};
        break;
      case "STOPSIGNAL":
        out.StopSignal = arg.trim();
        break;
      default:
        throw new Error(
          `unsupported change instruction "${inst}" (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL)`,
        );
    }
  }
  return out;
}

async function importRootfs(
  store: ContentStore,
  path: string,
  isDir: boolean,
  opts: ImportOptions,
): Promise<ImageRecord> {
  let digest: string;
  let diffId: string;
  if (isDir) {
    digest = await store.ingest(tarDirectory(path));
    diffId = digest;
  } else {
    digest = await store.ingest(fs.createReadStream(path, { highWaterMark: 1 << 20 }));
    const d = new Digester();
    let kind = "none";
    for await (const c of await decompressStream(fs.createReadStream(store.blobPath(digest)), (k) => {
      kind = k;
    }))
      d.update(c);
    diffId = kind === "none" ? digest : d.digest();
  }
  const p = hostPlatform();
  const created = new Date().toISOString();
  const config: ImageConfigFile = {
    created,
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: applyChanges({ Env: [DEFAULT_PATH] }, opts.changes ?? []),
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created, created_by: "scar image import", comment: `imported from ${basename(path)}` }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = store.putBlob(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: layerMediaType(store, digest, false), digest, size: store.blobSize(digest)! }],
  };
  const name = opts.tag ? normalizeName(opts.tag) : defaultName(path);
  return finish(store, Buffer.from(JSON.stringify(manifest)), MEDIA.ociManifest, [name]);
}

/** Imports an image archive, OCI layout or root file system (format detected unless given). */
export async function importImage(
  store: ContentStore,
  path: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const st = fs.statSync(path);
  let format = opts.format ?? "auto";
  if (opts.changes?.length && format !== "auto" && format !== "rootfs")
    throw new Error("changes apply only to a root file system import");
  if (st.isDirectory()) {
    if (format === "auto") {
      if (fs.existsSync(join(path, "manifest.json"))) format = "docker-archive";
      else if (fs.existsSync(join(path, "oci-layout"))) format = "oci";
      else format = "rootfs";
    }
    if (format === "rootfs") return { format, images: [await importRootfs(store, path, true, opts)] };
    const files = archiveDir(store, path);
    const ingest = (n: string) => ingestDirBlob(store, path, files, n);
    if (format === "docker-archive") {
      // make every layer and config known by digest first
      const items = JSON.parse(files.read("manifest.json").toString("utf8")) as {
        Config: string;
        Layers: string[];
      }[];
      for (const it of items) for (const l of it.Layers) await ingest(l);
      return { format, images: await importDockerArchive(store, files, opts, path) };
    }
    return { format, images: await importOciLayout(store, files, opts, path, ingest) };
  }
  if (format === "auto") format = await sniffTar(path);
  if (format === "rootfs") return { format, images: [await importRootfs(store, path, false, opts)] };
  const files = await ingestArchiveTar(store, path);
  if (format === "docker-archive")
    return { format, images: await importDockerArchive(store, files, opts, path) };
  return {
    format,
    images: await importOciLayout(store, files, opts, path, async (n) => files.digestOf(n)),
  };
}
