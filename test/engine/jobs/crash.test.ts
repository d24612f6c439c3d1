// kill -9 of a real process using the job system: an enqueue that returned is on disk, jobs left
// running go back to the queue (attempt counted, log and stages kept) and finish after a restart.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { JobStore, Scheduler } from "../../../src/engine/jobs/index.js";
import { obj, tempDir } from "./helpers.js";

const child = new URL("./fixtures/child.js", import.meta.url).pathname;

/** Starts the child and calls `onLine` for each stdout line until it returns true; then kills it -9. */
async function runUntil(mode: string, dir: string, onLine: (line: string) => boolean): Promise<void> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const p: ChildProcess = spawn(process.execPath, [child, mode, dir], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(p, "exit");
  try {
    for await (const line of createInterface({ input: p.stdout! })) {
      if (onLine(line)) break;
    }
  } finally {
    p.kill("SIGKILL");
    const [code, signal] = await exited;
    assert.equal(signal, "SIGKILL", `the child was killed, not exited (${code})`);
  }
}

test("an enqueue that returned survives kill -9 of the process", async () => {
  const dir = tempDir();
  const printed: string[] = [];
  await runUntil("enqueue", dir, (line) => {
    printed.push(line.split(" ")[1]!);
    return printed.length >= 300;
  });
  const store = JobStore.open({ dataDir: dir });
  try {
    assert.equal(store.db.pragma("integrity_check", { simple: true }), "ok");
    for (const id of printed) assert.equal(store.get(id)?.status, "queued", `job ${id} is on disk`);
    const total = Object.values(store.counts()).reduce((n, c) => n + c.queued, 0);
    assert.ok(total >= printed.length);
  } finally {
    store.close();
  }
});

test("jobs running when the process is killed -9 are requeued and finish after a restart", async () => {
  const dir = tempDir();
  const seed = JobStore.open({ dataDir: dir });
  const quick = [0, 1, 2, 3].map(
    (i) => seed.enqueue({ function: "f", trigger: obj(`q${i}`), payload: {} }).id,
  );
  const hung = [0, 1].map(
    (i) => seed.enqueue({ function: "f", trigger: obj(`h${i}`), payload: { hang: true } }).id,
  );
  seed.close();

  const running = new Set<string>();
  await runUntil("run", dir, (line) => {
    const [what, id] = line.split(" ");
    if (what === "running") running.add(id!);
    return running.size === 2;
  });
  assert.deepEqual([...running].sort(), [...hung].sort());

  const store = JobStore.open({ dataDir: dir });
  try {
    for (const id of quick) assert.equal(store.get(id)?.status, "succeeded");
    for (const id of hung) {
      const j = store.get(id)!;
      assert.equal(j.status, "running", "left running by the dead process");
      assert.equal(typeof j.stages.image_ready, "number");
    }
    const scheduler = new Scheduler({ store, handler: async () => ({ status: "succeeded" }) });
    assert.deepEqual(scheduler.start(), { requeued: 2, dead: 0 });
    for (const id of hung) {
      const j = await scheduler.wait(id);
      assert.equal(j.status, "succeeded");
      assert.equal(j.attempts, 2, "the killed attempt counts");
      assert.deepEqual(
        store.attempts(id).map((a) => a.reason),
        ["interrupted", "ok"],
      );
      assert.equal(store.attempts(id)[0]!.stages.image_ready !== undefined, true);
      assert.equal(store.log(id), "started\n", "the log written before the kill is kept");
    }
    await scheduler.stop();
    assert.deepEqual(store.counts().f, { queued: 0, running: 0, succeeded: 6, failed: 0, dead: 0 });
  } finally {
    store.close();
  }
});

test("a job that keeps killing the engine ends dead once its attempts are used up", () => {
  const dir = tempDir();
  const store = JobStore.open({ dataDir: dir });
  try {
    const { id } = store.enqueue({ function: "f", trigger: obj("k") });
    // Three starts that each die mid-job (retries = 2: three attempts in a cycle).
    const results = [];
    for (let i = 0; i < 3; i++) {
      assert.ok(store.claimNext("f", "lambda"));
      results.push(store.recover(() => 3));
    }
    assert.deepEqual(results, [
      { requeued: 1, dead: 0 },
      { requeued: 1, dead: 0 },
      { requeued: 0, dead: 1 },
    ]);
    assert.equal(store.get(id)!.status, "dead");
    assert.equal(store.get(id)!.reason, "interrupted");
    assert.ok(store.redrive(id), "and can be redriven");
  } finally {
    store.close();
  }
});
