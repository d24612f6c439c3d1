/**
 * The embedded engine: the object store, the images, the container runtime and the job system
 * made into a serverless platform on one machine.
 *
 *   upload to an input path -> store commit hook -> durable job (same commit) -> scheduler ->
 *   supervisor (stage-in, container, stage-out) -> job record with stage times and log
 *
 * State lives under one data folder: `store/` (objects), `jobs/jobs.db`, `images/`, `runtime/`,
 * `functions/` (deployed functions), `work/` (per-invocation folders), `credentials`, `function-keys`.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { FdlIssue } from "../fdl/issues.js";
import type { FunctionSpec, StorageProviderSpec } from "../fdl/spec.js";
import { checkWorkflows, type PlacedFunction } from "../fdl/workflow.js";
import { S3Provider } from "../storage/s3.js";
import { StorageError, type StorageProvider } from "../storage/types.js";
import { type InvocationResult, invoke } from "../supervisor/index.js";
import { SupervisorLog } from "../supervisor/log.js";
import type { Executor } from "../supervisor/types.js";
import { ContainerExecutor, type ContainerFunction, DEFAULT_DISK_MIB } from "./container-executor.js";
import { type EngineCredentials, loadOrCreateCredentials } from "./credentials.js";
import { openDataDir } from "./data-dir.js";
import { EmbeddedStoreProvider } from "./embedded-provider.js";
import { EnqueueBatcher } from "./enqueue-batcher.js";
import { type StartEnvironment, WarmContainerExecutor } from "./environments/executor.js";
import {
  DEFAULT_IDLE_SECONDS,
  DEFAULT_MEMORY_PERCENT,
  EnvironmentPool,
  type FunctionEnvironmentStats,
  PoolClosedError,
} from "./environments/pool.js";
import { withEventSourceOutput } from "./event-source.js";
import { type FunctionKeyPair, FunctionKeys, newKeyPair } from "./function-keys.js";
import { ImageStore } from "./images/index.js";
import type { PullEvent } from "./images/pull.js";
import {
  type Backoff,
  type DbFault,
  dbFault,
  type EnqueueInput,
  type FunctionPolicy,
  type JobContext,
  type JobHealthState,
  type JobOutcome,
  type JobRecord,
  JobStore,
  type JobWithPayload,
  logStreamName,
  Scheduler,
} from "./jobs/index.js";
import { foreignAccess, LayerOwners } from "./layer-owners.js";
import { type LimitProblem, machineLimitProblems } from "./limits.js";
import { minioEvent } from "./minio-event.js";
import { type DeployedFunction, FunctionRegistry } from "./registry.js";
import { agentBinaryPath } from "./runtime/agent-binary.js";
import { type ImageInput, Runner, rootlessMode, rootlessNote } from "./runtime/index.js";
import { type RunningStore, type StoreEvent, startStore } from "./store/index.js";
import type { SpaceReserve } from "./store/space.js";
import { EMBEDDED_PROVIDERS, functionOfArn, triggerRules } from "./triggers.js";

export interface EngineOptions {
  dataDir: string;
  /** Address of the object store (default 127.0.0.1, port 9000; 0 picks a free port). */
  s3Host?: string;
  s3Port?: number;
  /** Free space the object store's uploads must leave (default: 64 MiB, or 1% of a smaller disk). */
  storeReserve?: SpaceReserve;
  /** Origins whose pages may call the object store (scar.cfg `local.cors_origins`); none by default. */
  corsOrigins?: readonly string[];
  /** Jobs running at once (default: the number of cores). */
  concurrency?: number;
  runtime?: "auto" | "crun" | "runc";
  insecureRegistries?: string[];
  /**
   * How often the scheduler looks for due jobs when nothing wakes it (ms; the scheduler's default).
   * Enqueues wake it at once, so this only paces retries that become due.
   */
  pollMs?: number;
  /** Waits between retries of failed async jobs (the scheduler's default: 5 s, doubling, at most 5 min). */
  backoff?: Backoff;
  /** Seconds a warm execution environment waits for an invocation before it is closed (scar.cfg `local.warm_idle_seconds`; default 300). */
  warmIdleSeconds?: number;
  /**
   * Share of the machine's memory (percent) the warm environments' memory limits may add up to
   * before the least recently used idle ones are closed (scar.cfg `local.warm_memory_percent`; default 50).
   */
  warmMemoryPercent?: number;
  /**
   * Start one warm environment of a function when it is deployed and of each deployed function when
   * the engine starts, so that its first invocation is warm (scar.cfg `local.warm_prewarm`; default
   * false). Each costs its container's memory (the agent and the image's processes: ~1 MiB for a
   * shell image) until it is idle for warmIdleSeconds.
   */
  warmPrewarm?: boolean;
  log?: (message: string) => void;
}

