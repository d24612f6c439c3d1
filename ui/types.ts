/** The API's JSON, as much of it as the dashboard reads (src/engine/api/routes.ts documents it all). */
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "dead";
export const JOB_STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "dead"];

export const STAGES = [
  "queued",
  "image_ready",
  "stage_in",
  "container_start",
  "script_end",
  "stage_out",
  "done",
] as const;
export type Stage = (typeof STAGES)[number];

export interface Job {
  id: string;
  function: string;
  queue: string;
  invocation: "sync" | "async";
  trigger: { type: string; bucket?: string; key?: string; path?: string; [k: string]: unknown };
  status: JobStatus;
  reason: string | null;
  error: string | null;
  exitCode: number | null;
  attempts: number | Attempt[];
  attemptCount?: number;
  /** 1 for the first attempt cycle; each redrive starts a new one. */
  cycle?: number;
  startedAt: number | null;
  stages: Record<Stage, number | null>;
  environment: { id: string; start: "cold" | "warm"; startMs: number } | null;
  outputKeys: string[];
}

export interface Attempt {
  n: number;
  cycle: number;
  startedAt: number;
  status?: string;
  reason?: string | null;
  error?: string | null;
  stages: Partial<Record<Stage, number | null>>;
  environment: { start: "cold" | "warm"; startMs: number } | null;
}

export interface StoragePath {
  storage_provider: string;
  path: string;
}

export interface Service {
  name: string;
  image: string;
  memory: string;
  cpu: string;
  token?: string;
  script?: string;
  environment?: { variables?: Record<string, string> };
  input: StoragePath[];
  output: StoragePath[];
  scar?: { timeout?: number | null; execution_mode?: string; provider?: string };
}

export type Counts = Record<JobStatus, number> & { starts?: { cold: number; warm: number } };

export interface FdlIssue {
  severity: "error" | "warning";
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
  text: string;
}
