/**
 * AWS Signature Version 4 verification, for the Authorization header and for presigned URLs, plus
 * the chunk and trailer signatures of aws-chunked uploads.
 * Spec: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API reference.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { S3Error } from "./errors.js";
import { verifyV2 } from "./sigv2.js";

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
const ALGORITHM = "AWS4-HMAC-SHA256";
/** S3 rejects requests more than 15 minutes away from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;
/** Presigned URLs may live at most 7 days. */
const MAX_EXPIRES_S = 7 * 24 * 3600;

export type Credentials = ReadonlyMap<string, string>;

/** What a verified request was signed with; aws-chunked decoding continues the signature chain from it. */
export interface SigningContext {
  accessKey: string;
  amzDate: string;
  scope: string;
  signingKey: Buffer;
  seedSignature: string;
  /** The request's x-amz-content-sha256 (or UNSIGNED-PAYLOAD for presigned URLs). */
  payloadHash: string;
  presigned: boolean;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

const keyCache = new Map<string, Buffer>();
function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${secret}\0${date}\0${region}\0${service}`;
  let k = keyCache.get(id);
  if (!k) {
    k = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
    if (keyCache.size > 1000) keyCache.clear();
    keyCache.set(id, k);
  }
  return k;
}

/** RFC 3986 percent-encoding as SigV4 defines it (unreserved characters kept, hex upper case). */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Decodes %XX sequences; malformed escapes are kept literally, as S3 does not fail on them. */
export function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/(%[0-9A-Fa-f]{2})+/g, (m) => {
      try {
        return decodeURIComponent(m);
      } catch {
        return m;
      }
    });
  }
}

export interface QueryParam {
  name: string;
  value: string;
}

export function parseQuery(raw: string): QueryParam[] {
  if (raw === "") return [];
  return raw
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      return i < 0
        ? { name: percentDecode(p), value: "" }
        : { name: percentDecode(p.slice(0, i)), value: percentDecode(p.slice(i + 1)) };
    });
}

function canonicalQuery(params: QueryParam[], skip?: string): string {
  return params
    .filter((p) => p.name !== skip)
    .map((p) => [uriEncode(p.name, false), uriEncode(p.value, false)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** Header values as SigV4 canonicalises them: repeated headers joined by commas, spaces trimmed and collapsed. */
function headerValues(req: IncomingMessage): Map<string, string> {
  const m = new Map<string, string[]>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!.trim().replace(/\s+/g, " ");
    const list = m.get(name);
    if (list) list.push(value);
    else m.set(name, [value]);
  }
  return new Map([...m].map(([k, v]) => [k, v.join(",")]));
}

function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return Number.NaN;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

interface ParsedCredential {
  accessKey: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(s: string, errorCode: string): ParsedCredential {
  const parts = s.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request") {
    throw new S3Error(
      errorCode,
      `Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  const [accessKey, date, region, service] = parts as [string, string, string, string];
  return { accessKey, date, region, service };
}

/**
 * The credential scope must be the request's: its date the day of X-Amz-Date, its region the
 * store's, its service s3. A signature made for another day, region or service is refused, as S3
 * refuses it, with the message S3 gives.
 */
function checkScope(cred: ParsedCredential, amzDate: string, region: string, code: string): void {
  const what =
    code === "AuthorizationHeaderMalformed" ? "authorization header" : "X-Amz-Credential parameter";
  if (cred.date !== amzDate.slice(0, 8)) {
    throw new S3Error(
      code,
      `The ${what} is malformed; Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`,
    );
  }
  if (cred.region !== region) {
    throw new S3Error(
      code,
      `The ${what} is malformed; the region '${cred.region}' is wrong; expecting '${region}'`,
      {
        Region: region,
      },
    );
  }
  if (cred.service !== "s3") {
    throw new S3Error(
      code,
      `The ${what} is malformed; incorrect service "${cred.service}". This endpoint belongs to "s3".`,
    );
  }
}

