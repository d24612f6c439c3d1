/**
 * The engine's warm execution environments (issue 14), pooled per function and deployed revision.
 *
 * - An environment runs one invocation at a time; between invocations it waits, idle, for the next
 *   one of the same function and revision (an update makes new ones). `acquire` hands out the most
 *   recently used idle one (its caches are the warmest; the others can expire), or starts one.
 * - A function has at most `max` environments (its concurrency): an acquire past that waits for one
 *   to be released.
 * - Environments are closed after `idleMs` without an invocation, after a result that left them
 *   unusable (`release(env, false)`: a timeout, an OOM kill, a lost agent), when their function is
 *   updated or removed (`retire`: busy ones finish their invocation first), and at `close`.
 * - Memory: when the memory limits of all environments would add up past `memoryBudgetBytes`, the
 *   least recently used idle ones (of any function) are closed before a new one starts.
 *
 * The pool knows nothing of containers: it gets a `start` function and Environment objects.
 */
import type { Environment } from "../runtime/types.js";

/** Lambda keeps an idle execution environment for minutes; so does scar by default. */
export const DEFAULT_IDLE_SECONDS = 300;
/** Share of the machine's memory the environments' memory limits may add up to, by default. */
export const DEFAULT_MEMORY_PERCENT = 50;

export interface PoolOptions {
  /** Idle time after which an environment is closed; default DEFAULT_IDLE_SECONDS. */
  idleMs?: number;
  /** The most the environments' memory limits may add up to before idle ones are closed (bytes). */
  memoryBudgetBytes: number;
  /** Environments that fail to close (their container could not be killed or cleaned up). */
  log?: (message: string) => void;
}

/** Which environments may serve an invocation: the function's, of the revision deployed now. */
export interface PoolKey {
  function: string;
  /** Changes with every deploy of the function (its registry `updatedAt`). */
  revision: string;
}

export interface AcquireOptions {
  /** The most environments this function may have (its concurrency). */
  max: number;
  /** The memory limit of a new environment (bytes), for the memory budget. */
  memoryBytes: number;
  /** Starts a new environment of this function (the runner's startEnvironment). */
  start: () => Promise<Environment>;
  /** Gives up waiting for a free environment (the job was cancelled or the engine stops). */
  signal?: AbortSignal;
}

export interface Lease {
  env: Environment;
  /** "cold": started for this invocation; "warm": reused. */
  start: "cold" | "warm";
}

/** One function's environments, for /metrics and `scar ls`. */
export interface FunctionEnvironmentStats {
  /** Warm and waiting for an invocation. */
  idle: number;
  /** Running an invocation, or starting for one. */
  busy: number;
  /** Environments started since the engine started (cold starts). */
  started: number;
  /** Invocations that ran in an environment an earlier invocation had used (warm starts). */
  reused: number;
}

/** acquire() after close(): the engine is stopping. */
export class PoolClosedError extends Error {
  constructor() {
    super("the engine is stopping: no new execution environment is started");
    this.name = "PoolClosedError";
  }
}

interface Entry {
  key: string;
  function: string;
  state: "starting" | "idle" | "busy";
  env?: Environment;
  memoryBytes: number;
  /** Order of its last release (a counter: two releases in one millisecond still have an order). */
  lastUsed: number;
  idleTimer?: NodeJS.Timeout;
  /** Its function was updated or removed: closed when released. */
  retired: boolean;
}

interface Group {
  key: string;
  function: string;
  entries: Set<Entry>;
  /** Idle entries, least recently used first (the last one is handed out first). */
  idle: Entry[];
  /** acquires waiting for room under the function's limit, in arrival order. */
  waiters: Array<() => void>;
}

