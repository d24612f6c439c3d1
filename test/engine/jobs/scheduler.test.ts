// The scheduler with stub handlers: limits (checked by the most handlers ever running at once, never by
// time), fairness (by dispatch order), stages and logs, retries, cancel, delegation, stop.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type JobContext,
  type JobHandler,
  type JobOutcome,
  JobStore,
  type JobWithPayload,
  QueueOwnedError,
  Scheduler,
  type SchedulerOptions,
} from "../../../src/engine/jobs/index.js";
import { deferred, obj, openStore, turns } from "./helpers.js";

const fast = { baseMs: 1, factor: 2, maxMs: 4 };

function scheduler(store: JobStore, handler: JobHandler, opts: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler({ store, handler, backoff: fast, pollMs: 20, logFlushMs: 5, ...opts });
}

/** A handler that records how many jobs (in total, per function, per queue) run at once. */
function meter(
  work: (job: JobWithPayload) => Promise<void> = () => turns(2 + Math.floor(Math.random() * 4)),
) {
  const now = { total: 0, fn: new Map<string, number>(), queue: new Map<string, number>() };
  const max = { total: 0, fn: new Map<string, number>(), queue: new Map<string, number>() };
  const bump = (m: Map<string, number>, mm: Map<string, number>, k: string, d: number) => {
    const v = (m.get(k) ?? 0) + d;
    m.set(k, v);
    mm.set(k, Math.max(mm.get(k) ?? 0, v));
  };
  const order: string[] = [];
  const handler: JobHandler = async (job) => {
    order.push(job.function);
    now.total++;
    max.total = Math.max(max.total, now.total);
    bump(now.fn, max.fn, job.function, 1);
    bump(now.queue, max.queue, job.queue, 1);
    try {
      await work(job);
    } finally {
      now.total--;
      bump(now.fn, max.fn, job.function, -1);
      bump(now.queue, max.queue, job.queue, -1);
    }
    return { status: "succeeded" };
  };
  return { handler, max, order };
}

async function drain(s: Scheduler, store: JobStore, ids: string[]) {
  for (const id of ids) await s.wait(id);
  assert.equal(store.counts().f?.queued ?? 0, 0);
}

test("the global limit is reached and never exceeded", async () => {
  const store = openStore();
  const m = meter();
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push(store.enqueue({ function: `f${i % 4}`, trigger: obj(`k${i}`) }).id);
  const s = scheduler(store, m.handler, { concurrency: 3 });
  s.start();
  await drain(s, store, ids);
  await s.stop();
  assert.equal(m.max.total, 3);
  assert.equal(m.order.length, 60);
});

test("a per-function limit holds while other functions use the rest", async () => {
  const store = openStore();
  const m = meter();
  const ids: string[] = [];
  for (let i = 0; i < 40; i++)
    ids.push(store.enqueue({ function: i % 2 ? "a" : "b", trigger: obj(`k${i}`) }).id);
  const s = scheduler(store, m.handler, {
    concurrency: 4,
    policy: (fn) => (fn === "a" ? { concurrency: 1 } : {}),
  });
  s.start();
  await drain(s, store, ids);
  await s.stop();
  assert.equal(m.max.fn.get("a"), 1);
  // b uses the rest: 3 beside a's one, or all 4 in a moment when the ring gave a's freed slot to b
  // (a's next job takes the slot b frees next; seen once on a loaded CI rehearsal)
  assert.ok((m.max.fn.get("b") ?? 0) >= 3, `b ran at most ${m.max.fn.get("b")} at once`);
  assert.equal(m.max.total, 4);
});

test("lambda and batch queues have their own limits under the global one", async () => {
  const store = openStore();
  const m = meter();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    ids.push(store.enqueue({ function: "f", trigger: obj(`l${i}`), queue: "lambda" }).id);
    ids.push(store.enqueue({ function: "f", trigger: obj(`b${i}`), queue: "batch" }).id);
  }
  const s = scheduler(store, m.handler, {
    concurrency: 4,
    queues: { lambda: { concurrency: 2 }, batch: { concurrency: 1 } },
  });
  s.start();
  await drain(s, store, ids);
  await s.stop();
  assert.equal(m.max.queue.get("lambda"), 2);
  assert.equal(m.max.queue.get("batch"), 1);
  assert.equal(m.max.total, 3);
});

