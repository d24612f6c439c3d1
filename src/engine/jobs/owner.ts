/**
 * Who runs the queue: one scheduler per database file. The scheduler keeps its running counts in
 * memory and, at start, requeues every job marked running; a second scheduler on the same file would
 * requeue (and run again) the first one's live jobs. So start-up takes the owner row, which names
 * the process; it is free when empty, released, or its process is gone (killed -9: the usual case
 * after a crash). A CLI that only reads or enqueues never takes it.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type Database from "better-sqlite3";

export class QueueOwnedError extends Error {
  constructor(readonly pid: number) {
    super(`another scar process (pid ${pid}) runs this job queue; stop it first`);
  }
}

/** Tokens of the owners alive in this process (so a second scheduler here is refused too). */
const live = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the queue for this process; returns the function that gives it back. */
export function takeOwnership(db: Database.Database, now: number): () => void {
  const token = randomUUID();
  db.transaction(() => {
    const cur = db.prepare("SELECT pid, host, token FROM owner WHERE id = 1").get() as
      | { pid: number; host: string; token: string }
      | undefined;
    if (cur && cur.host === hostname()) {
      const held = cur.pid === process.pid ? live.has(cur.token) : alive(cur.pid);
      if (held) throw new QueueOwnedError(cur.pid);
    }
    db.prepare(
      `INSERT INTO owner (id, pid, host, token, since) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, token = excluded.token,
         since = excluded.since`,
    ).run(process.pid, hostname(), token, now);
  }).immediate();
  live.add(token);
  return () => {
    live.delete(token);
    if (db.open) db.prepare("DELETE FROM owner WHERE id = 1 AND token = ?").run(token);
  };
}
