/**
 * The scheduler: takes queued jobs from the store and runs them through the engine's handler, within
 * the concurrency limits, fairly across functions, and records what happened.
 *
 * Limits: a global one (default: the number of cores), one per queue (`lambda`, `batch`), and an
 * optional one per function (FunctionPolicy.concurrency). A job starts only when all three have room.
 *
 * Fairness: the (function, queue) pairs with queued jobs form a ring; each pass over the ring starts
 * one job per pair at most, and the next pass starts after the pair served last. So a function with
 * 10,000 queued jobs and one with a single job alternate, rather than the second waiting for the first.
 * Within a pair, jobs run in the order they became due (enqueue time, or the end of a retry backoff).
 *
 * The queue is the database: the scheduler keeps only the ring and its running counts in memory, so
 * the number of queued jobs costs disk, not memory.
 *
 * Faults of the database itself (faults.ts) are logged once, when they start, not at every poll:
 * - damaged: dispatch stops for good (jobs already running finish; what cannot be recorded is
 *   recovered at the next start, on a repaired or new file);
 * - cannot be written (full disk): dispatch pauses; every poll writes the outcomes that wait for
 *   room, or, when none waits, looks at the free space of the database's folder (after another
 *   write error, dispatch goes on and its first successful write clears the fault). A job
 *   whose stage, log or outcome could not be written is stopped (its signal aborted) and ends as
 *   failed with reason `disk`, retried like any failure (dead past its retries); an outcome that
 *   cannot be written waits in memory and is written as soon as there is room. If the engine
 *   stops first, the job is still `running` on disk and the next start's recovery requeues it.
 */
import { EventEmitter } from "node:events";
import { availableParallelism } from "node:os";
import { dbFault, type JobHealthState } from "./faults.js";
import { takeOwnership } from "./owner.js";
import { type Backoff, DEFAULT_BACKOFF } from "./retry.js";
import type { Claimed, JobStore, Progress, StageTimesOf } from "./store.js";
import {
  DEFAULT_RETENTION_DAYS,
  DEFAULT_RETRIES,
  FINAL_STATUSES,
  type FunctionPolicy,
  type HandlerStage,
  type Invocation,
  type JobContext,
  type JobHandler,
  type JobOutcome,
  type JobRecord,
  type Queue,
} from "./types.js";

export interface SchedulerOptions {
  store: JobStore;
  handler: JobHandler;
  /** Jobs running at once, all queues together. Default: the number of cores. */
  concurrency?: number;
  /** Per-queue limits. Default: lambda = the global limit; batch = half the cores (at least 1). */
  queues?: Partial<Record<Queue, { concurrency: number }>>;
  /** The function's settings (limit, retries, retention); asked often, so keep it cheap. */
  policy?: (fn: string) => FunctionPolicy;
  backoff?: Backoff;
  /** How often to look for due jobs when nothing wakes the scheduler (ms, default 1000). */
  pollMs?: number;
  /** How long log text waits in memory before it is written (ms, default 200). */
  logFlushMs?: number;
  /** How often the retention sweep runs (ms, default one hour; also once at start). */
  sweepEveryMs?: number;
  /** Errors that cannot be reported to a caller (a failing write of a log, a sweep). */
  onError?: (e: unknown) => void;
}

interface Running {
  claimed: Claimed;
  controller: AbortController;
  /** Why the scheduler aborted it, if it did. */
  abortedFor?: "cancel" | "shutdown" | "disk";
  /** A write of its records failed because the database could not be written: what failed. */
  unwritten?: string;
  /** Its first stage was recorded (and written at once; later ones are buffered). */
  staged?: boolean;
  done: Promise<void>;
}

type Key = string; // `${queue}\0${fn}`

const LOG_FLUSH_BYTES = 64 * 1024;

/**
 * Events: `start` (job record), `finish` (job record, after its outcome is stored), `log` ([job id,
 * text][] of running jobs, after it is written; before their `finish`), `error` is NOT
 * used (see onError) so an unhandled emitter error cannot take the engine down.
 */
