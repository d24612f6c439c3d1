/**
 * The engine's HTTP API: OSCAR's paths and JSON, plus scar's own additions. OSCAR clients ignore the
 * additions; the scar CLI uses both.
 *
 * OSCAR (admin basic auth on /system; /run and /job also take the function's bearer token, and
 * answer a missing function with 404 to the admin only, to anyone else as a wrong token: 401).
 * Lenient where OSCAR is strict: OSCAR's /run and /job refuse basic auth (401); here the admin may
 * call them too, so every client that works with OSCAR works here (scar's CLI uses it locally).
 * Errors are JSON {error, details?}; to a browser page (an Origin header: OSCAR's dashboard, which
 * shows the body as text) the message as text/plain, as OSCAR sends them. CORS: index.ts.
 *   GET /health ("Ok"; 503 with the reason when the job database is damaged or cannot be written),
 *   GET /system/info, GET /system/config (OSCAR's ConfigForUser: config, minio_provider with the
 *     store's keys, allowed_image_repositories)
 *   GET|POST|PUT /system/services, GET|DELETE /system/services/<name>   (service JSON: services.ts
 *     and oscar-service.ts: Go's zero values read as OSCAR reads them; every field of OSCAR's Service
 *     back, scar's additions under `scar`; a taken name on POST: 409)
 *   /system/buckets, /system/status, /system/logs, /system/metrics, /system/services/<name>/deployment:
 *     oscar-system.ts
 *   POST /run/<name>   sync; the body is base64, as OSCAR's supervisor answers (sync-answer.ts): the
 *                      one file the script left in its output folder, a zip of them (paths relative
 *                      to the folder) when several, its output (stdout+stderr) when none, for a
 *                      storage event, or when the script failed. Headers x-scar-output (`file:<path>`,
 *                      `zip:<n>`, `logs`), x-scar-request-id, x-scar-job-status, x-scar-log-group,
 *                      x-scar-log-stream. scar's addition: request header `x-scar-response: logs`
 *                      asks for the output whatever the files (the scar CLI's `run` without -o);
 *                      request header `x-scar-request-id: <uuid>` names the job (400 if not a
 *                      UUID, 409 if taken), so a caller that stops waiting can still name it.
 *                      Files of more than maxResponseBytes in all: 500 {error}; they are still
 *                      uploaded to the function's outputs. 500 too (body: the output) when the
 *                      event, stage-in/out or the container start failed.
 *   POST /job/<name>   async; 201 {jobID}. OSCAR >= 4.1's request header `X-Delegated-Job-ID` names the
 *                      job (a Kubernetes Job name: 400 otherwise; 409 when taken), as a delegating
 *                      OSCAR does, which then finds it in /system/logs/<name>/<id>
 *   (/run, /job, /invoke and a retry answer 503 {error} when the job database cannot take the job:
 *   damaged, or its disk full, then with Retry-After; the error says what /health says)
 *   GET|DELETE /system/logs/<name>, GET|DELETE /system/logs/<name>/<job>
 * scar's additions (admin):
 *   GET  /system/jobs?service=&status=&page=&limit=    {jobs: [job JSON], next_page?}
 *   GET  /system/jobs/counts?service=                  {"<function>": {queued, running, succeeded, failed, dead,
 *        starts?: {cold, warm}}} (starts: jobs whose last attempt started an execution environment or reused one)
 *        (added before /system/jobs/<id>: the first route that matches is taken)
 *   GET  /system/jobs/<id>                             job JSON: the JobRecord with `attempts` (list of
 *        AttemptRecord; the count is `attemptCount`), `children` (delegated jobs), `logGroup`, `logStream`
 *   GET  /system/jobs/<id>/log                         text: START, log, END, REPORT; with
 *        ?follow=true server-sent events that follow the job until it ends (log-follow.ts)
 *   POST /system/jobs/<id>/retry                       dead: redriven, 200 {jobID, redriven: true};
 *        failed: a new job, 201 {jobID, redriven: false}; queued/running/succeeded: 409
 *   GET  /system/dead-letters?service=&page=&limit=    {jobs: [job JSON], next_page?}
 *   POST /system/dead-letters/redrive?service=  or body {ids: [...]}   {redriven: n, skipped?: [ids]}
 *   GET  /system/images, POST /system/images?tag=, POST /system/images/pull   (images.ts)
 *   GET  /system/events                                the job system's changes as server-sent events (events.ts)
 *   POST /system/fdl[?deploy=true]                     an FDL and its scripts, checked as `scar validate`
 *        checks them, and deployed if asked (fdl.ts)
 *   GET|PUT /system/objects/<bucket>?key=              one object of the embedded store (objects.ts);
 *        a PUT to a function's input triggers it
 *   POST /system/store-keys, DELETE /system/store-keys/<id>   a store key pair limited to some
 *        buckets, lent for a while to a function run outside the engine (`scar emulate`; store-keys.ts)
 * The dashboard (no auth: static files, the page asks for the credentials): GET /ui/ (ui.ts)
 * scar's additions without auth:
 *   ANY  /invoke/<name>   the HTTP endpoint of functions with api_gateway (invoke.ts)
 * scar's addition for the admin or scar.cfg's `local.metrics_token` (Authorization: Bearer <token>):
 *   GET  /metrics         Prometheus text (metrics.ts)
 */
