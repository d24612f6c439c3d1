/**
 * A small HTTP client over node:http/https with keep-alive agents, shaped like the parts of fetch()
 * the registry client uses. Not fetch itself because: node:http is loaded with node (fetch's undici
 * costs 100-300 ms to load on first use, paid by every `scar image pull`), idle keep-alive sockets do
 * not keep the process alive (fetch's do, for seconds, after a CLI command is done), and redirects
 * are never followed here (the registry client follows them itself, without leaking credentials).
 */
import * as http from "node:http";
import * as https from "node:https";

export interface HttpBody extends AsyncIterable<Buffer> {
  /** drops the rest of the body (and the connection) */
  cancel(): Promise<void>;
}

export interface HttpResponse {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: HttpBody | null;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Uint8Array | string | AsyncIterable<Uint8Array> | undefined;
  /** fail when the connection is idle this long (default 60 s) */
  idleTimeoutMs?: number;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

export function httpRequest(url: string | URL, init: HttpRequest = {}): Promise<HttpResponse> {
  const u = typeof url === "string" ? new URL(url) : url;
  const secure = u.protocol === "https:";
  if (!secure && u.protocol !== "http:")
    return Promise.reject(new Error(`unsupported URL scheme: ${u.protocol}`));
  const mod = secure ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = mod.request(
      u,
      { method: init.method ?? "GET", headers: init.headers, agent: secure ? agents.https : agents.http },
      (res) => {
        let consumed = false;
        const body: HttpBody = {
          [Symbol.asyncIterator]() {
            consumed = true;
            return res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
          },
          async cancel() {
            if (!res.complete) res.destroy();
            else res.resume();
          },
        };
        const readAll = async () => {
          if (consumed) throw new Error("body already read");
          const parts: Buffer[] = [];
          for await (const c of body) parts.push(c);
          return Buffer.concat(parts).toString("utf8");
        };
        const status = res.statusCode ?? 0;
        resolve({
          status,
          ok: status >= 200 && status < 300,
          headers: {
            get(name: string) {
              const v = res.headers[name.toLowerCase()];
              if (v === undefined) return null;
              return Array.isArray(v) ? v.join(", ") : String(v);
            },
          },
          body,
          text: readAll,
          json: async () => JSON.parse(await readAll()) as unknown,
        });
      },
    );
    req.on("error", reject);
    // a registry that stops answering (headers or body) for this long fails the request; pulls retry
    req.setTimeout(init.idleTimeoutMs ?? 60_000, () =>
      req.destroy(new Error(`no data from ${u.host} for ${(init.idleTimeoutMs ?? 60_000) / 1000} s`)),
    );
    const b = init.body;
    if (b === undefined) req.end();
    else if (typeof b === "string" || b instanceof Uint8Array) req.end(b);
    else {
      (async () => {
        for await (const chunk of b) {
          if (!req.write(chunk)) await new Promise<void>((r) => req.once("drain", r));
        }
        req.end();
      })().catch((e) => req.destroy(e as Error));
    }
  });
}
