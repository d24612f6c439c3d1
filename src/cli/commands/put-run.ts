/** What `scar put` and `scar get` do. */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { configFolder } from "../../config/scar-cfg.js";
import { pool } from "../../targets/pool.js";
import { printJson, say, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { countLine, showProgress } from "../progress.js";
import { splitBucketPath } from "./manage-run.js";
import type { TransferFlags } from "./put.js";

/** Every file under `dir` (symbolic links to files followed, to folders not), relative paths sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() || (e.isSymbolicLink() && statSync(p).isFile())) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export async function runPut(flags: TransferFlags): Promise<void> {
  const [bucket, folder] = splitBucketPath(flags.bucket, flags.bucketFolder);
  const src = resolve(flags.path);
  if (!existsSync(src)) throw new CliError(`Unable to find the file to upload with path '${flags.path}'`);
  const isDir = statSync(src).isDirectory();
  const files = isDir ? filesUnder(src) : [src];
  const keyOf = (f: string) => {
    const rel = isDir ? relative(src, f).split(sep).join("/") : basename(f);
    return folder ? `${folder}/${rel}` : rel;
  };
  await withTarget(flags, async (target) => {
    const store = await target.buckets();
    store.resumeDir = join(configFolder(), "uploads");
    await store.ensureFolder(bucket, folder);
    const progress = showProgress(flags.json);
    const line = progress
      ? countLine(`uploading to '${bucket}${folder ? `/${folder}` : ""}'`, files.length)
      : undefined;
    const done: { File: string; Bucket: string; Key: string; Size: number }[] = [];
    const failed: string[] = [];
    await pool(files, 8, async (f) => {
      const key = keyOf(f);
      if (!progress && !flags.json) say(`Uploading file '${f}' to bucket '${bucket}' with key '${key}'.`);
      try {
        const { resumedParts } = await store.upload(
          f,
          bucket,
          key,
          line ? (n) => line.add({ bytes: n }) : undefined,
        );
        if (resumedParts > 0 && !flags.json)
          process.stderr.write(
            `${line ? "\n" : ""}resumed the upload of '${f}': ${resumedParts} parts were already there\n`,
          );
        done.push({ File: f, Bucket: bucket, Key: key, Size: statSync(f).size });
        line?.add({ done: 1 });
      } catch (err) {
        failed.push(`${f}: ${(err as Error).message}`);
        line?.add({ failed: 1 });
      }
    });
    line?.finish(
      `uploaded ${done.length} file${done.length === 1 ? "" : "s"} to '${bucket}${folder ? `/${folder}` : ""}'`,
    );
    if (flags.json) printJson({ Uploaded: done, Failed: failed });
    if (failed.length > 0) {
      for (const f of failed) process.stderr.write(`error: ${f}\n`);
      throw new CliError(`${failed.length} of ${files.length} files were not uploaded`);
    }
  });
}

export async function runGet(flags: TransferFlags): Promise<void> {
  const [bucket, prefix] = splitBucketPath(flags.bucket, flags.bucketFolder);
  const dest = resolve(flags.path);
  await withTarget(flags, async (target) => {
    const store = await target.buckets();
    const objects: { key: string; size: number }[] = [];
    for await (const o of store.list(bucket, prefix)) if (!o.key.endsWith("/")) objects.push(o);
    const progress = showProgress(flags.json);
    const line = progress ? countLine(`downloading from '${flags.bucket}'`, objects.length) : undefined;
    const done: { Bucket: string; Key: string; File: string; Size: number }[] = [];
    const skipped: string[] = [];
    const failed: string[] = [];
    await pool(objects, 8, async (o) => {
      const file = resolve(dest, ...o.key.split("/"));
      // A key with '..' must not write outside the folder the user named.
      if (file !== dest && !file.startsWith(`${dest}${sep}`)) {
        failed.push(`${o.key}: the key leads outside '${flags.path}'; not downloaded`);
        line?.add({ failed: 1 });
        return;
      }
      if (!flags.overwrite && existsSync(file)) {
        skipped.push(file);
        line?.add({ done: 1 });
        return;
      }
      if (!progress && !flags.json)
        say(`Downloading file '${o.key}' from bucket '${bucket}' in path '${flags.path}'.`);
      try {
        await store.download(bucket, o.key, file, line ? (n) => line.add({ bytes: n }) : undefined);
        done.push({ Bucket: bucket, Key: o.key, File: file, Size: o.size });
        line?.add({ done: 1 });
      } catch (err) {
        failed.push(`${o.key}: ${(err as Error).message}`);
        line?.add({ failed: 1 });
      }
    });
    line?.finish(`downloaded ${done.length} file${done.length === 1 ? "" : "s"} into '${flags.path}'`);
    if (flags.json) printJson({ Downloaded: done, Skipped: skipped, Failed: failed });
    else if (skipped.length > 0)
      process.stderr.write(
        `kept ${skipped.length} local file${skipped.length === 1 ? "" : "s"} that already existed (--overwrite replaces them)\n`,
      );
    if (failed.length > 0) {
      for (const f of failed) process.stderr.write(`error: ${f}\n`);
      throw new CliError(`${failed.length} of ${objects.length} files were not downloaded`);
    }
  });
}
