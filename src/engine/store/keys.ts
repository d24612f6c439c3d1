/**
 * Key ordering and validation. S3 lists keys in UTF-8 byte order; JavaScript compares strings by
 * UTF-16 code units, which differs for characters above U+FFFF, so we compare by code point.
 */
import { S3Error } from "./errors.js";

/** Maps a UTF-16 code unit so that unit order equals code point (= UTF-8 byte) order. */
function rank(c: number): number {
  if (c >= 0xe000) return c - 0x800;
  if (c >= 0xd800) return c + 0x2000;
  return c;
}

export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/** The smallest string greater than every string that starts with `prefix` (prefix must not be empty). */
export function prefixSuccessor(prefix: string): string {
  const cps = [...prefix];
  const last = cps.pop()!.codePointAt(0)!;
  let next = last + 1;
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
  if (next > 0x10ffff) return prefixSuccessor(cps.join("")) ?? "";
  return cps.join("") + String.fromCodePoint(next);
}

/** Index of the first element >= key (binary search over a list sorted by compareKeys). */
export function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(sorted[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export const MAX_KEY_BYTES = 1024;

export function validateKey(key: string): void {
  if (key === "") throw new S3Error("InvalidArgument", "Key must not be empty", { ArgumentName: "key" });
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) {
    throw new S3Error("KeyTooLongError", undefined, {
      Size: String(Buffer.byteLength(key)),
      MaxSizeAllowed: "1024",
    });
  }
}

/** S3's naming rules for new buckets (general purpose buckets). */
export function validBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !/\.\./.test(name) &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith("xn--") &&
    !name.startsWith("sthree-") &&
    !name.endsWith("-s3alias") &&
    !name.endsWith("--ol-s3")
  );
}
