/**
 * Digests of large bodies computed on a worker thread, so hashing (MD5 alone runs at ~400 MB/s on
 * one core) overlaps with receiving and writing instead of taking turns with them on the event loop.
 * The main thread copies the body into 1 MiB blocks and hands each block over (transferred, not
 * copied again); an upload waits when more than MAX_IN_FLIGHT of its blocks are still being hashed,
 * so memory stays bounded however slow the worker is.
 *
 * This file is both the worker (when loaded as one) and the main thread's client of it.
 */
import { isMainThread, parentPort, Worker } from "node:worker_threads";
import { type ChecksumAlgorithm, type Digest, newDigest } from "./checksums.js";

type Alg = ChecksumAlgorithm | "md5";

type Request =
  | { op: "start"; id: number; algs: Alg[] }
  | { op: "data"; id: number; buf: ArrayBuffer; len: number }
  | { op: "end"; id: number }
  | { op: "drop"; id: number };

type Reply =
  | { op: "ack"; id: number; buf: ArrayBuffer }
  | { op: "done"; id: number; digests: Uint8Array[] }
  | { op: "error"; id: number; message: string };

const BLOCK = 1 << 20;
const MAX_IN_FLIGHT = 8;

if (!isMainThread && parentPort) {
  const port = parentPort;
  const jobs = new Map<number, Digest[]>();
  port.on("message", (m: Request) => {
    try {
      if (m.op === "start")
        jobs.set(
          m.id,
          m.algs.map((a) => newDigest(a)),
        );
      else if (m.op === "data") {
        const b = Buffer.from(m.buf, 0, m.len);
        for (const d of jobs.get(m.id) ?? []) d.update(b);
        // The block goes back to be filled again.
        port.postMessage({ op: "ack", id: m.id, buf: m.buf } satisfies Reply, [m.buf]);
      } else if (m.op === "end") {
        const ds = jobs.get(m.id) ?? [];
        jobs.delete(m.id);
        port.postMessage({
          op: "done",
          id: m.id,
          digests: ds.map((d) => new Uint8Array(d.digest())),
        } satisfies Reply);
      } else jobs.delete(m.id);
    } catch (e) {
      jobs.delete(m.id);
      port.postMessage({ op: "error", id: m.id, message: (e as Error).message } satisfies Reply);
    }
  });
}

interface Job {
  inFlight: number;
  drained: (() => void) | null;
  done: (d: Buffer[]) => void;
  fail: (e: Error) => void;
}

let worker: Worker | null = null;
let nextId = 1;
const jobs = new Map<number, Job>();
const spare: ArrayBuffer[] = [];

function failAll(e: Error): void {
  for (const j of jobs.values()) j.fail(e);
  jobs.clear();
  worker = null;
}

/** The worker keeps the process alive only while some body is being hashed. */
function addJob(id: number, j: Job): void {
  jobs.set(id, j);
  if (jobs.size === 1) getWorker().ref();
}

function removeJob(id: number): void {
  if (jobs.delete(id) && jobs.size === 0) worker?.unref();
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL(import.meta.url));
  w.on("message", (r: Reply) => {
    const j = jobs.get(r.id);
    if (r.op === "ack") {
      if (spare.length < 2 * MAX_IN_FLIGHT) spare.push(r.buf);
      if (!j) return;
      j.inFlight--;
      const f = j.drained;
      j.drained = null;
      f?.();
    } else if (!j) return;
    else if (r.op === "done") {
      removeJob(r.id);
      j.done(r.digests.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
    } else {
      removeJob(r.id);
      j.fail(new Error(`hash worker: ${r.message}`));
    }
  });
  w.on("error", (e) => failAll(e));
  w.on("exit", () => failAll(new Error("hash worker exited")));
  // After the listeners: adding a "message" listener refs the worker again.
  w.unref();
  worker = w;
  return w;
}

/** Digests of one body, computed on the worker. */
export class RemoteHash {
  private readonly id = nextId++;
  private block: Buffer | null = null;
  private fill = 0;
  private readonly job: Job;
  private readonly result: Promise<Buffer[]>;
  private finished = false;

  constructor(readonly algs: Alg[]) {
    let done!: (d: Buffer[]) => void;
    let fail!: (e: Error) => void;
    this.result = new Promise<Buffer[]>((ok, ko) => {
      done = ok;
      fail = ko;
    });
    // Nobody may be waiting yet when the worker fails; the rejection is seen by finish().
    this.result.catch(() => {});
    this.job = { inFlight: 0, drained: null, done, fail };
    addJob(this.id, this.job);
    getWorker().postMessage({ op: "start", id: this.id, algs } satisfies Request);
  }

  update(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (!this.block) {
        const ab = spare.pop();
        this.block = ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(BLOCK);
        this.fill = 0;
      }
      const n = chunk.copy(this.block, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === BLOCK) this.send();
    }
  }

  private send(): void {
    if (!this.block || this.fill === 0) return;
    const ab = this.block.buffer as ArrayBuffer;
    this.block = null;
    this.job.inFlight++;
    getWorker().postMessage({ op: "data", id: this.id, buf: ab, len: this.fill } satisfies Request, [ab]);
  }

  /** Resolves once this body's blocks in flight are few enough to take more. */
  ready(): Promise<void> | null {
    if (this.job.inFlight < MAX_IN_FLIGHT) return null;
    return new Promise((ok) => {
      this.job.drained = ok;
    });
  }

  /** The digests, in the order of `algs`. */
  finish(): Promise<Buffer[]> {
    if (!this.finished) {
      this.finished = true;
      this.send();
      getWorker().postMessage({ op: "end", id: this.id } satisfies Request);
    }
    return this.result;
  }

  /** Forgets an abandoned body. */
  drop(): void {
    if (this.finished) return;
    this.finished = true;
    removeJob(this.id);
    worker?.postMessage({ op: "drop", id: this.id } satisfies Request);
  }
}
