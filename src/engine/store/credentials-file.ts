/**
 * The key pairs of `scar store serve --credentials-file FILE`: an AWS shared credentials file (the
 * format of ~/.aws/credentials), one profile per key pair. A profile's name is its user unless it
 * says `user = NAME` (several key pairs of one user); `buckets = a, b` limits a key pair to those
 * buckets (users.ts). The first profile's user is the admin, who owns buckets of stores written
 * before users existed.
 */
import { readFileSync } from "node:fs";
import { parse } from "ini";
import type { KeyPair } from "./users.js";

export function readCredentialsFile(path: string): KeyPair[] {
  const text = readFileSync(path, "utf8");
  const doc = parse(text) as Record<string, unknown>;
  const pairs: KeyPair[] = [];
  const ids = new Set<string>();
  for (const [profile, raw] of Object.entries(doc)) {
    if (typeof raw !== "object" || raw === null)
      throw new Error(`${path}: "${profile}" is outside any [profile] section`);
    const p = raw as Record<string, unknown>;
    const id = p.aws_access_key_id;
    const secret = p.aws_secret_access_key;
    if (typeof id !== "string" || id === "" || typeof secret !== "string" || secret === "")
      throw new Error(`${path}: profile [${profile}] needs aws_access_key_id and aws_secret_access_key`);
    if (ids.has(id)) throw new Error(`${path}: access key ${id} is given twice`);
    ids.add(id);
    const user = typeof p.user === "string" && p.user !== "" ? p.user : profile;
    const buckets =
      typeof p.buckets === "string"
        ? p.buckets
            .split(",")
            .map((b) => b.trim())
            .filter((b) => b !== "")
        : undefined;
    pairs.push({ accessKeyId: id, secretAccessKey: secret, user, ...(buckets ? { buckets } : {}) });
  }
  if (pairs.length === 0) throw new Error(`${path}: no [profile] with a key pair`);
  return pairs;
}
