/**
 * Stage-out: every regular file under the output folder (sub-folders kept) goes to each output whose
 * prefix/suffix filters match it, as `<folder>/<relative path>`.
 */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { OutputPath } from "../fdl/spec.js";

export interface OutputFile {
  /** Path relative to the output folder, with '/' separators. */
  rel: string;
  abs: string;
  size: number;
}

/**
 * Regular files only, in name order. Symbolic links are skipped, never followed: the engine reads
 * this folder on the host, and a link written by a script must not carry a host file out.
 */
export async function collectOutputFiles(dir: string): Promise<{ files: OutputFile[]; skipped: string[] }> {
  const files: OutputFile[] = [];
  const skipped: string[] = [];
  const walk = async (abs: string, rel: string) => {
    const entries = await readdir(abs, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const childAbs = join(abs, e.name);
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(childAbs, childRel);
      else if (e.isFile()) files.push({ rel: childRel, abs: childAbs, size: (await lstat(childAbs)).size });
      else skipped.push(childRel);
    }
  };
  await walk(dir, "");
  return { files, skipped };
}

/** faas-supervisor's rule: every listed prefix/suffix is an alternative; an empty list matches all. */
export function outputMatches(rel: string, out: Pick<OutputPath, "prefix" | "suffix">): boolean {
  const prefixOk = out.prefix.length === 0 || out.prefix.some((p) => rel.startsWith(p));
  const suffixOk = out.suffix.length === 0 || out.suffix.some((s) => rel.endsWith(s));
  return prefixOk && suffixOk;
}

export function outputKey(out: Pick<OutputPath, "folder">, rel: string): string {
  const clean = rel.replace(/[\r\n]/g, "").replace(/^\/+/, "");
  return out.folder ? `${out.folder}/${clean}` : clean;
}
