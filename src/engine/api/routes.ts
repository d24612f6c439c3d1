/** The engine's HTTP API: OSCAR's paths and JSON, plus scar's own additions under /system/jobs. */
import { arch } from "node:os";
import { join } from "node:path";
import { VERSION } from "../../version.js";
import { DeployError, type Engine } from "../engine.js";
import { lambdaLog } from "../jobs/index.js";
import type { JobRecord, JobStatus } from "../jobs/types.js";
import { requireAdmin, requireInvoker } from "./auth.js";
import { HttpError, Router, readBody, readJson, sendJson, sendText } from "./http.js";
import { serviceJson, specFromServiceJson } from "./services.js";

export interface ApiLimits {
  /** Largest request body of /run and /job (default 64 MiB). */
  maxBodyBytes: number;
  /** Largest service definition (default 1 MiB). */
  maxDefinitionBytes: number;
}

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

export function buildRouter(engine: Engine, limits: ApiLimits): Router {
  const admin = engine.credentials.admin;
  const scratch = join(engine.dataDir, "work", "api");
  const fnOr404 = (name: string) => {
    const fn = engine.registry.get(name);
    if (!fn) throw new HttpError(404, `service '${name}' not found`);
    return fn;
  };
  const deploy = async (body: unknown, mustExist: boolean) => {
    const { result, cleanup } = specFromServiceJson(body, scratch);
    try {
      const spec = result.functions[0]!;
      if (mustExist) fnOr404(spec.name);
      else if (engine.registry.get(spec.name))
        throw new HttpError(
          409,
          `service '${spec.name}' already exists; update it with PUT /system/services`,
        );
      await engine.deploy(spec, { storageProviders: result.storage_providers });
    } catch (err) {
      if (err instanceof DeployError) throw new HttpError(400, err.message);
      throw err;
    } finally {
      cleanup();
    }
  };

  return new Router()
    .on("GET", "/health", (_req, res) => sendText(res, 200, "Ok"))
    .on("GET", "/system/info", (req, res) => {
      requireAdmin(req, admin);
      sendJson(res, 200, {
        version: VERSION,
        git_commit: "",
        architecture: arch(),
        kubernetes_version: "",
        serverless_backend: { name: "scar-local", version: VERSION },
      });
    })
    .on("GET", "/system/config", (req, res) => {
      requireAdmin(req, admin);
      sendJson(res, 200, {
        name: "scar",
        minio_provider: {
          endpoint: engine.store.url,
          verify: false,
          access_key: engine.credentials.s3.accessKeyId,
          secret_key: engine.credentials.s3.secretAccessKey,
          region: engine.store.region,
        },
      });
    })
    .on("GET", "/system/services", (req, res) => {
      requireAdmin(req, admin);
      sendJson(res, 200, engine.functions().map(serviceJson));
    })
    .on("GET", "/system/services/:name", (req, res, p) => {
      requireAdmin(req, admin);
      sendJson(res, 200, serviceJson(fnOr404(p.name!)));
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
      const fn = fnOr404(p.name!);
      requireInvoker(req, admin, fn.token);
      const body = await readBody(req, limits.maxBodyBytes);
      const { job, result } = await engine.invoke(fn.spec.name, body, {
        sync: true,
        trigger: { type: "http", path: `/run/${fn.spec.name}` },
      });
      res.setHeader("x-scar-request-id", job.id);
      res.setHeader("x-scar-job-status", job.status);
      if (!result)
        throw new HttpError(
          500,
          `the invocation ended without a result (${job.reason ?? job.status}: ${job.error ?? ""})`,
        );
      // As OSCAR's supervisor answers: the base64 of what the script printed.
      const failed =
        result.reason === "stage-error" || result.reason === "event-error" || result.reason === "start-error";
      sendText(res, failed ? 500 : 200, result.output.toString("base64"));
    })
    .on("POST", "/job/:name", async (req, res, p) => {
      const fn = fnOr404(p.name!);
      requireInvoker(req, admin, fn.token);
      const body = await readBody(req, limits.maxBodyBytes);
      const { job } = await engine.invoke(fn.spec.name, body, {
        sync: false,
        trigger: { type: "http", path: `/job/${fn.spec.name}` },
      });
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
      const job = jobOf(engine, p.name!, p.job!);
      sendText(res, 200, lambdaLog(job, engine.jobs.log(job.id) ?? ""));
    })
    .on("DELETE", "/system/logs/:name/:job", (req, res, p) => {
      requireAdmin(req, admin);
      const job = jobOf(engine, p.name!, p.job!);
      engine.jobs.deleteJob(job.id);
      res.writeHead(204).end();
    })
    .on("GET", "/system/jobs/:job", (req, res, p) => {
      requireAdmin(req, admin);
      const job = engine.jobs.get(p.job!);
      if (!job) throw new HttpError(404, `job '${p.job}' not found`);
      sendJson(res, 200, job);
    });
}

function jobOf(engine: Engine, fn: string, id: string): JobRecord {
  const job = engine.jobs.get(id);
  if (!job || job.function !== fn) throw new HttpError(404, `job '${id}' of service '${fn}' not found`);
  return job;
}
