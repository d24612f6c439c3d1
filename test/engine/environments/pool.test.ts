/**
 * The pool's policy: reuse, idle expiry, the memory budget, retirement on update and remove, the
 * per-function limit, failed starts and closing. Its environments here are small in-memory objects
 * that only record what the pool did to them; the real containers are tested through the engine
 * (warm.test.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { EnvironmentPool, PoolClosedError, type PoolKey } from "../../../src/engine/environments/pool.js";
import type { Environment, EnvironmentInvocationResult } from "../../../src/engine/runtime/types.js";

class FakeEnvironment implements Environment {
  private static next = 0;
  readonly id = `env-${++FakeEnvironment.next}`;
  readonly startMs = 1;
  alive = true;
  closeCalls = 0;
  private onClose: () => void = () => {};
  /** Resolves when the pool closed it. */
  readonly closed = new Promise<void>((r) => {
    this.onClose = r;
  });
  constructor(readonly memoryBytes: number) {}
  async prepareInvocation(id: string) {
    return { hostInput: `/x/${id}/input`, hostOutput: `/x/${id}/output` };
  }
  async invoke(): Promise<EnvironmentInvocationResult> {
    throw new Error("not used by the pool");
  }
  async finishInvocation(): Promise<void> {}
  async close(): Promise<void> {
    this.closeCalls++;
    this.alive = false;
    this.onClose();
  }
}

const A: PoolKey = { function: "a", revision: "1" };
const B: PoolKey = { function: "b", revision: "1" };
const GiB = 1024 ** 3;

function starter(memoryBytes = 100, started: FakeEnvironment[] = []) {
  return {
    started,
    opts: (max = 4) => ({
      max,
      memoryBytes,
      start: async () => {
        const e = new FakeEnvironment(memoryBytes);
        started.push(e);
        return e;
      },
    }),
  };
}

test("a released environment is reused, the most recently used one first", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  const one = await pool.acquire(A, s.opts());
  const two = await pool.acquire(A, s.opts());
  assert.deepEqual([one.start, two.start], ["cold", "cold"]);
  pool.release(one.env, true);
  pool.release(two.env, true);
  const again = await pool.acquire(A, s.opts());
  assert.equal(again.start, "warm");
  assert.equal(again.env, two.env, "the last released is handed out first");
  assert.deepEqual(pool.stats(), { a: { idle: 1, busy: 1, started: 2, reused: 1 } });
  const other = await pool.acquire(B, s.opts());
  assert.equal(other.start, "cold", "another function never gets a's environment");
  await pool.close();
});

test("an environment idle for longer than the idle time is closed; the next invocation starts one", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB, idleMs: 30 });
  const s = starter();
  const first = await pool.acquire(A, s.opts());
  pool.release(first.env, true);
  // the pool's idle timers do not keep a process alive: this one does, while the test waits
  const alive = setInterval(() => {}, 1000);
  await (first.env as FakeEnvironment).closed;
  clearInterval(alive);
  assert.deepEqual(pool.stats(), { a: { idle: 0, busy: 0, started: 1, reused: 0 } });
  const next = await pool.acquire(A, s.opts());
  assert.equal(next.start, "cold");
  assert.notEqual(next.env, first.env);
  await pool.close();
});

test("a busy environment does not expire", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB, idleMs: 1000 });
  const s = starter();
  const lease = await pool.acquire(A, s.opts());
  // held well past the idle time: still open
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((lease.env as FakeEnvironment).closeCalls, 0);
  pool.release(lease.env, true);
  await pool.close();
});

test("a non-reusable result, or a container that died, gets a fresh environment next", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  const first = await pool.acquire(A, s.opts());
  pool.release(first.env, false);
  assert.equal((first.env as FakeEnvironment).closeCalls, 1);
  const second = await pool.acquire(A, s.opts());
  assert.equal(second.start, "cold");
  pool.release(second.env, true);
  (second.env as FakeEnvironment).alive = false; // its container ended while idle
  const third = await pool.acquire(A, s.opts());
  assert.equal(third.start, "cold");
  assert.equal((second.env as FakeEnvironment).closeCalls, 1, "the dead one is cleaned up");
  assert.deepEqual(pool.stats().a, { idle: 0, busy: 1, started: 3, reused: 0 });
  await pool.close();
});

test("past the memory budget the least recently used idle environments close before a start", async () => {
  // room for three environments of 100 bytes
  const pool = new EnvironmentPool({ memoryBudgetBytes: 300 });
  const s = starter(100);
  const a1 = await pool.acquire(A, s.opts());
  const a2 = await pool.acquire(A, s.opts());
  const b1 = await pool.acquire(B, s.opts());
  pool.release(a2.env, true); // least recently used
  pool.release(b1.env, true);
  // a1 busy, a2 and b1 idle: a new one for c must push out a2, the oldest idle
  const c1 = await pool.acquire({ function: "c", revision: "1" }, s.opts());
  assert.equal((a2.env as FakeEnvironment).closeCalls, 1);
  assert.equal((b1.env as FakeEnvironment).closeCalls, 0);
  assert.deepEqual(Object.fromEntries(Object.entries(pool.stats()).map(([k, v]) => [k, [v.idle, v.busy]])), {
    a: [0, 1],
    b: [1, 0],
    c: [0, 1],
  });
  pool.release(a1.env, true);
  pool.release(c1.env, true);
  // b1 is now the least recently used
  await pool.acquire({ function: "d", revision: "1" }, s.opts());
  assert.equal((b1.env as FakeEnvironment).closeCalls, 1);
  await pool.close();
});

