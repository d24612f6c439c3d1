/**
 * The metadata journal: one append-only file of JSON records, each line prefixed with its CRC-32 so a
 * line torn by a crash is recognised and dropped. A record is committed once the fsync that follows
 * its write returns. Concurrent commits share one write + fsync (group commit), which is what makes
 * many small PUTs cheap.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { appendFile, type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import zlib from "node:zlib";
import { newDigest } from "./checksums.js";

function crcHex(s: string | Buffer): string {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  const z = (zlib as unknown as { crc32?: (d: string | Buffer) => number }).crc32;
  if (z) return (z(bytes) >>> 0).toString(16).padStart(8, "0");
  const d = newDigest("crc32");
  d.update(bytes);
  return d.digest().toString("hex");
}

function encode(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crcHex(json)} ${json}\n`;
}

/** A line of the journal that fails its check (a bad checksum, not JSON, not a record). */
export interface JournalDamage {
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** Bytes in the line, without its newline. */
  length: number;
  reason: string;
}

export interface JournalContents {
  /** Every record that passed its check, in order (damaged lines are left out, nothing after them is). */
  records: unknown[];
  /** Complete lines (ending in a newline) that fail their check: real damage, to be reported. */
  damaged: JournalDamage[];
  /**
   * An unfinished last line (no newline after it): a write cut short by a crash or a full disk. It
   * was never acknowledged (its fsync had not returned), so dropping it loses nothing.
   */
  torn: JournalDamage | null;
  /** Byte length up to the end of the last complete line: where appending may continue. */
  completeBytes: number;
  /** Records written without a checksum (plain JSON lines, as earlier journals and people write them). */
  unchecked: number;
}

function checkLine(line: Buffer): { record: unknown; checked: boolean } | string {
  let json: Buffer;
  let checked = true;
  if (line[0] === 0x7b /* { */) {
    // A record without a checksum: an earlier format, or a line a person wrote. JSON.parse is its check.
    json = line;
    checked = false;
  } else {
    if (line.length < 10 || line[8] !== 0x20 || !/^[0-9a-f]{8}$/.test(line.toString("latin1", 0, 8))) {
      return "no checksum prefix";
    }
    json = line.subarray(9);
    if (crcHex(json) !== line.toString("latin1", 0, 8)) return "checksum mismatch";
  }
  let record: unknown;
  try {
    record = JSON.parse(json.toString("utf8"));
  } catch {
    return "not valid JSON";
  }
  if (typeof record !== "object" || record === null || typeof (record as { op?: unknown }).op !== "string") {
    return "not a journal record";
  }
  return { record, checked };
}

/**
 * Reads the journal, checking every line on its own: a damaged line in the middle is reported and
 * skipped, and the records after it are still read (never silently dropped with it).
 */
export function readJournal(path: string): JournalContents {
  const out: JournalContents = { records: [], damaged: [], torn: null, completeBytes: 0, unchecked: 0 };
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw e;
  }
  let start = 0;
  for (let n = 1; start < buf.length; n++) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    const line = buf.subarray(start, end);
    if (nl < 0) {
      // Only complete lines count: a record's newline is written with it, before its fsync.
      out.torn = { line: n, offset: start, length: line.length, reason: "unfinished last line" };
      break;
    }
    out.completeBytes = nl + 1;
    if (line.length > 0) {
      const r = checkLine(line);
      if (typeof r === "string") out.damaged.push({ line: n, offset: start, length: line.length, reason: r });
      else {
        out.records.push(r.record);
        if (!r.checked) out.unchecked++;
      }
    }
    start = end + 1;
  }
  return out;
}

