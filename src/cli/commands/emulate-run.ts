/** What `scar emulate` does (see emulate.ts). */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../engine/images/index.js";
import { Runner } from "../../engine/runtime/index.js";
import { EMBEDDED_PROVIDERS } from "../../engine/triggers.js";
import type { FunctionSpec } from "../../fdl/spec.js";
import { ImageFunction } from "../../lambda/emulator/image-runtime.js";
import { buildFunctionImage, FunctionImageError } from "../../lambda/image/builder.js";
import type { ImageSource } from "../../lambda/image/types.js";
import { type EngineInfo, ensureEngine, readCredentials, runningEngine } from "../../targets/local-engine.js";
import { OscarClient } from "../../targets/oscar-client.js";
import { chooseFunction, printJson } from "../context.js";
import { configuredEngine, openPrivateDataDir } from "../data-dir.js";
import { CliError } from "../errors.js";
import { readFdlFile } from "../fdl-file.js";
import { human, showProgress } from "../progress.js";
import type { EmulateFlags } from "./emulate.js";

/** An S3 ObjectCreated event as S3 sends it (the key URL-encoded, spaces as '+'). */
export function s3ObjectEvent(bucket: string, key: string, region: string): unknown {
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: "ObjectCreated:Put",
        s3: {
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeURIComponent(key).replace(/%20/g, "+").replace(/%2F/g, "/") },
        },
      },
    ],
  };
}

/** An API Gateway (REST, proxy) POST event carrying `body` base64-encoded. */
export function apiGatewayEvent(body: Buffer): unknown {
  return {
    resource: "/{proxy+}",
    path: "/launch",
    httpMethod: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    queryStringParameters: null,
    requestContext: { httpMethod: "POST", path: "/scar/launch", stage: "scar", requestId: "emulated" },
    body: body.toString("base64"),
    isBase64Encoded: true,
  };
}

function source(spec: FunctionSpec): ImageSource {
  if (spec.image_file) return { kind: "file", path: spec.image_file };
  if (spec.image) return { kind: "registry", reference: spec.image };
  throw new CliError(`function '${spec.name}' has no container.image nor container.image_file`, 2);
}

/** SCAR's `lambda.environment.Variables`: the Lambda function's own variables (not the image's ENV). */
function lambdaVariables(spec: FunctionSpec): Record<string, string> {
  const lambda = (spec.raw.lambda ?? {}) as { environment?: { Variables?: Record<string, unknown> } };
  const vars = lambda.environment?.Variables ?? {};
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)]));
}

function readFile(path: string, flag: string): Buffer {
  if (!existsSync(path)) throw new CliError(`${flag}: '${path}' does not exist`, 2);
  return readFileSync(path);
}

/** The function's buckets on the embedded store (its inputs and outputs there), as the engine limits its key pair. */
function embeddedBuckets(spec: FunctionSpec): string[] {
  return [...spec.input, ...spec.output]
    .filter((p) => EMBEDDED_PROVIDERS.has(p.storage_provider))
    .map((p) => p.bucket);
}

/** How long a lent key pair outlives the function's timeout: the container's start and the stage-out. */
const LEND_MARGIN_S = 300;

/**
 * A key pair of the engine's store lent for one emulated run (POST /system/store-keys): the
 * variables the function finds it in, and its return when the run is over (else it expires).
 */
class LentStoreKeys {
  private constructor(
    private readonly client: OscarClient,
    private readonly accessKeyId: string,
    readonly env: Record<string, string>,
  ) {}

  static async lend(
    engine: EngineInfo,
    admin: { user: string; password: string },
    req: { buckets: string[]; ttlSeconds: number },
  ): Promise<LentStoreKeys> {
    const client = new OscarClient({ url: engine.api, user: admin.user, password: admin.password });
    try {
      const pair = await client.json<{ accessKeyId: string; secretAccessKey: string }>(
        "POST",
        "/system/store-keys",
        { json: { buckets: [...new Set(req.buckets)], ttl_seconds: req.ttlSeconds } },
      );
      return new LentStoreKeys(client, pair.accessKeyId, {
        AWS_ENDPOINT_URL: engine.s3,
        AWS_ACCESS_KEY_ID: pair.accessKeyId,
        AWS_SECRET_ACCESS_KEY: pair.secretAccessKey,
      });
    } catch (err) {
      await client.close();
      throw new CliError(
        `the local engine at ${engine.api} lent no store key pair for the function: ${(err as Error).message}`,
        1,
        "an engine older than this scar lends none: restart it with `scar engine stop` and `scar engine start`",
      );
    }
  }

  /** Returns the key pair; a failure only leaves it to expire. */
  async giveBack(): Promise<void> {
    try {
      await this.client.send("DELETE", `/system/store-keys/${this.accessKeyId}`);
    } catch {
      // it expires on its own (ttl_seconds)
    } finally {
      await this.client.close();
    }
  }
}

