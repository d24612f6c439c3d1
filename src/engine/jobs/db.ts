/**
 * Opening the job database: one SQLite file in WAL mode, migrated to the current schema.
 *
 * Durability: WAL with `synchronous = NORMAL` makes every committed transaction survive the death of
 * the process (kill -9): the commit is in the WAL file before the call returns, and SQLite replays it
 * on the next open. Only a power loss or kernel crash can lose the last NORMAL commits, so progress
 * writes (stages, logs, outcomes) use NORMAL (an fsync costs ~2.5 ms here, several per job), and
 * `durableTransaction` switches to FULL for the writes that must also survive a power loss (enqueue):
 * the WAL is fsynced before it returns.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { migrate } from "./schema.js";

/** `power`: enqueues survive a power loss (one fsync per enqueue transaction); `process`: a kill -9 only. */
export type Durability = "power" | "process";

export function openDatabase(dataDir: string, fileName = "jobs.db"): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, fileName));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    // Indexes of 100,000 queued jobs (random UUIDs among them) must stay in memory to insert fast.
    db.pragma("cache_size = -32768");
    // A checkpoint fsyncs the WAL and the database: every 1,000 pages (the default) is every ~80 jobs
    // run. Every 10,000 pages (~40 MiB of WAL) measured ~1.3x more jobs/s on a loaded 2-core machine;
    // the WAL file is cut back to 64 MiB after a checkpoint.
    db.pragma("wal_autocheckpoint = 10000");
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    // A second process (a CLI reading jobs) may hold a read lock for a moment; wait rather than fail.
    db.pragma("busy_timeout = 5000");
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Runs `fn` in a transaction; when this is the outermost transaction and durability is `power`, its
 * commit is fsynced. Nested inside a caller's transaction it is a savepoint, and the caller's commit
 * decides durability (use this same function for the outer transaction).
 */
export function durableTransaction<T>(db: Database.Database, durability: Durability, fn: () => T): T {
  if (db.inTransaction || durability === "process") return db.transaction(fn).immediate();
  db.pragma("synchronous = FULL");
  try {
    return db.transaction(fn).immediate();
  } finally {
    db.pragma("synchronous = NORMAL");
  }
}