/** Cuts an unfinished last line off (it needs no free space, unlike rewriting the file). */
export function truncateJournal(path: string, length: number): void {
  truncateSync(path, length);
  const fd = openSync(path, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a fresh journal holding exactly `records` (temp file, fsync, rename). */
export function rewriteJournal(path: string, records: unknown[]): number {
  const tmp = `${path}.compact`;
  const fd = openSync(tmp, "w");
  let bytes = 0;
  // A short write (a full disk) must fail the rewrite, never leave a shorter journal behind.
  const writeAll = (text: string) => {
    const buf = Buffer.from(text, "utf8");
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    bytes += buf.length;
  };
  try {
    const chunk: string[] = [];
    for (const r of records) {
      chunk.push(encode(r));
      if (chunk.length >= 1000) writeAll(chunk.splice(0).join(""));
    }
    if (chunk.length) writeAll(chunk.join(""));
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
  return bytes;
}

export class Journal {
  private fh: FileHandle | null = null;
  private queue: {
    line: string;
    durable: boolean;
    /** the batch runs beforeCommit for it (every durable record but those whose caller says not) */
    before: boolean;
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  private writing = false;
  private paused = false;
  private idle: (() => void)[] = [];
  /** Bytes appended since the journal was last rewritten. */
  appended = 0;
  /** The file's length after the last batch that was written whole. */
  private length = 0;
  /** Set when a failed batch could not be cut off again: nothing more may be appended after it. */
  private broken: Error | null = null;

  /**
   * @param beforeCommit runs before each batch is written: the store uses it to fsync the temp
   * folder once per batch, so the temp files a batch's records point to are durable names too.
   */
  constructor(
    readonly path: string,
    private readonly beforeCommit: () => Promise<void> = async () => {},
  ) {}

  async open(): Promise<void> {
    this.fh = await open(this.path, "a");
    this.length = (await this.fh.stat()).size;
    this.appended = 0;
  }

  /**
   * Appends records and resolves once they are on stable storage. `beforeCommit: false`: these
   * records need nothing of beforeCommit (the store: the temp files they name were made durable
   * names beforehand), so a batch of only such records skips it.
   */
  commit(records: unknown[], opts: { beforeCommit?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        line: records.map(encode).join(""),
        durable: true,
        before: opts.beforeCommit ?? true,
        resolve,
        reject,
      });
      this.kick();
    });
  }

  /**
   * Appends records that are safe to lose (acks): nobody waits for them, and a batch of nothing but
   * such records is written without the temp folder's and the journal's fsyncs. They become durable
   * with the next committed batch (same file, appended before it) or are lost in a crash, which
   * replay allows for. Each fsync here is an ext4 journal commit that every create, mkdir and
   * rename on the disk waits behind, so the two saved per acknowledged event matter to the jobs.
   */
  append(records: unknown[]): void {
    this.queue.push({
      line: records.map(encode).join(""),
      durable: false,
      before: false,
      resolve: () => {},
      reject: () => {},
    });
    this.kick();
  }

  private kick(): void {
    if (!this.writing && !this.paused && this.queue.length > 0) void this.drain();
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0 && !this.paused) {
      const batch = this.queue.splice(0);
      try {
        if (this.broken) throw this.broken;
        if (!this.fh) throw new Error("journal is closed");
        const durable = batch.some((b) => b.durable);
        if (batch.some((b) => b.before)) await this.beforeCommit();
        const text = batch.map((b) => b.line).join("");
        const bytes = Buffer.byteLength(text);
        try {
          await appendFile(this.fh, text);
          if (durable) await this.fh.datasync();
        } catch (e) {
          await this.cutBack(e as Error);
          throw e;
        }
        this.length += bytes;
        this.appended += bytes;
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e as Error);
      }
    }
    this.writing = false;
    for (const f of this.idle.splice(0)) f();
  }

  /**
   * A batch that failed (a full disk, an I/O error) may have left part of its lines in the file; the
   * next batch would be glued to them and read back as damage. Truncating needs no free space. If
   * even that fails, the journal takes no more writes until the store is restarted.
   */
  private async cutBack(cause: Error): Promise<void> {
    try {
      await this.fh!.truncate(this.length);
    } catch (e) {
      this.broken = new Error(
        `the journal ${this.path} could not be cut back after a failed write (${cause.message}): ${(e as Error).message}; restart the store`,
      );
    }
  }

  /**
   * Runs `fn` while no batch is being written; records committed meanwhile wait and are written
   * (to whatever file is the journal then) afterwards. Used to swap in a compacted journal.
   */
  async exclusive(fn: () => Promise<void>): Promise<void> {
    this.paused = true;
    try {
      if (this.writing) await new Promise<void>((r) => this.idle.push(r));
      await fn();
    } finally {
      this.paused = false;
      this.kick();
    }
  }

  /** Replaces the journal with exactly `records` (see rewriteJournal) and appends to the new file. */
  async replace(records: unknown[]): Promise<number> {
    await this.fh?.close();
    this.fh = null;
    try {
      return rewriteJournal(this.path, records);
    } finally {
      await this.open();
    }
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length) await new Promise((r) => setTimeout(r, 1));
    await this.fh?.close();
    this.fh = null;
  }
}
