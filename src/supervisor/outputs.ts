/**
 * Stage-out: every regular file under the output folder (sub-folders kept) goes to each output whose
 * prefix/suffix filters match it, as `<folder>/<relative path>`.
 *
 * A synchronous answer: OSCAR's /run answers with the files the script left in the output folder
 * (faas-supervisor's BinarySupervisor.create_response), so the supervisor can keep them in memory
 * before the workspace is removed, up to a cap (`keepOutputFiles`).
 */

import { isUtf8 } from "node:buffer";
import { constants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { OutputPath } from "../fdl/spec.js";

export interface OutputFile {
  /** Path relative to the output folder, with '/' separators. */
  rel: string;
  abs: string;
  size: number;
}

export interface CollectedOutputs {
  files: OutputFile[];
  /** Relative paths of links, devices, sockets...: not uploaded. */
  skipped: string[];
  /**
   * Relative paths of files and folders whose name is not UTF-8 (an object key is UTF-8), the bad
   * bytes written as `\xNN`: not uploaded, nor anything under them.
   */
  badNames: string[];
}

/**
 * Regular files only, in name order. Symbolic links are skipped, never followed: the engine reads
 * this folder on the host, and a link written by a script must not carry a host file out. Names are
 * read as bytes: as a string, a name that is not UTF-8 would read with U+FFFD in place of its bad
 * bytes, and then name no file.
 */
export async function collectOutputFiles(dir: string): Promise<CollectedOutputs> {
  const files: OutputFile[] = [];
  const skipped: string[] = [];
  const badNames: string[] = [];
  const walk = async (abs: string, rel: string) => {
    const entries = await readdir(abs, { withFileTypes: true, encoding: "buffer" });
    entries.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const e of entries) {
      const raw = e.name as Buffer;
      if (!isUtf8(raw)) {
        badNames.push(rel ? `${rel}/${showBytes(raw)}` : showBytes(raw));
        continue;
      }
      const name = raw.toString("utf8");
      const childAbs = join(abs, name);
      const childRel = rel ? `${rel}/${name}` : name;
      if (e.isDirectory()) await walk(childAbs, childRel);
      else if (e.isFile()) files.push({ rel: childRel, abs: childAbs, size: (await lstat(childAbs)).size });
      else skipped.push(childRel);
    }
  };
  await walk(dir, "");
  return { files, skipped, badNames };
}

/** A name that is not UTF-8, readable: its valid parts as they are, each other byte as `\xNN`. */
function showBytes(name: Buffer): string {
  let out = "";
  let i = 0;
  while (i < name.length) {
    // the longest valid UTF-8 sequence starting here (1 to 4 bytes), else one bad byte
    let n = 0;
    for (let len = Math.min(4, name.length - i); len >= 1 && n === 0; len--)
      if (isUtf8(name.subarray(i, i + len)) && (len === 1 || name[i]! >= 0xc0)) n = len;
    if (n > 0) out += name.subarray(i, i + n).toString("utf8");
    else out += `\\x${name[i]!.toString(16).padStart(2, "0")}`;
    i += n > 0 ? n : 1;
  }
  return out;
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

/** The output folder's files kept for a synchronous answer, or why they were not. */
export type KeptOutputs =
  | { kind: "files"; files: { rel: string; data: Buffer }[] }
  | { kind: "too-large"; count: number; bytes: number; maxBytes: number };

/**
 * Every regular file under `dir` (as stage-out sees them: links skipped), read into memory when they
 * add up to at most `maxBytes`; otherwise none is read and their count and size are reported.
 */
export async function keepOutputFiles(dir: string, maxBytes: number): Promise<KeptOutputs> {
  const { files } = await collectOutputFiles(dir);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const tooLarge = (n: number): KeptOutputs => ({
    kind: "too-large",
    count: files.length,
    bytes: n,
    maxBytes,
  });
  if (bytes > maxBytes) return tooLarge(bytes);
  const kept: { rel: string; data: Buffer }[] = [];
  let total = 0;
  for (const f of files) {
    // O_NOFOLLOW: a file swapped for a link since the listing is not read through it. A file that grew
    // since (a process the script left behind) is cut at its listed size; reads never pass the cap.
    const h = await open(f.abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const room = maxBytes - total;
      const buf = Buffer.alloc(Math.min(f.size, room) + 1);
      let n = 0;
      for (let r = 1; r > 0 && n < buf.length; n += r) r = (await h.read(buf, n, buf.length - n)).bytesRead;
      if (n > room) return tooLarge(total + n);
      const data = buf.subarray(0, Math.min(n, f.size));
      total += data.length;
      kept.push({ rel: f.rel, data });
    } finally {
      await h.close();
    }
  }
  return { kind: "files", files: kept };
}
