/**
 * Registry credentials the way Docker keeps them: `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`)
 * with `auths` entries (`auth` = base64 "user:password", or `username`/`password`, or `identitytoken`),
 * and credential helpers (`credHelpers` per registry, `credsStore` for all) run as
 * `docker-credential-<name> get`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Credentials {
  username?: string;
  password?: string;
  /** an OAuth2 refresh token (Docker's `identitytoken`) */
  identityToken?: string;
}

export interface CredentialSource {
  get(registry: string): Credentials | undefined;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The keys under which Docker may have stored a registry's credentials. */
function keysFor(registry: string): string[] {
  if (registry === "docker.io")
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  return [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
  ];
}

export class DockerCredentials implements CredentialSource {
  private cfg: DockerConfigFile | undefined;

  constructor(readonly configPath = DockerCredentials.defaultPath()) {}

  static defaultPath(): string {
    const dir = process.env.DOCKER_CONFIG ?? join(homedir(), ".docker");
    return join(dir, "config.json");
  }

  private load(): DockerConfigFile {
    if (this.cfg) return this.cfg;
    try {
      this.cfg = JSON.parse(fs.readFileSync(this.configPath, "utf8")) as DockerConfigFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT")
        throw new Error(`cannot read ${this.configPath}: ${(e as Error).message}`);
      this.cfg = {};
    }
    return this.cfg;
  }

  get(registry: string): Credentials | undefined {
    const cfg = this.load();
    const keys = keysFor(registry);
    const helper = keys.map((k) => cfg.credHelpers?.[k]).find((h) => h) ?? cfg.credsStore;
    if (helper) {
      const c = this.fromHelper(helper, registry === "docker.io" ? keys[0]! : registry);
      if (c) return c;
    }
    for (const k of keys) {
      const a = cfg.auths?.[k];
      if (!a) continue;
      if (a.identitytoken) return { identityToken: a.identitytoken, username: a.username };
      if (a.auth) {
        const dec = Buffer.from(a.auth, "base64").toString("utf8");
        const i = dec.indexOf(":");
        if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
      }
      if (a.username && a.password) return { username: a.username, password: a.password };
    }
    return undefined;
  }

  private fromHelper(helper: string, server: string): Credentials | undefined {
    try {
      const out = execFileSync(`docker-credential-${helper}`, ["get"], {
        input: server,
        encoding: "utf8",
        stdio: ["pipe", "pipe", "ignore"],
        timeout: 30_000,
      });
      const j = JSON.parse(out) as { Username?: string; Secret?: string };
      if (!j.Secret) return undefined;
      if (j.Username === "<token>") return { identityToken: j.Secret };
      return { username: j.Username, password: j.Secret };
    } catch {
      return undefined;
    }
  }
}

/** Credentials given directly (e.g. from the FDL or an ECR token), falling back to another source. */
export class StaticCredentials implements CredentialSource {
  constructor(
    private readonly map: Record<string, Credentials>,
    private readonly fallback?: CredentialSource,
  ) {}
  get(registry: string): Credentials | undefined {
    return this.map[registry] ?? this.fallback?.get(registry);
  }
}
