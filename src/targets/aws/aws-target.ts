/**
 * The `aws` target: SCAR's commands on Lambda, S3, CloudWatch Logs, API Gateway, Batch and ECR
 * (reference/scar-behaviour.md §2.7, §5). Each service's calls live in their own module; this one
 * puts them in SCAR's order and keeps init all-or-nothing: every step that made something pushes
 * its undo, and a failure runs them backwards. Buckets and objects are never deleted.
 */

import { DescribeJobsCommand } from "@aws-sdk/client-batch";
import { GetUserCommand } from "@aws-sdk/client-iam";
import { type FunctionConfiguration, InvokeCommand, type InvokeCommandOutput } from "@aws-sdk/client-lambda";
import type { FunctionSpec } from "../../fdl/spec.js";
import type { FunctionImagePublisher } from "../../lambda/image/types.js";
import type { BucketStore } from "../buckets.js";
import { TargetError } from "../target-error.js";
import type { DeployOptions, FunctionInfo, HttpInvokeRequest, JobInfo, RunResult, Target } from "../types.js";
import { apiSourceArn, apiUrl, createApi, deleteApi, wireApi } from "./api-gateway.js";
import { batchPlan, ensureBatch, removeBatch } from "./batch-env.js";
import { checkFunction, checkRegion, parseRole, roleOf } from "./checks.js";
import { type AwsClients, createClients } from "./clients.js";
import { deleteRepository, repositoryOf } from "./ecr-repo.js";
import { awsError, errorName } from "./errors.js";
import {
  checkedEnvironment,
  deleteImageOf,
  functionConfig,
  functionEnvironment,
  storedConfig,
} from "./function-env.js";
import {
  allowInvoke,
  CREATED_BY,
  createFunction,
  type DeployedFunction,
  deleteFunction,
  findFunction,
  listScarFunctions,
  madeByScar,
  statementId,
  updateCode,
  updateConfiguration,
  waitActive,
} from "./lambda-function.js";
import {
  checkRetention,
  deleteLogGroup,
  ensureLogGroup,
  logGroupName,
  RequestLines,
  readLogEvents,
} from "./log-group.js";
import { addTrigger, bucketState, ensureBucket, ensureFolder, removeTriggers } from "./s3-triggers.js";
import { type Pace, REAL_PACE } from "./wait.js";

export interface AwsTargetOptions {
  /** The region of commands that name no function definition: scar.cfg's aws.lambda.region, else the SDK's. */
  region: string;
  /** Builds and pushes the function image; loaded only by `init`. */
  publisher: () => Promise<FunctionImagePublisher>;
  /** SCAR's progress messages ("Log group ... successfully created."). */
  say?: (line: string) => void;
  pace?: Pace;
  env?: NodeJS.ProcessEnv;
  /** Makes the clients of a region (tests keep the default: the SDK clients, mocked). */
  clients?: (region: string) => AwsClients;
}

interface Undo {
  what: string;
  run: () => Promise<unknown>;
}

export class AwsTarget implements Target {
  readonly name = "aws";
  private readonly byRegion = new Map<string, AwsClients>();
  private readonly pace: Pace;
  private readonly env: NodeJS.ProcessEnv;
  private owner: string | undefined | null = null;
  private store?: BucketStore;

  constructor(private readonly opts: AwsTargetOptions) {
    this.pace = opts.pace ?? REAL_PACE;
    this.env = opts.env ?? process.env;
    checkRegion(opts.region, "aws.lambda.region");
  }

  describe(): string {
    const ep = this.env.AWS_ENDPOINT_URL;
    return `AWS region ${this.opts.region}${ep ? ` through ${ep}` : ""}`;
  }

  async isScarEngine(): Promise<boolean> {
    return false;
  }

  private clients(region = this.opts.region): AwsClients {
    let c = this.byRegion.get(region);
    if (!c) {
      c = (this.opts.clients ?? ((r) => createClients(r, this.env)))(region);
      this.byRegion.set(region, c);
    }
    return c;
  }

  private say(line: string): void {
    this.opts.say?.(line);
  }

  /** The function's region: its FDL's `lambda.region` (merged over scar.cfg), else the target's. */
  regionOf(spec: FunctionSpec): string {
    const r = (spec.raw.lambda as { region?: unknown } | undefined)?.region;
    return typeof r === "string" && r
      ? checkRegion(r, `function '${spec.name}': lambda.region`)
      : this.opts.region;
  }

  /** Any function of that name; one that scar did not create is an error (scar leaves it alone). */
  private async find(name: string, region?: string): Promise<DeployedFunction | undefined> {
    const c = this.clients(region);
    let fn: DeployedFunction | undefined;
    try {
      fn = await findFunction(c.lambda, name);
    } catch (err) {
      throw awsError(err, `looking for function '${name}'`, c.region);
    }
    if (fn && !madeByScar(fn))
      throw new TargetError(
        `function '${name}' exists in ${c.region} but scar did not create it (no tag ${CREATED_BY.key}=${CREATED_BY.value}); scar leaves it alone`,
        "give scar's function another name (lambda.name or -n)",
      );
    return fn;
  }

