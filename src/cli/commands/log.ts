/** `scar log`: a function's logs (every job's, one stream's, or one request's), or follow new ones. */
import type { Command } from "commander";
import { addTargetOption, type TargetFlags } from "../options.js";

export type LogFlags = TargetFlags & {
  name?: string;
  confFile?: string;
  logStreamName?: string;
  requestId?: string;
  follow?: boolean;
};

export function registerLog(program: Command): void {
  addTargetOption(
    program
      .command("log")
      .description(
        "Show the logs of a function: every invocation's, one log stream's (-ls) or one request's (-ri)",
      )
      .argument("[name]", "the function (SCAR 1.x syntax; same as -n)")
      .option("-n, --name <name>", "the function")
      .option("-f, --conf-file <fdl>", "the function of this FDL")
      .option("--ls, --log-stream-name <stream>", "only this log stream")
      .option("--ri, --request-id <id>", "only this request (and the batch job it was delegated to)")
      .option("--follow", "keep printing the logs of new invocations until Ctrl-C"),
  ).action(async (name: string | undefined, flags: LogFlags) => {
    const { runLog } = await import("./log-run.js");
    await runLog(name, flags);
  });
}
