/**
 * The BatchSubmitter over AWS Batch (@aws-sdk/client-batch): SCAR's SubmitJob (reference/
 * scar-behaviour.md §8), the event and context in `containerOverrides.environment`, or, for a
 * multi-node job definition, in `nodeOverrides` for every node (`targetNodes: "0:"`).
 *
 * The function loads the client only when a job is really submitted: most invocations never
 * delegate, and the SDK client costs start-up time in every cold start otherwise.
 */
import type { BatchClient, SubmitJobCommandInput } from "@aws-sdk/client-batch";
import type { BatchJobRequest, BatchSubmitter } from "./batch.js";

/** SubmitJob's input for a request: what SCAR's supervisor sends. */
export function submitJobInput(job: BatchJobRequest): SubmitJobCommandInput {
  const base = { jobName: job.jobName, jobQueue: job.jobQueue, jobDefinition: job.jobDefinition };
  if (job.multiNode)
    return {
      ...base,
      nodeOverrides: {
        nodePropertyOverrides: [{ targetNodes: "0:", containerOverrides: { environment: job.environment } }],
      },
    };
  return { ...base, containerOverrides: { environment: job.environment } };
}

export class AwsBatchSubmitter implements BatchSubmitter {
  private client: Promise<BatchClient> | undefined;

  /** `client` for tests and callers with their own; else one made from the function's environment. */
  constructor(client?: BatchClient) {
    if (client) this.client = Promise.resolve(client);
  }

  private batch(): Promise<BatchClient> {
    // the region and the role's credentials come from Lambda's environment (the SDK's default chain)
    this.client ??= import("@aws-sdk/client-batch").then((m) => new m.BatchClient({}));
    return this.client;
  }

  async submit(job: BatchJobRequest): Promise<string> {
    const client = await this.batch();
    const { SubmitJobCommand } = await import("@aws-sdk/client-batch");
    const out = await client.send(new SubmitJobCommand(submitJobInput(job)));
    if (!out.jobId) throw new Error(`AWS Batch accepted job ${job.jobName} but returned no job id`);
    return out.jobId;
  }
}
