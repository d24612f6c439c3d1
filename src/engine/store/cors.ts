/**
 * Cross-origin requests from browser pages (the OSCAR dashboard calls the store with the AWS SDK from
 * its own origin): one allowlist of origins for the whole server, from scar.cfg (`local.cors_origins`;
 * none by default). An origin not on it is judged by the bucket's own rules (bucket-cors.ts).
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
 * answered 204 with the method and the request headers it asked for, when they are ones the server
 * takes; any other preflight is refused (403), so the browser never sends the request. Actual
 * responses to an allowed origin carry Access-Control-Allow-Origin (the origin itself, with
 * credentials allowed: the pages send Authorization) and the response headers the page may read.
 * The API uses the same rules with its own methods and headers.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface CorsPolicy {
  /** Allowed origins (`scheme://host[:port]`, exactly as the browser sends them), or "*" for any. */
  origins: readonly string[];
  methods: readonly string[];
  /** Request headers a page may send: lower-case names; a trailing `*` matches any suffix. */
  headers: readonly string[];
  /** Response headers a page may read. */
  expose: readonly string[];
}

/** What S3 clients in a browser send and read (the AWS SDK v3: x-amz-*, amz-sdk-*, checksums). */
export const S3_CORS = {
  methods: ["GET", "PUT", "POST", "DELETE", "HEAD"],
  headers: [
    "authorization",
    "content-type",
    "content-md5",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "x-amz-*",
    "amz-sdk-*",
  ],
  expose: [
    "etag",
    "content-length",
    "content-range",
    "last-modified",
    "x-amz-request-id",
    "x-amz-id-2",
    "x-amz-version-id",
    "x-amz-delete-marker",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
  ],
} as const;

export function originAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.origins.includes("*") || policy.origins.includes(origin);
}

function headerAllowed(policy: CorsPolicy, name: string): boolean {
  return policy.headers.some((h) => (h.endsWith("*") ? name.startsWith(h.slice(0, -1)) : name === h));
}

export type CorsOutcome = "not-cors" | "preflight-ok" | "preflight-refused";

/**
 * Handles CORS for one request: answers a preflight (the caller stops there unless "not-cors"), or
 * adds the headers of an actual cross-origin response. `refuse` sends the server's own error body.
 */
export function applyCors(
  policy: CorsPolicy,
  req: IncomingMessage,
  res: ServerResponse,
  refuse: (message: string) => void,
): CorsOutcome {
  const origin = req.headers.origin;
  if (typeof origin !== "string") return "not-cors";
  const wanted = req.headers["access-control-request-method"];
  const preflight = req.method === "OPTIONS" && typeof wanted === "string";
  const allowed = originAllowed(policy, origin);
  if (!preflight) {
    if (allowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-allow-credentials", "true");
      res.setHeader("access-control-expose-headers", policy.expose.join(", "));
    }
    res.setHeader("vary", "Origin");
    return "not-cors";
  }
  res.setHeader("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  if (!allowed) {
    refuse(
      policy.origins.length === 0
        ? `cross-origin requests are not allowed: add '${origin}' to local.cors_origins in scar.cfg`
        : `the origin '${origin}' is not in local.cors_origins of scar.cfg`,
    );
    return "preflight-refused";
  }
  const method = wanted.toUpperCase();
  const asked = String(req.headers["access-control-request-headers"] ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
  const refusedHeaders = asked.filter((h) => !headerAllowed(policy, h));
  if (!policy.methods.includes(method) || refusedHeaders.length > 0) {
    refuse(
      !policy.methods.includes(method)
        ? `the method ${method} is not allowed cross-origin`
        : `the request headers ${refusedHeaders.join(", ")} are not allowed cross-origin`,
    );
    return "preflight-refused";
  }
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("access-control-allow-credentials", "true");
  res.setHeader("access-control-allow-methods", policy.methods.join(", "));
  if (asked.length > 0) res.setHeader("access-control-allow-headers", asked.join(", "));
  res.setHeader("access-control-max-age", "600");
  res.writeHead(204).end();
  return "preflight-ok";
}
