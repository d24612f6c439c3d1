/**
 * The `local` and `oscar:<cluster>` targets: one implementation over OSCAR's REST API. Where scar's
 * engine offers more than OSCAR (job records with stage times, dead letters, image import and pull
 * progress, job counts, the SCAR-style HTTP endpoint), it is used when the server says it is scar's.
 */
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { PullEvent } from "../engine/images/pull.js";
import type { FunctionSpec } from "../fdl/spec.js";
import type { BucketStore } from "./buckets.js";
import { ApiError, type OscarClient } from "./oscar-client.js";
import { pool } from "./pool.js";
import { serviceJson } from "./service-json.js";
import type {
  DeployOptions,
  FunctionInfo,
  HttpInvokeRequest,
  JobInfo,
  JobStatusName,
  RunResult,
  Target,
} from "./types.js";

type Service = Record<string, unknown> & {
  name: string;
  image?: string;
  memory?: string;
  cpu?: string;
  input?: { storage_provider: string; path: string }[];
  output?: { storage_provider: string; path: string }[];
  scar?: { timeout?: number | null; api_gateway?: string; provider?: string };
};

/** One function's entry of scar's /system/jobs/counts: jobs by status, and cold/warm starts if any. */
type JobCounts = Partial<Record<JobStatusName, number>> & { starts?: { cold: number; warm: number } };

/** Lambda's log stream names, which scar's engine also gives its jobs: one stream per job. */
export function logStreamOf(id: string, created: string | number | null): string {
  const d = created === null ? new Date() : new Date(created);
  const day = `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, "0")}/${String(d.getUTCDate()).padStart(2, "0")}`;
  return `${day}/[$LATEST]${id.replace(/-/g, "")}`;
}

export const logGroupOf = (fn: string) => `/aws/lambda/${fn}`;

/** OSCAR's pod phases (GET /system/logs/<service>) as scar's job statuses. */
const PHASES: Record<string, JobStatusName> = {
  Suspended: "queued", // the Job exists, its pod does not yet (Kueue, or not scheduled)
  Pending: "queued",
  Running: "running",
  Succeeded: "succeeded",
  Failed: "failed",
};

/** SCAR's payload keys (`scar run` args, run script, -e): scar's engine reads them, OSCAR's supervisor does not. */
const SCAR_PAYLOAD_KEYS = ["cmd_args", "script", "scar_env", "scar_event_source"];

