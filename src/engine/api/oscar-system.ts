/**
 * OSCAR's /system routes besides services and jobs, in OSCAR's JSON (grycap/oscar `pkg/handlers`),
 * for OSCAR's clients (its dashboard calls them all):
 *   GET  /system/buckets                 [MinIOBucket]: bucket_name, visibility (private|public, the
 *                                        store's ACL), allowed_users, owner, metadata {from_service}
 *   POST /system/buckets                 {bucket_name[/folder], visibility}: 201; 409 if it exists
 *   PUT  /system/buckets                 {bucket_name, visibility}: 204 (a service's bucket: 403)
 *   GET  /system/buckets/<b>?page=       the bucket with its objects (object_name, size_bytes,
 *                                        last_modified), next_page, is_truncated, returned_items
 *   POST /system/buckets/<b>/presign     a presigned upload or download URL (oscar-presign.ts)
 *   DELETE /system/buckets/<b>           204 (its objects go too, as OSCAR's MinIO removal); 404
 *   GET  /system/status                  this machine as OSCAR's one-node cluster (millicores, bytes),
 *                                        the engine as its deployment, jobs by pod phase, the store
 *   GET  /system/logs                    {logs: [...]}: the /run and /job calls as OSCAR's execution log
 *   GET  /system/metrics, /system/metrics/breakdown?group_by=service|user|country,
 *        /system/metrics/<name>?metric=  request counts and CPU hours from the job store
 *   GET  /system/services/<name>/deployment(/logs)   "ready"; no deployment logs (no pods here)
 * Not on one machine, answered as OSCAR answers with the feature off (its routes are not
 * registered): /system/volumes and /system/quotas/user are 404; /system/config says
 * `volume_enable: false`, `kueue_enable: false`, so OSCAR's clients do not ask.
 * Restricted buckets (per-user access) need users: the engine has one, so they are refused (400).
 */

import type { IncomingMessage } from "node:http";
import { cpus, freemem, hostname, loadavg, totalmem } from "node:os";
import { bucketNameError } from "../../fdl/storage-path.js";
import { EmbeddedStoreProvider } from "../embedded-provider.js";
import type { Engine } from "../engine.js";
import type { JobRecord } from "../jobs/types.js";
import { listPage } from "../store/listing.js";
import { EMBEDDED_PROVIDERS } from "../triggers.js";
import { HttpError, query, type Router, readJson, sendJson } from "./http.js";
import { parsePresignRequest, presign } from "./oscar-presign.js";
import { DEFAULT_OWNER } from "./oscar-service.js";

type Visibility = "private" | "public";

/** Objects per page of GET /system/buckets/<b> (OSCAR's JobListingLimit default). */
const OBJECTS_PER_PAGE = 1000;
/** Jobs read for the execution log and the metrics (the most recent first). */
const JOBS_READ = 5000;

/** OSCAR's public bucket is MinIO's: anyone may list it and read every object (Backend.setPublicObjects). */
function visibilityOf(publicObjects: boolean | undefined): Visibility {
  return publicObjects ? "public" : "private";
}

/** The deployed function whose input or output is in `bucket` (OSCAR tags service buckets so). */
function serviceOf(engine: Engine, bucket: string): string | undefined {
  for (const f of engine.functions()) {
    const ios = [...f.spec.input, ...f.spec.output];
    if (ios.some((p) => EMBEDDED_PROVIDERS.has(p.storage_provider) && p.bucket === bucket))
      return f.spec.name;
  }
  return undefined;
}

function bucketJson(
  engine: Engine,
  name: string,
  publicObjects: boolean | undefined,
): Record<string, unknown> {
  const from = serviceOf(engine, name);
  return {
    bucket_name: name,
    visibility: visibilityOf(publicObjects),
    allowed_users: [],
    owner: DEFAULT_OWNER,
    metadata: { owner_name: "oscar", ...(from ? { from_service: from, service: "true" } : {}) },
  };
}

/** `{bucket_name, visibility}` of a POST/PUT body; 400 naming what is wrong. */
function bucketBody(body: unknown): { path: string; visibility: Visibility } {
  const b = body as { bucket_name?: unknown; visibility?: unknown } | null;
  if (typeof b !== "object" || b === null || typeof b.bucket_name !== "string")
    throw new HttpError(400, "The Bucket specification is not valid: bucket_name is required");
  const path = b.bucket_name.trim().replace(/^\/+|\/+$/g, "");
  const v = b.visibility === undefined || b.visibility === null ? "" : String(b.visibility).toLowerCase();
  if (v === "restricted")
    throw new HttpError(
      400,
      "restricted visibility gives access to named users; this engine has one user: use private or public",
    );
  if (v !== "" && v !== "private" && v !== "public")
    throw new HttpError(
      400,
      `visibility '${String(b.visibility)}' is not one of private, public, restricted`,
    );
  return { path, visibility: v === "public" ? "public" : "private" };
}

