/**
 * An OCI distribution-spec client (over node:http, see http.ts): manifests and blobs (get, head, push), with
 * the registry auth flow: anonymous first; on `401` the `WWW-Authenticate` challenge says either
 * `Basic` (send the credentials) or `Bearer realm=…,service=…,scope=…` (get a token from the realm,
 * with the credentials if there are any, then retry). Tokens are cached per registry and scope set.
 * Idempotent requests are retried with backoff on network errors, 429 and 5xx. Redirects (blob
 * storage often lives elsewhere) are followed by hand so credentials never leave the registry's origin.
 */
import { type CredentialSource, type Credentials, DockerCredentials } from "./auth.js";
import { DigestMismatchError, sha256 } from "./digest.js";
import { type HttpResponse, httpRequest } from "./http.js";
import { isLoopbackRegistry, registryHost } from "./reference.js";
import { MEDIA } from "./types.js";

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface RegistryClientOptions {
  /** where to find credentials (default: ~/.docker/config.json) */
  credentials?: CredentialSource;
  /** registries spoken to over plain HTTP besides loopback ones (`host:port`), e.g. from scar.cfg */
  insecure?: string[];
  /** attempts for idempotent requests (default 4) */
  retries?: number;
  /** first backoff delay in ms (doubles each time; default 200) */
  backoffMs?: number;
  userAgent?: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!))
    params[p[1]!.toLowerCase()] = p[2]?.replace(/\\(.)/g, "$1") ?? p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Uint8Array | string | AsyncIterable<Uint8Array> | undefined;
  /** scopes needed, e.g. ["repository:lab/bb:pull"] */
  scopes: string[];
  /** statuses returned to the caller instead of thrown */
  ok?: number[];
  /** retry on failure (only for requests whose body can be sent again) */
  retry?: boolean;
  /** an absolute URL (e.g. an upload Location) instead of a /v2 path */
  url?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64")}`;
}

export class RegistryClient {
  private readonly creds: CredentialSource;
  private readonly insecure: Set<string>;
  private readonly retries: number;
  private readonly backoff: number;
  private readonly userAgent: string;
  /** per registry: how it wants to be authenticated, learned from its first challenge */
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(opts: RegistryClientOptions = {}) {
    this.creds = opts.credentials ?? new DockerCredentials();
    this.insecure = new Set(opts.insecure ?? []);
    this.retries = opts.retries ?? 4;
    this.backoff = opts.backoffMs ?? 200;
    this.userAgent = opts.userAgent ?? "scar";
  }

  /** `http(s)://host/v2` for a registry. */
  baseUrl(registry: string): string {
    const plain = isLoopbackRegistry(registry) || this.insecure.has(registry);
    return `${plain ? "http" : "https"}://${registryHost(registry)}/v2`;
  }

