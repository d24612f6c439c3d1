/**
 * The one merge rule of scar's layered configuration (CLI > FDL > scar.cfg).
 *
 * - Maps merge key by key, recursively: an FDL that sets `lambda.memory` keeps every other
 *   `lambda` default from scar.cfg.
 * - A list in a higher layer REPLACES the lower layer's list. SCAR concatenated lists, so an FDL
 *   `instance_types: [g3s.xlarge]` became `[m3.medium, g3s.xlarge]` and an `input` list in
 *   scar.cfg was silently added to every function's own inputs. Replacing is what a person
 *   reading the FDL expects: the list you see is the list you get.
 * - `null` and `undefined` in a higher layer do not override a lower layer's value (as in SCAR), so
 *   `memory:` with no value does not erase the default. A `null` for a key no lower layer has is
 *   kept, so the validation can say that the value is missing.
 *
 * Neither input is modified; the result shares no objects with them.
 */
export function deepMerge<T>(base: T, override: unknown): T {
  if (override === undefined || override === null) return clone(base);
  if (isPlainObject(base) && isPlainObject(override)) {
    const out: Record<string, unknown> = clone(base) as Record<string, unknown>;
    for (const [k, v] of Object.entries(override)) {
      if (v === undefined || (v === null && k in out)) continue;
      out[k] = k in out ? deepMerge(out[k], v) : clone(v);
    }
    return out as T;
  }
  return clone(override) as T;
}

/** Merges layers from lowest to highest precedence. */
export function mergeLayers<T>(...layers: unknown[]): T {
  return layers.reduce((acc, layer) => deepMerge(acc, layer), {}) as T;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}