  async get(name: string): Promise<FunctionInfo | undefined> {
    const fn = await this.find(name);
    return fn ? this.info(fn.config, fn.imageUri) : undefined;
  }

  async list(): Promise<FunctionInfo[]> {
    const c = this.clients();
    try {
      return (await listScarFunctions(c.lambda)).map((f) => this.info(f));
    } catch (err) {
      throw awsError(err, "listing functions", c.region);
    }
  }

  private info(f: FunctionConfiguration, imageUri?: string): FunctionInfo {
    const vars = f.Environment?.Variables ?? {};
    const cfg = storedConfig(vars) ?? {};
    const region = f.FunctionArn?.split(":")[3] ?? this.opts.region;
    const paths = (key: "input" | "output") =>
      ((cfg[key] as { storage_provider?: string; path?: string }[] | undefined) ?? []).map((p) => ({
        storage_provider: p.storage_provider ?? "s3",
        path: p.path ?? "",
      }));
    return {
      name: f.FunctionName ?? "",
      image: vars.IMAGE_ID ?? imageUri ?? "-",
      memory: f.MemorySize ?? null,
      timeout: f.Timeout ?? null,
      cpu: null,
      apiUrl: vars.API_GATEWAY_ID ? apiUrl(vars.API_GATEWAY_ID, region, this.env) : null,
      // the function image carries scar's runtime, whose version is scar's
      supervisorVersion: vars.SCAR_RUNTIME_VERSION ?? null,
      input: paths("input"),
      output: paths("output"),
      raw: f as Record<string, unknown>,
    };
  }

  /** The tag `owner`: the deploying IAM user, as SCAR tags (absent for roles and SSO sessions). */
  private async ownerTag(c: AwsClients): Promise<Record<string, string>> {
    if (this.owner === null) {
      try {
        const u = await c.iam.send(new GetUserCommand({}));
        this.owner = u.User?.UserName ?? u.User?.UserId;
      } catch (err) {
        // SCAR reads the name out of the AccessDenied message (".../user/<name> is not authorized")
        this.owner = /user\/(\S+)/.exec((err as Error).message ?? "")?.[1];
      }
    }
    return this.owner ? { owner: this.owner } : {};
  }

  /**
   * Everything checked before anything is made: the values against AWS's rules, the role, the
   * region, the name not taken by a function scar did not create, the buckets the account's.
   */
  async prepare(spec: FunctionSpec): Promise<FunctionSpec> {
    const { role, region } = this.check(spec);
    await this.find(spec.name, region);
    const c = this.clients(region);
    for (const p of [...spec.input, ...spec.output]) {
      if (!p.storage_provider.startsWith("s3")) continue;
      try {
        await bucketState(c.s3, p.bucket, role.account);
      } catch (err) {
        throw awsError(err, `checking bucket '${p.bucket}'`, region);
      }
    }
    return spec;
  }

  /** The checks that need no call to AWS: values, role, region, log retention, Batch settings. */
  check(spec: FunctionSpec): { role: ReturnType<typeof roleOf>; region: string } {
    checkFunction(spec);
    const role = roleOf(spec);
    const region = this.regionOf(spec);
    checkRetention(
      (spec.raw.cloudwatch as { log_retention_policy_in_days?: unknown } | undefined)
        ?.log_retention_policy_in_days,
      spec.name,
    );
    // Batch's settings too (subnets, security groups): checked now, used once the image exists
    if (spec.execution_mode !== "lambda")
      batchPlan(spec, { imageUri: "", account: role.account, functionConfig: {} });
    return { role, region };
  }

