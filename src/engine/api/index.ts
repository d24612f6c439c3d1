/**
 * The engine's HTTP API server (OSCAR-compatible). Every request ends in a response: bad bodies,
 * unknown functions, missing auth and oversized payloads get a JSON error with the right status,
 * and nothing a client sends can stop the engine.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { defaultConfig, type ScarConfigFile } from "../../config/defaults.js";
import { type Engine, JobsUnavailableError } from "../engine.js";
import { applyCors, type CorsPolicy } from "../store/cors.js";
import { HttpError, sendJson, sendText } from "./http.js";
import { type ApiLimits, buildRouter } from "./routes.js";
import { serveUi, uiCsp, uiEngines } from "./ui.js";

export interface ApiOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  limits?: Partial<ApiLimits>;
  log?: (message: string) => void;
  /**
   * The scar.cfg the engine was started with (default: the built-in one): the default timeout of
   * services deployed without one (`aws.lambda.timeout`), the token of `/metrics`
   * (`local.metrics_token`), the web pages' origins that may call it (`local.cors_origins`) and the
   * other engines its dashboard may call (`local.ui_engines`, refused when not a list of origins).
   */
  scarConfig?: ScarConfigFile;
}

export interface RunningApi {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function startApi(engine: Engine, opts: ApiOptions = {}): Promise<RunningApi> {
  const cfg = opts.scarConfig ?? defaultConfig();
  const router = buildRouter(
    engine,
    {
      maxBodyBytes: opts.limits?.maxBodyBytes ?? 64 * 1024 * 1024,
      maxResponseBytes: opts.limits?.maxResponseBytes ?? 64 * 1024 * 1024,
      maxDefinitionBytes: opts.limits?.maxDefinitionBytes ?? 1024 * 1024,
      maxImageBytes: opts.limits?.maxImageBytes ?? 32 * 1024 ** 3,
    },
    {
      serviceDefaults: { timeout: defaultTimeout(cfg) },
      scarConfig: cfg,
      ...(typeof cfg.local.metrics_token === "string" && cfg.local.metrics_token !== ""
        ? { metricsToken: cfg.local.metrics_token }
        : {}),
    },
  );
  const log = opts.log ?? (() => {});
  const cors: CorsPolicy = { origins: corsOrigins(cfg), ...API_CORS };
  const csp = uiCsp(uiEngines(cfg.local.ui_engines));
  const server = createServer(async (req, res) => {
    // Browser pages (the OSCAR dashboard) from scar.cfg's local.cors_origins (store/cors.ts).
    const corsOutcome = applyCors(cors, req, res, (message) => sendJson(res, 403, { error: message }));
    if (corsOutcome !== "not-cors") return;
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (serveUi(req, res, url.pathname, csp)) return;
      const { handler, params } = router.match(req.method ?? "GET", url.pathname);
      await handler(req, res, params, url);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        // A page's own calls (X-Requested-With, as the dashboard sends) get no Basic challenge: the
        // browser would answer it with its own password dialog instead of letting the page ask.
        if (err.status === 401 && req.headers["x-requested-with"] === undefined)
          res.setHeader("www-authenticate", 'Basic realm="scar"');
        // node closes the socket once this answer is sent (the rest of the body is never read)
        if (err.opts.closeConnection) res.setHeader("connection", "close");
        // A browser page is OSCAR's dashboard, which shows the body of an error as text, as OSCAR sends it.
        // (scar's dashboard says so with X-Requested-With, and reads the JSON.)
        if (req.headers.origin !== undefined && req.headers["x-requested-with"] === undefined)
          sendText(res, err.status, err.message);
        else
          sendJson(res, err.status, { error: err.message, ...(err.details ? { details: err.details } : {}) });
      } else if (err instanceof JobsUnavailableError) {
        // The job database, not the request: a full disk passes (try again), damage needs a restart.
        if (err.fault === "disk") res.setHeader("retry-after", "5");
        sendJson(res, 503, { error: err.message });
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

/** scar.cfg's `aws.lambda.timeout` when it is a whole number of seconds, else none. */
function defaultTimeout(cfg: ScarConfigFile): number | null {
  const t = cfg.aws.lambda.timeout;
  return typeof t === "number" && Number.isInteger(t) && t > 0 ? t : null;
}

/** What OSCAR's clients send and read from a browser: basic auth, JSON, and scar's x-scar-* headers. */
const API_CORS = {
  methods: ["GET", "POST", "PUT", "DELETE", "HEAD"],
  headers: ["authorization", "content-type", "accept", "x-requested-with", "x-scar-*"],
  expose: [
    "content-length",
    "www-authenticate",
    "retry-after",
    "x-scar-output",
    "x-scar-request-id",
    "x-scar-job-status",
    "x-scar-log-group",
    "x-scar-log-stream",
  ],
};

/** scar.cfg's `local.cors_origins`: the origins whose pages may call the engine (none by default). */
export function corsOrigins(cfg: ScarConfigFile): string[] {
  const v = cfg.local.cors_origins;
  return Array.isArray(v) ? v.filter((o): o is string => typeof o === "string" && o !== "") : [];
}
