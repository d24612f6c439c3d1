/** `scar serve`: the embedded engine in the foreground (object store, job system, containers, HTTP API). */
import type { Command } from "commander";

export interface ServeOptions {
  dataDir?: string;
  host: string;
  port: string;
  s3Port: string;
  concurrency?: string;
  insecureRegistry: string[];
  storeReserve?: string;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "Run the local engine in the foreground: object store, job queue, containers and the OSCAR-compatible API",
    )
    .option(
      "--data-dir <dir>",
      "the engine's data folder (default: scar.cfg local.data_dir, $SCAR_DATA_DIR or ~/.scar/data)",
    )
    .option("--host <host>", "address to listen on (loopback unless you say otherwise)", "127.0.0.1")
    .option("--port <port>", "port of the HTTP API (0 picks a free one)", "8080")
    .option("--s3-port <port>", "port of the S3-compatible object store (0 picks a free one)", "9000")
    .option("--concurrency <n>", "jobs running at once (default: the number of cores)")
    .option(
      "--store-reserve <size>",
      "free space the object store's uploads must leave: 64MiB, 500M, 1% (default: 64MiB, or 1% of a smaller disk)",
    )
    .option(
      "--insecure-registry <host:port>",
      "a registry reached over plain HTTP or with an unverified certificate (repeatable)",
      (v: string, list: string[]) => [...list, v],
      [] as string[],
    )
    .action(async (opts: ServeOptions) => {
      const { runServe } = await import("./serve-run.js");
      await runServe(opts);
    });
}