test("fair across functions: a function with one job does not wait behind one with hundreds", async () => {
  const store = openStore();
  const m = meter(() => turns(1));
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) ids.push(store.enqueue({ function: "big", trigger: obj(`k${i}`) }).id);
  ids.push(store.enqueue({ function: "small", trigger: obj("s") }).id);
  for (let i = 0; i < 3; i++) ids.push(store.enqueue({ function: "mid", trigger: obj(`m${i}`) }).id);
  const s = scheduler(store, m.handler, { concurrency: 1 });
  s.start();
  // Enqueued while running: joins the rotation at once.
  await turns(5);
  ids.push(store.enqueue({ function: "late", trigger: obj("l") }).id);
  for (const id of ids) await s.wait(id);
  await s.stop();
  assert.ok(m.order.indexOf("small") < 3, `small ran at ${m.order.indexOf("small")}`);
  assert.ok(m.order.lastIndexOf("mid") < 3 * 3, `mid ran last at ${m.order.lastIndexOf("mid")}`);
  assert.ok(m.order.indexOf("late") < 20, `late ran at ${m.order.indexOf("late")}`);
  // While several functions have jobs, none runs twice in a row.
  const firstSix = m.order.slice(0, 6).join(",");
  assert.ok(!/(\w+),\1(,|$)/.test(m.order.slice(0, 6).join(",")), firstSix);
});

test("stages, log, outcome and the Lambda lines are recorded; wait() returns the final record", async () => {
  const store = openStore();
  const seen: { job?: JobWithPayload; ctx?: JobContext } = {};
  const handler: JobHandler = async (job, ctx) => {
    seen.job = job;
    seen.ctx = ctx;
    ctx.stage("image_ready");
    ctx.log("supervisor: staging in\n");
    ctx.stage("stage_in");
    ctx.stage("container_start");
    ctx.log("script says hi\n");
    ctx.stage("script_end");
    ctx.stage("stage_out");
    return { status: "succeeded", exitCode: 0, outputKeys: ["out/a.txt"], maxMemoryMB: 17.2 };
  };
  const { id } = store.enqueue({ function: "f", trigger: obj("a.txt"), payload: { Records: [] } });
  const s = scheduler(store, handler);
  s.start();
  const job = await s.wait(id);
  await s.stop();
  assert.deepEqual(seen.job?.payload, { Records: [] });
  assert.equal(seen.ctx?.attempt, 1);
  assert.equal(job.status, "succeeded");
  assert.equal(job.reason, "ok");
  assert.equal(job.exitCode, 0);
  assert.deepEqual(job.outputKeys, ["out/a.txt"]);
  const t = job.stages;
  const order = [
    t.queued,
    job.startedAt,
    t.image_ready,
    t.stage_in,
    t.container_start,
    t.script_end,
    t.stage_out,
    t.done,
  ];
  for (const v of order) assert.equal(typeof v, "number");
  for (let i = 1; i < order.length; i++) assert.ok(order[i]! >= order[i - 1]!, `stage ${i} in order`);
  assert.equal(store.log(id), "supervisor: staging in\nscript says hi\n");
  assert.deepEqual(Object.keys(store.attempts(id)[0]!.stages), [
    "queued",
    "image_ready",
    "stage_in",
    "container_start",
    "script_end",
    "stage_out",
    "done",
  ]);
});

test("a job's first stage is written at once with its log; later stages wait for one write at its end", async () => {
  const store = openStore();
  const seen: Record<string, unknown> = {};
  const handler: JobHandler = async (job, ctx) => {
    ctx.log("before the first stage\n");
    ctx.stage("image_ready");
    const first = store.get(job.id)!;
    seen.first = [typeof first.stages.image_ready, store.log(job.id)];
    ctx.stage("stage_in");
    ctx.log("between\n");
    ctx.stage("container_start");
    // nothing more was written: the stages and the log text wait in memory (no write per stage)
    const later = store.get(job.id)!;
    seen.later = [later.stages.stage_in, later.stages.container_start, store.log(job.id)];
    return { status: "succeeded" };
  };
  const { id } = store.enqueue({ function: "f", trigger: obj("a.txt") });
  const s = scheduler(store, handler);
  s.start();
  const job = await s.wait(id);
  await s.stop();
  assert.deepEqual(seen.first, ["number", "before the first stage\n"]);
  assert.deepEqual(seen.later, [null, null, "before the first stage\n"]);
  // all of it written by the job's end, before its outcome
  assert.equal(typeof job.stages.stage_in, "number");
  assert.equal(typeof job.stages.container_start, "number");
  assert.equal(store.log(id), "before the first stage\nbetween\n");
  assert.deepEqual(Object.keys(store.attempts(id)[0]!.stages), [
    "queued",
    "image_ready",
    "stage_in",
    "container_start",
    "done",
  ]);
});

