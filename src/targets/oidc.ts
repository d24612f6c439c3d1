/**
 * OIDC access tokens for OSCAR clusters that take them (oscar-cli's cluster options): a refresh
 * token exchanged at the issuer's token endpoint, or an account of a running oidc-agent. A token is
 * kept until a minute before it expires: in memory, so one command makes one exchange however many
 * requests it sends, and (refresh tokens) in a cache file only its owner may read, so the next
 * commands make none. oidc-agent keeps its own tokens.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { request } from "undici";
import { writeFileAtomic } from "../config/scar-cfg.js";

export interface OidcSettings {
  /** scar.cfg `oidc_refresh_token`: exchanged at the issuer's token endpoint. */
  refreshToken?: string;
  /** scar.cfg `oidc_account_name`: an account of oidc-agent (reached through $OIDC_SOCK). */
  accountName?: string;
  /** scar.cfg `oidc_issuer`; else the refresh token's `iss` claim (Keycloak's and EGI's are JWTs). */
  issuer?: string;
  /** scar.cfg `oidc_client_id`; else the refresh token's `azp` claim. */
  clientId?: string;
  /** scar.cfg `oidc_client_secret`, for clients that are not public. */
  clientSecret?: string;
  /** scar.cfg `oidc_scope`; else the refresh token's `scope` claim. */
  scope?: string;
}

/** A token refused or not obtained: the message says which step failed and what to check. */
export class OidcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OidcError";
  }
}

/** Seconds of validity a cached token must have left to be used again (oscar-cli asks oidc-agent for 600). */
const MIN_VALID_SECONDS = 60;
const AGENT_MIN_VALID_SECONDS = 600;