  private async token(registry: string, ch: Challenge, scopes: string[]): Promise<string> {
    const scopeList = ch.params.scope ? [...new Set([...scopes, ...ch.params.scope.split(" ")])] : scopes;
    const key = `${registry} ${scopeList.sort().join(" ")}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError(`registry ${registry} sent a bearer challenge without a realm`);
    const creds = this.creds.get(registry);
    const url = new URL(realm);
    let res: HttpResponse;
    if (creds?.identityToken) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "scar",
      });
      if (ch.params.service) form.set("service", ch.params.service);
      if (scopeList.length > 0) form.set("scope", scopeList.join(" "));
      res = await httpRequest(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": this.userAgent },
        body: form.toString(),
      });
    } else {
      if (ch.params.service) url.searchParams.set("service", ch.params.service);
      for (const s of scopeList) url.searchParams.append("scope", s);
      const headers: Record<string, string> = { "user-agent": this.userAgent };
      if (creds?.username) headers.authorization = basic(creds);
      res = await httpRequest(url, { headers });
    }
    if (!res.ok) {
      const text = (await res.text()).slice(0, 300);
      throw new RegistryError(
        `authentication to ${registry} failed: the token server answered ${res.status}${text ? `: ${text}` : ""}${
          creds ? "" : " (no credentials found in ~/.docker/config.json)"
        }`,
        res.status,
        "UNAUTHORIZED",
      );
    }
    const j = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = j.token ?? j.access_token;
    if (!token) throw new RegistryError(`the token server of ${registry} returned no token`);
    const ttl = Math.max(60, j.expires_in ?? 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + ttl - 10_000 });
    return token;
  }

  private async authHeader(registry: string, scopes: string[]): Promise<string | undefined> {
    const ch = this.challenges.get(registry);
    if (!ch) return undefined;
    if (ch.scheme === "bearer") return `Bearer ${await this.token(registry, ch, scopes)}`;
    if (ch.scheme === "basic") {
      const c = this.creds.get(registry);
      return c?.username ? basic(c) : undefined;
    }
    return undefined;
  }

  /**
   * Sends a request to the registry, authenticating as it asks. Throws RegistryError for statuses
   * outside 2xx/3xx and `opts.ok`.
   */
  async request(registry: string, path: string, opts: RequestOptions): Promise<HttpResponse> {
    const url = opts.url ?? `${this.baseUrl(registry)}${path}`;
    const method = opts.method ?? "GET";
    const attempts = opts.retry === false ? 1 : this.retries;
    let lastErr: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(this.backoff * 2 ** (attempt - 1));
      try {
        let res = await this.send(registry, url, method, opts);
        if (res.status === 401) {
          const header = res.headers.get("www-authenticate");
          await res.body?.cancel();
          const ch = header ? parseChallenge(header) : undefined;
          const known = this.challenges.get(registry);
          const fresh = ch && (!known || known.scheme !== ch.scheme || ch.params.scope !== undefined);
          if (!ch || !fresh) throw this.unauthorized(registry, opts);
          if (ch.scheme === "basic" && !this.creds.get(registry)?.username)
            throw this.unauthorized(registry, opts);
          this.challenges.set(registry, ch);
          res = await this.send(registry, url, method, opts);
          if (res.status === 401) {
            await res.body?.cancel();
            throw this.unauthorized(registry, opts);
          }
        }
        if (RETRY_STATUS.has(res.status) && attempt < attempts - 1 && opts.retry !== false) {
          await res.body?.cancel();
          lastErr = new RegistryError(`${method} ${url}: ${res.status}`, res.status);
          continue;
        }
        if (res.status >= 400 && !(opts.ok ?? []).includes(res.status))
          throw await this.failure(res, method, url);
        return res;
      } catch (e) {
        lastErr = e;
        if (e instanceof RegistryError || opts.retry === false) throw e;
        // network error: try again
      }
    }
    if (lastErr instanceof Error && networkFailure(lastErr))
      throw new RegistryError(
        `registry ${registry} cannot be reached (${networkFailure(lastErr)})`,
        undefined,
        "UNREACHABLE",
      );
    throw lastErr instanceof Error
      ? new RegistryError(`${method} ${url}: ${lastErr.message}${causeOf(lastErr)}`)
      : new RegistryError(`${method} ${url} failed`);
  }

  private unauthorized(registry: string, opts: RequestOptions): RegistryError {
    const c = this.creds.get(registry);
    return new RegistryError(
      `access to ${registry} denied (${opts.scopes.join(", ")})${c ? "" : "; log in first (credentials are read from ~/.docker/config.json)"}`,
      401,
      "UNAUTHORIZED",
    );
  }

  private async failure(res: HttpResponse, method: string, url: string): Promise<RegistryError> {
    let detail = "";
    let code: string | undefined;
    try {
      const text = await res.text();
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      const e = j.errors?.[0];
      if (e) {
        code = e.code;
        detail = `: ${e.code ?? ""} ${e.message ?? ""}`.trimEnd();
      } else detail = `: ${text.slice(0, 200)}`;
    } catch {}
    return new RegistryError(
      `${method} ${new URL(url).pathname} failed with ${res.status}${detail}`,
      res.status,
      code,
    );
  }

  private async send(
    registry: string,
    url: string,
    method: string,
    opts: RequestOptions,
  ): Promise<HttpResponse> {
    const origin = new URL(url).origin;
    const auth = await this.authHeader(registry, opts.scopes);
    let current = url;
    for (let hop = 0; hop < 6; hop++) {
      const headers: Record<string, string> = { "user-agent": this.userAgent, ...opts.headers };
      if (auth && new URL(current).origin === origin) headers.authorization = auth;
      const res = await httpRequest(current, { method, headers, body: hop === 0 ? opts.body : undefined });
      if (
        res.status >= 300 &&
        res.status < 400 &&
        res.headers.get("location") &&
        method !== "PUT" &&
        method !== "POST" &&
        method !== "PATCH"
      ) {
        await res.body?.cancel();
        current = new URL(res.headers.get("location")!, current).toString();
        continue;
      }
      return res;
    }
    throw new RegistryError(`too many redirects for ${url}`);
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  /** sha256 of the bytes (checked against the digest asked for and Docker-Content-Digest) */
  digest: string;
}

const ACCEPT = [
  MEDIA.ociIndex,
  MEDIA.dockerList,
  MEDIA.ociManifest,
  MEDIA.dockerManifest,
  MEDIA.dockerSchema1Signed,
  MEDIA.dockerSchema1,
].join(", ");

/** The repository-level calls of the distribution API, for one registry/repository. */
export class Repository {
  constructor(
    readonly client: RegistryClient,
    readonly registry: string,
    readonly name: string,
  ) {}

  private pull = () => [pullScope(this.name)];
  private push = () => [pushScope(this.name)];

  /** GET a manifest by tag or digest; the content is verified against a digest reference. */
  async getManifest(reference: string, maxBytes = 4 << 20): Promise<FetchedManifest> {
    const res = await this.client.request(this.registry, `/${this.name}/manifests/${reference}`, {
      headers: { accept: ACCEPT },
      scopes: this.pull(),
      ok: [404],
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError(
        `manifest ${this.registry}/${this.name}:${reference} not found`,
        404,
        "MANIFEST_UNKNOWN",
      );
    }
    const bytes = await readLimited(res, maxBytes, "manifest");
    const digest = sha256(bytes);
    const expected = reference.includes(":") ? reference : res.headers.get("docker-content-digest");
    if (expected?.startsWith("sha256:") && expected !== digest)
      throw new DigestMismatchError(expected, digest, `manifest ${this.name}:${reference}`);
    let mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    try {
      const j = JSON.parse(bytes.toString("utf8")) as {
        mediaType?: string;
        schemaVersion?: number;
        manifests?: unknown;
      };
      if (j.mediaType) mediaType = j.mediaType;
      else if (j.schemaVersion === 1) mediaType = MEDIA.dockerSchema1;
      else if (!mediaType || mediaType === "application/json")
        mediaType = j.manifests ? MEDIA.ociIndex : MEDIA.ociManifest;
    } catch {
      throw new RegistryError(`manifest ${this.name}:${reference} is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /** GET a blob, from `offset` on (a Range request) when resuming. Status 200 or 206. */
  async getBlob(digest: string, offset = 0): Promise<HttpResponse> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    return this.client.request(this.registry, `/${this.name}/blobs/${digest}`, {
      headers,
      scopes: this.pull(),
    });
  }

