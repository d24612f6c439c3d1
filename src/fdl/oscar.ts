/** An OSCAR `functions.oscar[]` service (already merged with the cluster's defaults) to a FunctionSpec. */
import {
  engineSettings,
  environment,
  error,
  existingFile,
  type FunctionContext,
  logLevel,
  outputPaths,
  storagePaths,
} from "./common.js";
import { nameProblem } from "./names.js";
import { cpuToCores, memoryToMiB } from "./quantities.js";
import { oscarServiceSchema } from "./schema.js";
import type { FunctionSpec } from "./spec.js";
import { zodIssueMessage } from "./zod-messages.js";

export function normalizeOscarService(
  merged: unknown,
  cluster: string,
  ctx: FunctionContext,
): FunctionSpec | undefined {
  const parsed = oscarServiceSchema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      error(ctx, issue.path as (string | number)[], zodIssueMessage(issue));
    return undefined;
  }
  const s = parsed.data;
  const before = ctx.issues.filter((i) => i.severity === "error").length;

  const badName = nameProblem(s.name, ctx.nameRule ?? "service", false);
  if (badName) error(ctx, ["name"], badName);
  if (!s.image) error(ctx, ["image"], "no container image: set image (e.g. grycap/cowsay)");
  else if (/\s/.test(s.image)) error(ctx, ["image"], `image '${s.image}' contains spaces`);

  const memRaw = s.memory ?? "256Mi";
  const memory = typeof memRaw === "number" ? undefined : memoryToMiB(memRaw, false);
  if (memory === undefined || memory <= 0) {
    error(
      ctx,
      ["memory"],
      `memory ${JSON.stringify(memRaw)} is not an amount of memory: write it with a unit, e.g. 256Mi or 1Gi`,
    );
  } else if (!Number.isSafeInteger(memory)) {
    // Whether a machine has that much is the platform's question; this many digits is no amount at all.
    error(ctx, ["memory"], `memory ${JSON.stringify(memRaw)} is too large to be an amount of memory`);
  }
  const cpuRaw = s.cpu ?? "0.2";
  const cpu = cpuToCores(cpuRaw);
  if (cpu === undefined || cpu <= 0) {
    error(
      ctx,
      ["cpu"],
      `cpu ${JSON.stringify(cpuRaw)} is not an amount of CPU: write cores such as '0.5' or '1', or millicores such as '500m'`,
    );
  } else if (!Number.isFinite(cpu)) {
    error(ctx, ["cpu"], `cpu ${JSON.stringify(cpuRaw)} is too large to be an amount of CPU`);
  }
  const sync = s.synchronous;
  if (sync) {
    for (const k of ["min_scale", "max_scale"] as const) {
      const v = sync[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 0))
        error(ctx, ["synchronous", k], `${k} must be a whole number, 0 or more`);
    }
    if (sync.min_scale !== undefined && sync.max_scale !== undefined && sync.min_scale > sync.max_scale) {
      error(
        ctx,
        ["synchronous", "min_scale"],
        `min_scale (${sync.min_scale}) is larger than max_scale (${sync.max_scale})`,
      );
    }
  }

  const env = s.environment;
  const varsKey = env?.variables !== undefined ? "variables" : "Variables";
  const script = existingFile(ctx, ["script"], s.script);
  const spec: FunctionSpec = {
    name: s.name,
    provider: "oscar",
    cluster,
    ...(s.image ? { image: s.image } : {}),
    ...(script ? { script } : {}),
    memory: memory ?? 0,
    cpu: cpu ?? 0,
    timeout: null,
    timeout_threshold: 0,
    execution_mode: "lambda",
    log_level: logLevel(ctx, ["log_level"], s.log_level),
    environment: environment(ctx, ["environment", varsKey], env?.variables ?? env?.Variables),
    secrets: environment(ctx, ["environment", "secrets"], env?.secrets),
    input: storagePaths(ctx, ["input"], s.input, "minio"),
    output: outputPaths(ctx, ["output"], s.output, "minio"),
    asynchronous: false,
    ...engineSettings(
      ctx,
      {
        network: ["network"],
        seccomp: ["seccomp"],
        isolation: ["isolation"],
        concurrency: ["concurrency"],
        retries: ["retries"],
      },
      {
        network: s.network,
        seccomp: s.seccomp,
        isolation: s.isolation,
        concurrency: s.concurrency,
        retries: s.retries,
      },
    ),
    raw: s as Record<string, unknown>,
    source: ctx.loc.origin(),
  };
  const after = ctx.issues.filter((i) => i.severity === "error").length;
  return after === before ? spec : undefined;
}
