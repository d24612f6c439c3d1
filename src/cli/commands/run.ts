/**
 * `scar run` (invoke a function directly: sync, async, or once per file of a bucket) and
 * `scar invoke` (call its HTTP endpoint, as SCAR calls API Gateway).
 */
import type { Command } from "commander";
import { addOutputOptions, addTargetOption, type OutputFlags, type TargetFlags } from "../options.js";

export type RunFlags = OutputFlags &
  TargetFlags & {
    name?: string;
    confFile?: string;
    runScript?: string;
    inputBucket?: string;
    eventSource?: string;
    environment: string[];
    asynchronous?: boolean;
    wait?: boolean;
    yes?: boolean;
    once?: boolean;
  };

export type InvokeFlags = TargetFlags & {
  name?: string;
  confFile?: string;
  dataBinary?: string;
  jsonData?: string;
  parameters?: string;
  asynchronous?: boolean;
  outputFile?: string;
};

const collect = (v: string, list: string[]) => [...list, v];

export function registerRun(program: Command): void {
  const run = program
    .command("run")
    .description(
      "Invoke a function: once (its output is printed), asynchronously (-a), or once per file of a bucket (-ib)",
    )
    .usage("[options] [NAME] [container args...]")
    .argument("[args...]", "NAME (without -n/-f) and then arguments for the container")
    .option("-n, --name <name>", "the function")
    .option("-f, --conf-file <fdl>", "the function of this FDL (asks which one if several)")
    .option("-s, --run-script <script>", "run this script instead of the function's")
    .option("--ib, --input-bucket <bucket[/folder]>", "invoke once per file under this path")
    .option(
      "--es, --event-source <bucket>",
      "SCAR 1.x: invoke once per file of BUCKET/input (a function without outputs puts its results in BUCKET/output)",
    )
    .option("-e, --environment <VAR=value>", "variable for this run (repeatable)", collect, [] as string[])
    .option("-a, --asynchronous", "do not wait for the result")
    .option("-o, --output-file <file>", "save the output to a file")
    .option("--wait", "with -ib: wait for every job and print a summary")
    .option("-y, --yes", "a function with an input bucket: invoke it once per file there without asking")
    .option("--once", "a function with an input bucket: invoke it once with an empty event without asking")
    .passThroughOptions();
  addTargetOption(addOutputOptions(run)).action(async (args: string[], flags: RunFlags) => {
    const { runRun } = await import("./invoke-run.js");
    await runRun(args, flags);
  });

  const invoke = program
    .command("invoke")
    .description("Call a function's HTTP endpoint (functions created with -api / api_gateway)")
    .argument("[name]", "the function (same as -n)")
    .option("-n, --name <name>", "the function")
    .option("-f, --conf-file <fdl>", "the function of this FDL")
    .option("--db, --data-binary <file>", "send this file (POST, base64 as SCAR sends it)")
    .option("--jd, --json-data <json>", "send this JSON (POST)")
    .option("-p, --parameters <json>", 'query parameters, e.g. \'{"key1": "value1", "key2": ["v2", "v3"]}\'')
    .option("-a, --asynchronous", "do not wait for the result")
    .option("-o, --output-file <file>", "save the output to a file");
  addTargetOption(invoke).action(async (name: string | undefined, flags: InvokeFlags) => {
    const { runInvoke } = await import("./invoke-run.js");
    await runInvoke(name, flags);
  });
}
