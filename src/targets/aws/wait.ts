/**
 * Bounded waits for AWS's eventual consistency: a new role not yet assumable, a function still
 * Pending or being updated, a Batch queue not yet VALID. Every wait has a limit and a message that
 * says what did not happen; tests replace `sleep` so they never wait for real.
 */
import { TargetError } from "../target-error.js";

export interface Pace {
  /** Waits `ms`; tests give one that returns at once. */
  sleep(ms: number): Promise<void>;
  /** How long one wait may last in all. */
  limitMs: number;
  /** Between two polls. */
  intervalMs: number;
}

export const REAL_PACE: Pace = {
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  limitMs: 120_000,
  intervalMs: 2_000,
};

/**
 * Polls `check` until it returns a value other than undefined; fails with `what` after the limit.
 */
export async function waitFor<T>(
  pace: Pace,
  what: string,
  check: () => Promise<T | undefined>,
  hint?: string,
): Promise<T> {
  const rounds = Math.max(1, Math.ceil(pace.limitMs / pace.intervalMs));
  for (let i = 0; i < rounds; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await pace.sleep(pace.intervalMs);
  }
  throw new TargetError(`timed out after ${Math.round(pace.limitMs / 1000)} s waiting for ${what}`, hint);
}

/**
 * Runs `call` again while it fails with an error `transient` accepts (a role IAM has not spread yet,
 * a function being updated), up to the limit; then the last error goes up.
 */
export async function retrying<T>(
  pace: Pace,
  transient: (err: unknown) => boolean,
  call: () => Promise<T>,
): Promise<T> {
  const rounds = Math.max(1, Math.ceil(pace.limitMs / pace.intervalMs));
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (i >= rounds || !transient(err)) throw err;
      await pace.sleep(pace.intervalMs);
    }
  }
}
