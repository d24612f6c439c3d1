/**
 * A client of OSCAR's REST API. It talks to a real OSCAR cluster and to scar's embedded engine, which
 * serves the same paths and JSON plus a few additions of its own (job records, dead letters, image
 * import and pull, the SCAR-style HTTP endpoint). Callers check `isScarEngine` before using those.
 */
import { Agent, type Dispatcher, request } from "undici";

export interface OscarEndpoint {
  /** Base URL, e.g. `http://127.0.0.1:8080` or `https://oscar.example.org`. */
  url: string;
  /** Basic auth (OSCAR's admin user), unless `bearer` is given. */
  user?: string;
  password?: string;
  /** An OIDC access token for every request instead of basic auth (scar.cfg's OIDC options). */
  bearer?: () => Promise<string>;
  /** False to accept self-signed certificates (scar.cfg `ssl_verify`). */
  sslVerify?: boolean;
}

/** An error answer of the API, with its status and the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface RequestOptions {
  query?: Record<string, string | string[] | undefined>;
  body?: Buffer | string | NodeJS.ReadableStream;
  contentType?: string;
  headers?: Record<string, string>;
  /** Send no credentials (SCAR's HTTP endpoint has none). */
  anonymous?: boolean;
  /** Send this bearer token instead of the cluster's credentials (a service's token on /run and /job). */
  token?: string;
  /** Statuses returned instead of thrown (default: 2xx only). */
  accept?: (status: number) => boolean;
}

export class OscarClient {
  private readonly dispatcher: Dispatcher;
  private readonly basic?: string;

  constructor(readonly endpoint: OscarEndpoint) {
    this.dispatcher = new Agent({
      connect: { rejectUnauthorized: endpoint.sslVerify !== false },
      // Sync invocations run as long as the function does; the engine answers when the job ends.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    if (!endpoint.bearer)
      this.basic = `Basic ${Buffer.from(`${endpoint.user ?? ""}:${endpoint.password ?? ""}`).toString("base64")}`;
  }

  /** The Authorization header of the cluster's credentials. */
  private async auth(): Promise<string> {
    return this.endpoint.bearer ? `Bearer ${await this.endpoint.bearer()}` : this.basic!;
  }

  url(path: string): string {
    return `${this.endpoint.url.replace(/\/+$/, "")}${path}`;
  }

  async send(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const target = new URL(this.url(path));
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) target.searchParams.append(k, one);
    }
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    else if (!opts.anonymous) headers.authorization = await this.auth();
    if (opts.contentType) headers["content-type"] = opts.contentType;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(target, {
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(opts.body !== undefined ? { body: opts.body as Buffer } : {}),
        dispatcher: this.dispatcher,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      const code = e.code ?? e.cause?.code;
      throw new ApiError(
        0,
        code === "ECONNREFUSED"
          ? `cannot reach ${this.endpoint.url}: connection refused`
          : `cannot reach ${this.endpoint.url}: ${e.message}`,
      );
    }
    const body = Buffer.from(await res.body.arrayBuffer());
    const ok = opts.accept ? opts.accept(res.statusCode) : res.statusCode >= 200 && res.statusCode < 300;
    if (!ok) throw errorOf(res.statusCode, body, method, path);
    return { status: res.statusCode, headers: res.headers, body };
  }

  async json<T>(method: string, path: string, opts: RequestOptions & { json?: unknown } = {}): Promise<T> {
    const { json, ...rest } = opts;
    const res = await this.send(method, path, {
      ...rest,
      ...(json !== undefined ? { body: JSON.stringify(json), contentType: "application/json" } : {}),
    });
    if (res.body.length === 0) return undefined as T;
    try {
      return JSON.parse(res.body.toString("utf8")) as T;
    } catch {
      throw new ApiError(res.status, `${method} ${path}: the answer is not JSON`);
    }
  }

  /** A streamed answer (NDJSON progress), line by line. */
  async *lines(method: string, path: string, json: unknown): AsyncGenerator<unknown> {
    const res = await request(this.url(path), {
      method: method as Dispatcher.HttpMethod,
      headers: { authorization: await this.auth(), "content-type": "application/json" },
      body: JSON.stringify(json),
      dispatcher: this.dispatcher,
    });
    if (res.statusCode >= 300) {
      throw errorOf(res.statusCode, Buffer.from(await res.body.arrayBuffer()), method, path);
    }
    let rest = "";
    for await (const chunk of res.body) {
      rest += chunk.toString();
      let nl = rest.indexOf("\n");
      while (nl >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line) yield JSON.parse(line);
        nl = rest.indexOf("\n");
      }
    }
    if (rest.trim()) yield JSON.parse(rest);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

function errorOf(status: number, body: Buffer, method: string, path: string): ApiError {
  const text = body.toString("utf8").trim();
  let message = text;
  let details: unknown;
  try {
    const j = JSON.parse(text) as { error?: string; message?: string; details?: unknown };
    message = j.error ?? j.message ?? text;
    details = j.details;
  } catch {
    // OSCAR answers some errors as plain text
  }
  if (status === 401) message = "the credentials were refused (401 Unauthorized)";
  return new ApiError(status, message || `${method} ${path}: HTTP ${status}`, details);
}
