/**
 * A job's log: text appended in chunks, capped in size. The cap keeps the start of the log (how the
 * run began) and its end (where the error usually is), and drops the middle, saying how much was
 * dropped at the point where it was. Sizes are in characters (JS string length).
 */
import type Database from "better-sqlite3";

export interface LogLimits {
  /** Characters kept from the start of the log. */
  head: number;
  /** Characters kept from the end of the log. */
  tail: number;
}

/** 1 MiB-ish of text per job: a quarter for the start, the rest for the end. */
export const DEFAULT_LOG_LIMIT = 1 << 20;

export function splitLimit(total: number): LogLimits {
  const head = Math.floor(total / 4);
  return { head, tail: total - head };
}

export function truncationMarker(dropped: number): string {
  return `\n[scar: log truncated, ${dropped} characters omitted]\n`;
}

interface LogState {
  log_chunks: number;
  log_head: number;
  log_tail: number;
  log_dropped: number;
}

export class LogWriter {
  private readonly state: Database.Statement<[number], LogState>;
  private readonly insert: Database.Statement<[number, number, number, string]>;
  private readonly update: Database.Statement<[number, number, number, number, number]>;
  private readonly oldestTail: Database.Statement<[number], { n: number; text: string }>;
  private readonly deleteChunk: Database.Statement<[number, number]>;
  private readonly setChunk: Database.Statement<[string, number, number]>;
  private readonly chunks: Database.Statement<[number], { tail: number; text: string }>;

  constructor(
    db: Database.Database,
    private readonly limits: LogLimits,
  ) {
    this.state = db.prepare("SELECT log_chunks, log_head, log_tail, log_dropped FROM jobs WHERE seq = ?");
    this.insert = db.prepare("INSERT INTO logs (job_seq, n, tail, text) VALUES (?, ?, ?, ?)");
    this.update = db.prepare(
      "UPDATE jobs SET log_chunks = ?, log_head = ?, log_tail = ?, log_dropped = ? WHERE seq = ?",
    );
    this.oldestTail = db.prepare(
      "SELECT n, text FROM logs WHERE job_seq = ? AND tail = 1 ORDER BY n LIMIT 1",
    );
    this.deleteChunk = db.prepare("DELETE FROM logs WHERE job_seq = ? AND n = ?");
    this.setChunk = db.prepare("UPDATE logs SET text = ? WHERE job_seq = ? AND n = ?");
    this.chunks = db.prepare("SELECT tail, text FROM logs WHERE job_seq = ? ORDER BY n");
  }

  /** Appends text; call inside a transaction (the caller batches appends). */
  append(seq: number, text: string): void {
    if (text.length === 0) return;
    const s = this.state.get(seq);
    if (!s) return; // the job was deleted while running: its log goes with it
    let { log_chunks: n, log_head: head, log_tail: tail, log_dropped: dropped } = s;
    const room = this.limits.head - head;
    if (room > 0) {
      const part = text.slice(0, room);
      this.insert.run(seq, n++, 0, part);
      head += part.length;
      text = text.slice(part.length);
    }
    if (text.length > 0) {
      // A single append larger than the tail keeps only its end.
      if (text.length > this.limits.tail) {
        dropped += text.length - this.limits.tail;
        text = text.slice(text.length - this.limits.tail);
      }
      this.insert.run(seq, n++, 1, text);
      tail += text.length;
      let excess = tail - this.limits.tail;
      while (excess > 0) {
        const oldest = this.oldestTail.get(seq)!;
        if (oldest.text.length <= excess) {
          this.deleteChunk.run(seq, oldest.n);
          excess -= oldest.text.length;
          dropped += oldest.text.length;
          tail -= oldest.text.length;
        } else {
          this.setChunk.run(oldest.text.slice(excess), seq, oldest.n);
          dropped += excess;
          tail -= excess;
          excess = 0;
        }
      }
    }
    this.update.run(n, head, tail, dropped, seq);
  }

  read(seq: number, dropped: number): string {
    let out = "";
    let marked = false;
    for (const c of this.chunks.iterate(seq)) {
      if (c.tail === 1 && !marked && dropped > 0) {
        out += truncationMarker(dropped);
        marked = true;
      }
      out += c.text;
    }
    if (!marked && dropped > 0) out += truncationMarker(dropped);
    return out;
  }
}
