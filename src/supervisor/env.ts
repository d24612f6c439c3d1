/**
 * The environment a user's script sees: the function ABI of SCAR and faas-supervisor, byte for byte,
 * so existing scripts run unchanged (see ../shared/DESIGN.md, "Function ABI").
 */
import type { FunctionSpec } from "../fdl/spec.js";
import type { ParsedEvent } from "./events.js";
import type { Workspace } from "./types.js";

/** Linux refuses a single variable over 128 KiB (E2BIG); a huge EVENT would stop the script from starting. */
export const MAX_EVENT_ENV = 64 * 1024;

export interface EnvInput {
  fn: Pick<FunctionSpec, "name" | "environment" | "secrets"> & { provider?: FunctionSpec["provider"] };
  requestId: string;
  workspace: Workspace;
  /** INPUT_FILE_PATH as the script sees it. */
  inputFile: string;
  parsed: ParsedEvent;
  /** Platform variables (e.g. AWS_ENDPOINT_URL and keys for the local store); the ABI wins over them. */
  platform?: Record<string, string>;
}

export function buildEnv(i: EnvInput): { env: Record<string, string>; warnings: string[] } {
  const warnings: string[] = [];
  const ev0 = i.parsed.event;
  const runEnv = ev0.kind === "other" ? ev0.env : undefined;
  const env: Record<string, string> = { ...i.fn.environment, ...runEnv, ...i.fn.secrets, ...i.platform };
  for (const [k, v] of Object.entries(i.parsed.params)) {
    const name = k.replace(/[^A-Za-z0-9_]/g, "_");
    env[`CONT_VAR_${name}`] = v.replace(/\0/g, "");
  }
  const abi: Record<string, string> = {
    REQUEST_ID: i.requestId,
    AWS_LAMBDA_REQUEST_ID: i.requestId,
    AWS_LAMBDA_FUNCTION_NAME: i.fn.name,
    INPUT_FILE_PATH: i.inputFile,
    TMP_INPUT_DIR: i.workspace.input,
    TMP_OUTPUT_DIR: i.workspace.output,
    // The names of SCAR's first versions.
    SCAR_INPUT_FILE: i.inputFile,
    SCAR_INPUT_DIR: i.workspace.input,
    SCAR_OUTPUT_DIR: i.workspace.output,
  };
  // OSCAR's supervisor names the job to OSCAR services' scripts (its id is the request's here).
  if (i.fn.provider === "oscar") abi.JOB_UUID = i.requestId;
  const ev = i.parsed.event;
  if (ev.kind === "storage") {
    abi.STORAGE_OBJECT_KEY = ev.key;
    if (ev.eventTime) abi.EVENT_TIME = ev.eventTime;
  }
  if (Buffer.byteLength(i.parsed.raw) <= MAX_EVENT_ENV) abi.EVENT = i.parsed.raw.replace(/\0/g, "");
  else
    warnings.push(
      `The event is larger than ${MAX_EVENT_ENV} bytes: EVENT is not set (the event is in $INPUT_FILE_PATH).`,
    );
  return { env: { ...env, ...abi }, warnings };
}
