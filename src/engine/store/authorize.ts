/**
 * What a signed request may do, as S3 decides it with canned ACLs (acl.ts decides anonymous ones).
 * The bucket owner may do everything with the bucket and delete or overwrite any object in it;
 * another user may list it when its ACL grants READ (public-read, public-read-write,
 * authenticated-read) and write into it when it grants WRITE (public-read-write). Reading an object
 * is its own ACL's business: its owner (the writer) always, the bucket owner when the object is
 * bucket-owner-read or bucket-owner-full-control, anyone signed when it is public or
 * authenticated-read. An object's ACL and tags belong to its owner (and to the bucket owner under
 * bucket-owner-full-control). What an unsigned request wrote (a public-read-write bucket) is owned by
 * anonymous (users.ts ANONYMOUS): the bucket owner may delete or overwrite it but not read it, unless
 * its ACL says so. A key pair with a bucket allowlist (users.ts) reaches nothing else.
 * Everything here reads the in-memory index: no request pays a disk read for its authorization.
 */
import type { CannedAcl } from "./acl.js";
import type { Backend, BucketState, ObjectMeta } from "./backend.js";
import type { Principal } from "./users.js";

function grantsRead(acl: CannedAcl | undefined): boolean {
  return acl === "public-read" || acl === "public-read-write" || acl === "authenticated-read";
}

function grantsWrite(acl: CannedAcl | undefined): boolean {
  return acl === "public-read-write";
}

/** The owner of a bucket: journals written before users existed name none, and it is the admin's. */
export function bucketOwner(b: BucketState, adminId: string): string {
  return b.owner ?? adminId;
}

/** The owner of an object: records name one only when it is not the bucket's owner. */
export function objectOwner(b: BucketState, o: ObjectMeta, adminId: string): string {
  return o.owner ?? bucketOwner(b, adminId);
}

/** May `me` read this object's bytes (GET, HEAD, a copy's source)? */
export function canReadObject(b: BucketState, o: ObjectMeta, me: string, adminId: string): boolean {
  if (objectOwner(b, o, adminId) === me || b.publicObjects || grantsRead(o.acl)) return true;
  return (
    bucketOwner(b, adminId) === me && (o.acl === "bucket-owner-read" || o.acl === "bucket-owner-full-control")
  );
}

/** May `me` read or change this object's ACL or tags? */
function controlsObject(b: BucketState, o: ObjectMeta, me: string, adminId: string): boolean {
  if (objectOwner(b, o, adminId) === me) return true;
  return bucketOwner(b, adminId) === me && o.acl === "bucket-owner-full-control";
}

export interface SignedRequest {
  method: string;
  bucket: string;
  key: string;
  query: ReadonlyMap<string, string>;
  /** x-amz-copy-source, parsed */
  copySource?: { bucket: string; key: string };
}

/** Whether a signed request may go on to its handler (which answers NoSuchBucket, NoSuchKey...). */
export function signedAllowed(backend: Backend, who: Principal, adminId: string, r: SignedRequest): boolean {
  const me = who.user.id;
  if (who.buckets) {
    if (r.bucket !== "" && !who.buckets.has(r.bucket)) return false;
    if (r.copySource && !who.buckets.has(r.copySource.bucket)) return false;
  }
  if (r.copySource) {
    const sb = backend.buckets.get(r.copySource.bucket);
    const so = sb?.objects.get(r.copySource.key);
    // a source that does not exist is NoSuchKey to who may list its bucket, else AccessDenied
    if (sb && !so && bucketOwner(sb, adminId) !== me && !grantsRead(sb.acl)) return false;
    if (sb && so && !canReadObject(sb, so, me, adminId)) return false;
  }
  if (r.bucket === "") return true; // ListBuckets: each user sees their own
  const b = backend.buckets.get(r.bucket);
  if (!b) return true; // CreateBucket, or NoSuchBucket from the handler
  const owner = bucketOwner(b, adminId) === me;
  const { method, query } = r;
  if (r.key === "") {
    if (owner) return true;
    // CreateBucket of someone else's bucket: the handler answers BucketAlreadyExists
    if (method === "PUT" && query.size === 0) return true;
    if (method === "HEAD") return grantsRead(b.acl) || b.publicObjects === true;
    if (method === "GET") {
      const listing = [...query.keys()].every((q) => LIST_PARAMS.has(q)) || query.has("uploads");
      return listing && (grantsRead(b.acl) || b.publicObjects === true);
    }
    if (method === "POST" && query.has("delete")) return grantsWrite(b.acl);
    // a browser form: post-object.ts checks that the policy's signer may write (mayWrite)
    if (method === "POST" && query.size === 0) return true;
    return false;
  }
  const o = b.objects.get(r.key);
  const objectSub = query.has("acl") || query.has("tagging");
  if (objectSub) return o === undefined ? owner : controlsObject(b, o, me, adminId);
  if (method === "GET" || method === "HEAD") {
    if (query.has("uploadId")) return owner || grantsWrite(b.acl);
    if (!o) return owner || grantsRead(b.acl);
    return canReadObject(b, o, me, adminId);
  }
  // PUT (object, part, copy), DELETE, POST (multipart create/complete): writes into the bucket
  return mayWrite(b, me, adminId);
}

/** May `me` write objects into this bucket? */
export function mayWrite(b: BucketState, me: string, adminId: string): boolean {
  return bucketOwner(b, adminId) === me || grantsWrite(b.acl);
}

export const LIST_PARAMS = new Set([
  "list-type",
  "prefix",
  "delimiter",
  "max-keys",
  "continuation-token",
  "start-after",
  "encoding-type",
  "fetch-owner",
  "marker",
]);
