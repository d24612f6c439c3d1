/**
 * lambda-batch delegation (reference/scar-behaviour.md §8): when the script of a function whose
 * execution mode is `lambda-batch` runs out of time in Lambda, the event goes to AWS Batch, to the
 * queue and job definition SCAR named after the function, and the response says so.
 *
 * The submission is behind `BatchSubmitter` so that the call to AWS is one small piece
 * (batch-aws.ts, over @aws-sdk/client-batch) and tests can record what would be sent.
 */
import type { FunctionSpec } from "../fdl/spec.js";

/** What SubmitJob is given (its `containerOverrides.environment`, as SCAR sets it). */
export interface BatchJobRequest {
  jobName: string;
  jobQueue: string;
  jobDefinition: string;
  environment: { name: string; value: string }[];
  /** the job definition is multi-node (SCAR `batch.multi_node_parallel.enabled`): override every node */
  multiNode?: boolean;
}

export interface BatchSubmitter {
  /** Submits the job; resolves to its job id. */
  submit(job: BatchJobRequest): Promise<string>;
}

export interface DelegationContext {
  fn: FunctionSpec;
  requestId: string;
  /** The event as it came to the function (JSON text). */
  rawEvent: string;
  /** The `script` of a `scar run -s` payload, base64, when the event carried one. */
  scriptB64?: string;
  memoryMB: number;
  logGroup: string;
  logStream: string;
}

/** SCAR's SubmitJob: job, queue and definition named after the function; the event and context in variables. */
export function batchJobRequest(c: DelegationContext): BatchJobRequest {
  const context = {
    function_name: c.fn.name,
    memory_limit_in_mb: c.memoryMB,
    aws_request_id: c.requestId,
    log_group_name: c.logGroup,
    log_stream_name: c.logStream,
  };
  const batch = c.fn.raw.batch as { multi_node_parallel?: { enabled?: unknown } } | undefined;
  return {
    ...(batch?.multi_node_parallel?.enabled === true ? { multiNode: true } : {}),
    jobName: c.fn.name,
    jobQueue: c.fn.name,
    jobDefinition: c.fn.name,
    environment: [
      { name: "SCRIPT", value: c.scriptB64 ?? "" },
      { name: "EVENT", value: c.rawEvent },
      { name: "CONTEXT", value: JSON.stringify(context) },
      { name: "AWS_LAMBDA_REQUEST_ID", value: c.requestId },
    ],
  };
}

/** The response body SCAR gives when it delegated a job. */
export function delegatedMessage(fn: string, jobId: string): string {
  return `Job delegated to batch.\nCheck batch logs with:\n  scar log -n ${fn} -ri ${jobId}`;
}
