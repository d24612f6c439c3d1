/** Value rules shared by SCAR (aws) functions and OSCAR services. */
import { statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { FdlIssue, KeyPath } from "./issues.js";
import type { Locator } from "./locator.js";
import type { NameRule } from "./names.js";
import { type ProviderTable, resolveProviderRef } from "./providers.js";
import { type Isolation, LOG_LEVELS, type OutputPath, type StoragePath } from "./spec.js";
import { parseStoragePath } from "./storage-path.js";

export interface FunctionContext {
  /** Folder of the FDL file: relative script and image paths start here. */
  dir: string;
  providers: ProviderTable;
  issues: FdlIssue[];
  loc: Locator;
  /** The name rule of where the functions go; each provider's own when absent (see names.ts). */
  nameRule?: NameRule;
}

export function error(
  ctx: FunctionContext,
  path: KeyPath,
  message: string,
  on: "key" | "value" = "value",
): void {
  ctx.issues.push(ctx.loc.issue("error", path, message, on));
}

export function warn(
  ctx: FunctionContext,
  path: KeyPath,
  message: string,
  on: "key" | "value" = "value",
): void {
  ctx.issues.push(ctx.loc.issue("warning", path, message, on));
}

export interface EngineSettingValues {
  network?: "none" | "host";
  seccomp?: "default" | "unconfined";
  isolation?: Isolation;
  concurrency?: number;
  retries?: number;
}

/**
 * The settings only scar's engine reads (network, seccomp, isolation, concurrency, retries), checked
 * where they were written; `paths` says where each one is in this kind of function.
 */
export function engineSettings(
  ctx: FunctionContext,
  paths: { network: KeyPath; seccomp: KeyPath; isolation: KeyPath; concurrency: KeyPath; retries: KeyPath },
  v: {
    network?: string | undefined;
    seccomp?: string | undefined;
    isolation?: string | undefined;
    concurrency?: number | undefined;
    retries?: number | undefined;
  },
): EngineSettingValues {
  const out: EngineSettingValues = {};
  if (v.seccomp !== undefined) {
    if (v.seccomp === "default" || v.seccomp === "unconfined") out.seccomp = v.seccomp;
    else
      error(
        ctx,
        paths.seccomp,
        `seccomp '${v.seccomp}' is not default or unconfined (unconfined runs the container without scar's syscall filter)`,
      );
  }
  if (v.isolation !== undefined) {
    if (v.isolation === "environment" || v.isolation === "invocation") out.isolation = v.isolation;
    else
      error(
        ctx,
        paths.isolation,
        `isolation '${v.isolation}' is not environment or invocation (invocation gives every invocation a fresh container instead of a reused warm one)`,
      );
  }
  if (v.network !== undefined) {
    if (v.network === "none" || v.network === "host") out.network = v.network;
    else
      error(
        ctx,
        paths.network,
        `network '${v.network}' is not none or host (host lets the script reach the network and the object store)`,
      );
  }
  if (v.concurrency !== undefined) {
    if (Number.isInteger(v.concurrency) && v.concurrency >= 1) out.concurrency = v.concurrency;
    else error(ctx, paths.concurrency, `concurrency ${v.concurrency} must be a whole number, at least 1`);
  }
  if (v.retries !== undefined) {
    if (Number.isInteger(v.retries) && v.retries >= 0 && v.retries <= 10) out.retries = v.retries;
    else error(ctx, paths.retries, `retries ${v.retries} must be a whole number from 0 to 10`);
  }
  return out;
}

/** A script or image file named in the FDL: resolved against the FDL's folder, and it must exist. */
export function existingFile(
  ctx: FunctionContext,
  path: KeyPath,
  value: string | undefined,
): string | undefined {
  if (value === undefined || value === "") return undefined;
  const abs = isAbsolute(value) ? value : resolve(ctx.dir, value);
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(abs);
  } catch {
    error(
      ctx,
      path,
      `file '${value}' not found (looked for ${abs}); paths are relative to the FDL file's folder`,
    );
    return undefined;
  }
  if (st.isDirectory()) {
    error(ctx, path, `'${value}' is a folder; name a file`);
    return undefined;
  }
  return abs;
}

/** Variables as strings: YAML reads `N: 45` as a number and `DEBUG: yes` as true; the container gets text. */
export function environment(ctx: FunctionContext, path: KeyPath, vars: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (vars === undefined || vars === null) return out;
  for (const [k, v] of Object.entries(vars as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      error(
        ctx,
        [...path, k],
        `'${k}' is not a valid variable name; use letters, digits and '_', not starting with a digit`,
        "key",
      );
      continue;
    }
    if (v === null || v === undefined) {
      warn(
        ctx,
        [...path, k],
        `'${k}' has no value; it is set to the empty text (write ${k}: "" to say so)`,
        "key",
      );
      out[k] = "";
    } else if (String(v).includes("\0")) {
      // a process cannot be given it: every run would fail to start
      error(ctx, [...path, k], `the value of '${k}' contains a NUL character, which no variable can hold`);
    } else out[k] = String(v);
  }
  return out;
}

export function logLevel(
  ctx: FunctionContext,
  path: KeyPath,
  v: string | undefined,
): (typeof LOG_LEVELS)[number] {
  if (v === undefined) return "INFO";
  const up = v.toUpperCase();
  if ((LOG_LEVELS as readonly string[]).includes(up)) return up as (typeof LOG_LEVELS)[number];
  error(ctx, path, `log level '${v}' is not one of ${LOG_LEVELS.join(", ")}`);
  return "INFO";
}

interface RawPath {
  storage_provider?: string;
  path: string;
  suffix?: string | string[];
  prefix?: string | string[];
}

export function storagePaths(
  ctx: FunctionContext,
  base: KeyPath,
  list: RawPath[] | undefined,
  defaultProvider: string,
): StoragePath[] {
  return (list ?? []).flatMap((item, i) => {
    const p = storagePath(ctx, [...base, i], item, defaultProvider);
    return p ? [p] : [];
  });
}

export function outputPaths(
  ctx: FunctionContext,
  base: KeyPath,
  list: RawPath[] | undefined,
  defaultProvider: string,
): OutputPath[] {
  return (list ?? []).flatMap((item, i) => {
    const p = storagePath(ctx, [...base, i], item, defaultProvider);
    if (!p) return [];
    const asList = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
    return [{ ...p, suffix: asList(item.suffix), prefix: asList(item.prefix) }];
  });
}

function storagePath(
  ctx: FunctionContext,
  at: KeyPath,
  item: RawPath,
  defaultProvider: string,
): StoragePath | undefined {
  const ref = resolveProviderRef(item.storage_provider ?? defaultProvider, ctx.providers);
  if ("error" in ref) {
    error(ctx, [...at, "storage_provider"], ref.error);
    return undefined;
  }
  const type = ref.id.split(".")[0]!;
  const parsed = parseStoragePath(item.path, type === "s3" || type === "minio");
  if ("error" in parsed) {
    error(ctx, [...at, "path"], parsed.error);
    return undefined;
  }
  return { storage_provider: ref.id, path: parsed.path, bucket: parsed.bucket, folder: parsed.folder };
}
