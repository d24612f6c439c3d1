/**
 * `scar image pull|import|push|ls|rm|prune`: the engine's local image store. Progress goes to stderr
 * on a terminal; with `--json`, or when stdout is not a terminal, output is quiet and
 * machine-readable. The image modules are imported only when a subcommand runs.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { openPrivateDataDir } from "../data-dir.js";
import { CliError } from "../errors.js";
import { human, progressLine } from "../progress.js";

interface StoreOpts {
  dataDir?: string;
  insecureRegistry?: string[];
  json?: boolean;
}

type Images = typeof import("../../engine/images/index.js");

const collect = (v: string, prev: string[] = []) => [...prev, v];

function addStoreOptions(cmd: Command): Command {
  return cmd
    .option(
      "--data-dir <dir>",
      "the engine's data folder (default: scar.cfg local.data_dir, $SCAR_DATA_DIR or ~/.scar/data)",
    )
    .option("--json", "print the result as JSON, without progress");
}

function addRegistryOptions(cmd: Command): Command {
  return cmd.option(
    "--insecure-registry <host:port>",
    "speak plain HTTP to this registry (loopback registries always may); repeatable",
    collect,
  );
}

async function open(
  opts: StoreOpts,
): Promise<{ m: Images; images: InstanceType<Images["ImageStore"]>; dataDir: string }> {
  const m = await import("../../engine/images/index.js");
  const dataDir = opts.dataDir ?? (await (await import("../data-dir.js")).configuredDataDir());
  await openPrivateDataDir(dataDir);
  // an ordinary user's rootless engine may have given layers to subordinate ids: rm and prune then
  // delete them, and a pull reads their closed folders, in a user namespace (engine/layer-owners.ts)
  const foreign =
    process.geteuid?.() !== 0
      ? await import("../../engine/layer-owners.js").then(async (lo) =>
          lo.foreignAccess((await import("../../engine/runtime/rootless.js")).rootlessMode()),
        )
      : {};
  const images = new m.ImageStore({
    dataDir,
    insecureRegistries: opts.insecureRegistry ?? [],
    ...foreign,
  });
  return { m, images, dataDir };
}

function interactive(opts: StoreOpts): boolean {
  return !opts.json && process.stderr.isTTY === true && process.stdout.isTTY === true;
}

function ago(iso: string | undefined): string {
  if (!iso) return "-";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return "-";
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

const short = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

/** Turns the image modules' errors into messages for the terminal. */
async function friendly<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliError) throw e;
    const m = await import("../../engine/images/index.js");
    const err = e as Error;
    if (e instanceof m.ImageReferenceError) throw new CliError(err.message, 2);
    if (e instanceof m.ImageNotFoundError)
      throw new CliError(err.message, 1, "see 'scar image ls', or get it with 'scar image pull'");
    if (e instanceof m.RegistryError) {
      const hint =
        e.code === "UNREACHABLE"
          ? (await import("../context.js")).UNREACHABLE_REGISTRY_HINT
          : e.status === 401
            ? "log in with 'docker login' (scar reads ~/.docker/config.json)"
            : /fetch failed|ECONNREFUSED|ENOTFOUND/.test(err.message)
              ? "is the registry reachable? a registry without TLS needs --insecure-registry"
              : undefined;
      throw new CliError(err.message, 1, hint);
    }
    if (e instanceof m.DigestMismatchError) throw new CliError(`${err.message} (nothing was kept)`);
    if (e instanceof m.UnsafeLayerError) throw new CliError(`refusing a hostile image layer: ${err.message}`);
    if ((e as NodeJS.ErrnoException).code === "ENOENT" && (e as NodeJS.ErrnoException).path)
      throw new CliError(`no such file or directory: ${(e as NodeJS.ErrnoException).path}`);
    throw e;
  }
}

