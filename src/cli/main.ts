/**
 * The scar command line. Each command lives in src/cli/commands/<name>.ts and registers its flags
 * here; the heavy work of a command is imported only when that command runs, so `scar --version`
 * and `scar --help` stay fast.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import { registerAwsPolicy } from "./commands/aws-policy.js";
import { registerCompletion } from "./commands/completion.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerEmulate } from "./commands/emulate.js";
import { registerEngine } from "./commands/engine.js";
import { registerImage } from "./commands/image.js";
import { registerInit } from "./commands/init.js";
import { registerJobs } from "./commands/jobs.js";
import { registerLog } from "./commands/log.js";
import { registerLs } from "./commands/ls.js";
import { registerPut } from "./commands/put.js";
import { registerRun } from "./commands/run.js";
import { registerServe } from "./commands/serve.js";
import { registerStore } from "./commands/store.js";
import { registerValidate } from "./commands/validate.js";
import { CliError } from "./errors.js";
import { groupAwsOnlyOptions } from "./options.js";
import { closePrompts } from "./prompt.js";
import { rewriteScarFlags, scarOptionTerm } from "./scar-flags.js";

// The AWS SDK warns every run that its 2027 releases will need Node 22. That is for us (package.json
// pins the SDK), not for the person at the terminal.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export function buildProgram(): Command {
  const program = new Command("scar")
    .description("Run container images as serverless, event-driven file-processing functions")
    .version(`scar ${VERSION}`, "-V, --version", "print the version and exit")
    .addHelpText("after", "\nRun 'scar COMMAND --help' for more information on a command.")
    .showHelpAfterError("(run 'scar --help' for usage)")
    .enablePositionalOptions()
    .configureHelp({ optionTerm: scarOptionTerm })
    // before the commands are added, which inherit it: a usage error of any command ends in main()
    // (exit code 2), not in commander's process.exit(1)
    .exitOverride();
  // SCAR's commands first, in SCAR's order; then scar's own.
  registerInit(program);
  registerRun(program); // run, invoke
  registerLs(program); // ls, rm
  registerLog(program);
  registerPut(program); // put, get
  registerJobs(program);
  registerEngine(program);
  registerServe(program);
  registerValidate(program);
  registerDoctor(program);
  registerStore(program);
  registerImage(program);
  registerEmulate(program);
  registerAwsPolicy(program);
  registerCompletion(program);
  groupAwsOnlyOptions(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // `scar ls | head`: a closed pipe ends the command quietly, as for any Unix tool.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(rewriteScarFlags(program, argv), { from: "user" }).finally(closePrompts);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit with 0; a wrong command line (already printed by commander) with 2,
      // as SCAR's argparse and most Unix tools do
      return err.exitCode === 0 ? 0 : 2;
    }
    // Errors of the target layer (an unknown target, an unreachable API ...) carry their own
    // message and hint whichever command met them. Loaded only now: `scar --version` stays fast.
    const known = err instanceof CliError ? err : (await import("./context.js")).cliErrorOf(err);
    if (known instanceof CliError) {
      process.stderr.write(`error: ${known.message}\n`);
      if (known.hint) process.stderr.write(`hint: ${known.hint}\n`);
      return known.exitCode;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e?.message ?? String(err)}\n`);
    if (process.env.SCAR_DEBUG) process.stderr.write(`${e?.stack ?? ""}\n`);
    else process.stderr.write("hint: set SCAR_DEBUG=1 to see the stack trace\n");
    return 1;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
