/**
 * The durable job store: every write the job system makes, each one SQLite transaction, and the
 * queries the HTTP API and the CLI need. It runs nothing; the scheduler (scheduler.ts) drives it.
 *
 * One JobStore (one process) owns a database file at a time: the scheduler keeps its running counts
 * in memory, so two schedulers on one file would each run the other's jobs.
 *
 * Every method that reads or writes goes through `guard`, so a damaged file or a full disk met by
 * any statement is recorded in `health` (faults.ts) before the error reaches the caller.
 */
import { randomUUID } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { type Durability, durableTransaction, openDatabase } from "./db.js";
import { JobHealth } from "./faults.js";
import { DEFAULT_LOG_LIMIT, LogWriter, splitLimit } from "./logs.js";
import { type Backoff, decide } from "./retry.js";
import {
  type AttemptRow,
  decodePayload,
  encodePayload,
  environmentColumns,
  JOB_COLUMNS,
  type JobRow,
  type PayloadKind,
  stageColumn,
  toAttempt,
  toRecord,
} from "./row.js";
import {
  type AttemptRecord,
  type EnqueueInput,
  type EnqueueResult,
  type HandlerStage,
  type Invocation,
  type JobOutcome,
  type JobRecord,
  type JobStatus,
  type JobWithPayload,
  type Queue,
  STAGES,
  type StartKind,
} from "./types.js";

export interface JobStoreOptions {
  /** Folder of the database file (created if missing). */
  dataDir: string;
  /** Default `jobs.db`. */
  fileName?: string;
  /** Default `power`: see db.ts. */
  durability?: Durability;
  /** Characters of log kept per job (default 1 MiB): a quarter from the start, the rest from the end. */
  logLimit?: number;
  /** The clock, ms since the epoch (tests move it). */
  now?: () => number;
}

export interface ListOptions {
  status?: JobStatus | JobStatus[];
  /** Default 50, at most 1000. */
  limit?: number;
  /** The `next` of the previous page. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobRecord[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  next?: string;
}

export type StatusCounts = Record<JobStatus, number>;

/** A job the scheduler has claimed: its row number, attempt number and record with payload. */
export interface Claimed {
  seq: number;
  attempt: number;
  job: JobWithPayload;
}

/** An enqueue named a request id that another job already has. */
export class DuplicateJobError extends Error {
  constructor(readonly id: string) {
    super(`a job with id ${id} already exists`);
  }
}

const MAX_PAGE = 1000;
const DELETE_BATCH = 1000;
const DAY_MS = 86_400_000;

export class JobStore {
  readonly db: Database.Database;
  readonly now: () => number;
  /** The database's faults (damaged, cannot be written) as the statements meet them. */
  readonly health: JobHealth;
  private readonly durability: Durability;
  /** The write-ahead log, opened for syncWal's fsyncs. */
  private wal: Promise<FileHandle> | undefined;
  private readonly logs: LogWriter;
  private readonly listeners = new Set<(fn: string, queue: Queue) => void>();
  private readonly st: ReturnType<typeof prepare>;
  // Transaction wrappers are made once: making one per call costs more than a small write.
  private readonly claimTx;
  private readonly finishTx;
  private readonly appendTx;
  private readonly togetherTx;
  /**
   * Write transactions of the job path committed so far (enqueues, claims, progress, outcomes,
   * requeues; outermost ones only, what is nested in one is part of it): what a job costs the
   * database. Tests read it.
   */
  writeTransactions = 0;

  private constructor(db: Database.Database, opts: JobStoreOptions) {
    this.db = db;
    this.now = opts.now ?? Date.now;
    this.health = new JobHealth(join(opts.dataDir, opts.fileName ?? "jobs.db"), () => Date.now());
    this.durability = opts.durability ?? "power";
    this.logs = new LogWriter(db, splitLimit(opts.logLimit ?? DEFAULT_LOG_LIMIT));
    this.st = prepare(db);
    this.claimTx = db.transaction((fn: string, queue: Queue) => this.claimBody(fn, queue));
    this.finishTx = db.transaction(
      (
        seq: number,
        outcome: JobOutcome,
        policy: { retries: number; backoff: Backoff },
        progress: Progress | undefined,
      ) => {
        if (progress) this.progressBody(progress.logs, progress.stages);
        return this.finishBody(seq, outcome, policy);
      },
    );
    this.appendTx = db.transaction(
      (entries: Iterable<[number, string]>, stages: Iterable<[number, StageTimesOf]>) =>
        this.progressBody(entries, stages),
    );
    this.togetherTx = db.transaction(<T>(fn: () => T): T => fn());
  }

