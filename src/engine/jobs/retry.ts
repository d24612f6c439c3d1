/**
 * What becomes of a job after an attempt: the retry rule in one pure function, so it can be read
 * (and tested) without a database or a clock.
 *
 * - success ends the job;
 * - a sync job's failure is final (its caller gets the answer, as with Lambda's RequestResponse);
 * - an async failure is retried after an exponential backoff while the cycle has retries left, then
 *   dead-lettered; `cancelled` and delegated jobs are never retried, and a handler can say `retry: false`.
 */
import type { Invocation, JobOutcome, JobStatus } from "./types.js";

export interface Backoff {
  /** Wait before the first retry, ms. */
  baseMs: number;
  /** Each further retry waits this many times longer... */
  factor: number;
  /** ...up to this. */
  maxMs: number;
}

/** Lambda waits about a minute before its first async retry; an engine on one machine can be quicker. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 5_000, factor: 2, maxMs: 300_000 };

export function backoffDelay(b: Backoff, retry: number): number {
  return Math.min(b.maxMs, b.baseMs * b.factor ** Math.max(0, retry - 1));
}

export interface Decision {
  status: JobStatus;
  /** For `queued`: the earliest time of the next attempt. */
  notBefore?: number;
}

export function decide(
  job: { invocation: Invocation; cycleAttempts: number },
  outcome: Pick<JobOutcome, "status" | "reason" | "retry" | "delegate">,
  retries: number,
  backoff: Backoff,
  now: number,
): Decision {
  if (outcome.status === "succeeded") return { status: "succeeded" };
  if (job.invocation === "sync") return { status: "failed" };
  if (outcome.reason === "cancelled" || outcome.delegate) return { status: "failed" };
  if (outcome.retry !== false && job.cycleAttempts <= retries) {
    return { status: "queued", notBefore: now + backoffDelay(backoff, job.cycleAttempts) };
  }
  return { status: "dead" };
}
