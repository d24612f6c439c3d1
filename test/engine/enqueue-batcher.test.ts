// The commit hooks' enqueues, batched per turn of the event loop, against a real job database.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EnqueueBatcher } from "../../src/engine/enqueue-batcher.js";
import { DuplicateJobError, type EnqueueInput } from "../../src/engine/jobs/index.js";
import { obj, openStore } from "./jobs/helpers.js";

const input = (key: string, extra: Partial<EnqueueInput> = {}): EnqueueInput => ({
  function: "f",
  trigger: obj(key),
  dedupeKey: `store-event:${key}`,
  ...extra,
});

test("hooks of one turn share one transaction; each resolves once its jobs are committed", async () => {
  const s = openStore({ durability: "power" });
  const calls: number[] = [];
  const enqueueMany = s.enqueueManyUnsynced.bind(s);
  const batcher = new EnqueueBatcher({
    enqueueManyUnsynced: (inputs) => {
      calls.push(inputs.length);
      return enqueueMany(inputs);
    },
    syncWal: () => s.syncWal(),
  });
  const first = batcher.add([input("a"), input("b")]);
  const second = batcher.add([input("c")]);
  assert.equal(s.counts("f").f, undefined, "nothing is committed before the hooks' turn ends");
  await Promise.all([first, second]);
  assert.deepEqual(calls, [3]);
  assert.equal(s.counts("f").f?.queued, 3);
  await batcher.add([input("d")]);
  assert.deepEqual(calls, [3, 1], "a later turn is a transaction of its own");
});

test("when the shared transaction fails, each hook is tried alone: only the bad one fails", async () => {
  const s = openStore();
  s.enqueue({ id: "taken", function: "g", trigger: obj("x") });
  const batcher = new EnqueueBatcher(s);
  const good = batcher.add([input("a")]);
  const bad = batcher.add([input("b", { id: "taken" })]);
  const alsoGood = batcher.add([input("c")]);
  await good;
  await alsoGood;
  await assert.rejects(bad, DuplicateJobError);
  assert.equal(s.counts("f").f?.queued, 2);
});

test("a hook resolves only once its jobs' commit is fsynced; one fsync for the turn's hooks", async () => {
  const s = openStore({ durability: "power" });
  let syncs = 0;
  let synced!: () => void;
  const batcher = new EnqueueBatcher({
    enqueueManyUnsynced: (inputs) => s.enqueueManyUnsynced(inputs),
    syncWal: async () => {
      syncs++;
      await new Promise<void>((r) => {
        synced = r;
      });
      await s.syncWal();
    },
  });
  let resolved = 0;
  const hooks = [batcher.add([input("a")]), batcher.add([input("b")])].map((p) => p.then(() => resolved++));
  while (syncs === 0) await new Promise((r) => setImmediate(r));
  assert.equal(s.counts("f").f?.queued, 2, "committed (and visible to the scheduler) before the fsync");
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(resolved, 0, "no hook resolves before the fsync");
  synced();
  await Promise.all(hooks);
  assert.deepEqual([resolved, syncs], [2, 1]);
});

test("a failed fsync fails the hooks: their uploads are not acknowledged", async () => {
  const s = openStore({ durability: "power" });
  const batcher = new EnqueueBatcher({
    enqueueManyUnsynced: (inputs) => s.enqueueManyUnsynced(inputs),
    syncWal: async () => {
      throw new Error("EIO: i/o error, fsync");
    },
  });
  await assert.rejects(batcher.add([input("a")]), /EIO/);
});

test("syncWal fsyncs the database's write-ahead log of a store that keeps enqueues through a power loss", async () => {
  const s = openStore({ durability: "power" });
  s.enqueueManyUnsynced([input("a")]);
  await s.syncWal();
  await s.syncWal();
  assert.equal(s.counts("f").f?.queued, 1);
});