export class Scheduler extends EventEmitter {
  private readonly store: JobStore;
  private readonly handler: JobHandler;
  private readonly global: number;
  private readonly queueLimit: Record<Queue, number>;
  private readonly policy: (fn: string) => FunctionPolicy;
  private readonly backoff: Backoff;
  private readonly pollMs: number;
  private readonly logFlushMs: number;
  private readonly sweepEveryMs: number;
  private readonly onError: (e: unknown) => void;

  private readonly ring: Key[] = [];
  private readonly inRing = new Set<Key>();
  private cursor = 0;
  private readonly running = new Map<string, Running>();
  private readonly perFn = new Map<string, number>();
  private readonly perQueue: Record<Queue, number> = { lambda: 0, batch: 0 };
  private readonly waiters = new Map<
    string,
    { resolve: (j: JobRecord) => void; reject: (e: Error) => void }[]
  >();
  private readonly logBuffer = new Map<number, string[]>();
  /** Stage times not written yet, by job seq (see bufferStage). */
  private readonly stageBuffer = new Map<number, StageTimesOf>();
  private logBufferSize = 0;
  private logTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private pumpQueued = false;
  private started = false;
  private stopping = false;
  private unsubscribe: (() => void) | null = null;
  private unwatchHealth: (() => void) | null = null;
  private release: (() => void) | null = null;
  /** The job database is damaged: nothing more is dispatched. */
  private halted = false;
  /** Outcomes (failed, reason `disk`) waiting for the database to be writable again, by job seq. */
  private readonly pendingOutcomes = new Map<number, { job: Claimed["job"]; outcome: JobOutcome }>();
  /** The last dispatch error logged, so one that every poll meets again is logged once. */
  private lastPumpError: string | null = null;

  constructor(opts: SchedulerOptions) {
    super();
    const cores = availableParallelism();
    this.store = opts.store;
    this.handler = opts.handler;
    this.global = positive(opts.concurrency ?? cores, "concurrency");
    this.queueLimit = {
      lambda: positive(opts.queues?.lambda?.concurrency ?? this.global, "lambda concurrency"),
      batch: positive(
        opts.queues?.batch?.concurrency ?? Math.max(1, Math.floor(cores / 2)),
        "batch concurrency",
      ),
    };
    this.policy = opts.policy ?? (() => ({}));
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.pollMs = opts.pollMs ?? 1000;
    this.logFlushMs = opts.logFlushMs ?? 200;
    this.sweepEveryMs = opts.sweepEveryMs ?? 3_600_000;
    this.onError = opts.onError ?? ((e) => process.emitWarning(`scar jobs: ${(e as Error)?.message ?? e}`));
  }

  /**
   * Takes the queue (one scheduler per database: QueueOwnedError if another live one has it),
   * recovers jobs a killed process left running (back to queued, attempt counted), runs the retention
   * sweep, and starts dispatching. Returns what the recovery did.
   */
  start(): { requeued: number; dead: number } {
    if (this.started) throw new Error("scheduler already started");
    this.release = takeOwnership(this.store.db, this.store.now());
    this.started = true;
    this.unwatchHealth = this.store.health.onChange((h) => this.healthChanged(h));
    const recovered = this.store.recover((fn, inv) => this.maxAttempts(fn, inv));
    this.sweep();
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
    for (const k of this.store.queuedKeys()) this.addKey(k.fn, k.queue);
    this.unsubscribe = this.store.onEnqueue((fn, queue) => {
      this.addKey(fn, queue);
      this.schedulePump();
    });
    this.schedulePump();
    return recovered;
  }