import type { IncomingMessage } from "node:http";
import { arch } from "node:os";
import { join } from "node:path";
import { defaultConfig, type ScarConfigFile } from "../../config/defaults.js";
import type { FunctionSpec } from "../../fdl/spec.js";
import { VERSION } from "../../version.js";
import { DeployError, type Engine, RerunError } from "../engine.js";
import { lambdaLog, logGroupName, logStreamName, type ReportOptions } from "../jobs/index.js";
import type { JobRecord, JobStatus } from "../jobs/types.js";
import { requireAdmin, requireAdminOrToken, requireInvoker } from "./auth.js";
import { streamJobEvents } from "./events.js";
import { checkFdl, fdlRequest } from "./fdl.js";
import { HttpError, query, Router, readBody, readJson, sendJson, sendText } from "./http.js";
import { importImage, listImages, pullImage } from "./images.js";
import { invokeEndpoint } from "./invoke.js";
import { followJobLog } from "./log-follow.js";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.js";
import { getObject, putObject } from "./objects.js";
import { addOscarSystemRoutes } from "./oscar-system.js";
import { type ServiceDefaults, serviceJson, specFromServiceJson } from "./services.js";
import { addStoreKeyRoutes } from "./store-keys.js";
import { sendBase64, syncAnswer } from "./sync-answer.js";

export interface ApiLimits {
  /** Largest request body of /run, /job and /invoke (default 64 MiB). */
  maxBodyBytes: number;
  /** Largest answer of /run made of the output folder's files, before base64 (default 64 MiB). */
  maxResponseBytes: number;
  /** Largest service definition (default 1 MiB). */
  maxDefinitionBytes: number;
  /** Largest image archive sent to POST /system/images (default 32 GiB; it is streamed to disk). */
  maxImageBytes: number;
}

/**
 * The OSCAR release whose API the engine answers, as /system/info's `version`. 4.1: what clients
 * turn on for it is answered: the dashboard sends `expose` ports as lists (oscar-service.ts), and an
 * OSCAR that delegates a job here names it with X-Delegated-Job-ID, then finds it in /system/logs
 * and reads /system/status. 4.1's routes for features the engine has not (federation, the exposed
 * services' start/stop/restart and ingress auth, PUT /system/config, quotas) answer 404 as an
 * OSCAR without them would.
 */
export const OSCAR_API_VERSION = "v4.1.0";

const JOB_STATUSES: readonly JobStatus[] = ["queued", "running", "succeeded", "failed", "dead"];

/** OSCAR reports Kubernetes pod phases. */
const OSCAR_STATUS: Record<JobStatus, string> = {
  queued: "Pending",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  dead: "Failed",
};

function iso(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(ms).toISOString();
}

/** A job record with the names Lambda would give its logs. */
function withLogNames(job: JobRecord): JobRecord & { logGroup: string; logStream: string } {
  return { ...job, logGroup: logGroupName(job.function), logStream: logStreamName(job) };
}