test("two writes per short job: its first stage; its progress, outcome and the next claim together", async () => {
  const store = openStore();
  const handler: JobHandler = async (_job, ctx) => {
    ctx.stage("image_ready");
    ctx.log("hello\n");
    ctx.stage("stage_out");
    return { status: "succeeded" };
  };
  const ids = store
    .enqueueMany(Array.from({ length: 8 }, (_, i) => ({ function: "f", trigger: obj(`k${i}`) })))
    .map((r) => r.id);
  const before = store.writeTransactions;
  const s = scheduler(store, handler, { concurrency: 1, logFlushMs: 60_000 });
  s.start();
  for (const id of ids) assert.equal((await s.wait(id)).status, "succeeded");
  await s.stop();
  // the first claim; per job its first stage (written at once) and its end with the next claim (the
  // last one finds none)
  assert.equal(store.writeTransactions - before, 2 * ids.length + 1);
  for (const id of ids) assert.equal(store.log(id), "hello\n");
});

test("async failures retry with backoff then dead-letter; redrive runs them again", async () => {
  const store = openStore();
  let calls = 0;
  let healthy = false;
  const handler: JobHandler = async (_job, ctx) => {
    calls++;
    ctx.log(`attempt ${ctx.attempt}\n`);
    return healthy ? { status: "succeeded" } : { status: "failed", reason: "script-error", exitCode: 1 };
  };
  const { id } = store.enqueue({ function: "f", trigger: obj("k") });
  const sync = store.enqueue({ function: "f", trigger: { type: "run" }, invocation: "sync" });
  const s = scheduler(store, handler, { backoff: { baseMs: 20, factor: 2, maxMs: 1000 } });
  s.start();
  const dead = await s.wait(id);
  assert.equal((await s.wait(sync.id)).status, "failed");
  assert.equal(dead.status, "dead");
  assert.equal(dead.attempts, 3);
  assert.equal(calls, 4);
  const history = store.attempts(id);
  // The next attempt never starts before the backoff has passed (20 ms, then 40 ms).
  assert.ok(history[1]!.startedAt - history[0]!.endedAt! >= 20);
  assert.ok(history[2]!.startedAt - history[1]!.endedAt! >= 40);
  healthy = true;
  assert.ok(store.redrive(id));
  const ok = await s.wait(id);
  await s.stop();
  assert.equal(ok.status, "succeeded");
  assert.equal(ok.cycle, 2);
  assert.equal(store.attempts(id).length, 4);
  assert.equal(store.log(id), "attempt 1\nattempt 2\nattempt 3\nattempt 1\n");
});

test("per-function retries; a throwing handler is an internal error", async () => {
  const store = openStore();
  const handler: JobHandler = async (job) => {
    if (job.function === "throws") throw new Error("boom");
    return { status: "failed" };
  };
  const none = store.enqueue({ function: "once", trigger: obj("k") });
  const thrower = store.enqueue({ function: "throws", trigger: obj("k") });
  const s = scheduler(store, handler, { policy: (fn) => (fn === "once" ? { retries: 0 } : { retries: 1 }) });
  s.start();
  const a = await s.wait(none.id);
  const b = await s.wait(thrower.id);
  await s.stop();
  assert.equal(a.status, "dead");
  assert.equal(a.attempts, 1);
  assert.equal(b.status, "dead");
  assert.equal(b.attempts, 2);
  assert.equal(b.reason, "internal-error");
  assert.equal(b.error, "boom");
});

test("cancel aborts a running job's signal and fails it as cancelled, without retry", async () => {
  const store = openStore();
  const started = deferred();
  const handler: JobHandler = (_job, ctx) =>
    new Promise<JobOutcome>((resolve) => {
      started.resolve();
      ctx.signal.addEventListener("abort", () => resolve({ status: "failed", reason: "script-error" }));
    });
  const { id } = store.enqueue({ function: "f", trigger: obj("k") });
  const queued = store.enqueue({ function: "g", trigger: obj("k") });
  const s = scheduler(store, handler, { concurrency: 1, policy: () => ({ retries: 5 }) });
  s.start();
  await started.promise;
  assert.ok(s.cancel(queued.id));
  assert.ok(s.cancel(id));
  const job = await s.wait(id);
  assert.equal((await s.wait(queued.id)).reason, "cancelled");
  await s.stop();
  assert.equal(job.status, "failed");
  assert.equal(job.reason, "cancelled");
  assert.equal(job.attempts, 1);
  assert.equal(s.cancel(id), false);
});

