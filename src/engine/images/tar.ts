/**
 * A streaming tar reader for image layers, written for hostile input: ustar, GNU and PAX headers,
 * base-256 numbers, checksums checked, bounded sizes for long-name and PAX headers (a layer cannot
 * make us buffer gigabytes of "header"), and tolerant of a missing end-of-archive/padding after the
 * last entry (some tools write such layers) while a truncated entry body is an error.
 */

export type TarEntryType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo" | "other";

export interface TarHeader {
  name: string;
  linkname: string;
  type: TarEntryType;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch (may be fractional from PAX) */
  mtime: number;
  devmajor: number;
  devminor: number;
  uname: string;
  gname: string;
  /** PAX SCHILY.xattr.* records */
  xattrs: Record<string, string>;
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's data; read it fully or leave it, the reader skips what is left. */
  body: AsyncIterable<Buffer>;
}

export interface TarLimits {
  /** largest PAX or GNU long-name/long-link header accepted (default 1 MiB) */
  maxHeaderBytes?: number;
  /** longest path accepted (default 4096) */
  maxPathLength?: number;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

/** Pulls exact byte counts out of an async iterable of chunks without copying where it can. */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private chunk: Buffer = Buffer.alloc(0);
  private done = false;
  consumed = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array>) {
    const inner = source[Symbol.asyncIterator]();
    this.it = {
      next: async () => {
        const r = await inner.next();
        if (r.done) return r;
        const v = r.value;
        return {
          done: false,
          value: Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength),
        };
      },
      return: async () => {
        await inner.return?.();
        return { done: true, value: undefined };
      },
    };
  }

  private async fill(): Promise<boolean> {
    while (this.chunk.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.chunk = r.value;
    }
    return true;
  }

  /** Exactly n bytes; fewer only at the end of the stream (the result is then shorter). */
  async read(n: number): Promise<Buffer> {
    if (!(await this.fill())) return Buffer.alloc(0);
    if (this.chunk.length >= n) {
      const out = this.chunk.subarray(0, n);
      this.chunk = this.chunk.subarray(n);
      this.consumed += n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0 && (await this.fill())) {
      const take = Math.min(need, this.chunk.length);
      parts.push(this.chunk.subarray(0, take));
      this.chunk = this.chunk.subarray(take);
      need -= take;
      this.consumed += take;
    }
    return Buffer.concat(parts);
  }

  /** Up to n bytes as they arrive; yields fewer in total only at the end of the stream. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0 && (await this.fill())) {
      const take = Math.min(left, this.chunk.length);
      const out = this.chunk.subarray(0, take);
      this.chunk = this.chunk.subarray(take);
      left -= take;
      this.consumed += take;
      yield out;
    }
  }

  /** Skips n bytes; returns how many were actually there. */
  async skip(n: number): Promise<number> {
    let got = 0;
    for await (const c of this.stream(n)) got += c.length;
    return got;
  }

  /** Reads everything that is left, passing each chunk to fn. */
  async drain(fn?: (c: Buffer) => void): Promise<void> {
    while (await this.fill()) {
      const c = this.chunk;
      this.chunk = Buffer.alloc(0);
      this.consumed += c.length;
      fn?.(c);
    }
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

function cstring(buf: Buffer, start: number, end: number): string {
  const slice = buf.subarray(start, end);
  const nul = slice.indexOf(0);
  return (nul >= 0 ? slice.subarray(0, nul) : slice).toString("utf8");
}

function numeric(buf: Buffer, start: number, end: number, field: string): number {
  const b0 = buf[start]!;
  if (b0 & 0x80) {
    // base-256: big-endian two's complement, first byte's top bit is the marker
    const negative = b0 === 0xff;
    let v = 0n;
    for (let i = start; i < end; i++) {
      let byte = buf[i]!;
      if (i === start) byte &= 0x7f;
      v = (v << 8n) | BigInt(negative ? byte ^ 0xff : byte);
    }
    if (negative) v = -(v + 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
      throw new TarFormatError(`tar header field ${field} out of range`);
    return Number(v);
  }
  const s = cstring(buf, start, end).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s))
    throw new TarFormatError(`tar header field ${field} is not octal: ${JSON.stringify(s)}`);
  const v = Number.parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`tar header field ${field} out of range`);
  return v;
}