/**
 * Settings of a deployed function that only the engine reads, kept in `spec.raw.scar` (the API's
 * `scar` object puts them there): the most jobs of the function running at once, retries of a failed
 * async job (0-10), and days to keep finished jobs and logs.
 */
export interface EngineSettings {
  concurrency?: number;
  retries?: number;
  log_retention_days?: number;
}

/** The scheduler's policy of a function: its EngineSettings, else `cloudwatch.log_retention_policy_in_days`. */
export function functionPolicy(spec: FunctionSpec): FunctionPolicy {
  const own = (spec.raw.scar ?? {}) as EngineSettings;
  const days =
    own.log_retention_days ??
    (spec.raw.cloudwatch as { log_retention_policy_in_days?: number } | undefined)
      ?.log_retention_policy_in_days;
  const concurrency = spec.concurrency ?? own.concurrency;
  const retries = spec.retries ?? own.retries;
  return {
    ...(typeof concurrency === "number" ? { concurrency } : {}),
    ...(typeof retries === "number" ? { retries } : {}),
    ...(typeof days === "number" ? { retentionDays: days } : {}),
  };
}

/** What a re-run did: a dead job is redriven (`id` is its own), a failed one is run again as a new job. */
export interface RerunResult {
  id: string;
  redriven: boolean;
}

/** A job that cannot be re-run as asked (missing, not finished, succeeded, or its function is gone). */
export class RerunError extends Error {
  constructor(
    readonly code: "not-found" | "conflict",
    message: string,
  ) {
    super(message);
    this.name = "RerunError";
  }
}

/**
 * A job could not be queued because the job database cannot take it (damaged, or its disk full or
 * failing): not the caller's fault nor a bug, so the API answers 503 with what /health says.
 */
export class JobsUnavailableError extends Error {
  constructor(
    readonly fault: DbFault,
    message: string,
  ) {
    super(message);
    this.name = "JobsUnavailableError";
  }
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly issues: FdlIssue[] = [],
    /** The FunctionSpec fields this machine cannot honour (limits.ts), for a caller to name them its way. */
    readonly limits: LimitProblem[] = [],
  ) {
    super(message);
    this.name = "DeployError";
  }
}

/** What changed in the job system (Engine.onJobChange). */
export type JobChange = { kind: "job"; job: JobRecord } | { kind: "queued"; function: string };

export class Engine {
  private readonly syncResults = new Map<string, InvocationResult>();
  /** What a waiting sync caller asked to keep of a job's output folder (OSCAR's /run answer). */
  private readonly keepOutputs = new Map<string, { maxBytes: number }>();
  private readonly providers = new Map<string, StorageProvider>();
  /** rootless with subordinate ids: the layers' owners, given before an image's first container */
  private readonly layerOwners: LayerOwners;

  private constructor(
    readonly dataDir: string,
    readonly credentials: EngineCredentials,
    readonly store: RunningStore,
    readonly jobs: JobStore,
    readonly images: ImageStore,
    readonly runner: Runner,
    readonly registry: FunctionRegistry,
    private readonly scheduler: Scheduler,
    /** Enqueues of one event-loop turn share one transaction: the store's commit hooks and invocations. */
    private readonly enqueues: EnqueueBatcher,
    private readonly log: (m: string) => void,
    /** The warm execution environments of the functions (issue 14). */
    private readonly pool: EnvironmentPool,
    /** How environments start; absent when this runner cannot start them (every job gets a fresh container). */
    private readonly startEnvironment: StartEnvironment | undefined,
    /** The most lambda jobs running at once: a function's environments without a concurrency of its own. */
    private readonly concurrency: number,
    /** EngineOptions.warmPrewarm */
    private readonly warmPrewarm: boolean,
    /** Each function's key pair for the store, limited to its buckets (function-keys.ts). */
    private readonly functionKeys: FunctionKeys,
  ) {
    this.layerOwners = new LayerOwners(images, runner, log);
  }

  /** Key pairs lent to functions run outside the engine (lendStoreKeys), with the timer that takes each back. */
  private readonly lentKeys = new Map<string, NodeJS.Timeout>();

