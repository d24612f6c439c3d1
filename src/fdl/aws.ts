/** A SCAR `functions.aws[]` entry (already merged with scar.cfg) to a FunctionSpec. */
import type { z } from "zod";
import {
  engineSettings,
  environment,
  error,
  existingFile,
  type FunctionContext,
  logLevel,
  outputPaths,
  storagePaths,
} from "./common.js";
import { nameProblem } from "./names.js";
import { memoryToMiB } from "./quantities.js";
import { awsFunctionSchema } from "./schema.js";
import type { ExecutionMode, FunctionSpec } from "./spec.js";
import { zodIssueMessage } from "./zod-messages.js";

const LAMBDA_MEMORY = { min: 128, max: 10240 };
const LAMBDA_TIMEOUT = { min: 1, max: 900 };
const ARCHITECTURES = ["x86_64", "arm64"];
const COMPUTE_TYPES = ["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"];

type AwsEntry = z.infer<typeof awsFunctionSchema>;

export function normalizeAwsFunction(merged: unknown, ctx: FunctionContext): FunctionSpec | undefined {
  const parsed = awsFunctionSchema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      error(ctx, issue.path as (string | number)[], zodIssueMessage(issue));
    return undefined;
  }
  const entry: AwsEntry = parsed.data;
  const l = entry.lambda;
  const before = ctx.issues.filter((i) => i.severity === "error").length;

  const badName = nameProblem(l.name, ctx.nameRule ?? "lambda", true);
  if (badName) error(ctx, ["lambda", "name"], badName);

  const mode = (l.execution_mode ?? "lambda") as ExecutionMode;
  const lambdaRuns = mode !== "batch";

  const memory = memoryToMiB(l.memory ?? 512, true);
  if (memory === undefined) {
    error(
      ctx,
      ["lambda", "memory"],
      `memory ${JSON.stringify(l.memory)} is not an amount of memory: set a whole number of MB from ${LAMBDA_MEMORY.min} to ${LAMBDA_MEMORY.max}, or an amount such as 1Gi`,
    );
  } else if (!Number.isInteger(memory) || memory < LAMBDA_MEMORY.min || memory > LAMBDA_MEMORY.max) {
    error(
      ctx,
      ["lambda", "memory"],
      `memory ${JSON.stringify(l.memory)} is out of range: set a whole number of MB from ${LAMBDA_MEMORY.min} to ${LAMBDA_MEMORY.max}`,
    );
  }

  // Also in batch mode: the Lambda function that hands events to the batch queue keeps this timeout.
  const timeout = l.timeout ?? 300;
  if (!Number.isInteger(timeout) || timeout < LAMBDA_TIMEOUT.min || timeout > LAMBDA_TIMEOUT.max) {
    error(
      ctx,
      ["lambda", "timeout"],
      `timeout ${timeout} is out of range: set a whole number of seconds from ${LAMBDA_TIMEOUT.min} to ${LAMBDA_TIMEOUT.max} (Lambda's limit), or use execution_mode: batch for longer jobs (batch jobs have no timeout)`,
    );
  }

  // Reported where it was written: the alias lambda.timeout_threshold, or container.timeout_threshold.
  const threshold = l.container?.timeout_threshold ?? l.timeout_threshold ?? 10;
  const thresholdPath =
    l.timeout_threshold !== undefined && l.timeout_threshold === threshold
      ? ["lambda", "timeout_threshold"]
      : ["lambda", "container", "timeout_threshold"];
  if (!Number.isInteger(threshold) || threshold < 0) {
    error(ctx, thresholdPath, `timeout_threshold ${threshold} must be a whole number of seconds, 0 or more`);
  } else if (lambdaRuns && Number.isInteger(timeout) && threshold >= timeout) {
    error(
      ctx,
      thresholdPath,
      `timeout_threshold (${threshold} s) must be smaller than timeout (${timeout} s): the script is stopped ${threshold} s before the timeout to leave time for uploading outputs`,
    );
  }

  for (const [i, arch] of (l.architectures ?? ["x86_64"]).entries()) {
    if (!ARCHITECTURES.includes(arch)) {
      error(
        ctx,
        ["lambda", "architectures", i],
        `architecture '${arch}' is not one of ${ARCHITECTURES.join(", ")}`,
      );
    }
  }
  if ((l.architectures?.length ?? 1) !== 1) {
    error(ctx, ["lambda", "architectures"], "give exactly one architecture (x86_64 or arm64)");
  }

  const image = l.container?.image;
  const imageFile = existingFile(ctx, ["lambda", "container", "image_file"], l.container?.image_file);
  if (!image && !l.container?.image_file) {
    error(
      ctx,
      ["lambda", "container"],
      "no container image: set lambda.container.image (e.g. grycap/cowsay) or lambda.container.image_file (a `docker save` tarball)",
    );
  }
  if (image !== undefined && /\s/.test(image))
    error(ctx, ["lambda", "container", "image"], `image '${image}' contains spaces`);

  const script = existingFile(ctx, ["lambda", "init_script"], l.init_script);
  const runScript = existingFile(ctx, ["lambda", "run_script"], l.run_script);

  const batch = entry.batch ?? {};
  const vcpus = batch.vcpus ?? 1;
  const batchMemory = batch.memory ?? 1024;
  if (!Number.isInteger(vcpus) || vcpus < 1)
    error(ctx, ["batch", "vcpus"], `vcpus ${vcpus} must be a whole number, at least 1`);
  if (!Number.isInteger(batchMemory) || batchMemory < 4) {
    error(ctx, ["batch", "memory"], `batch memory ${batchMemory} must be a whole number of MiB, at least 4`);
  }
  const computeType = batch.compute_resources?.type;
  if (computeType !== undefined && !COMPUTE_TYPES.includes(computeType)) {
    error(
      ctx,
      ["batch", "compute_resources", "type"],
      `compute environment type '${computeType}' is not one of ${COMPUTE_TYPES.join(", ")}`,
    );
  }

  const spec: FunctionSpec = {
    name: l.name,
    provider: "aws",
    ...(image ? { image } : {}),
    ...(imageFile ? { image_file: imageFile } : {}),
    ...(script ? { script } : {}),
    ...(runScript ? { run_script: runScript } : {}),
    ...(l.c_args ? { c_args: l.c_args.map(String) } : {}),
    ...(l.description !== undefined ? { description: l.description } : {}),
    memory: memory ?? 0,
    timeout,
    timeout_threshold: threshold,
    execution_mode: mode,
    log_level: logLevel(ctx, ["lambda", "log_level"], l.log_level),
    environment: environment(
      ctx,
      ["lambda", "container", "environment", "Variables"],
      l.container?.environment?.Variables,
    ),
    secrets: {},
    input: storagePaths(ctx, ["lambda", "input"], l.input, "s3"),
    output: outputPaths(ctx, ["lambda", "output"], l.output, "s3"),
    ...(mode !== "lambda"
      ? { batch: { vcpus, memory: batchMemory, enable_gpu: batch.enable_gpu ?? false } }
      : {}),
    ...(entry.api_gateway?.name ? { api_gateway: entry.api_gateway.name } : {}),
    asynchronous: l.asynchronous ?? false,
    ...engineSettings(
      ctx,
      {
        network: ["lambda", "container", "network"],
        seccomp: ["lambda", "container", "seccomp"],
        isolation: ["lambda", "container", "isolation"],
        concurrency: ["lambda", "concurrency"],
        retries: ["lambda", "retries"],
      },
      {
        network: l.container?.network,
        seccomp: l.container?.seccomp,
        isolation: l.container?.isolation,
        concurrency: l.concurrency,
        retries: l.retries,
      },
    ),
    ...ephemeralStorage(ctx, l.ephemeral_storage),
    raw: entry as Record<string, unknown>,
    source: ctx.loc.origin(),
  };
  const after = ctx.issues.filter((i) => i.severity === "error").length;
  return after === before ? spec : undefined;
}

/**
 * Lambda's `EphemeralStorage.Size` (MB, 512 to 10240): on scar's engine the most one invocation may
 * write to its root file system and output folder together (default 512, as Lambda's /tmp).
 */
function ephemeralStorage(
  ctx: Parameters<typeof engineSettings>[0],
  mb: number | undefined,
): { ephemeral_storage?: number } {
  if (mb === undefined) return {};
  if (Number.isInteger(mb) && mb >= 512 && mb <= 10240) return { ephemeral_storage: mb };
  error(
    ctx,
    ["lambda", "ephemeral_storage"],
    `ephemeral_storage ${mb} must be a whole number of MB from 512 to 10240`,
  );
  return {};
}
