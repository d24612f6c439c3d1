/**
 * OSCAR's service JSON, both ways: a deployed function shown as OSCAR shows services, and a service
 * definition from `POST /system/services` (OSCAR sends the script's content, not a path) read
 * through the FDL pipeline, so the API and `scar init` accept and reject exactly the same things.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../config/defaults.js";
import { FdlError, type FdlResult, parseFdl } from "../../fdl/index.js";
import type { DeployedFunction } from "../registry.js";
import { HttpError } from "./http.js";

export const LOCAL_CLUSTER = "local";

export function serviceJson(fn: DeployedFunction): Record<string, unknown> {
  const s = fn.spec;
  return {
    name: s.name,
    cluster_id: s.cluster ?? LOCAL_CLUSTER,
    image: fn.image.ref,
    memory: `${s.memory}Mi`,
    // Lambda gives a function CPU in proportion to memory: 1 vCPU per 1,769 MB.
    cpu: String(s.cpu ?? Math.round((s.memory / 1769) * 100) / 100),
    log_level: s.log_level,
    script: s.script && existsSync(s.script) ? readFileSync(s.script, "utf8") : "",
    environment: { variables: s.environment },
    input: s.input.map((i) => ({ storage_provider: i.storage_provider, path: i.path })),
    output: s.output.map((o) => ({
      storage_provider: o.storage_provider,
      path: o.path,
      suffix: o.suffix,
      prefix: o.prefix,
    })),
    token: fn.token,
    // Our additions.
    provider: s.provider,
    execution_mode: s.execution_mode,
    timeout: s.timeout,
    image_digest: fn.image.digest,
  };
}

/** A service definition from the API to a FunctionSpec; 400 with the FDL issues when it is not valid. */
/**
 * The caller deploys the result, then calls `cleanup()`: the script was written to a scratch folder
 * only for the FDL pipeline (the registry keeps its own copy).
 */
export function specFromServiceJson(
  body: unknown,
  scratch: string,
): { result: FdlResult; cleanup: () => void } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(
      400,
      "the body must be a JSON object describing the service (name, image, script, ...)",
    );
  }
  const service: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const { storage_providers: providers, cluster_id: _cluster, token: _token, ...rest } = service;
  const dir = join(scratch, `service-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  if (typeof rest.script === "string" && rest.script !== "") {
    writeFileSync(join(dir, "script.sh"), rest.script);
    rest.script = "script.sh";
  } else delete rest.script;
  const doc = {
    functions: { oscar: [{ [LOCAL_CLUSTER]: rest }] },
    ...(providers ? { storage_providers: providers } : {}),
  };
  const cfg = defaultConfig();
  cfg.oscar[LOCAL_CLUSTER] = { memory: "256Mi", cpu: "0.2", log_level: "INFO" };
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    return {
      result: parseFdl(join(dir, "service.json"), JSON.stringify(doc, null, 2), { config: { config: cfg } }),
      cleanup,
    };
  } catch (err) {
    cleanup();
    if (err instanceof FdlError) {
      const errors = err.issues
        .filter((i) => i.severity === "error")
        .map((i) => ({ path: i.path, message: i.message }));
      throw new HttpError(
        400,
        `invalid service: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`,
        errors,
      );
    }
    throw err;
  }
}
