/**
 * The function's configuration inside Lambda: where it is read from, and how it becomes the
 * FunctionSpec and storage providers the platform-neutral supervisor takes.
 *
 * Where, in order (faas-supervisor's order, reference/scar-behaviour.md §6.2):
 * 1. `$SCAR_FUNCTION_CONFIG`, a path (scar's own, for tests and the emulator);
 * 2. `$LAMBDA_TASK_ROOT/function_config.yaml` (Lambda sets LAMBDA_TASK_ROOT to /var/task, where
 *    SCAR's image puts the file), else `/var/task/function_config.yaml`;
 * 3. `$FDL`, base64 of the same document as YAML or JSON (SCAR's Lambda environment variable);
 * 4. `$FUNCTION_CONFIG`, the same, base64 YAML (SCAR's AWS Batch job definition variable).
 *
 * The document is SCAR's "function config" (§4.10): the merged `lambda` section of one
 * `functions.aws[]` entry, plus `storage_providers` (and `batch`, `iam`... when present). It is read
 * through the FDL library, so its values are checked by the same rules as `scar init`; `init_script`
 * is a file name next to the configuration file.
 *
 * Variables that override the file, as faas-supervisor reads them: LOG_LEVEL, EXECUTION_MODE,
 * TIMEOUT_THRESHOLD (seconds). AWS_LAMBDA_FUNCTION_NAME names the function when the file does not.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { FdlError } from "../fdl/issues.js";
import { parseFdl } from "../fdl/load.js";
import {
  EXECUTION_MODES,
  type ExecutionMode,
  type FunctionSpec,
  LOG_LEVELS,
  type StorageProviderSpec,
} from "../fdl/spec.js";

export const CONFIG_FILE_NAME = "function_config.yaml";

export class ConfigError extends Error {}

export interface LambdaFunctionConfig {
  fn: FunctionSpec;
  providers: Record<string, StorageProviderSpec>;
  /** Where it was read from: a file path, or `$FDL`. */
  origin: string;
}

/** The keys of SCAR's function config that sit next to `lambda` in an FDL entry, not inside it. */
const ENTRY_KEYS = ["iam", "api_gateway", "cloudwatch", "batch", "ecr", "s3"];

export interface ReadOptions {
  /** A script file that replaces `init_script` (a Batch job's `SCRIPT`). */
  script?: string;
}

export function readFunctionConfig(
  env: NodeJS.ProcessEnv = process.env,
  opts: ReadOptions = {},
): LambdaFunctionConfig {
  const { text, file, origin } = locate(env);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `the function configuration (${origin}) is not YAML or JSON: ${(err as Error).message}`,
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new ConfigError(
      `the function configuration (${origin}) must be a map (SCAR's function_config.yaml)`,
    );
  const lambda: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  const storage_providers = lambda.storage_providers;
  delete lambda.storage_providers;
  const entry: Record<string, unknown> = {};
  for (const k of ENTRY_KEYS)
    if (k in lambda) {
      entry[k] = lambda[k];
      delete lambda[k];
    }
  if (opts.script) lambda.init_script = opts.script;
  if (lambda.name === undefined && env.AWS_LAMBDA_FUNCTION_NAME) lambda.name = env.AWS_LAMBDA_FUNCTION_NAME;
  applyOverrides(lambda, env);
  const fdl = {
    functions: { aws: [{ ...entry, lambda }] },
    ...(storage_providers !== undefined ? { storage_providers } : {}),
  };
  try {
    const result = parseFdl(file, stringifyYaml(fdl));
    const fn = result.functions[0];
    if (!fn) throw new ConfigError(`the function configuration (${origin}) defines no function`);
    return { fn, providers: result.storage_providers, origin };
  } catch (err) {
    if (err instanceof FdlError)
      throw new ConfigError(
        `the function configuration (${origin}) is not valid:\n${err.issues
          .filter((i) => i.severity === "error")
          .map((i) => `  ${shortPath(i.path)}${i.message}`)
          .join("\n")}`,
      );
    throw err;
  }
}

function locate(env: NodeJS.ProcessEnv): { text: string; file: string; origin: string } {
  const candidates = env.SCAR_FUNCTION_CONFIG
    ? [env.SCAR_FUNCTION_CONFIG]
    : [join(env.LAMBDA_TASK_ROOT || "/var/task", CONFIG_FILE_NAME)];
  for (const file of candidates) {
    if (!existsSync(file)) {
      if (env.SCAR_FUNCTION_CONFIG)
        throw new ConfigError(`SCAR_FUNCTION_CONFIG names '${file}', which does not exist`);
      continue;
    }
    try {
      return { text: readFileSync(file, "utf8"), file, origin: file };
    } catch (err) {
      throw new ConfigError(`cannot read the function configuration '${file}': ${(err as Error).message}`);
    }
  }
  for (const name of ["FDL", "FUNCTION_CONFIG"]) {
    const value = env[name];
    if (!value) continue;
    return {
      text: Buffer.from(value, "base64").toString("utf8"),
      file: join(env.LAMBDA_TASK_ROOT || "/var/task", CONFIG_FILE_NAME),
      origin: `$${name}`,
    };
  }
  throw new ConfigError(
    `no function configuration: neither ${candidates.join(" nor ")} exists, and neither FDL nor FUNCTION_CONFIG is set`,
  );
}

/** faas-supervisor lets these variables override the file's keys. */
function applyOverrides(lambda: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  if (env.LOG_LEVEL) {
    const level = env.LOG_LEVEL.toUpperCase();
    if (!(LOG_LEVELS as readonly string[]).includes(level))
      throw new ConfigError(`LOG_LEVEL '${env.LOG_LEVEL}' is not one of ${LOG_LEVELS.join(", ")}`);
    lambda.log_level = level;
  }
  if (env.EXECUTION_MODE) {
    if (!EXECUTION_MODES.includes(env.EXECUTION_MODE as ExecutionMode))
      throw new ConfigError(
        `EXECUTION_MODE '${env.EXECUTION_MODE}' is not one of ${EXECUTION_MODES.join(", ")}`,
      );
    lambda.execution_mode = env.EXECUTION_MODE;
  }
  if (env.TIMEOUT_THRESHOLD !== undefined && env.TIMEOUT_THRESHOLD !== "") {
    const n = Number(env.TIMEOUT_THRESHOLD);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError(`TIMEOUT_THRESHOLD '${env.TIMEOUT_THRESHOLD}' is not a whole number of seconds`);
    const container = { ...((lambda.container as Record<string, unknown>) ?? {}) };
    container.timeout_threshold = n;
    delete lambda.timeout_threshold;
    lambda.container = container;
  }
}

/** `functions.aws[0].lambda.timeout` -> `timeout: `: the key as written in function_config.yaml. */
function shortPath(path: string): string {
  const p = path.replace(/^functions\.aws\[0\]\.?(lambda\.?)?/, "");
  return p ? `${p}: ` : "";
}
