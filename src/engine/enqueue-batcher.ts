/**
 * Batching the job enqueues of the store's commit hooks (see EnqueueBatcher).
 */
import type { EnqueueInput, JobStore } from "./jobs/index.js";

/**
 * Puts the enqueues of the commit hooks that run in one turn of the event loop into one transaction.
 * The store acknowledges the uploads of a journal batch together, so under a burst of uploads their
 * jobs cost one fsync of the job database (durable against a power loss) on the engine's thread,
 * not one each. A hook resolves once its jobs are committed. If the shared transaction fails, each
 * hook's enqueues are tried alone, so one bad event only fails its own upload.
 */
export class EnqueueBatcher {
  private pending: { inputs: EnqueueInput[]; resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly jobs: Pick<JobStore, "enqueueMany">) {}

  add(inputs: EnqueueInput[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ inputs, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0);
    try {
      this.jobs.enqueueMany(batch.flatMap((b) => b.inputs));
      for (const b of batch) b.resolve();
    } catch {
      for (const b of batch) {
        try {
          this.jobs.enqueueMany(b.inputs);
          b.resolve();
        } catch (e) {
          b.reject(e);
        }
      }
    }
  }
}
