/** `scar init` (create functions) and `scar update` (change them), with SCAR's flags. */
import type { Command } from "commander";
import { addFunctionDefOptions, type FunctionDefFlags } from "../function-flags.js";
import { addOutputOptions, addTargetOption, type OutputFlags, type TargetFlags } from "../options.js";

export type InitFlags = FunctionDefFlags &
  OutputFlags &
  TargetFlags & {
    confFile?: string;
  };

export function registerInit(program: Command): void {
  const init = program
    .command("init")
    .description(
      "Create functions: from an image (-i, or IMAGE as SCAR 1.x took it), an image file, or an FDL",
    )
    .argument("[image]", "container image (SCAR 1.x syntax; same as -i)")
    .option("-i, --image <image>", "container image, e.g. grycap/cowsay")
    .option("--if, --image-file <file>", "image from a `docker save` tarball")
    .option(
      "-f, --conf-file <fdl>",
      "function definition file (YAML): creates every function in it, all or nothing",
    )
    .option(
      "-n, --name <name>",
      "function name (default from the image: scar-<image parts>); with -f of several functions, create only that one",
    )
    .option("-s, --init-script <script>", "script run at every invocation")
    .option("--ph, --preheat", "invoke the function once after creating it")
    .option("--ep, --extra-payload <folder>", "folder of files shipped with the function (aws target)")
    .option("--db, --deployment-bucket <bucket>", "bucket of the deployment package (aws target)")
    .option("--api, --api-gateway-name <name>", "give the function an HTTP endpoint (see scar invoke)");
  addTargetOption(addOutputOptions(addFunctionDefOptions(init))).action(
    async (image: string | undefined, flags: InitFlags) => {
      const { runInit } = await import("./deploy-run.js");
      await runInit(image, flags);
    },
  );

  const update = program
    .command("update")
    .description("Change deployed functions: redeploy from an FDL (-f), or change some settings of one (-n)")
    .option("-n, --name <name>", "the function to change (with -f of several functions: only that one)")
    .option(
      "-f, --conf-file <fdl>",
      "redeploy the functions of this FDL, all or nothing (jobs and logs are kept)",
    )
    .option("-i, --image <image>", "new container image")
    .option("-s, --init-script <script>", "new script run at every invocation");
  addTargetOption(addOutputOptions(addFunctionDefOptions(update))).action(async (flags: InitFlags) => {
    const { runUpdate } = await import("./deploy-run.js");
    await runUpdate(flags);
  });
}
