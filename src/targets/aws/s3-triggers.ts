/**
 * Input and output buckets on S3: the bucket and folder marker SCAR makes, and the bucket
 * notification that sends uploads under the input folder to the function. The notification
 * configuration is the bucket's one document shared by every tool: scar reads it, changes only its
 * own entry and writes the rest back as it was.
 */
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type LambdaFunctionConfiguration,
  type NotificationConfiguration,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { TargetError } from "../target-error.js";
import { errorName, httpStatus } from "./errors.js";

/** Whether the bucket exists and is the account's; a bucket of another account is an error. */
export async function bucketState(
  s3: S3Client,
  bucket: string,
  account: string,
): Promise<"mine" | "missing"> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket, ExpectedBucketOwner: account }));
    return "mine";
  } catch (err) {
    const status = httpStatus(err);
    if (status === 404 || errorName(err) === "NotFound" || errorName(err) === "NoSuchBucket")
      return "missing";
    if (status === 403)
      throw new TargetError(
        `bucket '${bucket}' belongs to another AWS account (or your user may not read it): scar changes only buckets of account ${account}`,
        "S3 bucket names are global: choose another name for the input or output bucket",
      );
    if (status === 301)
      throw new TargetError(
        `bucket '${bucket}' is in another region than the function`,
        "S3 triggers need the bucket in the function's region: use another bucket or set lambda.region to the bucket's",
      );
    throw err;
  }
}

/** Creates the bucket (in the region, as S3 wants it said outside us-east-1) when it is missing. */
export async function ensureBucket(
  s3: S3Client,
  bucket: string,
  region: string,
  account: string,
): Promise<boolean> {
  if ((await bucketState(s3, bucket, account)) === "mine") return false;
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region !== "us-east-1"
          ? { CreateBucketConfiguration: { LocationConstraint: region as never } }
          : {}),
      }),
    );
    return true;
  } catch (err) {
    if (errorName(err) === "BucketAlreadyOwnedByYou") return false;
    if (errorName(err) === "BucketAlreadyExists")
      throw new TargetError(
        `bucket '${bucket}' belongs to another AWS account`,
        "S3 bucket names are global: choose another name for the input or output bucket",
      );
    throw err;
  }
}

/** SCAR's folder marker: an empty object `<folder>/` of type application/x-directory. */
export async function ensureFolder(s3: S3Client, bucket: string, folder: string): Promise<boolean> {
  const marker = folder.replace(/^\/+|\/+$/g, "");
  if (!marker) return false;
  const key = `${marker}/`;
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return false;
  } catch (err) {
    if (httpStatus(err) !== 404 && errorName(err) !== "NotFound") throw err;
  }
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: "",
      ContentLength: 0,
      ContentType: "application/x-directory",
    }),
  );
  return true;
}

/** The bucket's notification configuration without the SDK's response metadata. */
async function readNotifications(
  s3: S3Client,
  bucket: string,
  account: string,
): Promise<NotificationConfiguration> {
  const r = await s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: bucket, ExpectedBucketOwner: account }),
  );
  const out: NotificationConfiguration = {};
  if (r.TopicConfigurations?.length) out.TopicConfigurations = r.TopicConfigurations;
  if (r.QueueConfigurations?.length) out.QueueConfigurations = r.QueueConfigurations;
  if (r.LambdaFunctionConfigurations?.length)
    out.LambdaFunctionConfigurations = r.LambdaFunctionConfigurations;
  if (r.EventBridgeConfiguration) out.EventBridgeConfiguration = r.EventBridgeConfiguration;
  return out;
}

function prefixOf(c: LambdaFunctionConfiguration): string {
  return c.Filter?.Key?.FilterRules?.find((r) => r.Name?.toLowerCase() === "prefix")?.Value ?? "";
}

/** The same function, qualified or not (`...:function:f` and `...:function:f:$LATEST`). */
function sameFunction(a: string | undefined, arn: string): boolean {
  return a === arn || (a?.startsWith(`${arn}:`) ?? false);
}

/**
 * Adds the trigger `ObjectCreated` under `folder/` -> the function, keeping every other entry. An
 * entry of this function for the same folder (from an earlier init) is replaced, not doubled.
 */
export async function addTrigger(
  s3: S3Client,
  bucket: string,
  folder: string,
  functionArn: string,
  account: string,
): Promise<void> {
  const cfg = await readNotifications(s3, bucket, account);
  const prefix = folder ? `${folder.replace(/^\/+|\/+$/g, "")}/` : "";
  const kept = (cfg.LambdaFunctionConfigurations ?? []).filter(
    (c) => !(sameFunction(c.LambdaFunctionArn, functionArn) && prefixOf(c) === prefix),
  );
  const fnName = functionArn.split(":").pop() ?? "function";
  const mine: LambdaFunctionConfiguration = {
    Id: `scar-${fnName}${prefix ? `-${prefix.slice(0, -1).replace(/\//g, "-")}` : ""}`.slice(0, 255),
    LambdaFunctionArn: functionArn,
    Events: ["s3:ObjectCreated:*"],
    ...(prefix ? { Filter: { Key: { FilterRules: [{ Name: "prefix", Value: prefix }] } } } : {}),
  };
  try {
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        ExpectedBucketOwner: account,
        NotificationConfiguration: { ...cfg, LambdaFunctionConfigurations: [...kept, mine] },
      }),
    );
  } catch (err) {
    if (/overlap/i.test((err as Error).message ?? ""))
      throw new TargetError(
        `bucket '${bucket}' already sends uploads under '${prefix || "/"}' somewhere else (S3: ${(err as Error).message})`,
        "S3 allows one destination per folder and event: give this function another input folder",
      );
    throw err;
  }
}

/** Removes this function's triggers from the bucket; false when there were none (or no bucket). */
export async function removeTriggers(
  s3: S3Client,
  bucket: string,
  functionArn: string,
  account: string,
): Promise<boolean> {
  let cfg: NotificationConfiguration;
  try {
    cfg = await readNotifications(s3, bucket, account);
  } catch (err) {
    if (errorName(err) === "NoSuchBucket" || httpStatus(err) === 404) return false;
    throw err;
  }
  const all = cfg.LambdaFunctionConfigurations ?? [];
  const kept = all.filter((c) => !sameFunction(c.LambdaFunctionArn, functionArn));
  if (kept.length === all.length) return false;
  const next: NotificationConfiguration = { ...cfg };
  if (kept.length > 0) next.LambdaFunctionConfigurations = kept;
  else delete next.LambdaFunctionConfigurations;
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      ExpectedBucketOwner: account,
      NotificationConfiguration: next,
    }),
  );
  return true;
}
