/**
 * `scar store serve`: the embedded S3-compatible object store in the foreground; `scar store fsck`
 * and `scar store repair`: check and repair a data dir no store is running on. The store module is
 * imported only when a command runs, so other commands start fast.
 */
import type { Command } from "commander";
import { CliError } from "../errors.js";

interface ServeOptions {
  dataDir: string;
  host: string;
  port: string;
  accessKey?: string;
  secretKey?: string;
  credentialsFile?: string;
  region: string;
  eventLog?: string;
  reserve?: string;
}

export function registerStore(program: Command): void {
  const store = program.command("store").description("the embedded S3-compatible object store");
  store
    .command("serve")
    .description("run the object store in the foreground until interrupted")
    .requiredOption("--data-dir <dir>", "folder holding the buckets (created if missing)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0 picks a free one)", "9000")
    .option("--access-key <key>", "access key id clients sign with (default: scar)")
    .option("--secret-key <secret>", "secret access key (default: scar-secret-key)")
    .option(
      "--credentials-file <file>",
      "more users and key pairs: an AWS credentials file, one [profile] per key pair (see the store README)",
    )
    .option("--region <region>", "region reported to clients and in events", "us-east-1")
    .option(
      "--event-log <file>",
      "append each bucket notification as a JSON line, on disk before the upload is acknowledged",
    )
    .option(
      "--reserve <size>",
      "free space uploads must leave on the disk: bytes (64MiB, 500M, 0) or a share (1%) (default: 64MiB, or 1% of a smaller disk)",
    )
    .action(async (opts: ServeOptions) => {
      const port = Number(opts.port);
      let reserve: import("../../engine/store/space.js").SpaceReserve | undefined;
      if (opts.reserve !== undefined) {
        const { parseReserve } = await import("../../engine/store/space.js");
        try {
          reserve = parseReserve(opts.reserve);
        } catch (e) {
          throw new CliError(`--reserve: ${(e as Error).message}`, 2);
        }
      }
      if (!/^\d+$/.test(opts.port) || port > 65535) throw new CliError(`invalid --port "${opts.port}"`, 2);
      if ((opts.accessKey === undefined) !== (opts.secretKey === undefined)) {
        throw new CliError(
          "--access-key and --secret-key go together",
          2,
          "give both, or neither to use the defaults",
        );
      }
      const { openPrivateDataDir } = await import("../data-dir.js");
      await openPrivateDataDir(opts.dataDir);
      const { startStore, DEFAULT_CREDENTIALS } = await import("../../engine/store/index.js");
      const given =
        opts.accessKey !== undefined
          ? [{ accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey! }]
          : [];
      if (opts.credentialsFile !== undefined) {
        const { readCredentialsFile } = await import("../../engine/store/credentials-file.js");
        try {
          given.push(...readCredentialsFile(opts.credentialsFile));
        } catch (e) {
          throw new CliError(`--credentials-file: ${(e as Error).message}`, 2);
        }
      }
      const credentials = given.length > 0 ? given : [DEFAULT_CREDENTIALS];
      let onCommit: import("../../engine/store/index.js").CommitHook | undefined;
      let log: import("node:fs/promises").FileHandle | undefined;
      if (opts.eventLog) {
        const { open } = await import("node:fs/promises");
        log = await open(opts.eventLog, "a");
        const fh = log;
        onCommit = async (events) => {
          await fh.appendFile(events.map((e) => `${JSON.stringify(e)}\n`).join(""));
          await fh.datasync();
        };
      }
      let running: Awaited<ReturnType<typeof startStore>>;
      try {
        running = await startStore({
          dataDir: opts.dataDir,
          host: opts.host,
          port,
          credentials,
          region: opts.region,
          onCommit,
          ...(reserve ? { reserve } : {}),
          log: (m) => process.stderr.write(`scar store: ${m}\n`),
        });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === "EADDRINUSE")
          throw new CliError(
            `port ${port} on ${opts.host} is in use`,
            1,
            "pick another --port, or 0 for a free one",
          );
        throw new CliError(`cannot start the store: ${err.message}`);
      }
      process.stdout.write(
        `scar store listening on ${running.url} (data dir ${opts.dataDir}, ${credentials.length === 1 ? `access key ${credentials[0]!.accessKeyId}` : `${credentials.length} key pairs`})\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await running.close();
      await log?.close();
    });
  store
    .command("fsck")
    .description("check a data dir: journal damage, objects whose file is gone, files no object points to")
    .requiredOption("--data-dir <dir>", "the store's data folder (no store may be running on it)")
    .option("-j, --json", "print the report as one JSON document")
    .addHelpText(
      "after",
      "\nReads only. Exits 0 when the data dir is clean, 1 when it needs `scar store repair`.",
    )
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const { runFsck } = await import("./store-check.js");
      process.exitCode = await runFsck(opts.dataDir, Boolean(opts.json));
    });
  store
    .command("repair")
    .description(
      "repair a data dir: keep its journal aside, drop damaged lines, rebuild the index from the files",
    )
    .requiredOption("--data-dir <dir>", "the store's data folder (no store may be running on it)")
    .option("-j, --json", "print the report as one JSON document")
    .addHelpText(
      "after",
      `
Copies the journal to .scar-store/journal.before-repair-<time> first, then writes a journal of every
intact record plus what the disk says: files under <bucket>/ that no object points to become objects
again (key = their path), bucket folders become buckets, objects whose file is gone are forgotten,
and files whose key cannot be known are moved to .scar-store/lost+found/.`,
    )
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const { runRepair } = await import("./store-check.js");
      process.exitCode = await runRepair(opts.dataDir, Boolean(opts.json));
    });
}
