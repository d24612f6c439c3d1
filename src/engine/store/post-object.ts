/**
 * POST Object: an upload from an HTML form (multipart/form-data to the bucket's URL), the way a web
 * page lets a browser upload straight into a bucket (the AWS SDK's createPresignedPost, boto3's
 * generate_presigned_post). The form carries its own authority: a base64 policy document signed with
 * SigV4 (sigv4.ts verifyPostPolicy); the policy's expiration and conditions decide what may be
 * uploaded. Without a policy only a public-read-write bucket takes the upload, as on S3.
 * - fields before the file are read (64 KiB each at most); the file is streamed to disk, its size
 *   held to the policy's content-length-range; fields after the file are ignored, as S3 ignores them;
 * - every field but policy, x-amz-signature, file and x-ignore-* must be named by a condition;
 * - `${filename}` in the key is the file's name; the object gets Content-Type, Cache-Control,
 *   Content-Disposition, Content-Encoding, Expires, x-amz-meta-*, acl and tagging from the fields;
 * - the answer: a 303 to success_action_redirect, else success_action_status 200 (empty), 201
 *   (PostResponse XML) or 204 (the default); the upload is an s3:ObjectCreated:Post event.
 */
import { rmSync } from "node:fs";
import type { Readable } from "node:stream";
import busboy from "busboy";
import { anonymousCanWrite, CANNED_ACLS, type CannedAcl } from "./acl.js";
import { bucketOwner, mayWrite } from "./authorize.js";
import { STORED_HEADERS } from "./backend.js";
import { S3Error } from "./errors.js";
import { type Ctx, sendEmpty, sendXml } from "./http.js";
import { validateKey } from "./keys.js";
import { parseTaggingXml } from "./objects.js";
import { receiveFormFile } from "./payload.js";
import { type Credentials, verifyPostPolicy } from "./sigv4.js";
import { ANONYMOUS } from "./users.js";
import { xmlDocument } from "./xml.js";

const MAX_FIELD_BYTES = 64 * 1024;
// biome-ignore lint/suspicious/noTemplateCurlyInString: S3's literal placeholder in a form's key
const FILENAME = "${filename}";
/** S3's largest single upload: 5 GiB. */
const MAX_OBJECT_BYTES = 5 * 1024 ** 3;
/** Fields that no condition needs to name. */
const EXEMPT = new Set(["policy", "x-amz-signature", "file"]);

interface Form {
  /** Field names in lower case (S3 reads them case-insensitively), the first value of each. */
  fields: Map<string, string>;
  file: Readable;
  filename: string;
}

/** Reads the form up to its file part; the file's stream is then ready to be read. */
function readForm(ctx: Ctx): Promise<Form> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: ctx.req.headers,
        limits: { fieldSize: MAX_FIELD_BYTES, fields: 200, files: 1 },
      });
    } catch (e) {
      reject(
        new S3Error(
          "MalformedPOSTRequest",
          `The body of your POST request is not well-formed multipart/form-data: ${(e as Error).message}`,
        ),
      );
      return;
    }
    const fields = new Map<string, string>();
    let settled = false;
    const fail = (e: S3Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    bb.on("field", (name, value, info) => {
      if (settled) return; // after the file: ignored
      if (info.valueTruncated || info.nameTruncated)
        return fail(
          new S3Error(
            "MaxPostPreDataLengthExceededError",
            "Your POST request fields preceding the upload file were too large.",
            {
              MaxPostPreDataLength: String(MAX_FIELD_BYTES),
            },
          ),
        );
      const n = name.toLowerCase();
      if (!fields.has(n)) fields.set(n, value);
    });
    bb.on("file", (name, stream, info) => {
      if (settled || name.toLowerCase() !== "file") {
        stream.resume();
        return;
      }
      settled = true;
      resolve({ fields, file: stream, filename: info.filename ?? "" });
    });
    bb.on("error", (e) =>
      fail(
        new S3Error(
          "MalformedPOSTRequest",
          `The body of your POST request is not well-formed multipart/form-data: ${(e as Error).message}`,
        ),
      ),
    );
    bb.on("close", () =>
      fail(
        new S3Error("InvalidArgument", "POST requires exactly one file upload per request.", {
          ArgumentName: "file",
          ArgumentValue: "0",
        }),
      ),
    );
    ctx.req.pipe(bb);
  });
}

type Condition =
  | { kind: "eq" | "starts-with"; field: string; value: string; text: string }
  | { kind: "range"; min: number; max: number };

