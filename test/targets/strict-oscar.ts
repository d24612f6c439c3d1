/**
 * A strict OSCAR test server, written from OSCAR's handlers (grycap/oscar pkg/handlers, pkg/types)
 * rather than from scar's engine, so that the `oscar:` target is tested against what a real cluster
 * does, not against our more lenient engine:
 * - `/system/*` take basic auth only (gin.BasicAuth: 401 with an empty body), or, with `oidcTokens`,
 *   a bearer OIDC access token (OSCAR's CustomAuth);
 * - `/run` and `/job` take `Authorization: Bearer <token>` only: the service's 64-character token
 *   or an OIDC token; basic auth is a 401;
 * - service JSON is decoded as Go's encoding/json decodes a `types.Service`: keys matched without
 *   regard to case, unknown keys dropped, a value of the wrong type a 400, `name`, `image` and
 *   `script` required; and answered as Go marshals one, with every zero value (`null`, `""`,
 *   `false`, `0`) written out;
 * - `/job` answers 201 with an empty body and names the job `<service>-<uuid>` itself, or after
 *   `X-Delegated-Job-ID` from version 4.1.0 on;
 * - `/system/logs/<service>` lists jobs by pod phase: `Suspended` (no pod yet), `Pending`,
 *   `Running`, `Succeeded` or `Failed`. Every listing moves each job one phase on, so tests see
 *   every phase without waiting on a clock;
 * - DELETE of a service also deletes its input and output buckets (recorded in `deletedBuckets`).
 * What a service's "script" does is `run`: by default it answers its input prefixed by "processed: ".
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface StrictOscarOptions {
  user?: string;
  password?: string;
  /** OSCAR's version in /system/info; from 4.1.0 on /job takes the job's name from X-Delegated-Job-ID. */
  version?: string;
  /** OIDC access tokens accepted as `Authorization: Bearer` on /system/* (and /run, /job). */
  oidcTokens?: string[];
  minio?: { endpoint: string; verify: boolean; access_key: string; secret_key: string; region: string };
  /** Jobs disappear as soon as they are created (as after OSCAR's job TTL): never listed. */
  forgetJobs?: boolean;
  /** Jobs listed per page of /system/logs (OSCAR's JOB_LISTING_LIMIT). */
  pageSize?: number;
  /** The service's script: what it answers and logs for an input (the decoded body). */
  run?: (service: string, input: Buffer) => { ok: boolean; output: Buffer; log: string };
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

interface Job {
  name: string;
  service: string;
  phases: string[];
  at: number;
  created: string;
  log: string;
}

export interface StrictOscar {
  url: string;
  requests: RecordedRequest[];
  services: Map<string, Record<string, unknown>>;
  jobs: Map<string, Job>;
  deletedBuckets: string[];
  close(): Promise<void>;
}

type Kind =
  | "string"
  | "bool"
  | "int"
  | "strmap"
  | "strings"
  | "io"
  | "ioList"
  | "any"
  | { object: Record<string, Field> };
interface Field {
  kind: Kind;
  /** `omitempty`: left out of the answer when zero. */
  omit?: boolean;
}

