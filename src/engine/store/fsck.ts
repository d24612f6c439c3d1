/**
 * Checking and repairing a data dir whose store is not running (`scar store fsck` / `repair`).
 *
 * fsck only reads: the journal line by line (damaged lines, an unfinished last line), the index
 * its intact records describe, and the files on disk (objects whose file is gone, files no object
 * points to). repair first copies the journal aside, then writes a journal of the intact records
 * plus what the disk says: files under `<bucket>/` become objects again (their key is their path),
 * bucket folders become buckets, objects whose file is gone are forgotten, and files whose key
 * cannot be known (hashed names under .scar-store/keys) are moved to .scar-store/lost+found.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
} from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Backend, lockHolder, META_DIR, type ObjectMeta } from "./backend.js";
import { fsyncDir, type JournalDamage, readJournal, rewriteJournal } from "./journal.js";
import { MAX_KEY_BYTES, validBucketName } from "./keys.js";

export interface OrphanFile {
  /** Relative to the data dir. */
  path: string;
  size: number;
  /** For a file under a bucket folder: the bucket and key it is adopted as. */
  bucket?: string;
  key?: string;
}

export interface FsckReport {
  dataDir: string;
  journal: string;
  /** Records that passed their check, and how many of them were written without a checksum. */
  records: number;
  unchecked: number;
  damaged: JournalDamage[];
  /** An unfinished last line: an interrupted write, dropped at the next start (not damage). */
  torn: JournalDamage | null;
  buckets: number;
  objects: number;
  /** Bucket folders on disk that no journal record created. */
  lostBuckets: string[];
  /** Objects whose file is gone. */
  missing: { bucket: string; key: string; path: string }[];
  /** Files no object points to. */
  orphans: OrphanFile[];
  /** True when nothing above needs repair. */
  clean: boolean;
}

export interface RepairReport extends FsckReport {
  /** The copy of the journal as it was before the repair. */
  savedJournal: string;
  /** Orphans that became objects again, buckets that were created for them. */
  adopted: OrphanFile[];
  adoptedBuckets: string[];
  /** Orphans moved to .scar-store/lost+found (their key is unknown). */
  setAside: { from: string; to: string }[];
}

/** A data dir that a running store holds cannot be checked or repaired (it is changing). */
export class DataDirInUseError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `the data dir ${dataDir} is in use by process ${pid} (its lock file is ${join(dataDir, META_DIR, "lock")}); stop that store first`,
    );
    this.name = "DataDirInUseError";
  }
}

function refuseIfRunning(dataDir: string): void {
  const pid = lockHolder(dataDir);
  if (pid !== null) throw new DataDirInUseError(dataDir, pid);
}

/** Regular files under `dir` (relative to `root`), not following symlinks. */
function walk(root: string, dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = lstatSync(p);
    if (st.isDirectory()) walk(root, p, out);
    else if (st.isFile()) out.push(relative(root, p));
  }
}

