/**
 * The web dashboard's files (built by `npm run build` into dist/ui: scripts/build-ui.mjs) at /ui/,
 * without auth: they hold no data, the page asks for the admin's credentials and sends them on
 * every API call. Every answer carries a strict Content-Security-Policy: scripts and styles from
 * these files only (no inline script, no eval), calls to this origin and to the other engines of
 * scar.cfg's `local.ui_engines` only (the page may work on another engine: issue 19), no frames.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpError } from "./http.js";

/** dist/ui, beside dist/src (this file is dist/src/engine/api/ui.js once built). */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "ui");

/** The page's Content-Security-Policy; `engines` are the origins of other engines it may call. */
export function uiCsp(engines: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // previews of objects are blob: URLs of what the page fetched
    "img-src 'self' blob: data:",
    ["connect-src 'self'", ...engines].join(" "),
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** A scar.cfg `local.ui_engines` that is not a list of origins. */
export class UiEnginesError extends Error {}

/** A host name, an IPv4 address or a bracketed IPv6 one: nothing that could end a CSP directive. */
const HOST = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/;

/**
 * scar.cfg's `local.ui_engines`: the origins (`http://host:port`) of the other engines the dashboard
 * may call, as the browser writes them (lower case, no default port); none when absent. Anything
 * else is refused with the key named: a path, a wildcard or a stray `;` would widen or break the CSP.
 */
export function uiEngines(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const refuse = (why: string): never => {
    throw new UiEnginesError(
      `scar.cfg: local.ui_engines must be a list of origins like "http://host:8080", ${why}`,
    );
  };
  if (!Array.isArray(value)) return refuse(`not ${JSON.stringify(value)}`);
  return value.map((entry) => {
    if (typeof entry !== "string") return refuse(`not ${JSON.stringify(entry)}`);
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return refuse(`and '${entry}' is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      return refuse(`and '${entry}' is not http:// or https://`);
    if (
      url.username ||
      url.password ||
      url.pathname !== "/" ||
      url.search ||
      url.hash ||
      !HOST.test(url.hostname)
    )
      return refuse(`and '${entry}' is not one (scheme://host[:port], nothing more)`);
    return url.origin;
  });
}

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
export function serveUi(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  csp: string = uiCsp(),
): boolean {
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
    "content-security-policy": csp,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}