  /**
   * Stops dispatching. By default waits for running jobs to finish; with `abort`, aborts their
   * signals and puts them back in the queue (attempt counted), as a crash would, but cleanly.
   */
  async stop(opts: { abort?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    this.unwatchHealth?.();
    for (const t of [this.wakeTimer, this.sweepTimer]) if (t) clearTimeout(t);
    if (opts.abort) {
      for (const r of this.running.values()) {
        r.abortedFor ??= "shutdown";
        r.controller.abort(new Error("scheduler stopped"));
      }
    }
    await Promise.all([...this.running.values()].map((r) => r.done));
    this.flushLogs();
    // Outcomes still unwritten stay `running` on disk: the next start's recovery requeues those jobs.
    if (!this.halted) this.writePendingOutcomes();
    try {
      this.release?.();
    } catch (e) {
      this.onError(e);
    }
    this.release = null;
  }

  /** The job database's health: ok, or damaged / cannot be written, with a message. */
  health(): JobHealthState {
    return this.store.health.get();
  }

  /** Cancels a queued or running job. False when it is neither. */
  cancel(id: string): boolean {
    const r = this.running.get(id);
    if (r) {
      r.abortedFor ??= "cancel";
      r.controller.abort(new Error("job cancelled"));
      return true;
    }
    if (!this.store.cancelQueued(id)) return false;
    const job = this.store.get(id);
    if (job) this.resolveWaiters(job);
    return true;
  }

  /**
   * Resolves when the job is succeeded, failed or dead (at once if it already is). Rejects when the
   * job database is damaged: no job will be dispatched, so a caller must not wait for ever.
   */
  wait(id: string): Promise<JobRecord> {
    const job = this.store.get(id);
    if (!job) return Promise.reject(new Error(`no job ${id}`));
    if (FINAL_STATUSES.includes(job.status)) return Promise.resolve(job);
    if (this.halted) return Promise.reject(new Error(this.health().message));
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(id) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(id, list);
    });
  }

  /** Jobs running now, per queue and in total. */
  load(): { total: number; lambda: number; batch: number } {
    return { total: this.running.size, ...this.perQueue };
  }

  // ------------------------------------------------------------------ dispatch

  private addKey(fn: string, queue: Queue): void {
    const k = `${queue}\0${fn}`;
    if (this.inRing.has(k)) return;
    this.inRing.add(k);
    this.ring.push(k);
  }

  private schedulePump(): void {
    if (this.pumpQueued || this.stopping) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      try {
        this.pump();
        this.lastPumpError = null;
      } catch (e) {
        // A fault of the database is logged by healthChanged, once; other errors once in a row.
        const message = (e as Error)?.message ?? String(e);
        if (!dbFault(e) && message !== this.lastPumpError) this.onError(e);
        this.lastPumpError = message;
        this.wakeIn(this.pollMs);
      }
    });
  }

  /** Starts every job the limits allow, one per ring entry per pass, round-robin. */
  private pump(): void {
    if (this.stopping || this.halted) return;
    // The outcomes that waited for room come first: writing them clears a full disk's fault.
    if (!this.writePendingOutcomes()) {
      this.wakeIn(this.pollMs, true);
      return;
    }
    // Nothing waits to be written: after a full disk, free space says whether dispatch may go on.
    if (this.store.health.waitForRoom()) {
      this.wakeIn(this.pollMs);
      return;
    }
    const round = this.claimTogether();
    for (const r of round.claimed) this.launch(r);
    this.wakeForDue(round.nextDue);
  }

  /**
   * Claims every job the limits allow (claimRound), in one write transaction with whatever `first`
   * writes (a finished job's outcome): one commit, not one per claim. The claimed jobs hold their
   * places in the limits when this returns; launch them after it (they are on disk as running).
   * Nothing is claimed, and nothing is written, when no job could start.
   */
  private claimTogether<T>(first?: () => T): { first?: T; claimed: Running[]; nextDue: number } {
    const claimed: Running[] = [];
    const mayClaim = this.running.size < this.global && this.ring.length > 0;
    if (!mayClaim) {
      return { ...(first ? { first: first() } : {}), claimed, nextDue: Number.POSITIVE_INFINITY };
    }
    try {
      return this.store.together(() => {
        const out = first?.();
        const nextDue = this.claimRound(claimed);
        return { ...(first ? { first: out as T } : {}), claimed, nextDue };
      });
    } catch (e) {
      // Rolled back: the claims did not happen, and their jobs are queued again (their keys back in
      // the ring, which the round may have left thinking they had no more).
      for (const r of claimed) {
        this.unreserve(r);
        this.addKey(r.claimed.job.function, r.claimed.job.queue);
      }
      throw e;
    }
  }

  /**
   * The round-robin passes over the ring: claims one due job per (function, queue) per pass while
   * the limits have room, reserving its place (pushed to `claimed`). Returns the earliest not-before
   * of the keys whose jobs are not due yet (infinity: none).
   */
  private claimRound(claimed: Running[]): number {
    let nextDue = Number.POSITIVE_INFINITY;
    let progress = true;
    while (progress && this.running.size < this.global && this.ring.length > 0) {
      progress = false;
      const n = this.ring.length;
      for (let i = 0; i < n && this.running.size < this.global && this.ring.length > 0; i++) {
        if (this.cursor >= this.ring.length) this.cursor = 0;
        const k = this.ring[this.cursor]!;
        const sep = k.indexOf("\0");
        const queue = k.slice(0, sep) as Queue;
        const fn = k.slice(sep + 1);
        if (!this.hasRoom(fn, queue)) {
          this.cursor++;
          continue;
        }
        const c = this.store.claimNext(fn, queue);
        if (c) {
          claimed.push(this.reserve(c));
          progress = true;
          this.cursor++;
          continue;
        }
        const due = this.store.nextDue(fn, queue);
        if (due === null) {
          // Nothing queued any more: leave the ring (an enqueue puts it back).
          this.ring.splice(this.cursor, 1);
          this.inRing.delete(k);
        } else {
          nextDue = Math.min(nextDue, due);
          this.cursor++;
        }
      }
    }
    return nextDue;
  }

  /** Woken by enqueues and finished jobs; the timer covers retry backoffs coming due. */
  private wakeForDue(nextDue: number): void {
    const wait = Number.isFinite(nextDue) ? Math.max(1, nextDue - this.store.now()) : this.pollMs;
    this.wakeIn(Math.min(wait, this.pollMs), Number.isFinite(nextDue));
  }

  /** `keepAlive`: a retry is coming due, so the process should wait for it (plain polling should not). */
  private wakeIn(ms: number, keepAlive = false): void {
    if (this.stopping || this.halted) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedulePump();
    }, ms);
    if (!keepAlive) this.wakeTimer.unref();
  }

  private hasRoom(fn: string, queue: Queue): boolean {
    if (this.perQueue[queue] >= this.queueLimit[queue]) return false;
    const limit = this.policy(fn).concurrency;
    return limit === undefined || (this.perFn.get(fn) ?? 0) < limit;
  }

  private maxAttempts(fn: string, invocation: Invocation): number {
    return 1 + (invocation === "async" ? (this.policy(fn).retries ?? DEFAULT_RETRIES) : 0);
  }

  // ------------------------------------------------------------------ running one job

  /** A claimed job takes its place in the limits (not started yet: see launch). */
  private reserve(claimed: Claimed): Running {
    const { job } = claimed;
    this.perFn.set(job.function, (this.perFn.get(job.function) ?? 0) + 1);
    this.perQueue[job.queue]++;
    const entry = { claimed, controller: new AbortController() } as Running;
    this.running.set(job.id, entry);
    return entry;
  }

  /** A job leaves its place in the limits (it ended, or its claim was rolled back). */
  private unreserve(entry: Running): void {
    const { job } = entry.claimed;
    if (this.running.get(job.id) !== entry) return;
    this.running.delete(job.id);
    this.perQueue[job.queue]--;
    const n = (this.perFn.get(job.function) ?? 1) - 1;
    if (n === 0) this.perFn.delete(job.function);
    else this.perFn.set(job.function, n);
  }

  /** Runs a claimed job whose claim is committed. */
  private launch(entry: Running): void {
    const { job, seq } = entry.claimed;
    const ctx: JobContext = {
      signal: entry.controller.signal,
      attempt: entry.claimed.attempt,
      stage: (stage: HandlerStage, at?: number) => {
        this.bufferStage(seq, stage, at ?? this.store.now());
        // The first stage is written at once, with the log so far: a job that began its work shows
        // it, also after a crash. The others wait for the next flush (at the latest, the job's end,
        // written with its outcome).
        if (!entry.staged) {
          entry.staged = true;
          this.flushLogs();
        }
      },
      log: (text: string) => this.bufferLog(seq, text),
    };
    try {
      this.emit("start", job);
    } catch (e) {
      this.onError(e);
    }
    entry.done = this.invoke(job, ctx).then((outcome) => this.complete(entry, outcome));
  }

  private async invoke(job: Claimed["job"], ctx: JobContext): Promise<JobOutcome> {
    try {
      return await this.handler(job, ctx);
    } catch (e) {
      return { status: "failed", reason: "internal-error", error: (e as Error)?.message ?? String(e) };
    }
  }

  /**
   * Records a job's end: its buffered progress, its outcome and the claims of the jobs that may take
   * its place, in one write transaction. The outcome is committed (on disk, survives a kill -9)
   * before anyone hears of it (the `finish` event, waiters).
   */
  private complete(entry: Running, outcome: JobOutcome): void {
    const { job, seq } = entry.claimed;
    // Its place is free for the claims made with its outcome.
    this.unreserve(entry);
    let after: JobRecord | undefined;
    let claimed: Running[] = [];
    let nextDue: number | undefined;
    try {
      if (entry.abortedFor === "shutdown") {
        this.flushLogs();
        this.store.requeueInterrupted(seq, this.maxAttempts(job.function, job.invocation));
      } else {
        if (entry.abortedFor === "cancel") {
          outcome = { ...outcome, status: "failed", reason: "cancelled", retry: false };
          delete outcome.delegate;
        } else if (entry.unwritten) {
          outcome = diskOutcome(entry.unwritten);
        }
        const progress = this.takeProgress();
        try {
          // Claims only when pump() would claim: not while stopping, halted or waiting for room.
          const claim =
            !this.stopping && !this.halted && this.pendingOutcomes.size === 0 && this.store.health.get().ok;
          const finish = () => this.store.finish(seq, outcome, this.retryPolicy(job.function), progress);
          if (claim) {
            const round = this.claimTogether(finish);
            after = round.first?.record;
            claimed = round.claimed;
            nextDue = round.nextDue;
          } else {
            after = finish()?.record;
          }
          // (before the `finish` event: a follower gets the last text, then the end)
          this.emitLog(progress, entry);
        } catch (e) {
          // The progress of other running jobs written with it is lost too: they are stopped.
          this.progressLost(progress, e, true);
          if (dbFault(e) !== "disk") throw e;
          // Its record is incomplete whatever the handler said: it is retried once it can be written.
          const why = entry.unwritten ?? `its outcome (${(e as Error).message})`;
          this.logJob(job, `could not write ${why}; it ends as failed (reason disk) once there is room`);
          this.pendingOutcomes.set(seq, { job, outcome: diskOutcome(why) });
        }
      }
    } catch (e) {
      // The job stays `running` in the database; the next start's recovery requeues it.
      if (!dbFault(e)) this.onError(e);
    }
    if (!this.pendingOutcomes.has(seq)) {
      try {
        after ??= this.store.get(job.id);
      } catch {
        // A damaged database: already in health, and there is nothing to tell the waiters.
      }
      if (after) this.finished(after);
    }
    for (const r of claimed) this.launch(r);
    // The claims made with the outcome were this turn's pump; otherwise (or when the job went back
    // in the queue, its key maybe back in the ring only now) one comes.
    if (nextDue === undefined || after?.status === "queued") this.schedulePump();
    else this.wakeForDue(nextDue);
  }

  private finished(after: JobRecord): void {
    try {
      this.emit("finish", after);
    } catch (e) {
      this.onError(e); // a listener's bug must not leave the job's waiters hanging
    }
    this.resolveWaiters(after);
    // A retry goes back in the ring (its key may have left it while the job ran).
    if (after.status === "queued") this.addKey(after.function, after.queue);
  }

  private retryPolicy(fn: string): { retries: number; backoff: Backoff } {
    return { retries: this.policy(fn).retries ?? DEFAULT_RETRIES, backoff: this.backoff };
  }

  // ------------------------------------------------------------------ faults of the database

  /**
   * A write of a running job's records failed. When the database cannot be written (full disk), the
   * job is stopped: its record would be incomplete, so it ends as failed (reason `disk`) and is
   * retried. Returns false for other errors (the caller handles them as before).
   */
  private unwritable(entry: Running, what: string, e: unknown): boolean {
    if (dbFault(e) !== "disk") return false;
    if (!entry.unwritten) {
      entry.unwritten = `${what} (${(e as Error).message})`;
      this.logJob(entry.claimed.job, `could not write ${entry.unwritten}; the job is stopped`);
      entry.abortedFor ??= "disk";
      entry.controller.abort(new Error(`the job database cannot be written: ${(e as Error).message}`));
    }
    return true;
  }

  private logJob(job: Claimed["job"], text: string): void {
    this.onError(new Error(`job ${job.id} of '${job.function}': ${text}`));
  }

  /** Writes the outcomes that waited for room; false while the database still cannot be written. */
  private writePendingOutcomes(): boolean {
    for (const [seq, p] of this.pendingOutcomes) {
      let after: JobRecord | undefined;
      try {
        after = this.store.finish(seq, p.outcome, this.retryPolicy(p.job.function))?.record;
      } catch (e) {
        if (dbFault(e) === "disk") return false;
        // Left `running` on disk: the next start's recovery requeues it.
        if (!dbFault(e)) this.onError(e);
      }
      this.pendingOutcomes.delete(seq);
      if (after) this.finished(after);
    }
    return true;
  }

  /** Logs a fault of the database once, when it starts (and a full disk's end); damage stops dispatch. */
  private healthChanged(h: JobHealthState): void {
    if (h.ok) {
      this.onError(new Error("the job database can be written again: jobs are dispatched"));
      this.schedulePump();
      return;
    }
    this.onError(new Error(`${h.fault === "damaged" ? "ERROR" : "WARNING"}: ${h.message}`));
    if (h.fault === "damaged") {
      this.halted = true;
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      this.wakeTimer = null;
      // Jobs that are queued will not start: their callers (sync invocations) get the reason now.
      // Running jobs keep theirs: they may still finish and be recorded.
      const running = new Set(this.running.keys());
      for (const [id, list] of this.waiters) {
        if (running.has(id)) continue;
        this.waiters.delete(id);
        for (const w of list) w.reject(new Error(h.message));
      }
    }
  }

  private resolveWaiters(job: JobRecord): void {
    if (!FINAL_STATUSES.includes(job.status)) return;
    const list = this.waiters.get(job.id);
    if (!list) return;
    this.waiters.delete(job.id);
    for (const w of list) w.resolve(job);
  }

  // ------------------------------------------------------------------ logs and retention

  private bufferLog(seq: number, text: string): void {
    if (text.length === 0) return;
    const list = this.logBuffer.get(seq);
    if (list) list.push(text);
    else this.logBuffer.set(seq, [text]);
    this.logBufferSize += text.length;
    if (this.logBufferSize >= LOG_FLUSH_BYTES) this.flushLogs();
    else this.armFlush();
  }

  /**
   * A stage's time waits in memory with the log text and is written with it: a short job's stages
   * and log cost two transactions (its first stage, its end), not ten.
   */
  private bufferStage(seq: number, stage: HandlerStage, at: number): void {
    const times = this.stageBuffer.get(seq);
    if (times) times[stage] = at;
    else this.stageBuffer.set(seq, { [stage]: at });
    this.armFlush();
  }

  private armFlush(): void {
    if (this.logTimer) return;
    this.logTimer = setTimeout(() => this.flushLogs(), this.logFlushMs);
    this.logTimer.unref();
  }

  /** Takes every buffered log text and stage time out of the buffers (undefined: none). */
  private takeProgress(): Progress | undefined {
    if (this.logTimer) {
      clearTimeout(this.logTimer);
      this.logTimer = null;
    }
    if (this.logBuffer.size === 0 && this.stageBuffer.size === 0) return undefined;
    const logs = [...this.logBuffer].map(([seq, parts]): [number, string] => [seq, parts.join("")]);
    const stages = [...this.stageBuffer];
    this.logBuffer.clear();
    this.stageBuffer.clear();
    this.logBufferSize = 0;
    return { logs, stages };
  }

  /** Writes every buffered log text and stage time in one transaction. */
  private flushLogs(): void {
    const progress = this.takeProgress();
    if (!progress) return;
    try {
      this.store.recordProgress(progress.logs, progress.stages);
      this.emitLog(progress);
    } catch (e) {
      this.progressLost(progress, e);
    }
  }

  /**
   * `log` with [job id, text] of what was just written, for logs that follow live (the API's
   * follow). `ended`: a job whose end was written with it (it has left `running` by then).
   */
  private emitLog(progress: Progress | undefined, ended?: Running): void {
    if (!progress || this.listenerCount("log") === 0) return;
    const logs = [...progress.logs];
    if (logs.length === 0) return;
    const ids = new Map<number, string>();
    for (const r of this.running.values()) ids.set(r.claimed.seq, r.claimed.job.id);
    if (ended) ids.set(ended.claimed.seq, ended.claimed.job.id);
    const written = logs.flatMap(([seq, text]): [string, string][] => {
      const id = ids.get(seq);
      return id === undefined ? [] : [[id, text]];
    });
    try {
      this.emit("log", written);
    } catch (e) {
      this.onError(e); // a listener's bug must not look like a failed write of the log
    }
  }

  /**
   * A write of buffered progress failed: the running jobs whose text or stage times it held are
   * stopped when the database cannot be written (see unwritable). `quiet`: the caller reports `e`.
   */
  private progressLost(progress: Progress | undefined, e: unknown, quiet = false): void {
    const lostLog = new Map(progress?.logs ?? []);
    const lostStages = new Map(progress?.stages ?? []);
    const jobs = [...this.running.values()].filter(
      (r) => lostLog.has(r.claimed.seq) || lostStages.has(r.claimed.seq),
    );
    const what = (r: Running) => {
      const parts: string[] = [];
      const times = lostStages.get(r.claimed.seq);
      if (times) parts.push(...Object.keys(times).map((s) => `its stage ${s}`));
      const text = lostLog.get(r.claimed.seq);
      if (text !== undefined) parts.push(`${text.length} characters of its log`);
      return parts.join(", ");
    };
    const stopped = jobs.map((r) => this.unwritable(r, what(r), e));
    if (!quiet && !stopped.includes(true) && !dbFault(e)) this.onError(e);
  }

  private sweep(): void {
    try {
      this.store.sweep((fn) => this.policy(fn).retentionDays ?? DEFAULT_RETENTION_DAYS);
    } catch (e) {
      if (!dbFault(e)) this.onError(e);
    }
  }
}

/** How a job whose records could not be written ends: failed, retried like any failure. */
function diskOutcome(what: string): JobOutcome {
  return {
    status: "failed",
    reason: "disk",
    error: `the job database could not be written (disk full?): ${what} was lost; the job was stopped`,
  };
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${n}`);
  return n;
}