  static async start(opts: EngineOptions): Promise<Engine> {
    const dir = opts.dataDir;
    const log = opts.log ?? (() => {});
    openDataDir(dir, log); // 0700, ours: it holds setuid programs of the images and every secret
    const { credentials } = loadOrCreateCredentials(dir);
    const jobs = JobStore.open({ dataDir: join(dir, "jobs") });
    const registry = new FunctionRegistry(dir);
    const images = new ImageStore({
      dataDir: dir,
      ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
      ...foreignAccess(rootlessMode()),
    });
    const runner = await Runner.open({
      stateDir: join(dir, "runtime"),
      runtime: opts.runtime ?? "auto",
      // the first job does not wait for its disk to be made (functions without ephemeral_storage)
      prewarmDiskBytes: DEFAULT_DISK_MIB << 20,
      // an environment's start mounts no overlay and makes no disk on its way (runner.ts)
      spareBundles: true,
      // every overlay over an image's layers (a run's, a warm environment's, a spare bundle's) keeps
      // `scar image rm|prune` away from them for as long as it is mounted
      leaseLayers: (dirs) => images.leaseLayerDirs(dirs),
    });
    let engine: Engine | undefined;
    // Jobs are created inside the store's commit: the hook runs before the upload is acknowledged, and
    // an event whose hook did not finish is delivered again at the next start. dedupeKey makes a
    // second delivery a no-op, so every acknowledged upload has exactly one job. A hook that fails
    // (the job database full or damaged) leaves the upload acknowledged and its event pending: the
    // store delivers it again every second, and at the next start, until its job is queued.
    const enqueues = new EnqueueBatcher(jobs);
    const onCommit = (events: StoreEvent[]): Promise<void> | undefined => {
      const inputs: EnqueueInput[] = [];
      for (const e of events) {
        const name = functionOfArn(e.destination.arn);
        const fn = name ? registry.get(name) : undefined;
        if (!fn || e.key.endsWith("/")) continue; // someone else's rule, a removed function, a folder marker
        inputs.push({
          function: fn.spec.name,
          trigger: { type: "object", bucket: e.bucket, key: e.key },
          // OSCAR services get MinIO's event, as on OSCAR; SCAR's (aws) functions S3's.
          payload:
            fn.spec.provider === "oscar" ? minioEvent(e.record, e.bucket, e.key) : { Records: [e.record] },
          queue: fn.spec.execution_mode === "batch" ? "batch" : "lambda",
          invocation: "async",
          dedupeKey: `store-event:${e.id}`,
        });
      }
      return inputs.length > 0 ? enqueues.add(inputs) : undefined;
    };
    const store = await startStore({
      dataDir: join(dir, "store"),
      host: opts.s3Host ?? "127.0.0.1",
      port: opts.s3Port ?? 9000,
      credentials: {
        accessKeyId: credentials.s3.accessKeyId,
        secretAccessKey: credentials.s3.secretAccessKey,
      },
      onCommit,
      log,
      ...(opts.storeReserve ? { reserve: opts.storeReserve } : {}),
      ...(opts.corsOrigins ? { corsOrigins: opts.corsOrigins } : {}),
    });
    const concurrency = opts.concurrency ?? availableParallelism();
    const scheduler = new Scheduler({
      store: jobs,
      handler: (job, ctx) => engine!.runJob(job, ctx),
      concurrency,
      policy: (name) => engine!.policy(name),
      ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onError: (e) => log(`job system: ${(e as Error).message ?? e}`),
    });
    if (runner.info.rootless) log(rootlessNote(runner.info.rootless, runner.info.rootlessLimits));
    const pool = new EnvironmentPool({
      idleMs: (opts.warmIdleSeconds ?? DEFAULT_IDLE_SECONDS) * 1000,
      memoryBudgetBytes: Math.floor((totalmem() * (opts.warmMemoryPercent ?? DEFAULT_MEMORY_PERCENT)) / 100),
      log,
    });
    engine = new Engine(
      dir,
      credentials,
      store,
      jobs,
      images,
      runner,
      registry,
      scheduler,
      enqueues,
      log,
      pool,
      environmentStarter(runner),
      concurrency,
      opts.warmPrewarm ?? false,
      new FunctionKeys(dir),
    );
    engine.grantAllFunctions();
    scheduler.start();
    if (opts.warmPrewarm) for (const fn of registry.list()) engine.prewarm(fn);
    return engine;
  }

  /** The job system's health (its database damaged or not writable): what `/health` answers. */
  health(): JobHealthState {
    return this.scheduler.health();
  }

  /** Deployed functions. */
  functions(): DeployedFunction[] {
    return this.registry.list();
  }

