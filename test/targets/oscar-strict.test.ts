/**
 * The `oscar:<cluster>` target's commands against a strict OSCAR test server (strict-oscar.ts,
 * written from OSCAR's handlers): Bearer service tokens on /run and /job, an empty 201 from /job,
 * pod phases, Go-style JSON, OIDC tokens from a refresh token or oidc-agent, and a MinIO behind a
 * self-signed certificate.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createServer as createTlsServer } from "node:tls";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { type RunningStore, startStore } from "../../src/engine/store/server.js";
import { runScar } from "../cli/harness.js";
import { type StrictOscar, startStrictOscar } from "./strict-oscar.js";

const root = mkdtempSync(join(tmpdir(), "scar-strict-oscar-"));
const CREDS = { accessKeyId: "minio-ak", secretAccessKey: "minio-sk-strict" };
let store: RunningStore;
let tls: { url: string; close(): Promise<void> };

/** A TLS front for the store with a self-signed certificate made by openssl (a MinIO with `verify: false`). */
async function tlsFront(target: number): Promise<{ url: string; close(): Promise<void> }> {
  const key = join(root, "tls.key");
  const cert = join(root, "tls.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  const server = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (sock) => {
    const up = connect(target, "127.0.0.1");
    sock.pipe(up).pipe(sock);
    up.on("error", () => sock.destroy());
    sock.on("error", () => up.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

before(async () => {
  store = await startStore({ dataDir: join(root, "store"), host: "127.0.0.1", port: 0, credentials: CREDS });
  tls = await tlsFront(store.port);
});
after(async () => {
  await tls.close();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

const FDL = `functions:
  oscar:
  - strict:
      name: grayify
      image: grycap/imagemagick
      script: script.sh
      memory: 512Mi
      cpu: '0.5'
      vo: vo.example.eu
      alpine: true
      enable_gpu: false
      total_memory: 2Gi
      image_pull_secrets: [regcred]
      visibility: restricted
      allowed_users: [alice@example.org]
      isolation_level: SERVICE
      annotations: {team: imaging}
      labels: {tier: batch}
      synchronous: {min_scale: 1, max_scale: 3}
      expose: {min_scale: 1, max_scale: 2, api_port: 8080, cpu_threshold: 70}
      mount: {storage_provider: minio.default, path: shared/data}
      environment:
        variables: {ITERATIONS: 200, DEBUG: true}
      input:
      - storage_provider: minio.default
        path: strict-in/input
      output:
      - storage_provider: minio.default
        path: strict-out/output
clusters:
  remote:
    endpoint: https://remote.example.org
    auth_user: remote-user
    auth_password: remote-secret
    ssl_verify: true
`;

/** A workspace: scar.cfg with the cluster `strict` (these settings), an FDL and its script. */
function workspace(name: string, cluster: Record<string, unknown>) {
  const dir = join(root, name);
  const cfgDir = join(dir, "cfg");
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({ scar: { config_version: "2.0.0", target: "oscar:strict" }, oscar: { strict: cluster } }),
  );
  writeFileSync(join(dir, "fn.yaml"), FDL);
  writeFileSync(
    join(dir, "script.sh"),
    "#!/bin/sh\nconvert $INPUT_FILE_PATH -type Grayscale $TMP_OUTPUT_DIR/out.png\n",
  );
  const scar = (args: string[], env: Record<string, string> = {}) =>
    runScar(args, { cfgDir, cwd: dir, env: { OIDC_SOCK: "", ...env } });
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await scar(args, env);
    assert.equal(r.code, 0, `scar ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout + r.stderr;
  };
  return { dir, scar, ok };
}

function minio(verify: boolean) {
  return {
    endpoint: tls.url,
    verify,
    access_key: CREDS.accessKeyId,
    secret_key: CREDS.secretAccessKey,
    region: "us-east-1",
  };
}

async function upload(bucket: string, keys: string[], body: (k: string) => string) {
  const s3 = new S3Client({
    endpoint: store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDS,
  });
  // the bucket may exist from an earlier test: BucketAlreadyOwnedByYou is fine
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  for (const k of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: body(k) }));
  s3.destroy();
}

describe("the oscar: target against a strict OSCAR (basic auth, OSCAR 4.1)", () => {
  let oscar: StrictOscar;
  let ws: ReturnType<typeof workspace>;
  before(async () => {
    oscar = await startStrictOscar({ minio: minio(false) });
    ws = workspace("basic", {
      endpoint: oscar.url,
      auth_user: "oscar",
      auth_password: "strict-secret",
      ssl_verify: true,
    });
  });
  after(() => oscar.close());

  test("init sends OSCAR's fields from the FDL, in types the Go decoder takes", async () => {
    await ws.ok(["init", "-f", "fn.yaml"]);
    const svc = oscar.services.get("grayify")!;
    assert.ok(svc, "the service was created");
    assert.equal(svc.vo, "vo.example.eu");
    assert.equal(svc.alpine, true);
    assert.equal(svc.total_memory, "2Gi");
    assert.deepEqual(svc.image_pull_secrets, ["regcred"]);
    assert.equal(svc.visibility, "restricted");
    assert.deepEqual(svc.allowed_users, ["alice@example.org"]);
    assert.equal(svc.isolation_level, "SERVICE");
    assert.deepEqual(svc.annotations, { team: "imaging" });
    assert.deepEqual(svc.labels, { tier: "batch" });
    assert.deepEqual(svc.synchronous, { min_scale: 1, max_scale: 3 });
    assert.equal((svc.expose as { cpu_threshold: number }).cpu_threshold, 70);
    assert.deepEqual(svc.mount, { storage_provider: "minio.default", path: "shared/data" });
    assert.equal(svc.cluster_id, "strict");
    assert.deepEqual(
      Object.keys(svc.clusters as object),
      ["remote"],
      "the FDL's clusters go with the service",
    );
    assert.deepEqual((svc.environment as { variables: unknown }).variables, {
      ITERATIONS: "200",
      DEBUG: "true",
    });
    assert.equal(svc.memory, "512Mi");
    assert.equal(svc.cpu, "0.5");
  });

  test("ls reads Go-style JSON with its zero values", async () => {
    const out = await ws.ok(["ls", "--json"]);
    assert.match(out, /grayify/);
  });

  test("run sends the service's token as Bearer and a base64 body, never SCAR's keys", async () => {
    const out = await ws.ok(["run", "--once", "grayify"]);
    const runReq = oscar.requests.filter((r) => r.path === "/run/grayify").at(-1)!;
    assert.equal(runReq.authorization, `Bearer ${oscar.services.get("grayify")!.token}`);
    assert.doesNotMatch(runReq.body.toString(), /cmd_args|scar_env|"script"/);
    assert.match(out, /processed: /);

    const refused = await ws.scar(["run", "--once", "-e", "A=1", "grayify"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /OSCAR/);
  });

  test("invoke sends a file as base64 with the service's token", async () => {
    writeFileSync(join(ws.dir, "in.txt"), "hello strict");
    const out = await ws.ok(["invoke", "-n", "grayify", "-db", "in.txt"]);
    const req = oscar.requests.filter((r) => r.path === "/run/grayify").at(-1)!;
    assert.equal(Buffer.from(req.body.toString(), "base64").toString(), "hello strict");
    assert.match(out, /processed: hello strict/);
    const queued = await ws.ok(["invoke", "-a", "-n", "grayify", "-db", "in.txt"]);
    const id = /Request Id: (\S+)/.exec(queued)?.[1];
    assert.ok(id && oscar.jobs.has(id), queued);
  });

  test("run -a prints the job's real name, which /system/logs lists", async () => {
    const out = await ws.ok(["run", "-a", "grayify"]);
    const id = /Request Id: (\S+)/.exec(out)?.[1];
    assert.ok(id, out);
    assert.ok(oscar.jobs.has(id), `the job '${id}' exists on the server`);
    const jobReq = oscar.requests.filter((r) => r.path === "/job/grayify").at(-1)!;
    assert.match(jobReq.authorization ?? "", /^Bearer [0-9a-f]{64}$/);
  });

  test("run --wait -ib over a MinIO with a self-signed certificate (verify false) ends with each job's phase", async () => {
    await upload("strict-in", ["input/a.png", "input/b.png", "input/fail.png"], (k) => k);
    const r = await ws.scar(["run", "--json", "--wait", "-ib", "strict-in/input", "grayify"]);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      Jobs: number;
      Succeeded: number;
      Failed: number;
      Failures: { Key: string; Status: string }[];
    };
    assert.equal(summary.Jobs, 3, r.stderr);
    assert.equal(summary.Succeeded, 2);
    assert.equal(summary.Failed, 1);
    assert.equal(summary.Failures[0]!.Key, "input/fail.png");
    assert.equal(summary.Failures[0]!.Status, "failed");
    assert.equal(r.code, 1, "a failed job fails the command");
    // OSCAR's MinIO event: what the supervisor reads for a file of its MinIO
    const ev = JSON.parse(
      Buffer.from(oscar.requests.filter((q) => q.path === "/job/grayify").at(-1)!.body).toString(),
    ) as { Records: { eventSource: string; s3: { bucket: { name: string } } }[] };
    assert.equal(ev.Records[0]!.eventSource, "minio:s3");
    assert.equal(ev.Records[0]!.s3.bucket.name, "strict-in");
  });

  test("logs shows the jobs' logs, and one job's with -ri", async () => {
    const out = await ws.ok(["log", "-n", "grayify"]);
    assert.match(out, /script read/);
    const id = [...oscar.jobs.values()].find((j) => j.service === "grayify")!.name;
    assert.match(await ws.ok(["log", "-n", "grayify", "-ri", id]), /script read \d+ bytes/);
    const none = await ws.scar(["log", "-n", "grayify", "-ri", "grayify-not-a-job"]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no request 'grayify-not-a-job'/);
  });

  test("rm deletes the service (and OSCAR deletes its buckets)", async () => {
    const out = await ws.ok(["rm", "-n", "grayify"]);
    assert.equal(oscar.services.has("grayify"), false);
    assert.match(out, /deleted its buckets too, with their files: 'strict-in', 'strict-out'/);
    assert.ok(oscar.deletedBuckets.includes("strict-in"));
  });
});

describe("jobs OSCAR does not name after us, or forgets", () => {
  test("an OSCAR before 4.1 names the job itself: run -a finds the name in /system/logs", async () => {
    const oscar = await startStrictOscar({ version: "v3.6.5", minio: minio(false) });
    try {
      const ws = workspace("old", {
        endpoint: oscar.url,
        auth_user: "oscar",
        auth_password: "strict-secret",
      });
      await ws.ok(["init", "-f", "fn.yaml"]);
      const out = await ws.ok(["run", "-a", "grayify"]);
      const id = /Request Id: (\S+)/.exec(out)?.[1];
      assert.ok(id && oscar.jobs.has(id), out);
    } finally {
      await oscar.close();
    }
  });

  test("run --wait -ib ends when the jobs never show up, saying their status is unknown", async () => {
    const oscar = await startStrictOscar({ forgetJobs: true, minio: minio(false) });
    try {
      const ws = workspace("forget", {
        endpoint: oscar.url,
        auth_user: "oscar",
        auth_password: "strict-secret",
      });
      await ws.ok(["init", "-f", "fn.yaml"]);
      await upload("strict-in", ["input/c.png"], (k) => k);
      const r = await ws.scar(["run", "--json", "--wait", "-ib", "strict-in/input", "grayify"]);
      assert.equal(r.code, 1, r.stderr);
      const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { Failures: { Status: string }[] };
      assert.equal(summary.Failures[0]!.Status, "unknown");
    } finally {
      await oscar.close();
    }
  });

  test("a MinIO with a self-signed certificate is refused when verify is true", async () => {
    const oscar = await startStrictOscar({ minio: minio(true) });
    try {
      const ws = workspace("verify", {
        endpoint: oscar.url,
        auth_user: "oscar",
        auth_password: "strict-secret",
      });
      await ws.ok(["init", "-f", "fn.yaml"]);
      const r = await ws.scar(["ls", "-b", "strict-in"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /certificate/i);
    } finally {
      await oscar.close();
    }
  });
});

describe("OIDC clusters", () => {
  let idp: Server;
  let idpUrl: string;
  const exchanges: URLSearchParams[] = [];
  const ACCESS = "access-token-from-the-idp";
  before(async () => {
    idp = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/realms/egi/.well-known/openid-configuration") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ issuer: `${idpUrl}/realms/egi`, token_endpoint: `${idpUrl}/token` }));
        } else if (req.url === "/token" && req.method === "POST") {
          const form = new URLSearchParams(Buffer.concat(chunks).toString());
          exchanges.push(form);
          const good = form.get("refresh_token")?.endsWith(".sig");
          res.writeHead(good ? 200 : 400, { "content-type": "application/json" });
          res.end(
            JSON.stringify(
              good
                ? { access_token: ACCESS, expires_in: 300, token_type: "Bearer" }
                : { error: "invalid_grant", error_description: "Token is not active" },
            ),
          );
        } else {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((ok) => idp.listen(0, "127.0.0.1", ok));
    idpUrl = `http://127.0.0.1:${(idp.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((ok) => idp.close(() => ok())));

  const jwt = (claims: Record<string, unknown>) =>
    `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;

  test("a refresh token is exchanged at the issuer's token endpoint once, and cached until it expires", async () => {
    const oscar = await startStrictOscar({ oidcTokens: [ACCESS], minio: minio(false) });
    try {
      const refresh = jwt({
        iss: `${idpUrl}/realms/egi`,
        azp: "token-portal",
        scope: "openid eduperson_entitlement",
      });
      const ws = workspace("oidc", { endpoint: oscar.url, oidc_refresh_token: refresh });
      const before = exchanges.length;
      await ws.ok(["init", "-f", "fn.yaml"]);
      assert.equal(exchanges.length, before + 1, "one exchange for all of init's requests");
      const form = exchanges.at(-1)!;
      assert.equal(form.get("grant_type"), "refresh_token");
      assert.equal(form.get("client_id"), "token-portal");
      assert.equal(form.get("scope"), "openid eduperson_entitlement");
      const sys = oscar.requests.filter((r) => r.path.startsWith("/system/"));
      assert.ok(sys.every((r) => r.authorization === `Bearer ${ACCESS}`));
      const out = await ws.ok(["run", "--once", "grayify"]);
      assert.match(out, /processed/);
      assert.equal(exchanges.length, before + 1, "the next command takes the token from the cache");
      assert.equal(statSync(join(ws.dir, "cfg", "oidc-tokens.json")).mode & 0o777, 0o600);

      const bad = workspace("oidc-bad", {
        endpoint: oscar.url,
        oidc_refresh_token: jwt({ iss: `${idpUrl}/realms/egi`, azp: "token-portal" }).replace(
          /\.sig$/,
          ".old",
        ),
      });
      const r = await bad.scar(["ls"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /invalid_grant/);
    } finally {
      await oscar.close();
    }
  });

  test("an oidc-agent account gets its token from the agent's socket; without an agent, a clear error", async () => {
    const oscar = await startStrictOscar({ oidcTokens: ["agent-token"], minio: minio(false) });
    const sock = join(root, "oidc-agent.sock");
    const asked: Record<string, unknown>[] = [];
    const agent = createNetServer((c) => {
      c.on("data", (d) => {
        const q = JSON.parse(d.toString()) as Record<string, unknown>;
        asked.push(q);
        c.end(
          JSON.stringify(
            q.account === "egi"
              ? {
                  status: "success",
                  access_token: "agent-token",
                  issuer: "x",
                  expires_at: Math.floor(Date.now() / 1000) + 3600,
                }
              : { status: "failure", error: `No account configured with that short name` },
          ),
        );
      });
    });
    await new Promise<void>((ok) => agent.listen(sock, ok));
    try {
      const ws = workspace("agent", { endpoint: oscar.url, oidc_account_name: "egi" });
      await ws.ok(["ls"], { OIDC_SOCK: sock });
      assert.equal(asked[0]!.request, "access_token");
      assert.equal(asked[0]!.account, "egi");
      const noAgent = await ws.scar(["ls"]);
      assert.notEqual(noAgent.code, 0);
      assert.match(noAgent.stderr, /oidc-agent/);
      assert.match(noAgent.stderr, /OIDC_SOCK/);
    } finally {
      await new Promise<void>((ok) => agent.close(() => ok()));
      await oscar.close();
    }
  });
});