/** The jobs started by /run and /job, newest first, up to JOBS_READ. */
function recentJobs(engine: Engine): JobRecord[] {
  const out: JobRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = engine.jobs.list(undefined, { limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.jobs);
    cursor = page.next ?? undefined;
  } while (cursor && out.length < JOBS_READ);
  return out.slice(0, JOBS_READ);
}

function httpPath(j: JobRecord): string | undefined {
  return j.trigger.type === "http" && typeof j.trigger.path === "string" ? j.trigger.path : undefined;
}

/** `start`/`end` of a metrics request (RFC 3339); the last 30 days by default, as OSCAR. */
function range(url: URL): { start: Date; end: Date } {
  const parse = (name: string, dflt: Date) => {
    const v = query(url, name);
    if (v === undefined || v === "") return dflt;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new HttpError(400, `${name} '${v}' is not an RFC 3339 time`);
    return d;
  };
  const end = parse("end", new Date());
  const start = parse("start", new Date(end.getTime() - 30 * 24 * 3600 * 1000));
  return { start, end };
}

interface Counts {
  sync: number;
  async: number;
  other: number;
  cpuHours: number;
}

function countJobs(engine: Engine, jobs: JobRecord[], start: Date, end: Date): Map<string, Counts> {
  const by = new Map<string, Counts>();
  for (const j of jobs) {
    const t = j.stages.queued;
    if (t === null || t < start.getTime() || t > end.getTime()) continue;
    const c = by.get(j.function) ?? { sync: 0, async: 0, other: 0, cpuHours: 0 };
    const p = httpPath(j);
    if (p?.startsWith("/run/")) c.sync++;
    else if (p?.startsWith("/job/")) c.async++;
    else c.other++;
    const done = j.stages.done;
    if (j.startedAt !== null && done !== null) {
      const cores = engine.registry.get(j.function)?.spec.cpu ?? 1;
      c.cpuHours += ((done - j.startedAt) / 3600000) * cores;
    }
    by.set(j.function, c);
  }
  return by;
}

const SOURCES = [{ name: "scar-jobs", status: "ok" }];