  async deploy(spec: FunctionSpec, opts: DeployOptions): Promise<FunctionInfo> {
    if (!opts.prepared) await this.prepare(spec);
    if (opts.update) return this.update(spec, opts);
    const role = roleOf(spec);
    const region = this.regionOf(spec);
    const c = this.clients(region);
    const undo: Undo[] = [];
    let doing = "publishing the function image";
    try {
      // 1. The function image (built from the user's image and pushed to ECR).
      const publisher = await this.opts.publisher();
      const image = await publisher.publish(spec, opts.storageProviders, {
        region,
        onProgress: (l) => this.say(l),
      });
      const repo = repositoryOf(image.imageUri);
      if (repo && deleteImageOf(spec))
        undo.push({ what: `ECR repository '${repo}'`, run: () => deleteRepository(c.ecr, repo) });

      // 2. The API before the function: its id goes into the function's environment (SCAR's order).
      let apiId: string | undefined;
      if (spec.api_gateway) {
        doing = `creating API '${spec.api_gateway}'`;
        apiId = await createApi(c.apigateway, spec.api_gateway, spec.name);
        const id = apiId;
        undo.push({ what: `API '${id}'`, run: () => deleteApi(c.apigateway, id) });
        this.say(`API Gateway endpoint: ${apiUrl(apiId, region, this.env)}`);
      }

      // 3. The function, then wait until it is Active.
      doing = `creating function '${spec.name}'`;
      const tags = { [CREATED_BY.key]: CREATED_BY.value, ...(await this.ownerTag(c)) };
      const created = await createFunction(
        c.lambda,
        {
          FunctionName: spec.name,
          PackageType: "Image",
          Code: { ImageUri: image.imageUri },
          ...settingsOf(spec, opts, role.arn, apiId),
          Architectures: architecturesOf(spec),
          Tags: tags,
        },
        this.pace,
      );
      undo.push({ what: `function '${spec.name}'`, run: () => deleteFunction(c.lambda, spec.name) });
      const arn = created.FunctionArn!;
      this.say("Wait function to be 'Active'");
      doing = `waiting for function '${spec.name}'`;
      const active = await waitActive(c.lambda, spec.name, this.pace);
      this.say("Function 'Active'");

      // 4. The log group, with its retention.
      doing = `creating log group '${logGroupName(spec.name)}'`;
      const retention = checkRetention(
        (spec.raw.cloudwatch as { log_retention_policy_in_days?: unknown } | undefined)
          ?.log_retention_policy_in_days,
        spec.name,
      );
      if (await ensureLogGroup(c.logs, spec.name, tags, retention)) {
        undo.push({
          what: `log group '${logGroupName(spec.name)}'`,
          run: () => deleteLogGroup(c.logs, spec.name),
        });
        this.say(`Log group '${logGroupName(spec.name)}' successfully created.`);
      } else this.say(`Using existent log group '${logGroupName(spec.name)}'.`);

      // 5. Input buckets: the bucket and folder, the permission for S3, then the trigger.
      for (const p of spec.input) {
        if (!p.storage_provider.startsWith("s3")) continue;
        doing = `preparing input bucket '${p.bucket}'`;
        await this.bucketAndFolder(c, p.bucket, p.folder, role.account);
        await allowInvoke(
          c.lambda,
          spec.name,
          {
            statementId: statementId("s3", p.bucket),
            principal: "s3.amazonaws.com",
            sourceArn: `arn:${role.partition}:s3:::${p.bucket}`,
            sourceAccount: role.account,
          },
          this.pace,
        );
        doing = `adding the trigger of bucket '${p.bucket}'`;
        const bucket = p.bucket;
        // before the write: a write that timed out may still have happened
        undo.push({
          what: `trigger of bucket '${bucket}'`,
          run: () => removeTriggers(c.s3, bucket, arn, role.account),
        });
        await addTrigger(c.s3, p.bucket, p.folder, arn, role.account);
        if (!p.folder) this.say(`Input bucket "${p.bucket}" successfully created`);
      }

      // 6. Output buckets.
      for (const p of spec.output) {
        if (!p.storage_provider.startsWith("s3")) continue;
        doing = `preparing output bucket '${p.bucket}'`;
        await this.bucketAndFolder(c, p.bucket, p.folder, role.account);
      }

      // 7. The API's route to the function and its permission to invoke it.
      if (apiId) {
        doing = `connecting API '${spec.api_gateway}' to the function`;
        await allowInvoke(
          c.lambda,
          spec.name,
          {
            statementId: statementId("apigateway", apiId),
            principal: "apigateway.amazonaws.com",
            sourceArn: apiSourceArn({ partition: role.partition, region, account: role.account, id: apiId }),
          },
          this.pace,
        );
        await wireApi(c.apigateway, apiId, {
          name: spec.api_gateway!,
          region,
          partition: role.partition,
          functionArn: arn,
        });
      }

      // 8. AWS Batch for batch and lambda-batch.
      if (spec.execution_mode !== "lambda") {
        doing = `creating the AWS Batch environment of '${spec.name}'`;
        const plan = batchPlan(spec, {
          imageUri: image.imageUri,
          account: role.account,
          functionConfig: functionConfig(spec, opts.storageProviders),
        });
        undo.push({
          what: `AWS Batch environment '${spec.name}'`,
          run: () => removeBatch(c.batch, spec.name, this.pace),
        });
        await ensureBatch(c.batch, plan, this.pace);
      }
      return this.info(active, image.imageUri);
    } catch (err) {
      const e = awsError(err, doing, region);
      const left: string[] = [];
      for (const u of undo.reverse()) {
        try {
          await u.run();
        } catch {
          left.push(u.what);
        }
      }
      if (left.length > 0)
        throw new TargetError(
          `${e.message}; could not remove again ${left.join(", ")}`,
          `'scar rm -n ${spec.name}' removes what is left (buckets are kept)`,
        );
      throw e;
    }
  }