test("past the memory budget with nothing idle, a new environment starts anyway", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: 150 });
  const s = starter(100);
  const held = [
    await pool.acquire(A, s.opts()),
    await pool.acquire(A, s.opts()),
    await pool.acquire(B, s.opts()),
  ];
  assert.deepEqual(
    held.map((l) => l.start),
    ["cold", "cold", "cold"],
  );
  assert.ok(s.started.every((e) => e.closeCalls === 0));
  await pool.close();
});

test("an update retires the old revision: idle ones close now, a busy one when its invocation ends", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  const busy = await pool.acquire(A, s.opts());
  const idle = await pool.acquire(A, s.opts());
  pool.release(idle.env, true);
  const other = await pool.acquire(B, s.opts());
  pool.release(other.env, true);

  pool.retire("a", "2");
  assert.equal((idle.env as FakeEnvironment).closeCalls, 1, "the idle one closes at once");
  assert.equal((busy.env as FakeEnvironment).closeCalls, 0, "the running invocation goes on");
  assert.equal((other.env as FakeEnvironment).closeCalls, 0, "other functions keep theirs");
  // an invocation that began before the update (it holds revision 1) gets a one-off environment
  const late = await pool.acquire(A, s.opts());
  assert.equal(late.start, "cold");
  pool.release(late.env, true);
  assert.equal((late.env as FakeEnvironment).closeCalls, 1);
  pool.release(busy.env, true);
  assert.equal((busy.env as FakeEnvironment).closeCalls, 1, "released after the update: closed");

  const fresh = await pool.acquire({ function: "a", revision: "2" }, s.opts());
  assert.equal(fresh.start, "cold");
  pool.release(fresh.env, true);
  assert.equal((await pool.acquire({ function: "a", revision: "2" }, s.opts())).start, "warm");
  await pool.close();
});

test("removing a function closes its environments and forgets its counts", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  const busy = await pool.acquire(A, s.opts());
  const idle = await pool.acquire(A, s.opts());
  pool.release(idle.env, true);
  pool.retire("a");
  assert.equal((idle.env as FakeEnvironment).closeCalls, 1);
  pool.release(busy.env, true);
  assert.equal((busy.env as FakeEnvironment).closeCalls, 1);
  assert.deepEqual(pool.stats(), {});
  await pool.close();
});

test("a function never has more environments than its limit: the next invocation waits for one", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  const first = await pool.acquire(A, s.opts(1));
  let second: { start: string; env: Environment } | undefined;
  const waiting = pool.acquire(A, s.opts(1)).then((l) => {
    second = l;
    return l;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(second, undefined, "waits while the only environment is busy");
  assert.equal(s.started.length, 1);
  pool.release(first.env, true);
  const got = await waiting;
  assert.equal(got.start, "warm");
  assert.equal(got.env, first.env);

  // released as unusable: the waiting invocation starts a new one
  const third = pool.acquire(A, s.opts(1));
  pool.release(got.env, false);
  assert.equal((await third).start, "cold");
  assert.equal(s.started.length, 2);
  await pool.close();
});

test("an invocation waiting for an environment can be cancelled", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  await pool.acquire(A, s.opts(1));
  const ctl = new AbortController();
  const waiting = pool.acquire(A, { ...s.opts(1), signal: ctl.signal });
  ctl.abort(new Error("cancelled"));
  await assert.rejects(waiting, /cancelled/);
  await pool.close();
});

test("a start that fails is the acquire's error and leaves room for the next start", async () => {
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const s = starter();
  await assert.rejects(
    pool.acquire(A, {
      max: 1,
      memoryBytes: 100,
      start: async () => {
        throw new Error("crun: executable file `/bin/sh` not found");
      },
    }),
    /not found/,
  );
  assert.deepEqual(pool.stats(), {});
  const ok = await pool.acquire(A, s.opts(1));
  assert.equal(ok.start, "cold");
  await pool.close();
});

test("close closes every environment, waits for them, and refuses new acquires", async () => {
  let finish: () => void = () => {};
  const slow = new Promise<void>((r) => {
    finish = r;
  });
  class SlowClose extends FakeEnvironment {
    override async close() {
      await slow;
      return super.close();
    }
  }
  const pool = new EnvironmentPool({ memoryBudgetBytes: GiB });
  const envs: FakeEnvironment[] = [];
  const opts = { max: 4, memoryBytes: 1, start: async () => envs[envs.push(new SlowClose(1)) - 1]! };
  const busy = await pool.acquire(A, opts);
  const idle = await pool.acquire(B, opts);
  pool.release(idle.env, true);
  let closed = false;
  const closing = pool.close().then(() => {
    closed = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(closed, false, "close waits for the environments to be gone");
  finish();
  await closing;
  assert.deepEqual(
    envs.map((e) => e.closeCalls),
    [1, 1],
  );
  pool.release(busy.env, true); // a late release after close is harmless
  await assert.rejects(pool.acquire(A, opts), PoolClosedError);
});
