/**
 * The job store and scheduler on a small tmpfs that fills up: a stage write and the final outcome
 * write that fail for a full disk do not leave the job `running`. Once there is room the job ends
 * failed with reason `disk`: retried while it has retries, dead past them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { JobStore, Scheduler } from "../../src/engine/jobs/index.js";
import { deferred } from "../engine/jobs/helpers.js";
import { fill, scratch } from "./jobs-harness.js";

const disk = scratch("scar-jobs-outcome-");

async function until<T>(what: string, fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function setUp(
  name: string,
  retries: number,
  handler: ConstructorParameters<typeof Scheduler>[0]["handler"],
) {
  const dir = disk.mountTmpfs(join(disk.root, name), "2m");
  const store = JobStore.open({ dataDir: dir, durability: "process" });
  const errors: string[] = [];
  const scheduler = new Scheduler({
    store,
    handler,
    pollMs: 10,
    backoff: { baseMs: 3_600_000, factor: 1, maxMs: 3_600_000 }, // the retry stays queued
    policy: () => ({ retries }),
    onError: (e) => errors.push((e as Error).message),
  });
  scheduler.start();
  return { dir, store, scheduler, errors };
}

/** A handler that, once started, holds its job until `release`, so the disk can fill meanwhile. */
function heldHandler() {
  const started = deferred();
  const release = deferred();
  const handler = async () => {
    started.resolve();
    await release.promise;
    return { status: "succeeded" as const };
  };
  return { started, release, handler };
}

/**
 * Enqueues a job for a held handler, fills the disk while the job runs and lets it end; resolves
 * once its outcome could not be written, with the job's id and what gives the disk room again.
 */
async function loseOutcome(t: ReturnType<typeof setUp>, held: ReturnType<typeof heldHandler>) {
  const { id } = t.store.enqueue({ function: "f", trigger: { type: "run" } });
  await held.started.promise;
  const room = fill(t.dir);
  held.release.resolve();
  await until("the failed write to be logged", () =>
    t.errors.find((e) => e.includes(`job ${id} of 'f': could not write its outcome`)),
  );
  return { id, room };
}

test("the outcome cannot be written: the job waits, then ends dead (reason disk) past its retries", async () => {
  const held = heldHandler();
  const t = setUp("outcome", 0, held.handler);
  try {
    const { id, room } = await loseOutcome(t, held);
    assert.equal(t.store.get(id)!.status, "running", "nothing could be written yet");
    assert.equal(t.scheduler.health().fault, "disk");
    room();
    const job = await t.scheduler.wait(id);
    assert.equal(job.status, "dead");
    assert.equal(job.reason, "disk");
    assert.match(job.error!, /its outcome \(database or disk is full\) was lost/);
    assert.equal(t.scheduler.health().ok, true);
    // One warning when the disk filled, one line when it had room again; not one per poll.
    assert.equal(t.errors.filter((e) => /WARNING: job database .* cannot be written/.test(e)).length, 1);
  } finally {
    await t.scheduler.stop();
    t.store.close();
  }
});

test("a stage cannot be written: the job is stopped, then failed (reason disk) and queued for its retry", async () => {
  let full: (() => void) | undefined;
  let aborted = false;
  const t = setUp("stage", 2, async (_job, ctx) => {
    full = fill(t.dir);
    ctx.stage("image_ready"); // does not throw: the scheduler stops the job instead
    aborted = ctx.signal.aborted;
    return { status: "failed", reason: "cancelled" };
  });
  try {
    const { id } = t.store.enqueue({ function: "f", trigger: { type: "run" } });
    await until("the failed write to be logged", () =>
      t.errors.find((e) => e.includes(`job ${id} of 'f': could not write its stage image_ready`)),
    );
    assert.ok(aborted, "the job's signal was aborted");
    assert.equal(t.store.get(id)!.status, "running");
    full!();
    const job = await until("the job to be requeued", () => {
      const j = t.store.get(id)!;
      return j.status === "queued" ? j : undefined;
    });
    assert.equal(job.reason, "disk");
    assert.equal(t.store.attempts(id)[0]!.reason, "disk");
  } finally {
    await t.scheduler.stop();
    t.store.close();
  }
});

test("the engine stops while an outcome still cannot be written: the next start requeues the job", async () => {
  const held = heldHandler();
  const t = setUp("restart", 2, held.handler);
  const { id, room } = await loseOutcome(t, held);
  await t.scheduler.stop();
  t.store.close();
  // Still full at the next start: the queue cannot even be taken, and says why.
  assert.throws(
    () => {
      const again = JobStore.open({ dataDir: t.dir, durability: "process" });
      try {
        new Scheduler({ store: again, handler: async () => ({ status: "succeeded" }) }).start();
      } finally {
        again.close();
      }
    },
    { code: "SQLITE_FULL" },
  );
  room();
  const store = JobStore.open({ dataDir: t.dir, durability: "process" });
  const scheduler = new Scheduler({
    store,
    handler: async () => ({ status: "succeeded" }),
    policy: () => ({ retries: 2 }),
    backoff: { baseMs: 3_600_000, factor: 1, maxMs: 3_600_000 },
  });
  try {
    assert.equal(store.get(id)!.status, "running", "left running on disk by the stopped engine");
    assert.deepEqual(scheduler.start(), { requeued: 1, dead: 0 });
    const job = store.get(id)!;
    assert.equal(job.status, "queued");
    assert.equal(job.reason, "interrupted");
  } finally {
    await scheduler.stop();
    store.close();
  }
});
