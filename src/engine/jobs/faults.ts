/**
 * What can go wrong with the job database itself, as opposed to a job: the file is damaged (SQLite
 * finds a malformed page, or the file is not a database at all), or it cannot be written (the disk is
 * full, or writes fail). The job system's health is the first such problem still in force; the
 * engine's `/health` reports it.
 *
 * A damaged database is never repaired silently: the check at open refuses it (DamagedJobDatabaseError
 * says what to do), and damage found while running stops dispatch until the engine is restarted on a
 * repaired or fresh file. A full disk is expected to pass: jobs whose records could not be written end
 * as failed with reason `disk` once writes work again, and health comes back by itself.
 */
import { statfsSync } from "node:fs";
import { dirname } from "node:path";

export type DbFault = "damaged" | "disk";

/** The SQLite result codes (better-sqlite3's `code`, extended codes included) of each fault. */
export function dbFault(e: unknown): DbFault | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return "damaged";
  if (code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR") || code === "ENOSPC" || code === "EDQUOT")
    return "disk";
  return undefined;
}

/** The file failed its integrity check at open, or is not a database. */
export class DamagedJobDatabaseError extends Error {
  /** What to do about it, for the person at the terminal. */
  readonly hint: string;

  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(
      `the job database ${file} is damaged (${detail}); the engine does not run jobs from a damaged database`,
    );
    this.name = "DamagedJobDatabaseError";
    const folder = dirname(file);
    const aside = `${folder}.damaged-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    this.hint = [
      "keep the damaged file and start on an empty job database:",
      `  mv ${folder} ${aside}`,
      "then start the engine again. The empty database knows nothing of earlier jobs: their records, logs",
      "and dead letters, and the jobs still queued or running in the old file, are not carried over",
      "(objects, deployed functions and images are kept; upload again the inputs whose jobs you need).",
      `What SQLite can still read of the old file: sqlite3 ${aside}/jobs.db .dump`,
    ].join("\n");
  }
}

/** Free space that counts as room again after a full disk: a few hundred pages of WAL. */
const ROOM_BYTES = 1024 * 1024;

export interface JobHealthState {
  ok: boolean;
  /** Absent when ok. */
  fault?: DbFault;
  /** One line saying what is wrong and what happens meanwhile. */
  message?: string;
  /** When the fault was first seen (ms since the epoch). */
  since?: number;
}

/**
 * The job database's health, fed by every error its statements raise. Listeners hear each change
 * once (the first sign of a fault, and the recovery from a full disk), so a fault that every poll
 * meets again is logged once, not every second.
 */
export class JobHealth {
  private state: JobHealthState = { ok: true };
  /** The disk fault was a full disk (not another write error), so free space is the cure. */
  private full = false;
  private readonly listeners = new Set<(s: JobHealthState) => void>();

  constructor(
    private readonly file: string,
    private readonly now: () => number,
  ) {}

  get(): JobHealthState {
    return this.state;
  }

  onChange(listener: (s: JobHealthState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records the error if it is a fault of the database; returns which (undefined: not one). */
  note(e: unknown): DbFault | undefined {
    const fault = dbFault(e);
    if (!fault) return undefined;
    // Damage outranks a full disk and stays until restart; a second sign of the same fault is news to no one.
    if (this.state.fault === "damaged" || this.state.fault === fault) return fault;
    const detail = (e as Error).message;
    const code = (e as { code?: string }).code;
    this.full = code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT";
    const message =
      fault === "damaged"
        ? `job database ${this.file} is damaged (${detail}): no job is started until the engine is restarted on a repaired or new database`
        : `job database ${this.file} cannot be written (${detail}): no job is started, and jobs whose records could not be written end as failed (reason disk) once there is room`;
    this.set({ ok: false, fault, message, since: this.now() });
    return fault;
  }

  /** A write succeeded: a full disk has room again (damage stays). */
  written(): void {
    if (this.state.fault === "disk") this.set({ ok: true });
  }

  /**
   * Whether dispatch should wait for room: true while a full disk is still full. Clears the fault
   * once the file system has room again (a small write is no test: it can succeed in the room a
   * failed larger one left in the WAL). Other write errors (EIO) do not wait: the next real write
   * (a claim) tries, and clears the fault when it succeeds.
   */
  waitForRoom(): boolean {
    if (this.state.fault !== "disk" || !this.full) return false;
    const fs = statfsSync(dirname(this.file));
    if (fs.bavail * fs.bsize < ROOM_BYTES) return true;
    this.written();
    return false;
  }

  private set(s: JobHealthState): void {
    this.state = s;
    for (const l of this.listeners) l(s);
  }
}
