/**
 * A bucket's own CORS rules (PutBucketCors / GetBucketCors / DeleteBucketCors), kept in the journal
 * with the bucket, and how S3 answers browsers with them:
 * - a preflight (OPTIONS with Origin and Access-Control-Request-Method) is allowed by the first rule
 *   whose AllowedOrigin matches the origin, whose AllowedMethod holds the method and whose
 *   AllowedHeader patterns cover every header in Access-Control-Request-Headers; the answer is 200
 *   with that rule's methods, the headers asked for, its ExposeHeader and MaxAgeSeconds. Anything
 *   else is 403 (CORSResponse), so the browser never sends the request;
 * - an actual request with an Origin gets the headers of the first rule matching origin and method;
 *   without one it is answered as usual, without CORS headers (the browser then hides the answer).
 * A rule's `*` origin is answered with `Access-Control-Allow-Origin: *` and no credentials, any other
 * with the origin itself and credentials allowed, as S3 does. Origins and headers may hold one `*`.
 * The store-wide allowlist of scar.cfg (`local.cors_origins`, cors.ts) is checked first: an origin on
 * it may do anything S3 clients do, on every bucket.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { S3Error } from "./errors.js";
import { type Ctx, sendEmpty, sendXml } from "./http.js";
import { receiveSmall } from "./payload.js";
import { asNode, children, parseXml, text, xmlDocument } from "./xml.js";

export interface BucketCorsRule {
  id?: string;
  methods: string[];
  origins: string[];
  headers: string[];
  expose: string[];
  maxAgeSeconds?: number;
}

const METHODS = new Set(["GET", "PUT", "HEAD", "POST", "DELETE"]);
/** S3's limits: 100 rules, a 64 KB document. */
const MAX_RULES = 100;
const MAX_DOCUMENT_BYTES = 64 * 1024;

const NOT_ALLOWED =
  "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, " +
  "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted " +
  "by the resource's CORS spec.";
const NOT_ENABLED =
  "CORSResponse: CORS is not enabled for this bucket. (Allow the origin with PutBucketCors, or on " +
  "every bucket in local.cors_origins of scar.cfg.)";

/** `*` anywhere in the pattern (at most one, checked at Put) matches any run of characters. */
function wildcardMatch(pattern: string, value: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

/** The rules of a <CORSConfiguration> document, checked as S3 checks them. */
export function parseCorsConfiguration(body: string): BucketCorsRule[] {
  const root = parseXml(body, "CORSConfiguration");
  const raw = children(root, "CORSRule");
  if (raw.length === 0) throw new S3Error("MalformedXML");
  if (raw.length > MAX_RULES)
    throw new S3Error(
      "InvalidRequest",
      `The number of CORS rules should not exceed allowed limit of ${MAX_RULES} rules.`,
    );
  return raw.map((r) => {
    const node = asNode(r);
    const all = (name: string) => children(node, name).map((v) => (typeof v === "string" ? v.trim() : ""));
    const methods = all("AllowedMethod");
    const origins = all("AllowedOrigin");
    if (methods.length === 0 || origins.length === 0) throw new S3Error("MalformedXML");
    for (const m of methods)
      if (!METHODS.has(m))
        throw new S3Error(
          "InvalidRequest",
          `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`,
        );
    for (const o of origins)
      if (o === "" || o.split("*").length > 2)
        throw new S3Error("InvalidRequest", `AllowedOrigin "${o}" can not have more than one wildcard.`);
    const headers = all("AllowedHeader").map((h) => h.toLowerCase());
    for (const h of headers)
      if (h.split("*").length > 2)
        throw new S3Error("InvalidRequest", `AllowedHeader "${h}" can not have more than one wildcard.`);
    const age = text(node, "MaxAgeSeconds");
    let maxAgeSeconds: number | undefined;
    if (age !== undefined) {
      maxAgeSeconds = Number(age);
      if (!/^\d+$/.test(age.trim()) || !Number.isSafeInteger(maxAgeSeconds))
        throw new S3Error("MalformedXML");
    }
    const id = text(node, "ID");
    return {
      ...(id !== undefined ? { id } : {}),
      methods,
      origins,
      headers,
      expose: all("ExposeHeader"),
      ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}),
    };
  });
}