function checksumOk(block: Buffer): boolean {
  let stored: number;
  try {
    stored = numeric(block, 148, 156, "chksum");
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function typeOf(flag: string): TarEntryType {
  switch (flag) {
    case "0":
    case "\0":
    case "":
    case "7":
      return "file";
    case "1":
      return "link";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
      return "dir";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

/** Parses PAX extended header records ("%d %s=%s\n"). */
export function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break;
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0) throw new TarFormatError("malformed PAX record");
    const len = Number.parseInt(buf.subarray(pos, sp).toString("ascii"), 10);
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > buf.length)
      throw new TarFormatError("malformed PAX record length");
    const rec = buf.subarray(sp + 1, pos + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq < 0) throw new TarFormatError("malformed PAX record");
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

const pad512 = (n: number) => (512 - (n % 512)) % 512;

/**
 * Yields the entries of a tar stream. Each entry's body must be consumed (or abandoned) before the
 * next entry is requested; the reader skips any part left unread.
 */
export async function* readTar(
  source: AsyncIterable<Buffer | Uint8Array> | ByteReader,
  limits: TarLimits = {},
): AsyncGenerator<TarEntry> {
  const maxHeader = limits.maxHeaderBytes ?? 1 << 20;
  const maxPath = limits.maxPathLength ?? 4096;
  const r = source instanceof ByteReader ? source : new ByteReader(source);
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  const readMeta = async (size: number, what: string): Promise<Buffer> => {
    if (size > maxHeader)
      throw new TarFormatError(`${what} header of ${size} bytes exceeds the limit of ${maxHeader}`);
    const data = await r.read(size);
    if (data.length < size) throw new TarFormatError(`truncated ${what} header`);
    await r.skip(pad512(size));
    return data;
  };

  for (;;) {
    const block = await r.read(512);
    if (block.length === 0) return; // end of stream without an end-of-archive marker: tolerated
    if (block.length < 512) throw new TarFormatError("truncated tar header");
    if (block.every((b) => b === 0)) return; // end-of-archive
    if (!checksumOk(block))
      throw new TarFormatError("tar header checksum mismatch (not a tar archive, or corrupt)");
    const flag = String.fromCharCode(block[156]!);
    const size = numeric(block, 124, 136, "size");
    if (size < 0) throw new TarFormatError("negative entry size");
    switch (flag) {
      case "x":
        pax = parsePax(await readMeta(size, "PAX"));
        continue;
      case "g":
        globalPax = { ...globalPax, ...parsePax(await readMeta(size, "PAX global")) };
        continue;
      case "L":
        longName = cstring(await readMeta(size, "GNU long name"), 0, size);
        continue;
      case "K":
        longLink = cstring(await readMeta(size, "GNU long link"), 0, size);
        continue;
      case "S":
        throw new TarFormatError("GNU sparse files are not supported in image layers");
    }
    const magic = block.subarray(257, 263).toString("latin1");
    const ustar = magic === "ustar\0";
    let name = cstring(block, 0, 100);
    if (ustar) {
      const prefix = cstring(block, 345, 500);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    const p = { ...globalPax, ...pax };
    if (longName !== undefined) name = longName;
    if (p.path !== undefined) name = p.path;
    let linkname = longLink ?? cstring(block, 157, 257);
    if (p.linkpath !== undefined) linkname = p.linkpath;
    const num = (key: string, fallback: number) => {
      const v = p[key];
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new TarFormatError(`bad PAX ${key}: ${v}`);
      return n;
    };
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(p)) if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice(13)] = v;
    const header: TarHeader = {
      name,
      linkname,
      typeflag: flag,
      type: typeOf(flag),
      mode: numeric(block, 100, 108, "mode") & 0o7777,
      uid: num("uid", numeric(block, 108, 116, "uid")),
      gid: num("gid", numeric(block, 116, 124, "gid")),
      size: num("size", size),
      mtime: num("mtime", numeric(block, 136, 148, "mtime")),
      devmajor: numeric(block, 329, 337, "devmajor"),
      devminor: numeric(block, 337, 345, "devminor"),
      uname: p.uname ?? cstring(block, 265, 297),
      gname: p.gname ?? cstring(block, 297, 329),
      xattrs,
    };
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    if (header.name.length > maxPath || header.linkname.length > maxPath)
      throw new TarFormatError(`path longer than ${maxPath} bytes in layer`);
    if (!Number.isSafeInteger(header.size) || header.size < 0) throw new TarFormatError("bad entry size");
    // hard links, symlinks, devices and directories carry no data even if a size is set (except in PAX-lenient writers)
    const dataSize = header.type === "file" || header.type === "other" ? header.size : 0;
    let left = dataSize;
    const body = (async function* () {
      for await (const c of r.stream(left)) {
        left -= c.length;
        yield c;
      }
      if (left > 0) throw new TarFormatError(`truncated tar entry "${header.name}"`);
    })();
    yield { header, body };
    if (left > 0) {
      const skipped = await r.skip(left);
      if (skipped < left) throw new TarFormatError(`truncated tar entry "${header.name}"`);
      left = 0;
    }
    await r.skip(pad512(dataSize)); // a missing final padding is tolerated
  }
}
