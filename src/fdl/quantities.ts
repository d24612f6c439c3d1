/** Memory and CPU amounts as people write them: Lambda's MB numbers and Kubernetes quantities. */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/**
 * Memory in MiB (what Lambda calls MB), rounded up. A bare number means MB when `bareIsMB`
 * (SCAR's `memory: 1024`), bytes otherwise (Kubernetes). Returns undefined for text that is not an amount.
 */
export function memoryToMiB(v: number | string, bareIsMB: boolean): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? (bareIsMB ? v : Math.ceil(v / 2 ** 20)) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2];
  if (!unit) return bareIsMB ? n : Math.ceil(n / 2 ** 20);
  const bytes = n * (BINARY[unit] ?? DECIMAL[unit]!);
  return Math.ceil(bytes / 2 ** 20);
}

/** CPU in cores: `1`, `"0.5"`, `"500m"`. Undefined for text that is not an amount. */
export function cpuToCores(v: number | string): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)(m)?\s*$/.exec(v);
  if (!m) return undefined;
  return m[2] ? Number(m[1]) / 1000 : Number(m[1]);
}
