/** Content digests (`sha256:<hex>`): validation, hashing, verification while streaming. */
import { createHash, type Hash } from "node:crypto";

const SUPPORTED: Record<string, number> = { sha256: 64, sha512: 128 };

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    what = "content",
  ) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${actual}`);
    this.name = "DigestMismatchError";
  }
}

/** Throws unless `d` is a supported, well-formed digest. Returns it unchanged. */
export function checkDigest(d: string): string {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(d);
  if (!m || SUPPORTED[m[1]!] !== m[2]!.length) throw new Error(`unsupported or malformed digest "${d}"`);
  return d;
}

export function digestAlgorithm(d: string): string {
  return d.slice(0, d.indexOf(":"));
}

export function digestHex(d: string): string {
  return d.slice(d.indexOf(":") + 1);
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A running hash that reports itself as a digest string. */
export class Digester {
  private readonly hash: Hash;
  bytes = 0;
  constructor(readonly algorithm = "sha256") {
    this.hash = createHash(algorithm);
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  digest(): string {
    return `${this.algorithm}:${this.hash.digest("hex")}`;
  }
}

/** The ChainID of a layer stack (OCI image spec): chain(L0) = diff(L0), chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256(`${prev} ${d}`));
  }
  return out;
}
