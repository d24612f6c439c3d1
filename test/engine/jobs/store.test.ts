// The job store on its own: schema and migrations, enqueue (payloads, idempotency, outer transactions),
// queries, log cap, retention, dead letters and redrive. Real SQLite files in temp dirs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import {
  DEFAULT_BACKOFF,
  DuplicateJobError,
  JobStore,
  MIGRATIONS,
  SchemaTooNewError,
  type Trigger,
} from "../../../src/engine/jobs/index.js";
import { migrate } from "../../../src/engine/jobs/schema.js";
import { manualClock, obj, openStore, tempDir } from "./helpers.js";

const policy = { retries: 2, backoff: DEFAULT_BACKOFF };

test("a new database gets the latest schema in WAL mode; reopening keeps the jobs", () => {
  const dir = tempDir();
  const a = JobStore.open({ dataDir: dir });
  const { id } = a.enqueue({ function: "f", trigger: obj("k") });
  assert.equal(a.db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  assert.equal(a.db.pragma("journal_mode", { simple: true }), "wal");
  a.close();
  const b = JobStore.open({ dataDir: dir });
  assert.equal(b.get(id)?.status, "queued");
  b.close();
});

test("a database from a newer scar is refused, not misread", () => {
  const dir = tempDir();
  const raw = new Database(join(dir, "jobs.db"));
  raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  raw.close();
  assert.throws(() => JobStore.open({ dataDir: dir }), SchemaTooNewError);
});

test("migrations run in order, once, and keep existing rows", () => {
  const dir = tempDir();
  const db = new Database(join(dir, "m.db"));
  try {
    assert.equal(migrate(db, MIGRATIONS.slice(0, 1)), 0, "a v1 file, as the first release wrote it");
    db.prepare(
      "INSERT INTO jobs (id, fn, queue, invocation, trig, payload_kind, status, not_before, t_queued) VALUES ('x', 'f', 'lambda', 'async', '{}', 'none', 'queued', 0, 0)",
    ).run();
    assert.equal(migrate(db), 1, "upgraded to the current schema");
    const v2 = [...MIGRATIONS, (d: Database.Database) => d.exec("ALTER TABLE jobs ADD COLUMN extra TEXT")];
    assert.equal(migrate(db, v2), MIGRATIONS.length);
    assert.equal(migrate(db, v2), MIGRATIONS.length + 1, "a second open applies nothing");
    assert.deepEqual(db.prepare("SELECT id, extra FROM jobs").all(), [{ id: "x", extra: null }]);
  } finally {
    db.close();
  }
});

test("enqueue keeps trigger, payload (JSON or bytes), queue and defaults", () => {
  const s = openStore();
  const trigger: Trigger = { type: "object", bucket: "in", key: "a b.txt", size: 3, eTag: "e" };
  const a = s.enqueue({ function: "f", trigger, payload: { Records: [{ x: 1 }] } });
  const bytes = Buffer.from([0, 1, 2, 255]);
  const b = s.enqueue({
    id: "req-1",
    function: "f",
    trigger: { type: "http", path: "/run/f" },
    payload: bytes,
  });
  const c = s.enqueue({ function: "g", trigger: { type: "run" }, queue: "batch", invocation: "sync" });
  assert.equal(b.id, "req-1");
  assert.match(a.id, /^[0-9a-f-]{36}$/);
  const ja = s.getWithPayload(a.id)!;
  assert.deepEqual(ja.trigger, trigger);
  assert.deepEqual(ja.payload, { Records: [{ x: 1 }] });
  assert.equal(ja.status, "queued");
  assert.equal(ja.queue, "lambda");
  assert.equal(ja.invocation, "async");
  assert.equal(ja.attempts, 0);
  assert.equal(typeof ja.stages.queued, "number");
  assert.equal(ja.stages.done, null);
  assert.deepEqual(s.getWithPayload(b.id)!.payload, bytes);
  const jc = s.getWithPayload(c.id)!;
  assert.equal(jc.payload, undefined);
  assert.equal(jc.queue, "batch");
  assert.equal(jc.invocation, "sync");
});

test("a dedupe key makes enqueue idempotent (the store's hook delivers at least once)", () => {
  const s = openStore();
  const first = s.enqueue({ function: "f", trigger: obj("k"), dedupeKey: "store-event:7" });
  const again = s.enqueueMany([
    { function: "f", trigger: obj("k"), dedupeKey: "store-event:7" },
    { function: "f", trigger: obj("k2"), dedupeKey: "store-event:8" },
  ]);
  assert.deepEqual(again[0], { id: first.id, created: false });
  assert.equal(again[1]!.created, true);
  assert.equal(s.counts().f!.queued, 2);
});

test("enqueue inside a caller's transaction commits and rolls back with it", () => {
  const s = openStore({ durability: "power" });
  s.db.exec("CREATE TABLE other (x TEXT)");
  assert.throws(() =>
    s.transaction(() => {
      s.db.prepare("INSERT INTO other VALUES ('a')").run();
      s.enqueue({ id: "rolled-back", function: "f", trigger: obj("k") });
      throw new Error("hook failed");
    }),
  );
  assert.equal(s.get("rolled-back"), undefined);
  assert.deepEqual(s.db.prepare("SELECT count(*) AS n FROM other").get(), { n: 0 });
  s.transaction(() => {
    s.db.prepare("INSERT INTO other VALUES ('b')").run();
    s.enqueue({ id: "kept", function: "f", trigger: obj("k") });
  });
  assert.equal(s.get("kept")?.status, "queued");
  assert.deepEqual(s.db.prepare("SELECT x FROM other").all(), [{ x: "b" }]);
  // A plain better-sqlite3 transaction of the caller works too.
  assert.throws(() =>
    s.db.transaction(() => {
      s.enqueue({ id: "inner", function: "f", trigger: obj("k") });
      throw new Error("no");
    })(),
  );
  assert.equal(s.get("inner"), undefined);
});

/** Claims the next job of f and finishes it with the given outcome. */
function runOnce(s: JobStore, fn: string, status: "succeeded" | "failed", retries = 2) {
  const c = s.claimNext(fn, "lambda");
  assert.ok(c, `a job of ${fn} is due`);
  return { id: c.job.id, result: s.finish(c.seq, { status }, { ...policy, retries }) };
}

test("list pages newest first, filters by status; counts per function", () => {
  const s = openStore();
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(s.enqueue({ function: "f", trigger: obj(`k${i}`) }).id);
  s.enqueue({ function: "g", trigger: obj("x") });
  runOnce(s, "f", "succeeded"); // ids[0]
  runOnce(s, "f", "succeeded"); // ids[1]
  s.claimNext("f", "lambda"); // ids[2] running
  const p1 = s.list("f", { limit: 3 });
  assert.deepEqual(
    p1.jobs.map((j) => j.id),
    [ids[6], ids[5], ids[4]],
  );
  const p2 = s.list("f", { limit: 3, cursor: p1.next! });
  assert.deepEqual(
    p2.jobs.map((j) => j.id),
    [ids[3], ids[2], ids[1]],
  );
  const p3 = s.list("f", { limit: 3, cursor: p2.next! });
  assert.deepEqual(
    p3.jobs.map((j) => j.id),
    [ids[0]],
  );
  assert.equal(p3.next, undefined);
  assert.deepEqual(
    s.list("f", { status: "succeeded" }).jobs.map((j) => j.id),
    [ids[1], ids[0]],
  );
  assert.deepEqual(s.counts(), {
    f: { queued: 4, running: 1, succeeded: 2, failed: 0, dead: 0 },
    g: { queued: 1, running: 0, succeeded: 0, failed: 0, dead: 0 },
  });
  assert.deepEqual(Object.keys(s.counts("g")), ["g"]);
});

test("delete succeeded jobs, then all jobs of a function but the running one", () => {
  const s = openStore();
  for (let i = 0; i < 5; i++) s.enqueue({ function: "f", trigger: obj(`k${i}`) });
  const keep = s.enqueue({ function: "g", trigger: obj("x") });
  runOnce(s, "f", "succeeded");
  runOnce(s, "f", "succeeded");
  const running = s.claimNext("f", "lambda")!;
  s.appendLogs([[running.seq, "hello"]]);
  assert.equal(s.deleteJobs("f", "succeeded"), 2);
  assert.equal(s.deleteJobs("f", "all"), 2);
  assert.deepEqual(
    s.list("f").jobs.map((j) => j.id),
    [running.job.id],
  );
  assert.equal(s.get(keep.id)?.status, "queued");
  assert.equal(s.deleteJob(running.job.id), false, "a running job is not deleted");
});

test("a capped log is cut on line ends: whole lines either side of the marker, the last line kept", () => {
  const s = openStore({ logLimit: 400 }); // 100 from the start, 300 from the end
  const { id } = s.enqueue({ function: "f", trigger: obj("k") });
  const c = s.claimNext("f", "lambda")!;
  let all = "";
  for (let i = 0; i < 200; i++) all += `output line ${String(i).padStart(4, "0")} of the job\n`;
  all += "ERROR: convert: no space left on device writing out.png\n";
  // Appended in flushes that end anywhere in a line, as the scheduler's timer cuts them.
  for (let at = 0; at < all.length; at += 37) s.appendLogs([[c.seq, all.slice(at, at + 37)]]);
  // And one append larger than the whole end, also ending in the error line.
  const log = s.log(id)!;
  const [start, rest] = log.split(/\[scar: log truncated, \d+ characters omitted\]\n/);
  assert.ok(rest !== undefined, log);
  const lines = new Set(all.split("\n"));
  for (const l of `${start}${rest}`.split("\n").slice(0, -1)) assert.ok(lines.has(l), `a whole line: '${l}'`);
  assert.ok(start!.startsWith("output line 0000 of the job\n"));
  assert.ok(rest!.endsWith("ERROR: convert: no space left on device writing out.png\n"));
  const dropped = all.length - start!.length - rest!.length;
  assert.match(log, new RegExp(`log truncated, ${dropped} characters omitted`));
  assert.equal(s.get(id)!.logDropped, dropped);

  const big = s.enqueue({ function: "f", trigger: obj("k") });
  const c2 = s.claimNext("f", "lambda")!;
  s.appendLogs([[c2.seq, all]]);
  const whole = s.log(big.id)!;
  const [start2, rest2] = whole.split(/\[scar: log truncated, \d+ characters omitted\]\n/);
  assert.ok(start2!.endsWith("\n") && rest2!.startsWith("output line "), whole);
  assert.ok(rest2!.endsWith("writing out.png\n"));
});

test("the log is appended in chunks and capped: start and end kept, a marker in between", () => {
  const s = openStore({ logLimit: 100 }); // 25 from the start, 75 from the end
  const { id } = s.enqueue({ function: "f", trigger: obj("k") });
  const c = s.claimNext("f", "lambda")!;
  let all = "";
  for (let i = 0; i < 50; i++) {
    const line = `line ${i}\n`;
    all += line;
    s.appendLogs([[c.seq, line]]);
  }
  const log = s.log(id)!;
  // Cut on line ends: the start is lines 0-2 (21 of its 25 characters), the end lines 41-49 (72 of 75).
  const head = all.slice(0, all.indexOf("line 3\n"));
  const end = all.slice(all.indexOf("line 41\n"));
  const dropped = all.length - head.length - end.length;
  assert.equal(s.get(id)!.logDropped, dropped);
  assert.equal(log, `${head}[scar: log truncated, ${dropped} characters omitted]\n${end}`);
  // One append bigger than the whole cap keeps only its end.
  s.appendLogs([[c.seq, "x".repeat(1000)]]);
  assert.ok(s.log(id)!.endsWith("x".repeat(75)));
  assert.ok(s.log(id)!.startsWith(head));
  // A small log is kept whole.
  const small = s.enqueue({ function: "f", trigger: obj("k") });
  const c2 = s.claimNext("f", "lambda")!;
  s.appendLogs([[c2.seq, "a\n"]]);
  s.appendLogs([[c2.seq, "b\n"]]);
  assert.equal(s.log(small.id), "a\nb\n");
  assert.equal(s.log("missing"), undefined);
});

test("failed async jobs back off, then go dead; redrive starts a new cycle keeping the history", () => {
  const clock = manualClock();
  const s = openStore({ now: clock.now });
  const { id } = s.enqueue({ function: "f", trigger: obj("k") });
  const backoff = { baseMs: 1000, factor: 2, maxMs: 60_000 };
  const fail = () => {
    const c = s.claimNext("f", "lambda");
    return (
      c && s.finish(c.seq, { status: "failed", reason: "script-error", exitCode: 3 }, { retries: 2, backoff })
    );
  };
  assert.equal(fail()?.status, "queued");
  assert.equal(s.get(id)!.notBefore, clock.now() + 1000);
  assert.equal(s.claimNext("f", "lambda"), undefined, "not due during the backoff");
  clock.advance(1000);
  assert.equal(fail()?.status, "queued");
  assert.equal(s.get(id)!.notBefore, clock.now() + 2000);
  clock.advance(2000);
  assert.equal(fail()?.status, "dead");
  const dead = s.get(id)!;
  assert.equal(dead.reason, "script-error");
  assert.equal(dead.exitCode, 3);
  assert.equal(dead.attempts, 3);
  assert.deepEqual(
    s.listDead().jobs.map((j) => j.id),
    [id],
  );
  assert.deepEqual(
    s.listDead("f").jobs.map((j) => j.id),
    [id],
  );
  assert.ok(s.redrive(id));
  assert.equal(s.redrive(id), false, "only a dead job is redriven");
  const again = s.get(id)!;
  assert.equal(again.status, "queued");
  assert.equal(again.cycle, 2);
  assert.equal(again.cycleAttempts, 0);
  const c = s.claimNext("f", "lambda")!;
  s.finish(c.seq, { status: "succeeded", outputKeys: ["out/k"] }, { retries: 2, backoff });
  const ok = s.get(id)!;
  assert.equal(ok.status, "succeeded");
  assert.equal(ok.reason, "ok");
  assert.deepEqual(ok.outputKeys, ["out/k"]);
  assert.equal(ok.attempts, 4);
  const history = s.attempts(id);
  assert.deepEqual(
    history.map((a) => [a.n, a.cycle, a.status, a.reason]),
    [
      [1, 1, "failed", "script-error"],
      [2, 1, "failed", "script-error"],
      [3, 1, "failed", "script-error"],
      [4, 2, "succeeded", "ok"],
    ],
  );
});

test("sync failures are final; retry: false and zero retries dead-letter at once", () => {
  const s = openStore();
  const sync = s.enqueue({ function: "f", trigger: { type: "run" }, invocation: "sync" });
  assert.equal(runOnce(s, "f", "failed").result?.status, "failed");
  assert.equal(s.get(sync.id)!.status, "failed");
  const noRetry = s.enqueue({ function: "f", trigger: obj("k") });
  const c = s.claimNext("f", "lambda")!;
  assert.equal(s.finish(c.seq, { status: "failed", retry: false }, policy)?.status, "dead");
  assert.equal(s.get(noRetry.id)!.status, "dead");
  s.enqueue({ function: "f", trigger: obj("k") });
  assert.equal(runOnce(s, "f", "failed", 0).result?.status, "dead");
});

test("retention deletes finished jobs older than their function's days, with logs and history", () => {
  const clock = manualClock();
  const s = openStore({ now: clock.now });
  const old = s.enqueue({ function: "f", trigger: obj("old") });
  const oldG = s.enqueue({ function: "g", trigger: obj("old") });
  const c = s.claimNext("f", "lambda")!;
  s.appendLogs([[c.seq, "old log"]]);
  s.finish(c.seq, { status: "succeeded" }, policy);
  runOnce(s, "g", "succeeded");
  const waiting = s.enqueue({ function: "f", trigger: obj("still queued") });
  clock.advance(10 * 86_400_000);
  const recent = s.enqueue({ function: "f", trigger: obj("recent") });
  runOnce(s, "f", "succeeded"); // `waiting` runs now, 10 days later: its done time is recent
  clock.advance(86_400_000);
  const days = (fn: string) => (fn === "f" ? 5 : 30);
  assert.equal(s.sweep(days), 1);
  assert.equal(s.get(old.id), undefined);
  assert.equal(s.get(oldG.id)?.status, "succeeded", "g keeps 30 days");
  assert.equal(s.get(waiting.id)?.status, "succeeded");
  assert.equal(s.get(recent.id)?.status, "queued");
  assert.deepEqual(s.db.prepare("SELECT count(*) AS n FROM logs").get(), { n: 0 });
  assert.deepEqual(
    s.db.prepare("SELECT count(*) AS n FROM attempts WHERE job_seq NOT IN (SELECT seq FROM jobs)").get(),
    {
      n: 0,
    },
  );
});

test("cancelling a queued job fails it as cancelled", () => {
  const s = openStore();
  const { id } = s.enqueue({ function: "f", trigger: obj("k") });
  assert.ok(s.cancelQueued(id));
  assert.equal(s.get(id)!.status, "failed");
  assert.equal(s.get(id)!.reason, "cancelled");
  assert.equal(s.cancelQueued(id), false);
  assert.equal(s.claimNext("f", "lambda"), undefined);
});

test("an explicit request id already in use is refused clearly (a replay with its dedupe key is not)", () => {
  const s = openStore();
  s.enqueue({ id: "req-1", function: "f", trigger: obj("k"), dedupeKey: "e1" });
  assert.throws(() => s.enqueue({ id: "req-1", function: "g", trigger: obj("k") }), DuplicateJobError);
  assert.deepEqual(s.enqueue({ id: "req-1", function: "f", trigger: obj("k"), dedupeKey: "e1" }), {
    id: "req-1",
    created: false,
  });
});

test("redrive all dead letters of a function at once", () => {
  const s = openStore();
  for (let i = 0; i < 3; i++) s.enqueue({ function: "f", trigger: obj(`k${i}`) });
  s.enqueue({ function: "g", trigger: obj("k") });
  for (let i = 0; i < 3; i++) runOnce(s, "f", "failed", 0);
  runOnce(s, "g", "failed", 0);
  assert.equal(s.redriveAll("f"), 3);
  assert.equal(s.redriveAll("f"), 0);
  assert.deepEqual(s.counts(), {
    f: { queued: 3, running: 0, succeeded: 0, failed: 0, dead: 0 },
    g: { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 1 },
  });
  for (const j of s.list("f").jobs) assert.equal(j.cycle, 2);
});

test("list across every function; recent durations; a delegated child can be named", () => {
  const clock = manualClock();
  const s = openStore({ now: clock.now });
  const a = s.enqueue({ function: "f", trigger: obj("a") }).id;
  const b = s.enqueue({ function: "g", trigger: obj("b") }).id;
  const c = s.enqueue({ function: "f", trigger: obj("c") }).id;
  assert.deepEqual(
    s.list(undefined).jobs.map((j) => j.id),
    [c, b, a],
  );
  const p1 = s.list(undefined, { limit: 2 });
  assert.deepEqual(
    s.list(undefined, { cursor: p1.next! }).jobs.map((j) => j.id),
    [a],
  );
  const first = s.claimNext("f", "lambda")!;
  clock.advance(250);
  s.finish(first.seq, { status: "succeeded" }, policy);
  const second = s.claimNext("f", "lambda")!;
  clock.advance(1000);
  const r = s.finish(
    second.seq,
    { status: "failed", reason: "timeout", delegate: { id: "child-1", queue: "batch" } },
    policy,
  );
  assert.equal(r?.delegatedTo, "child-1");
  assert.equal(s.get("child-1")?.parentId, c);
  assert.deepEqual(
    s.children(c).map((j) => j.id),
    ["child-1"],
  );
  assert.deepEqual(s.recentDurations("f"), [1000, 250]);
  assert.deepEqual(s.recentDurations("f", 1), [1000]);
  assert.deepEqual(
    s.list(undefined, { status: ["succeeded", "failed"] }).jobs.map((j) => j.id),
    [c, a],
  );
});

test("each attempt records its execution environment: cold or warm, its id, the cold start's time", () => {
  const s = openStore();
  const { id } = s.enqueue({ function: "f", trigger: obj("k") });
  const cold = { id: "env-1", start: "cold" as const, startMs: 182.5 };
  let c = s.claimNext("f", "lambda")!;
  assert.equal(c.job.environment, null, "not known before the attempt ends");
  s.finish(
    c.seq,
    { status: "failed", environment: cold },
    { retries: 2, backoff: { baseMs: 0, factor: 1, maxMs: 0 } },
  );
  assert.deepEqual(s.get(id)!.environment, cold);
  c = s.claimNext("f", "lambda")!;
  assert.equal(s.get(id)!.environment, null, "a new attempt starts without the last one's");
  const warm = { id: "env-1", start: "warm" as const, startMs: 0 };
  s.finish(c.seq, { status: "succeeded", environment: warm }, policy);
  assert.deepEqual(s.get(id)!.environment, warm);
  assert.deepEqual(
    s.attempts(id).map((a) => a.environment),
    [cold, warm],
  );
  assert.deepEqual(
    s.list("f").jobs.map((j) => j.environment),
    [warm],
  );

  // A fresh container per invocation (isolation: invocation), or an attempt the engine's stop cut
  // short, has none.
  const fresh = s.enqueue({ function: "g", trigger: obj("k") }).id;
  s.finish(s.claimNext("g", "lambda")!.seq, { status: "succeeded" }, policy);
  assert.equal(s.get(fresh)!.environment, null);
  const cut = s.enqueue({ function: "g", trigger: obj("k2") }).id;
  s.requeueInterrupted(s.claimNext("g", "lambda")!.seq, 3);
  assert.deepEqual(
    s.attempts(cut).map((a) => [a.reason, a.environment]),
    [["interrupted", null]],
  );
});

test("cold and warm starts are counted per function; functions without any are absent", () => {
  const s = openStore();
  const run = (fn: string, start?: "cold" | "warm") => {
    s.enqueue({ function: fn, trigger: obj(`${fn}-${Math.random()}`) });
    const c = s.claimNext(fn, "lambda")!;
    s.finish(
      c.seq,
      { status: "succeeded", ...(start ? { environment: { id: "e", start, startMs: 1 } } : {}) },
      policy,
    );
  };
  run("a", "cold");
  run("a", "warm");
  run("a", "warm");
  run("b", "warm");
  run("c");
  assert.deepEqual(s.startCounts(), { a: { cold: 1, warm: 2 }, b: { cold: 0, warm: 1 } });
});

test("a v2 database gains the environment columns; its jobs have none; other start kinds are refused", () => {
  const dir = tempDir();
  const db = new Database(join(dir, "jobs.db"));
  migrate(db, MIGRATIONS.slice(0, 2));
  db.prepare(
    "INSERT INTO jobs (id, fn, queue, invocation, trig, payload_kind, status, not_before, t_queued, t_done) VALUES ('old', 'f', 'lambda', 'async', '{}', 'none', 'succeeded', 0, 0, 5)",
  ).run();
  db.close();
  const s = openStore({ dataDir: dir });
  assert.equal(s.db.pragma("user_version", { simple: true }), MIGRATIONS.length);
  assert.equal(s.get("old")!.environment, null);
  assert.throws(
    () => s.db.prepare("UPDATE jobs SET env_start = 'tepid' WHERE id = 'old'").run(),
    /CHECK constraint failed/,
  );
});