test("lambda-batch delegation: the timed-out job links to a batch job running the same event", async () => {
  const store = openStore();
  const handler: JobHandler = async (job) => {
    if (job.queue === "lambda") return { status: "failed", reason: "timeout", delegate: { queue: "batch" } };
    return { status: "succeeded", outputKeys: [`out/${(job.payload as { n: number }).n}`] };
  };
  const { id } = store.enqueue({ function: "f", trigger: obj("k"), payload: { n: 7 } });
  const s = scheduler(store, handler);
  s.start();
  const parent = await s.wait(id);
  assert.equal(parent.status, "failed");
  assert.equal(parent.reason, "timeout");
  assert.equal(parent.attempts, 1, "a delegated job is not retried");
  assert.ok(parent.delegatedTo);
  const child = await s.wait(parent.delegatedTo);
  await s.stop();
  assert.equal(child.status, "succeeded");
  assert.equal(child.queue, "batch");
  assert.equal(child.parentId, id);
  assert.deepEqual(child.trigger, parent.trigger);
  assert.deepEqual(child.outputKeys, ["out/7"]);
  assert.deepEqual(
    store.children(id).map((j) => j.id),
    [child.id],
  );
});

test("stop({ abort }) puts running jobs back in the queue; the next scheduler finishes them", async () => {
  const store = openStore();
  const started = deferred();
  let aborted = false;
  const hang: JobHandler = (_job, ctx) =>
    new Promise<JobOutcome>((resolve) => {
      started.resolve();
      ctx.signal.addEventListener("abort", () => {
        aborted = true;
        resolve({ status: "failed" });
      });
    });
  const { id } = store.enqueue({ function: "f", trigger: obj("k") });
  const s1 = scheduler(store, hang);
  s1.start();
  await started.promise;
  await s1.stop({ abort: true });
  assert.ok(aborted);
  const mid = store.get(id)!;
  assert.equal(mid.status, "queued");
  assert.equal(mid.reason, "interrupted");
  assert.equal(mid.attempts, 1);
  const s2 = scheduler(store, async () => ({ status: "succeeded" }));
  s2.start();
  const done = await s2.wait(id);
  await s2.stop();
  assert.equal(done.status, "succeeded");
  assert.deepEqual(
    store.attempts(id).map((a) => a.reason),
    ["interrupted", "ok"],
  );
});

test("bad limits are refused", () => {
  const store = openStore();
  const h: JobHandler = async () => ({ status: "succeeded" });
  assert.throws(() => new Scheduler({ store, handler: h, concurrency: 0 }), /positive integer/);
  assert.throws(
    () => new Scheduler({ store, handler: h, queues: { batch: { concurrency: 1.5 } } }),
    /positive/,
  );
});

test("the retention sweep runs at start with each function's days; a failing listener harms nothing", async () => {
  let now = Date.UTC(2026, 0, 1);
  const store = openStore({ now: () => now });
  const old = store.enqueue({ function: "short", trigger: obj("k") });
  const kept = store.enqueue({ function: "long", trigger: obj("k") });
  const s1 = scheduler(store, async () => ({ status: "succeeded" }));
  s1.on("finish", () => {
    throw new Error("listener bug");
  });
  s1.start();
  await s1.wait(old.id);
  await s1.wait(kept.id);
  await s1.stop();
  now += 3 * 86_400_000;
  const s2 = scheduler(store, async () => ({ status: "succeeded" }), {
    policy: (fn) => ({ retentionDays: fn === "short" ? 2 : 30 }),
  });
  s2.start();
  await s2.stop();
  assert.equal(store.get(old.id), undefined);
  assert.equal(store.get(kept.id)?.status, "succeeded");
});

test("one scheduler per queue: a second is refused until the first stops", async () => {
  const store = openStore();
  const h: JobHandler = async () => ({ status: "succeeded" });
  const a = scheduler(store, h);
  a.start();
  const other = JobStore.open({ dataDir: store.db.name.replace(/\/jobs\.db$/, "") });
  try {
    assert.throws(() => scheduler(other, h).start(), QueueOwnedError);
    await a.stop();
    const b = scheduler(other, h);
    b.start();
    await b.stop();
  } finally {
    other.close();
  }
});
