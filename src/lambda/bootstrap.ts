#!/usr/bin/env node
/**
 * The function's entry point (the image's CMD). Inside Lambda (AWS_LAMBDA_RUNTIME_API is set): scar's
 * Lambda runtime, serving invocations until Lambda ends the environment; exits 1 when the Runtime API
 * cannot be reached or refuses the runtime (Lambda then restarts the environment). Elsewhere (an AWS
 * Batch job): binary mode, one event from stdin or $EVENT (batch-job.ts).
 */
import { AwsBatchSubmitter } from "./batch-aws.js";
import { runBatchJob } from "./batch-job.js";
import { runRuntime } from "./runtime.js";

// The SDK's notice about future Node versions is for scar's maintainers, not the function's logs
// (the SDK reads this when its first client is made, after the imports above).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function main(): Promise<void> {
  if (process.env.AWS_LAMBDA_RUNTIME_API) await runRuntime({ batch: new AwsBatchSubmitter() });
  else process.exitCode = await runBatchJob({ event: await readStdin() });
}

main().catch((err: unknown) => {
  process.stderr.write(`scar runtime: ${(err as Error).message ?? String(err)}\n`);
  process.exitCode = 1;
});
