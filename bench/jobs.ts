/**
 * The job system's throughput, side by side with its floor in the same run: bare better-sqlite3
 * doing the least the same work needs (same file settings: WAL; FULL sync for enqueue commits).
 *
 * - batched enqueue (a commit hook with many events): N jobs in transactions of 500;
 * - single enqueue (a hook with one event): one durable transaction per job;
 * - dispatch: N jobs through the scheduler with a no-op handler (claim, attempt row, outcome),
 *   against a bare loop that claims and finishes rows with one UPDATE each.
 *
 * Usage: node dist/bench/jobs.js [N]   (default 10,000)
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type EnqueueInput, JobStore, Scheduler } from "../src/engine/jobs/index.js";

const N = Number(process.argv[2] ?? 10_000);
const SINGLE = 300;
const BATCH = 500;

const input = (i: number): EnqueueInput => ({
  function: `f${i % 4}`,
  trigger: { type: "object", bucket: "in", key: `in/${i}.txt` },
  payload: {
    Records: [{ eventName: "s3:ObjectCreated:Put", s3: { object: { key: `in/${i}.txt`, size: 10 } } }],
  },
  dedupeKey: `store-event:${i}`,
});

function bare(dir: string, name: string) {
  const db = new Database(join(dir, name));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec(`CREATE TABLE q (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, fn TEXT, payload TEXT, status TEXT);
           CREATE INDEX q_ready ON q (fn, seq) WHERE status = 'queued';`);
  const ins = db.prepare("INSERT INTO q (id, fn, payload, status) VALUES (?, ?, ?, 'queued')");
  return {
    db,
    ins,
    add: (i: number) => ins.run(randomUUID(), `f${i % 4}`, JSON.stringify(input(i).payload)),
  };
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function row(label: string, n: number, oursMs: number, peerMs: number, unit = "jobs/s"): void {
  const o = (n / oursMs) * 1000;
  const p = (n / peerMs) * 1000;
  console.log(
    `  ${label.padEnd(26)} scar ${o.toFixed(0).padStart(7)} ${unit}   bare ${p.toFixed(0).padStart(7)} ${unit}   scar/bare ${(o / p).toFixed(2)}x`,
  );
}

const dir = mkdtempSync(join(tmpdir(), "scar-bench-jobs-"));
try {
  console.log(`jobs: ${N} jobs, batches of ${BATCH}, ${availableParallelism()} cores`);
  // Batched enqueue.
  {
    const b = bare(dir, "bare.db");
    let t = process.hrtime.bigint();
    for (let s = 0; s < N; s += BATCH)
      b.db.transaction(() => {
        for (let i = s; i < s + BATCH; i++) b.add(i);
      })();
    const peer = ms(t);
    b.db.close();
    const store = JobStore.open({ dataDir: dir, fileName: "batched.db" });
    t = process.hrtime.bigint();
    for (let s = 0; s < N; s += BATCH) {
      const batch: EnqueueInput[] = [];
      for (let i = s; i < s + BATCH; i++) batch.push(input(i));
      store.enqueueMany(batch);
    }
    const ours = ms(t);
    row("enqueue, batched", N, ours, peer);

    // Dispatch of those N jobs.
    const cores = availableParallelism();
    let done = 0;
    const finished = new Promise<void>((resolve) => {
      const scheduler = new Scheduler({
        store,
        concurrency: cores,
        handler: async () => {
          if (++done === N) setImmediate(() => void scheduler.stop().then(resolve));
          return { status: "succeeded" };
        },
      });
      t = process.hrtime.bigint();
      scheduler.start();
    });
    await finished;
    const oursDispatch = ms(t);
    store.close();

    const b2 = new Database(join(dir, "bare.db"));
    b2.pragma("synchronous = NORMAL");
    const next = b2.prepare("SELECT seq FROM q WHERE status = 'queued' AND fn = ? ORDER BY seq LIMIT 1");
    const claim = b2.prepare("UPDATE q SET status = 'running' WHERE seq = ?");
    const fin = b2.prepare("UPDATE q SET status = 'succeeded' WHERE seq = ?");
    t = process.hrtime.bigint();
    let k = 0;
    for (let left = N; left > 0; k++) {
      const r = next.get(`f${k % 4}`) as { seq: number } | undefined;
      if (!r) continue;
      claim.run(r.seq);
      await Promise.resolve();
      fin.run(r.seq);
      left--;
    }
    const peerDispatch = ms(t);
    b2.close();
    row("dispatch, no-op handler", N, oursDispatch, peerDispatch);
  }
  // One durable transaction per enqueue.
  {
    const b = bare(dir, "bare-single.db");
    let t = process.hrtime.bigint();
    for (let i = 0; i < SINGLE; i++) b.add(i);
    const peer = ms(t);
    b.db.close();
    const store = JobStore.open({ dataDir: dir, fileName: "single.db" });
    t = process.hrtime.bigint();
    for (let i = 0; i < SINGLE; i++) store.enqueue(input(i));
    const ours = ms(t);
    store.close();
    row("enqueue, one per commit", SINGLE, ours, peer);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