export class OscarTarget implements Target {
  private engine?: boolean;
  private version?: string;
  private store?: BucketStore;
  /** Services read for their token (and owner), by name. */
  private readonly services = new Map<string, Service>();
  /** Job names already claimed by a submission of this process (finding names on an OSCAR before 4.1). */
  private readonly claimed = new Set<string>();
  private submitting: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly client: OscarClient,
    private readonly where: string,
  ) {}

  describe(): string {
    return this.where;
  }

  /** True when the server is scar's engine (it says so in /system/info). */
  async isScarEngine(): Promise<boolean> {
    if (this.engine === undefined) {
      try {
        const info = await this.client.json<{ version?: string; serverless_backend?: { name?: string } }>(
          "GET",
          "/system/info",
        );
        this.engine = info?.serverless_backend?.name === "scar-local";
        this.version = info?.version ?? "";
      } catch (err) {
        if (err instanceof ApiError && err.status === 0) throw err;
        this.engine = false;
      }
    }
    return this.engine;
  }

  async list(): Promise<FunctionInfo[]> {
    const services = (await this.client.json<Service[] | null>("GET", "/system/services")) ?? [];
    let counts: Record<string, JobCounts> = {};
    if (await this.isScarEngine()) counts = await this.counts();
    return services.map((s) => this.info(s, counts[s.name] ?? {}));
  }

  async get(name: string): Promise<FunctionInfo | undefined> {
    try {
      const s = await this.client.json<Service>("GET", `/system/services/${encodeURIComponent(name)}`);
      const counts = (await this.isScarEngine()) ? await this.counts(name) : {};
      return this.info(s, counts[name] ?? {});
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async counts(name?: string): Promise<Record<string, JobCounts>> {
    return (
      (await this.client.json<Record<string, JobCounts>>("GET", "/system/jobs/counts", {
        query: { service: name },
      })) ?? {}
    );
  }

  private info(s: Service, counts: JobCounts): FunctionInfo {
    const { starts, ...jobs } = counts;
    const mem = typeof s.memory === "string" ? parseMemory(s.memory) : null;
    const hasApi = Boolean(s.scar?.api_gateway) && this.engine;
    return {
      name: s.name,
      image: s.image ?? "",
      memory: mem,
      timeout: s.scar?.timeout ?? null,
      cpu: s.cpu ?? null,
      apiUrl: hasApi ? this.client.url(`/invoke/${encodeURIComponent(s.name)}`) : null,
      supervisorVersion: null,
      input: s.input ?? [],
      output: s.output ?? [],
      jobs,
      ...(starts ? { starts } : {}),
      raw: s,
    };
  }

  /**
   * Gets a function's image where the target keeps images (scar's engine pulls it, or imports its
   * image file) and returns the spec naming it, which deploy() then takes without another pull. A
   * deployment of several functions prepares them all before it creates any.
   */
  async prepare(spec: FunctionSpec, opts: Pick<DeployOptions, "onPull"> = {}): Promise<FunctionSpec> {
    const engine = await this.isScarEngine();
    if (spec.image_file) {
      if (!engine) {
        throw new ApiError(
          400,
          `'${spec.name}' names an image file (${spec.image_file}); an OSCAR cluster pulls images from a registry: push the image and name it with container.image`,
        );
      }
      const image = await this.importImage(spec.image_file, spec.image ?? `scar-local/${spec.name}:latest`);
      const { image_file: _file, ...rest } = spec;
      return { ...rest, image };
    }
    if (engine && spec.image) await this.pull(spec.image, opts.onPull);
    return spec;
  }

  async deploy(spec: FunctionSpec, opts: DeployOptions): Promise<FunctionInfo> {
    const ready = opts.prepared ? spec : await this.prepare(spec, opts);
    const body = serviceJson(ready, {
      storageProviders: opts.storageProviders,
      ...(opts.clusters ? { clusters: opts.clusters } : {}),
      s3AsMinio: !(await this.isScarEngine()),
    });
    await this.client.json(opts.update ? "PUT" : "POST", "/system/services", { json: body });
    const info = await this.get(spec.name);
    if (!info) throw new ApiError(500, `'${spec.name}' was deployed but the server does not list it`);
    return info;
  }

  private async importImage(file: string, tag: string): Promise<string> {
    const { size } = await stat(file);
    const res = await this.client.json<{ ref: string; digest: string }>("POST", "/system/images", {
      query: { tag },
      body: createReadStream(file),
      contentType: "application/x-tar",
      headers: { "content-length": String(size) },
    });
    return res.ref;
  }

  private async pull(image: string, onPull: DeployOptions["onPull"]): Promise<void> {
    for await (const line of this.client.lines("POST", "/system/images/pull", { image })) {
      const l = line as { error?: string; code?: string; done?: unknown };
      // the code (UNREACHABLE: the registry cannot be reached) lets the CLI say what to do instead
      if (l.error) throw new ApiError(400, `cannot get image '${image}': ${l.error}`, { code: l.code });
      if (l.done) return;
      onPull?.(line as PullEvent);
    }
  }

  /**
   * The buckets OSCAR deletes, files and all, with the service (grycap/oscar pkg/handlers/delete.go):
   * those of its inputs and outputs, except the one of its `mount`. None on scar's engine, which
   * keeps them.
   */
  async bucketsDeletedWith(name: string): Promise<string[]> {
    if (await this.isScarEngine()) return [];
    const svc = await this.service(name);
    if (!svc) return [];
    const bucket = (p: unknown) =>
      String(p ?? "")
        .replace(/^[\s/]+/, "")
        .split("/")[0]!;
    const mount = bucket((svc.mount as { path?: string } | undefined)?.path);
    const out = new Set<string>();
    for (const io of [...(svc.input ?? []), ...(svc.output ?? [])]) {
      const b = bucket(io.path);
      if (b && b !== mount) out.add(b);
    }
    return [...out];
  }

  async remove(name: string): Promise<boolean> {
    try {
      await this.client.send("DELETE", `/system/services/${encodeURIComponent(name)}`);
      this.services.delete(name);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return false;
      throw err;
    }
  }

  /**
   * A sync invocation. OSCAR answers with the base64 of the file the script left in its output
   * folder (a zip when several, its output when none); `answer: "logs"` asks scar's engine for the
   * script's output whatever the files (OSCAR ignores the header). `requestId`: the job's id, chosen
   * here so it can be named before the answer comes (scar's engine only; OSCAR ignores it).
   */
  async run(
    name: string,
    event: unknown,
    opts: { answer?: "logs"; requestId?: string } = {},
  ): Promise<RunResult> {
    const engine = await this.isScarEngine();
    const headers: Record<string, string> = {};
    if (opts.answer === "logs") headers["x-scar-response"] = "logs";
    if (opts.requestId) headers["x-scar-request-id"] = opts.requestId;
    const token = await this.serviceToken(name);
    const res = await this.client.send("POST", `/run/${encodeURIComponent(name)}`, {
      ...(engine
        ? { body: JSON.stringify(event ?? {}), contentType: "application/json" }
        : { body: oscarBody(name, event) }),
      headers,
      ...(token ? { token } : {}),
      accept: (s) => s < 300 || s === 500 || s === 502,
    });
    // scar's engine says what went wrong as JSON (e.g. output files too large to answer with).
    if (res.status >= 500 && /^application\/json/.test(header(res.headers, "content-type") ?? "")) {
      let message = "";
      try {
        message = (JSON.parse(res.body.toString("utf8")) as { error?: string }).error ?? "";
      } catch {}
      if (message) throw new ApiError(res.status, message);
    }
    const id = header(res.headers, "x-scar-request-id") ?? "";
    const status = header(res.headers, "x-scar-job-status");
    return {
      requestId: id,
      logGroup: header(res.headers, "x-scar-log-group") ?? logGroupOf(name),
      logStream: header(res.headers, "x-scar-log-stream") ?? (id ? logStreamOf(id, null) : ""),
      output: decodeBase64Body(res.body),
      ok: res.status < 300 && (status === undefined || status === "succeeded"),
      ...(status ? { status } : {}),
      httpStatus: res.status,
    };
  }

  /**
   * An async invocation; its job's id. scar's engine answers with it. OSCAR answers 201 with an
   * empty body, so the job is named here (`X-Delegated-Job-ID`, which OSCAR takes as the name from
   * 4.1.0 on); an older OSCAR names it itself, and the name is the one /system/logs lists now that
   * it did not before (submissions of this process are serialized for that). "" when it cannot be told.
   */
  async submit(name: string, event: unknown): Promise<string> {
    const engine = await this.isScarEngine();
    const token = await this.serviceToken(name);
    const path = `/job/${encodeURIComponent(name)}`;
    if (engine) {
      const res = await this.client.send("POST", path, {
        body: JSON.stringify(event ?? {}),
        contentType: "application/json",
        ...(token ? { token } : {}),
      });
      try {
        return (JSON.parse(res.body.toString("utf8")) as { jobID?: string }).jobID ?? "";
      } catch {
        return "";
      }
    }
    const body = oscarBody(name, event);
    const send = (headers: Record<string, string> = {}) =>
      this.client.send("POST", path, { body, headers, ...(token ? { token } : {}) });
    if (namesJobs(this.version ?? "")) {
      const id = oscarJobName(name);
      await send({ "x-delegated-job-id": id });
      return id;
    }
    const turn = this.submitting.then(async () => {
      const before = new Set(await this.jobNames(name));
      await send();
      const fresh = (await this.jobNames(name)).filter((n) => !before.has(n) && !this.claimed.has(n));
      if (fresh.length !== 1) return "";
      this.claimed.add(fresh[0]!);
      return fresh[0]!;
    });
    this.submitting = turn.catch(() => undefined);
    return turn;
  }

  /** The names of a service's jobs OSCAR lists now. */
  private async jobNames(name: string): Promise<string[]> {
    return (await this.jobs(name)).map((j) => j.id);
  }

  /** A service's token, for /run and /job (OSCAR takes Bearer tokens only there); read once. */
  private async serviceToken(name: string): Promise<string | undefined> {
    const svc = await this.service(name);
    return typeof svc?.token === "string" && svc.token ? svc.token : undefined;
  }

  private async service(name: string): Promise<Service | undefined> {
    let svc = this.services.get(name);
    if (!svc) {
      try {
        svc = await this.client.json<Service>("GET", `/system/services/${encodeURIComponent(name)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }
      if (svc) this.services.set(name, svc);
    }
    return svc;
  }

  /**
   * The event of a file in a bucket, as the target's storage sends it: S3's for scar's engine,
   * MinIO's for OSCAR (what its supervisor reads; the principal is the service's owner, whose
   * MinIO credentials OSCAR then gives the job).
   */
  async fileEvent(
    name: string,
    bucket: string,
    key: string,
    size: number,
    eventSource = false,
  ): Promise<unknown> {
    const encoded = encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+");
    if (await this.isScarEngine()) {
      return {
        ...(eventSource ? { scar_event_source: true } : {}),
        Records: [
          {
            eventVersion: "2.1",
            eventSource: "aws:s3",
            awsRegion: "us-east-1",
            eventTime: new Date().toISOString(),
            eventName: "s3:ObjectCreated:Put",
            s3: {
              s3SchemaVersion: "1.0",
              bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
              object: { key: encoded, size },
            },
          },
        ],
      };
    }
    const owner = ((await this.service(name))?.owner as string | undefined) || "cluster_admin";
    return {
      EventName: "s3:ObjectCreated:Put",
      Key: `${bucket}/${key}`,
      Records: [
        {
          eventVersion: "2.0",
          eventSource: "minio:s3",
          awsRegion: "",
          eventTime: new Date().toISOString(),
          eventName: "s3:ObjectCreated:Put",
          userIdentity: { principalId: owner },
          requestParameters: { principalId: owner, region: "", sourceIPAddress: "127.0.0.1" },
          responseElements: {},
          s3: {
            s3SchemaVersion: "1.0",
            configurationId: "Config",
            bucket: { name: bucket, ownerIdentity: { principalId: owner }, arn: `arn:aws:s3:::${bucket}` },
            object: { key: encoded, size },
          },
        },
      ],
    };
  }

  async invokeHttp(name: string, req: HttpInvokeRequest): Promise<RunResult> {
    const engine = await this.isScarEngine();
    if (!engine) {
      // OSCAR has no API Gateway: its /run and /job endpoints take the body, in base64, as the input.
      // -db's file is base64 already; -jd's JSON is sent as oscar-cli sends a text input.
      const raw = req.body ?? "";
      const input =
        req.contentType === "application/octet-stream"
          ? Buffer.from(String(raw), "base64")
          : Buffer.from(typeof raw === "string" ? raw : String(raw));
      if (req.asynchronous) {
        const id = await this.submit(name, input);
        return asyncResult(name, id);
      }
      return this.run(name, input);
    }
    const res = await this.client.send(req.method, `/invoke/${encodeURIComponent(name)}`, {
      anonymous: true,
      ...(req.query ? { query: req.query } : {}),
      ...(req.body !== undefined ? { body: req.body } : {}),
      ...(req.contentType ? { contentType: req.contentType } : {}),
      headers: req.asynchronous ? { "x-amz-invocation-type": "Event" } : {},
      accept: (s) => s < 300 || s === 500 || s === 502,
    });
    const id = header(res.headers, "amz-lambda-request-id") ?? "";
    if (res.status === 202) return asyncResult(name, id);
    return {
      requestId: id,
      logGroup: header(res.headers, "amz-log-group-name") ?? logGroupOf(name),
      logStream: header(res.headers, "amz-log-stream-name") ?? logStreamOf(id, null),
      output: decodeBase64Body(res.body),
      ok: res.status < 300,
      httpStatus: res.status,
    };
  }

  async jobs(name: string): Promise<JobInfo[]> {
    if (await this.isScarEngine()) {
      const out: JobInfo[] = [];
      let page: string | undefined;
      do {
        const res = await this.client.json<{ jobs: Record<string, unknown>[]; next_page?: string }>(
          "GET",
          "/system/jobs",
          { query: { service: name, page, limit: "1000" } },
        );
        for (const j of res.jobs) out.push(jobOfRecord(j));
        page = res.next_page;
      } while (page);
      return out.sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
    }
    const out: JobInfo[] = [];
    let page: string | undefined;
    do {
      const res = await this.client.json<{
        jobs: Record<
          string,
          { status: string; creation_time?: string; start_time?: string; finish_time?: string }
        >;
        next_page?: string;
      }>("GET", `/system/logs/${encodeURIComponent(name)}`, { query: { page } });
      for (const [id, j] of Object.entries(res?.jobs ?? {})) {
        out.push({
          id,
          function: name,
          // a phase scar does not know (Kubernetes' "Unknown") is shown as it is, and is not final
          status: PHASES[j.status] ?? j.status.toLowerCase(),
          created: j.creation_time ?? null,
          started: j.start_time ?? null,
          finished: j.finish_time ?? null,
          logGroup: logGroupOf(name),
          logStream: logStreamOf(id, j.creation_time ?? null),
          record: { phase: j.status },
        });
      }
      page = res?.next_page;
    } while (page);
    return out.sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
  }

  async job(id: string, fn?: string): Promise<JobInfo | undefined> {
    if (await this.isScarEngine()) {
      try {
        return jobOfRecord(await this.client.json("GET", `/system/jobs/${encodeURIComponent(id)}`));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }
    }
    if (!fn) return undefined;
    return (await this.jobs(fn)).find((j) => j.id === id);
  }

  /** The jobs of these ids that the target knows now (one listing on OSCAR, one request each on scar's engine). */
  async jobsByIds(name: string, ids: string[]): Promise<Map<string, JobInfo>> {
    const out = new Map<string, JobInfo>();
    if (await this.isScarEngine()) {
      await pool(ids, 8, async (id) => {
        const j = await this.job(id, name);
        if (j) out.set(id, j);
      });
      return out;
    }
    const wanted = new Set(ids);
    for (const j of await this.jobs(name)) if (wanted.has(j.id)) out.set(j.id, j);
    return out;
  }

  async jobLog(name: string, id: string): Promise<string> {
    const res = await this.client.send(
      "GET",
      `/system/logs/${encodeURIComponent(name)}/${encodeURIComponent(id)}`,
    );
    return res.body.toString("utf8");
  }

  async buckets(): Promise<BucketStore> {
    if (!this.store) {
      const cfg = await this.client.json<{
        minio_provider?: {
          endpoint?: string;
          verify?: boolean;
          access_key?: string;
          secret_key?: string;
          region?: string;
        };
      }>("GET", "/system/config");
      const m = cfg?.minio_provider;
      if (!m?.endpoint) throw new ApiError(500, `${this.name} does not say where its object store is`);
      // The AWS SDK is the heaviest import of the CLI: loaded only by the commands that use buckets.
      const { BucketStore } = await import("./buckets.js");
      this.store = new BucketStore(m.endpoint, {
        endpoint: m.endpoint,
        region: m.region ?? "us-east-1",
        ...(m.access_key ? { accessKeyId: m.access_key } : {}),
        ...(m.secret_key ? { secretAccessKey: m.secret_key } : {}),
        // OSCAR says whether its MinIO's certificate can be checked (false: self-signed)
        ...(m.verify === false ? { verify: false } : {}),
      });
    }
    return this.store;
  }

  async close(): Promise<void> {
    this.store?.destroy();
    await this.client.close();
  }
}

function asyncResult(name: string, id: string): RunResult {
  return {
    requestId: id,
    logGroup: logGroupOf(name),
    logStream: id ? logStreamOf(id, null) : "",
    output: Buffer.alloc(0),
    ok: true,
    status: "queued",
    httpStatus: 202,
  };
}

function jobOfRecord(j: Record<string, unknown>): JobInfo {
  const stages = (j.stages ?? {}) as Record<string, number | null>;
  const iso = (v: unknown) => (typeof v === "number" ? new Date(v).toISOString() : null);
  const id = String(j.id);
  return {
    id,
    function: String(j.function),
    status: String(j.status),
    created: iso(stages.queued),
    started: iso(j.startedAt),
    finished: iso(stages.done),
    logGroup: typeof j.logGroup === "string" ? j.logGroup : logGroupOf(String(j.function)),
    logStream: typeof j.logStream === "string" ? j.logStream : logStreamOf(id, stages.queued ?? null),
    record: j,
  };
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** OSCAR and SCAR answer with the base64 of the output; anything else is shown as it came. */
function decodeBase64Body(body: Buffer): Buffer {
  const text = body.toString("latin1").trim();
  if (text === "") return Buffer.alloc(0);
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) return Buffer.from(text, "base64");
  return body;
}

/** `512Mi`, `1Gi`, `256M` -> MiB. */
function parseMemory(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|K|M|G)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2] ?? "";
  const mib: Record<string, number> = {
    "": 1 / (1024 * 1024),
    Ki: 1 / 1024,
    Mi: 1,
    Gi: 1024,
    K: 1000 / (1024 * 1024),
    M: 1e6 / (1024 * 1024),
    G: 1e9 / (1024 * 1024),
  };
  return Math.round(n * mib[unit]!);
}

/** OSCAR takes the job's name from X-Delegated-Job-ID from 4.1.0 on (grycap/oscar pkg/handlers/job.go). */
function namesJobs(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 4 || (major === 4 && minor >= 1);
}

/** A job name as OSCAR makes them: the service's name (its first 16 characters if 25 or more), a dash, a UUID. */
function oscarJobName(service: string): string {
  return `${service.length >= 25 ? service.slice(0, 16) : service}-${randomUUID()}`;
}

/**
 * The body of /run and /job on OSCAR, as its clients send it: the input in base64 (oscar-cli's
 * `--text-input`/`--file-input`), nothing for none, a storage event as JSON. SCAR's payload keys
 * mean nothing to OSCAR's supervisor, so asking for them is an error rather than silently ignored.
 */
function oscarBody(name: string, event: unknown): string {
  if (Buffer.isBuffer(event)) return event.toString("base64");
  if (typeof event === "string") return Buffer.from(event).toString("base64");
  if (event === undefined || event === null) return "";
  const keys = Object.keys(event as object);
  const scarKeys = keys.filter((k) => SCAR_PAYLOAD_KEYS.includes(k));
  if (scarKeys.length > 0)
    throw new ApiError(
      400,
      `'${name}' runs on OSCAR, whose supervisor takes no container arguments, run script or -e variables (${scarKeys.join(", ")}): set them in the service's script and environment, and send input with 'scar invoke -db FILE'`,
    );
  return keys.length === 0 ? "" : JSON.stringify(event);
}