const S: Field = { kind: "string" };
const B: Field = { kind: "bool" };
const I: Field = { kind: "int" };
const IO: Record<string, Field> = {
  storage_provider: S,
  path: S,
  suffix: { kind: "strings", omit: true },
  prefix: { kind: "strings", omit: true },
  options: { kind: "string", omit: true },
};
/** types.Service's JSON fields, in its order. */
const SERVICE: Record<string, Field> = {
  name: S,
  cluster_id: S,
  memory: S,
  cpu: S,
  total_memory: S,
  total_cpu: S,
  ephemeral_storage_request: S,
  enable_gpu: B,
  enable_sgx: B,
  image_prefetch: B,
  synchronous: { kind: { object: { min_scale: I, max_scale: I } } },
  federation: { kind: "any", omit: true },
  log_level: S,
  image: S,
  alpine: B,
  token: S,
  file_stage_in: B,
  input: { kind: "ioList" },
  output: { kind: "ioList" },
  script: { kind: "string", omit: true },
  image_pull_secrets: { kind: "strings", omit: true },
  expose: {
    kind: {
      object: {
        min_scale: I,
        max_scale: I,
        api_port: { kind: "any", omit: true },
        cpu_threshold: I,
        rewrite_target: B,
        nodePort: { kind: "any", omit: true },
        default_command: B,
        set_auth: B,
        auth_type: { kind: "string", omit: true },
        health_path: S,
        probe_mode: { kind: "string", omit: true },
      },
    },
  },
  environment: { kind: { object: { variables: { kind: "strmap" }, secrets: { kind: "strmap" } } } },
  annotations: { kind: "strmap" },
  vo: S,
  labels: { kind: "strmap" },
  storage_providers: { kind: "any", omit: true },
  clusters: { kind: "any", omit: true },
  owner: S,
  namespace: { kind: "string", omit: true },
  interlink_node_name: S,
  visibility: S,
  allowed_users: { kind: "strings" },
  isolation_level: S,
  bucket_list: { kind: "strings" },
  mount: { kind: "io" },
  volume: { kind: "any", omit: true },
  kserve: { kind: "any", omit: true },
};

class GoDecodeError extends Error {}