  /**
   * Deploys or updates a function: gets its image, creates its buckets and folders on the embedded
   * store, keeps its scripts, and points the upload triggers of its inputs at it. Refuses a function
   * that would loop with what is already deployed. Queued jobs and logs of an updated function stay.
   */
  async deploy(
    spec: FunctionSpec,
    opts: {
      storageProviders?: Record<string, StorageProviderSpec>;
      onProgress?: (e: PullEvent) => void;
    } = {},
  ): Promise<DeployedFunction> {
    const limits = machineLimitProblems(spec);
    if (limits.length > 0)
      throw new DeployError(
        `cannot deploy '${spec.name}': ${limits.map((p) => `${p.field}: ${p.message}`).join("; ")}`,
        [],
        limits,
      );
    const others = this.registry.list().filter((f) => f.spec.name !== spec.name);
    const placed: PlacedFunction[] = [...others.map((f) => f.spec), spec].map((s) => ({
      spec: s,
      ioBase: s.provider === "aws" ? ["lambda"] : [],
      loc: {
        issue: (severity, rel, message) => ({
          severity,
          file: `function '${s.name}'`,
          line: 0,
          column: 0,
          path: rel.join("."),
          message,
        }),
      },
    }));
    const problems = checkWorkflows(placed).filter((i) => i.severity === "error");
    if (problems.length > 0) {
      throw new DeployError(
        `cannot deploy '${spec.name}': ${problems.map((p) => p.message).join("; ")}`,
        problems,
      );
    }
    for (const p of [...spec.input, ...spec.output]) {
      if (EMBEDDED_PROVIDERS.has(p.storage_provider)) continue;
      const def = opts.storageProviders?.[p.storage_provider];
      if (!def)
        throw new DeployError(`storage provider '${p.storage_provider}' of '${spec.name}' is not defined`);
      if (def.type !== "s3" && def.type !== "minio") {
        throw new DeployError(
          `the local engine cannot use ${def.type} storage yet ('${p.storage_provider}' of '${spec.name}')`,
        );
      }
    }

    const image = await this.ensureImage(spec, opts.onProgress);
    for (const p of [...spec.input, ...spec.output]) {
      if (EMBEDDED_PROVIDERS.has(p.storage_provider)) await this.ensureFolder(p.bucket, p.folder);
    }
    const providers = Object.fromEntries(
      [...spec.input, ...spec.output]
        .filter((p) => !EMBEDDED_PROVIDERS.has(p.storage_provider))
        .map((p) => [p.storage_provider, opts.storageProviders![p.storage_provider]!]),
    );
    const before = this.registry.get(spec.name);
    const fn = this.registry.save({ ...spec, raw: { ...spec.raw, storage_providers: providers } }, image);
    this.grantStore(fn.spec);
    // New invocations get environments of the new revision; running ones finish in the old ones.
    this.pool.retire(fn.spec.name, fn.updatedAt);
    if (before && before.image.digest !== image.digest) this.dropUnusedSpares(before.image.digest);
    if (this.warmPrewarm) this.prewarm(fn);
    else this.prepareAhead(fn);
    await this.applyTriggers();
    this.log(`deployed '${spec.name}' (image ${image.ref}, ${image.digest.slice(0, 19)})`);
    return fn;
  }

  /** Removes a function. Its buckets, objects, jobs and logs are kept (as SCAR keeps buckets). */
  async remove(name: string): Promise<boolean> {
    const image = this.registry.get(name)?.image.digest;
    const had = this.registry.remove(name);
    const pair = this.functionKeys.remove(name);
    if (pair) this.store.users.remove(pair.accessKeyId);
    this.pool.retire(name);
    if (image) this.dropUnusedSpares(image);
    if (had) {
      await this.applyTriggers();
      this.log(`removed '${name}' (its buckets, jobs and logs are kept)`);
    }
    return had;
  }

  /**
   * Calls a function with an event (an S3 event, `{}`, a SCAR run payload, an HTTP body). `sync`
   * waits for the result like Lambda's RequestResponse; otherwise the job id comes back at once.
   * `keepOutputs` (sync only): the result also carries the files the script left in its output
   * folder, up to that many bytes (`InvocationResult.kept`), for an answer made of them.
   */
  async invoke(
    name: string,
    event: unknown,
    opts: {
      sync: boolean;
      trigger?: EnqueueInput["trigger"];
      keepOutputs?: { maxBytes: number };
      /** The job's id, chosen by the caller (a CLI that can name the job if the user detaches). */
      id?: string;
    },
  ): Promise<{ job: JobRecord; result?: InvocationResult }> {
    const fn = this.registry.get(name);
    if (!fn) throw new DeployError(`function '${name}' is not deployed`);
    // Known before the job exists, so the handler finds it however soon the job starts.
    const jobId = opts.id ?? randomUUID();
    if (opts.sync && opts.keepOutputs) this.keepOutputs.set(jobId, opts.keepOutputs);
    const id = jobId;
    try {
      // Invocations arriving together (API requests of one turn) share one fsync of the job database.
      await this.enqueueShared({
        id: jobId,
        function: name,
        trigger: opts.trigger ?? { type: "run" },
        payload: Buffer.isBuffer(event) ? new Uint8Array(event) : event,
        queue: fn.spec.execution_mode === "batch" ? "batch" : "lambda",
        invocation: opts.sync ? "sync" : "async",
      });
    } catch (err) {
      this.keepOutputs.delete(jobId);
      throw err;
    }
    if (!opts.sync) return { job: this.jobs.get(id)! };
    try {
      const job = await this.scheduler.wait(id);
      const result = this.syncResults.get(id);
      return { job, ...(result ? { result } : {}) };
    } finally {
      this.syncResults.delete(id);
      this.keepOutputs.delete(id);
    }
  }

