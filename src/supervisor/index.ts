/**
 * The supervisor: the function ABI, platform-neutral (events -> stage-in -> script -> stage-out ->
 * response). It knows nothing of crun or AWS: callers give it an Executor and storage providers.
 */

export { buildEnv } from "./env.js";
export { type EventError, type ParsedEvent, parseEvent } from "./events.js";
export { HostExecutor } from "./host-executor.js";
export {
  collectOutputFiles,
  type KeptOutputs,
  keepOutputFiles,
  outputKey,
  outputMatches,
} from "./outputs.js";
export type { LambdaResponse } from "./response.js";
export {
  type InvocationReason,
  type InvocationRequest,
  type InvocationResult,
  invoke,
} from "./supervisor.js";
export type { Command, ExecRequest, ExecResult, Executor, Workspace } from "./types.js";