  private async bucketAndFolder(
    c: AwsClients,
    bucket: string,
    folder: string,
    account: string,
  ): Promise<void> {
    await ensureBucket(c.s3, bucket, c.region, account);
    if (await ensureFolder(c.s3, bucket, folder))
      this.say(`Folder '${folder}/' created in bucket '${bucket}'.`);
  }

  /**
   * `scar update` of a function scar created (SCAR 1.x–3.x had it): the function image built again
   * and pushed (the build is reproducible, so an unchanged script and image give the same digest and
   * the code is left alone), UpdateFunctionCode when the digest differs, then UpdateFunctionConfiguration
   * (role, memory, timeout, description, environment), each waited for until Lambda says Successful;
   * the log retention, the output buckets, and a new Batch job definition for a new image. What
   * update cannot change in place (input buckets, the API, Lambda to Batch) is refused before anything
   * changes. A failure after the code changed puts the function back as it was.
   */
  private async update(spec: FunctionSpec, opts: DeployOptions): Promise<FunctionInfo> {
    const { role, region } = this.check(spec);
    const c = this.clients(region);
    const before = await this.find(spec.name, region);
    if (!before)
      throw new TargetError(`Unable to find the function '${spec.name}'`, "create it with 'scar init'");
    refuseInPlaceChanges(spec, before);
    const apiId = before.config.Environment?.Variables?.API_GATEWAY_ID;
    let doing = "publishing the function image";
    let changedCode = false;
    try {
      const publisher = await this.opts.publisher();
      const image = await publisher.publish(spec, opts.storageProviders, {
        region,
        onProgress: (l) => this.say(l),
      });
      if (!sameImage(image, before)) {
        doing = `updating the code of function '${spec.name}'`;
        this.say(`Updating the image of function '${spec.name}'`);
        changedCode = true;
        await updateCode(c.lambda, spec.name, image.imageUri, architecturesOf(spec), this.pace);
      }
      doing = `updating the configuration of function '${spec.name}'`;
      const updated = await updateConfiguration(
        c.lambda,
        { FunctionName: spec.name, ...settingsOf(spec, opts, role.arn, apiId) },
        this.pace,
      );
      doing = `setting the retention of log group '${logGroupName(spec.name)}'`;
      const retention = checkRetention(
        (spec.raw.cloudwatch as { log_retention_policy_in_days?: unknown } | undefined)
          ?.log_retention_policy_in_days,
        spec.name,
      );
      await ensureLogGroup(c.logs, spec.name, { [CREATED_BY.key]: CREATED_BY.value }, retention);
      for (const p of spec.output) {
        if (!p.storage_provider.startsWith("s3")) continue;
        doing = `preparing output bucket '${p.bucket}'`;
        await this.bucketAndFolder(c, p.bucket, p.folder, role.account);
      }
      if (spec.execution_mode !== "lambda" && changedCode) {
        // Batch runs the same image: its job definition gets a new revision that names it
        doing = `updating the AWS Batch job definition of '${spec.name}'`;
        await ensureBatch(
          c.batch,
          batchPlan(spec, {
            imageUri: image.imageUri,
            account: role.account,
            functionConfig: functionConfig(spec, opts.storageProviders),
          }),
          this.pace,
        );
      }
      return this.info(updated, image.imageUri);
    } catch (err) {
      const e = awsError(err, doing, region);
      if (!changedCode) throw e;
      try {
        await this.restore(before);
      } catch (again) {
        throw new TargetError(
          `${e.message}; could not put its earlier image back: ${awsError(again, "restoring", region).message}`,
          `'scar update' with the earlier FDL puts it back; ${e.hint ?? ""}`.replace(/; $/, ""),
        );
      }
      throw new TargetError(`${e.message}; the function was put back as it was`, e.hint);
    }
  }

  /** What `restore` needs to put a function back as it is now (update of several functions). */
  async snapshot(name: string, region?: string): Promise<DeployedFunction | undefined> {
    return this.find(name, region);
  }

  /** Puts a function back to an earlier image and configuration (after a failed update). */
  async restore(fn: DeployedFunction): Promise<void> {
    const name = fn.config.FunctionName!;
    const c = this.clients(fn.config.FunctionArn?.split(":")[3]);
    // by digest: the tag it was deployed from may name another image by now
    const earlier = fn.resolvedImageUri ?? fn.imageUri;
    if (earlier) {
      const now = await findFunction(c.lambda, name);
      const digest = digestOf(earlier);
      if (now && !(digest && sameImage({ imageUri: earlier, digest }, now)))
        await updateCode(c.lambda, name, earlier, fn.config.Architectures, this.pace);
    }
    await updateConfiguration(c.lambda, configurationOf(fn.config), this.pace);
  }