  /**
   * Runs a finished job again: a dead one is redriven (a new attempt cycle of the same job); a failed
   * one becomes a new async job of the same function with the same trigger (plus `retry_of`) and
   * payload. RerunError for a queued, running or succeeded job, or when the function is gone.
   */
  rerun(id: string): RerunResult {
    const job = this.jobs.getWithPayload(id);
    if (!job) throw new RerunError("not-found", `job '${id}' not found`);
    if (job.status === "queued" || job.status === "running")
      throw new RerunError(
        "conflict",
        `job '${id}' is ${job.status}: only a failed or dead job can be retried`,
      );
    if (job.status === "succeeded")
      throw new RerunError("conflict", `job '${id}' succeeded: only a failed or dead job can be retried`);
    const fn = this.registry.get(job.function);
    if (!fn) throw new RerunError("not-found", `function '${job.function}' of job '${id}' is not deployed`);
    if (job.status === "dead") {
      if (!this.jobs.redrive(id)) throw new RerunError("conflict", `job '${id}' is no longer dead`);
      return { redriven: true, id };
    }
    const { id: newId } = this.enqueue({
      function: job.function,
      trigger: { ...job.trigger, retry_of: id },
      payload: job.payload,
      queue: job.queue,
      invocation: "async",
    });
    return { redriven: false, id: newId };
  }

  /** Queues a job; JobsUnavailableError, saying what /health says, when the database cannot take it. */
  private enqueue(input: EnqueueInput): { id: string } {
    try {
      return this.jobs.enqueue(input);
    } catch (err) {
      const fault = dbFault(err);
      if (!fault) throw err;
      // The store noted the fault in the job system's health before the error reached here.
      const why = this.health().message ?? `job database: ${(err as Error).message}`;
      throw new JobsUnavailableError(fault, `the job was not queued: ${why}`);
    }
  }

  /**
   * Calls `listener` when jobs change: a job started or finished (with its record), or jobs of a
   * function were queued (a new job, a retry, a redrive: the function's name only, the store does not
   * say which jobs). For live views (the dashboard's event stream); returns the unsubscribe.
   */
  onJobChange(listener: (change: JobChange) => void): () => void {
    // the scheduler's started job carries its payload, which a live view has no use for
    const started = ({ payload: _payload, ...job }: JobWithPayload) => listener({ kind: "job", job });
    const finished = (job: JobRecord) => listener({ kind: "job", job });
    const queued = (fn: string) => listener({ kind: "queued", function: fn });
    this.scheduler.on("start", started);
    this.scheduler.on("finish", finished);
    const unwatch = this.jobs.onEnqueue(queued);
    return () => {
      this.scheduler.off("start", started);
      this.scheduler.off("finish", finished);
      unwatch();
    };
  }

  /**
   * Calls `listener` with the log text of running jobs once it is written to the job store (every
   * 200 ms while they print, and at their end, before their change to a final status): for a log
   * that follows live (GET /system/jobs/<id>/log?follow=true). Returns the unsubscribe.
   */
  onJobLog(listener: (id: string, text: string) => void): () => void {
    const written = (entries: [string, string][]) => {
      for (const [id, text] of entries) listener(id, text);
    };
    this.scheduler.on("log", written);
    return () => {
      this.scheduler.off("log", written);
    };
  }

  /** Per function: its warm environments (idle, busy) and their starts and reuses since the engine started. */
  environmentStats(): Record<string, FunctionEnvironmentStats> {
    return this.pool.stats();
  }

  /** As enqueue, committed with the other enqueues of this turn (resolves once durable). */
  private async enqueueShared(input: EnqueueInput): Promise<void> {
    try {
      await this.enqueues.add([input]);
    } catch (err) {
      const fault = dbFault(err);
      if (!fault) throw err;
      const why = this.health().message ?? `job database: ${(err as Error).message}`;
      throw new JobsUnavailableError(fault, `the job was not queued: ${why}`);
    }
  }

  /**
   * A key pair for a function run outside the engine against its store (`scar emulate`), as a
   * deployed function gets one (function-keys.ts): limited to `buckets`, kept in memory only, and
   * taken back after `ttlMs` (so an emulator killed on the way leaves no key pair that works) or by
   * returnStoreKeys, whichever comes first.
   */
  lendStoreKeys(buckets: readonly string[], ttlMs: number): FunctionKeyPair {
    const pair = newKeyPair("EM");
    this.store.users.add({ ...pair, buckets: [...new Set(buckets)] });
    const timer = setTimeout(() => this.returnStoreKeys(pair.accessKeyId), ttlMs);
    timer.unref();
    this.lentKeys.set(pair.accessKeyId, timer);
    return pair;
  }

