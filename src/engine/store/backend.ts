/**
 * The store's state and its on-disk form (see README.md in this folder): buckets, objects, multipart
 * uploads and pending events, kept in memory and made durable through the journal. Every change goes
 *   1. data written to a temp file under .scar-store/tmp and fsynced,
 *   2. one journal record (object metadata + its events + "move temp to final path") committed,
 *   3. the in-memory update, in the tick the commit returns (so in journal order), and the temp file
 *      renamed into place on the thread pool, renames to one path one after another in journal order;
 *      until its rename is done an object is read from its temp file (see openObject).
 * Replaying the journal after a crash redoes step 3 for records whose temp file is still there, so
 * a committed object is never lost and an uncommitted one never appears.
 */

import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  existsSync,
  lstat,
  lstatSync,
  mkdir,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rename,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { promisify } from "node:util";
import type { CannedAcl } from "./acl.js";
import type { BucketCorsRule } from "./bucket-cors.js";
import type { ChecksumAlgorithm } from "./checksums.js";
import { checkWriteCondition, conflictError, type WriteCondition } from "./conditions.js";
import { errors, S3Error } from "./errors.js";
import { Journal, type JournalDamage, readJournal, rewriteJournal, truncateJournal } from "./journal.js";
import { compareKeys, lowerBound } from "./keys.js";
import { buildRecord, matchingRules, type NotificationConfig, type S3EventRecord } from "./notifications.js";
import { insufficientStorage, isDiskFull, type SpaceReserve, spaceInfo } from "./space.js";

export const META_DIR = ".scar-store";
/** Temp files made ahead at once by durableTempPath() (one fsync of the temp folder for them all). */
const DURABLE_TEMPS = 32;
const execFileP = promisify(execFile);

/** One string per (bucket, key): bucket names hold no NUL. */
function keyId(bucket: string, key: string): string {
  return `${bucket}\0${key}`;
}

/** Headers S3 stores with an object and returns on GET/HEAD. */
export const STORED_HEADERS = [
  "content-type",
  "content-encoding",
  "content-disposition",
  "content-language",
  "cache-control",
  "expires",
] as const;

export interface ObjectChecksum {
  alg: ChecksumAlgorithm;
  /** base64 digest; for multipart uploads S3's composite form "<base64>-<parts>". */
  value: string;
}

export interface ObjectMeta {
  key: string;
  /** Where the bytes are, relative to the data dir. */
  path: string;
  size: number;
  /** Without quotes. */
  etag: string;
  /** Last-Modified, ms since the epoch. */
  mtime: number;
  headers: Record<string, string>;
  /** x-amz-meta-* values by lower-case suffix. */
  meta: Record<string, string>;
  checksum?: ObjectChecksum;
  parts?: number;
  /** Sizes of the parts, in order, for GET/HEAD by partNumber (objects completed before scar recorded them have none). */
  partSizes?: number[];
  /** The parts' checksums (base64, the object's algorithm), for GetObjectAttributes. */
  partChecksums?: string[];
  /** The multipart upload that made the object: a retried CompleteMultipartUpload answers from it. */
  upload?: string;
  /** The object's canned ACL (x-amz-acl, PutObjectAcl); absent is private. */
  acl?: CannedAcl;
  /**
   * Object tags (x-amz-tagging / PutObjectTagging), in the order given: pairs, because a JS object
   * would put integer-like keys first. Journals before this held an object (tagsFromJournal).
   */
  tags?: [string, string][];
  /** Canonical id of the user who wrote it, kept only when that is not the bucket's owner (users.ts). */
  owner?: string;
}

export interface PartMeta {
  n: number;
  size: number;
  etag: string;
  mtime: number;
  checksum?: ObjectChecksum;
}

export interface UploadMeta {
  id: string;
  bucket: string;
  key: string;
  initiated: number;
  headers: Record<string, string>;
  meta: Record<string, string>;
  checksumAlg?: ChecksumAlgorithm;
  /** COMPOSITE or FULL_OBJECT (see multipart-checksums.ts); absent when the upload has no algorithm */
  checksumType?: "COMPOSITE" | "FULL_OBJECT";
  tags?: [string, string][];
  /** x-amz-acl of CreateMultipartUpload, given to the object at completion */
  acl?: CannedAcl;
  /** Who initiated it when not the bucket's owner: the object's owner at completion. */
  owner?: string;
  parts: Map<number, PartMeta>;
}

export interface BucketState {
  name: string;
  created: number;
  /** Canonical id of the user who created it; absent (journals before users existed) is the admin. */
  owner?: string;
  objects: Map<string, ObjectMeta>;
  /** Keys sorted in S3 (UTF-8 byte) order. */
  sorted: string[];
  notification: NotificationConfig | null;
  /** The bucket's canned ACL (acl.ts): who may list it and, for public-read-write, write into it. */
  acl?: CannedAcl;
  /**
   * Anonymous clients may read every object (what MinIO calls a public bucket, OSCAR's
   * `visibility: public`): a bucket policy in S3's terms, set by the engine, not by S3 requests.
   */
  publicObjects?: boolean;
  /** Bucket tags (PutBucketTagging), in the order they were given. */
  tags?: [string, string][];
  /** The bucket's CORS rules (PutBucketCors, bucket-cors.ts). */
  cors?: BucketCorsRule[];
}

/** One notification: an S3 record for one matching configuration of one committed change. */
export interface StoreEvent {
  /**
   * Never reused, also when the journal's counter was lost: "<epoch>-<n>", a random epoch drawn at
   * every start and a counter (events of earlier versions keep their plain numbers). Use it to make
   * handling idempotent (at-least-once delivery). Ordering is the S3 record's sequencer.
   */
  id: string;
  bucket: string;
  key: string;
  configurationId: string;
  destination: { kind: "Lambda" | "Queue" | "Topic"; arn: string };
  record: S3EventRecord;
}

/**
 * Runs after a change is durable and before the client is answered. When it resolves, its events are
 * acknowledged; if it throws, or the process dies first, they are delivered again (after a retry delay,
 * and on the next start), so a hook that records them idempotently never misses one.
 */
