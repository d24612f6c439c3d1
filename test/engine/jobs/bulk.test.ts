// 100,000 queued jobs: enqueued in batches (as a commit hook with many events would), dispatched
// through an index (checked by the query plan, not by time), and still fair to a small function.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type EnqueueInput, type JobStore, Scheduler } from "../../../src/engine/jobs/index.js";
import { READY_QUERY } from "../../../src/engine/jobs/store.js";
import { obj, openStore } from "./helpers.js";

const N = 100_000;
const BATCH = 1000;

function fill(store: JobStore): void {
  for (let b = 0; b < N / BATCH; b++) {
    const batch: EnqueueInput[] = [];
    for (let i = b * BATCH; i < (b + 1) * BATCH; i++) {
      batch.push({
        function: "big",
        trigger: obj(`in/${i}.txt`),
        payload: { Records: [{ s3: { object: { key: `in/${i}.txt` } } }] },
        dedupeKey: `store-event:${i}`,
      });
    }
    store.enqueueMany(batch);
  }
}

test("100,000 queued jobs: batched enqueue, indexed dispatch, fair to a small function", async () => {
  const store = openStore({ durability: "power" });
  fill(store);
  assert.equal(store.counts().big?.queued, N);

  // The dispatch and listing queries are index searches, never scans of the table.
  const plan = (sql: string, ...args: unknown[]) =>
    store.db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...args)
      .map((r) => (r as { detail: string }).detail)
      .join("; ");
  assert.match(
    plan(READY_QUERY, "big", "lambda", Date.now()),
    /SEARCH jobs USING (COVERING )?INDEX jobs_ready/,
  );
  assert.doesNotMatch(plan(READY_QUERY, "big", "lambda", Date.now()), /TEMP B-TREE/);
  const listSql = "SELECT id FROM jobs WHERE fn = ? AND seq < ? ORDER BY seq DESC LIMIT 50";
  assert.match(plan(listSql, "big", 1e9), /SEARCH jobs USING (COVERING )?INDEX jobs_fn/);

  const page = store.list("big", { limit: 10 });
  assert.equal(page.jobs.length, 10);
  assert.deepEqual(page.jobs[0]!.trigger, obj(`in/${N - 1}.txt`));

  // A function with 20 jobs, enqueued after the 100,000, finishes while `big` has run about as many.
  const small: string[] = [];
  for (let i = 0; i < 20; i++) small.push(store.enqueue({ function: "small", trigger: obj(`s${i}`) }).id);
  let bigRuns = 0;
  const scheduler = new Scheduler({
    store,
    concurrency: 2,
    handler: async (job) => {
      if (job.function === "big") bigRuns++;
      return { status: "succeeded" };
    },
  });
  scheduler.start();
  for (const id of small) assert.equal((await scheduler.wait(id)).status, "succeeded");
  await scheduler.stop();
  assert.ok(bigRuns <= 20 + 2, `big ran ${bigRuns} jobs meanwhile`);
  assert.equal(store.counts().big!.queued + store.counts().big!.succeeded, N);

  // Deleting the finished ones among them takes their history along and leaves the queue alone.
  const ran = store.counts().big!.succeeded;
  assert.equal(store.deleteJobs("big", "succeeded"), ran);
  assert.equal(store.counts().big!.queued, N - ran);
  assert.deepEqual(store.db.prepare("SELECT count(*) AS n FROM attempts").get(), { n: 20 });
});
