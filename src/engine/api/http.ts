/**
 * Small HTTP helpers for the engine API: routing by method and path pattern, bounded bodies (in
 * memory, or streamed to a file), JSON errors, query parameters.
 */
import { createWriteStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
    /** closeConnection: the request's body was not read to its end, so the connection cannot be reused. */
    readonly opts: { closeConnection?: boolean } = {},
  ) {
    super(message);
  }
}

export type Params = Record<string, string>;
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Params,
  url: URL,
) => Promise<void> | void;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  /** `method` "*" takes every method. Routes are tried in the order they were added. */
  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split("/").filter(Boolean), handler });
    return this;
  }

  /** The handler and path parameters for a request; 404 or 405 as HttpError when there is none. */
  match(method: string, path: string): { handler: Handler; params: Params } {
    const segs = path.split("/").filter(Boolean);
    let pathMatched = false;
    for (const r of this.routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Params = {};
      const ok = r.parts.every((p, i) => {
        if (p.startsWith(":")) {
          params[p.slice(1)] = decodePart(segs[i]!);
          return true;
        }
        return p === segs[i];
      });
      if (!ok) continue;
      pathMatched = true;
      if (r.method === method || r.method === "*") return { handler: r.handler, params };
    }
    throw pathMatched
      ? new HttpError(405, `method ${method} is not allowed on ${path}`)
      : new HttpError(404, `no such path: ${path}`);
  }
}

/**
 * Reads the whole body, refusing more than `limit` bytes with 413 (without buffering the rest). A
 * body without Content-Length (chunked) is cut when it passes the limit: reading stops, and the 413
 * closes the connection once it is sent (destroying the request at once would reset the connection
 * before the client gets any answer).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.off("data", onData);
        req.pause();
        chunks.length = 0;
        reject(tooLarge(limit));
      } else chunks.push(c);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** 413; the answer closes the connection (the rest of the body is not read). */
function tooLarge(limit: number): HttpError {
  return new HttpError(413, `the body is larger than ${limit} bytes`, undefined, { closeConnection: true });
}

function decodePart(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new HttpError(400, `bad percent-encoding in the path: ${seg}`);
  }
}

/**
 * Streams the body into a new file at `path` (never whole in memory), refusing more than `limit`
 * bytes with 413. The caller removes the file, also when this throws.
 */
export async function bodyToFile(req: IncomingMessage, path: string, limit: number): Promise<number> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) throw tooLarge(limit);
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > limit) done(tooLarge(limit));
      else done(null, chunk);
    },
  });
  await pipeline(req, count, createWriteStream(path, { flags: "wx", mode: 0o600 }));
  return size;
}

export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `the body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(`${JSON.stringify(value)}\n`);
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string | Buffer,
  type = "text/plain; charset=utf-8",
): void {
  const body = typeof text === "string" ? Buffer.from(text) : text;
  res.writeHead(status, { "content-type": type, "content-length": body.length });
  res.end(body);
}

/** The last value of a query parameter, or undefined. */
export function query(url: URL, name: string): string | undefined {
  const all = url.searchParams.getAll(name);
  return all.length > 0 ? all[all.length - 1] : undefined;
}
