import { join, resolve } from "node:path";
import { configFolder } from "../../config/scar-cfg.js";
import { corsOrigins, startApi } from "../../engine/api/index.js";
import { UiEnginesError, uiEngines } from "../../engine/api/ui.js";
import { Engine } from "../../engine/engine.js";
import { DamagedJobDatabaseError, dbFault } from "../../engine/jobs/index.js";
import { RuntimeUnavailableError } from "../../engine/runtime/index.js";
import { checkEngineUser } from "../../engine/runtime/privileges.js";
import { removeEngineInfo, runningEngine, writeEngineInfo } from "../../targets/local-engine.js";
import { VERSION } from "../../version.js";
import { configuredEngine, openPrivateDataDir } from "../data-dir.js";
import { CliError } from "../errors.js";

function port(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliError(`${what} must be a port number (0-65535), not '${v}'`);
  return n;
}

export async function runServe(opts: import("./serve.js").ServeOptions): Promise<void> {
  // Before scar.cfg, the data folder or a port is touched: nothing to clean up after a refusal.
  const refusal = checkEngineUser();
  if (refusal) throw new CliError(refusal.message, 1, refusal.hint);
  const configured = await configuredEngine();
  // scar.cfg's warm environments (issue 14), checked before anything is created
  const local = configured.config?.local;
  const warmIdleSeconds = cfgNumber(local?.warm_idle_seconds, "local.warm_idle_seconds", 1, 86_400);
  const warmMemoryPercent = cfgNumber(local?.warm_memory_percent, "local.warm_memory_percent", 1, 100);
  const warmPrewarm = local?.warm_prewarm;
  if (warmPrewarm !== undefined && typeof warmPrewarm !== "boolean")
    throw new CliError(
      `scar.cfg: local.warm_prewarm must be true or false, not ${JSON.stringify(warmPrewarm)}`,
    );
  // the other engines the dashboard may call (startApi reads them again for its CSP)
  try {
    uiEngines(local?.ui_engines);
  } catch (e) {
    if (!(e instanceof UiEnginesError)) throw e;
    throw new CliError(e.message, 1, `fix or remove it in ${join(configFolder(), "scar.cfg")}`);
  }
  const dataDir = resolve(opts.dataDir ?? configured.dataDir);
  const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
  const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new CliError(`--concurrency must be a whole number, at least 1, not '${opts.concurrency}'`);
  }
  const running = await runningEngine(dataDir);
  if (running) {
    throw new CliError(
      `an engine already serves ${dataDir} (pid ${running.pid}, API ${running.api})`,
      1,
      "use it as it is, or stop it first with 'scar engine stop'",
    );
  }
  await openPrivateDataDir(dataDir);
  // --store-reserve, else scar.cfg's local.store_reserve (also when the user starts `scar serve`)
  const reserveText = opts.storeReserve ?? configured.config?.local?.store_reserve;
  const reserve = reserveText !== undefined ? await storeReserve(String(reserveText)) : undefined;
  let engine: Engine;
  try {
    engine = await Engine.start({
      dataDir,
      s3Host: opts.host,
      s3Port: port(opts.s3Port, "--s3-port"),
      ...(concurrency ? { concurrency } : {}),
      ...(opts.insecureRegistry.length > 0 ? { insecureRegistries: opts.insecureRegistry } : {}),
      ...(reserve ? { storeReserve: reserve } : {}),
      ...(configured.config ? { corsOrigins: corsOrigins(configured.config) } : {}),
      ...(warmIdleSeconds !== undefined ? { warmIdleSeconds } : {}),
      ...(warmMemoryPercent !== undefined ? { warmMemoryPercent } : {}),
      ...(warmPrewarm !== undefined ? { warmPrewarm } : {}),
      log,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE")
      throw new CliError(
        `the object store's port is in use: ${e.message}`,
        1,
        "pick another with --s3-port, or 0 for a free one",
      );
    if (err instanceof DamagedJobDatabaseError) throw new CliError(err.message, 1, err.hint);
    if (err instanceof RuntimeUnavailableError)
      throw new CliError(err.message, 1, err.install ?? "run 'scar doctor' to see what this machine can run");
    if (dbFault(err) === "disk")
      throw new CliError(
        `the job database in ${join(dataDir, "jobs")} cannot be written: ${e.message}`,
        1,
        `make room on the disk of ${dataDir} (df -h ${dataDir}), then start the engine again`,
      );
    throw err;
  }
  let api: Awaited<ReturnType<typeof startApi>>;
  try {
    api = await startApi(engine, {
      host: opts.host,
      port: port(opts.port, "--port"),
      log,
      ...(configured.config ? { scarConfig: configured.config } : {}),
    });
  } catch (err) {
    await engine.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE")
      throw new CliError(
        `the API's port is in use: ${e.message}`,
        1,
        "pick another with --port, or 0 for a free one",
      );
    throw err;
  }
  const lines = [
    `scar engine running`,
    `  API:          ${api.url}   (admin user '${engine.credentials.admin.user}', password in ${join(dataDir, "credentials")})`,
    `  object store: ${engine.store.url}   (S3 keys in ${join(dataDir, "credentials")})`,
    `  data folder:  ${dataDir}`,
    `  functions:    ${engine.functions().length} deployed`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  // How the CLI finds this engine (src/targets/local-engine.ts).
  writeEngineInfo({
    pid: process.pid,
    api: api.url,
    s3: engine.store.url,
    dataDir,
    version: VERSION,
    startedAt: Date.now(),
  });
  await new Promise<void>((resolve) => {
    const stop = async (sig: string) => {
      log(`${sig}: stopping (running jobs finish first; press Ctrl-C again to stop at once)`);
      process.once("SIGINT", () => process.exit(130));
      removeEngineInfo(dataDir, process.pid);
      await api.close();
      await engine.close();
      resolve();
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
}

async function storeReserve(text: string) {
  const { parseReserve } = await import("../../engine/store/space.js");
  try {
    return parseReserve(text);
  } catch (e) {
    throw new CliError(`--store-reserve: ${(e as Error).message}`, 2);
  }
}

/** A number of scar.cfg's `local` section within [min, max], or a clear refusal naming the key. */
function cfgNumber(v: unknown, key: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max)
    throw new CliError(
      `scar.cfg: ${key} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`,
      1,
      `fix or remove it in ${join(configFolder(), "scar.cfg")}`,
    );
  return v;
}
