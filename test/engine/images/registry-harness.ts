/**
 * A real registry for the image tests: Debian's `docker-registry` with its own config on 127.0.0.1 and
 * a free port, optionally behind token auth (a small token server here signs ES256 JWTs with a
 * throw-away certificate the registry trusts) or htpasswd basic auth. Plus a pass-through proxy that
 * counts requests and can cut or corrupt blob downloads, to test retries and digest checks.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, createPrivateKey, randomUUID, sign } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { tarDirectory } from "../../../src/engine/images/tarwriter.js";
import { busyboxRootfs, tempDir } from "./helpers.js";

export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Registry {
  /** host:port */
  host: string;
  dir: string;
  stop(): Promise<void>;
  /** an admin token for every scope (token-auth registries only) */
  adminAuth?: string;
}

export const USER = "alice";
export const PASSWORD = "s3cret-pass";

interface TokenServer {
  realm: string;
  certPath: string;
  keyPem: string;
  certDer: Buffer;
  close(): Promise<void>;
  requests: { scope: string[]; user?: string }[];
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

export function mintToken(
  ts: TokenServer,
  access: { name: string; actions: string[] }[],
  sub = "admin",
): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "ES256", typ: "JWT", x5c: [ts.certDer.toString("base64")] };
  const claims = {
    iss: "scar-test-issuer",
    sub,
    aud: "scar-test",
    exp: now + 600,
    nbf: now - 10,
    iat: now,
    jti: randomUUID(),
    access: access.map((a) => ({ type: "repository", ...a })),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign("sha256", Buffer.from(input), {
    key: createPrivateKey(ts.keyPem),
    dsaEncoding: "ieee-p1363",
  });
  return `${input}.${b64url(sig)}`;
}

/** Token server policy: alice may pull and push anything; anonymous users may pull `public/*` only. */
async function startTokenServer(dir: string): Promise<TokenServer> {
  const keyPath = join(dir, "token.key");
  const certPath = join(dir, "token.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-nodes",
      "-subj",
      "/CN=scar-test-token",
      "-days",
      "2",
    ],
    { stdio: "ignore" },
  );
  const keyPem = fs.readFileSync(keyPath, "utf8");
  const certPem = fs.readFileSync(certPath, "utf8");
  const certDer = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const requests: TokenServer["requests"] = [];
  const ts: TokenServer = { realm: "", certPath, keyPem, certDer, close: async () => {}, requests };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const scopes = url.searchParams.getAll("scope");
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith("Basic ")) {
      const [u, p] = Buffer.from(auth.slice(6), "base64").toString().split(":");
      if (u !== USER || p !== PASSWORD) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
        return;
      }
      user = u;
    }
    requests.push({ scope: scopes, user });
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = s.split(":");
      if (type !== "repository" || !name || !actions) return [];
      const allowed = user ? actions.split(",") : name.startsWith("public/") ? ["pull"] : [];
      return [{ name, actions: actions.split(",").filter((a) => allowed.includes(a)) }];
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: mintToken(ts, access, user ?? "anonymous"), expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  ts.realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  ts.close = () => new Promise((r) => server.close(() => r()));
  return ts;
}

export async function startRegistry(
  opts: { auth?: "token" | "basic"; user?: string; password?: string } = {},
): Promise<Registry & { token?: TokenServer }> {
  const dir = tempDir("scar-registry-");
  const port = await freePort();
  let auth = "";
  let token: TokenServer | undefined;
  if (opts.auth === "token") {
    token = await startTokenServer(dir);
    auth = `auth:
  token:
    realm: ${token.realm}
    service: scar-test
    issuer: scar-test-issuer
    rootcertbundle: ${token.certPath}
`;
  } else if (opts.auth === "basic") {
    const htpasswd = execFileSync("htpasswd", ["-Bbn", opts.user ?? USER, opts.password ?? PASSWORD], {
      encoding: "utf8",
    });
    fs.writeFileSync(join(dir, "htpasswd"), htpasswd);
    auth = `auth:
  htpasswd:
    realm: scar-test-basic
    path: ${join(dir, "htpasswd")}
`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: ${join(dir, "data")}}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:${port}
${auth}`;
  fs.writeFileSync(join(dir, "config.yml"), config);
  const proc: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr?.on("data", (d) => {
    stderr += d;
  });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const r = await fetch(`http://${host}/v2/`);
      await r.body?.cancel();
      break;
    } catch {
      if (i > 400) throw new Error(`docker-registry did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const reg: Registry & { token?: TokenServer } = {
    host,
    dir,
    token,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
      await token?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return reg;
}

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Uploads a blob with plain HTTP (monolithic), independent of the code under test. */
export async function rawPutBlob(host: string, repo: string, data: Buffer, authz?: string): Promise<string> {
  const digest = sha(data);
  const h: Record<string, string> = authz ? { authorization: authz } : {};
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: "POST", headers: h });
  if (start.status !== 202) throw new Error(`upload start: ${start.status} ${await start.text()}`);
  const loc = new URL(start.headers.get("location")!, `http://${host}`);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, {
    method: "PUT",
    headers: { ...h, "content-type": "application/octet-stream" },
    body: data,
  });
  if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
  return digest;
}

