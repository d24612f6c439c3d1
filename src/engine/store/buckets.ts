/** Bucket operations: list, create, head, delete, location, notification configuration. */
import { aclXml, cannedFromXml, requestAcl } from "./acl.js";
import { bucketOwner } from "./authorize.js";
import { S3Error } from "./errors.js";
import { type Ctx, callerUser, sendEmpty, sendXml } from "./http.js";
import { validBucketName } from "./keys.js";
import { notificationConfigXml, parseNotificationConfig } from "./notifications.js";
import { receiveSmall } from "./payload.js";
import { parseXml, text, xmlDocument } from "./xml.js";

/**
 * ListBuckets, with S3's paging (2024): `prefix`, `max-buckets` (1 to 10,000) and an opaque
 * `continuation-token` (here the last name given, base64url); `bucket-region` keeps only this
 * store's region, the only one it has. Names come in S3's order (bytes of UTF-8, which bucket names'
 * ASCII makes plain string order).
 */
export function listBuckets(ctx: Ctx): void {
  const prefix = ctx.query.get("prefix") ?? "";
  const maxRaw = ctx.query.get("max-buckets");
  const max = maxRaw === undefined ? 10000 : Number(maxRaw);
  if (!/^\d+$/.test(maxRaw ?? "1") || max < 1 || max > 10000)
    throw new S3Error("InvalidArgument", "Argument max-buckets must be an integer between 1 and 10000.", {
      ArgumentName: "max-buckets",
      ArgumentValue: maxRaw ?? "",
    });
  const token = ctx.query.get("continuation-token");
  let after = "";
  if (token !== undefined) {
    after = Buffer.from(token, "base64url").toString("utf8");
    if (token === "" || Buffer.from(after, "utf8").toString("base64url") !== token)
      throw new S3Error("InvalidArgument", "The continuation token provided is incorrect", {
        ArgumentName: "continuation-token",
        ArgumentValue: token,
      });
  }
  const region = ctx.query.get("bucket-region");
  const all = region !== undefined && region !== ctx.region ? [] : ctx.backend.listBuckets();
  // each user lists the buckets it owns (a key pair with an allowlist: those of them it may use)
  const me = callerUser(ctx);
  const allowed = ctx.caller?.buckets;
  const matching = all
    .filter((b) => bucketOwner(b, ctx.users.admin.id) === me.id && (!allowed || allowed.has(b.name)))
    .filter((b) => b.name.startsWith(prefix) && b.name > after)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const page = matching.slice(0, max);
  const next =
    matching.length > max
      ? Buffer.from(page[page.length - 1]!.name, "utf8").toString("base64url")
      : undefined;
  sendXml(
    ctx,
    200,
    xmlDocument("ListAllMyBucketsResult", {
      Owner: { ID: me.id, DisplayName: me.displayName },
      Buckets: {
        Bucket: page.map((b) => ({
          Name: b.name,
          CreationDate: new Date(b.created),
          BucketRegion: ctx.region,
        })),
      },
      ...(next ? { ContinuationToken: next } : {}),
      ...(ctx.query.has("prefix") ? { Prefix: prefix } : {}),
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
  const existing = ctx.backend.buckets.get(ctx.bucket);
  if (existing && bucketOwner(existing, ctx.users.admin.id) !== callerUser(ctx).id)
    throw new S3Error("BucketAlreadyExists", undefined, { BucketName: ctx.bucket });
  if (existing && ctx.region === "us-east-1") {
    sendEmpty(ctx, 200, { Location: `/${ctx.bucket}` });
    return;
  }
  // the creator is recorded even when it is the admin: which user is the admin may change (the first
  // key pair of the next start), and only records written before users existed should follow it
  await ctx.backend.createBucket(ctx.bucket, callerUser(ctx).id);
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
  const owner = bucketOwner(ctx.backend.bucket(ctx.bucket), ctx.users.admin.id);
  const acl = fromHeader ?? cannedFromXml(body.toString("utf8"), owner);
  await ctx.backend.setAcl(ctx.bucket, acl);
  sendEmpty(ctx, 200);
}

export function getBucketAcl(ctx: Ctx): void {
  const b = ctx.backend.bucket(ctx.bucket);
  sendXml(ctx, 200, aclXml(b.acl, ctx.users.user(b.owner)));
}
