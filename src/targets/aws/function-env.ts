/**
 * What SCAR stores in a Lambda function's environment (reference/scar-behaviour.md §4.10, §5.1):
 * `FDL` (base64 JSON of the function config, which `rm` reads for the input buckets and the runtime
 * falls back on), `IMAGE_ID` (the user's image, shown by `ls`), `API_GATEWAY_ID` (read by `invoke`,
 * `ls` and `rm`), plus the user's `lambda.environment.Variables`.
 */
import { basename } from "node:path";
import type { FunctionSpec, StorageProviderSpec } from "../../fdl/spec.js";
import { TargetError } from "../target-error.js";

/** Lambda's limit on the environment: keys and values together. */
export const ENV_LIMIT_BYTES = 4096;

/** `storage_providers` back in the FDL's shape (`{s3: {id: {...}}}`), built-in empty ones left out. */
export function providersDocument(providers: Record<string, StorageProviderSpec>): Record<string, unknown> {
  const doc: Record<string, Record<string, unknown>> = {};
  for (const p of Object.values(providers)) {
    if (p.builtin && Object.keys(p.settings).length === 0) continue;
    doc[p.type] ??= {};
    doc[p.type]![p.id] = p.settings;
  }
  return doc;
}

/** SCAR's function config: the merged `lambda` section, `init_script` as a file name, and the providers. */
export function functionConfig(
  spec: FunctionSpec,
  providers: Record<string, StorageProviderSpec>,
): Record<string, unknown> {
  const lambda = { ...((spec.raw.lambda as Record<string, unknown> | undefined) ?? {}) };
  delete lambda.config_path;
  if (typeof lambda.init_script === "string") lambda.init_script = basename(lambda.init_script);
  if (typeof lambda.run_script === "string") delete lambda.run_script;
  const cfg: Record<string, unknown> = { ...lambda, name: spec.name };
  const sp = providersDocument(providers);
  if (Object.keys(sp).length > 0) cfg.storage_providers = sp;
  if (spec.execution_mode === "batch" && spec.raw.batch) {
    const mnp = (spec.raw.batch as { multi_node_parallel?: unknown }).multi_node_parallel;
    if (mnp) cfg.batch = { multi_node_parallel: mnp };
  }
  cfg.ecr = { delete_image: deleteImageOf(spec) };
  return cfg;
}

/** `ecr.delete_image` (default true): whether `rm` deletes the function's ECR repository. */
export function deleteImageOf(spec: FunctionSpec): boolean {
  return (spec.raw.ecr as { delete_image?: unknown } | undefined)?.delete_image !== false;
}

function size(vars: Record<string, string>): number {
  return Object.entries(vars).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

export function functionEnvironment(
  spec: FunctionSpec,
  providers: Record<string, StorageProviderSpec>,
  extra: { apiId?: string } = {},
): Record<string, string> {
  const user = ((spec.raw.lambda as { environment?: { Variables?: Record<string, unknown> } } | undefined)
    ?.environment?.Variables ?? {}) as Record<string, unknown>;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(user)) if (v !== undefined && v !== null) vars[k] = String(v);
  if (spec.image) vars.IMAGE_ID = spec.image;
  if (extra.apiId) vars.API_GATEWAY_ID = extra.apiId;
  const full = functionConfig(spec, providers);
  vars.FDL = Buffer.from(JSON.stringify(full)).toString("base64");
  if (size(vars) > ENV_LIMIT_BYTES) {
    // The image carries the whole config (function_config.yaml); the variable only has to tell
    // `rm` and `ls` what init made.
    const slim = {
      name: spec.name,
      execution_mode: spec.execution_mode,
      input: full.input,
      output: full.output,
      ecr: full.ecr,
    };
    vars.FDL = Buffer.from(JSON.stringify(slim)).toString("base64");
  }
  return checkedEnvironment(spec.name, vars);
}

/** The variables, refused when over Lambda's limit. */
export function checkedEnvironment(fn: string, vars: Record<string, string>): Record<string, string> {
  if (size(vars) > ENV_LIMIT_BYTES)
    throw new TargetError(
      `function '${fn}': its Lambda environment would be ${size(vars)} bytes, over Lambda's ${ENV_LIMIT_BYTES}`,
      "keep fewer or shorter variables in lambda.environment.Variables (container variables go in lambda.container.environment.Variables, which the image carries)",
    );
  return vars;
}

/** The function config stored in a deployed function's `FDL` variable, if it reads. */
export function storedConfig(vars: Record<string, string> | undefined): Record<string, unknown> | undefined {
  const text = vars?.FDL;
  if (!text) return undefined;
  try {
    const doc = JSON.parse(Buffer.from(text, "base64").toString("utf8")) as unknown;
    return typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>) : undefined;
  } catch {
    // SCAR's own functions store YAML here; their inputs are then read from the FDL given to rm
    return undefined;
  }
}
