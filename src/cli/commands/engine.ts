/** `scar engine start|status|stop|logs`: the local engine that commands start in the background. */
import { createReadStream, existsSync, statSync, watchFile } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { CliError } from "../errors.js";

/** The engine module, the context helpers and the data folder, loaded when a subcommand runs. */
async function open() {
  const m = await import("../../targets/local-engine.js");
  const c = await import("../context.js");
  const cfg = c.loadConfig();
  return { ...m, ...c, cfg, dir: resolve(m.engineDataDir(cfg.config.local)) };
}

export function registerEngine(program: Command): void {
  const engine = program
    .command("engine")
    .description(
      "Manage the local engine running in the background (data folder: scar.cfg local.data_dir, $SCAR_DATA_DIR or ~/.scar/data)",
    );

  engine
    .command("start")
    .description("start the local engine in the background (commands of the local target do it when needed)")
    .option("-j, --json", "print where it listens as JSON")
    .action(async (flags: { json?: boolean }) => {
      const { dir, cfg, ensureEngine, doctorHint, printJson, say } = await open();
      const { info, started } = await ensureEngine({
        dataDir: dir,
        config: cfg.config.local,
        say: (l) => process.stderr.write(`${l}\n`),
      }).catch((err: Error) => {
        throw new CliError(err.message, 1, doctorHint(err));
      });
      if (flags.json) printJson({ ...info, started });
      else
        say(
          `${started ? "Started" : "Already running"}: API ${info.api}, object store ${info.s3}, pid ${info.pid}`,
        );
    });

  engine
    .command("status")
    .description("say whether the local engine runs, where it listens and what it holds")
    .option("-j, --json", "print the status as JSON")
    .action(async (flags: { json?: boolean }) => {
      const { dir, runningEngine, printJson, say, ENGINE_LOG } = await open();
      const info = await runningEngine(dir);
      if (flags.json) {
        printJson(
          info ? { running: true, ...info, dashboard: `${info.api}/ui/` } : { running: false, dataDir: dir },
        );
      } else if (info) {
        const up = Math.round((Date.now() - info.startedAt) / 1000);
        say(
          [
            `running (pid ${info.pid}, up ${up} s, scar ${info.version})`,
            ...(info.unhealthy ? [`  UNHEALTHY:    ${info.unhealthy}`] : []),
            `  API:          ${info.api}`,
            `  dashboard:    ${info.api}/ui/ (the admin user and password of ${join(info.dataDir, "credentials")})`,
            `  object store: ${info.s3}`,
            `  data folder:  ${info.dataDir}`,
            `  log:          ${join(info.dataDir, ENGINE_LOG)}`,
          ].join("\n"),
        );
      } else say(`not running (data folder ${dir}); commands start it when they need it`);
      if (!info) process.exitCode = 3;
      else if (info.unhealthy) process.exitCode = 4;
    });

  engine
    .command("stop")
    .description("stop the local engine (running jobs finish first; queued jobs wait for the next start)")
    .action(async () => {
      const { dir, stopEngine, say } = await open();
      const stopped = await stopEngine(dir);
      say(stopped ? "stopped" : "not running");
    });

  engine
    .command("logs")
    .description("print the local engine's log")
    .option("-f, --follow", "keep printing new lines until Ctrl-C")
    .option("--lines <n>", "how many of the last lines (default 50)", "50")
    .action(async (flags: { follow?: boolean; lines: string }) => {
      const { dir, tailLog, say, ENGINE_LOG } = await open();
      const file = join(dir, ENGINE_LOG);
      if (!existsSync(file)) throw new CliError(`no engine log yet in ${dir}`);
      say(tailLog(dir, Number(flags.lines) || 50));
      if (!flags.follow) return;
      let pos = statSync(file).size;
      await new Promise<void>((done) => {
        watchFile(file, { interval: 500 }, (cur) => {
          if (cur.size <= pos) return;
          createReadStream(file, { start: pos, end: cur.size - 1 }).pipe(process.stdout, { end: false });
          pos = cur.size;
        });
        process.once("SIGINT", () => done());
      });
    });
}