/** Go's encoding/json into a struct: keys matched without regard to case, unknown keys dropped. */
function decode(fields: Record<string, Field>, value: unknown, where: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new GoDecodeError(`json: cannot unmarshal ${goType(value)} into Go value of type ${where}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const name = Object.keys(fields).find((f) => f.toLowerCase() === k.toLowerCase());
    if (!name || v === null) continue;
    out[name] = decodeValue(fields[name]!.kind, v, `${where}.${name}`);
  }
  return out;
}

function decodeValue(kind: Kind, v: unknown, where: string): unknown {
  const bad = (t: string) =>
    new GoDecodeError(`json: cannot unmarshal ${goType(v)} into Go struct field ${where} of type ${t}`);
  if (kind === "any") return v;
  if (kind === "string") {
    if (typeof v !== "string") throw bad("string");
    return v;
  }
  if (kind === "bool") {
    if (typeof v !== "boolean") throw bad("bool");
    return v;
  }
  if (kind === "int") {
    if (typeof v !== "number" || !Number.isInteger(v)) throw bad("int");
    return v;
  }
  if (kind === "strmap") {
    if (typeof v !== "object" || Array.isArray(v)) throw bad("map[string]string");
    for (const x of Object.values(v as object)) if (typeof x !== "string") throw bad("string");
    return v;
  }
  if (kind === "strings") {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw bad("[]string");
    return v;
  }
  if (kind === "io") return decode(IO, v, where);
  if (kind === "ioList") {
    if (!Array.isArray(v)) throw bad("[]types.StorageIOConfig");
    return v.map((x, i) => decode(IO, x, `${where}[${i}]`));
  }
  return decode(kind.object, v, where);
}

function goType(v: unknown): string {
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}

/** What Go's json.Marshal writes for the struct: every field, zero values included (but omitempty's). */
function marshal(fields: Record<string, Field>, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(fields)) {
    const v = value[name];
    const empty =
      v === undefined ||
      v === "" ||
      v === false ||
      v === 0 ||
      (Array.isArray(v) && v.length === 0) ||
      (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);
    if (f.omit && empty && typeof f.kind === "string") continue;
    out[name] = v !== undefined ? marshalValue(f.kind, v) : zero(f.kind);
  }
  return out;
}

function marshalValue(kind: Kind, v: unknown): unknown {
  if (typeof kind === "object") return marshal(kind.object, v as Record<string, unknown>);
  if (kind === "io") return marshal(IO, v as Record<string, unknown>);
  if (kind === "ioList") return (v as Record<string, unknown>[]).map((x) => marshal(IO, x));
  return v;
}

function zero(kind: Kind): unknown {
  if (typeof kind === "object") return marshal(kind.object, {});
  if (kind === "io") return marshal(IO, {});
  return kind === "string" ? "" : kind === "bool" ? false : kind === "int" ? 0 : null;
}

function versionAtLeast(v: string, min: [number, number, number]): boolean {
  const p = v.replace(/^v/, "").split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((p[i] ?? 0) !== min[i]) return (p[i] ?? 0) > min[i]!;
  return true;
}

export async function startStrictOscar(opts: StrictOscarOptions = {}): Promise<StrictOscar> {
  const user = opts.user ?? "oscar";
  const password = opts.password ?? "strict-secret";
  const version = opts.version ?? "v4.1.2";
  const pageSize = opts.pageSize ?? 2;
  const basic = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const oidc = new Set(opts.oidcTokens ?? []);
  const services = new Map<string, Record<string, unknown>>();
  const jobs = new Map<string, Job>();
  const requests: RecordedRequest[] = [];
  const deletedBuckets: string[] = [];
  const run =
    opts.run ??
    ((_s: string, input: Buffer) => ({
      ok: !input.toString().includes("fail"),
      output: Buffer.concat([Buffer.from("processed: "), input]),
      log: `script read ${input.length} bytes\n`,
    }));

  const text = (res: ServerResponse, status: number, body = "") => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  const systemAuth = (req: IncomingMessage, res: ServerResponse): boolean => {
    const h = req.headers.authorization;
    if (h === basic) return true;
    if (oidc.size > 0 && h?.startsWith("Bearer ") && oidc.has(h.slice(7).trim())) return true;
    // gin.BasicAuth: a realm and no body
    res.writeHead(401, { "www-authenticate": 'Basic realm="Authorization Required"' });
    res.end();
    return false;
  };
  /** run.go / job.go: Bearer only; a 64-character token must be the service's. */
  const serviceAuth = (req: IncomingMessage, res: ServerResponse, svc: Record<string, unknown>): boolean => {
    const parts = (req.headers.authorization ?? "").split("Bearer ");
    if (parts.length !== 2) {
      text(res, 401);
      return false;
    }
    const raw = parts[1]!.trim();
    if (raw.length === 64 ? raw === svc.token : oidc.has(raw)) return true;
    text(res, 401);
    return false;
  };
  const jobInfo = (j: Job) => {
    const phase = j.phases[Math.min(j.at, j.phases.length - 1)]!;
    if (phase === "Suspended") return { status: phase };
    return {
      status: phase,
      creation_time: j.created,
      ...(phase !== "Pending" ? { start_time: j.created } : {}),
      ...(phase === "Succeeded" || phase === "Failed" ? { finish_time: new Date().toISOString() } : {}),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const method = req.method ?? "GET";
    requests.push({ method, path, authorization: req.headers.authorization, headers: req.headers, body });
    const seg = path.split("/").filter(Boolean).map(decodeURIComponent);

    if (path === "/health") return text(res, 200, "Ok");
    if (seg[0] === "run" || seg[0] === "job") {
      const svc = services.get(seg[1] ?? "");
      if (!svc) return text(res, 404);
      if (!serviceAuth(req, res, svc)) return;
      const input = /^[A-Za-z0-9+/]*={0,2}$/.test(body.toString("latin1").trim())
        ? Buffer.from(body.toString("latin1"), "base64")
        : body;
      if (seg[0] === "run") {
        const r = run(svc.name as string, input);
        return text(res, r.ok ? 200 : 500, r.output.toString("base64"));
      }
      const delegated = req.headers["x-delegated-job-id"];
      const short = (svc.name as string).length >= 25 ? (svc.name as string).slice(0, 16) : svc.name;
      const name =
        typeof delegated === "string" && delegated && versionAtLeast(version, [4, 1, 0])
          ? delegated
          : `${short}-${randomUUID()}`;
      const r = run(svc.name as string, input);
      if (!opts.forgetJobs)
        jobs.set(name, {
          name,
          service: svc.name as string,
          phases: ["Suspended", "Pending", "Running", r.ok ? "Succeeded" : "Failed"],
          at: 0,
          created: new Date().toISOString(),
          log: r.log,
        });
      res.writeHead(201);
      return res.end();
    }
    if (seg[0] !== "system") return text(res, 404, "404 page not found");
    if (!systemAuth(req, res)) return;

    if (path === "/system/info" && method === "GET")
      return json(res, 200, {
        version,
        git_commit: "0000000",
        architecture: "amd64",
        kubernetes_version: "v1.30.0",
        serverless_backend: { name: "Knative", version: "1.14.0" },
      });
    if (path === "/system/config" && method === "GET")
      return json(res, 200, {
        config: { name: "oscar", namespace: "oscar", services_namespace: "oscar-svc", gpu_available: false },
        minio_provider: opts.minio ?? {
          endpoint: "https://minio.invalid",
          verify: true,
          access_key: "minio",
          secret_key: "minio-secret",
          region: "us-east-1",
        },
        allowed_image_repositories: [],
      });
    if (seg[1] === "services") {
      if (seg.length === 2 && method === "GET")
        return json(
          res,
          200,
          [...services.values()].map((s) => marshal(SERVICE, s)),
        );
      if (seg.length === 2 && (method === "POST" || method === "PUT")) {
        let svc: Record<string, unknown>;
        try {
          svc = decode(SERVICE, JSON.parse(body.toString("utf8")), "types.Service");
        } catch (err) {
          return text(res, 400, `The service specification is not valid: ${(err as Error).message}`);
        }
        for (const k of ["name", "image", "script"])
          if (!svc[k])
            return text(
              res,
              400,
              `The service specification is not valid: Key: 'Service.${k[0]!.toUpperCase()}${k.slice(1)}' Error:Field validation for '${k}' failed on the 'required' tag`,
            );
        if ((svc.name as string).length > 39)
          return text(res, 400, "The service specification is not valid: name longer than 39");
        const old = services.get(svc.name as string);
        if (method === "POST" && old)
          return text(res, 409, "A service with the provided name already exists");
        if (method === "PUT" && !old) return text(res, 404);
        svc.token = old?.token ?? randomBytes(32).toString("hex");
        svc.owner = "cluster_admin";
        services.set(svc.name as string, svc);
        return method === "POST" ? text(res, 201) : text(res, 204);
      }
      const svc = services.get(seg[2] ?? "");
      if (!svc) return text(res, 404);
      if (seg.length === 3 && method === "GET") return json(res, 200, marshal(SERVICE, svc));
      if (seg.length === 3 && method === "DELETE") {
        services.delete(svc.name as string);
        for (const io of [
          ...((svc.input as { path: string }[]) ?? []),
          ...((svc.output as { path: string }[]) ?? []),
        ])
          deletedBuckets.push(io.path.replace(/^\/+/, "").split("/")[0]!);
        return text(res, 204);
      }
    }
    if (seg[1] === "logs" && seg[2]) {
      if (!services.has(seg[2])) return text(res, 404);
      const mine = [...jobs.values()].filter((j) => j.service === seg[2]);
      if (seg.length === 3 && method === "GET") {
        const start = Number(url.searchParams.get("page") || "0");
        const page = mine.slice(start, start + pageSize);
        const listed = Object.fromEntries(page.map((j) => [j.name, jobInfo(j)]));
        for (const j of page) j.at++;
        const rest = mine.length - start - page.length;
        return json(res, 200, {
          jobs: listed,
          ...(rest > 0 ? { next_page: String(start + pageSize), remaining_jobs: rest } : {}),
        });
      }
      const job = jobs.get(seg[3] ?? "");
      if (seg.length === 4 && method === "GET") {
        // no pod yet (Suspended): OSCAR's logs handler finds nothing to read
        if (
          !job ||
          job.service !== seg[2] ||
          job.phases[Math.min(job.at, job.phases.length - 1)] === "Suspended"
        )
          return text(res, 404);
        return text(res, 200, job.log);
      }
      if (seg.length === 4 && method === "DELETE") {
        if (!job) return text(res, 404);
        jobs.delete(job.name);
        return text(res, 204);
      }
    }
    return text(res, 404, "404 page not found");
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => text(res, 500, String(err)));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    services,
    jobs,
    deletedBuckets,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
