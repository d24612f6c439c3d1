/** Rows of the `jobs` and `attempts` tables to the records the rest of scar sees, and payload encoding. */
import type {
  AttemptRecord,
  Invocation,
  JobEnvironment,
  JobRecord,
  JobStatus,
  Payload,
  Queue,
  Stage,
  StageTimes,
  StartKind,
  Trigger,
} from "./types.js";
import { STAGES } from "./types.js";

export interface JobRow {
  seq: number;
  id: string;
  fn: string;
  queue: Queue;
  invocation: Invocation;
  trig: string;
  dedupe_key: string | null;
  parent_id: string | null;
  delegated_to: string | null;
  status: JobStatus;
  reason: string | null;
  error: string | null;
  exit_code: number | null;
  attempts: number;
  cycle: number;
  cycle_attempts: number;
  not_before: number;
  output_keys: string;
  max_memory_mb: number | null;
  t_started: number | null;
  t_queued: number;
  t_image_ready: number | null;
  t_stage_in: number | null;
  t_container_start: number | null;
  t_script_end: number | null;
  t_stage_out: number | null;
  t_done: number | null;
  log_dropped: number;
  env_start: StartKind | null;
  env_id: string | null;
  env_start_ms: number | null;
}

/** Every column but the payload and the log bookkeeping, for listing. */
export const JOB_COLUMNS =
  "seq, id, fn, queue, invocation, trig, dedupe_key, parent_id, delegated_to, status, reason, error, " +
  "exit_code, attempts, cycle, cycle_attempts, not_before, output_keys, max_memory_mb, t_started, " +
  "t_queued, t_image_ready, t_stage_in, t_container_start, t_script_end, t_stage_out, t_done, log_dropped, " +
  "env_start, env_id, env_start_ms";

/** The environment columns of a jobs or attempts row as a record (null when the attempt had none). */
export function toEnvironment(r: {
  env_start: StartKind | null;
  env_id: string | null;
  env_start_ms: number | null;
}): JobEnvironment | null {
  if (r.env_start === null) return null;
  return { id: r.env_id ?? "", start: r.env_start, startMs: r.env_start_ms ?? 0 };
}

/** A handler's environment as the three columns (all null when it has none). */
export function environmentColumns(e: JobEnvironment | undefined): {
  env_start: StartKind | null;
  env_id: string | null;
  env_start_ms: number | null;
} {
  return e
    ? { env_start: e.start, env_id: e.id, env_start_ms: e.startMs }
    : { env_start: null, env_id: null, env_start_ms: null };
}

export function stageColumn(stage: Stage): string {
  return `t_${stage}`;
}

export function toRecord(r: JobRow): JobRecord {
  const stages = {} as StageTimes;
  const row = r as unknown as Record<string, number | null>;
  for (const s of STAGES) stages[s] = row[stageColumn(s)] ?? null;
  return {
    id: r.id,
    function: r.fn,
    queue: r.queue,
    invocation: r.invocation,
    trigger: JSON.parse(r.trig) as Trigger,
    status: r.status,
    reason: r.reason,
    error: r.error,
    exitCode: r.exit_code,
    attempts: r.attempts,
    cycle: r.cycle,
    cycleAttempts: r.cycle_attempts,
    notBefore: r.not_before,
    outputKeys: JSON.parse(r.output_keys) as string[],
    maxMemoryMB: r.max_memory_mb,
    parentId: r.parent_id,
    delegatedTo: r.delegated_to,
    dedupeKey: r.dedupe_key,
    startedAt: r.t_started,
    stages,
    environment: toEnvironment(r),
    logDropped: r.log_dropped,
  };
}

export interface AttemptRow {
  n: number;
  cycle: number;
  started: number;
  ended: number | null;
  status: JobStatus | null;
  reason: string | null;
  exit_code: number | null;
  error: string | null;
  stages: string | null;
  env_start: StartKind | null;
  env_id: string | null;
  env_start_ms: number | null;
}

export function toAttempt(r: AttemptRow): AttemptRecord {
  return {
    n: r.n,
    cycle: r.cycle,
    startedAt: r.started,
    endedAt: r.ended,
    status: r.status,
    reason: r.reason,
    exitCode: r.exit_code,
    error: r.error,
    stages: r.stages ? (JSON.parse(r.stages) as Partial<StageTimes>) : {},
    environment: toEnvironment(r),
  };
}

export type PayloadKind = "none" | "json" | "bytes";

export function encodePayload(p: Payload): { kind: PayloadKind; value: Buffer | string | null } {
  if (p === undefined) return { kind: "none", value: null };
  if (p instanceof Uint8Array)
    return { kind: "bytes", value: Buffer.from(p.buffer, p.byteOffset, p.byteLength) };
  return { kind: "json", value: JSON.stringify(p) };
}

export function decodePayload(kind: PayloadKind, value: Buffer | string | null): Payload {
  if (kind === "none" || value === null) return undefined;
  if (kind === "bytes") return Buffer.isBuffer(value) ? value : Buffer.from(value);
  return JSON.parse(typeof value === "string" ? value : value.toString("utf8"));
}