  /** Takes back a key pair lendStoreKeys gave (false: no such lent key pair; others are never touched). */
  returnStoreKeys(accessKeyId: string): boolean {
    const timer = this.lentKeys.get(accessKeyId);
    if (!timer) return false;
    clearTimeout(timer);
    this.lentKeys.delete(accessKeyId);
    this.store.users.remove(accessKeyId);
    return true;
  }

  async close(): Promise<void> {
    for (const id of [...this.lentKeys.keys()]) this.returnStoreKeys(id);
    await this.scheduler.stop();
    // no job runs any more: every environment is idle, and closes (its container killed and removed)
    await this.pool.close();
    await this.store.close();
    this.jobs.close();
    await this.runner.close();
    for (const p of this.providers.values()) (p as S3Provider).destroy?.();
  }

  /**
   * An image no deployed function uses any more: the runner's spare bundles of it go (in the
   * background), or their mounts would keep its layers from `scar image rm|prune` until the engine
   * stops. (Its warm environments close as their functions retire.)
   */
  private dropUnusedSpares(digest: string): void {
    if (this.registry.list().some((f) => f.image.digest === digest)) return;
    let layers: string[];
    try {
      layers = this.images.resolve(digest).layerDirs;
    } catch {
      // its record is gone (`scar image rm --force`): its spares stay, and keep its layers, until
      // the engine stops
      return;
    }
    void this.runner.dropSpareBundles(layers).catch(() => undefined);
  }

  /**
   * At start: every deployed function's key pair goes into the store, limited to its buckets (made
   * now for functions deployed before functions had their own); key pairs of functions no longer
   * deployed go.
   */
  private grantAllFunctions(): void {
    for (const name of this.functionKeys.names()) {
      if (!this.registry.get(name)) this.functionKeys.remove(name);
    }
    for (const fn of this.registry.list()) this.grantStore(fn.spec);
  }

  /** Gives a function its key pair in the store, reaching only its buckets on the store. */
  private grantStore(spec: FunctionSpec): void {
    const pair = this.functionKeys.ensure(spec.name);
    const buckets = [...spec.input, ...spec.output]
      .filter((p) => EMBEDDED_PROVIDERS.has(p.storage_provider))
      .map((p) => p.bucket);
    this.store.users.add({ ...pair, buckets: [...new Set(buckets)] });
  }

  private policy(name: string): FunctionPolicy {
    const fn = this.registry.get(name);
    return fn ? functionPolicy(fn.spec) : {};
  }

  /**
   * What a script with the network needs to call the embedded store with the AWS CLI or an SDK, as
   * a Lambda function finds its credentials in its environment: the function's own key pair, which
   * reaches its buckets only (function-keys.ts), never the engine's.
   */
  private storeEnv(name: string): Record<string, string> {
    const c = this.functionKeys.ensure(name);
    return {
      AWS_ENDPOINT_URL: this.store.url,
      AWS_ENDPOINT_URL_S3: this.store.url,
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_REGION: this.store.region,
      AWS_DEFAULT_REGION: this.store.region,
    };
  }

