/**
 * Target: where the CLI's commands act. `local` (the embedded engine) and `oscar:<cluster>` are the
 * same code over OSCAR's REST API (src/targets/oscar.ts); `aws` implements it with the AWS SDK
 * (src/targets/aws/).
 */

import type { PullEvent } from "../engine/images/pull.js";
import type { FunctionSpec, StorageProviderSpec } from "../fdl/spec.js";
import type { BucketStore } from "./buckets.js";

/** A deployed function as the CLI lists it. */
export interface FunctionInfo {
  name: string;
  image: string;
  /** MiB. */
  memory: number | null;
  /** Seconds; null when the platform sets no limit. */
  timeout: number | null;
  cpu: string | null;
  /** Where `scar invoke` reaches it, if it has an HTTP endpoint. */
  apiUrl: string | null;
  supervisorVersion: string | null;
  input: { storage_provider: string; path: string }[];
  output: { storage_provider: string; path: string }[];
  /** Jobs by status, when the target can count them. */
  jobs?: Partial<Record<JobStatusName, number>>;
  /** Jobs whose last attempt started a new execution environment (cold) or reused a warm one, when the target counts them. */
  starts?: { cold: number; warm: number };
  /** The target's own description of the function (OSCAR service JSON). */
  raw: Record<string, unknown>;
}

export type JobStatusName = "queued" | "running" | "succeeded" | "failed" | "dead";

/** A job (one invocation) as the CLI shows it. */
export interface JobInfo {
  id: string;
  function: string;
  status: string;
  created: string | null;
  started: string | null;
  finished: string | null;
  logGroup: string;
  logStream: string;
  /** The full record, when the target keeps one (the local engine does). */
  record?: Record<string, unknown>;
}

export interface RunResult {
  requestId: string;
  logGroup: string;
  logStream: string;
  /** What the function answered (the script's output), decoded. */
  output: Buffer;
  /** False when the job failed (script error, timeout, ...). */
  ok: boolean;
  /** The job's status and reason when the target says. */
  status?: string;
  httpStatus: number;
  /** The end of the invocation's log, when the platform returns it with the answer (Lambda's LogType Tail). */
  logTail?: string;
}

export interface HttpInvokeRequest {
  method: "GET" | "POST";
  body?: Buffer | string;
  contentType?: string;
  query?: Record<string, string | string[]>;
  asynchronous: boolean;
}

export interface DeployOptions {
  storageProviders: Record<string, StorageProviderSpec>;
  /** The FDL's OSCAR `clusters`, sent with each OSCAR service. */
  clusters?: Record<string, unknown>;
  /** Replace an existing function instead of refusing. */
  update: boolean;
  /** Image pull progress, when the target reports it (the engine's pull events). */
  onPull?: (e: PullEvent) => void;
  /** The spec came from prepare(): its image is where the target keeps images already. */
  prepared?: boolean;
}

export interface Target {
  /** `local`, `oscar:<cluster>` or `aws`. */
  readonly name: string;
  /** One line saying where this is (URL, data folder). */
  describe(): string;
  list(): Promise<FunctionInfo[]>;
  get(name: string): Promise<FunctionInfo | undefined>;
  deploy(spec: FunctionSpec, opts: DeployOptions): Promise<FunctionInfo>;
  /** False when there was no such function. */
  remove(name: string): Promise<boolean>;
  /** A direct invocation with an event (SCAR's `scar run`): sync waits for the answer. */
  run(name: string, event: unknown): Promise<RunResult>;
  /** An asynchronous invocation; returns the request id. */
  submit(name: string, event: unknown): Promise<string>;
  /** An HTTP call of the function's endpoint (SCAR's `scar invoke`). */
  invokeHttp(name: string, req: HttpInvokeRequest): Promise<RunResult>;
  jobs(name: string): Promise<JobInfo[]>;
  job(id: string, fn?: string): Promise<JobInfo | undefined>;
  /** The log of one job, with START/END/REPORT lines. */
  jobLog(name: string, id: string): Promise<string>;
  /** The object store of this target (buckets of `scar put/get/ls -b`). */
  buckets(): Promise<BucketStore>;
  close(): Promise<void>;
}
