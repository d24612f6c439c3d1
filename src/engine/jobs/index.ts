/**
 * The engine's durable job system: a job store in SQLite (WAL, one file) and a scheduler that runs
 * queued jobs through a handler the engine provides. Independent of how a job is executed.
 *
 *   const store = JobStore.open({ dataDir });                      // migrates the schema
 *   // in the object store's commit hook (synchronous; durable when it returns):
 *   store.enqueueMany(events.map((e) => ({ function, trigger: { type: "object", bucket, key },
 *     payload: { Records: [e.record] }, dedupeKey: `store-event:${e.id}` })));
 *   const scheduler = new Scheduler({ store, handler: async (job, ctx) => {
 *     ctx.stage("image_ready"); ctx.log("..."); return { status: "succeeded", outputKeys };
 *   }, policy: (fn) => ({ concurrency, retries, retentionDays }) });
 *   scheduler.start();   // takes the queue (QueueOwnedError if another live scheduler has it),
 *                        // requeues jobs a killed process left running, sweeps old records
 *   const done = await scheduler.wait(id);                         // sync invocations
 *   store.list(fn | undefined), store.get(id), store.log(id), store.attempts(id), store.children(id),
 *   store.counts(), store.recentDurations(fn),
 *   store.listDead(), store.redrive(id), store.redriveAll(fn), store.deleteJobs(fn, "succeeded" | "all")
 *   await scheduler.stop(); store.close();
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
