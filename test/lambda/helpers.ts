/**
 * The Lambda runtime under test: scar's embedded object store on loopback (the function's S3 through
 * AWS_ENDPOINT_URL), a function folder holding function_config.yaml and the script (as /var/task
 * would), and the Runtime API emulator running `node dist/src/lambda/bootstrap.js` as a real process.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { stringify } from "yaml";
import { RuntimeApiEmulator } from "../../src/lambda/emulator/runtime-api-server.js";
import { CREDS, type TestStore, withStore } from "../engine/store/helpers.js";
import { tempDirRemovedAtExit } from "../fixtures/temp-dirs.js";

export const BOOTSTRAP = fileURLToPath(new URL("../../src/lambda/bootstrap.js", import.meta.url));

export interface FunctionFolder {
  dir: string;
  configFile: string;
}

/** Writes SCAR's function_config.yaml (the merged `lambda` section + storage_providers) and the script. */
export function functionFolder(config: Record<string, unknown>, script?: string): FunctionFolder {
  const dir = tempDirRemovedAtExit("scar-lambda-task-");
  const doc: Record<string, unknown> = { storage_providers: {}, ...config };
  if (script !== undefined) {
    writeFileSync(join(dir, "script.sh"), script);
    doc.init_script = "script.sh";
  }
  const configFile = join(dir, "function_config.yaml");
  writeFileSync(configFile, stringify(doc));
  return { dir, configFile };
}

export interface Lab {
  store: TestStore;
  /** Starts an emulator running the bootstrap for this function folder. */
  emulator(folder: FunctionFolder, env?: Record<string, string>): Promise<RuntimeApiEmulator>;
  put(bucket: string, key: string, body: string | Buffer): Promise<void>;
  get(bucket: string, key: string): Promise<Buffer | undefined>;
  stop(): Promise<void>;
}

/** The variables Lambda gives a function, with the store standing in for S3. */
export function functionEnv(store: TestStore, configFile: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    SCAR_FUNCTION_CONFIG: configFile,
    AWS_ENDPOINT_URL: store.store.url,
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

export async function lab(buckets: string[]): Promise<Lab> {
  const store = await withStore();
  for (const b of buckets) await store.s3.send(new CreateBucketCommand({ Bucket: b }));
  const emulators: RuntimeApiEmulator[] = [];
  const folders: string[] = [];
  return {
    store,
    async emulator(folder, env = {}) {
      folders.push(folder.dir);
      const emu = await RuntimeApiEmulator.start({
        functionName: "scar-test",
        runtime: {
          command: process.execPath,
          args: [BOOTSTRAP],
          env: { ...functionEnv(store, folder.configFile), ...env },
        },
      });
      emulators.push(emu);
      return emu;
    },
    async put(bucket, key, body) {
      await store.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async get(bucket, key) {
      try {
        const r = await store.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchKey") return undefined;
        throw err;
      }
    },
    async stop() {
      for (const e of emulators) await e.close();
      for (const d of folders) rmSync(d, { recursive: true, force: true });
      await store.stop();
    },
  };
}

/** An S3 ObjectCreated event as S3 sends it: the key URL-encoded, spaces as '+'. */
export function s3Event(bucket: string, key: string): unknown {
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: "us-east-1",
        eventTime: "2026-12-03T22:00:00.000Z",
        eventName: "ObjectCreated:Put",
        s3: {
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeURIComponent(key).replace(/%20/g, "+"), size: 5 },
        },
      },
    ],
  };
}

/** The output of the script in SCAR's response (its body is base64). */
export function responseOutput(body: unknown): Buffer {
  const b = body as { statusCode?: number; body?: string; isBase64Encoded?: boolean };
  if (typeof b?.body !== "string") throw new Error(`not SCAR's response: ${JSON.stringify(body)}`);
  return Buffer.from(b.body, "base64");
}
