/**
 * A FunctionSpec as OSCAR's service definition (the body of `POST /system/services`), with the
 * scripts' contents inline as OSCAR expects. What OSCAR's JSON cannot say (Lambda timeout, execution
 * mode, run script, ...) travels in a `scar` object: scar's engine reads it, OSCAR ignores it.
 */
import { readFileSync } from "node:fs";
import type { FunctionSpec, StoragePath, StorageProviderSpec } from "../fdl/spec.js";

export interface ServiceJsonOptions {
  storageProviders: Record<string, StorageProviderSpec>;
  /**
   * Name the built-in S3 provider as OSCAR's `minio` (a real OSCAR cluster has no `s3.default`; its
   * own MinIO is where `s3` paths of SCAR functions land). The local engine serves both names.
   */
  s3AsMinio: boolean;
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
  return {
    name: spec.name,
    image: spec.image,
    memory: `${spec.memory}Mi`,
    ...(spec.cpu !== undefined ? { cpu: String(spec.cpu) } : {}),
    log_level: spec.log_level,
    script: spec.script ? readFileSync(spec.script, "utf8") : "",
    environment: {
      variables: spec.environment,
      ...(Object.keys(spec.secrets).length > 0 ? { secrets: spec.secrets } : {}),
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
