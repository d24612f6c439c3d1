/** `scar ls` (functions, or a bucket's files with -b) and `scar rm` (functions; their buckets stay). */
import type { Command } from "commander";
import { addOutputOptions, addTargetOption, type OutputFlags, type TargetFlags } from "../options.js";

export type LsFlags = OutputFlags & TargetFlags & { bucket?: string; bucketFolder?: string };
export type RmFlags = OutputFlags & TargetFlags & { name?: string; all?: boolean; confFile?: string };

export function registerLs(program: Command): void {
  addTargetOption(
    addOutputOptions(
      program
        .command("ls")
        .description("List functions with their jobs, or the files of a bucket (-b)")
        .option("-b, --bucket <bucket[/folder]>", "list the files under this bucket path")
        .option("--bf, --bucket-folder <folder>", "SCAR 2.x: the folder of -b"),
    ),
  ).action(async (flags: LsFlags) => {
    const { runLs } = await import("./manage-run.js");
    await runLs(flags);
  });

  addTargetOption(
    addOutputOptions(
      program
        .command("rm")
        .description(
          "Delete functions (their buckets and files stay; scar's engine also keeps their jobs and logs: see 'scar log -n NAME')",
        )
        .option("-n, --name <name>", "the function to delete")
        .option("-a, --all", "delete every function")
        .option("-f, --conf-file <fdl>", "delete every function of this FDL"),
    ),
  ).action(async (flags: RmFlags) => {
    const { runRm } = await import("./manage-run.js");
    await runRm(flags);
  });
}
