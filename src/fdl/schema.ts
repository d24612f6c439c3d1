/**
 * The shapes of the FDL, as zod schemas. They check types and enumerations and name every key scar
 * knows; value ranges and cross-field rules live in rules.ts, where the whole function is in view.
 * Objects are "loose": keys not listed here are kept (OSCAR keeps adding fields) and reported as
 * warnings by unknownKeys() below.
 */
import { z } from "zod";
import type { KeyPath } from "./issues.js";
import { EXECUTION_MODES } from "./spec.js";

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const stringOrList = z.union([z.string(), z.array(z.string())]);
/** Lambda's `{Variables: {...}}`. */
const variables = z.looseObject({ Variables: z.record(z.string(), scalar).optional() });
/** Memory: a number of MB, or a Kubernetes quantity such as `1Gi` (checked in rules.ts). */
const quantity = z.union([z.number(), z.string()]);
/** A value scar passes through to a platform without looking inside. */
const opaque = z.unknown().optional();

const input = z.looseObject({
  storage_provider: z.string().optional(),
  path: z.string({ error: "every input needs a path: bucket[/folder...]" }),
});
const output = input.extend({ suffix: stringOrList.optional(), prefix: stringOrList.optional() });

export const lambdaSchema = z.looseObject({
  name: z.string({ error: "every function needs a name (lambda.name)" }),
  boto_profile: z.string().optional(),
  region: z.string().optional(),
  memory: quantity.optional(),
  timeout: z.number().optional(),
  /** Lambda's ephemeral storage (MB); on scar's engine the disk limit of one invocation. */
  ephemeral_storage: z.number().optional(),
  /** Alias of container.timeout_threshold (where SCAR's -tt flag put it). */
  timeout_threshold: z.number().optional(),
  description: z.string().optional(),
  runtime: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  execution_mode: z.enum(EXECUTION_MODES as [string, ...string[]]).optional(),
  log_level: z.string().optional(),
  /** scar's engine: the most jobs running at once, and retries of failed async jobs. */
  concurrency: z.number().optional(),
  retries: z.number().optional(),
  layers: z.array(z.string()).optional(),
  environment: variables.optional(),
  init_script: z.string().optional(),
  run_script: z.string().optional(),
  c_args: z.array(z.union([z.string(), z.number()])).optional(),
  container: z
    .looseObject({
      image: z.string().optional(),
      image_file: z.string().optional(),
      environment: variables.optional(),
      timeout_threshold: z.number().optional(),
      /** scar's engine: none (default) or host. */
      network: z.string().optional(),
      /** scar's engine: default (scar's seccomp profile) or unconfined (no syscall filter). */
      seccomp: z.string().optional(),
      /** scar's engine: environment (default: warm containers, reused) or invocation (a fresh one each). */
      isolation: z.string().optional(),
      alpine: z.boolean().optional(),
      create_image: z.boolean().optional(),
      init_script: z.string().optional(),
      extra_payload: z.string().optional(),
    })
    .optional(),
  input: z.array(input).optional(),
  output: z.array(output).optional(),
  supervisor: z
    .looseObject({
      version: z.string().optional(),
      layer_name: z.string().optional(),
      license_info: z.string().optional(),
    })
    .optional(),
  deployment: z
    .looseObject({
      bucket: z.string().optional(),
      max_payload_size: z.number().optional(),
      max_s3_payload_size: z.number().optional(),
    })
    .optional(),
  vpc: opaque,
  file_system: opaque,
  preheat: z.boolean().optional(),
  extra_payload: z.string().optional(),
  asynchronous: z.boolean().optional(),
  invocation_type: z.string().optional(),
  log_type: z.string().optional(),
  file_stage_in: z.boolean().optional(),
  // Written by SCAR itself into stored configs (function_config.yaml); accepted so they round-trip.
  handler: opaque,
  tags: opaque,
  arn: opaque,
  config_path: opaque,
  payload: opaque,
});

