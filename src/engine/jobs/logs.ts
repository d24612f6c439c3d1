/**
 * A job's log: text appended in chunks, capped in size. The cap keeps the start of the log (how the
 * run began) and its end (where the error usually is), and drops the middle, saying how much was
 * dropped at the point where it was. Sizes are in characters (JS string length).
 *
 * The cuts fall on line ends where they can, so the marker sits between whole lines: the start
 * stops after its last complete line, and the end begins with a complete line (a line longer than
 * what is left of a part is cut inside, rather than dropped whole).
 */
import type Database from "better-sqlite3";

export interface LogLimits {
  /** Characters kept from the start of the log (at most). */
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

/**
 * How many characters of `kept` to drop too so that it begins a line, given the character just
 * before it: none when that was a line end, or when `kept` has no complete line to begin with.
 */
function lineStart(kept: string, before: string): number {
  if (before === "\n") return 0;
  const nl = kept.indexOf("\n");
  return nl >= 0 && nl + 1 < kept.length ? nl + 1 : 0;
}

/** The marker line, on a line of its own after `before` (the text kept so far). */
export function truncationMarker(dropped: number, before = ""): string {
  const nl = before === "" || before.endsWith("\n") ? "" : "\n";
  return `${nl}[scar: log truncated, ${dropped} characters omitted]\n`;
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

  /** Drops the first `cut` characters of the oldest chunk of the end (the whole chunk when that is all of it). */
  private dropStart(seq: number, oldest: { n: number; text: string }, cut: number): void {
    if (cut === oldest.text.length) this.deleteChunk.run(seq, oldest.n);
    else this.setChunk.run(oldest.text.slice(cut), seq, oldest.n);
  }

  /** Appends text; call inside a transaction (the caller batches appends). */
  append(seq: number, text: string): void {
    if (text.length === 0) return;
    const s = this.state.get(seq);
    if (!s) return; // the job was deleted while running: its log goes with it
    let { log_chunks: n, log_head: head, log_tail: tail, log_dropped: dropped } = s;
    const room = this.limits.head - head;
    if (room > 0) {
      let part = text.slice(0, room);
      if (text.length > room) {
        // The start is full: it ends after its last complete line, and takes nothing more (log_head
        // counts the start's budget as spent).
        const nl = part.lastIndexOf("\n");
        if (nl >= 0) part = part.slice(0, nl + 1);
        else if (head > 0) part = ""; // the start's earlier appends end with their own lines
        head = this.limits.head;
      } else head += part.length;
      if (part.length > 0) this.insert.run(seq, n++, 0, part);
      text = text.slice(part.length);
    }
    if (text.length > 0) {
      // A single append larger than the tail keeps only its end, from a line start.
      if (text.length > this.limits.tail) {
        let cut = text.length - this.limits.tail;
        cut += lineStart(text.slice(cut), text[cut - 1]!);
        dropped += cut;
        text = text.slice(cut);
      }
      this.insert.run(seq, n++, 1, text);
      tail += text.length;
      let excess = tail - this.limits.tail;
      let lastDropped = "\n";
      while (excess > 0) {
        const oldest = this.oldestTail.get(seq)!;
        const cut = Math.min(excess, oldest.text.length);
        this.dropStart(seq, oldest, cut);
        excess -= cut;
        dropped += cut;
        tail -= cut;
        lastDropped = oldest.text[cut - 1]!;
      }
      // The end begins with a whole line: drop on to the next line start (chunks end anywhere).
      while (lastDropped !== "\n") {
        const oldest = this.oldestTail.get(seq)!;
        const nl = oldest.text.indexOf("\n");
        const cut = nl >= 0 && nl + 1 < oldest.text.length ? nl + 1 : oldest.text.length;
        // The newest chunk is never dropped whole: a line longer than the end is cut inside.
        if (cut === oldest.text.length && oldest.n === n - 1) break;
        this.dropStart(seq, oldest, cut);
        dropped += cut;
        tail -= cut;
        lastDropped = oldest.text[cut - 1]!;
      }
    }
    this.update.run(n, head, tail, dropped, seq);
  }

  read(seq: number, dropped: number): string {
    let out = "";
    let marked = false;
    for (const c of this.chunks.iterate(seq)) {
      if (c.tail === 1 && !marked && dropped > 0) {
        out += truncationMarker(dropped, out);
        marked = true;
      }
      out += c.text;
    }
    if (!marked && dropped > 0) out += truncationMarker(dropped, out);
    return out;
  }
}
