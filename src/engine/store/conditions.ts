/**
 * Conditional writes (If-Match, If-None-Match on PutObject, CompleteMultipartUpload and CopyObject),
 * as the S3 API reference describes them:
 * - `If-None-Match: *`: write only if no object has the key; otherwise 412 PreconditionFailed.
 *   Any other value is not something S3 implements (501 NotImplemented).
 * - `If-Match: <etag>`: write only if the key's object has that ETag (412 otherwise); no object at
 *   all is 404 NoSuchKey.
 * - another write to the same key still being committed when the condition is checked: 409
 *   ConditionalRequestConflict (the client retries).
 * The check runs at commit time, not when the request arrives: an upload takes long, and the
 * answer must hold for the moment the object is replaced (see Backend.commitObject).
 */
import type { ObjectMeta } from "./backend.js";
import { errors, S3Error } from "./errors.js";

export interface WriteCondition {
  /** ETags (unquoted) one of which the current object must have */
  ifMatch?: string[];
  /** the key must hold no object */
  ifNoneMatch?: true;
}

/** The write condition of a request's headers, or undefined when it has none. */
export function writeCondition(headers: {
  "if-match"?: string;
  "if-none-match"?: string;
}): WriteCondition | undefined {
  const m = headers["if-match"];
  const nm = headers["if-none-match"];
  if (m === undefined && nm === undefined) return undefined;
  const cond: WriteCondition = {};
  if (nm !== undefined) {
    if (nm.trim() !== "*") {
      throw new S3Error("NotImplemented", "If-None-Match on a write accepts only '*'", {
        Header: "If-None-Match",
      });
    }
    cond.ifNoneMatch = true;
  }
  if (m !== undefined) {
    cond.ifMatch = m
      .split(",")
      .map((t) => t.trim().replace(/^W\//, "").replace(/^"|"$/g, ""))
      .filter((t) => t !== "");
  }
  return cond;
}

/** Throws S3's error when `current` (the key's object now, if any) fails the condition. */
export function checkWriteCondition(
  cond: WriteCondition,
  key: string,
  current: ObjectMeta | undefined,
): void {
  if (cond.ifNoneMatch && current) {
    throw new S3Error("PreconditionFailed", undefined, { Condition: "If-None-Match" });
  }
  if (cond.ifMatch) {
    if (!current) throw errors.noSuchKey(key);
    if (!cond.ifMatch.some((t) => t === "*" || t === current.etag)) {
      throw new S3Error("PreconditionFailed", undefined, { Condition: "If-Match" });
    }
  }
}

export function conflictError(key: string): S3Error {
  return new S3Error(
    "ConditionalRequestConflict",
    "Another write to this key was being committed while the condition was checked; retry the request",
    { Key: key },
  );
}
