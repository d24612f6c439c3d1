/**
 * `storage_providers`: named credentials and endpoints that inputs and outputs refer to as
 * `<type>.<id>` (`s3.my_s3`, `minio.default`). `s3.default` (the platform's own S3: the function's
 * role on AWS, the embedded store locally) and `minio.default` (OSCAR's in-cluster MinIO, the
 * embedded store locally) exist without being defined.
 */
import { isPlainObject } from "../config/merge.js";
import type { FdlIssue } from "./issues.js";
import type { SourceFile } from "./source.js";
import { STORAGE_PROVIDER_TYPES, type StorageProviderSpec, type StorageProviderType } from "./spec.js";

/** Keys each provider type needs before the supervisor can talk to it. */
const REQUIRED: Record<StorageProviderType, string[][]> = {
  s3: [["access_key"], ["secret_key"]],
  minio: [["access_key"], ["secret_key"]],
  onedata: [["oneprovider_host"], ["token"], ["space"]],
  webdav: [["hostname"], ["login"], ["password"]],
  rucio: [["host"], ["auth_host"], ["rse"], ["account"], ["access_token", "refresh_token"]],
};

export type ProviderTable = Record<string, StorageProviderSpec>;

export function builtinProviders(): ProviderTable {
  return {
    "s3.default": { type: "s3", id: "default", settings: {}, builtin: true },
    "minio.default": { type: "minio", id: "default", settings: {}, builtin: true },
  };
}

/** Reads the `storage_providers` block; problems go to `issues`. */
export function parseProviders(block: unknown, src: SourceFile, issues: FdlIssue[]): ProviderTable {
  const table = builtinProviders();
  if (block === undefined || block === null) return table;
  const base = ["storage_providers"];
  if (!isPlainObject(block)) {
    issues.push(
      src.issue("error", base, "storage_providers must be a map of provider types (s3, minio, ...)"),
    );
    return table;
  }
  for (const [rawType, ids] of Object.entries(block)) {
    const type = rawType.toLowerCase() as StorageProviderType;
    if (!STORAGE_PROVIDER_TYPES.includes(type)) {
      issues.push(
        src.issue(
          "error",
          [...base, rawType],
          `unknown storage provider type '${rawType}'; use one of ${STORAGE_PROVIDER_TYPES.join(", ")}`,
          "key",
        ),
      );
      continue;
    }
    if (ids === null || ids === undefined) continue; // `s3:` with nothing under it: the built-in one
    if (!isPlainObject(ids)) {
      issues.push(
        src.issue("error", [...base, rawType], `storage_providers.${rawType} must map ids to settings`),
      );
      continue;
    }
    for (const [id, settings] of Object.entries(ids)) {
      const path = [...base, rawType, id];
      if (!isPlainObject(settings)) {
        issues.push(
          src.issue(
            "error",
            path,
            `the settings of '${type}.${id}' must be a map (${REQUIRED[type].map((k) => k.join(" or ")).join(", ")})`,
          ),
        );
        continue;
      }
      const builtin = id === "default" && (type === "s3" || type === "minio");
      for (const alternatives of builtin ? [] : REQUIRED[type]) {
        if (!alternatives.some((k) => settings[k] !== undefined && settings[k] !== "")) {
          issues.push(
            src.issue(
              "error",
              path,
              `'${type}.${id}' needs ${alternatives.map((k) => `'${k}'`).join(" or ")}; add it under storage_providers.${rawType}.${id}`,
              "key",
            ),
          );
        }
      }
      table[`${type}.${id}`] = { type, id, settings, builtin };
    }
  }
  return table;
}

/**
 * `s3` / `S3` / `s3.my_s3` / `webdav.dcache` to the canonical `<type>.<id>` (the id is everything
 * after the first dot, so ids may contain dots), or an error message naming what exists.
 */
export function resolveProviderRef(ref: string, table: ProviderTable): { id: string } | { error: string } {
  const dot = ref.indexOf(".");
  const type = (dot < 0 ? ref : ref.slice(0, dot)).toLowerCase();
  const id = dot < 0 ? "default" : ref.slice(dot + 1);
  if (!STORAGE_PROVIDER_TYPES.includes(type as StorageProviderType)) {
    return {
      error: `unknown storage provider type '${type}' in '${ref}'; use one of ${STORAGE_PROVIDER_TYPES.join(", ")}`,
    };
  }
  const canonical = `${type}.${id}`;
  if (table[canonical]) return { id: canonical };
  const known = Object.keys(table).join(", ");
  return {
    error: `storage provider '${ref}' is not defined; define it under storage_providers.${type}.${id} or use one of: ${known}`,
  };
}