  /**
   * `scar update -n NAME` with settings of the Lambda function alone (memory, timeout, description,
   * role, Lambda variables): checked as init checks them, then UpdateFunctionConfiguration.
   */
  async updateSettings(
    name: string,
    change: {
      memory?: number;
      timeout?: number;
      description?: string;
      role?: string;
      variables?: Record<string, string>;
    },
  ): Promise<FunctionInfo> {
    const fn = await this.deployed(name);
    const cfg = fn.config;
    const role = change.role !== undefined ? parseRole(change.role, name).arn : cfg.Role;
    const memory = change.memory ?? cfg.MemorySize ?? 128;
    const timeout = change.timeout ?? cfg.Timeout ?? 3;
    checkFunction({ name, memory, timeout } as FunctionSpec);
    const c = this.clients(cfg.FunctionArn?.split(":")[3]);
    const vars = { ...(cfg.Environment?.Variables ?? {}), ...(change.variables ?? {}) };
    try {
      const updated = await updateConfiguration(
        c.lambda,
        {
          FunctionName: name,
          ...(role ? { Role: role } : {}),
          MemorySize: memory,
          Timeout: timeout,
          ...(change.description !== undefined ? { Description: change.description } : {}),
          ...(change.variables ? { Environment: { Variables: checkedEnvironment(name, vars) } } : {}),
        },
        this.pace,
      );
      return this.info(updated, fn.imageUri);
    } catch (err) {
      throw awsError(err, `updating the configuration of function '${name}'`, c.region);
    }
  }

  /**
   * SCAR's order: the API, the log group, this function's bucket triggers, the function (and its
   * ECR repository), the Batch environment. Each part already gone is skipped.
   */
  async remove(name: string): Promise<boolean> {
    const fn = await this.find(name);
    if (!fn) return false;
    const c = this.clients(fn.config.FunctionArn?.split(":")[3]);
    const vars = fn.config.Environment?.Variables ?? {};
    const cfg = storedConfig(vars) ?? {};
    const arn = fn.config.FunctionArn!;
    const account = arn.split(":")[4]!;
    let doing = "";
    try {
      if (vars.API_GATEWAY_ID) {
        doing = `deleting API '${vars.API_GATEWAY_ID}'`;
        if (await deleteApi(c.apigateway, vars.API_GATEWAY_ID))
          this.say(`API Endpoint '${vars.API_GATEWAY_ID}' successfully deleted.`);
        else this.say(`The requested API '${vars.API_GATEWAY_ID}' does not exist.`);
      }
      doing = `deleting log group '${logGroupName(name)}'`;
      if (await deleteLogGroup(c.logs, name))
        this.say(`Log group '${logGroupName(name)}' successfully deleted.`);
      else this.say(`The requested log group '${logGroupName(name)}' does not exist.`);
      const inputs = (cfg.input as { storage_provider?: string; path?: string }[] | undefined) ?? [];
      const buckets = new Set(
        inputs
          .filter((i) => (i.storage_provider ?? "s3").startsWith("s3") && i.path)
          .map((i) => i.path!.replace(/^\/+/, "").split("/")[0]!),
      );
      for (const b of buckets) {
        doing = `removing the trigger of bucket '${b}'`;
        if (await removeTriggers(c.s3, b, arn, account))
          this.say("Bucket notifications successfully deleted.");
      }
      doing = `deleting function '${name}'`;
      await deleteFunction(c.lambda, name);
      const repo = fn.imageUri ? repositoryOf(fn.imageUri) : undefined;
      const deleteImage = (cfg.ecr as { delete_image?: unknown } | undefined)?.delete_image !== false;
      if (repo && deleteImage) {
        doing = `deleting ECR repository '${repo}'`;
        this.say(`Deleting ECR repo: ${repo}`);
        await deleteRepository(c.ecr, repo);
      }
      doing = `deleting the AWS Batch environment of '${name}'`;
      if (await removeBatch(c.batch, name, this.pace)) this.say("Job definitions successfully deleted.");
    } catch (err) {
      throw awsError(err, doing, c.region);
    }
    return true;
  }

  /** The deployed function's configuration, for commands that need its environment. */
  private async deployed(name: string): Promise<DeployedFunction> {
    const fn = await this.find(name);
    if (!fn) throw new TargetError(`Unable to find the function '${name}'`);
    return fn;
  }