/**
 * Every x-amz-* header of a request must be signed (S3 answers "There were headers present in the
 * request which were not signed"): one added to a signed request must not change what it does, as
 * an unsigned x-amz-copy-source or x-amz-acl would. x-amz-content-sha256 is exempt: its value is part
 * of every canonical request, signed or not.
 */
function checkAllAmzSigned(req: IncomingMessage, signed: string[]): void {
  const set = new Set(signed.map((h) => h.toLowerCase()));
  const unsigned = Object.keys(req.headers).filter(
    (h) => h.startsWith("x-amz-") && h !== "x-amz-content-sha256" && !set.has(h),
  );
  if (unsigned.length > 0) {
    throw new S3Error("AccessDenied", "There were headers present in the request which were not signed", {
      HeadersNotSigned: unsigned.sort().join(", "),
    });
  }
}

export interface RequestParts {
  method: string;
  /** The path exactly as on the request line (still percent-encoded). */
  rawPath: string;
  /** The decoded path (what the key is made of). */
  path: string;
  query: QueryParam[];
}

/**
 * Verifies the request's signature and returns its signing context, or null for an anonymous request
 * (no Authorization header and no X-Amz-Signature). Throws the S3 error a real S3 would send.
 */
export function verifyRequest(
  req: IncomingMessage,
  parts: RequestParts,
  credentials: Credentials,
  now = Date.now(),
  region = "us-east-1",
): SigningContext | null {
  const auth = req.headers.authorization;
  const q = new Map(parts.query.map((p) => [p.name, p.value]));
  if (auth === undefined) {
    if (q.has("X-Amz-Signature") || q.has("X-Amz-Credential"))
      return verifyPresigned(req, parts, q, credentials, now, region);
    if (q.has("Signature") && q.has("AWSAccessKeyId")) return verifyV2(req, parts, credentials, now);
    return null;
  }
  if (auth.startsWith("AWS ")) {
    const v2 = verifyV2(req, parts, credentials, now);
    if (v2) return v2;
  }
  if (!auth.startsWith(`${ALGORITHM} `)) {
    throw new S3Error(
      "InvalidRequest",
      "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    );
  }
  const fields = new Map<string, string>();
  for (const f of auth.slice(ALGORITHM.length + 1).split(",")) {
    const i = f.indexOf("=");
    if (i > 0) fields.set(f.slice(0, i).trim(), f.slice(i + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw new S3Error(
      "AuthorizationHeaderMalformed",
      "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.",
    );
  }
  const cred = parseCredential(credential, "AuthorizationHeaderMalformed");
  const secret = credentials.get(cred.accessKey);
  if (secret === undefined)
    throw new S3Error("InvalidAccessKeyId", undefined, { AWSAccessKeyId: cred.accessKey });

  const headers = headerValues(req);
  const amzDate = headers.get("x-amz-date") ?? "";
  let t = parseAmzDate(amzDate);
  if (Number.isNaN(t)) {
    const d = headers.get("date");
    t = d ? Date.parse(d) : Number.NaN;
    if (Number.isNaN(t)) {
      throw new S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    }
  }
  if (Math.abs(now - t) > MAX_SKEW_MS) {
    throw new S3Error("RequestTimeTooSkewed", undefined, {
      RequestTime: amzDate,
      ServerTime: new Date(now).toISOString(),
      MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
    });
  }
  const payloadHash = headers.get("x-amz-content-sha256");
  if (payloadHash === undefined) {
    throw new S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  }
  checkScope(
    cred,
    amzDate || new Date(t).toISOString().replace(/[-:]|\.\d{3}/g, ""),
    region,
    "AuthorizationHeaderMalformed",
  );
  const scope = `${cred.date}/${cred.region}/${cred.service}/aws4_request`;
  const key = signingKey(secret, cred.date, cred.region, cred.service);
  const signedList = signedHeaders.split(";");
  if (!signedList.includes("host")) {
    throw new S3Error(
      "AuthorizationHeaderMalformed",
      "The authorization header is malformed; SignedHeaders must include host.",
    );
  }
  checkAllAmzSigned(req, signedList);
  const canonicalHeaders = signedList.map((h) => `${h}:${headers.get(h) ?? ""}\n`).join("");
  const query = canonicalQuery(parts.query);
  checkSignature(
    parts,
    query,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
    amzDate || new Date(t).toISOString().replace(/[-:]|\.\d{3}/g, ""),
    scope,
    key,
    signature,
    cred.accessKey,
  );
  return {
    accessKey: cred.accessKey,
    amzDate,
    scope,
    signingKey: key,
    seedSignature: signature,
    payloadHash,
    presigned: false,
  };
}

/**
 * Tries the canonical URIs a client may have signed (the path as sent, and the path re-encoded the
 * canonical way): clients differ in how they escape characters such as '!' or '*' in keys.
 * When none matches, throws SignatureDoesNotMatch with the first candidate's string-to-sign, as S3 reports it.
 */
function checkSignature(
  parts: RequestParts,
  query: string,
  canonicalHeaders: string,
  signedHeaders: string,
  payloadHash: string,
  amzDate: string,
  scope: string,
  key: Buffer,
  signature: string,
  accessKey: string,
): void {
  const candidates = [parts.rawPath, uriEncode(parts.path, true)];
  let first: string | undefined;
  for (const uri of new Set(candidates)) {
    const canonical = [parts.method, uri, query, canonicalHeaders, signedHeaders, payloadHash].join("\n");
    const sts = `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    first ??= sts;
    if (safeEqualHex(createHmac("sha256", key).update(sts).digest("hex"), signature)) return;
  }
  throw new S3Error("SignatureDoesNotMatch", undefined, {
    AWSAccessKeyId: accessKey,
    StringToSign: first!,
    SignatureProvided: signature,
  });
}

function verifyPresigned(
  req: IncomingMessage,
  parts: RequestParts,
  q: Map<string, string>,
  credentials: Credentials,
  now: number,
  region: string,
): SigningContext {
  const alg = q.get("X-Amz-Algorithm");
  const credential = q.get("X-Amz-Credential");
  const amzDate = q.get("X-Amz-Date");
  const expires = q.get("X-Amz-Expires");
  const signedHeaders = q.get("X-Amz-SignedHeaders");
  const signature = q.get("X-Amz-Signature");
  if (alg !== ALGORITHM) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
    );
  }
  if (!credential || !amzDate || !signedHeaders || !signature || expires === undefined) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    );
  }
  const cred = parseCredential(credential, "AuthorizationQueryParametersError");
  const secret = credentials.get(cred.accessKey);
  if (secret === undefined)
    throw new S3Error("InvalidAccessKeyId", undefined, { AWSAccessKeyId: cred.accessKey });
  const t = parseAmzDate(amzDate);
  const exp = Number(expires);
  if (Number.isNaN(t)) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    );
  }
  if (!Number.isInteger(exp) || exp < 0 || exp > MAX_EXPIRES_S) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      "X-Amz-Expires must be less than a week (in seconds) that is; the given X-Amz-Expires must be less than 604800 seconds",
    );
  }
  if (t - now > MAX_SKEW_MS) throw new S3Error("AccessDenied", "Request is not valid yet");
  if (now > t + exp * 1000) {
    throw new S3Error("AccessDenied", "Request has expired", {
      "X-Amz-Expires": expires,
      Expires: new Date(t + exp * 1000).toISOString(),
      ServerTime: new Date(now).toISOString(),
    });
  }
  checkScope(cred, amzDate, region, "AuthorizationQueryParametersError");
  checkAllAmzSigned(req, signedHeaders.split(";"));
  const headers = headerValues(req);
  const scope = `${cred.date}/${cred.region}/${cred.service}/aws4_request`;
  const key = signingKey(secret, cred.date, cred.region, cred.service);
  const canonicalHeaders = signedHeaders
    .split(";")
    .map((h) => `${h}:${headers.get(h) ?? ""}\n`)
    .join("");
  const payloadHash = q.get("X-Amz-Content-Sha256") ?? UNSIGNED_PAYLOAD;
  const query = canonicalQuery(parts.query, "X-Amz-Signature");
  checkSignature(
    parts,
    query,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
    amzDate,
    scope,
    key,
    signature,
    cred.accessKey,
  );
  return {
    accessKey: cred.accessKey,
    amzDate,
    scope,
    signingKey: key,
    seedSignature: signature,
    payloadHash,
    presigned: true,
  };
}

/** The signature of one aws-chunked chunk, chained on the previous chunk's signature. */
export function chunkSignature(ctx: SigningContext, previous: string, chunkSha256Hex: string): string {
  const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${ctx.amzDate}\n${ctx.scope}\n${previous}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
  return createHmac("sha256", ctx.signingKey).update(sts).digest("hex");
}

/** The signature over the trailing headers of a signed aws-chunked upload with trailers. */
export function trailerSignature(ctx: SigningContext, previous: string, canonicalTrailers: string): string {
  const sts = `AWS4-HMAC-SHA256-TRAILER\n${ctx.amzDate}\n${ctx.scope}\n${previous}\n${sha256Hex(canonicalTrailers)}`;
  return createHmac("sha256", ctx.signingKey).update(sts).digest("hex");
}

export { safeEqualHex };

/**
 * The signature of a browser form upload (POST Object): the base64 policy document signed with the
 * key of the x-amz-credential field's scope (docs: "Authenticating Requests in Browser-Based
 * Uploads Using POST"). The policy's own expiration and conditions are checked by post-object.ts.
 * Returns the access key that signed.
 */
export function verifyPostPolicy(
  fields: ReadonlyMap<string, string>,
  credentials: Credentials,
  region: string,
): string {
  const alg = fields.get("x-amz-algorithm");
  const credential = fields.get("x-amz-credential");
  const amzDate = fields.get("x-amz-date");
  const signature = fields.get("x-amz-signature");
  const policy = fields.get("policy") ?? "";
  if (fields.has("awsaccesskeyid") || (fields.has("signature") && !signature))
    throw new S3Error(
      "InvalidArgument",
      "POST with signature version 2 is not implemented by scar store: sign with AWS4-HMAC-SHA256",
    );
  if (alg !== ALGORITHM)
    throw new S3Error("InvalidArgument", 'x-amz-algorithm only supports "AWS4-HMAC-SHA256"', {
      ArgumentName: "x-amz-algorithm",
      ArgumentValue: alg ?? "",
    });
  if (!credential || !amzDate || !signature)
    throw new S3Error(
      "InvalidArgument",
      "Bucket POST must contain the fields x-amz-credential, x-amz-date and x-amz-signature with a policy",
    );
  const cred = parseCredential(credential, "InvalidArgument");
  const secret = credentials.get(cred.accessKey);
  if (secret === undefined)
    throw new S3Error("InvalidAccessKeyId", undefined, { AWSAccessKeyId: cred.accessKey });
  if (Number.isNaN(parseAmzDate(amzDate)))
    throw new S3Error(
      "InvalidArgument",
      `x-amz-date '${amzDate}' is not an ISO 8601 basic date (YYYYMMDDTHHMMSSZ)`,
    );
  checkScope(cred, amzDate, region, "InvalidArgument");
  const expected = hmac(signingKey(secret, cred.date, cred.region, cred.service), policy).toString("hex");
  if (!safeEqualHex(expected, signature))
    throw new S3Error(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
  return cred.accessKey;
}
