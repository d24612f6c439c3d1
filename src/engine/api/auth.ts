/**
 * OSCAR's two kinds of callers: the admin (HTTP basic auth) on `/system`, and, on `/run` and `/job`,
 * either the admin or a bearer token that belongs to the one function called.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { HttpError } from "./http.js";

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function isAdmin(req: IncomingMessage, admin: { user: string; password: string }): boolean {
  const h = req.headers.authorization ?? "";
  if (!h.startsWith("Basic ")) return false;
  const decoded = Buffer.from(h.slice(6), "base64").toString("utf8");
  const i = decoded.indexOf(":");
  return i >= 0 && same(decoded.slice(0, i), admin.user) && same(decoded.slice(i + 1), admin.password);
}

export function requireAdmin(req: IncomingMessage, admin: { user: string; password: string }): void {
  if (!isAdmin(req, admin))
    throw new HttpError(401, "authentication required: use the admin user and password (basic auth)");
}

export function requireInvoker(
  req: IncomingMessage,
  admin: { user: string; password: string },
  token: string,
): void {
  if (isAdmin(req, admin)) return;
  const h = req.headers.authorization ?? "";
  if (h.startsWith("Bearer ") && same(h.slice(7).trim(), token)) return;
  throw new HttpError(
    401,
    "authentication required: the function's token (Authorization: Bearer <token>) or the admin user",
  );
}
