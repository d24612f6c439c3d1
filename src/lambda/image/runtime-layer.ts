/**
 * What scar adds to every function image under /opt/scar, needing nothing from the base image (a
 * glibc image, a musl one, or scratch with one static binary):
 *
 *   /opt/scar/bin/node                the Node binary running scar (process.execPath)
 *   /opt/scar/lib/<soname>            its shared libraries (its `ldd` closure) and its dynamic loader
 *   /opt/scar/runtime/bootstrap.mjs   scar's Lambda runtime in one file (scripts/bundle-lambda-runtime.mjs)
 *
 * Node is started through its own loader with `--library-path /opt/scar/lib`, so the image's libc,
 * loader and /etc/ld.so.cache are never read (a musl image has no glibc; scratch has nothing). The
 * library path is an argument of the loader, not LD_LIBRARY_PATH: the user's script, which the runtime
 * starts with the image's /bin/sh, uses the image's own libraries as it would anywhere else.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

export const RUNTIME_ROOT = "/opt/scar";
export const RUNTIME_BUNDLE = `${RUNTIME_ROOT}/runtime/bootstrap.mjs`;
const NODE = `${RUNTIME_ROOT}/bin/node`;
const LIB = `${RUNTIME_ROOT}/lib`;

/** One file of the layer, read from the host. Paths are absolute inside the image. */
export interface LayerFile {
  path: string;
  source: string;
  mode: number;
}

export interface RuntimeFiles {
  files: LayerFile[];
  /** the image's Entrypoint: the loader running node on the bundle */
  entrypoint: string[];
}

export class RuntimeLayerError extends Error {}

/** dist/lambda/bootstrap.mjs, written by `npm run build`. */
export function bundlePath(): string {
  return fileURLToPath(new URL("../../../lambda/bootstrap.mjs", import.meta.url));
}

/** The shared libraries and the loader of an ELF executable, as `ldd` lists them. */
export function sharedLibraries(executable: string): {
  libs: { name: string; path: string }[];
  loader?: string;
} {
  const r = spawnSync("ldd", [executable], { encoding: "utf8" });
  if (r.error)
    throw new RuntimeLayerError(
      `cannot list the libraries of ${executable}: ldd: ${r.error.message} (install libc-bin)`,
    );
  const text = `${r.stdout}${r.stderr}`;
  // a static binary: nothing to carry
  if (/not a dynamic executable|statically linked/.test(text)) return { libs: [] };
  if (r.status !== 0) throw new RuntimeLayerError(`ldd ${executable} failed: ${text.trim()}`);
  const libs: { name: string; path: string }[] = [];
  let loader: string | undefined;
  for (const line of text.split("\n")) {
    const dep = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(/.exec(line);
    if (dep) {
      libs.push({ name: dep[1]!, path: dep[2]! });
      continue;
    }
    if (/=>\s+not found/.test(line))
      throw new RuntimeLayerError(`${executable} needs a library this machine lacks: ${line.trim()}`);
    const ld = /^\s*(\/\S+)\s+\(/.exec(line);
    if (ld) loader = ld[1];
  }
  return { libs, ...(loader ? { loader } : {}) };
}

/** The runtime's files and entry point, from the Node running scar and the built bundle. */
export function runtimeFiles(node = process.execPath, bundle = bundlePath()): RuntimeFiles {
  if (!existsSync(bundle))
    throw new RuntimeLayerError(
      `scar's Lambda runtime bundle is missing (${bundle}): run \`npm run build\` in scar's folder`,
    );
  const files: LayerFile[] = [
    { path: NODE, source: realpathSync(node), mode: 0o755 },
    { path: RUNTIME_BUNDLE, source: bundle, mode: 0o644 },
  ];
  const { libs, loader } = sharedLibraries(node);
  const seen = new Set<string>();
  for (const l of libs) {
    const name = basename(l.name);
    if (seen.has(name)) continue;
    seen.add(name);
    files.push({ path: `${LIB}/${name}`, source: realpathSync(l.path), mode: 0o755 });
  }
  if (!loader) return { files, entrypoint: [NODE, RUNTIME_BUNDLE] };
  const loaderPath = `${LIB}/${basename(loader)}`;
  if (!seen.has(basename(loader)))
    files.push({ path: loaderPath, source: realpathSync(loader), mode: 0o755 });
  return { files, entrypoint: [loaderPath, "--library-path", LIB, NODE, RUNTIME_BUNDLE] };
}

/**
 * A key for the runtime layer's content without reading 100 MB: each file's place, source, size and
 * mtime, and the bundle's own hash (it changes at every build of scar). Used to find the layer built
 * before (see layer.ts); the layer is still verified by its digest when it is used.
 */
export function runtimeKey(rt: RuntimeFiles): string {
  const h = createHash("sha256");
  for (const f of rt.files) {
    const st = statSync(f.source);
    h.update(`${f.path}\0${f.source}\0${st.size}\0${st.mtimeMs}\0${f.mode}\n`);
  }
  h.update(readFileSync(rt.files.find((f) => f.path === RUNTIME_BUNDLE)!.source));
  h.update(rt.entrypoint.join("\0"));
  return h.digest("hex");
}
