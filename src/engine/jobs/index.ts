/**
 * The engine's durable job system: a job store in SQLite (WAL, one file) and a scheduler that runs
 * queued jobs through a handler the engine provides. Independent of how a job is executed.
 *
 *   const store = JobStore.open({ dataDir });                      // migrates the schema
 *   // in the object store's commit hook (synchronous; durable when it returns):
 *   store.enqueueMany(events.map((e) => ({ function, trigger: { type: "object", bucket, key },
 *     payload: { Records: [e.record] }, dedupeKey: `store-event:${e.id}` })));
 *   const scheduler = new Scheduler({ store, handler: async (job, ctx) => {
 *     ctx.stage("image_ready"); ctx.log("...");
 *     return { status: "succeeded", outputKeys, environment };  // environment: {id, start, startMs}, if any
 *   }, policy: (fn) => ({ concurrency, retries, retentionDays }) });
 *   scheduler.start();   // takes the queue (QueueOwnedError if another live scheduler has it),
 *                        // requeues jobs a killed process left running, sweeps old records
 *   const done = await scheduler.wait(id);                         // sync invocations
 *   store.list(fn | undefined), store.get(id), store.log(id), store.attempts(id), store.children(id),
 *   store.counts(), store.startCounts(), store.recentDurations(fn),
 *   store.listDead(), store.redrive(id), store.redriveAll(fn), store.deleteJobs(fn, "succeeded" | "all")
 *   await scheduler.stop(); store.close();
 *
 * Durability and faults of the database (db.ts, faults.ts):
 * - a committed enqueue survives kill -9, and a power loss with the default durability; stages,
 *   logs and outcomes survive kill -9. Jobs a dead process left `running` are requeued at the next
 *   start (reason `interrupted`, the attempt counted).
 * - every open runs `PRAGMA quick_check` (0.4-0.8 s for 100,000 jobs here) and refuses a damaged
 *   file, or one that is not SQLite, with DamagedJobDatabaseError: the file, SQLite's words, and
 *   what to do (move the jobs folder aside; an empty database knows nothing of earlier jobs).
 * - damage met while running (SQLITE_CORRUPT, SQLITE_NOTADB from any statement) is logged once and
 *   stops dispatch until a restart; `store.health` / `scheduler.health()` say so (the engine's
 *   /health answers 503 with the reason).
 * - a write that fails for a full disk (SQLITE_FULL, or an I/O error) stops the job it was for: it
 *   ends as failed with reason `disk` once the outcome can be written, retried like any failure (dead
 *   past its retries). Dispatch pauses meanwhile; health comes back when the outcomes that waited are
 *   written, or the folder has 1 MiB free. Nothing that could not be written is claimed as done.
 * - a job's writes (store.writeTransactions counts them): its enqueue (shared by the enqueues of one
 *   event-loop turn, the only one fsynced); its first stage with the log so far (a job that began
 *   shows it after a crash); a progress flush every logFlushMs while it runs; and its end: the last
 *   progress, the outcome and the claims of the jobs taking its place, one transaction (the claims of
 *   one dispatch pass share one too). The outcome is committed before `finish` or a waiter hears it.
 * - log text is capped per job (start and end kept, cut on line ends, the marker says how many
 *   characters were dropped); a log flush lost to a full disk is said in the job's error.
 */
export type { Durability } from "./db.js";
export {
  DamagedJobDatabaseError,
  type DbFault,
  dbFault,
  type JobHealthState,
} from "./faults.js";
export {
  durationMs,
  endLine,
  lambdaLog,
  logGroupName,
  logStreamName,
  type ReportOptions,
  reportLine,
  startLine,
} from "./lambda-log.js";
export { DEFAULT_LOG_LIMIT } from "./logs.js";
export { QueueOwnedError } from "./owner.js";
export { type Backoff, backoffDelay, DEFAULT_BACKOFF } from "./retry.js";
export { Scheduler, type SchedulerOptions } from "./scheduler.js";
export { MIGRATIONS, SchemaTooNewError } from "./schema.js";
export {
  DuplicateJobError,
  type JobPage,
  JobStore,
  type JobStoreOptions,
  type ListOptions,
  type StatusCounts,
} from "./store.js";
export * from "./types.js";
