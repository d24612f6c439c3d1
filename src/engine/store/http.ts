/** What every handler gets, and the helpers that write S3-shaped responses. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Backend, RequestContext } from "./backend.js";
import type { S3Error } from "./errors.js";
import type { QueryParam, SigningContext } from "./sigv4.js";
import { ANONYMOUS, type Principal, type StoreUser, type Users } from "./users.js";

export interface Ctx extends RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  backend: Backend;
  signing: SigningContext | null;
  bucket: string;
  key: string;
  query: Map<string, string>;
  rawQuery: QueryParam[];
  /** Base URL clients used (for Location elements). */
  baseUrl: string;
  region: string;
  /** Who signed the request (absent: anonymous). */
  caller?: Principal;
  users: Users;
}

/**
 * The owner id to record for what the caller creates in a bucket owned by `bucketOwner`: absent
 * when it is that owner, which keeps journal records as they were before users; ANONYMOUS's id for
 * an unsigned request.
 */
export function recordedOwner(ctx: Ctx, bucketOwner: string): string | undefined {
  // an unsigned write (a public-read-write bucket) is anonymous's, as S3 records it
  const me = ctx.caller?.user.id ?? ANONYMOUS.id;
  return me === bucketOwner ? undefined : me;
}

/** The caller's user, or for anonymous requests the admin (who owns what they write, as before). */
export function callerUser(ctx: Ctx): StoreUser {
  return ctx.caller?.user ?? ctx.users.admin;
}

export function header(ctx: Ctx, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

export function sendXml(ctx: Ctx, status: number, xml: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(xml, "utf8");
  ctx.res.writeHead(status, {
    ...headers,
    "Content-Type": "application/xml",
    "Content-Length": String(body.length),
  });
  ctx.res.end(body);
}

export function sendEmpty(ctx: Ctx, status: number, headers: Record<string, string> = {}): void {
  ctx.res.writeHead(status, { ...headers, "Content-Length": "0" });
  ctx.res.end();
}

export function sendError(ctx: Pick<Ctx, "req" | "res" | "requestId">, err: S3Error, resource: string): void {
  const { req, res } = ctx;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = {
    ...err.headers,
    "x-amz-request-id": ctx.requestId,
    "x-amz-id-2": ctx.requestId,
  };
  // A request whose body we did not read must not leave its bytes on a kept-alive connection.
  if (!req.complete) headers.Connection = "close";
  if (req.method === "HEAD" || err.status === 304) {
    res.writeHead(err.status, headers);
    res.end();
    return;
  }
  const body = Buffer.from(err.toXml(resource, ctx.requestId), "utf8");
  res.writeHead(err.status, {
    ...headers,
    "Content-Type": "application/xml",
    "Content-Length": String(body.length),
  });
  res.end(body);
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
