/**
 * AWS Signature Version 2 (HMAC-SHA1), header and query-string forms. Old clients still use it:
 * boto3 1.26 presigns S3 URLs with SigV2 by default, and s3cmd can be set to it. Spec: "Signing and
 * Authenticating REST Requests" in the Amazon S3 developer guide (legacy).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { S3Error } from "./errors.js";
import {
  type Credentials,
  type QueryParam,
  type RequestParts,
  type SigningContext,
  UNSIGNED_PAYLOAD,
} from "./sigv4.js";

const MAX_SKEW_MS = 15 * 60 * 1000;

// Query parameters that are part of the signed resource.
const SUBRESOURCES = new Set([
  "acl",
  "cors",
  "delete",
  "lifecycle",
  "location",
  "logging",
  "notification",
  "partNumber",
  "policy",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "restore",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

function resource(path: string, query: QueryParam[]): string {
  const sub = query
    .filter((q) => SUBRESOURCES.has(q.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((q) => (q.value === "" ? q.name : `${q.name}=${q.value}`));
  return sub.length ? `${path}?${sub.join("&")}` : path;
}

function amzHeaders(req: IncomingMessage): string {
  const m = new Map<string, string[]>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!name.startsWith("x-amz-")) continue;
    const v = req.rawHeaders[i + 1]!.trim();
    m.set(name, [...(m.get(name) ?? []), v]);
  }
  return [...m.keys()]
    .sort()
    .map((k) => `${k}:${m.get(k)!.join(",")}\n`)
    .join("");
}

function matches(secret: string, candidates: string[], signature: string): string | true {
  const given = Buffer.from(signature, "utf8");
  for (const sts of candidates) {
    const want = Buffer.from(createHmac("sha1", secret).update(sts, "utf8").digest("base64"), "utf8");
    if (want.length === given.length && timingSafeEqual(want, given)) return true;
  }
  return candidates[0]!;
}

function context(accessKey: string, presigned: boolean, signature: string): SigningContext {
  // SigV2 signs no payload hash and has no chunk signatures; bodies are taken as unsigned.
  return {
    accessKey,
    amzDate: "",
    scope: "",
    signingKey: Buffer.alloc(0),
    seedSignature: signature,
    payloadHash: UNSIGNED_PAYLOAD,
    presigned,
  };
}

/** Verifies `Authorization: AWS <key>:<signature>` or `?AWSAccessKeyId=&Expires=&Signature=`. */
export function verifyV2(
  req: IncomingMessage,
  parts: RequestParts,
  credentials: Credentials,
  now = Date.now(),
): SigningContext | null {
  const auth = req.headers.authorization;
  const q = new Map(parts.query.map((p) => [p.name, p.value]));
  let accessKey: string;
  let signature: string;
  let dateLine: string;
  const presigned = auth === undefined;
  if (auth !== undefined) {
    const m = /^AWS ([^:]+):(.+)$/.exec(auth);
    if (!m) return null;
    accessKey = m[1]!;
    signature = m[2]!;
    const t = Date.parse(String(req.headers["x-amz-date"] ?? req.headers.date ?? ""));
    if (Number.isNaN(t))
      throw new S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    if (Math.abs(now - t) > MAX_SKEW_MS) throw new S3Error("RequestTimeTooSkewed");
    // With x-amz-date present, the Date line of the string to sign is empty.
    dateLine = req.headers["x-amz-date"] !== undefined ? "" : String(req.headers.date);
  } else {
    const k = q.get("AWSAccessKeyId");
    const s = q.get("Signature");
    const e = q.get("Expires");
    if (k === undefined || s === undefined || e === undefined) return null;
    if (!/^\d+$/.test(e))
      throw new S3Error(
        "AccessDenied",
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
      );
    if (now > Number(e) * 1000) {
      throw new S3Error("AccessDenied", "Request has expired", {
        Expires: new Date(Number(e) * 1000).toISOString(),
        ServerTime: new Date(now).toISOString(),
      });
    }
    accessKey = k;
    signature = s;
    dateLine = e;
  }
  const secret = credentials.get(accessKey);
  if (secret === undefined) throw new S3Error("InvalidAccessKeyId", undefined, { AWSAccessKeyId: accessKey });
  const head = [
    parts.method,
    String(req.headers["content-md5"] ?? ""),
    String(req.headers["content-type"] ?? ""),
    dateLine,
  ].join("\n");
  const amz = amzHeaders(req);
  const query = parts.query.filter((p) => !["AWSAccessKeyId", "Signature", "Expires"].includes(p.name));
  const candidates = [...new Set([parts.rawPath, encodeURI(parts.path)])].map(
    (p) => `${head}\n${amz}${resource(p, query)}`,
  );
  const r = matches(secret, candidates, signature);
  if (r !== true) {
    throw new S3Error("SignatureDoesNotMatch", undefined, {
      AWSAccessKeyId: accessKey,
      StringToSign: r,
      SignatureProvided: signature,
    });
  }
  return context(accessKey, presigned, signature);
}