  async hasBlob(digest: string, scopes = this.pull()): Promise<boolean> {
    const res = await this.client.request(this.registry, `/${this.name}/blobs/${digest}`, {
      method: "HEAD",
      scopes,
      ok: [404],
    });
    await res.body?.cancel();
    return res.status === 200;
  }

  /** Tries a cross-repository mount; returns true when the blob is now in this repository. */
  async mountBlob(digest: string, from: string): Promise<{ mounted: boolean; location?: string }> {
    const res = await this.client.request(
      this.registry,
      `/${this.name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      { method: "POST", scopes: [...this.push(), pullScope(from)], retry: false },
    );
    await res.body?.cancel();
    if (res.status === 201) return { mounted: true };
    return { mounted: false, location: this.location(res) };
  }

  /** Starts an upload session; returns its Location. */
  async startUpload(): Promise<string> {
    const res = await this.client.request(this.registry, `/${this.name}/blobs/uploads/`, {
      method: "POST",
      scopes: this.push(),
      headers: { "content-length": "0" },
    });
    await res.body?.cancel();
    return this.location(res);
  }

  location(res: HttpResponse): string {
    const loc = res.headers.get("location");
    if (!loc) throw new RegistryError(`the registry sent no upload location (status ${res.status})`);
    return new URL(loc, `${this.client.baseUrl(this.registry)}/`).toString();
  }

  /** Appends a chunk to an upload (PATCH with Content-Range); returns the next Location. */
  async uploadChunk(location: string, chunk: Buffer, offset: number): Promise<string> {
    const res = await this.client.request(this.registry, "", {
      url: location,
      method: "PATCH",
      scopes: this.push(),
      headers: {
        "content-type": "application/octet-stream",
        "content-range": `${offset}-${offset + chunk.length - 1}`,
        "content-length": String(chunk.length),
      },
      body: chunk,
      retry: false,
    });
    await res.body?.cancel();
    return this.location(res);
  }

  /** Completes an upload (PUT ?digest=), optionally with the (last) body. */
  async finishUpload(
    location: string,
    digest: string,
    body?: Buffer | AsyncIterable<Uint8Array>,
    size?: number,
  ) {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (size !== undefined) headers["content-length"] = String(size);
    else if (!body) headers["content-length"] = "0";
    const res = await this.client.request(this.registry, "", {
      url: url.toString(),
      method: "PUT",
      scopes: this.push(),
      headers,
      body,
      retry: false,
    });
    await res.body?.cancel();
    const got = res.headers.get("docker-content-digest");
    if (got && got !== digest) throw new DigestMismatchError(digest, got, "uploaded blob");
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.client.request(this.registry, `/${this.name}/manifests/${reference}`, {
      method: "PUT",
      scopes: this.push(),
      headers: { "content-type": mediaType },
      body: bytes,
    });
    await res.body?.cancel();
    const digest = sha256(bytes);
    const got = res.headers.get("docker-content-digest");
    if (got && got !== digest) throw new DigestMismatchError(digest, got, "pushed manifest");
    return digest;
  }
}

async function readLimited(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  const len = Number(res.headers.get("content-length") ?? "0");
  if (len > max) throw new RegistryError(`${what} of ${len} bytes is larger than the limit of ${max}`);
  const parts: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of res.body) {
      n += c.length;
      if (n > max) {
        await res.body.cancel().catch(() => {});
        throw new RegistryError(`${what} is larger than the limit of ${max} bytes`);
      }
      parts.push(Buffer.from(c));
    }
  }
  return Buffer.concat(parts);
}

/** Network errors that mean the registry cannot be reached from here, said in words. */
const NETWORK_FAILURES: Record<string, string> = {
  ENOTFOUND: "its name does not resolve",
  EAI_AGAIN: "its name does not resolve",
  ECONNREFUSED: "it refused the connection",
  ECONNRESET: "it closed the connection",
  ETIMEDOUT: "it did not answer",
  EHOSTUNREACH: "no route to it",
  ENETUNREACH: "no network route to it",
};

function networkFailure(e: Error): string | undefined {
  const code =
    (e as NodeJS.ErrnoException).code ?? (e as { cause?: NodeJS.ErrnoException }).cause?.code ?? "";
  return NETWORK_FAILURES[code];
}

function causeOf(e: Error): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message ?? ""})` : "";
}

export const pullScope = (repo: string) => `repository:${repo}:pull`;
export const pushScope = (repo: string) => `repository:${repo}:pull,push`;