function inspect(dataDir: string) {
  const journalPath = join(dataDir, META_DIR, "journal");
  const j = readJournal(journalPath);
  const state = Backend.replayDry(dataDir, j.records);
  const live = new Set<string>();
  const missing: FsckReport["missing"] = [];
  let objects = 0;
  for (const b of state.buckets.values()) {
    for (const o of b.objects.values()) {
      objects++;
      live.add(o.path);
      const tmp = state.unmoved.get(o.path);
      if (tmp !== undefined) live.add(tmp);
      else if (!existsSync(join(dataDir, o.path))) missing.push({ bucket: b.name, key: o.key, path: o.path });
    }
  }
  const lostBuckets: string[] = [];
  const files: string[] = [];
  for (const name of readdirSync(dataDir)) {
    // Only folders that can be buckets: a file system's own lost+found is none of the store's business.
    const known = state.buckets.has(name);
    if (
      name === META_DIR ||
      !(known || validBucketName(name)) ||
      !lstatSync(join(dataDir, name)).isDirectory()
    ) {
      continue;
    }
    if (!known) lostBuckets.push(name);
    walk(dataDir, join(dataDir, name), files);
  }
  walk(dataDir, join(dataDir, META_DIR, "keys"), files);
  const orphans: OrphanFile[] = [];
  for (const f of files.sort()) {
    if (live.has(f)) continue;
    const o: OrphanFile = { path: f, size: lstatSync(join(dataDir, f)).size };
    if (!f.startsWith(META_DIR + sep)) {
      const [bucket, ...rest] = f.split(sep);
      const key = rest.join("/");
      const known = state.buckets.get(bucket!)?.objects.get(key);
      // A key the index has at another path (a hashed one) keeps that object; this file is a leftover.
      const bucketOk = state.buckets.has(bucket!) || validBucketName(bucket!);
      if (bucketOk && Buffer.byteLength(key) <= MAX_KEY_BYTES && !known) {
        o.bucket = bucket!;
        o.key = key;
      }
    }
    orphans.push(o);
  }
  const report: FsckReport = {
    dataDir,
    journal: journalPath,
    records: j.records.length,
    unchecked: j.unchecked,
    damaged: j.damaged,
    torn: j.torn,
    buckets: state.buckets.size,
    objects,
    lostBuckets,
    missing,
    orphans,
    clean: j.damaged.length === 0 && missing.length === 0 && orphans.length === 0 && lostBuckets.length === 0,
  };
  return { report, records: j.records };
}

/** Checks a data dir without changing anything. */
export function fsck(dataDir: string): FsckReport {
  const dir = resolve(dataDir);
  refuseIfRunning(dir);
  if (!existsSync(join(dir, META_DIR)))
    throw new Error(`${dir} is not a scar store data dir (no ${META_DIR} folder)`);
  return inspect(dir).report;
}

async function md5Of(path: string): Promise<string> {
  const h = createHash("md5");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

/**
 * Repairs a data dir: keeps the journal aside, then writes one made of the intact records and what
 * the files on disk say (see the module doc). Safe to run again; a clean data dir is left as it is,
 * apart from the copy of its journal.
 */
export async function repair(dataDir: string): Promise<RepairReport> {
  const dir = resolve(dataDir);
  refuseIfRunning(dir);
  if (!existsSync(join(dir, META_DIR)))
    throw new Error(`${dir} is not a scar store data dir (no ${META_DIR} folder)`);
  const { report, records } = inspect(dir);
  // The damaged journal is kept, durably, before anything is rewritten.
  const when = stamp();
  const savedJournal = `${report.journal}.before-repair-${when}`;
  if (existsSync(report.journal)) {
    copyFileSync(report.journal, savedJournal);
    const fd = openSync(savedJournal, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDir(dirname(savedJournal));
  }
  const fixes: unknown[] = [];
  for (const m of report.missing) fixes.push({ op: "del", b: m.bucket, k: m.key, path: m.path });
  // Every folder an adopted file is in is a known bucket or one of these.
  for (const name of report.lostBuckets) {
    fixes.push({ op: "mkb", b: name, t: Math.floor(lstatSync(join(dir, name)).mtimeMs) });
  }
  const adopted: OrphanFile[] = [];
  const setAside: RepairReport["setAside"] = [];
  for (const o of report.orphans) {
    if (o.bucket !== undefined && o.key !== undefined) {
      const abs = join(dir, o.path);
      const st = lstatSync(abs);
      const meta: ObjectMeta = {
        key: o.key,
        path: o.path,
        size: st.size,
        etag: await md5Of(abs),
        mtime: Math.floor(st.mtimeMs),
        headers: { "content-type": "binary/octet-stream" },
        meta: {},
      };
      fixes.push({ op: "put", b: o.bucket, o: meta });
      adopted.push(o);
    } else {
      const to = join(META_DIR, "lost+found", when, o.path);
      mkdirSync(dirname(join(dir, to)), { recursive: true });
      renameSync(join(dir, o.path), join(dir, to));
      setAside.push({ from: o.path, to });
    }
  }
  rewriteJournal(report.journal, [...records, ...fixes]);
  return { ...report, savedJournal, adopted, adoptedBuckets: report.lostBuckets, setAside };
}
