/**
 * The web dashboard's files (built by `npm run build` into dist/ui: scripts/build-ui.mjs) at /ui/,
 * without auth: they hold no data, the page asks for the admin's credentials and sends them on
 * every API call. Every answer carries a strict Content-Security-Policy: scripts and styles from
 * these files only (no inline script, no eval), calls to this origin only, no frames.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpError } from "./http.js";

/** dist/ui, beside dist/src (this file is dist/src/engine/api/ui.js once built). */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "ui");

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // previews of objects are blob: URLs of what the page fetched
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json",
};

/** The files, read once: a handful of small ones, and the set of names is the only paths served. */
let files: Map<string, Buffer> | undefined;

function uiFiles(): Map<string, Buffer> {
  if (files) return files;
  const out = new Map<string, Buffer>();
  try {
    for (const name of readdirSync(UI_DIR))
      if (TYPES[extname(name)]) out.set(name, readFileSync(join(UI_DIR, name)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  files = out;
  return out;
}

/** Whether `path` is the dashboard's; if so the answer is sent. */
export function serveUi(req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (path !== "/ui" && !path.startsWith("/ui/")) return false;
  if (req.method !== "GET" && req.method !== "HEAD")
    throw new HttpError(405, `method ${req.method} is not allowed on ${path}`);
  if (path === "/ui") {
    res.writeHead(308, { location: "/ui/" }).end();
    return true;
  }
  const name = path === "/ui/" ? "index.html" : path.slice(4);
  const all = uiFiles();
  const body = all.get(name);
  if (!body) {
    if (all.size === 0)
      throw new HttpError(404, "the dashboard is not built here (npm run build makes dist/ui)");
    throw new HttpError(404, `no such file of the dashboard: ${name}`);
  }
  res.writeHead(200, {
    "content-type": TYPES[extname(name)]!,
    "content-length": body.length,
    "content-security-policy": UI_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
