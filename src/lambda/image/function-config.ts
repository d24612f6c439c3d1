/**
 * SCAR's `function_config.yaml` (reference/scar-behaviour.md §4.10): the merged `lambda` section of
 * the function's FDL entry with `init_script` reduced to its file name and `config_path` dropped, plus
 * `storage_providers`, plus `ecr.delete_image` for the image runtime. The runtime inside the image reads
 * it from /var/task (src/lambda/config.ts). Keys are written sorted so the file, and the layer holding
 * it, do not depend on the order the FDL was written in.
 */
import { basename } from "node:path";
import { stringify } from "yaml";
import type { FunctionSpec, StorageProviderSpec } from "../../fdl/spec.js";

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v as Record<string, unknown>)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** `storage_providers` as SCAR's FDL writes it: `{<type>: {<id>: settings}}`, defaults left out when empty. */
export function storageProvidersDocument(
  providers: Record<string, StorageProviderSpec>,
): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of Object.values(providers)) {
    if (p.builtin && Object.keys(p.settings).length === 0) continue;
    out[p.type] ??= {};
    out[p.type]![p.id] = p.settings;
  }
  return out;
}

/** The document's object (see functionConfigYaml). */
export function functionConfigDocument(
  spec: FunctionSpec,
  providers: Record<string, StorageProviderSpec>,
): Record<string, unknown> {
  const raw = (spec.raw.lambda ?? {}) as Record<string, unknown>;
  const doc: Record<string, unknown> = { ...raw, name: spec.name };
  delete doc.config_path;
  if (spec.script) doc.init_script = basename(spec.script);
  else delete doc.init_script;
  const ecr = (spec.raw.ecr ?? {}) as Record<string, unknown>;
  doc.ecr = { delete_image: ecr.delete_image ?? true };
  doc.storage_providers = storageProvidersDocument(providers);
  return sortKeys(doc) as Record<string, unknown>;
}

export function functionConfigYaml(
  spec: FunctionSpec,
  providers: Record<string, StorageProviderSpec>,
): string {
  return stringify(functionConfigDocument(spec, providers));
}