export type CommitHook = (events: StoreEvent[]) => Promise<void> | void;
export type EventListener = (event: StoreEvent) => void;

export interface RequestContext {
  requestId: string;
  principal: string;
  sourceIp: string;
}

type JournalRecord =
  | { op: "mkb"; b: string; t: number; own?: string }
  | { op: "rmb"; b: string }
  | { op: "ntf"; b: string; cfg: NotificationConfig | null }
  | { op: "acl"; b: string; acl: CannedAcl }
  | { op: "pub"; b: string; on: boolean }
  | { op: "btag"; b: string; tags: [string, string][] | null }
  | { op: "cors"; b: string; rules: BucketCorsRule[] | null }
  | { op: "put"; b: string; o: ObjectMeta; mv?: [string, string]; ev?: StoreEvent[]; mpx?: string }
  | { op: "del"; b: string; k: string; path: string; ev?: StoreEvent[] }
  | { op: "ack"; ids: (string | number)[] }
  | { op: "evt"; ev: StoreEvent[] }
  | { op: "mpu"; u: Omit<UploadMeta, "parts"> }
  | { op: "part"; id: string; p: PartMeta; mv?: [string, string] }
  | { op: "mpx"; id: string }
  | { op: "seq"; n: number };

export interface BackendOptions {
  region: string;
  /** Rewrite the journal once this many bytes were appended (and more than its compacted size). */
  compactBytes?: number;
  onCommit?: CommitHook;
  /** Called for errors that cannot be reported to a client (e.g. a failing commit hook). */
  log?: (message: string) => void;
  /** Free space new uploads must leave (default: 64 MiB, or 1% of a smaller file system). */
  reserve?: SpaceReserve;
}

/**
 * The journal has damaged records: the store does not start (nothing was changed), so no record
 * after the damage is lost and nothing is served from a state that may be wrong.
 */
export class StoreDamagedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly journalPath: string,
    readonly damaged: JournalDamage[],
  ) {
    const first = damaged[0]!;
    const more = damaged.length > 1 ? ` (and ${damaged.length - 1} more damaged line(s))` : "";
    super(
      `the store's journal ${journalPath} is damaged: line ${first.line} (byte offset ${first.offset}, ${first.length} bytes) ${first.reason}${more}. ` +
        `The store did not start and changed nothing. See the damage with "scar store fsck --data-dir ${dataDir}"; ` +
        `"scar store repair --data-dir ${dataDir}" keeps the journal aside, drops the damaged lines and rebuilds the index from the files on disk`,
    );
    this.name = "StoreDamagedError";
  }
}

/** The live process holding a data dir's lock, or null. */
export function lockHolder(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, META_DIR, "lock"), "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  if (!pid || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === "EPERM" ? pid : null;
  }
  return pid;
}

function isSafeSegment(s: string): boolean {
  return s !== "" && s !== "." && s !== ".." && !s.includes("\0") && Buffer.byteLength(s) <= 255;
}

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * lstat of each path on the thread pool, one promise for them all: null when it does not exist,
 * undefined for any other error (ENOTDIR, ELOOP ... on a path choosePath may never ask about: it
 * looks again itself if it does, and meets the error as before).
 */
function lstatAll(paths: readonly string[]): Promise<(Stats | null | undefined)[]> {
  return new Promise((resolve) => {
    const out: (Stats | null | undefined)[] = new Array(paths.length);
    let left = paths.length;
    paths.forEach((p, i) => {
      lstat(p, (e, st) => {
        out[i] = e ? (e.code === "ENOENT" ? null : undefined) : st;
        if (--left === 0) resolve(out);
      });
    });
  });
}

/** What choosePath learnt from the disk ahead, by path relative to the data dir (see probePaths). */
type Probed = ReadonlyMap<string, Stats | null>;

/** Folders known to be folders kept at most (see knownDirs); past it the set starts again. */
const KNOWN_DIRS_MAX = 10_000;

export class Backend {
  readonly buckets = new Map<string, BucketState>();
  readonly uploads = new Map<string, UploadMeta>();
  private readonly journal: Journal;
  private readonly pending = new Map<string, StoreEvent>();
  private readonly listeners = new Set<EventListener>();
  /** The S3 sequencer of the next event: kept increasing through the journal's "seq" record. */
  private nextSeq = 1;
  /** Bytes uploads may still take without a new statfs (see ensureRoom). */
  private roomBudget = 0;
  /** Makes event ids of this run distinct from every earlier run's, whatever the journal kept. */
  private readonly epoch = randomBytes(6).toString("hex");
  /** Final paths chosen by commits that have not renamed yet, and their parent dirs (reference counts). */
  private readonly reservedFiles = new Map<string, number>();
  /** Part uploads begun so far, and the latest begun upload committed per `<upload id>:<part>` (see commitPart). */
  private partUploads = 0;
  private readonly partClaims = new Map<string, number>();
  /** Puts and deletes being committed, by keyId (see writing()). */
  private readonly writesInFlight = new Map<string, number>();
  private readonly reservedDirs = new Map<string, number>();
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private compacting: Promise<void> | null = null;
  private snapshotBytes = 0;
  /** Temp files made ahead with durable names (durableTempPath), and their making. */
  private readonly durableTemps: string[] = [];
  private makingTemps: Promise<void> | null = null;
  /** The temp folder, open for the fsync before every journal batch. */
  private tmpDir: FileHandle | null = null;
  /**
   * Committed changes whose file-system step (rename into place, removal) is still to come, by final
   * path: the tail of each path's chain. Steps on one path run one after another in journal order.
   */
  private readonly fileSteps = new Map<string, Promise<void>>();
  /**
   * Final path -> temp file of the latest committed object there whose rename has not completed (its
   * callback has not run). Readers open that temp file; once it is gone the rename has landed.
   */
  private readonly moving = new Map<string, string>();
  /**
   * PUTs waiting for lstat of their key's paths (probePaths): the paths each looks at, and whether
   * this store changed one of them on disk meanwhile (then its answers are not used).
   */
  private readonly probing = new Set<{ paths: ReadonlySet<string>; stale: boolean }>();
  /**
   * Folders under the buckets this store has seen to be folders (not files, not links): the store
   * only removes one when it empties it (removeFile, deleteBucket), so a PUT under it need not lstat
   * it again.
   */
  private readonly knownDirs = new Set<string>();

