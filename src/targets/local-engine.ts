/**
 * Finding, starting and stopping the local engine. `scar serve` writes `<data dir>/engine.json`
 * (pid, API and store URLs) once it listens and removes it when it stops; the CLI reads it to reach
 * the engine, and starts `scar serve` in the background when no engine answers.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { LocalEngineConfig } from "../config/defaults.js";
import { writeFileAtomic } from "../config/scar-cfg.js";
import { defaultDataDir } from "../engine/data-dir.js";

/** The engine cannot start for this user (not root): said before anything is created or spawned. */
export class EngineRefusedError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "EngineRefusedError";
  }
}

/** The hint of an engine that did not start: its own fix when it has one, and scar doctor. */
export function doctorHint(err: unknown): string {
  const own = (err as { hint?: unknown }).hint;
  const doctor = "run 'scar doctor' to see what this machine can run";
  return typeof own === "string" ? `${own}; ${doctor}` : doctor;
}

export interface EngineInfo {
  pid: number;
  /** The HTTP API (OSCAR-compatible). */
  api: string;
  /** The S3-compatible object store. */
  s3: string;
  dataDir: string;
  version: string;
  /** ms since the epoch. */
  startedAt: number;
}

export interface EngineCredentialsFile {
  admin: { user: string; password: string };
  s3: { accessKeyId: string; secretAccessKey: string };
}

export const ENGINE_FILE = "engine.json";
export const ENGINE_LOG = "engine.log";

/** `local.data_dir` of scar.cfg, else $SCAR_DATA_DIR, else ~/.scar/data. */
export function engineDataDir(cfg: LocalEngineConfig | undefined): string {
  return cfg?.data_dir ? cfg.data_dir : defaultDataDir();
}

/** Written by `scar serve` when it listens. */
export function writeEngineInfo(info: EngineInfo): void {
  writeFileAtomic(join(info.dataDir, ENGINE_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

/** Removed by `scar serve` when it stops (only its own file: another engine may have started since). */
export function removeEngineInfo(dataDir: string, pid: number): void {
  const info = readEngineInfo(dataDir);
  if (info?.pid === pid) rmSync(join(dataDir, ENGINE_FILE), { force: true });
}

export function readEngineInfo(dataDir: string): EngineInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, ENGINE_FILE), "utf8")) as EngineInfo;
  } catch {
    return undefined;
  }
}