  /** SCAR's `run`: Invoke RequestResponse with the log tail Lambda returns. */
  async run(name: string, event: unknown): Promise<RunResult> {
    const c = this.clients();
    let res: InvokeCommandOutput;
    try {
      res = await c.lambda.send(
        new InvokeCommand({
          FunctionName: name,
          InvocationType: "RequestResponse",
          LogType: "Tail",
          Payload: Buffer.from(JSON.stringify(event ?? {})),
        }),
      );
    } catch (err) {
      if (errorName(err) === "ResourceNotFoundException")
        throw new TargetError(`Unable to find the function '${name}'`);
      throw awsError(err, `invoking '${name}'`, c.region);
    }
    const requestId = res.$metadata.requestId ?? "";
    const tail = res.LogResult ? Buffer.from(res.LogResult, "base64").toString("utf8") : undefined;
    const text = Buffer.from(res.Payload ?? new Uint8Array()).toString("utf8");
    let doc: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === "object") doc = parsed as Record<string, unknown>;
    } catch {}
    const headers = (doc?.headers ?? {}) as Record<string, string>;
    const base = {
      requestId,
      logGroup: headers["amz-log-group-name"] ?? logGroupName(name),
      logStream: headers["amz-log-stream-name"] ?? "",
      ...(tail !== undefined ? { logTail: tail } : {}),
    };
    if (res.FunctionError || (doc && "errorMessage" in doc)) {
      const message = String(doc?.errorMessage ?? text);
      const timedOut = /Task timed out after ([\d.]+) seconds/.exec(message);
      return {
        ...base,
        output: Buffer.from(timedOut ? `Function '${name}' timed out after ${timedOut[1]} seconds` : message),
        ok: false,
        status: "failed",
        httpStatus: res.StatusCode ?? 200,
      };
    }
    const body = typeof doc?.body === "string" ? doc.body : doc ? "" : text;
    const output = doc?.isBase64Encoded ? Buffer.from(body, "base64") : Buffer.from(body);
    const statusCode = typeof doc?.statusCode === "number" ? doc.statusCode : (res.StatusCode ?? 200);
    return { ...base, output, ok: statusCode < 300, httpStatus: statusCode };
  }

  /** SCAR's `run -a`: Invoke Event; the request id. */
  async submit(name: string, event: unknown): Promise<string> {
    const c = this.clients();
    try {
      const res = await c.lambda.send(
        new InvokeCommand({
          FunctionName: name,
          InvocationType: "Event",
          Payload: Buffer.from(JSON.stringify(event ?? {})),
        }),
      );
      return res.$metadata.requestId ?? "";
    } catch (err) {
      if (errorName(err) === "ResourceNotFoundException")
        throw new TargetError(`Unable to find the function '${name}'`);
      throw awsError(err, `invoking '${name}'`, c.region);
    }
  }

  /** SCAR's `invoke`: an HTTP call of the function's API Gateway URL. */
  async invokeHttp(name: string, req: HttpInvokeRequest): Promise<RunResult> {
    const fn = await this.deployed(name);
    const id = fn.config.Environment?.Variables?.API_GATEWAY_ID;
    if (!id)
      throw new TargetError(
        `Error retrieving API ID for lambda function '${name}'`,
        "the function has no API: create it with api_gateway.name in the FDL (or init -api NAME)",
      );
    const url = new URL(apiUrl(id, fn.config.FunctionArn?.split(":")[3] ?? this.opts.region, this.env));
    for (const [k, v] of Object.entries(req.query ?? {}))
      for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
    const headers: Record<string, string> = {};
    if (req.asynchronous) headers["X-Amz-Invocation-Type"] = "Event";
    if (req.contentType) headers["Content-Type"] = req.contentType;
    let res: Response;
    try {
      res = await fetch(url, {
        method: req.method,
        headers,
        ...(req.body !== undefined
          ? { body: typeof req.body === "string" ? req.body : new Uint8Array(req.body) }
          : {}),
      });
    } catch (err) {
      throw new TargetError(`calling ${url.origin} failed: ${(err as Error).message}`);
    }
    const body = Buffer.from(await res.arrayBuffer());
    const requestId = res.headers.get("amz-lambda-request-id") ?? res.headers.get("x-amzn-requestid") ?? "";
    // An asynchronous Lambda answers API Gateway with nothing, which API Gateway turns into a 502.
    const accepted = req.asynchronous && (res.status === 202 || res.status === 502 || res.ok);
    if (!res.ok && !accepted) {
      let message = body.toString("utf8");
      try {
        message = String((JSON.parse(message) as { message?: unknown }).message ?? message);
      } catch {}
      throw new TargetError(`Error (${res.statusText || res.status}): ${message}`);
    }
    const text = body.toString("latin1").trim();
    const decoded =
      text && /^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0
        ? Buffer.from(text, "base64")
        : body;
    return {
      requestId,
      logGroup: res.headers.get("amz-log-group-name") ?? logGroupName(name),
      logStream: res.headers.get("amz-log-stream-name") ?? "",
      output: accepted && !res.ok ? Buffer.alloc(0) : decoded,
      ok: true,
      httpStatus: accepted ? 202 : res.status,
    };
  }

  /**
   * The function's whole log (one stream with `stream`), or one request's lines (SCAR's `-ri`).
   * `seen` (for `--follow`): the events already shown, by CloudWatch's eventId with their time;
   * those are left out, the new ones added, and those older than `startTime` forgotten.
   * `request` (for `--follow -ri`): the request's filter kept from one call to the next, so that a
   * request whose lines arrive in two polls is found; made afresh from `requestId` otherwise.
   */
  async logText(
    name: string,
    q: {
      stream?: string;
      requestId?: string;
      request?: RequestLines;
      startTime?: number;
      seen?: Map<string, number>;
    } = {},
  ): Promise<{ text: string; last: number }> {
    const c = this.clients();
    let events: Awaited<ReturnType<typeof readLogEvents>>;
    try {
      events = await readLogEvents(c.logs, logGroupName(name), {
        ...(q.stream ? { stream: q.stream } : {}),
        ...(q.startTime !== undefined ? { startTime: q.startTime } : {}),
      });
    } catch (err) {
      if (errorName(err) === "ResourceNotFoundException")
        throw new TargetError(
          `function '${name}' has no log group '${logGroupName(name)}' (it has not run yet, or it was removed)`,
        );
      throw awsError(err, `reading the logs of '${name}'`, c.region);
    }
    const seen = q.seen;
    if (seen) {
      for (const [id, t] of seen) if (t < (q.startTime ?? 0)) seen.delete(id);
      events = events.filter((e) => {
        if (!e.eventId) return true;
        if (seen.has(e.eventId)) return false;
        seen.set(e.eventId, e.timestamp ?? 0);
        return true;
      });
    }
    const last = events.reduce((m, e) => Math.max(m, e.timestamp ?? 0), q.startTime ?? 0);
    const request = q.request ?? (q.requestId ? new RequestLines(q.requestId) : undefined);
    if (request) return { text: request.take(events), last };
    const text = events.map((e) => (e.message?.endsWith("\n") ? e.message : `${e.message ?? ""}\n`)).join("");
    return { text, last };
  }

  /**
   * SCAR's `log -ri`: when the id is an AWS Batch job (a delegated request), its status, and its
   * log once it succeeded (group /aws/batch/job). Empty when it is no Batch job.
   */
  async batchJobLog(id: string): Promise<string> {
    const c = this.clients();
    try {
      const r = await c.batch.send(new DescribeJobsCommand({ jobs: [id] }));
      const job = r.jobs?.[0];
      if (!job) return "";
      let text = `Batch job status: ${job.status}\n`;
      const stream = job.container?.logStreamName;
      if (job.status === "SUCCEEDED" && stream) {
        const events = await readLogEvents(c.logs, "/aws/batch/job", { stream });
        text += events.map((e) => (e.message?.endsWith("\n") ? e.message : `${e.message ?? ""}\n`)).join("");
      }
      return text;
    } catch (err) {
      // a request id is no job id: Batch says it is invalid
      if (errorName(err) === "ClientException") return "";
      throw awsError(err, `reading Batch job '${id}'`, c.region);
    }
  }

  /** Lambda keeps no job list: the requests are what the log says. */
  async jobs(_name: string): Promise<JobInfo[]> {
    return [];
  }

  /** None: `run --wait` is refused on AWS before any job is followed. */
  async jobsByIds(_name: string, _ids: string[]): Promise<Map<string, JobInfo>> {
    return new Map();
  }

  /** scar rm on AWS never deletes buckets (SCAR's rule). */
  async bucketsDeletedWith(_name: string): Promise<string[]> {
    return [];
  }

  /**
   * The S3 event of an object, as S3 sends it to Lambda (SCAR's `run -ib` launcher sends the same);
   * `eventSource`: SCAR 1.x's `-es BUCKET` (results to BUCKET/output when the function has none).
   */
  async fileEvent(
    _name: string,
    bucket: string,
    key: string,
    size: number,
    eventSource = false,
  ): Promise<unknown> {
    return {
      ...(eventSource ? { scar_event_source: true } : {}),
      Records: [
        {
          eventVersion: "2.1",
          eventSource: "aws:s3",
          awsRegion: this.opts.region,
          eventTime: new Date().toISOString(),
          eventName: "s3:ObjectCreated:Put",
          s3: {
            s3SchemaVersion: "1.0",
            bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
            object: { key: encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+"), size },
          },
        },
      ],
    };
  }

  async job(_id: string): Promise<JobInfo | undefined> {
    return undefined;
  }

  async jobLog(name: string, id: string): Promise<string> {
    return (await this.logText(name, { requestId: id })).text;
  }

  async buckets(): Promise<BucketStore> {
    if (!this.store) {
      const endpoint = this.env.AWS_ENDPOINT_URL_S3 || this.env.AWS_ENDPOINT_URL || undefined;
      const { BucketStore } = await import("../buckets.js");
      this.store = new BucketStore(endpoint, { ...(endpoint ? { endpoint } : {}), region: this.opts.region });
    }
    return this.store;
  }

  async close(): Promise<void> {
    this.store?.destroy();
    for (const c of this.byRegion.values()) c.destroy();
    this.byRegion.clear();
  }
}

