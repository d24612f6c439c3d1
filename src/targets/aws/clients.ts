/**
 * One SDK v3 client per AWS service, for one region. Credentials come from the SDK's default chain
 * (environment, shared files, AWS_PROFILE, SSO, instance roles); AWS_ENDPOINT_URL and
 * AWS_ENDPOINT_URL_<SERVICE> are read by the SDK itself, so every client can be aimed at LocalStack.
 * Throttling gets the SDK's adaptive retries (a client-side rate limiter on top of backoff), 8
 * attempts per call unless AWS_MAX_ATTEMPTS says otherwise.
 */
import { APIGatewayClient } from "@aws-sdk/client-api-gateway";
import { BatchClient } from "@aws-sdk/client-batch";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { ECRClient } from "@aws-sdk/client-ecr";
import { IAMClient } from "@aws-sdk/client-iam";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";

export interface AwsClients {
  region: string;
  lambda: LambdaClient;
  iam: IAMClient;
  logs: CloudWatchLogsClient;
  apigateway: APIGatewayClient;
  batch: BatchClient;
  s3: S3Client;
  ecr: ECRClient;
  destroy(): void;
}

/** Attempts per call, throttling included: adaptive mode slows the client down between them. */
export const MAX_ATTEMPTS = 8;

/**
 * The retry settings: adaptive, MAX_ATTEMPTS attempts, unless the SDK's own variables say otherwise
 * (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE: a client given values ignores them, so they are read here).
 */
export function retrySettings(env: NodeJS.ProcessEnv): { retryMode: string; maxAttempts: number } {
  const n = Number(env.AWS_MAX_ATTEMPTS);
  const mode = env.AWS_RETRY_MODE;
  return {
    retryMode: mode === "standard" || mode === "legacy" ? mode : "adaptive",
    maxAttempts: Number.isInteger(n) && n >= 1 ? n : MAX_ATTEMPTS,
  };
}

export function createClients(region: string, env: NodeJS.ProcessEnv = process.env): AwsClients {
  const common = { region, ...retrySettings(env) };
  const lambda = new LambdaClient(common);
  const iam = new IAMClient(common);
  const logs = new CloudWatchLogsClient(common);
  const apigateway = new APIGatewayClient(common);
  const batch = new BatchClient(common);
  const s3 = new S3Client({
    ...common,
    // LocalStack, MinIO and scar's own store answer path-style requests only
    forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL),
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const ecr = new ECRClient(common);
  return {
    region,
    lambda,
    iam,
    logs,
    apigateway,
    batch,
    s3,
    ecr,
    destroy() {
      for (const c of [lambda, iam, logs, apigateway, batch, s3, ecr]) c.destroy();
    },
  };
}

/** The region the SDK would use on its own (AWS_REGION, the profile's `region`), or undefined. */
export async function sdkRegion(): Promise<string | undefined> {
  const probe = new LambdaClient({});
  try {
    return await probe.config.region();
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
}
