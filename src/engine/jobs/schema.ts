/**
 * The job database's schema, as an append-only list of migrations. The version is SQLite's
 * `user_version`; opening a file applies the missing migrations, each in its own transaction, and
 * refuses a file written by a newer scar (its columns would be misread).
 */
import type Database from "better-sqlite3";

export type Migration = (db: Database.Database) => void;

/** Never edit a migration that has shipped: add a new one at the end. */
export const MIGRATIONS: readonly Migration[] = [
  // v1
  (db) => {
    db.exec(`
      CREATE TABLE jobs (
        seq               INTEGER PRIMARY KEY,      -- dispatch order (FIFO) and pagination cursor
        id                TEXT NOT NULL UNIQUE,     -- the request id
        fn                TEXT NOT NULL,
        queue             TEXT NOT NULL CHECK (queue IN ('lambda', 'batch')),
        invocation        TEXT NOT NULL CHECK (invocation IN ('async', 'sync')),
        trig              TEXT NOT NULL,            -- JSON
        payload           BLOB,                     -- bytes, or JSON text (payload_kind)
        payload_kind      TEXT NOT NULL CHECK (payload_kind IN ('none', 'json', 'bytes')),
        dedupe_key        TEXT UNIQUE,
        parent_id         TEXT,
        delegated_to      TEXT,
        status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
        reason            TEXT,
        error             TEXT,
        exit_code         INTEGER,
        attempts          INTEGER NOT NULL DEFAULT 0,
        cycle             INTEGER NOT NULL DEFAULT 1,
        cycle_attempts    INTEGER NOT NULL DEFAULT 0,
        not_before        REAL NOT NULL,
        output_keys       TEXT NOT NULL DEFAULT '[]',
        max_memory_mb     REAL,
        t_started         REAL,
        t_queued          REAL NOT NULL,
        t_image_ready     REAL,
        t_stage_in        REAL,
        t_container_start REAL,
        t_script_end      REAL,
        t_stage_out       REAL,
        t_done            REAL,
        log_chunks        INTEGER NOT NULL DEFAULT 0, -- next chunk number
        log_head          INTEGER NOT NULL DEFAULT 0, -- characters kept from the start
        log_tail          INTEGER NOT NULL DEFAULT 0, -- characters kept from the end
        log_dropped       INTEGER NOT NULL DEFAULT 0  -- characters dropped in between
      );
      -- The dispatch query: next ready job of one (function, queue), oldest due first. Partial, so
      -- finished jobs cost nothing and 100,000 queued jobs still answer in O(log n).
      CREATE INDEX jobs_ready ON jobs (fn, queue, not_before, seq) WHERE status = 'queued';
      -- Listing a function's jobs newest first, and its counts by status.
      CREATE INDEX jobs_fn ON jobs (fn, seq);
      CREATE INDEX jobs_fn_status ON jobs (fn, status);
      -- Retention sweep; crash recovery; delegation links.
      CREATE INDEX jobs_done ON jobs (fn, t_done) WHERE t_done IS NOT NULL;
      CREATE INDEX jobs_running ON jobs (status) WHERE status = 'running';
      CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;

      -- One row per attempt: the history a redrive keeps.
      CREATE TABLE attempts (
        job_seq   INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        n         INTEGER NOT NULL,
        cycle     INTEGER NOT NULL,
        started   REAL NOT NULL,
        ended     REAL,
        status    TEXT,
        reason    TEXT,
        exit_code INTEGER,
        error     TEXT,
        stages    TEXT,
        PRIMARY KEY (job_seq, n)
      ) WITHOUT ROWID;

      -- The log, in chunks, so appending never rewrites what is there. tail = 0: the kept start of
      -- the log; tail = 1: the kept end, whose oldest chunks are trimmed when over the cap.
      CREATE TABLE logs (
        job_seq INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        n       INTEGER NOT NULL,
        tail    INTEGER NOT NULL,
        text    TEXT NOT NULL,
        PRIMARY KEY (job_seq, n)
      ) WITHOUT ROWID;
    `);
  },
  // v2: the owner lease (owner.ts), so two schedulers never share one queue.
  (db) => {
    db.exec(`
      CREATE TABLE owner (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        pid   INTEGER NOT NULL,
        host  TEXT NOT NULL,
        token TEXT NOT NULL,
        since REAL NOT NULL
      );
    `);
  },
  // v3: the execution environment of each attempt (issue 14): cold or warm start (NULL when the
  // attempt had a fresh container of its own), the environment's id, and how long a cold start took.
  (db) => {
    db.exec(`
      ALTER TABLE jobs ADD COLUMN env_start TEXT CHECK (env_start IN ('cold', 'warm'));
      ALTER TABLE jobs ADD COLUMN env_id TEXT;
      ALTER TABLE jobs ADD COLUMN env_start_ms REAL;
      ALTER TABLE attempts ADD COLUMN env_start TEXT CHECK (env_start IN ('cold', 'warm'));
      ALTER TABLE attempts ADD COLUMN env_id TEXT;
      ALTER TABLE attempts ADD COLUMN env_start_ms REAL;
      -- /metrics counts cold and warm starts per function from this (only jobs that have one).
      CREATE INDEX jobs_env_start ON jobs (fn, env_start) WHERE env_start IS NOT NULL;
    `);
  },
];

export class SchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(`job database has schema version ${found}, this scar knows up to ${known}: upgrade scar`);
  }
}

/** Brings the database to the latest version; returns the version it found. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const found = db.pragma("user_version", { simple: true }) as number;
  if (found > migrations.length) throw new SchemaTooNewError(found, migrations.length);
  for (let v = found; v < migrations.length; v++) {
    db.transaction(() => {
      migrations[v]!(db);
      // PRAGMA takes no parameters; v is an integer we control.
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  return found;
}