  /**
   * Set in a dry replay (fsck): the disk is not touched, and moves still to be redone are noted
   * here (final path -> temp file that holds the bytes).
   */
  private dry: Map<string, string> | null = null;

  private constructor(
    readonly dataDir: string,
    readonly opts: BackendOptions,
  ) {
    this.journal = new Journal(join(dataDir, META_DIR, "journal"), async () => {
      await this.tmpDir?.sync();
    });
  }

  /**
   * The state `records` describe, replayed without touching the disk (for fsck and repair): buckets,
   * uploads, and the final paths whose bytes still sit in a temp file.
   */
  static replayDry(
    dataDir: string,
    records: unknown[],
  ): { buckets: Map<string, BucketState>; uploads: Map<string, UploadMeta>; unmoved: Map<string, string> } {
    const b = new Backend(dataDir, { region: "us-east-1" });
    const unmoved = new Map<string, string>();
    b.dry = unmoved;
    const deleted: string[] = [];
    for (const r of records as JournalRecord[]) b.replay(r, deleted);
    return { buckets: b.buckets, uploads: b.uploads, unmoved };
  }

  static async open(dataDir: string, opts: BackendOptions): Promise<Backend> {
    const b = new Backend(dataDir, opts);
    b.init();
    // Opened once (after init() recreated the folder): open + fsync + close per batch cost 3 calls.
    b.tmpDir = await open(b.meta("tmp"), "r");
    await b.journal.open();
    return b;
  }

  private meta(...p: string[]) {
    return join(this.dataDir, META_DIR, ...p);
  }

  // ---------------------------------------------------------------- start-up: lock, replay, compact
  private init(): void {
    mkdirSync(this.meta("tmp"), { recursive: true });
    mkdirSync(this.meta("multipart"), { recursive: true });
    const holder = lockHolder(this.dataDir);
    if (holder !== null) throw new Error(`the data dir ${this.dataDir} is in use by process ${holder}`);
    const journal = readJournal(this.meta("journal"));
    if (journal.damaged.length > 0) {
      throw new StoreDamagedError(this.dataDir, this.meta("journal"), journal.damaged);
    }
    const records = journal.records as JournalRecord[];
    // Uploads that never committed are removed before anything is written, so a store stopped by a
    // full disk can start again: its lock file and journal need the room those temp files hold.
    this.cleanTemp(records);
    writeFileSync(this.meta("lock"), String(process.pid));
    if (journal.torn) {
      // A write cut short: never acknowledged, so it goes (without a rewrite, which needs room).
      truncateJournal(this.meta("journal"), journal.completeBytes);
      this.opts.log?.(
        `dropped an unfinished last journal line (${journal.torn.length} bytes at offset ${journal.torn.offset}): an interrupted write`,
      );
    }
    const deleted: string[] = [];
    for (const r of records) this.replay(r, deleted);
    const live = new Set<string>();
    for (const b of this.buckets.values()) for (const o of b.objects.values()) live.add(o.path);
    for (const p of deleted) {
      if (!live.has(p)) this.removeFile(p);
    }
    // Anything left in tmp belongs to an upload that never committed.
    rmSync(this.meta("tmp"), { recursive: true, force: true });
    mkdirSync(this.meta("tmp"), { recursive: true });
    for (const name of readdirSync(this.meta("multipart"))) {
      if (!this.uploads.has(name)) rmSync(this.meta("multipart", name), { recursive: true, force: true });
    }
    // The compacted journal forgets pending renames, so everything replay (or the last run) did to
    // the file system must be on disk first: syncfs of the data dir's file system.
    execFileSync("sync", ["-f", this.dataDir]);
    try {
      this.snapshotBytes = rewriteJournal(this.meta("journal"), this.snapshot());
    } catch (e) {
      // On a full disk the journal as it is (every record intact) serves: reads work, and uploads
      // are refused with InsufficientStorage until there is room.
      if (!isDiskFull(e)) throw e;
      this.opts.log?.(`the journal was not compacted at start-up: ${(e as Error).message}`);
    }
  }

  /** Empties tmp/ except temp files that committed records still move into place. */
  private cleanTemp(records: JournalRecord[]): void {
    const keep = new Set<string>();
    for (const r of records) if ((r.op === "put" || r.op === "part") && r.mv) keep.add(r.mv[0]);
    for (const name of readdirSync(this.meta("tmp"))) {
      const rel = join(META_DIR, "tmp", name);
      if (!keep.has(rel)) rmSync(this.abs(rel), { recursive: true, force: true });
    }
  }

  /**
   * Throws InsufficientStorage when `bytes` more would eat into the free-space reserve. A statfs
   * is a thread-pool round trip per upload, so while the last one showed plenty of room, uploads
   * are admitted against half of that room without asking again. (Whatever else fills the disk
   * meanwhile is still caught: a write that runs out of space is an InsufficientStorage too.)
   */
  async ensureRoom(bytes: number): Promise<void> {
    if (bytes < this.roomBudget) {
      this.roomBudget -= bytes;
      return;
    }
    const s = await spaceInfo(this.dataDir, this.opts.reserve);
    this.roomBudget = Math.max(0, (s.free - s.reserve) / 2);
    if (s.free - bytes < s.reserve) {
      throw insufficientStorage(
        `${bytes} bytes asked, ${s.free} free, ${s.reserve} kept in reserve (scar store serve --reserve)`,
      );
    }
    this.roomBudget = Math.max(0, this.roomBudget - bytes);
  }

