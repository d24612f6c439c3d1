/** Bucket operations: list, create, head, delete, location, notification configuration. */
import { aclXml, cannedFromXml, requestAcl } from "./acl.js";
import { S3Error } from "./errors.js";
import { type Ctx, sendEmpty, sendXml } from "./http.js";
import { validBucketName } from "./keys.js";
import { OWNER } from "./listing.js";
import { notificationConfigXml, parseNotificationConfig } from "./notifications.js";
import { receiveSmall } from "./payload.js";
import { parseXml, text, xmlDocument } from "./xml.js";

export function listBuckets(ctx: Ctx): void {
  sendXml(
    ctx,
    200,
    xmlDocument("ListAllMyBucketsResult", {
      Owner: OWNER,
      Buckets: {
        Bucket: ctx.backend.listBuckets().map((b) => ({ Name: b.name, CreationDate: new Date(b.created) })),
      },
    }),
  );
}

export async function createBucket(ctx: Ctx): Promise<void> {
  if (!validBucketName(ctx.bucket))
    throw new S3Error("InvalidBucketName", undefined, { BucketName: ctx.bucket });
  const body = await receiveSmall(ctx.req, ctx.signing);
  if (body.length > 0) {
    const cfg = parseXml(body.toString("utf8"), "CreateBucketConfiguration");
    const loc = text(cfg, "LocationConstraint");
    if (loc !== undefined && loc !== "" && loc !== ctx.region) {
      throw new S3Error(
        "IllegalLocationConstraintException",
        `The ${loc} location constraint is incompatible for the region specific endpoint this request was sent to.`,
      );
    }
  }
  const acl = requestAcl(ctx);
  // S3 answers 200 to the owner re-creating a bucket in us-east-1 (its legacy rule, nothing
  // changes) and BucketAlreadyOwnedByYou in every other region.
  if (ctx.backend.buckets.has(ctx.bucket) && ctx.region === "us-east-1") {
    sendEmpty(ctx, 200, { Location: `/${ctx.bucket}` });
    return;
  }
  await ctx.backend.createBucket(ctx.bucket);
  if (acl && acl !== "private") await ctx.backend.setAcl(ctx.bucket, acl);
  sendEmpty(ctx, 200, { Location: `/${ctx.bucket}` });
}

export function headBucket(ctx: Ctx): void {
  ctx.backend.bucket(ctx.bucket);
  sendEmpty(ctx, 200, { "x-amz-bucket-region": ctx.region });
}

export async function deleteBucket(ctx: Ctx): Promise<void> {
  await ctx.backend.deleteBucket(ctx.bucket);
  sendEmpty(ctx, 204);
}

export function getBucketLocation(ctx: Ctx): void {
  ctx.backend.bucket(ctx.bucket);
  // S3 answers an empty LocationConstraint for us-east-1.
  const xml = xmlDocument("LocationConstraint", {}).replace(
    "</LocationConstraint>",
    `${ctx.region === "us-east-1" ? "" : ctx.region}</LocationConstraint>`,
  );
  sendXml(ctx, 200, xml);
}

export function getBucketNotification(ctx: Ctx): void {
  sendXml(ctx, 200, notificationConfigXml(ctx.backend.bucket(ctx.bucket).notification));
}

export async function putBucketNotification(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  const body = await receiveSmall(ctx.req, ctx.signing);
  const cfg = parseNotificationConfig(body.toString("utf8"));
  await ctx.backend.setNotification(ctx.bucket, cfg.rules.length || cfg.eventBridge ? cfg : null);
  sendEmpty(ctx, 200);
}

export function getBucketVersioning(ctx: Ctx): void {
  ctx.backend.bucket(ctx.bucket);
  sendXml(ctx, 200, xmlDocument("VersioningConfiguration", {}));
}

/** PutBucketAcl: a canned ACL by header, or an AccessControlPolicy body that amounts to one. */
export async function putBucketAcl(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  const fromHeader = requestAcl(ctx);
  const body = await receiveSmall(ctx.req, ctx.signing);
  const acl = fromHeader ?? cannedFromXml(body.toString("utf8"));
  await ctx.backend.setAcl(ctx.bucket, acl);
  sendEmpty(ctx, 200);
}

export function getBucketAcl(ctx: Ctx): void {
  sendXml(ctx, 200, aclXml(ctx.backend.bucket(ctx.bucket).acl));
}
