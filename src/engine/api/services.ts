/**
 * OSCAR's service JSON, both ways: a deployed function shown as OSCAR shows services, and a service
 * definition from `POST /system/services` (OSCAR sends the script's content, not a path) read
 * through the FDL pipeline, so the API and `scar init` accept and reject exactly the same things.
 *
 * scar's extension: an optional `scar` object carries what OSCAR's JSON cannot say (provider,
 * timeout, execution mode, run script, batch limits, HTTP endpoint, engine limits; see ScarExtension).
 * It is checked here, taken out before the FDL pipeline, applied to the FunctionSpec it returns,
 * and shown again by serviceJson, so a definition survives a round trip. OSCAR clients ignore it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { defaultConfig } from "../../config/defaults.js";
import { isPlainObject } from "../../config/merge.js";
import { FdlError, type FdlResult, parseFdl } from "../../fdl/index.js";
import type { FunctionSpec } from "../../fdl/spec.js";
import type { EngineSettings } from "../engine.js";
import type { DeployedFunction } from "../registry.js";
import { HttpError } from "./http.js";
import { type DefaultMinio, oscarServiceFields, withoutGoZeroValues } from "./oscar-service.js";

export const LOCAL_CLUSTER = "local";

const seconds = z.number().int().min(1);

/** The `scar` object of a service definition: FunctionSpec fields OSCAR's JSON lacks, and EngineSettings. */
export const scarExtensionSchema = z
  .object({
    provider: z.enum(["aws", "oscar"]).optional(),
    /** Seconds; null: no limit (OSCAR services). */
    timeout: seconds.nullable().optional(),
    timeout_threshold: z.number().int().min(0).optional(),
    execution_mode: z.enum(["lambda", "lambda-batch", "batch"]).optional(),
    /** The run script's content (like `script`). */
    run_script: z.string().optional(),
    c_args: z.array(z.string()).optional(),
    description: z.string().optional(),
    batch: z
      .object({
        vcpus: z.number().int().min(1).default(1),
        memory: z.number().int().min(4).default(1024),
        enable_gpu: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** The name of the HTTP endpoint (`/invoke/<function>`). */
    api_gateway: z.string().min(1).optional(),
    asynchronous: z.boolean().optional(),
    log_retention_days: z.number().int().min(1).optional(),
    /** Most jobs of the function running at once. */
    concurrency: z.number().int().min(1).optional(),
    /** Retries of a failed async job before it is dead-lettered. */
    retries: z.number().int().min(0).max(10).optional(),
    /** "host": the container shares the host's network and gets the object store's endpoint and keys. */
    network: z.enum(["none", "host"]).optional(),
    /** "unconfined": the container runs without scar's seccomp profile. */
    seccomp: z.enum(["default", "unconfined"]).optional(),
    /** "invocation": a fresh container per invocation instead of reused warm ones ("environment"). */
    isolation: z.enum(["environment", "invocation"]).optional(),
    /** MiB one invocation may write to its root file system and output folder (Lambda's ephemeral storage). */
    ephemeral_storage: z.number().int().min(1).max(10240).optional(),
    /** Shown by GET (the image's manifest digest); ignored when sent back. */
    image_digest: z.string().optional(),
  })
  .strict()
  .superRefine((x, ctx) => {
    if (
      typeof x.timeout === "number" &&
      x.timeout_threshold !== undefined &&
      x.execution_mode !== "batch" &&
      x.timeout_threshold >= x.timeout
    )
      ctx.addIssue({
        code: "custom",
        path: ["timeout_threshold"],
        message: `timeout_threshold (${x.timeout_threshold} s) must be smaller than timeout (${x.timeout} s): the script is stopped that many seconds before the timeout to leave time for uploading outputs`,
      });
  });

export type ScarExtension = z.infer<typeof scarExtensionSchema>;

function readScarExtension(value: unknown): ScarExtension {
  const r = scarExtensionSchema.safeParse(value);
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({
    path: ["scar", ...i.path.map(String)].join("."),
    message: i.message,
  }));
  throw new HttpError(
    400,
    `invalid service: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`,
    errors,
  );
}

/** The `scar` object of a deployed function (what a definition's `scar` set, and the spec's defaults). */
export function scarExtensionJson(fn: DeployedFunction): ScarExtension {
  const s = fn.spec;
  const own = (s.raw.scar ?? {}) as EngineSettings;
  return {
    provider: s.provider,
    timeout: s.timeout,
    timeout_threshold: s.timeout_threshold,
    execution_mode: s.execution_mode,
    ...(s.run_script && existsSync(s.run_script) ? { run_script: readFileSync(s.run_script, "utf8") } : {}),
    ...(s.c_args ? { c_args: s.c_args } : {}),
    ...(s.description !== undefined ? { description: s.description } : {}),
    ...(s.batch ? { batch: s.batch } : {}),
    ...(s.api_gateway ? { api_gateway: s.api_gateway } : {}),
    asynchronous: s.asynchronous,
    ...(s.network ? { network: s.network } : {}),
    ...(s.seccomp ? { seccomp: s.seccomp } : {}),
    ...(s.isolation ? { isolation: s.isolation } : {}),
    ...(s.ephemeral_storage !== undefined ? { ephemeral_storage: s.ephemeral_storage } : {}),
    ...(own.log_retention_days !== undefined ? { log_retention_days: own.log_retention_days } : {}),
    ...(own.concurrency !== undefined ? { concurrency: own.concurrency } : {}),
    ...(own.retries !== undefined ? { retries: own.retries } : {}),
  };
}

/** Lambda gives a function CPU in proportion to memory: 1 vCPU per 1,769 MB (shown as OSCAR's `cpu`). */
function lambdaCpu(memoryMiB: number): string {
  return String(Math.round((memoryMiB / 1769) * 100) / 100);
}

/**
 * Applies a definition's `scar` object to the spec the FDL pipeline made of the rest. `cpu` is what
 * the definition wrote: an aws function without one (or with the share serviceJson shows for its
 * memory, so a round trip changes nothing) gets no CPU limit, as Lambda derives CPU from memory.
 * `runScript` is the path the run script's content was written to.
 */
function applyScarExtension(
  spec: FunctionSpec,
  x: ScarExtension,
  cpu: unknown,
  runScript: string | undefined,
): FunctionSpec {
  const out: FunctionSpec = { ...spec };
  if (x.provider === "aws") {
    out.provider = "aws";
    delete out.cluster;
    if (cpu === undefined || cpu === null || String(cpu) === lambdaCpu(spec.memory)) delete out.cpu;
  }
  if (x.timeout !== undefined) out.timeout = x.timeout;
  if (x.timeout_threshold !== undefined) out.timeout_threshold = x.timeout_threshold;
  if (x.execution_mode !== undefined) out.execution_mode = x.execution_mode;
  if (runScript) out.run_script = runScript;
  if (x.c_args) out.c_args = x.c_args;
  if (x.description !== undefined) out.description = x.description;
  if (x.batch) out.batch = x.batch;
  else if (out.execution_mode !== "lambda" && !out.batch)
    out.batch = { vcpus: 1, memory: 1024, enable_gpu: false };
  if (x.api_gateway !== undefined) out.api_gateway = x.api_gateway;
  if (x.asynchronous !== undefined) out.asynchronous = x.asynchronous;
  if (x.network !== undefined) out.network = x.network;
  if (x.seccomp !== undefined) out.seccomp = x.seccomp;
  if (x.isolation !== undefined) out.isolation = x.isolation;
  if (x.ephemeral_storage !== undefined) out.ephemeral_storage = x.ephemeral_storage;
  const settings: EngineSettings = {
    ...(x.concurrency !== undefined ? { concurrency: x.concurrency } : {}),
    ...(x.retries !== undefined ? { retries: x.retries } : {}),
    ...(x.log_retention_days !== undefined ? { log_retention_days: x.log_retention_days } : {}),
  };
  out.raw = { ...out.raw };
  if (Object.keys(settings).length > 0) out.raw.scar = settings;
  else delete out.raw.scar;
  return out;
}

/**
 * A deployed function as OSCAR shows a service (every field of OSCAR's Service, oscar-service.ts),
 * with the engine's own additions under `scar`.
 */
export function serviceJson(fn: DeployedFunction, minio: DefaultMinio): Record<string, unknown> {
  const s = fn.spec;
  const sent = s.raw;
  return {
    ...oscarServiceFields(
      {
        name: s.name,
        clusterId: s.cluster ?? LOCAL_CLUSTER,
        image: fn.image.ref,
        memory: `${s.memory}Mi`,
        cpu: s.cpu !== undefined ? String(s.cpu) : lambdaCpu(s.memory),
        log_level: s.log_level,
        script: s.script && existsSync(s.script) ? readFileSync(s.script, "utf8") : "",
        token: fn.token,
        variables: s.environment,
        secretNames: Object.keys(s.secrets ?? {}),
        input: s.input.map((i) => ({ storage_provider: i.storage_provider, path: i.path })),
        output: s.output.map((o) => ({
          storage_provider: o.storage_provider,
          path: o.path,
          suffix: o.suffix,
          prefix: o.prefix,
        })),
        sent,
        sentProviders: isPlainObject(sent.sent_storage_providers) ? sent.sent_storage_providers : undefined,
      },
      minio,
    ),
    scar: { ...scarExtensionJson(fn), image_digest: fn.image.digest },
  };
}

/** What a definition that leaves them out gets. */
export interface ServiceDefaults {
  /** Seconds (scar.cfg's `aws.lambda.timeout`); null: none. */
  timeout: number | null;
}

/** A `storage_providers` block without `minio.default` (always the embedded store). */
function withoutDefaultMinio(block: Record<string, unknown>): Record<string, unknown> {
  if (!isPlainObject(block.minio) || !("default" in block.minio)) return block;
  const { default: _d, ...minio } = block.minio;
  return { ...block, minio };
}

/** Deeper than any service definition needs (its deepest values are ~5 levels down). */
const MAX_DEPTH = 32;

/**
 * The first thing in a parsed definition that must not go further, as a path and a message: a
 * `__proto__` key (JSON.parse makes it an own key; copied by assignment, as the FDL merge does, it
 * would set an object's prototype instead), or nesting deeper than MAX_DEPTH (which would overflow
 * the stack of JSON.stringify and the FDL checks).
 */
function shapeProblem(body: unknown): { path: string; message: string } | undefined {
  // A loop, not recursion: the nesting is what is being checked.
  const todo: [unknown, string, number][] = [[body, "", 0]];
  for (let item = todo.pop(); item !== undefined; item = todo.pop()) {
    const [value, at, depth] = item;
    if (typeof value !== "object" || value === null) continue;
    if (depth >= MAX_DEPTH)
      return {
        path: at,
        message: `nested more than ${MAX_DEPTH} levels deep; a service definition needs a few`,
      };
    const list = Array.isArray(value);
    for (const [k, v] of Object.entries(value)) {
      const path = list ? `${at}[${k}]` : at ? `${at}.${k}` : k;
      if (k === "__proto__" && !list)
        return { path, message: "'__proto__' is not a key a service definition may have" };
      todo.push([v, path, depth + 1]);
    }
  }
  return undefined;
}

/** A service definition from the API to a FunctionSpec; 400 with the FDL issues when it is not valid. */
/**
 * The caller deploys the result, then calls `cleanup()`: the script was written to a scratch folder
 * only for the FDL pipeline (the registry keeps its own copy).
 */
export function specFromServiceJson(
  body: unknown,
  scratch: string,
  defaults: ServiceDefaults = { timeout: null },
): { result: FdlResult; cleanup: () => void } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(
      400,
      "the body must be a JSON object describing the service (name, image, script, ...)",
    );
  }
  const bad = shapeProblem(body);
  if (bad !== undefined) throw new HttpError(400, `invalid service: ${bad.path}: ${bad.message}`, [bad]);
  // oscar-cli sends Go's zero values for what an FDL leaves out: read as OSCAR reads them.
  const service = withoutGoZeroValues(body as Record<string, unknown>);
  const {
    storage_providers: providers,
    cluster_id: clusterId,
    token: _token,
    scar: scarValue,
    // What serviceJson adds besides `scar` (the same values are in `scar`, or come from the image).
    provider: _provider,
    execution_mode: _mode,
    timeout: _timeout,
    image_digest: _digest,
    ...rest
  } = service;
  const ext = scarValue === undefined || scarValue === null ? {} : readScarExtension(scarValue);
  const dir = join(scratch, `service-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  if (typeof rest.script === "string" && rest.script !== "") {
    writeFileSync(join(dir, "script.sh"), rest.script);
    rest.script = "script.sh";
  } else if (rest.script === "" || rest.script === null) delete rest.script;
  // anything else (a number, a list) is left for the FDL checks, which name it
  let runScript: string | undefined;
  if (ext.run_script !== undefined && ext.run_script !== "") {
    runScript = join(dir, "run_script.sh");
    writeFileSync(runScript, ext.run_script);
  }
  const doc = {
    functions: { oscar: [{ [LOCAL_CLUSTER]: rest }] },
    ...(providers ? { storage_providers: providers } : {}),
  };
  const cfg = defaultConfig();
  cfg.oscar[LOCAL_CLUSTER] = { memory: "256Mi", cpu: "0.2", log_level: "INFO" };
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const result = parseFdl(join(dir, "service.json"), JSON.stringify(doc, null, 2), {
      config: { config: cfg },
      // The engine emulates Lambda for aws functions: their names follow Lambda's rule (fdl/names.ts).
      ...(ext.provider === "aws" ? { nameRule: "lambda" as const } : {}),
    });
    // Shown again by serviceJson, as sent: the cluster id and the providers (minio.default is the
    // embedded store's, filled in there).
    const sentProviders = isPlainObject(providers) ? withoutDefaultMinio(providers) : undefined;
    result.functions = result.functions.map((f) => {
      const spec = applyScarExtension(f, ext, rest.cpu, runScript);
      spec.raw = {
        ...spec.raw,
        ...(typeof clusterId === "string" ? { cluster_id: clusterId } : {}),
        ...(sentProviders ? { sent_storage_providers: sentProviders } : {}),
      };
      // OSCAR sets no limit of its own; a service that names none gets scar.cfg's, as `scar init` does.
      if (ext.timeout === undefined && defaults.timeout !== null) spec.timeout = defaults.timeout;
      return spec;
    });
    return { result, cleanup };
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
