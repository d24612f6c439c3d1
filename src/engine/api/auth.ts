/**
 * OSCAR's two kinds of callers: the admin (HTTP basic auth) on `/system`, and, on `/run` and `/job`,
 * either the admin or a bearer token that belongs to the one function called. `/metrics` takes the
 * admin or a token of its own (for a Prometheus server that should not hold the admin's password).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
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

/** Stands in for the token of a function that does not exist, so that checking costs the same. */
const NO_TOKEN = randomBytes(32).toString("hex");

/** Whether the request's `Authorization: Bearer <token>` is `token` (compared in constant time). */
function bearerIs(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? "";
  return h.startsWith("Bearer ") && same(h.slice(7).trim(), token);
}

/**
 * The admin, or the bearer token of the function called. `token` undefined: the function does not
 * exist, and a caller who is not the admin gets the same 401 as for a wrong token (it learns
 * nothing of which functions exist).
 */
export function requireInvoker(
  req: IncomingMessage,
  admin: { user: string; password: string },
  token: string | undefined,
): void {
  // compared even when the function does not exist, so that both cases take the same time
  if (isAdmin(req, admin) || (bearerIs(req, token ?? NO_TOKEN) && token !== undefined)) return;
  throw new HttpError(
    401,
    "authentication required: the function's token (Authorization: Bearer <token>) or the admin user",
  );
}

/** The admin, or a bearer token given for this route (e.g. scar.cfg's `local.metrics_token`). */
export function requireAdminOrToken(
  req: IncomingMessage,
  admin: { user: string; password: string },
  token: string | undefined,
): void {
  if (isAdmin(req, admin) || (token !== undefined && bearerIs(req, token))) return;
  throw new HttpError(
    401,
    `authentication required: the admin user and password (basic auth)${token !== undefined ? " or the metrics token (Authorization: Bearer <token>)" : ""}`,
  );
}
