/**
 * One invocation inside Lambda: the event from the Runtime API through the platform-neutral
 * supervisor (src/supervisor), and what goes back to the Runtime API.
 *
 * What goes back:
 * - success: SCAR's API-Gateway-shaped response (statusCode 200, the script's output in base64);
 * - the script ran out of time (deadline - timeout_threshold): what it wrote is uploaded first, then
 *   in `lambda-batch` mode the event is delegated to AWS Batch and the response says so (SCAR's
 *   message); otherwise an error whose message is SCAR's "Container timeout expired.\nContainer
 *   execution stopped.";
 * - any other failure (the script's exit code, stage-in/out, an unreadable event): an error report,
 *   so that Lambda marks the invocation failed and retries asynchronous ones (faas-supervisor answered
 *   200 to a failed script; scar's engine fails the job, and so does this).
 * In `batch` mode nothing runs here: the event goes to Batch at once.
 */
import type { FunctionSpec } from "../fdl/spec.js";
import type { StorageResolver } from "../storage/types.js";
import { SupervisorLog } from "../supervisor/log.js";
import { lambdaResponse } from "../supervisor/response.js";
import { invoke } from "../supervisor/supervisor.js";
import type { Executor } from "../supervisor/types.js";
import { type BatchSubmitter, batchJobRequest, delegatedMessage } from "./batch.js";
import type { Invocation, RuntimeErrorReport } from "./runtime-api-client.js";

export const TIMEOUT_MESSAGE = "Container timeout expired.\nContainer execution stopped.";

export type Outcome = { kind: "response"; payload: unknown } | { kind: "error"; report: RuntimeErrorReport };

export interface HandlerContext {
  fn: FunctionSpec;
  storage: StorageResolver;
  executor: Executor;
  /** Where `<request id>/input|output` are made: `/tmp` in Lambda. */
  workRoot: string;
  /** The function's environment (Lambda's variables: region, credentials, log names...). */
  env: NodeJS.ProcessEnv;
  batch?: BatchSubmitter;
  /** Each log line, and the script's output as produced: the function's stdout, i.e. its logs. */
  writeLog: (line: string) => void;
  writeOutput: (chunk: Buffer) => void;
  now?: () => number;
}

/** Variables of the runtime itself that the user's script has no business seeing. */
const RUNTIME_ONLY = ["AWS_LAMBDA_RUNTIME_API", "SCAR_FUNCTION_CONFIG", "NODE_OPTIONS", "FDL"];

export async function handleInvocation(inv: Invocation, ctx: HandlerContext): Promise<Outcome> {
  const now = ctx.now ?? Date.now;
  const fn = ctx.fn;
  const log = new SupervisorLog(fn.log_level, ctx.writeLog);
  const logGroup = ctx.env.AWS_LAMBDA_LOG_GROUP_NAME || `/aws/lambda/${fn.name}`;
  const logStream = ctx.env.AWS_LAMBDA_LOG_STREAM_NAME || inv.requestId;
  const rawEvent = inv.event.toString("utf8");
  log.info("SUPERVISOR: Initializing AWS Lambda supervisor");

  const delegate = async (): Promise<Outcome | undefined> => {
    if (!ctx.batch) {
      log.error(
        "The job cannot be delegated to AWS Batch: this function was built without a Batch client (@aws-sdk/client-batch)",
      );
      return undefined;
    }
    const request = batchJobRequest({
      fn,
      requestId: inv.requestId,
      rawEvent,
      ...scriptOf(rawEvent),
      memoryMB: Number(ctx.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) || fn.memory,
      logGroup,
      logStream,
    });
    let jobId: string;
    try {
      jobId = await ctx.batch.submit(request);
    } catch (err) {
      log.error(`Submitting the AWS Batch job failed: ${(err as Error).message}`);
      return undefined;
    }
    const message = delegatedMessage(fn.name, jobId);
    // SCAR's log has it on three lines, like the response
    log.infoLines(message);
    return {
      kind: "response",
      payload: lambdaResponse({
        fn: fn.name,
        requestId: inv.requestId,
        logStream,
        ok: true,
        body: Buffer.from(message),
      }),
    };
  };

  if (fn.execution_mode === "batch") {
    const done = await delegate();
    return done ?? errorOutcome("BatchDelegationError", "The event could not be delegated to AWS Batch");
  }

  // SCAR's rule: the script gets the whole seconds left before the deadline, minus the threshold.
  const remaining = Math.max(1, Math.floor((inv.deadlineMs - now()) / 1000));
  const platformEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env))
    if (v !== undefined && !RUNTIME_ONLY.includes(k) && !(k in fn.environment)) platformEnv[k] = v;
  if (inv.traceId) platformEnv._X_AMZN_TRACE_ID = inv.traceId;
  else delete platformEnv._X_AMZN_TRACE_ID;

  let result: Awaited<ReturnType<typeof invoke>>;
  try {
    result = await invoke({
      fn: { ...fn, timeout: remaining },
      event: inv.event,
      requestId: inv.requestId,
      executor: ctx.executor,
      storage: ctx.storage,
      workRoot: ctx.workRoot,
      queue: "lambda",
      platformEnv,
      logStream,
      onLog: ctx.writeLog,
      onOutput: ctx.writeOutput,
    });
  } catch (err) {
    // What the supervisor does not turn into a result (the workspace cannot be made in /tmp, ...)
    // fails this invocation, not the runtime: the next one may find /tmp in order.
    const message = (err as Error).message ?? String(err);
    log.error(`The invocation failed: ${message}`);
    return errorOutcome("Runtime.UnhandledError", message);
  }

  switch (result.reason) {
    case "ok":
      return { kind: "response", payload: result.response };
    case "timeout": {
      log.warning(TIMEOUT_MESSAGE);
      if (fn.execution_mode === "lambda-batch") {
        const done = await delegate();
        if (done) return done;
      }
      return errorOutcome("ContainerTimeoutExpiredWarning", TIMEOUT_MESSAGE);
    }
    case "script-error":
      return errorOutcome("UserScriptError", `User script exited with code ${result.exitCode}!`);
    case "start-error":
      return errorOutcome("ScriptStartError", result.detail ?? "The script could not be started");
    case "stage-error":
      return errorOutcome("StorageError", result.detail ?? "Staging the files failed");
    case "event-error":
      return errorOutcome("EventError", result.detail ?? "The event could not be read");
    case "oom":
      return errorOutcome("OutOfMemory", result.detail ?? "The script ran out of memory");
    case "disk":
      return errorOutcome("DiskFull", result.detail ?? "The script filled the function's disk");
  }
}

function errorOutcome(errorType: string, errorMessage: string): Outcome {
  return { kind: "error", report: { errorType, errorMessage } };
}

/** The base64 script of a `scar run -s` payload, which SCAR passes on to the Batch job. */
function scriptOf(raw: string): { scriptB64?: string } {
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v === "object" && v !== null && typeof (v as { script?: unknown }).script === "string")
      return { scriptB64: (v as { script: string }).script };
  } catch {
    // not JSON: no script
  }
  return {};
}