  private async runJob(job: JobWithPayload, ctx: JobContext): Promise<JobOutcome> {
    const fn = this.registry.get(job.function);
    if (!fn)
      return {
        status: "failed",
        reason: "internal-error",
        error: `function '${job.function}' is not deployed any more`,
        retry: false,
      };
    let image: ReturnType<ImageStore["resolve"]>;
    try {
      image = this.images.resolve(fn.image.digest);
      await this.layerOwners.give(image);
    } catch (err) {
      return {
        status: "failed",
        reason: "image-error",
        error: `image ${fn.image.ref}: ${(err as Error).message}`,
        retry: false,
      };
    }
    ctx.stage("image_ready");
    const release = this.images.lease(image);
    const executor = this.executor(fn, job, { config: image.config, layers: image.layerDirs });
    const decoder = new StringDecoder("utf8");
    // rootless: what does not hold for this run, one line (runtime/rootless.ts)
    const rootless = this.runner.info.rootless;
    if (rootless)
      new SupervisorLog(fn.spec.log_level, (line) => ctx.log(`${line}\n`)).warning(
        rootlessNote(rootless, this.runner.info.rootlessLimits),
      );
    try {
      const r = await invoke({
        fn: withEventSourceOutput(fn.spec, job.payload),
        event: job.payload instanceof Uint8Array ? Buffer.from(job.payload) : (job.payload ?? {}),
        requestId: job.id,
        executor,
        storage: (id) => this.provider(fn, id),
        workRoot: join(this.dataDir, "work"),
        removeWorkspace: (root) => this.runner.discardFolder(root),
        queue: job.queue,
        logStream: logStreamName(job),
        ...(fn.spec.network === "host" ? { platformEnv: this.storeEnv(fn.spec.name) } : {}),
        ...(job.invocation === "sync" && this.keepOutputs.has(job.id)
          ? { keepOutputs: this.keepOutputs.get(job.id)! }
          : {}),
        onLog: (line) => ctx.log(`${line}\n`),
        onOutput: (chunk) => ctx.log(decoder.write(chunk)),
        onStage: (s) => ctx.stage(s),
        signal: ctx.signal,
      });
      ctx.log(decoder.end());
      // SCAR's Lambda-to-Batch delegation: a lambda-batch run that times out is run again as a batch job.
      if (r.reason === "timeout" && fn.spec.execution_mode === "lambda-batch" && job.queue === "lambda") {
        const child = randomUUID();
        // What SCAR's supervisor logs and answers when it hands a job to AWS Batch.
        const message = `Job delegated to batch.\nCheck batch logs with:\n  scar log -n ${fn.spec.name} -ri ${child}\n`;
        new SupervisorLog(fn.spec.log_level, (line) => ctx.log(`${line}\n`)).info("Job delegated to batch.");
        ctx.log(message.slice(message.indexOf("\n") + 1));
        if (job.invocation === "sync") {
          const output = Buffer.from(message);
          this.syncResults.set(job.id, {
            ...r,
            output,
            response: { ...r.response, body: output.toString("base64") },
          });
        }
        return {
          status: "failed",
          reason: "timeout",
          exitCode: r.exitCode,
          outputKeys: r.outputs.map((o) => `${o.bucket}/${o.key}`),
          ...(r.environment ? { environment: r.environment } : {}),
          delegate: { id: child, queue: "batch" },
        };
      }
      if (job.invocation === "sync") this.syncResults.set(job.id, r);
      // The engine's log says which jobs failed and why; the job's own log has the details.
      if (r.reason !== "ok")
        this.log(
          `job ${job.id} of '${job.function}' failed: ${r.reason}${r.exitCode !== null && r.exitCode !== undefined ? ` (exit code ${r.exitCode})` : ""}${r.detail ? `: ${r.detail.split("\n")[0]}` : ""}`,
        );
      return {
        status: r.reason === "ok" ? "succeeded" : "failed",
        reason: r.reason,
        exitCode: r.exitCode,
        outputKeys: r.outputs.map((o) => `${o.bucket}/${o.key}`),
        ...(r.detail ? { error: r.detail } : {}),
        ...(r.environment ? { environment: r.environment } : {}),
        // A broken event, an input key that cannot be a file, or a run past its disk limit will not
        // mend itself on a retry.
        ...(r.reason === "event-error" || r.reason === "disk" || r.permanent ? { retry: false } : {}),
      };
    } finally {
      release();
    }
  }

  /**
   * Where a job runs: in a warm environment of its function (issue 14), or in a container of its own
   * when the function asks for that (`isolation: invocation`), for batch jobs (their own limits, and
   * a long job gains nothing from a warm start), or when the runner cannot start environments.
   */
  /**
   * Starts one environment of `fn` in the background, left idle for its first invocation
   * (EngineOptions.warmPrewarm); not when the function runs each invocation in its own container or
   * already has an environment. A failure is logged: the first invocation starts one and says why.
   */
  private prewarm(fn: DeployedFunction): void {
    const stats = this.pool.stats()[fn.spec.name];
    if (stats && stats.idle + stats.busy > 0) return;
    const warm = this.warmExecutorOf(fn);
    if (!warm) return;
    const { image, executor } = warm;
    const release = this.images.lease(image);
    void this.layerOwners
      .give(image)
      .then(() => executor.prewarm())
      .catch((e: unknown) => {
        if (!(e instanceof PoolClosedError))
          this.log(`could not prewarm an environment of '${fn.spec.name}': ${(e as Error).message}`);
      })
      .finally(release);
  }

  /**
   * Has the runner prepare the bundle of `fn`'s first environment now (its disk, the overlay over its
   * image, the FIFOs), so that the first invocation after a deploy starts only the container; not
   * when it runs each invocation in its own container. Nothing starts: an idle environment would
   * hold the function's memory (that is `warmPrewarm`).
   */
  private prepareAhead(fn: DeployedFunction): void {
    const warm = this.warmExecutorOf(fn);
    if (warm) this.runner.prepareEnvironmentAhead(warm.executor.environmentRequest());
  }

  /**
   * `fn`'s image and the executor of its warm environments; undefined when the function runs each
   * invocation in its own container, or its image cannot be found (the first invocation says why).
   */
  private warmExecutorOf(
    fn: DeployedFunction,
  ): { image: ReturnType<ImageStore["resolve"]>; executor: WarmContainerExecutor } | undefined {
    let image: ReturnType<ImageStore["resolve"]>;
    try {
      image = this.images.resolve(fn.image.digest);
    } catch {
      return undefined;
    }
    const executor = this.executor(
      fn,
      { queue: "lambda" },
      { config: image.config, layers: image.layerDirs },
    );
    return executor instanceof WarmContainerExecutor ? { image, executor } : undefined;
  }

