/**
 * The image store's ForeignReader for a rootless engine with subordinate id ranges: the lower layers'
 * folders it gave to subordinate ids (layer-owners.ts) are closed to its user outside the user
 * namespace, so a layer unpacked later that writes under one (an image sharing that layer) reads
 * them through a child that is root of a user namespace with the same maps
 * (foreign-reader-child.ts, process.execPath), started at the first such read and ended with the
 * unpack. One request at a time, one JSON line each way.
 */
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ForeignReader, ForeignStat } from "./images/index.js";
import { type RootlessMode, spawnInUserNamespace } from "./runtime/index.js";

const CHILD = fileURLToPath(new URL("./foreign-reader-child.js", import.meta.url));

type Answer = { st?: ForeignStat | null; error?: string };

export class NamespaceReader implements ForeignReader {
  private started: Promise<{ child: ChildProcess; lines: AsyncIterator<string> }> | undefined;
  /** the requests, one after the other */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly mode: RootlessMode) {}

  async lstat(path: string): Promise<ForeignStat | undefined> {
    return (await this.ask({ op: "lstat", path }, path)).st ?? undefined;
  }

  async copyFile(src: string, dst: string): Promise<void> {
    await this.ask({ op: "copy", src, dst }, src);
  }

  /** Ends the child, if one was started. */
  async close(): Promise<void> {
    const started = this.started;
    this.started = undefined;
    if (!started) return;
    const { child } = await started.catch(() => ({ child: undefined }));
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.stdin!.end();
    await exited;
  }

  private ask(req: object, about: string): Promise<Answer> {
    const next = this.queue.then(async () => {
      this.started ??= this.start();
      const { child, lines } = await this.started;
      child.stdin!.write(`${JSON.stringify(req)}\n`);
      const line = await lines.next();
      if (line.done) throw new Error(`reading ${about} in the user namespace: its reader ended`);
      const answer = JSON.parse(line.value) as Answer;
      if (answer.error) throw new Error(`reading ${about} in the user namespace: ${answer.error}`);
      return answer;
    });
    this.queue = next.catch(() => {});
    return next;
  }

  private async start(): Promise<{ child: ChildProcess; lines: AsyncIterator<string> }> {
    const child = await spawnInUserNamespace(this.mode, [process.execPath, CHILD]);
    child.stdin!.on("error", () => {}); // a child gone: its ended output answers
    const lines = createInterface({ input: child.stdout!, crlfDelay: Number.POSITIVE_INFINITY })[
      Symbol.asyncIterator
    ]();
    return { child, lines };
  }
}
