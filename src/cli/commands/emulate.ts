/**
 * `scar emulate -f FDL [-n NAME] [--s3 BUCKET/KEY | --api-event FILE | --api-body FILE | -p JSON]`:
 * runs a function's Lambda image on this machine before it is deployed, as `sam local invoke` does.
 * The image is built as `scar init` would build it for AWS (lambda/image/builder.ts; the same inputs
 * give the same image, so a rebuild is quick), run by scar's container runtime in the Lambda emulator
 * (lambda/emulator/image-runtime.ts) with the function's memory and timeout, and sent one event:
 * - `--s3 BUCKET/KEY`: an S3 ObjectCreated event for that object of the local engine's store (started
 *   if it is not running);
 * - `--api-event FILE`: an API Gateway proxy event as written; `--api-body FILE`: a POST proxy event
 *   carrying the file base64-encoded (as `scar invoke -db` sends it);
 * - `-p JSON`: a direct payload (default `{}`).
 * Whatever the event, a running local engine's store is the function's S3: AWS_ENDPOINT_URL and a key
 * pair the engine lends for the run (POST /system/store-keys), limited as a deployed function's is to
 * the function's buckets there (and the --s3 event's bucket), returned at the end, else expired.
 * Prints the function's logs (START ... REPORT) on stderr and its output on stdout; `--json` prints one
 * document with both.
 */
import type { Command } from "commander";

export interface EmulateFlags {
  confFile: string;
  name?: string;
  s3?: string;
  apiEvent?: string;
  apiBody?: string;
  payload?: string;
  timeout?: string;
  dataDir?: string;
  json?: boolean;
}

export function registerEmulate(program: Command): void {
  program
    .command("emulate")
    .description("Run a function's AWS Lambda image here, in a local Lambda emulator, on one event")
    .requiredOption("-f, --conf-file <fdl>", "the FDL file of the function")
    .option("-n, --name <name>", "the function (when the FDL has several)")
    .option("--s3 <bucket/key>", "send an S3 event for this object of the local engine's store")
    .option("--api-event <file>", "send this API Gateway proxy event (JSON)")
    .option("--api-body <file>", "send an API Gateway POST event with this file as its body")
    .option("-p, --payload <json>", "send this payload (default {})")
    .option("-t, --timeout <seconds>", "the function's timeout (default: the FDL's)")
    .option(
      "--data-dir <dir>",
      "the engine's data folder (default: scar.cfg local.data_dir, $SCAR_DATA_DIR or ~/.scar/data)",
    )
    .option("--json", "print one JSON document: the response and the logs")
    .action(async (flags: EmulateFlags) => {
      const { runEmulate } = await import("./emulate-run.js");
      await runEmulate(flags);
    });
}
