/**
 * Option groups shared by the target commands (SCAR's "parent parsers"). Kept apart from
 * context.ts so registering commands loads nothing heavy: `scar --version` stays fast.
 */
import type { Command } from "commander";

export interface TargetFlags {
  target?: string;
  profile?: string;
}

export interface OutputFlags {
  json?: boolean;
  verbose?: boolean;
  outputFile?: string;
}

export function addTargetOption(cmd: Command): Command {
  return cmd
    .option(
      "--target <target>",
      "where to act: local (the embedded engine) or oscar:<cluster> (default: $SCAR_TARGET, else scar.cfg scar.target, else local)",
    )
    .option("--pf, --profile <profile>", "AWS profile to use (aws target)");
}

export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option("-j, --json", "print the result as JSON documents")
    .option("-v, --verbose", "print the complete answers of the target as JSON");
}
