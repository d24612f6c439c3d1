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

/** The help heading of the flags that act only on the AWS target. */
export const AWS_ONLY_HEADING = "Options for the aws target (not built yet):";

/**
 * Moves the flags that only make sense on AWS (their description says "aws target") under their
 * own heading of every command's help, so the flags that work here come first and alone. The
 * description loses the words the heading now says.
 */
export function groupAwsOnlyOptions(cmd: Command): void {
  for (const o of cmd.options) {
    if (!/\baws target\b/.test(o.description)) continue;
    o.description = o.description
      .replace(/ \(aws target\)$/, "")
      .replace(/\(aws target; /, "(")
      .replace(/ \(aws target\)/, "");
    o.helpGroup(AWS_ONLY_HEADING);
  }
  for (const c of cmd.commands) groupAwsOnlyOptions(c);
}
