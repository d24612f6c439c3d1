import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { type RunningStore, type StoreOptions, startStore } from "../../../src/engine/store/index.js";

export const CREDS = { accessKeyId: "AKIDSCARTEST", secretAccessKey: "scar/test+secret" };

export interface TestStore {
  store: RunningStore;
  dir: string;
  s3: S3Client;
  stop(): Promise<void>;
}

export async function withStore(opts: Partial<StoreOptions> = {}): Promise<TestStore> {
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "scar-store-test-"));
  const store = await startStore({ dataDir: dir, host: "127.0.0.1", port: 0, credentials: CREDS, ...opts });
  const s3 = new S3Client({
    endpoint: store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: CREDS,
  });
  return {
    store,
    dir,
    s3,
    async stop() {
      s3.destroy();
      await store.close();
      if (!opts.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the store under test runs in this process). */
export function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input ?? "");
  });
}

/** Environment for awscli/boto3 that reads no user config and no instance metadata. */
export function awsEnv(home: string, store: RunningStore): Record<string, string> {
  return {
    HOME: home,
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(home, "aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "aws-credentials"),
    AWS_ENDPOINT_URL: store.url,
    AWS_PAGER: "",
  };
}

/** The S3 error a request ends with (fails the test when it succeeds or fails otherwise). */
export async function s3Error(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException) return e;
    throw e;
  }
  assert.fail("expected an S3 error");
}
