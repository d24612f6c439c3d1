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
 * Neither input is modified; the result shares no objects with them. Keys are the inputs' own
 * keys only, whatever they are called: an FDL key `constructor`, `toString` or `__proto__` is data
 * like any other, never Object.prototype's.
 */
export function deepMerge<T>(base: T, override: unknown): T {
  if (override === undefined || override === null) return copy(base);
  if (!isPlainObject(base) || !isPlainObject(override)) return copy(override) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) {
    const o = ownValue(override, k);
    setOwn(out, k, o === undefined || o === null ? copy(v) : deepMerge(v, o));
  }
  for (const [k, v] of Object.entries(override)) {
    if (!Object.hasOwn(base, k) && v !== undefined) setOwn(out, k, copy(v));
  }
  return out as T;
}

/** Merges layers from lowest to highest precedence. */
export function mergeLayers<T>(...layers: unknown[]): T {
  const present = layers.filter((l) => l !== undefined && l !== null);
  if (present.length === 0) return {} as T;
  if (present.length === 1) return copy(present[0]) as T;
  // Each deepMerge copies what it keeps, so the lowest layer is never copied twice.
  return present.slice(1).reduce((acc, layer) => deepMerge(acc, layer), present[0]) as T;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** The value of `obj`'s own key `key`; undefined when it has none (never an inherited member). */
export function ownValue(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * Sets `obj`'s own key `key`. A plain assignment of `__proto__` would replace the object's prototype
 * (and lose the key); defining the property keeps it as data.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__")
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** A deep copy of plain JSON-like data (much cheaper than structuredClone for small objects). */
function copy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(copy) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) setOwn(out, k, copy(x));
    return out as T;
  }
  return v;
}
