/** Shared helpers of the image tests: crafted tar layers, temp dirs, busybox root file systems. */

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import {
  END_OF_ARCHIVE,
  entryHeader,
  padding,
  type TarWriteHeader,
} from "../../../src/engine/images/tarwriter.js";
import { tempDirRemovedAtExit } from "../../fixtures/temp-dirs.js";

export interface CraftedEntry extends Partial<TarWriteHeader> {
  name: string;
  data?: string | Buffer;
}

/** Builds a tar archive from entries; `end: false` leaves out the end-of-archive blocks. */
export function craftTar(entries: CraftedEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const type = e.type ?? (data !== undefined ? "file" : e.name.endsWith("/") ? "dir" : "file");
    const h: TarWriteHeader = { ...e, type, size: e.size ?? data?.length ?? 0 };
    parts.push(entryHeader(h));
    if (data !== undefined) parts.push(data, padding(data.length));
  }
  if (opts.end !== false) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export async function* chunks(buf: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** A temp folder, removed when the test process exits (see fixtures/temp-dirs.ts). */
export function tempDir(prefix = "scar-img-"): string {
  return tempDirRemovedAtExit(prefix);
}

export const isRoot = process.getuid?.() === 0;

/** A minimal busybox-static root file system (the binary plus links for these applets). */
export function busyboxRootfs(dest: string, applets = ["sh", "ls", "cat", "echo", "true"]): string {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error("busybox-static is not installed (scripts/install-deps.sh)");
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"])
    fs.mkdirSync(join(dest, d), { recursive: true });
  fs.copyFileSync(busybox, join(dest, "bin/busybox"));
  fs.chmodSync(join(dest, "bin/busybox"), 0o755);
  for (const a of applets) fs.symlinkSync("busybox", join(dest, "bin", a));
  fs.writeFileSync(join(dest, "etc/hostname"), "scar\n");
  return dest;
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