export function registerImage(program: Command): void {
  const image = program.command("image").description("manage the local engine's container images");

  addRegistryOptions(
    addStoreOptions(
      image
        .command("pull")
        .description("download an image from a registry into the local store")
        .argument(
          "<image>",
          "image reference, e.g. busybox, grycap/cowsay:latest, localhost:5000/app@sha256:…",
        )
        .option(
          "--platform <os/arch[/variant]>",
          "platform to choose from a multi-platform image (default: this host's)",
        ),
    ),
  ).action(async (ref: string, opts: StoreOpts & { platform?: string }) => {
    const { m, images } = await open(opts);
    const platform = opts.platform ? await parsePlatformOpt(opts.platform) : undefined;
    const tty = interactive(opts);
    const line = tty ? progressLine(`pulling ${ref}`) : undefined;
    const rec = await friendly(() =>
      images.pull(ref, {
        ...(platform ? { platform } : {}),
        onProgress: (e) => {
          if (!line) return;
          if (e.type === "layer") {
            line.size(e.digest, e.size);
            if (e.status !== "downloading") line.bytes(e.digest, e.size);
          } else if (e.type === "progress") line.bytes(e.digest, e.bytes);
          else if (e.type === "retry") process.stderr.write(`\n${short(e.digest)}: retrying (${e.error})\n`);
        },
      }),
    );
    const name = m.familiarName(m.parseReference(ref));
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(summary(rec))}\n`);
      return;
    }
    line?.finish(`${name}: ${rec.digest}`);
    if (!tty) process.stdout.write(`${rec.names[0] ?? name} ${rec.digest}\n`);
  });

  addStoreOptions(
    image
      .command("import")
      .description(
        "import a 'docker save' archive, an OCI layout (folder or tar), or a root file system (folder or tar) as an image",
      )
      .argument("<path>", "file or folder to import")
      .option(
        "-t, --tag <name>",
        "name for the image (root file systems default to localhost/<file name>:latest)",
      )
      .option("--format <format>", "auto, docker-archive, oci or rootfs", "auto")
      .option(
        "-c, --change <instruction>",
        "apply a Dockerfile instruction to a root file system's config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE); repeatable",
        collect,
      ),
  ).action(async (path: string, opts: StoreOpts & { tag?: string; format: string; change?: string[] }) => {
    if (!["auto", "docker-archive", "oci", "rootfs"].includes(opts.format))
      throw new CliError(`unknown --format "${opts.format}"`, 2, "use auto, docker-archive, oci or rootfs");
    const { m, images } = await open(opts);
    const r = await friendly(() =>
      images.import(path, {
        format: opts.format as "auto",
        ...(opts.tag ? { tag: opts.tag } : {}),
        ...(opts.change ? { changes: opts.change } : {}),
      }),
    );
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ format: r.format, images: r.images.map(summary) })}\n`);
      return;
    }
    // the name as the user writes it (grycap/imagemagick:latest), as 'scar image ls' shows it
    for (const rec of r.images) {
      const name = rec.names[0] ? m.familiarName(m.parseReference(rec.names[0])) : "<none>";
      process.stdout.write(`${name} ${rec.digest}\n`);
    }
  });

  addRegistryOptions(
    addStoreOptions(
      image
        .command("push")
        .description("upload an image of the local store to a registry")
        .argument("<image>", "image in the local store")
        .argument("[target]", "where to push it (default: the image's own name)")
        .option("--chunk-size <bytes>", "upload blobs larger than this in chunks of this size"),
    ),
  ).action(async (ref: string, target: string | undefined, opts: StoreOpts & { chunkSize?: string }) => {
    const chunkSize = opts.chunkSize === undefined ? undefined : Number(opts.chunkSize);
    if (chunkSize !== undefined && !(Number.isInteger(chunkSize) && chunkSize > 0))
      throw new CliError(`invalid --chunk-size "${opts.chunkSize}"`, 2);
    const { images } = await open(opts);
    const dest = target ?? ref;
    const line = interactive(opts) ? progressLine(`pushing ${dest}`) : undefined;
    const out = await friendly(() =>
      images.push(ref, dest, {
        ...(chunkSize ? { chunkSize } : {}),
        onProgress: (e) => {
          if (!line) return;
          if (e.type === "blob") {
            line.size(e.digest, e.size);
            if (e.status !== "uploading") line.bytes(e.digest, e.size);
          } else if (e.type === "progress") line.bytes(e.digest, e.bytes);
        },
      }),
    );
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    line?.finish(`${out.ref}: ${out.digest}`);
    if (!line) process.stdout.write(`${out.ref} ${out.digest}\n`);
  });

  addStoreOptions(
    image
      .command("ls")
      .alias("list")
      .description("list the images in the local store")
      .option("-q, --quiet", "print image IDs only"),
  ).action(async (opts: StoreOpts & { quiet?: boolean }) => {
    const { m, images } = await open(opts);
    const list = images.list();
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(list.map(summary))}\n`);
      return;
    }
    if (opts.quiet) {
      for (const r of list) process.stdout.write(`${short(r.configDigest)}\n`);
      return;
    }
    const { formatTable } = await import("../table.js");
    const rows: (string | number)[][] = [];
    for (const r of list) {
      const size = human(r.layers.reduce((a, l) => a + l.size, 0));
      const names = r.names.filter((n) => !n.includes("@"));
      if (names.length === 0) {
        // pulled by digest only: show its repository, or nothing at all for a dangling image
        const byDigest = r.names[0] ? m.parseReference(r.names[0]) : undefined;
        const repo = byDigest ? m.familiarName({ ...byDigest, tag: undefined, digest: undefined }) : "<none>";
        rows.push([repo, "<none>", short(r.configDigest), ago(r.created), size]);
      }
      for (const n of names) {
        const p = m.parseReference(n);
        const repo = m.familiarName({ ...p, tag: undefined, digest: undefined });
        rows.push([repo, p.tag ?? "<none>", short(r.configDigest), ago(r.created), size]);
      }
    }
    process.stdout.write(`${formatTable(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)}\n`);
  });

  addStoreOptions(
    image
      .command("rm")
      .alias("remove")
      .description("remove images (by name, digest or ID); content no other image uses is deleted")
      .argument("<image...>", "images to remove")
      .option(
        "-f, --force",
        "remove an image by ID even when it has several names, or when deployed functions use it",
      ),
  ).action(async (refs: string[], opts: StoreOpts & { force?: boolean }) => {
    const { m, images, dataDir } = await open(opts);
    const r = await friendly(async () => {
      if (!opts.force) refuseImagesInUse(m, images, dataDir, refs);
      try {
        return await images.remove(refs, { force: opts.force === true });
      } catch (e) {
        if ((e as Error).message.includes("several names"))
          throw new CliError((e as Error).message, 1, "use --force");
        throw e;
      }
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    for (const n of r.untagged) process.stdout.write(`Untagged: ${n}\n`);
    for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
    if (r.kept) for (const line of keptLines(r.kept)) process.stdout.write(`${line}\n`);
  });

  addStoreOptions(
    image
      .command("prune")
      .description("remove images without a name, and every blob and layer no image uses")
      .option(
        "-a, --all",
        "remove all images (except those in use by a running container or a warm environment) and scar's cached Lambda runtime layer",
      ),
  ).action(async (opts: StoreOpts & { all?: boolean }) => {
    const { images } = await open(opts);
    const r = await friendly(() => images.prune({ all: opts.all === true }));
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    for (const d of r.images) process.stdout.write(`Deleted: ${d}\n`);
    for (const line of keptLines(r.kept)) process.stdout.write(`${line}\n`);
    process.stdout.write(
      `Removed ${r.images.length} images, ${r.blobs} blobs, ${r.layers} unpacked layers; reclaimed ${human(r.bytes)}\n`,
    );
  });
}

/** What prune or rm left in place and why, a line each (nothing when it kept nothing). */
function keptLines(kept: import("../../engine/images/index.js").Kept): string[] {
  // (a lease: a container or warm environment mounted over the layers, or a pull, import or build)
  const inUse = "in use by a running container, a warm execution environment or an image being made";
  const lines = kept.images.map((d) => `Kept: ${d} (${inUse})`);
  if (kept.layers > 0)
    lines.push(
      `Kept ${kept.layers} unpacked layer${kept.layers === 1 ? "" : "s"} (${human(kept.layerBytes)}) ${inUse}: a prune after ${kept.layers === 1 ? "it ends" : "they end"} removes ${kept.layers === 1 ? "it" : "them"}`,
    );
  for (const p of kept.pins)
    lines.push(`Kept ${p.what} (${human(p.bytes)}) for the next build: 'scar image prune --all' removes it`);
  return lines;
}

/**
 * A deployed function runs the image its manifest digest names; removing the image's last name
 * deletes it, and the function's next job fails with `image-error`. Refuses that, naming the
 * functions (a name removed while another name of the image stays is harmless).
 */
function refuseImagesInUse(
  m: Images,
  images: InstanceType<Images["ImageStore"]>,
  dataDir: string,
  refs: string[],
): void {
  // the engine's registry of deployed functions: <data dir>/functions/<name>/function.json
  const fnsDir = join(dataDir, "functions");
  const users = new Map<string, string[]>(); // image digest -> functions
  for (const name of existsSync(fnsDir) ? readdirSync(fnsDir) : []) {
    const file = join(fnsDir, name, "function.json");
    if (!existsSync(file)) continue;
    const fn = JSON.parse(readFileSync(file, "utf8")) as { image?: { digest?: string } };
    const d = fn.image?.digest;
    if (d) users.set(d, [...(users.get(d) ?? []), name]);
  }
  if (users.size === 0) return;
  const removedNames = new Map<string, Set<string>>(); // image digest -> names this command removes
  for (const ref of refs) {
    const rec = images.find(ref);
    if (!rec) continue; // remove() reports it
    const gone = removedNames.get(rec.digest) ?? new Set<string>();
    let byName: string | undefined;
    try {
      byName = m.formatReference(m.parseReference(ref));
    } catch {}
    if (byName && rec.names.includes(byName)) gone.add(byName);
    else for (const n of rec.names) gone.add(n); // by ID or digest: every name goes
    removedNames.set(rec.digest, gone);
  }
  for (const [digest, gone] of removedNames) {
    const rec = images.list().find((r) => r.digest === digest);
    const tagsLeft = (rec?.names ?? []).filter((n) => !n.includes("@") && !gone.has(n));
    const fns = users.get(digest);
    if (fns && tagsLeft.length === 0) {
      const shown = [...gone].find((n) => !n.includes("@")) ?? digest;
      throw new CliError(
        `image ${shown} is used by deployed function${fns.length === 1 ? "" : "s"} ${fns.map((f) => `'${f}'`).join(", ")}: removing it would make ${fns.length === 1 ? "its" : "their"} next run fail`,
        1,
        `remove the function${fns.length === 1 ? "" : "s"} first ('scar rm -n NAME'), or use --force`,
      );
    }
  }
}

async function parsePlatformOpt(s: string) {
  const { parsePlatform } = await import("../../engine/images/types.js");
  try {
    return parsePlatform(s);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

function summary(r: import("../../engine/images/index.js").ImageRecord) {
  return {
    id: r.configDigest,
    digest: r.digest,
    names: r.names,
    platform: r.platform,
    created: r.created ?? null,
    size: r.layers.reduce((a, l) => a + l.size, 0),
    layers: r.layers.length,
  };
}