export const awsFunctionSchema = z.looseObject({
  lambda: lambdaSchema,
  iam: z
    .looseObject({ boto_profile: z.string().optional(), role: z.string().optional(), account_id: opaque })
    .optional(),
  api_gateway: z
    .looseObject({
      name: z.string().optional(),
      boto_profile: z.string().optional(),
      region: z.string().optional(),
      endpoint: z.string().optional(),
      http_method: z.string().optional(),
      method: opaque,
      integration: opaque,
      request_parameters: opaque,
      path_part: z.string().optional(),
      stage_name: z.string().optional(),
      service_id: z.string().optional(),
      source_arn_testing: z.string().optional(),
      source_arn_invocation: z.string().optional(),
      id: opaque,
      resource_id: opaque,
      data_binary: opaque,
      json_data: opaque,
      parameters: opaque,
    })
    .optional(),
  cloudwatch: z
    .looseObject({
      boto_profile: z.string().optional(),
      region: z.string().optional(),
      log_retention_policy_in_days: z.number().optional(),
      log_stream_name: opaque,
      request_id: opaque,
    })
    .optional(),
  batch: z
    .looseObject({
      boto_profile: z.string().optional(),
      region: z.string().optional(),
      vcpus: z.number().optional(),
      memory: z.number().optional(),
      enable_gpu: z.boolean().optional(),
      state: z.string().optional(),
      type: z.string().optional(),
      service_role: z.string().optional(),
      environment: variables.optional(),
      compute_resources: z
        .looseObject({
          type: z.string().optional(),
          min_v_cpus: z.number().optional(),
          desired_v_cpus: z.number().optional(),
          max_v_cpus: z.number().optional(),
          instance_types: z.array(z.string()).optional(),
          subnets: z.array(z.string()).optional(),
          security_group_ids: z.array(z.string()).optional(),
          instance_role: z.string().optional(),
          launch_template_name: z.string().optional(),
        })
        .optional(),
      multi_node_parallel: z
        .looseObject({
          enabled: z.boolean().optional(),
          number_nodes: z.number().optional(),
          main_node_index: z.number().optional(),
        })
        .optional(),
    })
    .optional(),
  ecr: z.looseObject({ delete_image: z.boolean().optional() }).optional(),
  s3: z
    .looseObject({ boto_profile: z.string().optional(), region: z.string().optional(), event: opaque })
    .optional(),
});

/** An OSCAR service (grycap/oscar docs/fdl.md). Fields scar does not act on pass through to OSCAR. */
export const oscarServiceSchema = z.looseObject({
  name: z.string({ error: "every service needs a name" }),
  cluster_id: z.string().optional(),
  image: z.string().optional(),
  script: z.string().optional(),
  memory: quantity.optional(),
  cpu: z.union([z.string(), z.number()]).optional(),
  log_level: z.string().optional(),
  environment: z
    .looseObject({
      variables: z.record(z.string(), scalar).optional(),
      Variables: z.record(z.string(), scalar).optional(),
      secrets: z.record(z.string(), scalar).optional(),
    })
    .optional(),
  input: z.array(input).optional(),
  output: z.array(output).optional(),
  synchronous: z
    .looseObject({ min_scale: z.number().optional(), max_scale: z.number().optional() })
    .optional(),
  alpine: z.boolean().optional(),
  enable_gpu: z.boolean().optional(),
  // scar's engine only (OSCAR ignores them): network none|host, seccomp default|unconfined,
  // isolation environment|invocation, concurrency, retries.
  network: z.string().optional(),
  seccomp: z.string().optional(),
  isolation: z.string().optional(),
  concurrency: z.number().optional(),
  retries: z.number().optional(),
  // OSCAR fields scar passes through unchanged.
  ...Object.fromEntries(
    [
      "enable_sgx",
      "total_memory",
      "total_cpu",
      "image_pull_secrets",
      "image_prefetch",
      "expose",
      "replicas",
      "rescheduler_threshold",
      "delegation",
      "federation",
      "mount",
      "volume",
      "kserve",
      "vo",
      "owner",
      "visibility",
      "allowed_users",
      "isolation_level",
      "ephemeral_storage_request",
      "interlink_node_name",
      "annotations",
      "labels",
      "file_stage_in",
      "token",
    ].map((k) => [k, opaque]),
  ),
});

export const topLevelSchema = z.looseObject({
  functions: z.looseObject({ aws: z.array(opaque).optional(), oscar: z.array(opaque).optional() }).optional(),
  storage_providers: opaque,
  /** SCAR's internal section (conf_file, json, ...); passed through. */
  scar: opaque,
  /** OSCAR FDL: cluster definitions keyed by id. */
  clusters: opaque,
});

/**
 * Keys present in `value` that `schema` does not name, as paths relative to `value`. Opaque
 * values (z.unknown) and records are not looked into.
 */
export interface UnknownKey {
  path: KeyPath;
  /** The keys scar knows at that level, to suggest the one a misspelt key meant. */
  known: string[];
}

export function unknownKeys(schema: z.ZodType, value: unknown, base: KeyPath = []): UnknownKey[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
      return unknownKeys(def.innerType as z.ZodType, value, base);
    case "array":
      return Array.isArray(value)
        ? value.flatMap((v, i) => unknownKeys(def.element as z.ZodType, v, [...base, i]))
        : [];
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
      const shape = def.shape as Record<string, z.ZodType>;
      const out: UnknownKey[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (k === "__proto__") continue; // an error of its own (load.ts: reservedKeyPaths)
        // Own keys only: `constructor` or `toString` written in an FDL are not Object.prototype's.
        if (Object.hasOwn(shape, k)) out.push(...unknownKeys(shape[k]!, v, [...base, k]));
        else out.push({ path: [...base, k], known: Object.keys(shape) });
      }
      return out;
    }
    default:
      return [];
  }
}

export type ZodIssue = z.core.$ZodIssue;
