/**
 * POST /system/buckets/<bucket>/presign: OSCAR's short-lived URL to upload or download one object of
 * the store without its keys (grycap/oscar `pkg/handlers/buckets/presign_bucket.go`, OSCAR ≥ 4.0).
 *   body   {object_key, operation: upload|download, expires_in? (s, 1..604800, 900 when 0 or absent),
 *           content_type?, extra_headers?}
 *   answer 200 {object_key, operation, method: PUT|GET, url, expires_at (RFC 3339), headers?}: the
 *          headers the caller must send with the URL, because they are signed into it
 *   400 for a bad body (OSCAR's wording), 404 for a bucket that does not exist.
 * The URL is signed by the AWS SDK's presigner with the store's keys (SigV4, query string), so the
 * store checks it like any presigned request: an expired or altered one is refused there.
 * Only the admin calls it: the engine has one user, so OSCAR's per-user bucket checks do not apply.
 */

import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { HttpError } from "./http.js";

const DEFAULT_EXPIRY_SECONDS = 900;
const MAX_EXPIRY_SECONDS = 7 * 24 * 3600; // SigV4's limit too

export interface PresignRequest {
  objectKey: string;
  operation: "upload" | "download";
  expiresIn: number;
  contentType?: string;
  extraHeaders: Record<string, string>;
}

export interface PresignAnswer {
  object_key: string;
  operation: "upload" | "download";
  method: "PUT" | "GET";
  url: string;
  expires_at: string;
  headers?: Record<string, string>;
}

/** The store a URL is signed for: where clients reach it and the keys it accepts. */
export interface PresignStore {
  url: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The request body, checked as OSCAR checks it; HttpError 400 naming what is wrong. */
export function parsePresignRequest(body: unknown): PresignRequest {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  if (typeof b.object_key !== "string" || typeof b.operation !== "string")
    throw new HttpError(400, "Invalid presign request: object_key and operation are required");
  const objectKey = str(b.object_key).replace(/^\/+|\/+$/g, "");
  if (objectKey === "") throw new HttpError(400, "Object key cannot be empty");
  const operation = str(b.operation).toLowerCase();
  if (operation !== "upload" && operation !== "download")
    throw new HttpError(
      400,
      `Unsupported operation '${b.operation}'. Allowed values are 'upload' or 'download'`,
    );
  const raw = b.expires_in ?? 0;
  if (typeof raw !== "number" || !Number.isInteger(raw))
    throw new HttpError(400, `Invalid presign request: expires_in must be a whole number of seconds`);
  const expiresIn = raw === 0 ? DEFAULT_EXPIRY_SECONDS : raw;
  if (expiresIn < 1 || expiresIn > MAX_EXPIRY_SECONDS)
    throw new HttpError(
      400,
      `Invalid expiration requested: ${raw}. Allowed range is 1-${MAX_EXPIRY_SECONDS} seconds`,
    );
  const extraHeaders: Record<string, string> = {};
  if (b.extra_headers !== undefined && b.extra_headers !== null) {
    if (typeof b.extra_headers !== "object" || Array.isArray(b.extra_headers))
      throw new HttpError(400, "Invalid presign request: extra_headers must be an object of strings");
    for (const [k, v] of Object.entries(b.extra_headers as Record<string, unknown>)) {
      if (typeof v !== "string")
        throw new HttpError(400, `Invalid presign request: extra_headers.${k} must be a string`);
      extraHeaders[k.toLowerCase()] = v;
    }
  }
  const contentType = str(b.content_type);
  return { objectKey, operation, expiresIn, ...(contentType ? { contentType } : {}), extraHeaders };
}

/** Signs the URL of a checked request for `bucket` (which the caller has found to exist). */
export async function presign(
  store: PresignStore,
  bucket: string,
  req: PresignRequest,
  now: () => Date = () => new Date(),
): Promise<PresignAnswer> {
  const client = new S3Client({
    endpoint: store.url,
    region: store.region,
    forcePathStyle: true,
    credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
  });
  // Headers the caller must send: a download's content type is a response override in the query
  // instead (OSCAR's rule), an upload's is signed, and so is every extra header.
  const headers: Record<string, string> = { ...req.extraHeaders };
  if (req.operation === "upload" && req.contentType) headers["content-type"] = req.contentType;
  const signed = new Set(Object.keys(headers));
  const command =
    req.operation === "upload"
      ? new PutObjectCommand({ Bucket: bucket, Key: req.objectKey })
      : new GetObjectCommand({
          Bucket: bucket,
          Key: req.objectKey,
          ...(req.contentType ? { ResponseContentType: req.contentType } : {}),
        });
  // The SDK signs the headers present on the request; these are added to it before signing.
  // (The stack is typed per command; this middleware only touches the HTTP request's headers.)
  type Next = (args: { request: unknown }) => Promise<unknown>;
  const stack = command.middlewareStack as unknown as {
    add(m: (next: Next) => Next, o: { step: "build"; name: string }): void;
  };
  stack.add(
    (next) => async (args) => {
      Object.assign((args.request as { headers: Record<string, string> }).headers, headers);
      return next(args);
    },
    { step: "build", name: "scarPresignHeaders" },
  );
  const signedAt = now();
  const url = await getSignedUrl(client, command, {
    expiresIn: req.expiresIn,
    signableHeaders: signed,
    // Kept as headers, not moved into the query: the store refuses an x-amz-* header sent unsigned.
    unhoistableHeaders: signed,
    signingDate: signedAt,
  });
  client.destroy();
  return {
    object_key: req.objectKey,
    operation: req.operation,
    method: req.operation === "upload" ? "PUT" : "GET",
    url,
    expires_at: new Date(signedAt.getTime() + req.expiresIn * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
    ...(Object.keys(headers).length > 0 ? { headers: canonicalNames(headers) } : {}),
  };
}

/** `content-type` → `Content-Type`, as Go's http.CanonicalHeaderKey writes names in OSCAR's answer. */
function canonicalNames(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [
      k.replace(/(^|-)([a-z])/g, (_m, d, c) => d + c.toUpperCase()),
      v,
    ]),
  );
}