/** A condition as S3 quotes it in its error messages: `["eq", "$key", "x"]`. */
function conditionText(c: unknown[]): string {
  return `[${c.map((v) => JSON.stringify(v)).join(", ")}]`;
}

function invalidPolicy(why: string): S3Error {
  return new S3Error("InvalidPolicyDocument", `Invalid Policy: ${why}`);
}

/** The policy document: its expiration checked, its conditions parsed. */
function readPolicy(base64: string, now: number): Condition[] {
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    doc = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  } catch {
    throw invalidPolicy("Invalid JSON.");
  }
  if (typeof doc !== "object" || doc === null) throw invalidPolicy("Invalid JSON.");
  if (typeof doc.expiration !== "string") throw invalidPolicy("Policy missing expiration.");
  const expires = Date.parse(doc.expiration);
  if (Number.isNaN(expires)) throw invalidPolicy(`Invalid 'expiration' value: '${doc.expiration}'`);
  if (expires <= now) throw new S3Error("AccessDenied", "Invalid according to Policy: Policy expired.");
  if (!Array.isArray(doc.conditions)) throw invalidPolicy("Policy missing conditions.");
  const out: Condition[] = [];
  for (const c of doc.conditions) {
    if (Array.isArray(c)) {
      const op = String(c[0]).toLowerCase();
      if (op === "content-length-range") {
        const [min, max] = [Number(c[1]), Number(c[2])];
        if (
          c.length !== 3 ||
          !Number.isSafeInteger(min) ||
          !Number.isSafeInteger(max) ||
          min < 0 ||
          max < min
        )
          throw invalidPolicy(`Invalid content-length-range: ${JSON.stringify(c)}`);
        out.push({ kind: "range", min, max });
      } else if (
        (op === "eq" || op === "starts-with") &&
        c.length === 3 &&
        typeof c[1] === "string" &&
        c[1].startsWith("$")
      ) {
        out.push({
          kind: op,
          field: c[1].slice(1).toLowerCase(),
          value: String(c[2]),
          text: conditionText(c),
        });
      } else throw invalidPolicy(`Invalid Condition: ${JSON.stringify(c)}`);
    } else if (typeof c === "object" && c !== null && Object.keys(c).length === 1) {
      const [k, v] = Object.entries(c)[0]!;
      out.push({
        kind: "eq",
        field: k.toLowerCase(),
        value: String(v),
        text: conditionText(["eq", `$${k}`, v]),
      });
    } else throw invalidPolicy(`Invalid Simple-Condition: ${JSON.stringify(c)}`);
  }
  return out;
}

/** Every condition holds for the fields (the bucket from the URL); each field is named by one. */
function checkConditions(
  conditions: Condition[],
  fields: Map<string, string>,
  bucket: string,
): { min: number; max: number } {
  let range = { min: 0, max: MAX_OBJECT_BYTES };
  const named = new Set<string>();
  for (const c of conditions) {
    if (c.kind === "range") {
      range = { min: c.min, max: Math.min(c.max, MAX_OBJECT_BYTES) };
      continue;
    }
    named.add(c.field);
    const value = c.field === "bucket" ? bucket : fields.get(c.field);
    const holds =
      value !== undefined &&
      (c.kind === "eq"
        ? value === c.value
        : c.field === "content-type"
          ? value.split(",").every((v) => v.trim().startsWith(c.value))
          : value.startsWith(c.value));
    if (!holds)
      throw new S3Error("AccessDenied", `Invalid according to Policy: Policy Condition failed: ${c.text}`);
  }
  for (const name of fields.keys()) {
    if (EXEMPT.has(name) || name.startsWith("x-ignore-") || named.has(name)) continue;
    throw new S3Error("AccessDenied", `Invalid according to Policy: Extra input fields: ${name}`);
  }
  return range;
}

function objectProperties(fields: Map<string, string>) {
  const headers: Record<string, string> = {};
  for (const h of STORED_HEADERS) {
    const v = fields.get(h);
    if (v !== undefined && v !== "") headers[h] = v;
  }
  headers["content-type"] ??= "binary/octet-stream";
  const meta: Record<string, string> = {};
  let metaSize = 0;
  for (const [k, v] of fields) {
    if (!k.startsWith("x-amz-meta-")) continue;
    meta[k.slice("x-amz-meta-".length)] = v;
    metaSize += Buffer.byteLength(k) - "x-amz-meta-".length + Buffer.byteLength(v);
  }
  if (metaSize > 2048)
    throw new S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size", {
      Size: String(metaSize),
      MaxSizeAllowed: "2048",
    });
  const aclField = fields.get("acl");
  if (aclField !== undefined && !(CANNED_ACLS as readonly string[]).includes(aclField))
    throw new S3Error("InvalidArgument", undefined, { ArgumentName: "acl", ArgumentValue: aclField });
  const acl = aclField as CannedAcl | undefined;
  const tagging = fields.get("tagging");
  const tags = tagging ? parseTaggingXml(tagging, 10) : undefined;
  return { headers, meta, ...(acl && acl !== "private" ? { acl } : {}), ...(tags ? { tags } : {}) };
}