  /** Every durable change goes through here; a journal grown past its threshold gets compacted. */
  private async commitRecords(
    records: JournalRecord[],
    opts: { tempNamesDurable?: boolean } = {},
  ): Promise<void> {
    await this.journal.commit(records, opts.tempNamesDurable ? { beforeCommit: false } : {});
    const limit = Math.max(this.opts.compactBytes ?? 64 * 1024 * 1024, this.snapshotBytes);
    if (this.journal.appended > limit && !this.compacting && !this.closed) {
      this.compacting = this.compact()
        .catch((e) => {
          // The old journal stays in use; compaction is tried again after the next commit.
          this.opts.log?.(`journal compaction failed: ${(e as Error).message}`);
        })
        .finally(() => {
          this.compacting = null;
        });
    }
  }

  /**
   * Swaps in a journal holding just the live state, while the store keeps serving (commits made
   * meanwhile wait for the swap and go to the new file).
   */
  private async compact(): Promise<void> {
    await this.journal.exclusive(async () => {
      // Let every record already written be applied in memory (those continuations are synchronous).
      await new Promise((r) => setImmediate(r));
      // The compacted journal forgets pending moves: every committed rename must have been done...
      await this.fileStepsDone();
      // ... and be on disk.
      await execFileP("sync", ["-f", this.dataDir]);
      this.snapshotBytes = await this.journal.replace(this.snapshot());
    });
  }

  private redoMove(mv: [string, string] | undefined): void {
    if (!mv) return;
    const from = join(this.dataDir, mv[0]);
    if (!existsSync(from)) {
      this.dry?.delete(mv[1]);
      return;
    }
    if (this.dry) {
      this.dry.set(mv[1], mv[0]);
      return;
    }
    const to = join(this.dataDir, mv[1]);
    mkdirSync(dirname(to), { recursive: true });
    renameSync(from, to);
  }

  private replay(r: JournalRecord, deleted: string[]): void {
    switch (r.op) {
      case "mkb":
        this.buckets.set(r.b, {
          name: r.b,
          created: r.t,
          ...(r.own ? { owner: r.own } : {}),
          objects: new Map(),
          sorted: [],
          notification: null,
        });
        if (!this.dry) mkdirSync(join(this.dataDir, r.b), { recursive: true });
        break;
      case "rmb":
        this.buckets.delete(r.b);
        break;
      case "acl": {
        const b = this.buckets.get(r.b);
        if (b) b.acl = r.acl;
        break;
      }
      case "pub": {
        const b = this.buckets.get(r.b);
        if (b) b.publicObjects = r.on;
        break;
      }
      case "btag": {
        const b = this.buckets.get(r.b);
        if (b) b.tags = r.tags ?? undefined;
        break;
      }
      case "cors": {
        const b = this.buckets.get(r.b);
        if (b) b.cors = r.rules ?? undefined;
        break;
      }
      case "ntf": {
        const b = this.buckets.get(r.b);
        if (b) b.notification = r.cfg;
        break;
      }
      case "put": {
        this.redoMove(r.mv);
        const b = this.buckets.get(r.b);
        if (b) this.index(b, withTagPairs(r.o));
        if (r.mpx) this.uploads.delete(r.mpx);
        this.addPending(r.ev);
        break;
      }
      case "del": {
        const b = this.buckets.get(r.b);
        const cur = b?.objects.get(r.k);
        if (b) this.unindex(b, r.k);
        deleted.push(r.path);
        if (cur && cur.path !== r.path) deleted.push(cur.path);
        this.addPending(r.ev);
        break;
      }
      case "evt":
        this.addPending(r.ev);
        break;
      case "ack":
        for (const id of r.ids) this.pending.delete(String(id));
        break;
      case "mpu":
        this.uploads.set(r.u.id, { ...withTagPairs(r.u), parts: new Map() });
        break;
      case "part": {
        this.redoMove(r.mv);
        this.uploads.get(r.id)?.parts.set(r.p.n, r.p);
        break;
      }
      case "mpx":
        this.uploads.delete(r.id);
        break;
      case "seq":
        if (r.n > this.nextSeq) this.nextSeq = r.n;
        break;
    }
  }

  private addPending(ev: StoreEvent[] | undefined): void {
    for (const e of ev ?? []) {
      // Events of earlier versions have numeric ids: as strings their dedupe keys stay the same.
      const id = String(e.id);
      this.pending.set(id, { ...e, id });
      const seq = Number.parseInt(e.record.s3.object.sequencer, 16);
      if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    }
  }

