/**
 * Batching the job enqueues of the store's commit hooks (see EnqueueBatcher).
 */
import type { EnqueueInput, JobStore } from "./jobs/index.js";

/**
 * Puts the enqueues of the commit hooks that run in one turn of the event loop into one transaction.
 * The store acknowledges the uploads of a journal batch together, so under a burst of uploads their
 * jobs cost one fsync of the job database (durable against a power loss), not one each; that fsync
 * runs on the thread pool, so the engine's thread goes on (the jobs may already start) while it
 * waits. A hook resolves once its jobs are committed and fsynced. If the shared transaction fails,
 * each hook's enqueues are tried alone, so one bad event only fails its own upload.
 */
export class EnqueueBatcher {
  private pending: { inputs: EnqueueInput[]; resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly jobs: Pick<JobStore, "enqueueManyUnsynced" | "syncWal">) {}

  add(inputs: EnqueueInput[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ inputs, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0);
    let committed = batch;
    try {
      this.jobs.enqueueManyUnsynced(batch.flatMap((b) => b.inputs));
    } catch {
      committed = batch.filter((b) => {
        try {
          this.jobs.enqueueManyUnsynced(b.inputs);
          return true;
        } catch (e) {
          b.reject(e);
          return false;
        }
      });
    }
    if (committed.length === 0) return;
    this.jobs.syncWal().then(
      () => {
        for (const b of committed) b.resolve();
      },
      (e: unknown) => {
        // Committed, not known durable: the upload is not acknowledged, and the store delivers its
        // event again (the dedupe key makes that a no-op once the job exists).
        for (const b of committed) b.reject(e);
      },
    );
  }
}
