/**
 * FunctionSpec: the one normalized shape of a function that every target (local engine, AWS,
 * OSCAR) consumes, whatever FDL shape it was written in (SCAR v4 `functions.aws[]`, OSCAR
 * `functions.oscar[]`, or the older SCAR v2/v3 map keyed by function name).
 */

export type Provider = "aws" | "oscar";
export type ExecutionMode = "lambda" | "lambda-batch" | "batch";
export const EXECUTION_MODES: readonly ExecutionMode[] = ["lambda", "lambda-batch", "batch"];
export type Isolation = "environment" | "invocation";
export const ISOLATIONS: readonly Isolation[] = ["environment", "invocation"];
export const LOG_LEVELS = ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] as const;

/** A location in a storage provider: `path` is `bucket[/folder...]` as written, without slashes at the ends. */
export interface StoragePath {
  /** Canonical `<type>.<id>`, e.g. `s3.default`, `minio.default`, `s3.my_s3`. */
  storage_provider: string;
  path: string;
  bucket: string;
  /** The folder under the bucket, `""` for the bucket itself. */
  folder: string;
}

export interface OutputPath extends StoragePath {
  /** Only files whose names end with one of these are uploaded here (empty: all files). */
  suffix: string[];
  /** Only files whose names start with one of these are uploaded here (empty: all files). */
  prefix: string[];
}

export interface FunctionSpec {
  name: string;
  provider: Provider;
  /** The OSCAR cluster id (`functions.oscar[].<cluster_id>`); absent for aws functions. */
  cluster?: string;
  image?: string;
  /** Absolute path of a `docker save` tarball (SCAR `container.image_file`). */
  image_file?: string;
  /** Absolute path of the script run at every invocation (SCAR `init_script`, OSCAR `script`). */
  script?: string;
  /** Absolute path of the default script for `scar run` (SCAR `run_script`). */
  run_script?: string;
  /** Default container arguments for `scar run` (SCAR `c_args`). */
  c_args?: string[];
  description?: string;
  /** Memory limit in MiB (Lambda's "MB"). */
  memory: number;
  /** CPU limit in cores (OSCAR `cpu`); absent when the platform derives it (Lambda: from memory). */
  cpu?: number;
  /** Seconds; `null` when the platform sets no limit (OSCAR services). */
  timeout: number | null;
  /** Seconds of `timeout` kept for uploading outputs: the script is stopped at timeout - threshold. */
  timeout_threshold: number;
  execution_mode: ExecutionMode;
  log_level: (typeof LOG_LEVELS)[number];
  /** Variables the user's container sees (SCAR `container.environment.Variables`, OSCAR `environment.variables`). */
  environment: Record<string, string>;
  /** OSCAR `environment.secrets`: also container variables, never printed. */
  secrets: Record<string, string>;
  input: StoragePath[];
  output: OutputPath[];
  /** Limits of batch jobs (`execution_mode` batch / lambda-batch). */
  batch?: { vcpus: number; memory: number; enable_gpu: boolean };
  /** Name of the HTTP endpoint (SCAR `api_gateway.name`), when the function has one. */
  api_gateway?: string;
  /** Default invocation type of `scar run`/`invoke`. */
  asynchronous: boolean;
  /**
   * scar's engine only. "host": the container shares the host's network and gets the object store's
   * endpoint and keys (AWS_ENDPOINT_URL, ...); "none" (default): loopback only.
   */
  network?: "none" | "host";
  /** scar's engine only: "unconfined" runs the container without scar's seccomp profile. */
  seccomp?: "default" | "unconfined";
  /**
   * scar's engine only. "environment" (default): invocations run one at a time in warm containers the
   * function reuses (as Lambda's execution environments); "invocation": a fresh container for every
   * invocation, for inputs that must never share a container.
   */
  isolation?: Isolation;
  /**
   * MiB one invocation may write to its root file system and output folder together (Lambda's
   * `ephemeral_storage`); absent: the engine's default (512).
   */
  ephemeral_storage?: number;
  /** scar's engine only: the most jobs of this function running at once. */
  concurrency?: number;
  /** scar's engine only: retries of a failed asynchronous invocation before it is dead-lettered. */
  retries?: number;
  /**
   * Everything the file said about this function after merging with scar.cfg, in the provider's
   * own shape (`{lambda, iam, batch, ...}` for aws, the service map for oscar), so a target can
   * read keys this type does not model (vpc, file_system, expose, ...).
   */
  raw: Record<string, unknown>;
  /** Where the function was defined. */
  source: { file: string; path: string; line: number; column: number };
}

export type StorageProviderType = "s3" | "minio" | "onedata" | "webdav" | "rucio";
export const STORAGE_PROVIDER_TYPES: readonly StorageProviderType[] = [
  "s3",
  "minio",
  "onedata",
  "webdav",
  "rucio",
];

export interface StorageProviderSpec {
  type: StorageProviderType;
  id: string;
  /** The provider's settings as written (endpoint, access_key, ...). */
  settings: Record<string, unknown>;
  /** True for the providers that exist without being defined: `s3.default` and `minio.default`. */
  builtin: boolean;
}

export interface FdlResult {
  file: string;
  functions: FunctionSpec[];
  /** By canonical id, including the built-in `s3.default` and `minio.default`. */
  storage_providers: Record<string, StorageProviderSpec>;
  /** OSCAR's top-level `clusters` (endpoint, auth_user, auth_password, ssl_verify by cluster id), as written. */
  clusters?: Record<string, unknown>;
  warnings: import("./issues.js").FdlIssue[];
}