/** The job JSON of scar's routes: the record, its attempts (the count as attemptCount), delegated children, log names. */
function jobJson(engine: Engine, job: JobRecord): Record<string, unknown> {
  return {
    ...withLogNames(job),
    attemptCount: job.attempts,
    attempts: engine.jobs.attempts(job.id),
    children: engine.jobs.children(job.id).map(withLogNames),
  };
}

/** What a job's REPORT line says of its function: its memory, when it is still deployed. */
function reportOptions(engine: Engine, job: JobRecord): ReportOptions {
  const memory = engine.registry.get(job.function)?.spec.memory;
  return memory !== undefined ? { memorySizeMB: memory } : {};
}

/** The job log as Lambda shows it. */
function jobLog(engine: Engine, job: JobRecord): string {
  return lambdaLog(job, engine.jobs.log(job.id) ?? "", reportOptions(engine, job));
}

/** `page` and `limit` of a listing; 400 when they are not numbers. */
function paging(url: URL): { cursor?: string; limit?: number } {
  const page = query(url, "page");
  const limit = query(url, "limit");
  if (page !== undefined && page !== "" && !/^\d{1,15}$/.test(page))
    throw new HttpError(400, `page '${page}' is not a page cursor (use next_page of the previous answer)`);
  if (limit !== undefined && !/^\d{1,4}$/.test(limit))
    throw new HttpError(400, `limit '${limit}' must be a whole number from 1 to 1000`);
  const n = limit === undefined ? undefined : Number(limit);
  if (n !== undefined && (n < 1 || n > 1000))
    throw new HttpError(400, `limit ${n} must be a whole number from 1 to 1000`);
  return { ...(page ? { cursor: page } : {}), ...(n !== undefined ? { limit: n } : {}) };
}

/** `status` as one status or a comma-separated list; 400 for unknown ones. */
function statuses(url: URL): JobStatus[] | undefined {
  const v = query(url, "status");
  if (v === undefined || v === "") return undefined;
  const list = v.split(",").map((x) => x.trim());
  for (const x of list)
    if (!JOB_STATUSES.includes(x as JobStatus))
      throw new HttpError(400, `status '${x}' is not one of ${JOB_STATUSES.join(", ")}`);
  return list as JobStatus[];
}

function service(url: URL): string | undefined {
  const v = query(url, "service");
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The request id a caller chose for a sync run (`x-scar-request-id`): scar run names it if the user
 * detaches with Ctrl-C before the answer, when the header with the id has not come yet.
 */
function requestedId(value: string | string[] | undefined, engine: Engine): string | undefined {
  if (value === undefined) return undefined;
  const id = Array.isArray(value) ? value[0]! : value;
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))
    throw new HttpError(400, `x-scar-request-id must be a lower-case UUID, not '${id}'`);
  if (engine.jobs.get(id)) throw new HttpError(409, `request id '${id}' is taken`);
  return id;
}

/**
 * OSCAR >= 4.1's X-Delegated-Job-ID: the job's name, chosen by the OSCAR that delegates it (its own
 * job's id), then found in /system/logs/<service>/<id>. OSCAR takes the header as the Kubernetes Job's
 * name, so it may hold what Kubernetes allows there: a DNS subdomain (lower-case letters, digits, '-'
 * and '.', each dot-separated part starting and ending with a letter or digit) of at most 63
 * characters. A name Kubernetes refuses makes OSCAR answer 500 with Kubernetes' message; here 400.
 * A name taken: 409 with Kubernetes' text (OSCAR passes that on with a 500). An empty header is none.
 */
function delegatedJobId(value: string | string[] | undefined, engine: Engine): string | undefined {
  const id = Array.isArray(value) ? value[0] : value;
  if (id === undefined || id === "") return undefined;
  if (id.length > 63 || !DELEGATED_JOB_ID.test(id))
    throw new HttpError(
      400,
      `X-Delegated-Job-ID '${id}' is not a job name: use at most 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`,
    );
  if (engine.jobs.get(id)) throw new HttpError(409, takenJobId(id));
  return id;
}

const DELEGATED_JOB_ID = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function takenJobId(id: string): string {
  return `jobs.batch "${id}" already exists`;
}

