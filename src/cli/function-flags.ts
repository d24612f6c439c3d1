/**
 * SCAR's "function definition" flags (`scar init`, `scar update`) and how they become the command-line
 * layer of the FDL merge (CLI > FDL > scar.cfg). Unlike SCAR 4.3, every flag takes effect: -em, -sv,
 * -tt and -pf land where the function reads them, and `-e K=V` keeps values containing '='.
 */
import type { Command } from "commander";
import { CliError } from "./errors.js";

export interface FunctionDefFlags {
  name?: string;
  description?: string;
  environment: string[];
  lambdaEnvironment: string[];
  memory?: string;
  timeout?: string;
  timeoutThreshold?: string;
  logLevel?: string;
  layers: string[];
  inputBucket?: string;
  outputBucket?: string;
  eventSource?: string;
  executionMode?: string;
  iamRole?: string;
  supervisorVersion?: string;
  runtime?: string;
  batchMemory?: string;
  batchVcpus?: string;
  enableGpu?: boolean;
  initScript?: string;
  image?: string;
  imageFile?: string;
  preheat?: boolean;
  extraPayload?: string;
  deploymentBucket?: string;
  apiGatewayName?: string;
  profile?: string;
}

const collect = (v: string, list: string[]) => [...list, v];

export function addFunctionDefOptions(cmd: Command): Command {
  return cmd
    .option("-d, --description <text>", "function description")
    .option(
      "-e, --environment <VAR=value>",
      "variable of the container (repeatable)",
      collect,
      [] as string[],
    )
    .option(
      "--le, --lambda-environment <VAR=value>",
      "variable of the function's platform (repeatable)",
      collect,
      [] as string[],
    )
    .option("-m, --memory <MB>", "memory of the function in MB")
    .option("-t, --timeout <seconds>", "maximum run time of one invocation")
    .option("--tt, --timeout-threshold <seconds>", "seconds of the timeout kept for uploading outputs")
    .option("--ll, --log-level <level>", "supervisor log level: CRITICAL, ERROR, WARNING, INFO, DEBUG")
    .option("-l, --layers <arn>", "Lambda layer (aws target; repeatable)", collect, [] as string[])
    .option("--ib, --input-bucket <bucket[/folder]>", "uploads here run the function")
    .option("--ob, --output-bucket <bucket[/folder]>", "where the function's output files go")
    .option(
      "--es, --event-source <bucket>",
      "SCAR 1.x: input BUCKET/input, output BUCKET/output (both created)",
    )
    .option("--em, --execution-mode <mode>", "lambda, lambda-batch or batch")
    .option("-r, --iam-role <arn>", "IAM role of the function (aws target)")
    .option("--sv, --supervisor-version <tag>", "faas-supervisor version (aws target)")
    .option("--rt, --runtime <runtime>", "Lambda runtime, e.g. image (aws target)")
    .option("--bm, --batch-memory <MB>", "memory of batch jobs")
    .option("--bc, --batch-vcpus <n>", "vCPUs of batch jobs")
    .option("-g, --enable-gpu", "batch jobs get a GPU (aws target)");
}

/** `VAR=value` -> [VAR, value], split at the first '=' only. */
export function parseAssignment(text: string, flag: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new CliError(`${flag} expects VAR=value, not '${text}'`, 2);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

export function assignments(list: string[], flag: string): Record<string, string> {
  return Object.fromEntries(list.map((a) => parseAssignment(a, flag)));
}

/** A number when the text is one; otherwise the text, so the FDL check names the bad value. */
function num(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return v.trim() !== "" && Number.isFinite(n) ? n : v;
}

function storagePath(path: string) {
  return [{ storage_provider: "s3", path: path.replace(/^s3:\/\//, "").replace(/\/+$/, "") }];
}

/**
 * The flags as an `functions.aws[]` entry (`{lambda, iam, batch, api_gateway}`), only the keys given.
 */
export function awsOverrides(f: FunctionDefFlags): Record<string, unknown> {
  const lambda: Record<string, unknown> = {};
  const container: Record<string, unknown> = {};
  const set = (o: Record<string, unknown>, k: string, v: unknown) => {
    if (v !== undefined) o[k] = v;
  };
  set(lambda, "name", f.name);
  set(lambda, "description", f.description);
  set(lambda, "memory", num(f.memory));
  set(lambda, "timeout", num(f.timeout));
  set(lambda, "log_level", f.logLevel?.toUpperCase());
  if (f.layers.length > 0) lambda.layers = f.layers;
  set(lambda, "init_script", f.initScript);
  set(lambda, "preheat", f.preheat);
  set(lambda, "extra_payload", f.extraPayload);
  set(lambda, "execution_mode", f.executionMode);
  set(lambda, "runtime", f.runtime);
  set(lambda, "boto_profile", f.profile);
  if (f.deploymentBucket) lambda.deployment = { bucket: f.deploymentBucket };
  if (f.supervisorVersion) lambda.supervisor = { version: f.supervisorVersion };
  if (f.lambdaEnvironment.length > 0)
    lambda.environment = { Variables: assignments(f.lambdaEnvironment, "-le") };
  set(container, "image", f.image);
  set(container, "image_file", f.imageFile);
  set(container, "timeout_threshold", num(f.timeoutThreshold));
  if (f.environment.length > 0) container.environment = { Variables: assignments(f.environment, "-e") };
  if (Object.keys(container).length > 0) lambda.container = container;
  if (f.eventSource) {
    const b = f.eventSource.replace(/^s3:\/\//, "").replace(/\/+$/, "");
    lambda.input = storagePath(`${b}/input`);
    lambda.output = storagePath(`${b}/output`);
  }
  if (f.inputBucket) lambda.input = storagePath(f.inputBucket);
  if (f.outputBucket) lambda.output = storagePath(f.outputBucket);
  const entry: Record<string, unknown> = { lambda };
  if (f.iamRole) entry.iam = { role: f.iamRole };
  const batch: Record<string, unknown> = {};
  set(batch, "memory", num(f.batchMemory));
  set(batch, "vcpus", num(f.batchVcpus));
  set(batch, "enable_gpu", f.enableGpu);
  if (Object.keys(batch).length > 0) entry.batch = batch;
  if (f.apiGatewayName) entry.api_gateway = { name: f.apiGatewayName };
  return entry;
}

/** SCAR 1.x's name for a function made from an image: `scar-` + the image's parts joined by '-'. */
export function nameFromImage(image: string): string {
  const parts = image
    .toLowerCase()
    .split(/[/:.@]/)
    .map((p) => p.replace(/[^a-z0-9-]/g, "-"))
    .filter((p) => p !== "");
  return `scar-${parts.join("-")}`.replace(/-+/g, "-").slice(0, 64).replace(/-$/, "");
}