/** Where a browser goes after the upload: the redirect URL with bucket, key and etag added. */
function redirectTo(url: string, bucket: string, key: string, etag: string): string | undefined {
  try {
    const u = new URL(url);
    u.searchParams.set("bucket", bucket);
    u.searchParams.set("key", key);
    u.searchParams.set("etag", `"${etag}"`);
    return u.toString();
  } catch {
    return undefined;
  }
}

export async function postObject(ctx: Ctx, credentials: Credentials): Promise<void> {
  const bucket = ctx.backend.bucket(ctx.bucket);
  const form = await readForm(ctx);
  const { fields } = form;
  let tmp: string | undefined;
  let committed = false;
  try {
    let principal = "anonymous";
    // a form without a policy (a public-read-write bucket) writes as anonymous, as S3 records it
    let owner: string | undefined = ANONYMOUS.id;
    let range = { min: 0, max: MAX_OBJECT_BYTES };
    if (fields.has("policy")) {
      principal = verifyPostPolicy(fields, credentials, ctx.region);
      // the policy's signer must be allowed to write here, as a PUT it signed would be
      const signer = ctx.users.principal(principal);
      const admin = ctx.users.admin.id;
      if (
        !signer ||
        (signer.buckets && !signer.buckets.has(ctx.bucket)) ||
        !mayWrite(bucket, signer.user.id, admin)
      )
        throw new S3Error("AccessDenied");
      owner = signer.user.id !== bucketOwner(bucket, admin) ? signer.user.id : undefined;
      const conditions = readPolicy(fields.get("policy")!, Date.now());
      const withKey = new Map(fields);
      if (fields.has("key")) withKey.set("key", fields.get("key")!.replaceAll(FILENAME, form.filename));
      range = checkConditions(conditions, withKey, ctx.bucket);
    } else if (!anonymousCanWrite(bucket.acl)) {
      throw new S3Error(
        "AccessDenied",
        "Bucket POST must contain a policy and its signature unless the bucket is public-read-write",
      );
    }
    const rawKey = fields.get("key");
    if (rawKey === undefined)
      throw new S3Error(
        "InvalidArgument",
        "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
        {
          ArgumentName: "key",
          ArgumentValue: "",
        },
      );
    const key = rawKey.replaceAll(FILENAME, form.filename);
    validateKey(key);
    const props = objectProperties(fields);
    await ctx.backend.ensureRoom(Number(ctx.req.headers["content-length"]) || 0);
    tmp = ctx.backend.newTempPath();
    const body = await receiveFormFile(form.file, ctx.backend.abs(tmp), range);
    const o = await ctx.backend.commitObject(
      ctx.bucket,
      { key, size: body.size, etag: body.md5, ...props, ...(owner ? { owner } : {}) },
      tmp,
      "s3:ObjectCreated:Post",
      { ...ctx, principal },
    );
    committed = true;
    const location = `${ctx.baseUrl}/${ctx.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const headers = { ETag: `"${o.etag}"`, Location: location };
    const redirect = fields.get("success_action_redirect") ?? fields.get("redirect");
    const target = redirect ? redirectTo(redirect, ctx.bucket, key, o.etag) : undefined;
    if (target) return sendEmpty(ctx, 303, { ...headers, Location: target });
    const status = fields.get("success_action_status");
    if (status === "201")
      return sendXml(
        ctx,
        201,
        xmlDocument(
          "PostResponse",
          { Location: location, Bucket: ctx.bucket, Key: key, ETag: `"${o.etag}"` },
          null,
        ),
        headers,
      );
    sendEmpty(ctx, status === "200" ? 200 : 204, headers);
  } catch (e) {
    // The rest of the body is read and dropped, so the error reaches a client still sending.
    form.file.resume();
    throw e;
  } finally {
    // A committed temp file has been renamed into place; only a failed upload leaves one behind.
    if (tmp !== undefined && !committed) rmSync(ctx.backend.abs(tmp), { force: true });
  }
}