export class OidcTokenSource {
  private cached?: { token: string; expiresAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly settings: OidcSettings,
    /** Where oidc-agent listens; $OIDC_SOCK when not given. */
    private readonly agentSocket: string | undefined = process.env.OIDC_SOCK,
    /** The cache file of tokens got from refresh tokens (none: memory only). */
    private readonly cacheFile?: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!settings.refreshToken && !settings.accountName)
      throw new OidcError("OIDC needs oidc_refresh_token or oidc_account_name");
  }

  /** A valid access token, from the cache while it lasts. */
  async token(): Promise<string> {
    if (!this.cached && this.settings.refreshToken) this.cached = this.readCache();
    if (this.cached && this.cached.expiresAt - MIN_VALID_SECONDS * 1000 > this.now())
      return this.cached.token;
    // Requests sent at once share one exchange.
    this.pending ??= (this.settings.accountName ? this.fromAgent() : this.fromRefreshToken()).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private remember(token: string, expiresAt: number | undefined): string {
    const exp = jwtClaims(token)?.exp;
    // Without a lifetime the token is used for this request only.
    this.cached = { token, expiresAt: expiresAt ?? (typeof exp === "number" ? exp * 1000 : this.now()) };
    if (this.settings.refreshToken && this.cacheFile) this.writeCache(this.cached);
    return token;
  }

  /** Entries are keyed by a hash of the refresh token and the settings it is exchanged with. */
  private cacheKey(): string {
    const { refreshToken, issuer, clientId, scope } = this.settings;
    return createHash("sha256")
      .update(JSON.stringify([refreshToken, issuer ?? "", clientId ?? "", scope ?? ""]))
      .digest("hex");
  }

  private cacheEntries(): Record<string, { token: string; expiresAt: number }> {
    if (!this.cacheFile) return {};
    try {
      const j = JSON.parse(readFileSync(this.cacheFile, "utf8")) as unknown;
      return j && typeof j === "object" ? (j as Record<string, { token: string; expiresAt: number }>) : {};
    } catch {
      return {}; // none yet, or unreadable: a new exchange costs one request
    }
  }

  private readCache(): { token: string; expiresAt: number } | undefined {
    const e = this.cacheEntries()[this.cacheKey()];
    return typeof e?.token === "string" && typeof e.expiresAt === "number" ? e : undefined;
  }

  private writeCache(entry: { token: string; expiresAt: number }): void {
    const now = this.now();
    const kept = Object.fromEntries(
      Object.entries(this.cacheEntries()).filter(
        ([, e]) => typeof e?.expiresAt === "number" && e.expiresAt > now,
      ),
    );
    kept[this.cacheKey()] = entry;
    try {
      writeFileAtomic(this.cacheFile!, `${JSON.stringify(kept)}\n`); // mode 0600
    } catch {
      // a read-only config folder: the token still serves this command
    }
  }

  private async fromRefreshToken(): Promise<string> {
    const rt = this.settings.refreshToken!;
    const claims = jwtClaims(rt);
    const issuer = this.settings.issuer ?? (typeof claims?.iss === "string" ? claims.iss : undefined);
    if (!issuer)
      throw new OidcError(
        "the refresh token does not say its issuer (it is not a JWT): set oidc_issuer in the cluster's entry of scar.cfg",
      );
    const clientId = this.settings.clientId ?? (typeof claims?.azp === "string" ? claims.azp : undefined);
    if (!clientId)
      throw new OidcError(
        "the refresh token does not say its client: set oidc_client_id in the cluster's entry of scar.cfg",
      );
    const scope = this.settings.scope ?? (typeof claims?.scope === "string" ? claims.scope : undefined);
    const endpoint = await tokenEndpoint(issuer);
    const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: rt, client_id: clientId });
    if (scope) form.set("scope", scope);
    if (this.settings.clientSecret) form.set("client_secret", this.settings.clientSecret);
    const sentAt = this.now();
    let status: number;
    let text: string;
    try {
      const res = await request(endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: form.toString(),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw new OidcError(`cannot reach the token endpoint ${endpoint}: ${(err as Error).message}`);
    }
    const body = parseJson(text) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
      error_description?: string;
    } | null;
    if (status !== 200 || !body?.access_token) {
      const why = body?.error
        ? `${body.error}${body.error_description ? `: ${body.error_description}` : ""}`
        : `HTTP ${status}`;
      throw new OidcError(
        `${issuer} refused the refresh token (${why}); get a new one and set oidc_refresh_token`,
      );
    }
    return this.remember(
      body.access_token,
      typeof body.expires_in === "number" ? sentAt + body.expires_in * 1000 : undefined,
    );
  }

  /** oidc-agent's IPC: one JSON request on its UNIX socket, one JSON answer. */
  private async fromAgent(): Promise<string> {
    const account = this.settings.accountName!;
    if (!this.agentSocket)
      throw new OidcError(
        `oidc_account_name '${account}' needs oidc-agent, and none is running here ($OIDC_SOCK is not set): start it (eval $(oidc-agent-service use)) and load the account (oidc-add ${account})`,
      );
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const sock = createConnection(this.agentSocket!);
      let text = "";
      const fail = (why: string) => {
        sock.destroy();
        reject(new OidcError(`cannot get a token from oidc-agent at ${this.agentSocket}: ${why}`));
      };
      sock.on("connect", () =>
        sock.write(
          JSON.stringify({
            request: "access_token",
            account,
            min_valid_period: AGENT_MIN_VALID_SECONDS,
            application_hint: "scar",
          }),
        ),
      );
      sock.on("data", (chunk) => {
        text += chunk.toString("utf8");
        const j = parseJson(text);
        if (j && typeof j === "object") {
          sock.destroy();
          resolve(j as Record<string, unknown>);
        }
      });
      sock.on("error", (err) => fail(err.message));
      sock.on("end", () =>
        fail(text ? "its answer is not JSON" : "it closed the connection without answering"),
      );
    });
    if (answer.status !== "success" || typeof answer.access_token !== "string") {
      throw new OidcError(
        `oidc-agent gave no token for account '${account}': ${typeof answer.error === "string" ? answer.error : JSON.stringify(answer)}`,
      );
    }
    return this.remember(
      answer.access_token,
      typeof answer.expires_at === "number" ? answer.expires_at * 1000 : undefined,
    );
  }
}

/** The issuer's token endpoint, from its discovery document. */
async function tokenEndpoint(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  let status: number;
  let text: string;
  try {
    const res = await request(url, { headers: { accept: "application/json" } });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    throw new OidcError(`cannot reach the OIDC issuer ${issuer}: ${(err as Error).message}`);
  }
  const doc = parseJson(text) as { token_endpoint?: unknown } | null;
  if (status !== 200 || typeof doc?.token_endpoint !== "string")
    throw new OidcError(
      `${url} answered HTTP ${status} without a token_endpoint: is ${issuer} an OIDC issuer?`,
    );
  return doc.token_endpoint;
}

/** The claims of a JWT, read without checking its signature (only the issuer may check it). */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const j = parseJson(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  return j && typeof j === "object" ? (j as Record<string, unknown>) : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
