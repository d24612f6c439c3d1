/**
 * Each deployed function's own key pair for the embedded store, kept in `<data dir>/function-keys`
 * (JSON, mode 0600, like `credentials`) so a function keeps its key pair across engine restarts.
 *
 * A function's key pair belongs to the engine's own store user (the admin, who owns every bucket
 * the engine makes) and is limited to the function's input and output buckets: an allowlist in the
 * store (store/users.ts), which acts as an IAM policy of a user inside the engine's account would.
 * We chose that over making each function a user of its own with ACL grants because the engine
 * keeps owning everything: what a function writes is the engine's, as the outputs it stages out
 * are, and a bucket two functions share needs no grant to each. A script that reaches the store
 * (network: host) gets this key pair instead of the engine's, so it cannot read other buckets.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../config/scar-cfg.js";

export interface FunctionKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

export class FunctionKeys {
  private readonly path: string;
  private readonly keys: Map<string, FunctionKeyPair>;

  constructor(dataDir: string) {
    this.path = join(dataDir, "function-keys");
    this.keys = new Map();
    if (!existsSync(this.path)) return;
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(this.path, "utf8"));
    } catch (e) {
      throw new Error(`${this.path} is damaged (${(e as Error).message}); move it away to get new key pairs`);
    }
    for (const [name, pair] of Object.entries((doc as Record<string, unknown>) ?? {})) {
      const p = pair as Partial<FunctionKeyPair> | null;
      if (typeof p?.accessKeyId !== "string" || typeof p.secretAccessKey !== "string")
        throw new Error(`${this.path}: the key pair of '${name}' is incomplete; move the file away`);
      this.keys.set(name, { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey });
    }
  }

  get(name: string): FunctionKeyPair | undefined {
    return this.keys.get(name);
  }

  names(): string[] {
    return [...this.keys.keys()];
  }

  /** The function's key pair, made (and written to disk) the first time. */
  ensure(name: string): FunctionKeyPair {
    const had = this.keys.get(name);
    if (had) return had;
    const pair = newKeyPair("FN");
    this.keys.set(name, pair);
    this.save();
    return pair;
  }

  /** Forgets a function's key pair; returns it (the store must stop accepting it). */
  remove(name: string): FunctionKeyPair | undefined {
    const had = this.keys.get(name);
    if (!had) return undefined;
    this.keys.delete(name);
    this.save();
    return had;
  }

  private save(): void {
    writeFileAtomic(this.path, `${JSON.stringify(Object.fromEntries(this.keys), null, 2)}\n`); // 0600
  }
}

/**
 * A random key pair: upper-case alphanumerics as S3 access key ids are, after `SCAR` and `tag` (FN:
 * a deployed function's, EM: one lent to `scar emulate`), which tell them from the engine's own.
 */
export function newKeyPair(tag: string): FunctionKeyPair {
  return {
    accessKeyId: `SCAR${tag}${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString("base64url"),
  };
}
