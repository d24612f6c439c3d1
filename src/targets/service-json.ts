/**
 * A FunctionSpec as OSCAR's service definition (the body of `POST /system/services`), with the
 * scripts' contents inline as OSCAR expects. What OSCAR's JSON cannot say (Lambda timeout, execution
 * mode, run script, ...) travels in a `scar` object: scar's engine reads it, OSCAR ignores it.
 */
import { readFileSync } from "node:fs";
import type { FunctionSpec, StoragePath, StorageProviderSpec } from "../fdl/spec.js";

/**
 * OSCAR's own service fields an FDL may give (grycap/oscar pkg/types/service.go), sent as written:
 * scar does not act on them, OSCAR does. Go's decoder drops any it does not know (e.g. `replicas`
 * on OSCAR 4, where `federation` replaced it).
 */
export const OSCAR_PASS_THROUGH = [
  "vo",
  "expose",
  "mount",
  "annotations",
  "labels",
  "image_pull_secrets",
  "alpine",
  "enable_gpu",
  "enable_sgx",
  "image_prefetch",
  "synchronous",
  "total_memory",
  "total_cpu",
  "ephemeral_storage_request",
  "allowed_users",
  "visibility",
  "isolation_level",
  "replicas",
  "rescheduler_threshold",
  "delegation",
  "federation",
  "clusters",
  "volume",
  "kserve",
  "owner",
  "interlink_node_name",
  "file_stage_in",
  "token",
] as const;

export interface ServiceJsonOptions {
  storageProviders: Record<string, StorageProviderSpec>;
  /**
   * Name the built-in S3 provider as OSCAR's `minio` (a real OSCAR cluster has no `s3.default`; its
   * own MinIO is where `s3` paths of SCAR functions land). The local engine serves both names.
   */
  s3AsMinio: boolean;
  /** The FDL's top-level OSCAR `clusters`; a service's own `clusters` entries win. */
  clusters?: Record<string, unknown>;
}

export function serviceJson(spec: FunctionSpec, opts: ServiceJsonOptions): Record<string, unknown> {
  const provider = (id: string) => {
    if (id === "minio.default" || (opts.s3AsMinio && id === "s3.default")) return "minio";
    if (id === "s3.default") return "s3";
    return id;
  };
  const path = (p: StoragePath) => ({ storage_provider: provider(p.storage_provider), path: p.path });
  const used = new Set([...spec.input, ...spec.output].map((p) => p.storage_provider));
  const providers: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const id of used) {
    const def = opts.storageProviders[id];
    if (!def || def.builtin) continue;
    providers[def.type] ??= {};
    providers[def.type]![def.id] = def.settings;
  }
  const scar: Record<string, unknown> = {
    provider: spec.provider,
    timeout: spec.timeout,
    timeout_threshold: spec.timeout_threshold,
    execution_mode: spec.execution_mode,
    asynchronous: spec.asynchronous,
    ...(spec.description ? { description: spec.description } : {}),
    ...(spec.run_script ? { run_script: readFileSync(spec.run_script, "utf8") } : {}),
    ...(spec.c_args ? { c_args: spec.c_args } : {}),
    ...(spec.batch ? { batch: spec.batch } : {}),
    ...(spec.api_gateway ? { api_gateway: spec.api_gateway } : {}),
    ...(spec.network ? { network: spec.network } : {}),
    ...(spec.seccomp ? { seccomp: spec.seccomp } : {}),
    ...(spec.isolation ? { isolation: spec.isolation } : {}),
    ...(spec.ephemeral_storage !== undefined ? { ephemeral_storage: spec.ephemeral_storage } : {}),
    ...(spec.concurrency !== undefined ? { concurrency: spec.concurrency } : {}),
    ...(spec.retries !== undefined ? { retries: spec.retries } : {}),
  };
  const retention = (spec.raw.cloudwatch as { log_retention_policy_in_days?: unknown } | undefined)
    ?.log_retention_policy_in_days;
  if (typeof retention === "number") scar.log_retention_days = retention;
  const oscar: Record<string, unknown> = {};
  if (spec.provider === "oscar") {
    for (const k of OSCAR_PASS_THROUGH) {
      const v = spec.raw[k];
      if (v === undefined || v === null) continue;
      // Go's map[string]string takes strings only; YAML wrote `team: 1` as a number.
      oscar[k] = k === "annotations" || k === "labels" ? stringValues(v) : v;
    }
    // oscar-cli sets it to the FDL's cluster key; OSCAR uses it in job delegations.
    if (spec.cluster) oscar.cluster_id = spec.cluster;
    if (opts.clusters)
      oscar.clusters = {
        ...opts.clusters,
        ...((oscar.clusters as Record<string, unknown> | undefined) ?? {}),
      };
  }
  return {
    name: spec.name,
    ...oscar,
    image: spec.image,
    memory: `${spec.memory}Mi`,
    ...(spec.cpu !== undefined ? { cpu: String(spec.cpu) } : {}),
    log_level: spec.log_level,
    script: spec.script ? readFileSync(spec.script, "utf8") : "",
    environment: {
      variables: stringValues(spec.environment),
      ...(Object.keys(spec.secrets).length > 0 ? { secrets: stringValues(spec.secrets) } : {}),
    },
    input: spec.input.map(path),
    output: spec.output.map((o) => ({
      ...path(o),
      ...(o.suffix.length > 0 ? { suffix: o.suffix } : {}),
      ...(o.prefix.length > 0 ? { prefix: o.prefix } : {}),
    })),
    ...(Object.keys(providers).length > 0 ? { storage_providers: providers } : {}),
    scar,
  };
}

/** A map with every value a string, as Go's `map[string]string` wants it (objects are left as they are). */
function stringValues(v: unknown): unknown {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, typeof x === "object" && x !== null ? x : String(x ?? "")]),
  );
}