/** Adds the routes to `router`; `requireAdmin` throws 401 unless the request is the admin's. */
export function addOscarSystemRoutes(
  router: Router,
  engine: Engine,
  requireAdmin: (req: IncomingMessage) => void,
  maxBody: number,
): Router {
  const backend = () => engine.store.backend;
  return router
    .on("GET", "/system/buckets", (req, res) => {
      requireAdmin(req);
      sendJson(
        res,
        200,
        backend()
          .listBuckets()
          .map((b) => bucketJson(engine, b.name, b.publicObjects)),
      );
    })
    .on("POST", "/system/buckets", async (req, res) => {
      requireAdmin(req);
      const { path, visibility } = bucketBody(await readJson(req, maxBody));
      const [bucket, ...folder] = path.split("/");
      const bad = bucketNameError(bucket ?? "");
      if (bad) throw new HttpError(400, `Error creating bucket with name '${bucket}': ${bad}`);
      const store = backend();
      if (store.buckets.has(bucket!) && folder.length === 0)
        throw new HttpError(409, `the bucket '${bucket}' already exists`);
      if (!store.buckets.has(bucket!)) await store.createBucket(bucket!);
      if (visibility === "public") await store.setPublicObjects(bucket!, true);
      if (folder.length > 0) {
        // A folder marker, as MinIO's clients make them (an empty object whose key ends in '/').
        const key = `${folder.join("/")}/`;
        if (!store.buckets.get(bucket!)!.objects.has(key))
          await new EmbeddedStoreProvider("minio.default", store).putFolderMarker(bucket!, key);
      }
      res.writeHead(201).end();
    })
    .on("PUT", "/system/buckets", async (req, res) => {
      requireAdmin(req);
      const { path, visibility } = bucketBody(await readJson(req, maxBody));
      const store = backend();
      if (!store.buckets.has(path)) throw new HttpError(404, `The bucket '${path}' does not exist`);
      if (serviceOf(engine, path))
        throw new HttpError(403, "Forbidden action: A bucket from a service can't be modified");
      await store.setPublicObjects(path, visibility === "public");
      res.writeHead(204).end();
    })
    .on("GET", "/system/buckets/:bucket", (req, res, p, url) => {
      requireAdmin(req);
      const b = backend().buckets.get(p.bucket!);
      if (!b) throw new HttpError(404, `The bucket '${p.bucket}' does not exist`);
      const page = query(url, "page") ?? "";
      const list = listPage(b, { prefix: "", delimiter: "", maxKeys: OBJECTS_PER_PAGE, after: page });
      sendJson(res, 200, {
        ...bucketJson(engine, b.name, b.publicObjects),
        objects: list.contents.map((o) => ({
          object_name: o.key,
          size_bytes: o.size,
          last_modified: new Date(o.mtime).toISOString(),
        })),
        ...(list.truncated && list.last ? { next_page: list.last } : {}),
        is_truncated: list.truncated,
        returned_items: list.contents.length,
      });
    })
    .on("POST", "/system/buckets/:bucket/presign", async (req, res, p) => {
      requireAdmin(req);
      const request = parsePresignRequest(await readJson(req, maxBody));
      if (!backend().buckets.has(p.bucket!)) throw new HttpError(404, `Bucket '${p.bucket}' not found`);
      const answer = await presign(
        {
          url: engine.store.url,
          region: engine.store.region,
          accessKeyId: engine.credentials.s3.accessKeyId,
          secretAccessKey: engine.credentials.s3.secretAccessKey,
        },
        p.bucket!,
        request,
      );
      sendJson(res, 200, answer);
    })
    .on("DELETE", "/system/buckets/:bucket", async (req, res, p) => {
      requireAdmin(req);
      const store = backend();
      const b = store.buckets.get(p.bucket!);
      if (!b) throw new HttpError(404, `The bucket '${p.bucket}' does not exist`);
      const from = serviceOf(engine, b.name);
      if (from)
        throw new HttpError(
          409,
          `the bucket '${b.name}' is used by the service '${from}': delete the service first`,
        );
      const ctx = {
        requestId: `scar-api-${Date.now().toString(36)}`,
        principal: "scar-api",
        sourceIp: "127.0.0.1",
      };
      for (const key of [...b.sorted]) await store.deleteObject(b.name, key, ctx);
      await store.deleteBucket(b.name);
      res.writeHead(204).end();
    })
    .on("GET", "/system/status", (req, res) => {
      requireAdmin(req);
      const cores = cpus().length * 1000;
      const used = Math.min(cores, Math.round(loadavg()[0]! * 1000));
      const memTotal = totalmem();
      const memFree = freemem();
      const counts = engine.jobs.counts();
      const states = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0 };
      for (const c of Object.values(counts)) {
        states.Pending += c.queued;
        states.Running += c.running;
        states.Succeeded += c.succeeded;
        states.Failed += c.failed + c.dead;
      }
      const jobs = states.Pending + states.Running + states.Succeeded + states.Failed;
      const buckets = backend().listBuckets();
      sendJson(res, 200, {
        cluster: {
          nodes_count: 1,
          metrics: {
            cpu: {
              total_free_cores: cores - used,
              max_free_on_node_cores: cores - used,
              total_schedulable_cores: cores,
              total_schedulable_on_node_cores: cores,
            },
            memory: {
              total_free_bytes: memFree,
              max_free_on_node_bytes: memFree,
              total_schedulable_bytes: memTotal,
              max_schedulable_on_node_bytes: memTotal,
            },
            gpu: { total_gpu: 0 },
          },
          nodes: [
            {
              name: hostname(),
              cpu: { capacity_cores: cores, usage_cores: used },
              memory: { capacity_bytes: memTotal, usage_bytes: memTotal - memFree },
              gpu: 0,
              is_interlink: false,
              status: "Ready",
              conditions: [{ type: "Ready", status: true }],
            },
          ],
        },
        oscar: {
          deployment_name: "scar",
          ready: engine.health().ok,
          deployment: {
            available_replicas: 1,
            ready_replicas: engine.health().ok ? 1 : 0,
            replicas: 1,
            creation_timestamp: null,
            strategy: "",
            labels: {},
          },
          jobs_count: jobs,
          pods: { total: jobs, states },
          oidc: { enabled: false, issuers: [], groups: [] },
        },
        minio: {
          buckets_count: buckets.length,
          total_objects: buckets.reduce((n, b) => n + b.objects.size, 0),
        },
      });
    })
    .on("GET", "/system/logs", (req, res) => {
      requireAdmin(req);
      const logs = recentJobs(engine)
        .filter((j) => httpPath(j) !== undefined)
        .map((j) => {
          const path = httpPath(j)!;
          const status = path.startsWith("/job/")
            ? 201
            : j.status === "failed" || j.status === "dead"
              ? 500
              : 200;
          const at = new Date(j.stages.queued ?? 0).toISOString();
          const done = j.stages.done;
          const latency = done !== null && j.stages.queued !== null ? `${done - j.stages.queued}ms` : "";
          return {
            timestamp: at,
            status,
            latency,
            client_ip: "",
            method: "POST",
            path,
            user: "oscar",
            raw: `[GIN-EXECUTIONS-LOGGER] ${at} | ${status} | ${latency} | POST | ${path} | oscar`,
          };
        });
      sendJson(res, 200, { logs });
    })
    .on("GET", "/system/metrics", (req, res, _p, url) => {
      requireAdmin(req);
      const { start, end } = range(url);
      const by = countJobs(engine, recentJobs(engine), start, end);
      let sync = 0;
      let async = 0;
      let other = 0;
      let cpuHours = 0;
      for (const c of by.values()) {
        sync += c.sync;
        async += c.async;
        other += c.other;
        cpuHours += c.cpuHours;
      }
      sendJson(res, 200, {
        start: start.toISOString(),
        end: end.toISOString(),
        totals: {
          services_count_active: by.size,
          services_count_total: engine.functions().length,
          cpu_hours_total: cpuHours,
          gpu_hours_total: 0,
          requests_count_total: sync + async + other,
          requests_count_sync: sync,
          requests_count_async: async + other,
          requests_count_exposed: 0,
          countries_count: 0,
          countries: [],
          users_count: 1,
          users: ["oscar"],
        },
        sources: SOURCES,
      });
    })
    .on("GET", "/system/metrics/breakdown", (req, res, _p, url) => {
      requireAdmin(req);
      const groupBy = query(url, "group_by");
      if (!groupBy) throw new HttpError(400, "group_by is required");
      if (!["service", "user", "country"].includes(groupBy))
        throw new HttpError(400, `group_by '${groupBy}' is not one of service, user, country`);
      const { start, end } = range(url);
      const by = countJobs(engine, recentJobs(engine), start, end);
      const item = (key: string, c: Counts) => ({
        key,
        executions_count: c.sync + c.async + c.other,
        requests_count_total: c.sync + c.async + c.other,
        requests_count_sync: c.sync,
        requests_count_async: c.async + c.other,
        unique_users_count: 1,
        countries: [],
      });
      let items: Record<string, unknown>[] = [];
      if (groupBy === "service") items = [...by].map(([k, c]) => item(k, c));
      else if (groupBy === "user" && by.size > 0) {
        const all = { sync: 0, async: 0, other: 0, cpuHours: 0 };
        for (const c of by.values()) {
          all.sync += c.sync;
          all.async += c.async;
          all.other += c.other;
        }
        items = [item("oscar", all)];
      }
      sendJson(res, 200, { start: start.toISOString(), end: end.toISOString(), group_by: groupBy, items });
    })
    .on("GET", "/system/metrics/:name", (req, res, p, url) => {
      requireAdmin(req);
      const { start, end } = range(url);
      const c = countJobs(engine, recentJobs(engine), start, end).get(p.name!) ?? {
        sync: 0,
        async: 0,
        other: 0,
        cpuHours: 0,
      };
      const values: Record<string, [number, string?]> = {
        "cpu-hours": [c.cpuHours, "hours"],
        "gpu-hours": [0, "hours"],
        "requests-sync-per-service": [c.sync],
        "requests-async-per-service": [c.async + c.other],
        "requests-exposed-per-service": [0],
        "users-per-service": [c.sync + c.async + c.other > 0 ? 1 : 0],
      };
      const metric = query(url, "metric");
      const one = (key: string) => {
        const [value, unit] = values[key]!;
        return { metric: key, value, ...(unit ? { unit } : {}), sources: SOURCES };
      };
      if (metric === undefined || metric === "") {
        sendJson(res, 200, {
          service_name: p.name,
          start: start.toISOString(),
          end: end.toISOString(),
          metrics: Object.keys(values).map(one),
        });
        return;
      }
      if (!(metric in values)) throw new HttpError(400, "invalid metric key");
      sendJson(res, 200, {
        service_id: p.name,
        start: start.toISOString(),
        end: end.toISOString(),
        ...one(metric),
      });
    })
    .on("GET", "/system/services/:name/deployment", (req, res, p) => {
      requireAdmin(req);
      const fn = engine.registry.get(p.name!);
      if (!fn) throw new HttpError(404, `service '${p.name}' not found`);
      const env = engine.environmentStats()[fn.spec.name];
      sendJson(res, 200, {
        service_name: fn.spec.name,
        state: "ready",
        active_instances: env ? env.idle + env.busy : 0,
        affected_instances: 0,
        resource_kind: "unavailable",
      });
    })
    .on("GET", "/system/services/:name/deployment/logs", (req, res, p) => {
      requireAdmin(req);
      const fn = engine.registry.get(p.name!);
      if (!fn) throw new HttpError(404, `service '${p.name}' not found`);
      sendJson(res, 200, {
        service_name: fn.spec.name,
        available: false,
        message: "Deployment logs are unavailable for this service.",
        entries: [],
      });
    });
}