  private executor(fn: DeployedFunction, job: Pick<JobWithPayload, "queue">, image: ImageInput): Executor {
    const batch = job.queue === "batch" && fn.spec.batch;
    const limits: ContainerFunction = {
      image,
      memoryMiB: batch ? fn.spec.batch!.memory : fn.spec.memory,
      ...(batch ? { cpus: fn.spec.batch!.vcpus } : fn.spec.cpu ? { cpus: fn.spec.cpu } : {}),
      network: fn.spec.network ?? "none",
      ...(fn.spec.seccomp ? { seccomp: fn.spec.seccomp } : {}),
      ...(fn.spec.ephemeral_storage !== undefined ? { diskMiB: fn.spec.ephemeral_storage } : {}),
    };
    if (job.queue === "batch" || fn.spec.isolation === "invocation" || !this.startEnvironment)
      return new ContainerExecutor(this.runner, limits);
    return new WarmContainerExecutor(this.pool, this.startEnvironment, {
      ...limits,
      key: { function: fn.spec.name, revision: fn.updatedAt },
      maxEnvironments: functionPolicy(fn.spec).concurrency ?? this.concurrency,
    });
  }

  private provider(fn: DeployedFunction, id: string): StorageProvider {
    if (EMBEDDED_PROVIDERS.has(id)) {
      let p = this.providers.get(id);
      if (!p) {
        p = new EmbeddedStoreProvider(id, this.store.backend);
        this.providers.set(id, p);
      }
      return p;
    }
    const def = (fn.spec.raw.storage_providers as Record<string, StorageProviderSpec> | undefined)?.[id];
    if (!def) throw new StorageError(`storage provider '${id}' is not defined for '${fn.spec.name}'`, id);
    const key = `${fn.spec.name}:${id}`;
    let p = this.providers.get(key);
    if (!p) {
      const s = def.settings as {
        endpoint?: string;
        region?: string;
        access_key?: string;
        secret_key?: string;
      };
      p = new S3Provider(id, {
        ...(s.endpoint ? { endpoint: s.endpoint } : {}),
        ...(s.region ? { region: s.region } : {}),
        ...(s.access_key ? { accessKeyId: s.access_key } : {}),
        ...(s.secret_key ? { secretAccessKey: s.secret_key } : {}),
      });
      this.providers.set(key, p);
    }
    return p;
  }

  private async ensureImage(
    spec: FunctionSpec,
    onProgress?: (e: PullEvent) => void,
  ): Promise<DeployedFunction["image"]> {
    try {
      if (spec.image_file) {
        const tag = spec.image ?? `scar-local/${spec.name}:latest`;
        const res = await this.images.import(spec.image_file, { tag });
        return { ref: tag, digest: res.images[0]!.digest };
      }
      const img = await this.images.ensure(spec.image!, onProgress ? { onProgress } : {});
      return { ref: spec.image!, digest: img.digest };
    } catch (err) {
      throw new DeployError(
        `cannot get the image of '${spec.name}' (${spec.image_file ?? spec.image}): ${(err as Error).message}`,
      );
    }
  }

  /** Bucket and folder marker (`folder/`, as SCAR creates them), if missing. */
  private async ensureFolder(bucket: string, folder: string): Promise<void> {
    const backend = this.store.backend;
    if (!backend.buckets.has(bucket)) await backend.createBucket(bucket);
    const key = `${folder}/`;
    if (folder && !backend.bucket(bucket).objects.has(key)) {
      await new EmbeddedStoreProvider("s3.default", backend).putFolderMarker(bucket, key);
    }
  }

  /** Makes every bucket's engine-owned notification rules match the deployed functions. */
  private async applyTriggers(): Promise<void> {
    const wanted = triggerRules(this.registry.list().map((f) => f.spec));
    const backend = this.store.backend;
    for (const b of backend.listBuckets()) {
      const current = b.notification;
      const theirs = (current?.rules ?? []).filter((r) => functionOfArn(r.arn) === undefined);
      const ours = wanted.get(b.name) ?? [];
      const next = [...theirs, ...ours];
      const same = JSON.stringify(next) === JSON.stringify(current?.rules ?? []);
      if (!same)
        await backend.setNotification(
          b.name,
          next.length > 0 || current ? { rules: next, eventBridge: current?.eventBridge ?? false } : null,
        );
    }
  }
}

/**
 * How this runner starts warm environments, if it can: not without the in-container agent's binary
 * (a machine that built scar without gcc or a static libc), then every job gets a fresh container.
 */
function environmentStarter(runner: Runner): StartEnvironment | undefined {
  return agentBinaryPath() ? (req) => runner.startEnvironment(req) : undefined;
}