export function readCredentials(dataDir: string): EngineCredentialsFile {
  const path = join(dataDir, "credentials");
  return JSON.parse(readFileSync(path, "utf8")) as EngineCredentialsFile;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether `pid` is still an engine (`scar serve`): engine.json outlives an engine killed with
 * SIGKILL, and its pid may since belong to another process, which must never get the engine's
 * SIGTERM. Where /proc cannot be read, a live pid has to do.
 */
function engineAlive(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("serve");
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

/**
 * Asks the engine's /health: undefined when it does not answer; "" when it is healthy; the reason
 * when it answers 503 (its job database damaged or not writable): it runs, but does not run jobs.
 */
async function health(api: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${api}/health`, { signal: AbortSignal.timeout(2000) });
    const body = await res.text();
    if (res.ok) return "";
    return res.status === 503 ? body.trim() || "unhealthy" : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The engine serving this data folder, if one is running and answers (`unhealthy`: the reason it
 * gave, when it answers but its job system is not working).
 */
export async function runningEngine(
  dataDir: string,
): Promise<(EngineInfo & { unhealthy?: string }) | undefined> {
  const info = readEngineInfo(dataDir);
  if (!info || !alive(info.pid)) return undefined;
  const h = await health(info.api);
  if (h === undefined) return undefined;
  return h ? { ...info, unhealthy: h } : info;
}

export interface StartOptions {
  dataDir: string;
  config: LocalEngineConfig | undefined;
  /** Told what is happening ("starting the local engine ..."). */
  say?: (line: string) => void;
  /** How long to wait for the engine to answer (ms). */
  timeoutMs?: number;
}

/**
 * The running engine of this data folder, started in the background first when there is none.
 * Two CLIs starting at once agree through a lock file: one starts, the other waits for it.
 */
export async function ensureEngine(opts: StartOptions): Promise<{ info: EngineInfo; started: boolean }> {
  const running = await runningEngine(opts.dataDir);
  if (running) return { info: running, started: false };
  if (process.getuid?.() !== 0) {
    // loaded only here: the runtime's modules are not needed to reach a running engine
    const { checkEngineUser } = await import("../engine/runtime/privileges.js");
    const refusal = checkEngineUser();
    if (refusal) throw new EngineRefusedError(refusal.message, refusal.hint);
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const lock = join(opts.dataDir, "engine.starting");
  let mine = false;
  try {
    closeSync(openSync(lock, "wx", 0o600));
    mine = true;
  } catch {
    // Someone else is starting it; a lock older than a minute is left over from a crash.
    if (Date.now() - statSync(lock).mtimeMs > 60_000) {
      rmSync(lock, { force: true });
      return ensureEngine(opts);
    }
  }
  try {
    if (mine) {
      const fresh = await runningEngine(opts.dataDir); // started between our check and the lock
      if (fresh) return { info: fresh, started: false };
      opts.say?.(`Starting the local engine in the background (data folder ${opts.dataDir}) ...`);
      const started = spawnEngine(opts.dataDir, opts.config, false);
      const info = await waitForEngine(
        opts.dataDir,
        started,
        opts.timeoutMs ?? 60_000,
        opts.config,
        opts.say,
      );
      return { info, started: true };
    }
    return { info: await waitForEngine(opts.dataDir, undefined, opts.timeoutMs ?? 60_000), started: false };
  } finally {
    if (mine) rmSync(lock, { force: true });
  }
}

function cliMain(): string {
  return fileURLToPath(new URL("../cli/main.js", import.meta.url));
}

/**
 * Starts `scar serve` detached, its output appended to `<data dir>/engine.log`. Returns its pid and
 * where its part of the log starts.
 */
function spawnEngine(
  dataDir: string,
  cfg: LocalEngineConfig | undefined,
  freePorts: boolean,
): { pid: number; logFrom: number } {
  const logFd = openSync(join(dataDir, ENGINE_LOG), "a", 0o600); // job failures and paths: the engine's user's alone
  const logFrom = statSync(join(dataDir, ENGINE_LOG)).size;
  const args = [
    cliMain(),
    "serve",
    "--data-dir",
    dataDir,
    "--host",
    cfg?.host || "127.0.0.1",
    "--port",
    String(freePorts ? 0 : (cfg?.port ?? 8080)),
    "--s3-port",
    String(freePorts ? 0 : (cfg?.s3_port ?? 9000)),
    ...(Array.isArray(cfg?.insecure_registries)
      ? cfg.insecure_registries.flatMap((r) => ["--insecure-registry", String(r)])
      : []),
    ...(cfg?.store_reserve !== undefined ? ["--store-reserve", String(cfg.store_reserve)] : []),
  ];
  writeFileSync(logFd, `\n${new Date().toISOString()} scar ${args.slice(1).join(" ")}\n`);
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: process.env,
  });
  child.unref();
  closeSync(logFd);
  return { pid: child.pid!, logFrom };
}

function logSince(dataDir: string, offset: number): string {
  try {
    return readFileSync(join(dataDir, ENGINE_LOG)).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

async function waitForEngine(
  dataDir: string,
  started: { pid: number; logFrom: number } | undefined,
  timeoutMs: number,
  cfg?: LocalEngineConfig,
  say?: (line: string) => void,
): Promise<EngineInfo> {
  const deadline = Date.now() + timeoutMs;
  let retriedOnFreePorts = false;
  while (Date.now() < deadline) {
    const info = await runningEngine(dataDir);
    if (info) return info;
    if (started !== undefined && !alive(started.pid)) {
      // The configured ports were taken by something else: start again on free ports.
      if (!retriedOnFreePorts && /port is in use/.test(logSince(dataDir, started.logFrom))) {
        retriedOnFreePorts = true;
        say?.(
          `The configured ports (scar.cfg local.port ${cfg?.port ?? 8080}, local.s3_port ${cfg?.s3_port ?? 9000}) are taken: using free ones`,
        );
        started = spawnEngine(dataDir, cfg, true);
        continue;
      }
      throw new Error(
        `the local engine did not start; the end of ${join(dataDir, ENGINE_LOG)} says:\n${tailLog(dataDir)}`,
      );
    }
    await sleep(100);
  }
  throw new Error(
    `the local engine did not answer within ${Math.round(timeoutMs / 1000)} s; see ${join(dataDir, ENGINE_LOG)}`,
  );
}

export function tailLog(dataDir: string, lines = 15): string {
  try {
    const text = readFileSync(join(dataDir, ENGINE_LOG), "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Stops the engine (SIGTERM: running jobs finish first). False when none was running. */
export async function stopEngine(dataDir: string, timeoutMs = 60_000): Promise<boolean> {
  const info = readEngineInfo(dataDir);
  if (!info || !engineAlive(info.pid)) {
    if (info) rmSync(join(dataDir, ENGINE_FILE), { force: true });
    return false;
  }
  process.kill(info.pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (alive(info.pid)) {
    if (Date.now() > deadline) {
      throw new Error(`the engine (pid ${info.pid}) is still stopping after ${timeoutMs / 1000} s`);
    }
    await sleep(100);
  }
  if (existsSync(join(dataDir, ENGINE_FILE))) {
    try {
      unlinkSync(join(dataDir, ENGINE_FILE));
    } catch {
      // gone already
    }
  }
  return true;
}
