// Shared by the job system's tests: a store in a temp dir (removed after), and small async helpers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { JobStore, type JobStoreOptions } from "../../../src/engine/jobs/index.js";

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "scar-jobs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function openStore(opts: Partial<JobStoreOptions> = {}): JobStore {
  const store = JobStore.open({ dataDir: opts.dataDir ?? tempDir(), durability: "process", ...opts });
  after(() => store.close());
  return store;
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** A promise with its resolve function. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets other handlers and the scheduler run a few turns. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

export const obj = (key: string) => ({ type: "object" as const, bucket: "in", key });
