/** `scar validate -f FILE [--json]`: check an FDL and show the functions as scar understood them. */
import type { Command } from "commander";

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("Check a function definition file (FDL) and print the functions it defines")
    .requiredOption("-f, --conf-file <file>", "the FDL file (YAML) to check")
    .option("-j, --json", "print one JSON document: the normalized functions and warnings, or the errors")
    .option(
      "--target <target>",
      "check with the rules of this target, as scar init would (default: $SCAR_TARGET, else scar.cfg scar.target, else local)",
    )
    .addHelpText(
      "after",
      `
Checks every function in the file after merging it with scar.cfg, reports each problem with its
file, line, column and key, and exits 1 if there is any error (warnings alone exit 0).

Example FDL:
  functions:
    aws:
    - lambda:
        name: scar-imagemagick
        init_script: grayify-image.sh
        container:
          image: grycap/imagemagick
        input:
        - storage_provider: s3
          path: scar-imagemagick/input
        output:
        - storage_provider: s3
          path: scar-imagemagick/output`,
    )
    .action(async (opts: { confFile: string; json?: boolean; target?: string }) => {
      const { runValidate } = await import("./validate-run.js");
      process.exitCode = runValidate(opts.confFile, Boolean(opts.json), opts.target);
    });
}
