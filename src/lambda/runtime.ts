/**
 * scar's Lambda runtime: reads the function's configuration once (the init phase), then takes
 * invocations from the Runtime API one at a time and answers each (see handler.ts). A configuration
 * that cannot be read is reported to /init/error and ends the runtime, as the Runtime API asks.
 */
import { SupervisorLog } from "../supervisor/log.js";
import type { BatchSubmitter } from "./batch.js";
import { readFunctionConfig } from "./config.js";
import { handleInvocation } from "./handler.js";
import { LambdaProcessExecutor } from "./process-executor.js";
import { RuntimeApiClient, RuntimeApiError } from "./runtime-api-client.js";
import { lambdaStorage } from "./storage.js";

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  batch?: BatchSubmitter;
  /** Where request workspaces go; `/tmp` (SCAR's `/tmp/<request id>/input|output`). */
  workRoot?: string;
  /** Stop after this many invocations (tests); default: serve until the process ends. */
  invocations?: number;
  /** Where the function's logs go; default stdout, which Lambda sends to CloudWatch. */
  write?: (text: string | Buffer) => void;
}

export class InitError extends Error {}

export async function runRuntime(opts: RuntimeOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  const write = opts.write ?? ((t: string | Buffer) => process.stdout.write(t));
  const client = RuntimeApiClient.fromEnv(env);
  try {
    let config: ReturnType<typeof readFunctionConfig>;
    try {
      config = readFunctionConfig(env);
    } catch (err) {
      const message = (err as Error).message;
      new SupervisorLog("INFO", (l) => write(`${l}\n`)).error(message);
      await client.reportInitError({ errorType: "Runtime.ConfigError", errorMessage: message });
      throw new InitError(message);
    }
    const storage = lambdaStorage(config.providers, env);
    const executor = new LambdaProcessExecutor();
    try {
      for (let n = 0; opts.invocations === undefined || n < opts.invocations; n++) {
        const inv = await client.next();
        // The X-Ray header of this invocation, where the SDKs and the script look for it.
        if (inv.traceId) env._X_AMZN_TRACE_ID = inv.traceId;
        else delete env._X_AMZN_TRACE_ID;
        const outcome = await handleInvocation(inv, {
          fn: config.fn,
          storage: storage.resolve,
          executor,
          workRoot: opts.workRoot ?? "/tmp",
          env,
          ...(opts.batch ? { batch: opts.batch } : {}),
          writeLog: (line) => write(`${line}\n`),
          writeOutput: (chunk) => write(chunk),
        });
        if (outcome.kind === "error") await client.reportError(inv.requestId, outcome.report);
        else {
          try {
            await client.respond(inv.requestId, outcome.payload);
          } catch (err) {
            // Too large for Lambda (413): the invocation fails with a reason, the runtime goes on.
            if (!(err instanceof RuntimeApiError) || err.status !== 413) throw err;
            // Lambda may already have failed the invocation itself and refuse this (4xx): nothing is lost.
            await client
              .reportError(inv.requestId, {
                errorType: "Function.ResponseSizeTooLarge",
                errorMessage: "The response is larger than Lambda's 6 MB limit",
              })
              .catch((e: unknown) => {
                if (!(e instanceof RuntimeApiError) || e.status < 400 || e.status >= 500) throw e;
              });
          }
        }
      }
    } finally {
      storage.destroy();
    }
  } finally {
    await client.close();
  }
}
