/**
 * The shapes the job system shares with the engine: what a job is, what a handler returns, and the
 * per-function policy. Kept apart from the SQL so the engine and the API can import them cheaply.
 */

/** `lambda` jobs run under the function's timeout; `batch` jobs are long runs with their own limit. */
export type Queue = "lambda" | "batch";

/**
 * `async` jobs (uploads, `POST /job`) are retried and dead-lettered; `sync` jobs (`POST /run`) have a
 * caller waiting for the answer, so a failure is final, as with Lambda's RequestResponse invocations.
 */
export type Invocation = "async" | "sync";

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "dead";

/** Statuses a job leaves only through a redrive (dead) or never (succeeded, failed). */
export const FINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "dead"];

/**
 * Why a job ended the way it did. The first six are the supervisor's; the job system adds
 * `cancelled`, `internal-error` (the handler threw) and `interrupted` (the engine died or stopped
 * while the job ran). Other strings are allowed so the supervisor can grow without a schema change.
 */
export type JobReason =
  | "ok"
  | "script-error"
  | "timeout"
  | "oom"
  | "image-error"
  | "stage-error"
  | "cancelled"
  | "internal-error"
  | "interrupted"
  | (string & {});

/** What caused the job. Extra fields are kept as they are (JSON). */
export type Trigger =
  | { type: "object"; bucket: string; key: string; [extra: string]: unknown }
  | { type: "http"; [extra: string]: unknown }
  | { type: "run"; [extra: string]: unknown };

/** The pipeline's stages, in order; each gets a timestamp (ms since the epoch) when it happens. */
export const STAGES = [
  "queued",
  "image_ready",
  "stage_in",
  "container_start",
  "script_end",
  "stage_out",
  "done",
] as const;
export type Stage = (typeof STAGES)[number];
/** The stages a handler reports; `queued` and `done` are set by the job system itself. */
export type HandlerStage = Exclude<Stage, "queued" | "done">;
export type StageTimes = Record<Stage, number | null>;

/**
 * Where an attempt ran, when the executor keeps warm execution environments (issue 14): `cold` when
 * the environment was started for this attempt (`startMs` is how long that start took), `warm` when
 * the attempt reused one. Jobs of `isolation: invocation` functions (a fresh container per
 * invocation) have none.
 */
export interface JobEnvironment {
  id: string;
  start: StartKind;
  startMs: number;
}
export type StartKind = "cold" | "warm";
export const START_KINDS: readonly StartKind[] = ["cold", "warm"];

/** An event payload: JSON (an S3 event, a parsed body) or raw bytes (a binary HTTP body). */
export type Payload = unknown;

export interface EnqueueInput {
  /** The request id; a random UUID when absent. */
  id?: string;
  function: string;
  trigger: Trigger;
  /** A Uint8Array is kept as bytes; anything else is stored as JSON. Absent: no payload. */
  payload?: Payload;
  queue?: Queue;
  invocation?: Invocation;
  /**
   * Makes enqueue idempotent: a second enqueue with the same key returns the first job. The store's
   * commit hook delivers events at least once, so the engine passes `store-event:<event id>`.
   */
  dedupeKey?: string;
  /** The job this one continues (a batch job delegated from a timed-out lambda job). */
  parentId?: string;
  /** Do not run before this time (ms since the epoch). */
  notBefore?: number;
}

export interface EnqueueResult {
  id: string;
  /** False when `dedupeKey` matched an existing job (whose id is returned). */
  created: boolean;
}

/** One job as the API shows it (without payload and log, which can be large). */
export interface JobRecord {
  id: string;
  function: string;
  queue: Queue;
  invocation: Invocation;
  trigger: Trigger;
  status: JobStatus;
  /** The last attempt's reason (kept while a failed job waits for its retry). */
  reason: JobReason | null;
  /** A short message for reasons that have one (the handler's error, a stage failure). */
  error: string | null;
  exitCode: number | null;
  /** Attempts ever started, across redrives. */
  attempts: number;
  /** 1 for the first attempt cycle; each redrive starts a new one. */
  cycle: number;
  /** Attempts in the current cycle (what the retry limit counts). */
  cycleAttempts: number;
  /** A queued job is not dispatched before this time (retry backoff). */
  notBefore: number;
  outputKeys: string[];
  maxMemoryMB: number | null;
  parentId: string | null;
  /** The batch job this one was delegated to, if any. */
  delegatedTo: string | null;
  dedupeKey: string | null;
  /** When the current (or last) attempt was dispatched. */
  startedAt: number | null;
  /** The current (or last) attempt's stage times; `queued` is the enqueue time. */
  stages: StageTimes;
  /** The last finished attempt's execution environment; null before it ends, or when it had none. */
  environment: JobEnvironment | null;
  /** Characters of log dropped by the size cap. */
  logDropped: number;
}

/** A job with its payload, as handed to the handler. */
export interface JobWithPayload extends JobRecord {
  payload: Payload | undefined;
}

/** One attempt of a job, kept as its history (also across redrives). */
export interface AttemptRecord {
  n: number;
  cycle: number;
  startedAt: number;
  endedAt: number | null;
  status: JobStatus | null;
  reason: JobReason | null;
  exitCode: number | null;
  error: string | null;
  stages: Partial<StageTimes>;
  environment: JobEnvironment | null;
}

/** What a handler tells the job system about one run of a job. */
export interface JobOutcome {
  status: "succeeded" | "failed";
  /** Defaults to `ok` for success and `script-error` for failure. */
  reason?: JobReason;
  exitCode?: number | null;
  outputKeys?: string[];
  maxMemoryMB?: number;
  error?: string;
  /** The execution environment the attempt ran in, if the executor has them. */
  environment?: JobEnvironment;
  /** False: do not retry this failure even if retries are left (e.g. a bad function definition). */
  retry?: boolean;
  /**
   * Re-run the same event as a new job (SCAR's Lambda-to-Batch delegation): the child is created in
   * the same transaction that ends this job, links back to it, and this job is not retried. `id`
   * names the child (so the handler can log it before it exists); a random UUID when absent.
   */
  delegate?: { id?: string; queue?: Queue; trigger?: Trigger; payload?: Payload };
}

/** What the scheduler gives a handler besides the job. */
export interface JobContext {
  /** Aborted when the job is cancelled or the scheduler stops without draining. */
  signal: AbortSignal;
  /** 1-based attempt number in the current cycle. */
  attempt: number;
  /**
   * Records that a stage happened now (or at `at`, ms since the epoch). The job's first stage is
   * written at once with its log so far; later ones with the log text, one transaction per flush
   * (at the latest when the job ends), not one write per stage.
   */
  stage(stage: HandlerStage, at?: number): void;
  /** Appends text to the job's log (written in batches; the size cap applies). */
  log(text: string): void;
}

export type JobHandler = (job: JobWithPayload, ctx: JobContext) => Promise<JobOutcome>;

/** Per-function settings; every field is optional and falls back to the defaults. */
export interface FunctionPolicy {
  /** Most jobs of this function running at once (no limit of its own when absent). */
  concurrency?: number;
  /** Retries of a failed async job before it is dead-lettered (default 2). */
  retries?: number;
  /** Days to keep finished jobs and their logs (default 30, `cloudwatch.log_retention_policy_in_days`). */
  retentionDays?: number;
}

export const DEFAULT_RETRIES = 2;
export const DEFAULT_RETENTION_DAYS = 30;
