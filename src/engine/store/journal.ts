/**
 * The metadata journal: one append-only file of JSON records, each line prefixed with its CRC-32 so a
 * line torn by a crash is recognised and dropped. A record is committed once the fsync that follows
 * its write returns. Concurrent commits share one write + fsync (group commit), which is what makes
 * many small PUTs cheap.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { appendFile, type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import zlib from "node:zlib";
import { newDigest } from "./checksums.js";

function crcHex(s: string): string {
  const z = (zlib as unknown as { crc32?: (d: string | Buffer) => number }).crc32;
  if (z) return (z(Buffer.from(s, "utf8")) >>> 0).toString(16).padStart(8, "0");
  const d = newDigest("crc32");
  d.update(Buffer.from(s, "utf8"));
  return d.digest().toString("hex");
}

function encode(record: unknown): string {
  const json = JSON.stringify(record);
  return `${crcHex(json)} ${json}\n`;
}

/** Reads every intact record; stops at the first damaged line (only the tail can be torn). */
export function readJournal(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: unknown[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const sp = line.indexOf(" ");
    const json = line.slice(sp + 1);
    if (sp !== 8 || crcHex(json) !== line.slice(0, 8)) break;
    try {
      out.push(JSON.parse(json));
    } catch {
      break;
    }
  }
  return out;
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
  try {
    const chunk: string[] = [];
    for (const r of records) {
      chunk.push(encode(r));
      if (chunk.length >= 1000) bytes += writeSync(fd, chunk.splice(0).join(""));
    }
    if (chunk.length) bytes += writeSync(fd, chunk.join(""));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
  return bytes;
}

export class Journal {
  private fh: FileHandle | null = null;
  private queue: { line: string; durable: boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private writing = false;
  private paused = false;
  private idle: (() => void)[] = [];
  /** Bytes appended since the journal was last rewritten. */
  appended = 0;

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
    this.appended = 0;
  }

  /** Appends records and resolves once they are on stable storage. */
  commit(records: unknown[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ line: records.map(encode).join(""), durable: true, resolve, reject });
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
        if (!this.fh) throw new Error("journal is closed");
        const durable = batch.some((b) => b.durable);
        if (durable) await this.beforeCommit();
        const text = batch.map((b) => b.line).join("");
        await appendFile(this.fh, text);
        if (durable) await this.fh.datasync();
        this.appended += Buffer.byteLength(text);
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e as Error);
      }
    }
    this.writing = false;
    for (const f of this.idle.splice(0)) f();
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
    const bytes = rewriteJournal(this.path, records);
    await this.open();
    return bytes;
  }

  async close(): Promise<void> {
    while (this.writing || this.queue.length) await new Promise((r) => setTimeout(r, 1));
    await this.fh?.close();
    this.fh = null;
  }
}
