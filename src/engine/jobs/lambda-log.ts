/**
 * Lambda's START / END / REPORT lines for a job, from its record, so `scar log` and the API show what
 * AWS users read in CloudWatch:
 *
 *   START RequestId: <id> Version: $LATEST
 *   END RequestId: <id>
 *   REPORT RequestId: <id>\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB
 *
 * Duration is the attempt's dispatch to its end (Lambda counts its whole handler, which here is
 * stage-in, the container and stage-out); billed is that rounded up to the millisecond, as Lambda
 * bills. Fields we do not know (memory size, max memory used) are left out rather than invented.
 * A cold start adds Lambda's `Init Duration: 182.40 ms`: how long its execution environment took to
 * start (not part of Duration on Lambda; here it is, as the environment starts inside the attempt).
 *
 * Also the names Lambda would give the job's logs: group `/aws/lambda/<function>`, stream
 * `YYYY/MM/DD/[$LATEST]<id without dashes>`.
 */
import type { JobRecord } from "./types.js";

export interface ReportOptions {
  /** The function's memory setting. */
  memorySizeMB?: number;
  /** For a job still running: the time to measure to (default: now). */
  now?: number;
}

export function startLine(job: Pick<JobRecord, "id">): string {
  return `START RequestId: ${job.id} Version: $LATEST`;
}

export function endLine(job: Pick<JobRecord, "id">): string {
  return `END RequestId: ${job.id}`;
}

/** The CloudWatch log group Lambda gives a function: `/aws/lambda/<function>`. */
export function logGroupName(fn: string): string {
  return `/aws/lambda/${fn}`;
}

/**
 * A Lambda-like log stream name: `YYYY/MM/DD/[$LATEST]<job id without dashes>`, dated by when the job
 * was queued (UTC), so it is stable across retries and redrives of the job.
 */
export function logStreamName(job: Pick<JobRecord, "id" | "stages">): string {
  const day = new Date(job.stages.queued ?? 0).toISOString().slice(0, 10).replace(/-/g, "/");
  return `${day}/[$LATEST]${job.id.replace(/-/g, "")}`;
}

/** The attempt's duration in ms, or null if it has not started. */
export function durationMs(job: Pick<JobRecord, "startedAt" | "stages">, now = Date.now()): number | null {
  if (job.startedAt === null) return null;
  return Math.max(0, (job.stages.done ?? now) - job.startedAt);
}

export function reportLine(
  job: Pick<JobRecord, "id" | "startedAt" | "stages" | "maxMemoryMB" | "reason" | "environment">,
  opts: ReportOptions = {},
): string {
  const parts = [`REPORT RequestId: ${job.id}`];
  const d = durationMs(job, opts.now);
  if (d !== null) {
    parts.push(`Duration: ${d.toFixed(2)} ms`, `Billed Duration: ${Math.max(1, Math.ceil(d))} ms`);
  }
  if (opts.memorySizeMB !== undefined) parts.push(`Memory Size: ${opts.memorySizeMB} MB`);
  if (job.maxMemoryMB !== null) parts.push(`Max Memory Used: ${Math.ceil(job.maxMemoryMB)} MB`);
  if (job.environment?.start === "cold")
    parts.push(`Init Duration: ${job.environment.startMs.toFixed(2)} ms`);
  // Lambda ends the REPORT of a timed-out or out-of-memory run with its status.
  if (job.reason === "timeout") parts.push("Status: timeout");
  else if (job.reason === "oom") parts.push("Status: error", "Error Type: Runtime.OutOfMemory");
  return parts.join("\t");
}

/** The log as Lambda would show it: START, the job's own log, END, REPORT. */
export function lambdaLog(job: JobRecord, log: string, opts: ReportOptions = {}): string {
  const body = log.length === 0 || log.endsWith("\n") ? log : `${log}\n`;
  return `${startLine(job)}\n${body}${endLine(job)}\n${reportLine(job, opts)}\n`;
}
