/**
 * Writes tar archives (ustar, with PAX records for long names, big numbers and xattrs) from a
 * directory tree or from entries given one by one. Used to import a plain root file system as a layer.
 */
import * as fs from "node:fs";
import { join } from "node:path";

export interface TarWriteHeader {
  name: string;
  type: "file" | "dir" | "symlink" | "link" | "char" | "block" | "fifo" | "raw";
  /** the typeflag to write when type is "raw" */
  typeflag?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  /** extra PAX records (e.g. SCHILY.xattr.*) */
  pax?: Record<string, string>;
}

const FLAGS: Record<string, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  const s = Math.max(0, Math.floor(v)).toString(8);
  if (s.length > len - 1) {
    buf.write("0".repeat(len - 1), off, "ascii");
    return false;
  }
  buf.write(`${s.padStart(len - 1, "0")}\0`, off, "ascii");
  return true;
}

function paxRecords(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len)
      len = String(len).length + Buffer.byteLength(body);
    parts.push(Buffer.from(`${len}${body}`, "utf8"));
  }
  return Buffer.concat(parts);
}

export function padding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

/** One raw 512-byte header block (no PAX handling). */
export function headerBlock(
  h: TarWriteHeader,
  typeflag?: string,
): { block: Buffer; overflow: Record<string, string> } {
  const b = Buffer.alloc(512);
  const overflow: Record<string, string> = {};
  const name = Buffer.from(h.name, "utf8");
  if (name.length <= 100) name.copy(b, 0);
  else {
    overflow.path = h.name;
    name.subarray(0, 100).copy(b, 0);
  }
  octal(b, 100, 8, h.mode ?? (h.type === "dir" ? 0o755 : 0o644));
  if (!octal(b, 108, 8, h.uid ?? 0)) overflow.uid = String(h.uid);
  if (!octal(b, 116, 8, h.gid ?? 0)) overflow.gid = String(h.gid);
  if (!octal(b, 124, 12, h.size ?? 0)) overflow.size = String(h.size);
  if (!octal(b, 136, 12, h.mtime ?? 0)) overflow.mtime = String(h.mtime);
  b.write(typeflag ?? (h.type === "raw" ? (h.typeflag ?? "0") : FLAGS[h.type]!), 156, "latin1");
  const link = Buffer.from(h.linkname ?? "", "utf8");
  if (link.length <= 100) link.copy(b, 157);
  else overflow.linkpath = h.linkname!;
  b.write("ustar\u000000", 257, "latin1");
  b.write((h.uname ?? "").slice(0, 31), 265, "utf8");
  b.write((h.gname ?? "").slice(0, 31), 297, "utf8");
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return { block: b, overflow };
}

/** The header blocks of an entry: a PAX header first when a field does not fit ustar. */
export function entryHeader(h: TarWriteHeader): Buffer {
  const { block, overflow } = headerBlock(h);
  const records = { ...overflow, ...h.pax };
  if (Object.keys(records).length === 0) return block;
  const body = paxRecords(records);
  const { block: paxBlock } = headerBlock(
    { name: `PaxHeaders/${h.name.slice(-80)}`, type: "raw", typeflag: "x", size: body.length },
    "x",
  );
  return Buffer.concat([paxBlock, body, padding(body.length), block]);
}

export const END_OF_ARCHIVE = Buffer.alloc(1024);

/**
 * Streams a directory tree as a tar archive (entries relative to the root, root first as "./"),
 * keeping owners, modes, times, symlinks and hard links. Devices and sockets are left out.
 */
export async function* tarDirectory(root: string): AsyncGenerator<Buffer> {
  const seen = new Map<string, string>();
  const walk = async function* (rel: string): AsyncGenerator<Buffer> {
    const abs = rel === "" ? root : join(root, rel);
    const names = fs.readdirSync(abs).sort();
    for (const n of names) {
      const r = rel === "" ? n : `${rel}/${n}`;
      const p = join(root, r);
      const st = fs.lstatSync(p);
      const base = {
        name: r,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (st.isDirectory()) {
        yield entryHeader({ ...base, name: `${r}/`, type: "dir" });
        yield* walk(r);
      } else if (st.isSymbolicLink()) {
        yield entryHeader({ ...base, type: "symlink", linkname: fs.readlinkSync(p) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          yield entryHeader({ ...base, type: "link", linkname: first });
          continue;
        }
        if (st.nlink > 1) seen.set(key, r);
        yield entryHeader({ ...base, type: "file", size: st.size });
        let written = 0;
        const fh = fs.createReadStream(p, { highWaterMark: 1 << 20 });
        for await (const c of fh) {
          const chunk = c as Buffer;
          const take = Math.min(chunk.length, st.size - written);
          if (take > 0) yield chunk.subarray(0, take);
          written += take;
        }
        if (written < st.size) yield Buffer.alloc(st.size - written); // the file shrank while we read it
        yield padding(st.size);
      } else if (st.isFIFO()) {
        yield entryHeader({ ...base, type: "fifo" });
      }
    }
  };
  const st = fs.statSync(root);
  yield entryHeader({
    name: "./",
    type: "dir",
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: Math.floor(st.mtimeMs / 1000),
  });
  yield* walk("");
  yield END_OF_ARCHIVE;
}