  /** The live state as a minimal list of records (the compacted journal). */
  private snapshot(): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (const b of this.buckets.values()) {
      out.push({ op: "mkb", b: b.name, t: b.created, ...(b.owner ? { own: b.owner } : {}) });
      if (b.notification) out.push({ op: "ntf", b: b.name, cfg: b.notification });
      if (b.acl && b.acl !== "private") out.push({ op: "acl", b: b.name, acl: b.acl });
      if (b.publicObjects) out.push({ op: "pub", b: b.name, on: true });
      if (b.tags) out.push({ op: "btag", b: b.name, tags: b.tags });
      if (b.cors) out.push({ op: "cors", b: b.name, rules: b.cors });
      for (const k of b.sorted) out.push({ op: "put", b: b.name, o: b.objects.get(k)! });
    }
    for (const u of this.uploads.values()) {
      const { parts, ...rest } = u;
      out.push({ op: "mpu", u: rest });
      for (const p of parts.values()) out.push({ op: "part", id: u.id, p });
    }
    const pending = [...this.pending.values()];
    if (pending.length) out.push({ op: "evt", ev: pending });
    // Sequencers must keep increasing across restarts even when no event is pending (event ids do
    // not depend on this: they carry the epoch of the run that made them).
    out.push({ op: "seq", n: this.nextSeq });
    return out;
  }

  // ---------------------------------------------------------------- in-memory index
  private index(b: BucketState, o: ObjectMeta): void {
    if (!b.objects.has(o.key)) b.sorted.splice(lowerBound(b.sorted, o.key), 0, o.key);
    b.objects.set(o.key, o);
  }

  private unindex(b: BucketState, key: string): void {
    if (!b.objects.delete(key)) return;
    const i = lowerBound(b.sorted, key);
    if (b.sorted[i] === key) b.sorted.splice(i, 1);
  }

  // ---------------------------------------------------------------- buckets
  bucket(name: string): BucketState {
    const b = this.buckets.get(name);
    if (!b) throw errors.noSuchBucket(name);
    return b;
  }

  listBuckets(): BucketState[] {
    return [...this.buckets.values()].sort((a, b) => compareKeys(a.name, b.name));
  }

  /**
   * Creates a bucket; `owner` is the creator's canonical id (absent: whoever is the admin, users.ts;
   * the engine's own buckets).
   */
  async createBucket(name: string, owner?: string): Promise<void> {
    const taken = () => {
      const b = this.buckets.get(name);
      if (!b) return;
      if (b.owner !== owner) throw new S3Error("BucketAlreadyExists", undefined, { BucketName: name });
      throw new S3Error("BucketAlreadyOwnedByYou", undefined, { BucketName: name });
    };
    taken();
    const t = Date.now();
    mkdirSync(join(this.dataDir, name), { recursive: true });
    await this.commitRecords([{ op: "mkb", b: name, t, ...(owner ? { own: owner } : {}) }]);
    taken();
    this.buckets.set(name, {
      name,
      created: t,
      ...(owner ? { owner } : {}),
      objects: new Map(),
      sorted: [],
      notification: null,
    });
  }

  async deleteBucket(name: string): Promise<void> {
    const b = this.bucket(name);
    if (b.objects.size > 0) throw new S3Error("BucketNotEmpty", undefined, { BucketName: name });
    for (const u of this.uploads.values()) {
      if (u.bucket === name) await this.abortUpload(u.id);
    }
    await this.commitRecords([{ op: "rmb", b: name }]);
    if (b.objects.size > 0) throw new S3Error("BucketNotEmpty", undefined, { BucketName: name });
    this.buckets.delete(name);
    // The folder goes too unless a person put files of their own there.
    for (const d of this.knownDirs) if (d.startsWith(name + sep)) this.knownDirs.delete(d);
    rmSync(join(this.dataDir, name, ".DS_Store"), { force: true });
    try {
      rmdirSync(join(this.dataDir, name));
    } catch {}
  }

  async setAcl(name: string, acl: CannedAcl): Promise<void> {
    const b = this.bucket(name);
    await this.commitRecords([{ op: "acl", b: name, acl }]);
    b.acl = acl;
  }

  /** Sets (or with null removes) a bucket's tags. */
  async setBucketTags(name: string, tags: [string, string][] | null): Promise<void> {
    const b = this.bucket(name);
    await this.commitRecords([{ op: "btag", b: name, tags }]);
    b.tags = tags ?? undefined;
  }

  async setBucketCors(name: string, rules: BucketCorsRule[] | null): Promise<void> {
    const b = this.bucket(name);
    await this.commitRecords([{ op: "cors", b: name, rules }]);
    b.cors = rules ?? undefined;
  }

  /** Lets anonymous clients read (and list) every object of a bucket, or stops it (see publicObjects). */
  async setPublicObjects(name: string, on: boolean): Promise<void> {
    const b = this.bucket(name);
    await this.commitRecords([{ op: "pub", b: name, on }]);
    b.publicObjects = on;
  }

  async setNotification(name: string, cfg: NotificationConfig | null): Promise<void> {
    const b = this.bucket(name);
    await this.commitRecords([{ op: "ntf", b: name, cfg }]);
    b.notification = cfg;
  }

  // ---------------------------------------------------------------- paths
  newTempPath(): string {
    return join(META_DIR, "tmp", randomUUID());
  }

  /**
   * A temp path (as newTempPath's) whose file exists, empty, with a durable name: made ahead,
   * DURABLE_TEMPS at a time, with one fsync of the temp folder for all of them. Bytes written into
   * it (the file opened for writing, not replaced) and fsynced can be committed with
   * `tempNameDurable`, which spares that commit the temp folder's fsync: the journal record names a
   * file whose name was on disk before the record was written. A caller that does not commit it
   * removes it, as any temp file.
   */
  async durableTempPath(): Promise<string> {
    while (this.durableTemps.length === 0) {
      this.makingTemps ??= this.makeDurableTemps().finally(() => {
        this.makingTemps = null;
      });
      await this.makingTemps;
    }
    return this.durableTemps.pop()!;
  }

  private async makeDurableTemps(): Promise<void> {
    if (this.closed || !this.tmpDir) throw new Error("the store is closed");
    const made = await Promise.all(
      Array.from({ length: DURABLE_TEMPS }, async () => {
        const rel = this.newTempPath();
        await (await open(this.abs(rel), "wx", 0o600)).close();
        return rel;
      }),
    );
    // Their names are durable before any record names one. (Unused ones, after a crash or at close,
    // are emptied from tmp/ at the next start as any temp file no record names.)
    await this.tmpDir.sync();
    this.durableTemps.push(...made);
  }

  abs(rel: string): string {
    return join(this.dataDir, rel);
  }

  /**
   * Chooses where a key's bytes live. The readable path <bucket>/<key> is used when every segment is
   * a safe file name and it clashes with nothing (key "a" and key "a/b" cannot both be plain paths);
   * otherwise a hashed path under .scar-store/keys. Never returns a path outside the data dir.
   */
  private choosePath(b: BucketState, key: string, probed?: Probed): string {
    const existing = b.objects.get(key);
    if (existing) return existing.path;
    const segments = key.split("/");
    const hashed = () => {
      const h = createHash("sha256").update(key).digest("hex");
      return join(META_DIR, "keys", b.name, h.slice(0, 2), h);
    };
    if (!segments.every(isSafeSegment) || Buffer.byteLength(key) > 1024) return hashed();
    let dir = b.name;
    for (const seg of segments.slice(0, -1)) {
      dir = join(dir, seg);
      if (this.reservedFiles.has(dir)) return hashed();
      if (this.knownDirs.has(dir)) continue;
      const st = this.lstatRel(dir, probed);
      if (st && !st.isDirectory()) return hashed();
      if (st) this.knowDir(dir);
    }
    const rel = join(dir, segments[segments.length - 1]!);
    if (this.reservedDirs.has(rel)) return hashed();
    // A plain path names one key, so a path reserved or still being moved into belongs to this key.
    if (this.reservedFiles.has(rel) || this.fileSteps.has(rel)) return rel;
    if (this.lstatRel(rel, probed)) return hashed();
    if (!this.abs(rel).startsWith(this.dataDir + sep)) return hashed();
    return rel;
  }

  /** lstat of a path relative to the data dir: as probed ahead if it was, else now. */
  private lstatRel(rel: string, probed: Probed | undefined): Stats | null {
    const st = probed?.get(rel);
    return st !== undefined ? st : lstatOrNull(this.abs(rel));
  }

  /**
   * The paths choosePath would lstat for a new key with a plain path (its folders not known to be
   * folders, and the path itself); undefined when it needs none: the key exists, or its name needs a
   * hashed path.
   */
  private plainPathProbes(b: BucketState, key: string): string[] | undefined {
    if (b.objects.has(key)) return undefined;
    const segments = key.split("/");
    if (!segments.every(isSafeSegment) || Buffer.byteLength(key) > 1024) return undefined;
    const paths: string[] = [];
    let dir = b.name;
    for (const seg of segments.slice(0, -1)) {
      dir = join(dir, seg);
      if (!this.knownDirs.has(dir)) paths.push(dir);
    }
    paths.push(join(dir, segments[segments.length - 1]!));
    return paths;
  }

  /**
   * lstat of the paths a new key's choosePath needs (plainPathProbes), on the thread pool rather than
   * the event loop's thread. Undefined when this store changed one of those paths
   * on disk meanwhile (a rename landed, a file or folder was removed): choosePath then looks again,
   * at once. Whatever else it checks (the index, reserved paths) it checks when it runs.
   */
  private async probePaths(paths: readonly string[]): Promise<Probed | undefined> {
    const watch = { paths: new Set(paths), stale: false };
    this.probing.add(watch);
    try {
      const stats = await lstatAll(paths.map((p) => this.abs(p)));
      if (watch.stale) return undefined;
      const probed = new Map<string, Stats | null>();
      paths.forEach((p, i) => {
        if (stats[i] !== undefined) probed.set(p, stats[i]!);
      });
      return probed;
    } finally {
      this.probing.delete(watch);
    }
  }

  /** This store changed these paths on disk: answers probed for them meanwhile are not used. */
  private touched(paths: readonly string[]): void {
    for (const p of paths) this.knownDirs.delete(p);
    if (this.probing.size === 0) return;
    for (const w of this.probing) if (paths.some((p) => w.paths.has(p))) w.stale = true;
  }

  private knowDir(rel: string): void {
    if (this.knownDirs.size >= KNOWN_DIRS_MAX) this.knownDirs.clear();
    this.knownDirs.add(rel);
  }

  /**
   * Marks a write (put or delete) of a key as being committed, until the returned function is called
   * (after its record is in the journal and the index). A conditional write that finds one fails with
   * ConditionalRequestConflict: its condition would be checked against a state about to change.
   */
  private writing(bucket: string, key: string): () => void {
    const id = keyId(bucket, key);
    this.writesInFlight.set(id, (this.writesInFlight.get(id) ?? 0) + 1);
    return () => {
      const n = (this.writesInFlight.get(id) ?? 1) - 1;
      if (n <= 0) this.writesInFlight.delete(id);
      else this.writesInFlight.set(id, n);
    };
  }

  private reserve(rel: string, delta: 1 | -1): void {
    const bump = (m: Map<string, number>, k: string) => {
      const n = (m.get(k) ?? 0) + delta;
      if (n <= 0) m.delete(k);
      else m.set(k, n);
    };
    bump(this.reservedFiles, rel);
    for (let d = dirname(rel); d !== "." && d !== ""; d = dirname(d)) bump(this.reservedDirs, d);
  }

  /**
   * Runs a committed change's file-system step after every earlier one on the same path (journal
   * order, as replay does). Call it in the tick the commit returns.
   */
  private fileStep<T>(path: string, step: () => T | Promise<T>): Promise<T> {
    const run = (this.fileSteps.get(path) ?? Promise.resolve()).then(step);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.fileSteps.set(path, tail);
    void tail.then(() => {
      if (this.fileSteps.get(path) === tail) this.fileSteps.delete(path);
    });
    return run;
  }

  /** Resolves once every file-system step queued so far has run. */
  private async fileStepsDone(): Promise<void> {
    while (this.fileSteps.size > 0) await Promise.all(this.fileSteps.values());
  }

  /** Renames a committed temp file into place on the thread pool (see `moving`). */
  private moveInBackground(tmp: string, rel: string): Promise<void> {
    this.moving.set(rel, tmp);
    return this.fileStep(
      rel,
      () =>
        new Promise<void>((resolve, reject) => {
          const from = this.abs(tmp);
          const to = this.abs(rel);
          const done = (e: NodeJS.ErrnoException | null) => {
            if (this.moving.get(rel) === tmp) this.moving.delete(rel);
            this.touched([rel]);
            if (e) reject(e);
            else resolve();
          };
          rename(from, to, (e) => {
            // The folder is usually there already: creating it only when the rename says so saves a call.
            if (e?.code !== "ENOENT") return done(e);
            mkdir(dirname(to), { recursive: true }, (e2) => {
              // folders made (maybe): what was probed of them is stale
              const made: string[] = [];
              for (let d = dirname(rel); d !== "." && d !== ""; d = dirname(d)) made.push(d);
              this.touched(made);
              if (e2) done(e2);
              else rename(from, to, done);
            });
          });
        }),
    );
  }

  private moveIntoPlace(tmp: string, rel: string): void {
    const to = this.abs(rel);
    try {
      renameSync(this.abs(tmp), to);
    } catch (e) {
      // The folder is usually there already: creating it only when the rename says so saves a call.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      mkdirSync(dirname(to), { recursive: true });
      renameSync(this.abs(tmp), to);
    }
  }

  /** Removes a file and the folders it leaves empty (up to its bucket or key-hash folder). */
  private removeFile(rel: string): void {
    this.touched([rel]);
    try {
      unlinkSync(this.abs(rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const stop = rel.startsWith(META_DIR) ? 3 : 1;
    for (let d = dirname(rel); d.split(sep).length > stop; d = dirname(d)) {
      if (this.reservedDirs.has(d)) break;
      try {
        rmdirSync(this.abs(d));
      } catch {
        break;
      }
      this.touched([d]);
    }
  }

  // ---------------------------------------------------------------- objects
  /**
   * Opens an object for reading in the same tick as the lookup, so bytes and metadata always match:
   * an object whose rename has not completed is opened at its temp file; if that is gone the rename
   * has landed, and no later rename to the path can start before its callback has run.
   */
  openObject(bucket: string, key: string): { meta: ObjectMeta; fd: number } {
    const o = this.bucket(bucket).objects.get(key);
    if (!o) throw errors.noSuchKey(key);
    const tmp = this.moving.get(o.path);
    if (tmp !== undefined) {
      try {
        return { meta: o, fd: openSync(this.abs(tmp), "r") };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    return { meta: o, fd: openSync(this.abs(o.path), "r") };
  }

  /**
   * The files that may hold an object's bytes, to be tried in order by a caller that opens one by
   * path (a copy or a hard link made by the kernel): its temp file while its rename is pending, then
   * its final path. Whichever opens holds the bytes of this object or of a later overwrite, never a
   * mix (each version is its own file, renamed whole).
   */
  objectFiles(bucket: string, key: string): { meta: ObjectMeta; files: string[] } {
    const o = this.bucket(bucket).objects.get(key);
    if (!o) throw errors.noSuchKey(key);
    const tmp = this.moving.get(o.path);
    return { meta: o, files: tmp !== undefined ? [this.abs(tmp), this.abs(o.path)] : [this.abs(o.path)] };
  }

  head(bucket: string, key: string): ObjectMeta {
    const o = this.bucket(bucket).objects.get(key);
    if (!o) throw errors.noSuchKey(key);
    return o;
  }

  private makeEvents(
    b: BucketState,
    eventName: string,
    key: string,
    ctx: RequestContext,
    o?: ObjectMeta,
  ): StoreEvent[] {
    const rules = matchingRules(b.notification, eventName, key);
    const time = new Date();
    return rules.map((r) => {
      const seq = this.nextSeq++;
      return {
        id: `${this.epoch}-${seq}`,
        bucket: b.name,
        key,
        configurationId: r.id,
        destination: { kind: r.kind, arn: r.arn },
        record: buildRecord({
          region: this.opts.region,
          eventName,
          time,
          principal: ctx.principal,
          sourceIp: ctx.sourceIp,
          requestId: ctx.requestId,
          configurationId: r.id,
          bucket: b.name,
          key,
          size: o?.size,
          etag: o?.etag,
          sequencer: seq.toString(16).toUpperCase().padStart(16, "0"),
        }),
      };
    });
  }

  /**
   * Makes a fully written, fsynced temp file the new content of bucket/key. Resolves after the
   * commit hook has seen the object's events (the caller then answers the client).
   */
  async commitObject(
    bucket: string,
    o: Omit<ObjectMeta, "path" | "mtime">,
    tmp: string,
    eventName: string,
    ctx: RequestContext,
    completesUpload?: string,
    condition?: WriteCondition,
    /** `tmp` came from durableTempPath(): its name is on disk already */
    tempNameDurable = false,
  ): Promise<ObjectMeta> {
    let b = this.bucket(bucket);
    // A new key's plain path is looked at on the thread pool first (existing keys need no disk).
    const paths = this.plainPathProbes(b, o.key);
    const probes = paths ? await this.probePaths(paths) : undefined;
    const now = this.bucket(bucket);
    const probed = now === b && probes ? probes : undefined;
    b = now;
    // Checked in the same tick as the record is queued: no other write to the key can come between.
    if (condition) {
      if (this.writesInFlight.has(keyId(bucket, o.key))) throw conflictError(o.key);
      checkWriteCondition(condition, o.key, b.objects.get(o.key));
    }
    const path = this.choosePath(b, o.key, probed);
    // Not `{ ...o, path, mtime }`: V8 (Node 20) gives each object made by a spread plus new fields a
    // hidden class of its own, ~360 bytes more per indexed object (880 vs 518 B in a 20,000-object
    // test): 7 MiB of an engine's heap after 10,000 files in and out.
    const meta: ObjectMeta = Object.assign({}, o, { path, mtime: Date.now() });
    if (completesUpload) meta.upload = completesUpload;
    const ev = this.makeEvents(b, eventName, o.key, ctx, meta);
    this.reserve(path, 1);
    const writing = this.writing(bucket, o.key);
    let moved: Promise<void>;
    try {
      const rec: JournalRecord = { op: "put", b: bucket, o: meta, mv: [tmp, path], ev };
      if (completesUpload) rec.mpx = completesUpload;
      await this.commitRecords([rec], { tempNamesDurable: tempNameDurable });
      // Same tick as the commit: the index changes in journal order, and readers find the bytes in
      // the temp file until the rename (on the thread pool, off the event loop) has landed.
      const live = this.buckets.get(bucket);
      if (live) this.index(live, meta);
      if (completesUpload) this.uploads.delete(completesUpload);
      moved = this.moveInBackground(tmp, path);
    } catch (e) {
      this.reserve(path, -1);
      throw e;
    } finally {
      writing();
    }
    // The hook runs while the file moves; the caller may remove `tmp` once this resolves.
    const delivered = this.deliver(ev);
    try {
      await moved;
    } finally {
      this.reserve(path, -1);
      await delivered;
    }
    return meta;
  }

  /** Changes an object's metadata only (tags); the bytes stay where they are. */
  async updateObject(
    bucket: string,
    key: string,
    change: (o: ObjectMeta) => ObjectMeta,
  ): Promise<ObjectMeta> {
    const b = this.bucket(bucket);
    const o = b.objects.get(key);
    if (!o) throw errors.noSuchKey(key);
    const next = change({ ...o });
    await this.commitRecords([{ op: "put", b: bucket, o: next }]);
    if (b.objects.get(key) === o) {
      this.index(b, next);
      return next;
    }
    // A concurrent overwrite or delete committed meanwhile and wins. If it was journaled before this
    // record, replay would end with `next`: the old metadata over the new bytes (or a deleted key back).
    // So what the key holds now is restated, until nothing changed it while that was committed.
    for (let cur = b.objects.get(key); ; ) {
      await this.commitRecords([
        cur ? { op: "put", b: bucket, o: cur } : { op: "del", b: bucket, k: key, path: o.path },
      ]);
      const now = b.objects.get(key);
      if (now === cur) break;
      cur = now;
    }
    return next;
  }

  async deleteObject(bucket: string, key: string, ctx: RequestContext): Promise<void> {
    const b = this.bucket(bucket);
    const o = b.objects.get(key);
    // S3 answers 204 for a missing key too; only real deletions make events.
    if (!o) return;
    const ev = this.makeEvents(b, "s3:ObjectRemoved:Delete", key, ctx);
    const writing = this.writing(bucket, key);
    try {
      await this.commitRecords([{ op: "del", b: bucket, k: key, path: o.path, ev }]);
    } finally {
      writing();
    }
    // Whatever the key holds now was committed before this record (the index changes in journal
    // order), so it goes, as replay does; keeping an overwrite that committed meanwhile made the live
    // state differ from the one after a restart.
    const cur = b.objects.get(key);
    if (cur) {
      this.unindex(b, key);
      // After any rename into the path that is still under way.
      await this.fileStep(cur.path, () => this.removeFile(cur.path));
    }
    await this.deliver(ev);
  }

  // ---------------------------------------------------------------- multipart
  async createUpload(u: Omit<UploadMeta, "parts" | "id" | "initiated">): Promise<UploadMeta> {
    this.bucket(u.bucket);
    const id = randomUUID().replace(/-/g, "") + randomUUID().replace(/-/g, "");
    const upload: UploadMeta = { ...u, id, initiated: Date.now(), parts: new Map() };
    const { parts, ...rest } = upload;
    await this.commitRecords([{ op: "mpu", u: rest }]);
    this.uploads.set(id, upload);
    return upload;
  }

  upload(bucket: string, key: string, id: string): UploadMeta {
    this.bucket(bucket);
    const u = this.uploads.get(id);
    if (!u || u.bucket !== bucket || u.key !== key) throw errors.noSuchUpload(id);
    return u;
  }

  partPath(id: string, n: number): string {
    return join(META_DIR, "multipart", id, String(n));
  }

  /** A number for a part upload as it begins (see commitPart). */
  beginPart(): number {
    return ++this.partUploads;
  }

  /**
   * Commits a received part. Of two uploads of one part number, the one begun later wins, whichever
   * finishes first (a client retrying a slow part uses the retry's ETag): an earlier-begun upload
   * that finishes after a later one was committed is not journaled, and false is returned. Records
   * queue in call order, so journal order (replay's) is begin order too.
   */
  async commitPart(u: UploadMeta, p: PartMeta, tmp: string, begun = this.beginPart()): Promise<boolean> {
    const dest = this.partPath(u.id, p.n);
    const slot = `${u.id}:${p.n}`;
    if ((this.partClaims.get(slot) ?? 0) > begun) return false;
    this.partClaims.set(slot, begun);
    await this.commitRecords([{ op: "part", id: u.id, p, mv: [tmp, dest] }]);
    if (!this.uploads.has(u.id)) {
      rmSync(this.abs(tmp), { force: true });
      throw errors.noSuchUpload(u.id);
    }
    this.moveIntoPlace(tmp, dest);
    u.parts.set(p.n, p);
    return true;
  }

  async abortUpload(id: string): Promise<void> {
    await this.commitRecords([{ op: "mpx", id }]);
    this.uploads.delete(id);
    rmSync(this.meta("multipart", id), { recursive: true, force: true });
  }

  /** Removes part files once their upload is complete. */
  dropUploadFiles(id: string): void {
    rmSync(this.meta("multipart", id), { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- events
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async deliver(events: StoreEvent[]): Promise<void> {
    if (events.length === 0) return;
    for (const e of events) this.pending.set(e.id, e);
    let ok = true;
    if (this.opts.onCommit) {
      try {
        await this.opts.onCommit(events);
      } catch (e) {
        ok = false;
        this.opts.log?.(
          `commit hook failed, events ${events.map((x) => x.id).join(",")} will be retried: ${(e as Error).message}`,
        );
        this.scheduleRetry();
      }
    }
    if (ok) {
      for (const e of events) this.pending.delete(e.id);
      // Losing an ack only means a redelivery after a crash, so it need not wait for fsync.
      this.journal.append([{ op: "ack", ids: events.map((e) => e.id) }]);
    }
    for (const e of events) {
      for (const l of this.listeners) {
        try {
          l(e);
        } catch (err) {
          this.opts.log?.(`event listener failed: ${(err as Error).message}`);
        }
      }
    }
  }

  /** Delivers events that were committed but not acknowledged (after a crash or a failed hook). */
  async redeliver(): Promise<void> {
    // In the order they were committed (the map keeps insertion order, replay inserts in journal order).
    const events = [...this.pending.values()];
    if (events.length === 0) return;
    for (const e of events) this.pending.delete(e.id);
    await this.deliver(events);
  }

  pendingEvents(): StoreEvent[] {
    return [...this.pending.values()];
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.redeliver();
    }, 1000);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.compacting;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.journal.close();
    await this.fileStepsDone();
    await this.tmpDir?.close();
    this.tmpDir = null;
    rmSync(this.meta("lock"), { force: true });
  }
}

/** Tags as journals before ordered tags wrote them (an object) become pairs, in that object's order. */
function withTagPairs<T extends { tags?: [string, string][] }>(o: T): T {
  const t = o.tags as unknown;
  if (t === undefined || Array.isArray(t)) return o;
  return { ...o, tags: Object.entries(t as Record<string, string>) };
}
