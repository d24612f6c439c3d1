/**
 * init and rm on AWS with the real S3 SDK against scar's embedded store (reached through
 * AWS_ENDPOINT_URL_S3, as a user reaches LocalStack): buckets, folder markers, and the bucket
 * notification configuration accepted and read back. Lambda, IAM, Logs, API Gateway, Batch and ECR
 * are mocked.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  HeadObjectCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { type RunningStore, startStore } from "../../../src/engine/store/index.js";
import { fakeAws, newState } from "./fake-aws.js";
import { ACCOUNT, fdl, mockAws, target } from "./fixtures.js";

const CREDS = { accessKeyId: "AKIDSCARAWSE2E", secretAccessKey: "scar/aws+e2e" };
const dir = mkdtempSync(join(tmpdir(), "scar-aws-e2e-"));
let store: RunningStore;
let s3: S3Client;
let mocked: ReturnType<typeof mockAws>;

before(async () => {
  // a regional endpoint, as S3 in eu-west-1: CreateBucket must say its location there
  store = await startStore({
    dataDir: join(dir, "store"),
    host: "127.0.0.1",
    port: 0,
    credentials: CREDS,
    region: "eu-west-1",
  });
  // the default credential chain and the SDK's own endpoint variable: nothing passed to the clients
  process.env.AWS_ACCESS_KEY_ID = CREDS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = CREDS.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_S3 = store.url;
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  s3 = new S3Client({ endpoint: store.url, region: "eu-west-1", forcePathStyle: true, credentials: CREDS });
  mocked = mockAws(["lambda", "iam", "logs", "apigateway", "batch", "ecr"]);
  fakeAws(mocked.mocks, newState());
});
after(async () => {
  mocked.restore();
  s3.destroy();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const FDL = `
functions:
  aws:
  - lambda:
      name: scar-cowsay
      init_script: cow.sh
      container: {image: grycap/cowsay}
      input: [{storage_provider: s3, path: e2e-in/input}]
      output: [{storage_provider: s3, path: e2e-out/output}]
`;

test("init makes the buckets and folders and merges its trigger into the store's configuration; rm takes it out", async () => {
  await s3.send(
    new CreateBucketCommand({
      Bucket: "e2e-in",
      CreateBucketConfiguration: { LocationConstraint: "eu-west-1" },
    }),
  );
  const foreign = {
    Id: "thumbnails",
    LambdaFunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:thumbnails`,
    Events: ["s3:ObjectCreated:*" as const],
    Filter: { Key: { FilterRules: [{ Name: "prefix" as const, Value: "images/" }] } },
  };
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: "e2e-in",
      NotificationConfiguration: { LambdaFunctionConfigurations: [foreign] },
    }),
  );

  const f = fdl(FDL);
  const { t, said } = target({ env: { AWS_ENDPOINT_URL_S3: store.url } });
  await t.prepare(f.functions[0]!);
  await t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false, prepared: true });

  // what the store kept, read back with another client
  const cfg = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: "e2e-in" }));
  const entries = cfg.LambdaFunctionConfigurations ?? [];
  assert.deepEqual(
    entries.map((e) => [e.Id, e.LambdaFunctionArn?.split(":").pop(), e.Filter?.Key?.FilterRules?.[0]?.Value]),
    [
      ["thumbnails", "thumbnails", "images/"],
      ["scar-scar-cowsay-input", "scar-cowsay", "input/"],
    ],
  );
  assert.deepEqual(entries[1]!.Events, ["s3:ObjectCreated:*"]);
  const marker = await s3.send(new HeadObjectCommand({ Bucket: "e2e-in", Key: "input/" }));
  assert.equal(marker.ContentType, "application/x-directory");
  await s3.send(new HeadObjectCommand({ Bucket: "e2e-out", Key: "output/" }));
  assert.ok(said.includes("Folder 'output/' created in bucket 'e2e-out'."));

  // init again after rm: one entry of scar's, never two; the foreign one always kept
  await t.remove("scar-cowsay");
  const afterRm = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: "e2e-in" }));
  assert.deepEqual(
    afterRm.LambdaFunctionConfigurations?.map((e) => e.Id),
    ["thumbnails"],
  );
  await t.deploy(f.functions[0]!, { storageProviders: f.storage_providers, update: false });
  const again = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: "e2e-in" }));
  assert.equal(again.LambdaFunctionConfigurations?.length, 2);
  // buckets and objects are never deleted
  await t.remove("scar-cowsay");
  await s3.send(new HeadObjectCommand({ Bucket: "e2e-in", Key: "input/" }));
  await t.close();
});