  static open(opts: JobStoreOptions): JobStore {
    return new JobStore(openDatabase(opts.dataDir, opts.fileName), opts);
  }

  close(): void {
    const wal = this.wal;
    this.wal = undefined;
    void wal?.then((h) => h.close()).catch(() => undefined);
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `fn` in one transaction (a savepoint when already inside one). With the default durability,
   * the outermost commit is fsynced, so enqueues made inside survive even a power loss once it returns.
   */
  transaction<T>(fn: () => T): T {
    return this.write(() => durableTransaction(this.db, this.durability, fn));
  }

  /**
   * Runs `fn` in one write transaction whose commit is not fsynced (it survives a kill -9, as every
   * progress write does): how the scheduler makes a job's outcome and the next job's claim one write.
   * Inside another transaction it is a savepoint of it.
   */
  together<T>(fn: () => T): T {
    return this.write(() => this.togetherTx.immediate(fn) as T);
  }

  /** A write through `guard`, counted in writeTransactions when it is not nested in another one. */
  private write<T>(fn: () => T, showsWritable = true): T {
    const outer = !this.db.inTransaction;
    const r = this.guard(fn, showsWritable);
    if (outer) this.writeTransactions++;
    return r;
  }

  /**
   * Runs a statement or transaction; a fault of the database it raises is noted in `health` before
   * it is thrown. `write`: success shows the database can be written again.
   */
  private guard<T>(fn: () => T, write = false): T {
    let r: T;
    try {
      r = fn();
    } catch (e) {
      this.health.note(e);
      throw e;
    }
    if (write) this.health.written();
    return r;
  }

  // ------------------------------------------------------------------ enqueue

  /**
   * Inserts a queued job, synchronously, so it can run inside a commit hook or a caller's transaction.
   * When it returns (outside a transaction) the job is on disk: it survives a kill -9 of the process,
   * and with `durability: "power"` (the default) a power loss too. Inside a caller's transaction it
   * is durable when that transaction commits, and gone if it rolls back.
   */
  enqueue(input: EnqueueInput): EnqueueResult {
    return this.enqueueMany([input])[0]!;
  }

  /** Several enqueues in one transaction (one fsync): how a commit hook with many events should call. */
  enqueueMany(inputs: readonly EnqueueInput[]): EnqueueResult[] {
    const out = this.transaction(() => inputs.map((i) => this.insert(i)));
    for (const i of inputs) this.notify(i.function, i.queue ?? "lambda");
    return out;
  }

  /**
   * Several enqueues in one transaction whose commit is not fsynced: on disk when this returns (they
   * survive a kill -9), but the caller must await syncWal() before it tells anyone the jobs exist,
   * for them to survive a power loss as enqueueMany's do. The scheduler may start them meanwhile.
   */
  enqueueManyUnsynced(inputs: readonly EnqueueInput[]): EnqueueResult[] {
    const out = this.write(() => this.db.transaction(() => inputs.map((i) => this.insert(i))).immediate());
    for (const i of inputs) this.notify(i.function, i.queue ?? "lambda");
    return out;
  }

  /**
   * Makes every transaction committed so far durable against a power loss: one fsync of the
   * database's write-ahead log, on the thread pool (SQLite's own, with `synchronous = FULL`, holds
   * the engine's thread for it). Nothing to do with `durability: "process"`.
   */
  async syncWal(): Promise<void> {
    if (this.durability === "process") return;
    try {
      this.wal ??= open(`${this.db.name}-wal`, "r");
      await (await this.wal).sync();
    } catch (e) {
      this.wal = undefined;
      this.health.note(e);
      throw e;
    }
  }

  /** Called after each enqueue (the scheduler wakes up). A rolled-back enqueue may still notify. */
  onEnqueue(listener: (fn: string, queue: Queue) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(fn: string, queue: Queue): void {
    for (const l of this.listeners) l(fn, queue);
  }

  private insert(i: EnqueueInput): EnqueueResult {
    const id = i.id ?? randomUUID();
    const now = this.now();
    const p = encodePayload(i.payload);
    if (i.id !== undefined && this.st.idExists.get(i.id)) {
      // A dedupe key naming the same job is a replay, not a clash.
      const same = i.dedupeKey !== undefined && this.st.byDedupe.get(i.dedupeKey)?.id === i.id;
      if (same) return { id: i.id, created: false };
      throw new DuplicateJobError(i.id);
    }
    const r = this.st.insert.run({
      id,
      fn: i.function,
      queue: i.queue ?? "lambda",
      invocation: i.invocation ?? "async",
      trig: JSON.stringify(i.trigger),
      payload: p.value,
      payload_kind: p.kind,
      dedupe_key: i.dedupeKey ?? null,
      parent_id: i.parentId ?? null,
      not_before: i.notBefore ?? now,
      t_queued: now,
    });
    if (r.changes === 0) return { id: this.st.byDedupe.get(i.dedupeKey!)!.id, created: false };
    return { id, created: true };
  }

  // ------------------------------------------------------------------ scheduler side

  /** (function, queue) pairs with queued jobs, due or not: the scheduler's round-robin ring at start. */
  queuedKeys(): { fn: string; queue: Queue }[] {
    return this.guard(() => this.st.queuedKeys.all());
  }

  hasQueued(fn: string, queue: Queue): boolean {
    return this.st.hasQueued.get(fn, queue) !== undefined;
  }

  /** The earliest not-before of a key's queued jobs (null when none is queued). */
  nextDue(fn: string, queue: Queue): number | null {
    return this.guard(() => this.st.nextDue.get(fn, queue)?.t ?? null);
  }

  /** Marks the oldest due job of (fn, queue) running and opens its attempt; undefined when none is due. */
  claimNext(fn: string, queue: Queue): Claimed | undefined {
    return this.write(() => this.claimTx.immediate(fn, queue), false);
  }

  private claimBody(fn: string, queue: Queue): Claimed | undefined {
    const now = this.now();
    const next = this.st.ready.get(fn, queue, now);
    if (!next) return undefined;
    const row = this.st.claim.get(now, next.seq)!;
    this.st.openAttempt.run(next.seq, row.attempts, row.cycle, now);
    const job: JobWithPayload = {
      ...toRecord(row),
      payload: decodePayload(row.payload_kind, row.payload),
    };
    return { seq: next.seq, attempt: row.cycle_attempts, job };
  }

  recordStage(seq: number, stage: HandlerStage, at: number): void {
    // The column name comes from the closed list of stages, never from input.
    if (!STAGES.includes(stage)) throw new Error(`unknown stage ${stage}`);
    this.guard(() => this.st.stage[stage].run(at, seq), true);
  }

  /** Appends buffered log text of several jobs in one transaction. */
  appendLogs(entries: Iterable<[seq: number, text: string]>): void {
    this.write(() => this.appendTx(entries, []));
  }

  /**
   * Appends buffered log text and records buffered stage times of several running jobs, all in one
   * transaction (the log text first: what a job logged before a stage is never missing after it).
   */
  recordProgress(
    entries: Iterable<[seq: number, text: string]>,
    stages: Iterable<[seq: number, times: StageTimesOf]>,
  ): void {
    this.write(() => this.appendTx(entries, stages));
  }

  private progressBody(entries: Iterable<[number, string]>, stages: Iterable<[number, StageTimesOf]>): void {
    for (const [seq, text] of entries) this.logs.append(seq, text);
    for (const [seq, t] of stages) this.st.stageTimes.run({ ...NO_STAGES, ...t, seq });
  }

  /**
   * Ends an attempt: applies the retry rule (retry.ts), records the outcome in the job and in its
   * attempt's history, and creates the delegated job if the outcome asks for one, all in one
   * transaction. Returns the job's new status, or undefined if the job was deleted meanwhile.
   * `progress`: buffered log text and stage times (of any running jobs) written first, in the same
   * transaction (what recordProgress would write): a job's last progress and its outcome are one write.
   */
  finish(
    seq: number,
    outcome: JobOutcome,
    policy: { retries: number; backoff: Backoff },
    progress?: Progress,
  ): { status: JobStatus; record: JobRecord; delegatedTo?: string } | undefined {
    return this.write(() => this.finishTx.immediate(seq, outcome, policy, progress));
  }

  private finishBody(
    seq: number,
    outcome: JobOutcome,
    policy: { retries: number; backoff: Backoff },
  ): { status: JobStatus; record: JobRecord; delegatedTo?: string } | undefined {
    const row = this.st.bySeq.get(seq);
    if (!row) return undefined;
    const now = this.now();
    const reason = outcome.reason ?? (outcome.status === "succeeded" ? "ok" : "script-error");
    const d = decide(
      { invocation: row.invocation, cycleAttempts: row.cycle_attempts },
      { ...outcome, reason },
      policy.retries,
      policy.backoff,
      now,
    );
    let delegatedTo: string | undefined;
    if (outcome.delegate) {
      const payload = decodePayload(...this.payloadOf(seq));
      delegatedTo = this.insert({
        ...(outcome.delegate.id ? { id: outcome.delegate.id } : {}),
        function: row.fn,
        trigger: outcome.delegate.trigger ?? (JSON.parse(row.trig) as JobRecord["trigger"]),
        payload: "payload" in outcome.delegate ? outcome.delegate.payload : payload,
        queue: outcome.delegate.queue ?? "batch",
        invocation: "async",
        parentId: row.id,
      }).id;
    }
    const final = d.status !== "queued";
    const after = this.st.finish.get({
      seq,
      status: d.status,
      reason,
      error: outcome.error ?? null,
      exit_code: outcome.exitCode ?? null,
      output_keys: JSON.stringify(outcome.outputKeys ?? []),
      max_memory_mb: outcome.maxMemoryMB ?? null,
      not_before: d.notBefore ?? row.not_before,
      t_done: final ? now : null,
      delegated_to: delegatedTo ?? null,
      ...environmentColumns(outcome.environment),
    });
    this.closeAttempt(
      seq,
      row.attempts,
      now,
      outcome.status,
      reason,
      outcome.exitCode ?? null,
      outcome.error,
      after as unknown as Record<string, unknown>,
    );
    if (delegatedTo) this.notifyLater(row.fn, outcome.delegate?.queue ?? "batch");
    return { status: d.status, record: toRecord(after!), ...(delegatedTo ? { delegatedTo } : {}) };
  }

  /**
   * Puts a running job back in the queue because the engine stopped under it (not the job's fault,
   * but its attempt stays counted so a job that kills the engine cannot loop forever): queued again
   * when its cycle has attempts left (`maxAttempts`), dead otherwise.
   */
  requeueInterrupted(seq: number, maxAttempts: number): JobStatus | undefined {
    return this.write(
      () =>
        this.db
          .transaction(() => {
            const row = this.st.bySeq.get(seq);
            if (row?.status !== "running") return undefined;
            const now = this.now();
            const status: JobStatus = row.cycle_attempts < maxAttempts ? "queued" : "dead";
            this.st.interrupt.run(status, now, status === "dead" ? now : null, seq);
            this.closeAttempt(
              seq,
              row.attempts,
              now,
              "failed",
              "interrupted",
              null,
              "the engine stopped during the job",
            );
            return status;
          })
          .immediate(),
      false,
    );
  }

  /**
   * Crash recovery, at start-up before any dispatch: every job a dead process left `running` goes
   * back to `queued` (or `dead` past its attempts). Returns how many of each.
   */
  recover(maxAttempts: (fn: string, invocation: Invocation) => number): { requeued: number; dead: number } {
    const res = { requeued: 0, dead: 0 };
    for (const r of this.guard(() => this.st.running.all())) {
      const s = this.requeueInterrupted(r.seq, maxAttempts(r.fn, r.invocation));
      if (s === "queued") res.requeued++;
      else if (s === "dead") res.dead++;
    }
    return res;
  }

  private closeAttempt(
    seq: number,
    n: number,
    now: number,
    status: JobStatus,
    reason: string,
    exitCode: number | null,
    error: string | undefined,
    /** The job row as it is now, if the caller has it (saves reading it again). */
    current?: Record<string, unknown>,
  ): void {
    const t = (current ?? this.st.stages.get(seq)!) as Record<string, number | string | null>;
    const stages: Record<string, number> = {};
    for (const s of STAGES) {
      const v = t[stageColumn(s)];
      if (typeof v === "number") stages[s] = v;
    }
    // The attempt's environment is the job's, as finish (or the claim's reset) left it.
    this.st.closeAttempt.run({
      ended: now,
      status,
      reason,
      exit_code: exitCode,
      error: error ?? null,
      stages: JSON.stringify(stages),
      env_start: t.env_start ?? null,
      env_id: t.env_id ?? null,
      env_start_ms: t.env_start_ms ?? null,
      seq,
      n,
    });
  }

  private payloadOf(seq: number): [PayloadKind, Buffer | string | null] {
    const r = this.st.payload.get(seq)!;
    return [r.payload_kind, r.payload];
  }

  private notifyLater(fn: string, queue: Queue): void {
    // After the surrounding transaction: a listener that dispatches must see the committed row.
    setImmediate(() => this.notify(fn, queue));
  }

  // ------------------------------------------------------------------ queries

  get(id: string): JobRecord | undefined {
    const r = this.guard(() => this.st.byId.get(id));
    return r ? toRecord(r) : undefined;
  }

  getWithPayload(id: string): JobWithPayload | undefined {
    const r = this.guard(() => this.st.byId.get(id));
    if (!r) return undefined;
    return { ...toRecord(r), payload: decodePayload(...this.guard(() => this.payloadOf(r.seq))) };
  }

  /** The job's log text (with a truncation marker where the cap dropped text); undefined: no such job. */
  log(id: string): string | undefined {
    return this.guard(() => {
      const r = this.st.byId.get(id);
      return r ? this.logs.read(r.seq, r.log_dropped) : undefined;
    });
  }

  /** Every attempt of the job, oldest first, across redrives. */
  attempts(id: string): AttemptRecord[] {
    const r = this.guard(() => this.st.byId.get(id));
    return r ? this.guard(() => this.st.attempts.all(r.seq)).map(toAttempt) : [];
  }

  /** Jobs delegated from this one. */
  children(id: string): JobRecord[] {
    return this.guard(() => this.st.children.all(id)).map(toRecord);
  }

  /** A function's jobs (every function's with `fn` undefined), newest first, a page at a time. */
  list(fn: string | undefined, opts: ListOptions = {}): JobPage {
    const limit = Math.max(1, Math.min(MAX_PAGE, opts.limit ?? 50));
    const before = opts.cursor ? Number.parseInt(opts.cursor, 10) : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(before)) throw new Error(`bad cursor ${opts.cursor}`);
    const statuses =
      opts.status === undefined ? [] : Array.isArray(opts.status) ? opts.status : [opts.status];
    const filter = statuses.length ? `AND status IN (${statuses.map(() => "?").join(",")})` : "";
    const byFn = fn === undefined ? "" : "fn = ? AND";
    const rows = this.guard(() =>
      this.db
        .prepare<unknown[], JobRow>(
          `SELECT ${JOB_COLUMNS} FROM jobs WHERE ${byFn} seq < ? ${filter} ORDER BY seq DESC LIMIT ?`,
        )
        .all(...(fn === undefined ? [] : [fn]), before, ...statuses, limit + 1),
    );
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return {
      jobs: page.map(toRecord),
      ...(more ? { next: String(page[page.length - 1]!.seq) } : {}),
    };
  }

  /** Dead letters of one function (or of all), newest first. */
  listDead(fn?: string, opts: Omit<ListOptions, "status"> = {}): JobPage {
    if (fn !== undefined) return this.list(fn, { ...opts, status: "dead" });
    const limit = Math.max(1, Math.min(MAX_PAGE, opts.limit ?? 50));
    const before = opts.cursor ? Number.parseInt(opts.cursor, 10) : Number.MAX_SAFE_INTEGER;
    const rows = this.guard(() => this.st.deadAll.all(before, limit + 1));
    const page = rows.slice(0, limit);
    return {
      jobs: page.map(toRecord),
      ...(rows.length > limit ? { next: String(page[page.length - 1]!.seq) } : {}),
    };
  }

  /** Counts by status, per function (every status present, zero when none). */
  counts(fn?: string): Record<string, StatusCounts> {
    const out: Record<string, StatusCounts> = {};
    const rows = this.guard(() => (fn === undefined ? this.st.countsAll.all() : this.st.countsFn.all(fn)));
    for (const r of rows) {
      out[r.fn] ??= { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0 };
      out[r.fn]![r.status] = r.n;
    }
    return out;
  }

  /**
   * Cold and warm starts per function: jobs in the store whose last finished attempt started an
   * execution environment (cold) or reused one (warm). Functions without any are absent.
   */
  startCounts(): Record<string, Record<StartKind, number>> {
    const out: Record<string, Record<StartKind, number>> = {};
    for (const r of this.guard(() => this.st.startCounts.all())) {
      out[r.fn] ??= { cold: 0, warm: 0 };
      out[r.fn]![r.env_start] = r.n;
    }
    return out;
  }

  /**
   * How long the function's last `limit` finished jobs ran (ms, dispatch of their last attempt to its
   * end), most recent first. Served by the jobs_done index.
   */
  recentDurations(fn: string, limit = 1000): number[] {
    return this.guard(() => this.st.recentDurations.all(fn, limit)).map((r) => r.d);
  }

  /**
   * Deletes a function's jobs with their logs and history: `succeeded` only, or every job that is not
   * running (a running job belongs to the scheduler: cancel it first). Returns how many.
   */
  deleteJobs(fn: string, which: "succeeded" | "all"): number {
    const stmt = which === "succeeded" ? this.st.deleteSucceeded : this.st.deleteNotRunning;
    let total = 0;
    for (;;) {
      const n = this.guard(() => this.db.transaction(() => stmt.run(fn, DELETE_BATCH).changes)());
      total += n;
      if (n < DELETE_BATCH) return total;
    }
  }

  /** Deletes one job that is not running; false if missing or running. */
  deleteJob(id: string): boolean {
    return this.guard(() => this.st.deleteOne.run(id).changes > 0);
  }

  /** Cancels a queued job (a running one is cancelled through the scheduler). */
  cancelQueued(id: string): boolean {
    return this.guard(() => this.st.cancelQueued.run(this.now(), id).changes > 0);
  }

  /**
   * Redrive: a dead job starts a new attempt cycle (full retries again) now; its earlier attempts stay
   * in its history. False if the job is not dead.
   */
  redrive(id: string): boolean {
    const r = this.guard(() => this.st.redrive.get(this.now(), id));
    if (!r) return false;
    this.notify(r.fn, r.queue);
    return true;
  }

  /** Redrives every dead job of a function, oldest first, in one transaction; returns how many. */
  redriveAll(fn: string): number {
    const rows = this.guard(() =>
      this.db.transaction(() => this.st.redriveFn.all(this.now(), fn)).immediate(),
    );
    for (const q of new Set(rows.map((r) => r.queue))) this.notify(fn, q);
    return rows.length;
  }

  /**
   * Retention: deletes finished jobs (and logs, history) older than their function's retention, in
   * small transactions so the dispatcher is never blocked for long. Returns how many were deleted.
   */
  sweep(retentionDays: (fn: string) => number): number {
    let total = 0;
    for (const { fn } of this.guard(() => this.st.functions.all())) {
      const cutoff = this.now() - retentionDays(fn) * DAY_MS;
      for (;;) {
        const n = this.guard(() =>
          this.db.transaction(() => this.st.sweep.run(fn, cutoff, DELETE_BATCH).changes)(),
        );
        total += n;
        if (n < DELETE_BATCH) break;
      }
    }
    return total;
  }
}

/** Stage times of one job, as the scheduler buffers them. */
export type StageTimesOf = Partial<Record<HandlerStage, number>>;

/** Buffered log text and stage times of running jobs, by job seq (see recordProgress). */
export interface Progress {
  logs: Iterable<[seq: number, text: string]>;
  stages: Iterable<[seq: number, times: StageTimesOf]>;
}

const NO_STAGES: Record<HandlerStage, null> = {
  image_ready: null,
  stage_in: null,
  container_start: null,
  script_end: null,
  stage_out: null,
};

/** The hot query: the next due job of one (function, queue); exported so a test can check its plan. */
export const READY_QUERY = `SELECT seq FROM jobs WHERE status = 'queued' AND fn = ? AND queue = ? AND not_before <= ?
  ORDER BY not_before, seq LIMIT 1`;

type PayloadRow = { payload_kind: PayloadKind; payload: Buffer | string | null };

/** Every fixed statement, prepared once. */
function prepare(db: Database.Database) {
  const finished = "status IN ('succeeded', 'failed', 'dead')";
  const stage = {} as Record<HandlerStage, Database.Statement<[number, number]>>;
  for (const s of STAGES) {
    if (s === "queued" || s === "done") continue;
    stage[s] = db.prepare(`UPDATE jobs SET ${stageColumn(s)} = ? WHERE seq = ? AND status = 'running'`);
  }
  const handlerStages = STAGES.filter((s) => s !== "queued" && s !== "done");
  return {
    // Every handler stage at once; a stage not given (null) keeps its value.
    stageTimes: db.prepare<[Record<string, number | null>]>(
      `UPDATE jobs SET ${handlerStages.map((s) => `${stageColumn(s)} = coalesce(@${s}, ${stageColumn(s)})`).join(", ")}
       WHERE seq = @seq AND status = 'running'`,
    ),
    insert: db.prepare(
      `INSERT INTO jobs (id, fn, queue, invocation, trig, payload, payload_kind, dedupe_key, parent_id,
         status, not_before, t_queued)
       VALUES (@id, @fn, @queue, @invocation, @trig, @payload, @payload_kind, @dedupe_key, @parent_id,
         'queued', @not_before, @t_queued)
       ON CONFLICT (dedupe_key) DO NOTHING`,
    ),
    idExists: db.prepare<[string], { one: number }>("SELECT 1 AS one FROM jobs WHERE id = ?"),
    byDedupe: db.prepare<[string], { id: string }>("SELECT id FROM jobs WHERE dedupe_key = ?"),
    byId: db.prepare<[string], JobRow & { seq: number }>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`),
    bySeq: db.prepare<[number], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE seq = ?`),
    withPayload: db.prepare<[number], JobRow & PayloadRow>(
      `SELECT ${JOB_COLUMNS}, payload, payload_kind FROM jobs WHERE seq = ?`,
    ),
    payload: db.prepare<[number], PayloadRow>("SELECT payload, payload_kind FROM jobs WHERE seq = ?"),
    queuedKeys: db.prepare<[], { fn: string; queue: Queue }>(
      "SELECT DISTINCT fn, queue FROM jobs WHERE status = 'queued'",
    ),
    hasQueued: db.prepare<[string, Queue], { one: number }>(
      "SELECT 1 AS one FROM jobs WHERE status = 'queued' AND fn = ? AND queue = ? LIMIT 1",
    ),
    nextDue: db.prepare<[string, Queue], { t: number }>(
      "SELECT not_before AS t FROM jobs WHERE status = 'queued' AND fn = ? AND queue = ? ORDER BY not_before LIMIT 1",
    ),
    // Served by jobs_ready (see schema.ts) without touching other rows.
    ready: db.prepare<[string, Queue, number], { seq: number }>(READY_QUERY),
    claim: db.prepare<[number, number], JobRow & PayloadRow>(
      `UPDATE jobs SET status = 'running', attempts = attempts + 1, cycle_attempts = cycle_attempts + 1,
         t_started = ?, t_image_ready = NULL, t_stage_in = NULL, t_container_start = NULL,
         t_script_end = NULL, t_stage_out = NULL, t_done = NULL, exit_code = NULL, error = NULL,
         env_start = NULL, env_id = NULL, env_start_ms = NULL
       WHERE seq = ? RETURNING ${JOB_COLUMNS}, payload, payload_kind`,
    ),
    openAttempt: db.prepare<[number, number, number, number]>(
      "INSERT INTO attempts (job_seq, n, cycle, started) VALUES (?, ?, ?, ?)",
    ),
    closeAttempt: db.prepare<[Record<string, unknown>]>(
      `UPDATE attempts SET ended = @ended, status = @status, reason = @reason, exit_code = @exit_code,
         error = @error, stages = @stages, env_start = @env_start, env_id = @env_id,
         env_start_ms = @env_start_ms
       WHERE job_seq = @seq AND n = @n`,
    ),
    stage,
    stages: db.prepare<[number], Record<string, number | string | null>>(
      `SELECT ${STAGES.map(stageColumn).join(", ")}, env_start, env_id, env_start_ms FROM jobs WHERE seq = ?`,
    ),
    finish: db.prepare<[Record<string, unknown>], JobRow>(
      `UPDATE jobs SET status = @status, reason = @reason, error = @error, exit_code = @exit_code,
         output_keys = @output_keys, max_memory_mb = @max_memory_mb, not_before = @not_before,
         t_done = @t_done, delegated_to = coalesce(@delegated_to, delegated_to),
         env_start = @env_start, env_id = @env_id, env_start_ms = @env_start_ms
       WHERE seq = @seq RETURNING ${JOB_COLUMNS}`,
    ),
    interrupt: db.prepare<[JobStatus, number, number | null, number]>(
      `UPDATE jobs SET status = ?, reason = 'interrupted', error = 'the engine stopped during the job',
         not_before = ?, t_done = ? WHERE seq = ?`,
    ),
    running: db.prepare<[], { seq: number; fn: string; invocation: Invocation }>(
      "SELECT seq, fn, invocation FROM jobs WHERE status = 'running'",
    ),
    attempts: db.prepare<[number], AttemptRow>(
      `SELECT n, cycle, started, ended, status, reason, exit_code, error, stages, env_start, env_id,
         env_start_ms FROM attempts WHERE job_seq = ? ORDER BY n`,
    ),
    children: db.prepare<[string], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE parent_id = ? ORDER BY seq`,
    ),
    deadAll: db.prepare<[number, number], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE status = 'dead' AND seq < ? ORDER BY seq DESC LIMIT ?`,
    ),
    countsAll: db.prepare<[], { fn: string; status: JobStatus; n: number }>(
      "SELECT fn, status, count(*) AS n FROM jobs GROUP BY fn, status",
    ),
    // Served by the jobs_env_start index (schema.ts v3).
    startCounts: db.prepare<[], { fn: string; env_start: StartKind; n: number }>(
      "SELECT fn, env_start, count(*) AS n FROM jobs WHERE env_start IS NOT NULL GROUP BY fn, env_start",
    ),
    countsFn: db.prepare<[string], { fn: string; status: JobStatus; n: number }>(
      "SELECT fn, status, count(*) AS n FROM jobs WHERE fn = ? GROUP BY fn, status",
    ),
    recentDurations: db.prepare<[string, number], { d: number }>(
      `SELECT t_done - t_started AS d FROM jobs WHERE fn = ? AND t_done IS NOT NULL AND t_started IS NOT NULL
       ORDER BY t_done DESC LIMIT ?`,
    ),
    deleteSucceeded: db.prepare<[string, number]>(
      "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE fn = ? AND status = 'succeeded' LIMIT ?)",
    ),
    deleteNotRunning: db.prepare<[string, number]>(
      "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE fn = ? AND status != 'running' LIMIT ?)",
    ),
    deleteOne: db.prepare<[string]>("DELETE FROM jobs WHERE id = ? AND status != 'running'"),
    cancelQueued: db.prepare<[number, string]>(
      `UPDATE jobs SET status = 'failed', reason = 'cancelled', t_done = ?
       WHERE id = ? AND status = 'queued'`,
    ),
    redrive: db.prepare<[number, string], { fn: string; queue: Queue }>(
      `UPDATE jobs SET status = 'queued', cycle = cycle + 1, cycle_attempts = 0, not_before = ?,
         t_done = NULL, reason = NULL, error = NULL
       WHERE id = ? AND status = 'dead' RETURNING fn, queue`,
    ),
    redriveFn: db.prepare<[number, string], { queue: Queue }>(
      `UPDATE jobs SET status = 'queued', cycle = cycle + 1, cycle_attempts = 0, not_before = ?,
         t_done = NULL, reason = NULL, error = NULL
       WHERE fn = ? AND status = 'dead' RETURNING queue`,
    ),
    functions: db.prepare<[], { fn: string }>("SELECT DISTINCT fn FROM jobs"),
    sweep: db.prepare<[string, number, number]>(
      `DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE fn = ? AND t_done < ? AND ${finished} LIMIT ?)`,
    ),
  };
}
