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
  const enqueueMany = s.enqueueMany.bind(s);
  const batcher = new EnqueueBatcher({
    enqueueMany: (inputs) => {
      calls.push(inputs.length);
      return enqueueMany(inputs);
    },
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