export async function rawPutManifest(
  host: string,
  repo: string,
  tag: string,
  body: object,
  mediaType: string,
  authz?: string,
): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(body));
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": mediaType, ...(authz ? { authorization: authz } : {}) },
    body: bytes,
  });
  if (r.status !== 201) throw new Error(`manifest put: ${r.status} ${await r.text()}`);
  return sha(bytes);
}

export interface TestImage {
  manifestDigest: string;
  configDigest: string;
  layers: Buffer[];
  diffIds: string[];
}

/** Builds an image from tar layers (gzipped here), uploads it, tags it. */
export async function uploadImage(
  host: string,
  repo: string,
  tag: string,
  tars: Buffer[],
  opts: { config?: object; arch?: string; authz?: string; gzip?: boolean } = {},
): Promise<TestImage> {
  const layers = tars.map((t) => (opts.gzip === false ? t : gzipSync(t)));
  const diffIds = tars.map(sha);
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.arch ?? "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh", "-c", "echo hi"], Env: ["PATH=/bin"], WorkingDir: "/", ...opts.config },
      rootfs: { type: "layers", diff_ids: diffIds },
    }),
  );
  const configDigest = await rawPutBlob(host, repo, config, opts.authz);
  const descs = [];
  for (const l of layers) {
    descs.push({
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: await rawPutBlob(host, repo, l, opts.authz),
      size: l.length,
    });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: descs,
  };
  const manifestDigest = await rawPutManifest(host, repo, tag, manifest, manifest.mediaType, opts.authz);
  return { manifestDigest, configDigest, layers, diffIds };
}

/** The tar of a busybox root file system (built once per process). */
let busyboxTar: Buffer | undefined;
export async function busyboxLayer(): Promise<Buffer> {
  if (busyboxTar) return busyboxTar;
  const d = tempDir("scar-bb-");
  busyboxRootfs(d);
  const parts: Buffer[] = [];
  for await (const c of tarDirectory(d)) parts.push(c);
  fs.rmSync(d, { recursive: true, force: true });
  busyboxTar = Buffer.concat(parts);
  return busyboxTar;
}

export interface FaultProxy {
  host: string;
  /** requests seen, as "METHOD path" plus the Range header if any */
  log: string[];
  /** the next GET of this blob is cut after `bytes` bytes (the connection is dropped) */
  cut(digest: string, bytes: number): void;
  /** the next GET of this blob has its last byte flipped */
  corrupt(digest: string): void;
  close(): Promise<void>;
}

/** A pass-through HTTP proxy in front of a registry that can cut or corrupt blob downloads. */
export async function startProxy(target: string): Promise<FaultProxy> {
  const log: string[] = [];
  const cuts = new Map<string, number>();
  const corrupts = new Set<string>();
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ""}`);
    const m = req.method === "GET" ? /\/blobs\/(sha256:[a-f0-9]{64})/.exec(req.url ?? "") : null;
    const digest = m?.[1];
    const up = http.request(
      {
        host: "127.0.0.1",
        port: Number(target.split(":")[1]),
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        const cutAt = digest ? cuts.get(digest) : undefined;
        if (digest && cutAt !== undefined) {
          cuts.delete(digest);
          let sent = 0;
          ur.on("data", (c: Buffer) => {
            if (sent >= cutAt) return;
            const take = c.subarray(0, cutAt - sent);
            sent += take.length;
            res.write(take);
            if (sent >= cutAt) {
              ur.destroy();
              res.socket?.destroy();
            }
          });
          ur.on("end", () => res.end());
          return;
        }
        if (digest && corrupts.has(digest)) {
          corrupts.delete(digest);
          const parts: Buffer[] = [];
          ur.on("data", (c: Buffer) => parts.push(c));
          ur.on("end", () => {
            const all = Buffer.concat(parts);
            if (all.length > 0) all[all.length - 1] = all[all.length - 1]! ^ 0xff;
            res.end(all);
          });
          return;
        }
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    cut(digest, bytes) {
      cuts.set(digest, bytes);
    },
    corrupt(digest) {
      corrupts.add(digest);
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
