/**
 * A gate a job's script waits at, held by the test: a socket server on 127.0.0.1; the script (with
 * the host's network) runs `nc 127.0.0.1 <port> -e cat`, which blocks until the test sends a line
 * and closes (cat reads the socket to its end). No sleep, no timing: the job goes on when told.
 */
import { createServer, type Socket } from "node:net";

export interface JobGate {
  port: number;
  /** A script that prints `before`, waits at the gate, prints `after`. */
  script(before: string, after: string): string;
  /** Lets the next job that waits (or will wait) at the gate go on. */
  release(): Promise<void>;
  close(): void;
}

export async function openGate(): Promise<JobGate> {
  const waiting: Socket[] = [];
  let arrived: (() => void) | undefined;
  const server = createServer((s) => {
    waiting.push(s);
    arrived?.();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    script: (before, after) => `#!/bin/sh\necho "${before}"\nnc 127.0.0.1 ${port} -e cat\necho "${after}"\n`,
    async release() {
      if (waiting.length === 0)
        await new Promise<void>((r) => {
          arrived = r;
        });
      arrived = undefined;
      waiting.shift()!.end("go\n");
    },
    close() {
      for (const s of waiting) s.destroy();
      server.close();
    },
  };
}