/** Where a FunctionSpec field is written in a service definition (OSCAR's keys, else the `scar` object). */
function serviceField(field: string): string {
  return field === "memory" || field === "cpu" ? field : `scar.${field}`;
}

/**
 * OSCAR shows a service's secrets with empty values; a definition read back and sent again (PUT)
 * keeps the values it had for the secrets it sends empty.
 */
function keepSecrets(spec: FunctionSpec, before: FunctionSpec): FunctionSpec {
  const secrets = { ...spec.secrets };
  for (const [k, v] of Object.entries(secrets))
    if (v === "" && before.secrets?.[k] !== undefined) secrets[k] = before.secrets[k]!;
  return { ...spec, secrets };
}

/** What the router takes from scar.cfg. */
export interface RouterOptions {
  /** What a service definition that leaves them out gets. */
  serviceDefaults?: ServiceDefaults;
  /** A bearer token that may read /metrics besides the admin (scar.cfg `local.metrics_token`). */
  metricsToken?: string;
  /** scar.cfg, the lowest layer of an FDL sent to /system/fdl (as `scar validate` reads it). */
  scarConfig?: ScarConfigFile;
}

export function buildRouter(engine: Engine, limits: ApiLimits, opts: RouterOptions = {}): Router {
  const serviceDefaults = opts.serviceDefaults ?? { timeout: null };
  const admin = engine.credentials.admin;
  const scratch = join(engine.dataDir, "work", "api");
  const fnOr404 = (name: string) => {
    const fn = engine.registry.get(name);
    if (!fn) throw new HttpError(404, `service '${name}' not found`);
    return fn;
  };
  /** A function the caller may invoke; a missing one is a 404 for the admin only (else 401, as a wrong token). */
  const invokable = (req: IncomingMessage, name: string) => {
    const fn = engine.registry.get(name);
    requireInvoker(req, admin, fn?.token);
    return fnOr404(name);
  };
  const minio = () => ({ endpoint: engine.store.url, region: engine.store.region });
  const deploy = async (body: unknown, mustExist: boolean) => {
    const { result, cleanup } = specFromServiceJson(body, scratch, serviceDefaults);
    try {
      let spec = result.functions[0]!;
      if (mustExist) spec = keepSecrets(spec, fnOr404(spec.name).spec);
      else if (engine.registry.get(spec.name))
        throw new HttpError(
          409,
          `A service with the provided name already exists ('${spec.name}'); update it with PUT /system/services`,
        );
      await engine.deploy(spec, { storageProviders: result.storage_providers });
    } catch (err) {
      if (err instanceof DeployError && err.limits.length > 0) {
        const details = err.limits.map((l) => ({ path: serviceField(l.field), message: l.message }));
        throw new HttpError(
          400,
          `invalid service: ${details.map((d) => `${d.path}: ${d.message}`).join("; ")}`,
          details,
        );
      }
      if (err instanceof DeployError) throw new HttpError(400, err.message);
      throw err;
    } finally {
      cleanup();
    }
  };

  const router = new Router()
    .on("GET", "/health", (_req, res) => {
      // "Ok" is what OSCAR clients look for; 503 names what is wrong with the job system.
      const h = engine.health();
      sendText(res, h.ok ? 200 : 503, h.ok ? "Ok" : `job system unhealthy: ${h.message}`);
    })
    .on("GET", "/system/info", (req, res) => {
      requireAdmin(req, admin);
      sendJson(res, 200, {
        // OSCAR's clients turn features on by this version (the dashboard's deployment view from
        // 4.0): it names the OSCAR release whose API the engine answers; scar's own version is
        // serverless_backend's.
        version: OSCAR_API_VERSION,
        git_commit: "",
        architecture: arch(),
        kubernetes_version: "",
        serverless_backend: { name: "scar-local", version: VERSION },
      });
    })
    .on("GET", "/system/config", (req, res) => {
      requireAdmin(req, admin);
      // OSCAR's ConfigForUser: the cluster's settings, the store with the admin's keys, the images allowed.
      sendJson(res, 200, {
        config: {
          name: "scar",
          namespace: "scar",
          services_namespace: "scar",
          controller_service_account: "",
          gpu_available: false,
          interLink_available: false,
          serverless_backend: "scar-local",
          yunikorn_enable: false,
          kueue_enable: false,
          volume_enable: false,
          oidc_groups: [],
          minio_quota_enabled: false,
        },
        minio_provider: {
          endpoint: engine.store.url,
          verify: false,
          access_key: engine.credentials.s3.accessKeyId,
          secret_key: engine.credentials.s3.secretAccessKey,
          region: engine.store.region,
        },
        allowed_image_repositories: [],
      });
    })
    .on("GET", "/system/services", (req, res) => {
      requireAdmin(req, admin);
      sendJson(
        res,
        200,
        engine.functions().map((f) => serviceJson(f, minio())),
      );
    })
    .on("GET", "/system/services/:name", (req, res, p) => {
      requireAdmin(req, admin);
      sendJson(res, 200, serviceJson(fnOr404(p.name!), minio()));
    })
    .on("POST", "/system/services", async (req, res) => {
      requireAdmin(req, admin);
      await deploy(await readJson(req, limits.maxDefinitionBytes), false);
      res.writeHead(201).end();
    })
    .on("PUT", "/system/services", async (req, res) => {
      requireAdmin(req, admin);
      await deploy(await readJson(req, limits.maxDefinitionBytes), true);
      res.writeHead(204).end();
    })
    .on("DELETE", "/system/services/:name", async (req, res, p) => {
      requireAdmin(req, admin);
      fnOr404(p.name!);
      await engine.remove(p.name!);
      res.writeHead(204).end();
    })
    .on("POST", "/run/:name", async (req, res, p) => {
      const fn = invokable(req, p.name!);
      const body = await readBody(req, limits.maxBodyBytes);
      const wantLogs = String(req.headers["x-scar-response"] ?? "").toLowerCase() === "logs";
      const id = requestedId(req.headers["x-scar-request-id"], engine);
      const { job, result } = await engine.invoke(fn.spec.name, body, {
        ...(id ? { id } : {}),
        sync: true,
        trigger: { type: "http", path: `/run/${fn.spec.name}` },
        ...(wantLogs ? {} : { keepOutputs: { maxBytes: limits.maxResponseBytes } }),
      });
      res.setHeader("x-scar-request-id", job.id);
      res.setHeader("x-scar-job-status", job.status);
      res.setHeader("x-scar-log-group", logGroupName(job.function));
      res.setHeader("x-scar-log-stream", logStreamName(job));
      if (!result)
        throw new HttpError(
          500,
          `the invocation ended without a result (${job.reason ?? job.status}: ${job.error ?? ""})`,
        );
      const kept = result.kept;
      if (kept?.kind === "too-large") {
        const where =
          result.outputs.length > 0
            ? `they were uploaded to its outputs (${result.outputs.length === 1 ? "1 object" : `${result.outputs.length} objects`}, e.g. '${result.outputs[0]!.bucket}/${result.outputs[0]!.key}')`
            : "the function has no output to upload them to";
        throw new HttpError(
          500,
          `the function left ${kept.count === 1 ? "1 file" : `${kept.count} files`} (${mib(kept.bytes)}) in its output folder, more than the ${mib(kept.maxBytes)} a synchronous answer may carry; ${where}. Request ${job.id}; ask for the script's output instead with the header 'x-scar-response: logs'`,
        );
      }
      const failed =
        result.reason === "stage-error" || result.reason === "event-error" || result.reason === "start-error";
      const answer = await syncAnswer(result);
      res.setHeader("x-scar-output", answer.output);
      await sendBase64(res, failed ? 500 : 200, answer.data);
    })
    .on("POST", "/job/:name", async (req, res, p) => {
      const fn = invokable(req, p.name!);
      const id = delegatedJobId(req.headers["x-delegated-job-id"], engine);
      const body = await readBody(req, limits.maxBodyBytes);
      let job: JobRecord;
      try {
        ({ job } = await engine.invoke(fn.spec.name, body, {
          ...(id ? { id } : {}),
          sync: false,
          trigger: { type: "http", path: `/job/${fn.spec.name}` },
        }));
      } catch (err) {
        // the same name sent twice at once: the second finds it taken only in the job store
        if (id && engine.jobs.get(id) && /UNIQUE|constraint/i.test((err as Error).message))
          throw new HttpError(409, takenJobId(id));
        throw err;
      }
      sendJson(res, 201, { jobID: job.id });
    })
    .on("GET", "/system/logs/:name", (req, res, p, url) => {
      requireAdmin(req, admin);
      fnOr404(p.name!);
      const page = engine.jobs.list(p.name!, {
        ...(url.searchParams.get("page") ? { cursor: url.searchParams.get("page")! } : {}),
      });
      const jobs: Record<string, unknown> = {};
      for (const j of page.jobs) {
        jobs[j.id] = {
          status: OSCAR_STATUS[j.status],
          creation_time: iso(j.stages.queued),
          start_time: iso(j.startedAt),
          finish_time: iso(j.stages.done),
        };
      }
      sendJson(res, 200, { jobs, ...(page.next ? { next_page: page.next } : {}) });
    })
    .on("DELETE", "/system/logs/:name", (req, res, p, url) => {
      requireAdmin(req, admin);
      fnOr404(p.name!);
      engine.jobs.deleteJobs(p.name!, url.searchParams.get("all") === "true" ? "all" : "succeeded");
      res.writeHead(204).end();
    })
    .on("GET", "/system/logs/:name/:job", (req, res, p) => {
      requireAdmin(req, admin);
      sendText(res, 200, jobLog(engine, jobOf(engine, p.name!, p.job!)));
    })
    .on("DELETE", "/system/logs/:name/:job", (req, res, p) => {
      requireAdmin(req, admin);
      const job = jobOf(engine, p.name!, p.job!);
      engine.jobs.deleteJob(job.id);
      res.writeHead(204).end();
    })
    .on("GET", "/system/jobs", (req, res, _p, url) => {
      requireAdmin(req, admin);
      const st = statuses(url);
      const page = engine.jobs.list(service(url), { ...paging(url), ...(st ? { status: st } : {}) });
      sendJson(res, 200, {
        jobs: page.jobs.map((j) => jobJson(engine, j)),
        ...(page.next ? { next_page: page.next } : {}),
      });
    })
    .on("GET", "/system/jobs/counts", (req, res, _p, url) => {
      requireAdmin(req, admin);
      const fn = service(url);
      const counts = engine.jobs.counts(fn);
      const zero = { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0 };
      // Deployed functions without jobs are shown with zeros; so is a named function.
      const names = fn === undefined ? engine.functions().map((f) => f.spec.name) : [fn];
      for (const n of names) counts[n] ??= { ...zero };
      // Functions whose jobs ran in execution environments also say how many started cold or warm.
      const starts = engine.jobs.startCounts();
      const out: Record<string, object> = {};
      for (const [n, c] of Object.entries(counts)) out[n] = starts[n] ? { ...c, starts: starts[n] } : c;
      sendJson(res, 200, out);
    })
    .on("GET", "/system/jobs/:job", (req, res, p) => {
      requireAdmin(req, admin);
      sendJson(res, 200, jobJson(engine, jobById(engine, p.job!)));
    })
    .on("GET", "/system/jobs/:job/log", (req, res, p, url) => {
      requireAdmin(req, admin);
      const job = jobById(engine, p.job!);
      if (query(url, "follow") === "true")
        followJobLog(engine, job, req, res, () => reportOptions(engine, job));
      else sendText(res, 200, jobLog(engine, job));
    })
    .on("POST", "/system/jobs/:job/retry", (req, res, p) => {
      requireAdmin(req, admin);
      try {
        const r = engine.rerun(p.job!);
        sendJson(res, r.redriven ? 200 : 201, { jobID: r.id, redriven: r.redriven });
      } catch (err) {
        if (err instanceof RerunError) throw new HttpError(err.code === "not-found" ? 404 : 409, err.message);
        throw err;
      }
    })
    .on("GET", "/system/dead-letters", (req, res, _p, url) => {
      requireAdmin(req, admin);
      const page = engine.jobs.listDead(service(url), paging(url));
      sendJson(res, 200, {
        jobs: page.jobs.map((j) => jobJson(engine, j)),
        ...(page.next ? { next_page: page.next } : {}),
      });
    })
    .on("POST", "/system/dead-letters/redrive", async (req, res, _p, url) => {
      requireAdmin(req, admin);
      const fn = service(url);
      const raw = await readBody(req, limits.maxDefinitionBytes);
      let ids: string[] | undefined;
      if (raw.length > 0) {
        let body: unknown;
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch (err) {
          throw new HttpError(400, `the body is not valid JSON: ${(err as Error).message}`);
        }
        const list = (body as { ids?: unknown } | null)?.ids;
        if (!Array.isArray(list) || !list.every((x) => typeof x === "string"))
          throw new HttpError(400, 'the body must be {"ids": ["<job id>", ...]}');
        ids = list;
      }
      if (ids === undefined && fn === undefined)
        throw new HttpError(
          400,
          'name the dead letters to redrive: ?service=<function> or a body {"ids": [...]}',
        );
      if (ids === undefined) {
        sendJson(res, 200, { redriven: engine.jobs.redriveAll(fn!) });
        return;
      }
      const skipped: string[] = [];
      let redriven = 0;
      for (const id of ids) {
        const job = engine.jobs.get(id);
        if (job && (fn === undefined || job.function === fn) && engine.jobs.redrive(id)) redriven++;
        else skipped.push(id);
      }
      sendJson(res, 200, { redriven, ...(skipped.length > 0 ? { skipped } : {}) });
    })
    .on("GET", "/system/events", (req, res) => {
      requireAdmin(req, admin);
      streamJobEvents(engine, req, res);
    })
    .on("POST", "/system/fdl", async (req, res, _p, url) => {
      requireAdmin(req, admin);
      const request = fdlRequest(await readJson(req, limits.maxDefinitionBytes));
      const deploy = query(url, "deploy") === "true";
      const answer = await checkFdl(engine, request, opts.scarConfig ?? defaultConfig(), scratch, deploy);
      sendJson(res, answer.status, answer.body);
    })
    .on("GET", "/system/objects/:bucket", async (req, res, p, url) => {
      requireAdmin(req, admin);
      await getObject(engine, p.bucket!, url, res);
    })
    .on("PUT", "/system/objects/:bucket", async (req, res, p, url) => {
      requireAdmin(req, admin);
      await putObject(engine, p.bucket!, url, req, res, limits.maxBodyBytes);
    })
    .on("GET", "/system/images", (req, res) => {
      requireAdmin(req, admin);
      listImages(engine, res);
    })
    .on("POST", "/system/images", async (req, res, _p, url) => {
      requireAdmin(req, admin);
      await importImage(engine, req, res, url, limits.maxImageBytes);
    })
    .on("POST", "/system/images/pull", async (req, res) => {
      requireAdmin(req, admin);
      await pullImage(engine, req, res, limits.maxDefinitionBytes);
    })
    .on("*", "/invoke/:name", (req, res, p, url) =>
      invokeEndpoint(engine, p.name!, req, res, url, limits.maxBodyBytes),
    )
    .on("GET", "/metrics", (req, res) => {
      requireAdminOrToken(req, admin, opts.metricsToken);
      sendText(res, 200, metricsText(engine), METRICS_CONTENT_TYPE);
    });
  addStoreKeyRoutes(router, engine, (req) => requireAdmin(req, admin));
  return addOscarSystemRoutes(router, engine, (req) => requireAdmin(req, admin), limits.maxDefinitionBytes);
}

/** 1.1 MiB, 64 MiB, 12.5 KiB. */
function mib(bytes: number): string {
  const [n, unit] = bytes < 1024 * 1024 ? [bytes / 1024, "KiB"] : [bytes / (1024 * 1024), "MiB"];
  return `${Number(n.toFixed(1))} ${unit}`;
}

function jobById(engine: Engine, id: string): JobRecord {
  const job = engine.jobs.get(id);
  if (!job) throw new HttpError(404, `job '${id}' not found`);
  return job;
}

function jobOf(engine: Engine, fn: string, id: string): JobRecord {
  const job = engine.jobs.get(id);
  if (!job || job.function !== fn) throw new HttpError(404, `job '${id}' of service '${fn}' not found`);
  return job;
}