export class EnvironmentPool {
  private readonly idleMs: number;
  private readonly groups = new Map<string, Group>();
  private readonly byEnv = new Map<Environment, Entry>();
  private readonly counters = new Map<string, { started: number; reused: number }>();
  /**
   * Per function, the revision deployed now (null: removed), once retire() said so: an environment
   * started for another revision (a job that began before the update) is closed when released.
   */
  private readonly current = new Map<string, string | null>();
  private readonly closing = new Set<Promise<void>>();
  /** Memory limits of every environment, starting, idle or busy (bytes). */
  private memoryUsed = 0;
  private releases = 0;
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_SECONDS * 1000;
  }

  /**
   * An environment for one invocation of `key`'s function: an idle warm one, or a new one. Rejects
   * with the start's error when a new one cannot be started (the invocation's start-error), with
   * PoolClosedError after close(), and with the signal's reason when aborted while waiting.
   */
  async acquire(key: PoolKey, opts: AcquireOptions): Promise<Lease> {
    const k = keyOf(key);
    for (;;) {
      if (this.closed) throw new PoolClosedError();
      opts.signal?.throwIfAborted();
      const g = this.group(k, key.function);
      const warm = this.takeIdle(g);
      if (warm) {
        warm.state = "busy";
        this.count(key.function).reused++;
        return { env: warm.env!, start: "warm" };
      }
      if (g.entries.size < Math.max(1, opts.max)) return this.startNew(k, key, g, opts);
      // The function has as many environments as it may have, all busy: wait for one. (The
      // scheduler's per-function limit is the same number, so this is rare: a lower limit after an
      // update, or jobs of an old revision still finishing.)
      await this.waitForRoom(g, opts.signal);
    }
  }

  /**
   * An idle warm environment of `key`'s function when one waits, handed out as acquire() would hand
   * it out; undefined (nothing started, nothing waited for) when none does.
   */
  acquireIdle(key: PoolKey): Lease | undefined {
    if (this.closed) return undefined;
    const g = this.groups.get(keyOf(key));
    const warm = g ? this.takeIdle(g) : undefined;
    if (!warm) return undefined;
    warm.state = "busy";
    this.count(key.function).reused++;
    return { env: warm.env!, start: "warm" };
  }

  /**
   * Gives an environment back after an invocation. `reusable` false (the invocation timed out, was
   * OOM-killed, or left the agent unusable), a dead container, a retired revision or a closed pool
   * close it; else it waits, idle, for the next invocation of its function.
   */
  release(env: Environment, reusable: boolean): void {
    const e = this.byEnv.get(env);
    if (e?.state !== "busy") return;
    const g = this.groups.get(e.key)!;
    e.lastUsed = ++this.releases;
    if (!reusable || !env.alive || e.retired || this.closed) {
      this.closeEntry(e);
      return;
    }
    e.state = "idle";
    g.idle.push(e);
    e.idleTimer = setTimeout(() => this.closeEntry(e), this.idleMs);
    // The pool never keeps the engine's process alive on its own.
    e.idleTimer.unref();
    this.wake(g);
  }

  /**
   * The function was updated (`keep`: the revision deployed now) or removed (no `keep`): its idle
   * environments of other revisions close now, busy ones when their invocation is released.
   */
  retire(fn: string, keep?: string): void {
    this.current.set(fn, keep ?? null);
    for (const g of this.groups.values()) {
      if (g.function !== fn || this.isCurrent(g.function, g.key)) continue;
      for (const e of [...g.entries]) {
        e.retired = true;
        if (e.state === "idle") this.closeEntry(e);
      }
    }
    if (keep === undefined) this.counters.delete(fn);
  }

  /** Per function: idle and busy environments now, and starts and reuses since the engine started. */
  stats(): Record<string, FunctionEnvironmentStats> {
    const out: Record<string, FunctionEnvironmentStats> = {};
    const of = (fn: string) => {
      const c = this.counters.get(fn);
      out[fn] ??= { idle: 0, busy: 0, started: c?.started ?? 0, reused: c?.reused ?? 0 };
      return out[fn]!;
    };
    for (const fn of this.counters.keys()) of(fn);
    for (const e of this.byEnv.values()) of(e.function)[e.state === "idle" ? "idle" : "busy"]++;
    for (const g of this.groups.values())
      for (const e of g.entries) if (e.state === "starting") of(e.function).busy++;
    return out;
  }

  /**
   * Closes every environment (busy ones too: the engine stops its jobs first) and waits until they
   * are gone; an acquire after this fails.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values()) {
      for (const e of [...g.entries]) if (e.env) this.closeEntry(e);
      this.wake(g, true);
    }
    // Environments still starting close when their start ends (startNew sees `closed`).
    while (this.closing.size > 0 || this.starting() > 0) {
      if (this.closing.size > 0) await Promise.all(this.closing);
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  private isCurrent(fn: string, k: string): boolean {
    const rev = this.current.get(fn);
    return rev === undefined || (rev !== null && k === keyOf({ function: fn, revision: rev }));
  }

  private starting(): number {
    let n = 0;
    for (const g of this.groups.values()) for (const e of g.entries) if (e.state === "starting") n++;
    return n;
  }

  private group(k: string, fn: string): Group {
    let g = this.groups.get(k);
    if (!g) {
      g = { key: k, function: fn, entries: new Set(), idle: [], waiters: [] };
      this.groups.set(k, g);
    }
    return g;
  }

  private count(fn: string): { started: number; reused: number } {
    let c = this.counters.get(fn);
    if (!c) {
      c = { started: 0, reused: 0 };
      this.counters.set(fn, c);
    }
    return c;
  }

  /** The most recently used idle environment that is still alive (dead ones are closed on the way). */
  private takeIdle(g: Group): Entry | undefined {
    for (;;) {
      const e = g.idle.pop();
      if (!e) return undefined;
      clearTimeout(e.idleTimer);
      e.idleTimer = undefined;
      if (e.env!.alive) return e;
      // its container ended on its own (killed from outside?): the next one is fresh
      e.state = "busy";
      this.closeEntry(e);
    }
  }

  private async startNew(k: string, key: PoolKey, g: Group, opts: AcquireOptions): Promise<Lease> {
    const e: Entry = {
      key: k,
      function: key.function,
      state: "starting",
      memoryBytes: opts.memoryBytes,
      lastUsed: ++this.releases,
      retired: !this.isCurrent(key.function, k),
    };
    g.entries.add(e);
    this.memoryUsed += e.memoryBytes;
    // Room first: the least recently used idle environments go until the new one fits the budget.
    // When none is idle the new one starts anyway, past the budget: every environment is running an
    // invocation, and the scheduler's concurrency limits bound how many there can be.
    const evicted: Promise<void>[] = [];
    while (this.memoryUsed > this.opts.memoryBudgetBytes) {
      const lru = this.leastRecentlyUsedIdle();
      if (!lru) break;
      evicted.push(this.closeEntry(lru));
    }
    let env: Environment;
    try {
      await Promise.all(evicted);
      env = await opts.start();
    } catch (err) {
      g.entries.delete(e);
      this.memoryUsed -= e.memoryBytes;
      this.forget(g);
      this.wake(g);
      throw err;
    }
    e.env = env;
    e.memoryBytes = env.memoryBytes || e.memoryBytes;
    this.memoryUsed += e.memoryBytes - opts.memoryBytes;
    e.state = "busy";
    this.byEnv.set(env, e);
    this.count(key.function).started++;
    if (this.closed) {
      this.closeEntry(e);
      throw new PoolClosedError();
    }
    return { env, start: "cold" };
  }

  private leastRecentlyUsedIdle(): Entry | undefined {
    let lru: Entry | undefined;
    for (const g of this.groups.values())
      for (const e of g.idle) if (!lru || e.lastUsed < lru.lastUsed) lru = e;
    return lru;
  }

  /** Takes an environment out of the pool at once and closes it in the background (close() waits). */
  private closeEntry(e: Entry): Promise<void> {
    const g = this.groups.get(e.key)!;
    clearTimeout(e.idleTimer);
    if (!g.entries.delete(e)) return Promise.resolve();
    const i = g.idle.indexOf(e);
    if (i >= 0) g.idle.splice(i, 1);
    this.memoryUsed -= e.memoryBytes;
    const env = e.env!;
    this.byEnv.delete(env);
    this.forget(g);
    this.wake(g);
    const done = env
      .close()
      .catch((err: unknown) =>
        this.opts.log?.(`execution environment ${env.id} of '${e.function}': ${(err as Error).message}`),
      )
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
    return done;
  }

  /** Drops an empty group (a retired revision's, or one whose environments all closed). */
  private forget(g: Group): void {
    if (g.entries.size === 0 && g.waiters.length === 0) this.groups.delete(g.key);
  }

  private waitForRoom(g: Group, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = g.waiters.indexOf(done);
        if (i >= 0) g.waiters.splice(i, 1);
        this.forget(g);
        reject(signal!.reason);
      };
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      g.waiters.push(done);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Lets one waiting acquire look again (or all of them, when the pool closes). */
  private wake(g: Group, all = false): void {
    const n = all ? g.waiters.length : 1;
    for (const w of g.waiters.splice(0, n)) w();
  }
}

function keyOf(key: PoolKey): string {
  return `${key.function}\0${key.revision}`;
}