/** Lambda's settings of a function that CreateFunction and UpdateFunctionConfiguration share. */
function settingsOf(spec: FunctionSpec, opts: DeployOptions, roleArn: string, apiId: string | undefined) {
  const lambda = (spec.raw.lambda ?? {}) as Record<string, unknown>;
  return {
    Role: roleArn,
    MemorySize: spec.memory,
    Timeout: spec.timeout ?? 300,
    Description: spec.description ?? "",
    Environment: { Variables: functionEnvironment(spec, opts.storageProviders, apiId ? { apiId } : {}) },
    ...(lambda.vpc ? { VpcConfig: lambda.vpc as Record<string, unknown> } : {}),
    ...(lambda.file_system
      ? { FileSystemConfigs: lambda.file_system as { Arn: string; LocalMountPath: string }[] }
      : {}),
    ...(spec.ephemeral_storage ? { EphemeralStorage: { Size: Math.max(512, spec.ephemeral_storage) } } : {}),
  };
}

function architecturesOf(spec: FunctionSpec): ("x86_64" | "arm64")[] {
  const a = (spec.raw.lambda as { architectures?: unknown } | undefined)?.architectures;
  return Array.isArray(a) && a.length > 0 ? (a as ("x86_64" | "arm64")[]).slice(0, 1) : ["x86_64"];
}

