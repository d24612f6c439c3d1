/**
 * The store's users and their key pairs. A user is an S3 account: a canonical id and a display
 * name; it owns the buckets it creates and the objects it writes. Each key pair signs for one user
 * and may carry a bucket allowlist, which acts like an IAM policy of a user inside that account: the
 * key pair reaches those buckets only, with its account's rights there. The engine gives every
 * function such a key pair in its own (admin) account, limited to the function's buckets, so what a
 * function writes stays owned by the engine as everything else in its buckets.
 *
 * All of it lives in memory (the engine keeps function key pairs durable in its data dir): checking
 * who signed a request never reads the disk.
 */
import { createHash } from "node:crypto";
import { OWNER } from "./listing.js";

export interface StoreUser {
  /** Canonical user id (64 hex digits), as S3's Owner/ID. */
  id: string;
  displayName: string;
}

export interface KeyPair {
  accessKeyId: string;
  secretAccessKey: string;
  /** The user this key pair signs for (its display name); key pairs without one are the first user's. */
  user?: string;
  /** The only buckets this key pair may use (its user's rights there); absent: no such limit. */
  buckets?: readonly string[];
}

/**
 * The owner S3 records for what an unsigned request writes (into a public-read-write bucket): S3's
 * canonical id of anonymous requesters, not the bucket's owner. The bucket owner may still delete
 * or overwrite such an object, but reads it, or changes its ACL, only when its ACL grants that.
 */
export const ANONYMOUS: StoreUser = { id: "65a011a29cdf8ec533ec3d1ccaae921c", displayName: "anonymous" };

/** Who signed a request. */
export interface Principal {
  user: StoreUser;
  /** See KeyPair.buckets. */
  buckets?: ReadonlySet<string>;
}

/**
 * The canonical id of a user: the user named "scar" (the single owner of stores written before
 * users existed) keeps the id those stores showed; any other name gets a stable hash of itself.
 */
export function userIdOf(name: string): string {
  if (name === OWNER.DisplayName) return OWNER.ID;
  return createHash("sha256").update(`scar-store-user\0${name}`).digest("hex");
}

export class Users {
  /** accessKeyId -> secret, what the signature checks read (sigv4.ts Credentials). */
  readonly secrets = new Map<string, string>();
  private readonly principals = new Map<string, Principal>();
  private readonly byId = new Map<string, StoreUser>();
  /**
   * The first user given: it owns buckets and objects whose journal records name no owner (stores
   * written before users existed), and the engine's buckets.
   */
  readonly admin: StoreUser;

  constructor(pairs: readonly KeyPair[]) {
    if (pairs.length === 0) throw new Error("the store needs at least one key pair");
    const name = pairs[0]!.user ?? OWNER.DisplayName;
    this.admin = { id: userIdOf(name), displayName: name };
    this.byId.set(this.admin.id, this.admin);
    for (const p of pairs) this.add(p);
  }

  /** Adds a key pair (or replaces the one with its access key id). */
  add(pair: KeyPair): Principal {
    if (!pair.accessKeyId || !pair.secretAccessKey)
      throw new Error("a key pair needs an access key id and a secret access key");
    const name = pair.user ?? this.admin.displayName;
    const id = userIdOf(name);
    let user = this.byId.get(id);
    if (!user) {
      user = { id, displayName: name };
      this.byId.set(id, user);
    }
    const principal: Principal = pair.buckets ? { user, buckets: new Set(pair.buckets) } : { user };
    this.secrets.set(pair.accessKeyId, pair.secretAccessKey);
    this.principals.set(pair.accessKeyId, principal);
    return principal;
  }

  /** Removes a key pair; requests signed with it get InvalidAccessKeyId from then on. */
  remove(accessKeyId: string): boolean {
    this.principals.delete(accessKeyId);
    return this.secrets.delete(accessKeyId);
  }

  principal(accessKeyId: string): Principal | undefined {
    return this.principals.get(accessKeyId);
  }

  /** The user of a canonical id (absent: the admin); an id no key pair names any more keeps its id as name. */
  user(id: string | undefined): StoreUser {
    if (id === undefined) return this.admin;
    if (id === ANONYMOUS.id) return ANONYMOUS;
    return this.byId.get(id) ?? { id, displayName: id };
  }
}
