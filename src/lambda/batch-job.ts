/**
 * Binary mode: the same runtime as one AWS Batch job, the way SCAR's job definitions run
 * faas-supervisor (`echo $EVENT | supervisor`, reference/scar-behaviour.md §8): the event comes on
 * stdin (else from `$EVENT`), the configuration from `$FUNCTION_CONFIG` (or the files config.ts
 * knows), the script from `$SCRIPT` (base64; else the configuration's init_script). The script runs
 * without a time limit, as Batch jobs do. The logs go to stdout; the exit status is 0 when the
 * invocation succeeded, 1 otherwise, so that Batch marks the job as it went.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SupervisorLog } from "../supervisor/log.js";
import { invoke } from "../supervisor/supervisor.js";
import { readFunctionConfig } from "./config.js";
import { LambdaProcessExecutor } from "./process-executor.js";
import { lambdaStorage } from "./storage.js";

export interface BatchJobOptions {
  env?: NodeJS.ProcessEnv;
  /** The event (stdin's content); empty: `$EVENT`, else `{}`. */
  event: Buffer;
  workRoot?: string;
  write?: (text: string | Buffer) => void;
}

/** Runs one job; resolves to the process's exit status. */
export async function runBatchJob(opts: BatchJobOptions): Promise<number> {
  const env = opts.env ?? process.env;
  const write = opts.write ?? ((t: string | Buffer) => process.stdout.write(t));
  const log = new SupervisorLog(env.LOG_LEVEL || "INFO", (l) => write(`${l}\n`));
  const scriptDir = env.SCRIPT ? mkdtempSync(join(tmpdir(), "scar-batch-script-")) : undefined;
  try {
    let script: string | undefined;
    if (scriptDir) {
      script = join(scriptDir, "script.sh");
      writeFileSync(script, Buffer.from(env.SCRIPT!, "base64"));
    }
    let config: ReturnType<typeof readFunctionConfig>;
    try {
      config = readFunctionConfig(env, script ? { script } : {});
    } catch (err) {
      log.error((err as Error).message);
      return 1;
    }
    log.info("SUPERVISOR: Initializing AWS Batch supervisor");
    const event = opts.event.length > 0 ? opts.event : Buffer.from(env.EVENT || "{}");
    const storage = lambdaStorage(config.providers, env);
    try {
      const platformEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(env))
        if (
          v !== undefined &&
          !["SCRIPT", "FUNCTION_CONFIG", "FDL"].includes(k) &&
          !(k in config.fn.environment)
        )
          platformEnv[k] = v;
      const result = await invoke({
        fn: config.fn,
        event,
        ...(env.AWS_LAMBDA_REQUEST_ID ? { requestId: env.AWS_LAMBDA_REQUEST_ID } : {}),
        executor: new LambdaProcessExecutor(),
        storage: storage.resolve,
        workRoot: opts.workRoot ?? "/tmp",
        queue: "batch",
        platformEnv,
        onLog: (l) => write(`${l}\n`),
        onOutput: (c) => write(c),
      });
      if (result.reason === "script-error") log.error(`User script exited with code ${result.exitCode}!`);
      return result.reason === "ok" ? 0 : 1;
    } finally {
      storage.destroy();
    }
  } finally {
    if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  }
}
