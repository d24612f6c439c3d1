/**
 * `scar put` (upload a file or a folder's files, sub-folders kept) and `scar get` (download a bucket
 * path's files): parallel, large files in multipart parts, progress on a terminal.
 */
import type { Command } from "commander";
import { addTargetOption, type TargetFlags } from "../options.js";

export type TransferFlags = TargetFlags & {
  bucket: string;
  bucketFolder?: string;
  path: string;
  json?: boolean;
  overwrite?: boolean;
};

export function registerPut(program: Command): void {
  addTargetOption(
    program
      .command("put")
      .description("Upload a file, or every file under a folder (sub-folders kept), to a bucket path")
      .requiredOption("-b, --bucket <bucket[/folder]>", "where to upload (created if missing)")
      .requiredOption("-p, --path <path>", "the file or folder to upload")
      .option("--bf, --bucket-folder <folder>", "SCAR 2.x: the folder of -b")
      .option("-j, --json", "print what was uploaded as JSON"),
  ).action(async (flags: TransferFlags) => (await import("./put-run.js")).runPut(flags));

  addTargetOption(
    program
      .command("get")
      .description("Download every file under a bucket path into a folder (as <folder>/<key>)")
      .requiredOption("-b, --bucket <bucket[/folder]>", "what to download")
      .requiredOption("-p, --path <folder>", "where to put the files")
      .option("--bf, --bucket-folder <folder>", "SCAR 2.x: the folder of -b")
      .option("--overwrite", "replace local files that already exist (they are kept otherwise)")
      .option("-j, --json", "print what was downloaded as JSON"),
  ).action(async (flags: TransferFlags) => (await import("./put-run.js")).runGet(flags));
}
