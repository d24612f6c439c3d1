/**
 * What the AWS target tests share: specs parsed from FDL text (through the real FDL library and
 * scar.cfg's defaults), SDK client mocks that record every call in one ordered log, a publisher
 * that answers like an ECR push, and a pace that never sleeps.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { APIGatewayClient } from "@aws-sdk/client-api-gateway";
import { BatchClient } from "@aws-sdk/client-batch";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { ECRClient } from "@aws-sdk/client-ecr";
import { IAMClient } from "@aws-sdk/client-iam";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { defaultConfig } from "../../../src/config/defaults.js";
import { parseFdl } from "../../../src/fdl/index.js";
import type { FdlResult } from "../../../src/fdl/spec.js";
import type { FunctionImagePublisher, PushedImage } from "../../../src/lambda/image/types.js";
import { AwsTarget, type AwsTargetOptions } from "../../../src/targets/aws/aws-target.js";
import type { Pace } from "../../../src/targets/aws/wait.js";

export const ACCOUNT = "123456789012";
export const ROLE = `arn:aws:iam::${ACCOUNT}:role/scar-lambda`;
export const REGION = "eu-west-1";
export const IMAGE_URI = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/scar-cowsay@sha256:${"a".repeat(64)}`;

/** The folder of the tests' FDL files and scripts; removed when the test process ends. */
export const DIR = mkdtempSync(join(tmpdir(), "scar-aws-test-"));
writeFileSync(join(DIR, "cow.sh"), "#!/bin/sh\ncowsay moo\n");
process.on("exit", () => rmSync(DIR, { recursive: true, force: true }));

export function fdl(
  text: string,
  cfgPatch: (c: ReturnType<typeof defaultConfig>) => void = () => {},
): FdlResult {
  const config = defaultConfig();
  config.aws.iam.role = ROLE;
  config.aws.lambda.region = REGION;
  cfgPatch(config);
  return parseFdl(join(DIR, "fdl.yaml"), text, { config: { config } });
}

export const NO_WAIT: Pace = { sleep: async () => {}, limitMs: 10, intervalMs: 1 };

export interface Call {
  service: string;
  command: string;
  input: Record<string, unknown>;
}

export const CLIENTS = {
  lambda: LambdaClient,
  iam: IAMClient,
  logs: CloudWatchLogsClient,
  apigateway: APIGatewayClient,
  batch: BatchClient,
  s3: S3Client,
  ecr: ECRClient,
} as const;

// biome-ignore lint/suspicious/noExplicitAny: the stubs answer every service's commands
export type Mocks = { -readonly [K in keyof typeof CLIENTS]: ReturnType<typeof mockClient<any, any, any>> };

/**
 * Mocks of every client; `calls` is the order in which the target sent its commands, across
 * services. Unanswered commands fail (as an unknown call should).
 */
export function mockAws(only: (keyof typeof CLIENTS)[] = Object.keys(CLIENTS) as (keyof typeof CLIENTS)[]): {
  mocks: Mocks;
  calls: Call[];
  restore(): void;
} {
  const calls: Call[] = [];
  const mocks = {} as Mocks;
  const chosen = Object.entries(CLIENTS).filter(([k]) => only.includes(k as keyof typeof CLIENTS));
  for (const [service, cls] of chosen) {
    const m = mockClient(cls as never);
    m.onAnyCommand().callsFake((input: Record<string, unknown>) => {
      throw Object.assign(new Error(`unexpected call on ${service}: ${JSON.stringify(input)}`), {
        name: "UnexpectedCall",
      });
    });
    mocks[service as keyof Mocks] = m;
  }
  // Record every send in order: wrap the stubbed send once more.
  for (const [service, cls] of chosen) {
    const proto = (cls as unknown as { prototype: { send: (c: unknown) => Promise<unknown> } }).prototype;
    const stubbed = proto.send;
    proto.send = function (this: unknown, command: unknown) {
      const c = command as { constructor: { name: string }; input: Record<string, unknown> };
      calls.push({ service, command: c.constructor.name.replace(/Command$/, ""), input: c.input });
      return stubbed.call(this, command);
    };
    (proto.send as unknown as { restoreRecording: () => void }).restoreRecording = () => {
      proto.send = stubbed;
    };
  }
  return {
    mocks,
    calls,
    restore() {
      for (const [, cls] of chosen) {
        const proto = (cls as unknown as { prototype: { send: { restoreRecording?: () => void } } })
          .prototype;
        proto.send.restoreRecording?.();
      }
      for (const m of Object.values(mocks)) m.restore();
    },
  };
}

export function fakePublisher(uri = IMAGE_URI): FunctionImagePublisher & { published: string[] } {
  const published: string[] = [];
  return {
    published,
    async publish(spec, _providers, opts): Promise<PushedImage> {
      published.push(`${spec.name}@${opts.region}`);
      return {
        imageUri: uri,
        digest: /@(sha256:[0-9a-f]{64})$/.exec(uri)?.[1] ?? `sha256:${"a".repeat(64)}`,
        bytesUploaded: 1,
        blobsSkipped: 0,
        blobsMounted: 0,
      };
    },
  };
}

export function target(opts: Partial<AwsTargetOptions> = {}): {
  t: AwsTarget;
  said: string[];
  publisher: ReturnType<typeof fakePublisher>;
} {
  const said: string[] = [];
  const publisher = fakePublisher();
  const t = new AwsTarget({
    region: REGION,
    publisher: async () => publisher,
    say: (l) => said.push(l),
    pace: NO_WAIT,
    env: {},
    ...opts,
  });
  return { t, said, publisher };
}

/** An SDK-shaped service error. */
export function awsErr(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status }, $fault: "client" });
}

export const names = (calls: Call[]) => calls.map((c) => `${c.service}.${c.command}`);
