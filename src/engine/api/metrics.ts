/**
 * `GET /metrics`: the engine's state in Prometheus' text format (0.0.4), written by hand. Everything
 * is read when scraped, from cheap queries: job counts per function and status (an index scan),
 * cold and warm starts per function (the jobs_env_start index), durations of each function's last
 * 1,000 finished jobs (the jobs_done index), and the store's object counts (in memory).
 *
 *   scar_jobs_total{function,status}            jobs in the job store (gauge: retention deletes them)
 *   scar_job_starts_total{function,start}       of those, jobs whose last attempt started a new
 *                                               execution environment (cold) or reused one (warm)
 *   scar_jobs_running, scar_jobs_queued         all functions together
 *   scar_functions_deployed
 *   scar_job_duration_seconds{function,quantile} summary of the last 1,000 finished jobs, with _sum, _count
 *   scar_store_buckets, scar_store_objects_total
 *   scar_warm_environments{function,state}      warm execution environments now, state idle or busy
 *   scar_environment_starts_total{function}     environments started (cold starts) since the engine started
 *   scar_environment_reuses_total{function}     invocations run in an environment already warm
 */
import type { Engine } from "../engine.js";
import { type JobStatus, START_KINDS } from "../jobs/types.js";

const STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "dead"];
const QUANTILES = [0.5, 0.9, 0.99];
const RECENT = 1000;

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsText(engine: Engine): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  const counts = engine.jobs.counts();
  const deployed = engine.functions().map((f) => f.spec.name);
  for (const name of deployed) counts[name] ??= { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0 };
  const fns = Object.keys(counts).sort();

  family("scar_jobs_total", "gauge", "Jobs in the job store, by function and status.");
  for (const fn of fns)
    for (const st of STATUSES)
      out.push(`scar_jobs_total{function="${label(fn)}",status="${st}"} ${counts[fn]![st]}`);
  const sum = (st: JobStatus) => fns.reduce((n, fn) => n + counts[fn]![st], 0);
  const starts = engine.jobs.startCounts();
  family(
    "scar_job_starts_total",
    "gauge",
    "Jobs in the job store whose last attempt started a new execution environment (cold) or reused a warm one (warm), by function.",
  );
  for (const fn of fns)
    for (const start of START_KINDS)
      out.push(`scar_job_starts_total{function="${label(fn)}",start="${start}"} ${starts[fn]?.[start] ?? 0}`);
  family("scar_jobs_running", "gauge", "Jobs running now.");
  out.push(`scar_jobs_running ${sum("running")}`);
  family("scar_jobs_queued", "gauge", "Jobs waiting to run (including retries waiting for their backoff).");
  out.push(`scar_jobs_queued ${sum("queued")}`);
  family("scar_functions_deployed", "gauge", "Functions deployed on the engine.");
  out.push(`scar_functions_deployed ${deployed.length}`);

  family(
    "scar_job_duration_seconds",
    "summary",
    `Run time of the last attempt of each function's last ${RECENT} finished jobs.`,
  );
  for (const fn of fns) {
    const ds = engine.jobs
      .recentDurations(fn, RECENT)
      .map((ms) => ms / 1000)
      .sort((a, b) => a - b);
    if (ds.length === 0) continue;
    const l = `function="${label(fn)}"`;
    for (const q of QUANTILES) {
      const v = ds[Math.min(ds.length - 1, Math.ceil(q * ds.length) - 1)]!;
      out.push(`scar_job_duration_seconds{${l},quantile="${q}"} ${num(v)}`);
    }
    out.push(`scar_job_duration_seconds_sum{${l}} ${num(ds.reduce((a, b) => a + b, 0))}`);
    out.push(`scar_job_duration_seconds_count{${l}} ${ds.length}`);
  }

  const buckets = engine.store.backend.listBuckets();
  family("scar_store_buckets", "gauge", "Buckets in the embedded object store.");
  out.push(`scar_store_buckets ${buckets.length}`);
  family(
    "scar_store_objects_total",
    "gauge",
    "Objects in the embedded object store (folder markers included).",
  );
  out.push(`scar_store_objects_total ${buckets.reduce((n, b) => n + b.objects.size, 0)}`);

  const envs = engine.environmentStats();
  const envFns = Object.keys(envs).sort();
  family(
    "scar_warm_environments",
    "gauge",
    "Warm execution environments, by function and state (idle or busy).",
  );
  for (const fn of envFns)
    for (const st of ["idle", "busy"] as const)
      out.push(`scar_warm_environments{function="${label(fn)}",state="${st}"} ${envs[fn]![st]}`);
  family(
    "scar_environment_starts_total",
    "counter",
    "Execution environments started (cold starts) since the engine started, by function.",
  );
  for (const fn of envFns)
    out.push(`scar_environment_starts_total{function="${label(fn)}"} ${envs[fn]!.started}`);
  family(
    "scar_environment_reuses_total",
    "counter",
    "Invocations run in an execution environment an earlier invocation had used (warm starts), by function.",
  );
  for (const fn of envFns)
    out.push(`scar_environment_reuses_total{function="${label(fn)}"} ${envs[fn]!.reused}`);
  return `${out.join("\n")}\n`;
}

/** A label value escaped as the text format wants (backslash, double quote, new line). */
function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function num(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 1e6) / 1e6) : "NaN";
}
