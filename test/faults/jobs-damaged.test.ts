/**
 * A damaged job database: refused at start with the file and what to do (a real jobs.db with a page
 * overwritten, and a file that is not SQLite at all), and damage that appears while the engine runs
 * turns /health to 503 with the reason, logged once rather than at every poll.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { startApi } from "../../src/engine/api/index.js";
import { Engine } from "../../src/engine/engine.js";
import { DamagedJobDatabaseError, JobStore, Scheduler } from "../../src/engine/jobs/index.js";
import { writeEngineInfo } from "../../src/targets/local-engine.js";
import { VERSION } from "../../src/version.js";
import { runScar, writeScarCfg } from "../cli/harness.js";
import { waitFor } from "../engine/api-harness.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scar-jobs-damaged-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A job database with 300 queued jobs, all in the main file (no WAL left). */
function realDatabase(jobsDir: string): string {
  const store = JobStore.open({ dataDir: jobsDir, durability: "process" });
  for (let i = 0; i < 300; i++)
    store.enqueue({ function: "f", trigger: { type: "run" }, payload: { pad: "x".repeat(500), i } });
  store.db.pragma("wal_checkpoint(TRUNCATE)");
  store.close();
  return join(jobsDir, "jobs.db");
}

/** Overwrites the first bytes (the b-tree page header) of the root page of a table or index. */
function overwritePage(file: string, name: string): void {
  const db = new Database(file, { readonly: true });
  const { rootpage, size } = db
    .prepare(
      "SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS size FROM sqlite_master WHERE name = ?",
    )
    .get(name) as { rootpage: number; size: number };
  db.close();
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, (rootpage - 1) * size);
  } finally {
    closeSync(fd);
  }
}

function serve(dataDir: string) {
  return spawnSync(bin, ["serve", "--data-dir", dataDir, "--port", "0", "--s3-port", "0"], {
    encoding: "utf8",
    timeout: 60_000,
  });
}

test("a jobs.db with an overwritten page is refused at start: the file, the damage and what to do", () => {
  const dataDir = join(root, "page");
  const file = realDatabase(join(dataDir, "jobs"));
  overwritePage(file, "jobs");

  assert.throws(
    () => JobStore.open({ dataDir: join(dataDir, "jobs") }),
    (e: unknown) => e instanceof DamagedJobDatabaseError && e.file === file && /malformed/.test(e.message),
  );
  const r = serve(dataDir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`the job database ${file} is damaged`));
  assert.match(r.stderr, new RegExp(`mv ${join(dataDir, "jobs")} ${join(dataDir, "jobs")}\\.damaged-`));
  assert.match(r.stderr, /not carried over/, "the hint says what an empty database loses");
  assert.doesNotMatch(r.stdout, /scar engine running/);
  assert.ok(!existsSync(join(dataDir, "engine.json")), "no engine announced itself");

  // Following the hint: the folder moved aside, the engine starts on an empty database.
  const aside = /mv \S+ (\S+)/.exec(r.stderr)![1]!;
  const mv = spawnSync("mv", [join(dataDir, "jobs"), aside]);
  assert.equal(mv.status, 0);
  const fresh = JobStore.open({ dataDir: join(dataDir, "jobs") });
  assert.deepEqual(fresh.counts(), {});
  fresh.close();
  assert.ok(existsSync(join(aside, "jobs.db")), "the damaged file is kept");
});

test("a jobs.db that is not SQLite at all is refused the same way", () => {
  const dataDir = join(root, "notdb");
  mkdirSync(join(dataDir, "jobs"), { recursive: true });
  writeFileSync(
    join(dataDir, "jobs", "jobs.db"),
    "these are not the pages you are looking for\n".repeat(200),
  );
  const r = serve(dataDir);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the job database \S+jobs\.db is damaged \(file is not a database\)/);
  assert.match(r.stderr, /hint: keep the damaged file/);
});

test("damage that appears while the engine runs: /health answers 503 with the reason, logged once", async () => {
  const dataDir = join(root, "live");
  const lines: string[] = [];
  const engine = await Engine.start({
    dataDir,
    s3Port: 0,
    concurrency: 1,
    pollMs: 10,
    log: (m) => lines.push(m),
  });
  const api = await startApi(engine, { port: 0 });
  try {
    const ok = await fetch(`${api.url}/health`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), "Ok");

    // A job due in an hour keeps the scheduler reading the dispatch index at every poll.
    engine.jobs.enqueue({ function: "later", trigger: { type: "run" }, notBefore: Date.now() + 3_600_000 });
    const file = join(dataDir, "jobs", "jobs.db");
    const other = new Database(file);
    other.pragma("wal_checkpoint(TRUNCATE)");
    overwritePage(file, "jobs_ready");
    // Another connection's write: the engine's connection drops its page cache and reads the file.
    other.prepare("UPDATE owner SET since = since").run();
    other.close();

    const body = await waitFor("/health to report the damage", async () => {
      const r = await fetch(`${api.url}/health`);
      const text = await r.text();
      return r.status === 503 ? text : undefined;
    });
    assert.match(
      body,
      /^job system unhealthy: job database \S+jobs\.db is damaged \(database disk image is malformed\)/,
    );
    // Fifty more polls: the damage is not logged again, and nothing else is logged at every poll.
    await new Promise((r) => setTimeout(r, 500));
    const about = lines.filter((l) => /malformed/.test(l));
    assert.equal(about.length, 1, about.join("\n"));
    assert.match(about[0]!, /ERROR: job database .* is damaged/);
    assert.equal((await fetch(`${api.url}/health`)).status, 503);

    // The CLI still sees the engine (it does not start a second one) and `engine status` says why.
    writeEngineInfo({
      pid: process.pid,
      api: api.url,
      s3: engine.store.url,
      dataDir,
      version: VERSION,
      startedAt: Date.now(),
    });
    const cfgDir = join(root, "cfg");
    writeScarCfg(cfgDir, { data_dir: dataDir });
    const status = await runScar(["engine", "status"], { cfgDir });
    assert.equal(status.code, 4, status.stderr);
    assert.match(status.stdout, /^running \(pid/);
    assert.match(status.stdout, /UNHEALTHY: +job system unhealthy: job database \S+ is damaged/);
  } finally {
    await api.close();
    await engine.close();
  }
});

test("a caller waiting for a queued job is answered with the damage instead of waiting for ever", async () => {
  const dir = join(root, "waiter");
  const store = JobStore.open({ dataDir: dir, durability: "process" });
  const errors: string[] = [];
  const scheduler = new Scheduler({
    store,
    handler: async () => ({ status: "succeeded" }),
    pollMs: 10,
    onError: (e) => errors.push((e as Error).message),
  });
  scheduler.start();
  try {
    const { id } = store.enqueue({
      function: "f",
      trigger: { type: "run" },
      notBefore: Date.now() + 3_600_000,
    });
    const waiting = scheduler.wait(id);
    const file = join(dir, "jobs.db");
    const other = new Database(file);
    other.pragma("wal_checkpoint(TRUNCATE)");
    overwritePage(file, "jobs_ready");
    other.prepare("UPDATE owner SET since = since").run();
    other.close();
    await assert.rejects(waiting, /job database \S+ is damaged \(database disk image is malformed\)/);
    assert.equal(scheduler.health().fault, "damaged");
    await assert.rejects(scheduler.wait(id), /is damaged/);
  } finally {
    await scheduler.stop();
    store.close();
  }
});