export async function runEmulate(flags: EmulateFlags): Promise<void> {
  const kinds = [flags.s3, flags.apiEvent, flags.apiBody, flags.payload].filter((v) => v !== undefined);
  if (kinds.length > 1) throw new CliError("give one event: --s3, --api-event, --api-body or -p", 2);
  const fdl = readFdlFile(flags.confFile);
  const name = await chooseFunction(flags.name, fdl);
  const spec = fdl.functions.find((f) => f.name === name);
  if (!spec) throw new CliError(`${flags.confFile} has no function '${name}'`, 2);
  const timeoutS = flags.timeout !== undefined ? Number(flags.timeout) : (spec.timeout ?? 300);
  if (!(timeoutS > 0)) throw new CliError(`--timeout: '${flags.timeout}' is not a number of seconds`, 2);

  const engineCfg = await configuredEngine();
  const dataDir = flags.dataDir ?? engineCfg.dataDir;
  await openPrivateDataDir(dataDir);
  const progress = showProgress(flags.json);
  const note = (line: string) => {
    if (progress) process.stderr.write(`\r\x1b[K${line}`);
  };

  // the event first: a bad one is refused before anything is built
  let event: unknown = {};
  // the function's S3 is the local engine's store: started for --s3, else used when it runs
  let engine: EngineInfo | undefined;
  if (flags.s3 !== undefined) {
    const slash = flags.s3.indexOf("/");
    if (slash <= 0 || slash === flags.s3.length - 1)
      throw new CliError(`--s3: '${flags.s3}' is not BUCKET/KEY`, 2);
    engine = (await ensureEngine({ dataDir, config: engineCfg.config?.local, say: note })).info;
    event = s3ObjectEvent(flags.s3.slice(0, slash), flags.s3.slice(slash + 1), "us-east-1");
  } else if (flags.apiEvent !== undefined) {
    try {
      event = JSON.parse(readFile(flags.apiEvent, "--api-event").toString("utf8"));
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`--api-event: '${flags.apiEvent}' is not JSON: ${(err as Error).message}`, 2);
    }
  } else if (flags.apiBody !== undefined) {
    event = apiGatewayEvent(readFile(flags.apiBody, "--api-body"));
  } else if (flags.payload !== undefined) {
    try {
      event = JSON.parse(flags.payload);
    } catch (err) {
      throw new CliError(`-p: the payload is not JSON: ${(err as Error).message}`, 2);
    }
  }

  if (flags.s3 === undefined) engine = await runningEngine(dataDir);

  const images = new ImageStore({ dataDir });
  const t0 = Date.now();
  let built: Awaited<ReturnType<typeof buildFunctionImage>>;
  try {
    built = await buildFunctionImage({
      spec,
      storageProviders: fdl.storage_providers,
      source: source(spec),
      images,
      tag: `scar-lambda/${spec.name}:latest`,
      onProgress: (p) => note(`building the function image: ${p.stage}${p.detail ? ` ${p.detail}` : ""}`),
    });
  } catch (err) {
    if (err instanceof FunctionImageError) throw new CliError(err.message);
    throw err;
  }
  note("");
  if (progress)
    process.stderr.write(
      `built ${built.reference} (${built.digest.slice(7, 19)}, ${human(built.uncompressedBytes)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );

  const runner = await Runner.open({
    stateDir: join(dataDir, "emulator"),
    leaseLayers: (dirs) => images.leaseLayerDirs(dirs),
  });
  let fn: ImageFunction | undefined;
  let store: LentStoreKeys | undefined;
  try {
    // the function's own key pair, limited to its buckets (and the --s3 event's), never the admin's
    if (engine)
      store = await LentStoreKeys.lend(engine, readCredentials(dataDir).admin, {
        buckets: [...embeddedBuckets(spec), ...(flags.s3 ? [flags.s3.slice(0, flags.s3.indexOf("/"))] : [])],
        // the engine lends for a day at most: a longer --timeout outlives its key pair
        ttlSeconds: Math.min(Math.ceil(timeoutS) + LEND_MARGIN_S, 86_400),
      });
    const storeEnv = store?.env ?? {};
    fn = await ImageFunction.start({
      runner,
      images,
      reference: built.reference,
      functionName: spec.name,
      memoryMB: spec.memory,
      ...(spec.ephemeral_storage ? { ephemeralMB: spec.ephemeral_storage } : {}),
      env: { ...lambdaVariables(spec), ...storeEnv, AWS_EC2_METADATA_DISABLED: "true" },
    });
    note(`invoking ${spec.name} (timeout ${timeoutS} s, memory ${spec.memory} MB)`);
    const r = await fn.invoke(event, { timeoutMs: timeoutS * 1000 });
    note("");
    const body = r.body as {
      statusCode?: number;
      body?: string;
      isBase64Encoded?: boolean;
      errorMessage?: string;
    };
    const output =
      typeof body?.body === "string"
        ? body.isBase64Encoded
          ? Buffer.from(body.body, "base64").toString("utf8")
          : body.body
        : undefined;
    if (flags.json) {
      printJson({
        LambdaOutput: {
          StatusCode: r.status === "success" ? 200 : 500,
          RequestId: r.requestId,
          ...(r.status !== "success" ? { FunctionError: r.errorType ?? "Unhandled" } : {}),
          Payload: output ?? r.body,
          Logs: r.logs ?? [],
          ImageDigest: built.digest,
        },
      });
    } else {
      for (const line of r.logs ?? []) process.stderr.write(`${line}\n`);
      if (r.status === "success") {
        process.stdout.write(`Request Id: ${r.requestId}\n`);
        if (output !== undefined)
          process.stdout.write(output.endsWith("\n") || output === "" ? output : `${output}\n`);
        else process.stdout.write(`${JSON.stringify(r.body)}\n`);
      }
    }
    if (r.status !== "success") {
      process.exitCode = 1;
      if (!flags.json)
        throw new CliError(
          r.status === "timeout"
            ? `Error in function response: Function '${spec.name}' timed out after ${timeoutS} seconds`
            : `Error in function response: ${body?.errorMessage ?? JSON.stringify(r.body)}`,
        );
    }
  } finally {
    await fn?.close();
    await store?.giveBack();
    await runner.close();
  }
}
