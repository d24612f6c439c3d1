/**
 * Many job records for the dashboard's scale test and its benchmark (bench/ui.ts), written through
 * the job store's own API as the engine's would be: enqueued, claimed and finished in transactions
 * of 500 (10,000 take a few seconds instead of the hours real containers would).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_BACKOFF, type EnqueueInput, JobStore } from "../../src/engine/jobs/index.js";

/** The `i`-th job of `fn`, as an upload of `input/<i>.txt` to its bucket would queue it. */
export function uploadJob(fn: string, i: number): EnqueueInput {
  return {
    function: fn,
    trigger: { type: "object", bucket: fn, key: `input/${i}.txt` },
    payload: { Records: [{ s3: { object: { key: `input/${i}.txt`, size: 10 } } }] },
  };
}

/**
 * Writes `n` succeeded jobs of `fn` into the job database of the engine data folder `dataDir`
 * (before the engine opens it: the engine's scheduler would otherwise run them). Returns the id of
 * the first, the oldest: the last row of the dashboard's list.
 */
export function storeFinishedJobs(dataDir: string, fn: string, n: number): string {
  const store = JobStore.open({ dataDir: join(dataDir, "jobs") });
  try {
    let oldest = "";
    for (let s = 0; s < n; s += 500) {
      store.transaction(() => {
        const batch = Array.from({ length: Math.min(500, n - s) }, (_, i) => uploadJob(fn, s + i));
        const ids = store.enqueueMany(batch);
        if (s === 0) oldest = ids[0]!.id;
        for (let i = 0; i < batch.length; i++) {
          const claimed = store.claimNext(fn, "lambda");
          assert.ok(claimed, "a job just enqueued can be claimed");
          store.finish(claimed.seq, { status: "succeeded" }, { retries: 0, backoff: DEFAULT_BACKOFF });
        }
      });
    }
    return oldest;
  } finally {
    store.close();
  }
}