/** A deployed configuration as UpdateFunctionConfiguration takes it back. */
function configurationOf(f: FunctionConfiguration) {
  return {
    FunctionName: f.FunctionName!,
    ...(f.Role ? { Role: f.Role } : {}),
    ...(f.MemorySize ? { MemorySize: f.MemorySize } : {}),
    ...(f.Timeout ? { Timeout: f.Timeout } : {}),
    Description: f.Description ?? "",
    Environment: { Variables: f.Environment?.Variables ?? {} },
    ...(f.EphemeralStorage ? { EphemeralStorage: f.EphemeralStorage } : {}),
    // empty lists take away what an update may have added
    VpcConfig: {
      SubnetIds: f.VpcConfig?.SubnetIds ?? [],
      SecurityGroupIds: f.VpcConfig?.SecurityGroupIds ?? [],
    },
    FileSystemConfigs: f.FileSystemConfigs ?? [],
  };
}

const digestOf = (uri: string | undefined) => (uri ? /@(sha256:[0-9a-f]{64})$/.exec(uri)?.[1] : undefined);

/**
 * Whether the function runs this image already: by digest (the one Lambda resolved the deployed
 * tag to), else by the same reference.
 */
function sameImage(image: { imageUri: string; digest?: string }, fn: DeployedFunction): boolean {
  const deployed = digestOf(fn.resolvedImageUri) ?? digestOf(fn.imageUri);
  const wanted = image.digest || digestOf(image.imageUri);
  return deployed && wanted ? deployed === wanted : image.imageUri === fn.imageUri;
}

/** `bucket/folder` of each S3 path, for comparing what is deployed with what is asked. */
function s3Paths(paths: { storage_provider?: string; path?: string }[]): string[] {
  return paths
    .filter((p) => (p.storage_provider ?? "s3").startsWith("s3") && p.path)
    .map((p) => p.path!.replace(/^\/+|\/+$/g, ""))
    .sort();
}

/**
 * What update cannot change in place: the input buckets (their triggers and permissions), the API,
 * and going from Lambda alone to Batch or back (the Batch environment). Refused before any change,
 * with the way to do it.
 */
function refuseInPlaceChanges(spec: FunctionSpec, fn: DeployedFunction): void {
  const vars = fn.config.Environment?.Variables ?? {};
  const stored = storedConfig(vars);
  const again = `remove it and create it again: 'scar rm -n ${spec.name}' then 'scar init' (buckets and their files are kept)`;
  if (stored) {
    const was = s3Paths((stored.input as { storage_provider?: string; path?: string }[] | undefined) ?? []);
    const now = s3Paths(spec.input);
    if (was.join(",") !== now.join(","))
      throw new TargetError(
        `function '${spec.name}': update cannot change its input buckets (${was.join(", ") || "none"} -> ${now.join(", ") || "none"})`,
        again,
      );
    const wasMode = String(stored.execution_mode ?? "lambda");
    if ((wasMode === "lambda") !== (spec.execution_mode === "lambda"))
      throw new TargetError(
        `function '${spec.name}': update cannot change execution_mode from ${wasMode} to ${spec.execution_mode}`,
        again,
      );
  }
  if (Boolean(vars.API_GATEWAY_ID) !== Boolean(spec.api_gateway))
    throw new TargetError(
      `function '${spec.name}': update cannot ${spec.api_gateway ? "add an API" : "remove its API"} (api_gateway)`,
      again,
    );
}

/** The account of a role ARN, for callers that have only scar.cfg. */
export function accountOfRole(arn: string): string {
  return parseRole(arn).account;
}
