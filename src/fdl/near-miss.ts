/**
 * "Did you mean" for keys: the known key a misspelt one was meant to be. A near miss of a known key
 * is almost always a typo (`memmory`, `init_scrpt`) whose value would otherwise be dropped without a
 * sound, so the FDL treats it as an error; keys that resemble nothing known stay warnings, because
 * OSCAR and newer SCAR versions add keys.
 */

/**
 * Damerau-Levenshtein distance (optimal string alignment): insertions, deletions, substitutions and
 * swaps of two neighbouring characters each cost 1, so `memroy` is 1 from `memory`.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known key `key` most likely misspells: at most 2 edits away, 1 when the longer of the two has
 * 4 or 5 characters, and none up to 3 (`vo` and `id`, `gpu` and `cpu` are different words, not
 * typos). Ties go to the first known key. Undefined when none is that close.
 */
export function nearMiss(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const k of known) {
    if (k === key) return undefined;
    const longer = Math.max(k.length, key.length);
    const limit = longer <= 3 ? 0 : longer <= 5 ? 1 : 2;
    const distance = editDistance(key, k);
    if (distance <= limit && (!best || distance < best.distance)) best = { key: k, distance };
  }
  return best?.key;
}
