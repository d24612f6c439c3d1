/**
 * Canned ACLs of buckets and objects, and what they let anonymous clients do, as S3 defines them:
 * a bucket's ACL governs listing it (and, for public-read-write, writing into it); an **object's**
 * ACL governs reading the object. So a private object in a public-read bucket stays private.
 * What signed requests of the store's users may do is authorize.ts's business; here are what
 * anonymous requests may do and the ACL documents. Grants by header (x-amz-grant-*) and ACL documents that
 * no canned ACL describes are refused as not implemented rather than half applied.
 */
import { S3Error } from "./errors.js";
import { type Ctx, header } from "./http.js";
import type { StoreUser } from "./users.js";
import { asNode, children, parseXml, text } from "./xml.js";

export const CANNED_ACLS = [
  "private",
  "public-read",
  "public-read-write",
  "authenticated-read",
  "bucket-owner-read",
  "bucket-owner-full-control",
] as const;
export type CannedAcl = (typeof CANNED_ACLS)[number];

const ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/** The x-amz-acl of a request, undefined when it has none. */
export function requestAcl(ctx: Ctx): CannedAcl | undefined {
  for (const h of Object.keys(ctx.req.headers)) {
    if (h.startsWith("x-amz-grant-")) {
      throw new S3Error(
        "NotImplemented",
        `${h} is not implemented by scar store: use a canned ACL (x-amz-acl)`,
      );
    }
  }
  const v = header(ctx, "x-amz-acl");
  if (v === undefined) return undefined;
  if (!(CANNED_ACLS as readonly string[]).includes(v)) {
    throw new S3Error("InvalidArgument", undefined, { ArgumentName: "x-amz-acl", ArgumentValue: v });
  }
  return v as CannedAcl;
}

export function anonymousCanRead(objectAcl: CannedAcl | undefined): boolean {
  return objectAcl === "public-read" || objectAcl === "public-read-write";
}

export function anonymousCanList(bucketAcl: CannedAcl | undefined): boolean {
  return bucketAcl === "public-read" || bucketAcl === "public-read-write";
}

export function anonymousCanWrite(bucketAcl: CannedAcl | undefined): boolean {
  return bucketAcl === "public-read-write";
}

function grantee(who: string | StoreUser): string {
  const xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
  return typeof who === "string"
    ? `<Grantee ${xsi} xsi:type="Group"><URI>${who}</URI></Grantee>`
    : `<Grantee ${xsi} xsi:type="CanonicalUser"><ID>${who.id}</ID><DisplayName>${who.displayName}</DisplayName></Grantee>`;
}

/**
 * The AccessControlPolicy document of a canned ACL (GetBucketAcl, GetObjectAcl): `owner` is the
 * bucket's or object's owner; for an object, `bucketOwner` is its bucket's, which bucket-owner-read
 * and bucket-owner-full-control name when it is someone else.
 */
export function aclXml(acl: CannedAcl | undefined, owner: StoreUser, bucketOwner: StoreUser = owner): string {
  const grants = [`<Grant>${grantee(owner)}<Permission>FULL_CONTROL</Permission></Grant>`];
  if (bucketOwner.id !== owner.id && acl === "bucket-owner-read")
    grants.push(`<Grant>${grantee(bucketOwner)}<Permission>READ</Permission></Grant>`);
  if (bucketOwner.id !== owner.id && acl === "bucket-owner-full-control")
    grants.push(`<Grant>${grantee(bucketOwner)}<Permission>FULL_CONTROL</Permission></Grant>`);
  if (acl === "public-read" || acl === "public-read-write") {
    grants.push(`<Grant>${grantee(ALL_USERS)}<Permission>READ</Permission></Grant>`);
  }
  if (acl === "public-read-write")
    grants.push(`<Grant>${grantee(ALL_USERS)}<Permission>WRITE</Permission></Grant>`);
  if (acl === "authenticated-read")
    grants.push(`<Grant>${grantee(AUTHENTICATED)}<Permission>READ</Permission></Grant>`);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Owner><ID>${owner.id}</ID><DisplayName>${owner.displayName}</DisplayName></Owner>` +
    `<AccessControlList>${grants.join("")}</AccessControlList></AccessControlPolicy>`
  );
}

/**
 * The canned ACL an AccessControlPolicy document (a PutBucketAcl/PutObjectAcl body) amounts to:
 * the owner's FULL_CONTROL plus AllUsers/AuthenticatedUsers grants that a canned ACL has.
 */
export function cannedFromXml(body: string, ownerId: string): CannedAcl {
  const root = parseXml(body, "AccessControlPolicy");
  const list = root.AccessControlList === undefined ? {} : asNode(root.AccessControlList);
  const groups = new Set<string>();
  for (const raw of children(list, "Grant")) {
    const g = asNode(raw);
    const who = g.Grantee === undefined ? {} : asNode(g.Grantee);
    const uri = text(who, "URI");
    const permission = text(g, "Permission") ?? "";
    if (uri === undefined) {
      if (text(who, "ID") !== ownerId && text(who, "ID") !== undefined) {
        throw new S3Error(
          "NotImplemented",
          "Grants to other accounts are not implemented by scar store: use a canned ACL (x-amz-acl)",
        );
      }
      continue;
    }
    groups.add(`${uri} ${permission}`);
  }
  const key = [...groups].sort().join("|");
  const known: Record<string, CannedAcl> = {
    "": "private",
    [`${ALL_USERS} READ`]: "public-read",
    [[`${ALL_USERS} READ`, `${ALL_USERS} WRITE`].sort().join("|")]: "public-read-write",
    [`${AUTHENTICATED} READ`]: "authenticated-read",
  };
  const acl = known[key];
  if (!acl)
    throw new S3Error(
      "NotImplemented",
      "This ACL is not one scar store implements: use a canned ACL (x-amz-acl)",
    );
  return acl;
}