export function corsConfigurationXml(rules: BucketCorsRule[]): string {
  return xmlDocument("CORSConfiguration", {
    CORSRule: rules.map((r) => ({
      ...(r.id !== undefined ? { ID: r.id } : {}),
      AllowedHeader: r.headers,
      AllowedMethod: r.methods,
      AllowedOrigin: r.origins,
      ExposeHeader: r.expose,
      ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: String(r.maxAgeSeconds) } : {}),
    })),
  });
}

export function getBucketCors(ctx: Ctx): void {
  const rules = ctx.backend.bucket(ctx.bucket).cors;
  if (!rules)
    throw new S3Error("NoSuchCORSConfiguration", "The CORS configuration does not exist", {
      BucketName: ctx.bucket,
    });
  sendXml(ctx, 200, corsConfigurationXml(rules));
}

export async function putBucketCors(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  const body = await receiveSmall(ctx.req, ctx.signing, MAX_DOCUMENT_BYTES);
  await ctx.backend.setBucketCors(ctx.bucket, parseCorsConfiguration(body.toString("utf8")));
  sendEmpty(ctx, 200);
}

export async function deleteBucketCors(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  await ctx.backend.setBucketCors(ctx.bucket, null);
  sendEmpty(ctx, 204);
}

function requestedHeaders(req: IncomingMessage): string[] {
  return String(req.headers["access-control-request-headers"] ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
}

function matchingRule(
  rules: readonly BucketCorsRule[],
  origin: string,
  method: string,
  headers: readonly string[],
): { rule: BucketCorsRule; origin: string } | undefined {
  for (const rule of rules) {
    const o = rule.origins.find((p) => wildcardMatch(p, origin));
    if (o === undefined || !rule.methods.includes(method)) continue;
    if (!headers.every((h) => rule.headers.some((p) => wildcardMatch(p, h)))) continue;
    return { rule, origin: o === "*" ? "*" : origin };
  }
  return undefined;
}

function allowHeaders(res: ServerResponse, m: { rule: BucketCorsRule; origin: string }): void {
  res.setHeader("access-control-allow-origin", m.origin);
  if (m.origin !== "*") res.setHeader("access-control-allow-credentials", "true");
  res.setHeader("access-control-allow-methods", m.rule.methods.join(", "));
  if (m.rule.expose.length > 0) res.setHeader("access-control-expose-headers", m.rule.expose.join(", "));
  if (m.rule.maxAgeSeconds !== undefined)
    res.setHeader("access-control-max-age", String(m.rule.maxAgeSeconds));
}

/**
 * CORS for a request from an origin the store-wide allowlist does not hold, by the bucket's rules
 * (`undefined`: the bucket does not exist or has none). A preflight is answered here ("preflight-ok",
 * or "preflight-refused" after `refuse`); an actual request gets its headers and goes on ("not-cors").
 */
export function applyBucketCors(
  rules: readonly BucketCorsRule[] | undefined,
  origin: string,
  req: IncomingMessage,
  res: ServerResponse,
  refuse: (message: string) => void,
): "not-cors" | "preflight-ok" | "preflight-refused" {
  const wanted = req.headers["access-control-request-method"];
  if (req.method === "OPTIONS" && typeof wanted === "string") {
    res.setHeader("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
    if (!rules) {
      refuse(NOT_ENABLED);
      return "preflight-refused";
    }
    const asked = requestedHeaders(req);
    const m = matchingRule(rules, origin, wanted.toUpperCase(), asked);
    if (!m) {
      refuse(NOT_ALLOWED);
      return "preflight-refused";
    }
    allowHeaders(res, m);
    if (asked.length > 0) res.setHeader("access-control-allow-headers", asked.join(", "));
    res.writeHead(200).end();
    return "preflight-ok";
  }
  res.setHeader("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
  const m = rules ? matchingRule(rules, origin, (req.method ?? "GET").toUpperCase(), []) : undefined;
  if (m) allowHeaders(res, m);
  return "not-cors";
}
