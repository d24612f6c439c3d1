/**
 * The engine's HTTP API server (OSCAR-compatible). Every request ends in a response: bad bodies,
 * unknown functions, missing auth and oversized payloads get a JSON error with the right status,
 * and nothing a client sends can stop the engine.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Engine } from "../engine.js";
import { HttpError, sendJson } from "./http.js";
import { type ApiLimits, buildRouter } from "./routes.js";

export interface ApiOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: Partial<ApiLimits>;
  log?: (message: string) => void;
}

export interface RunningApi {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function startApi(engine: Engine, opts: ApiOptions = {}): Promise<RunningApi> {
  const router = buildRouter(engine, {
    maxBodyBytes: opts.limits?.maxBodyBytes ?? 64 * 1024 * 1024,
    maxResponseBytes: opts.limits?.maxResponseBytes ?? 64 * 1024 * 1024,
    maxDefinitionBytes: opts.limits?.maxDefinitionBytes ?? 1024 * 1024,
    maxImageBytes: opts.limits?.maxImageBytes ?? 32 * 1024 ** 3,
  });
  const log = opts.log ?? (() => {});
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const { handler, params } = router.match(req.method ?? "GET", url.pathname);
      await handler(req, res, params, url);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        if (err.status === 401) res.setHeader("www-authenticate", 'Basic realm="scar"');
        sendJson(res, err.status, { error: err.message, ...(err.details ? { details: err.details } : {}) });
      } else {
        log(`API error on ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
        sendJson(res, 500, { error: `internal error: ${(err as Error).message}` });
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
