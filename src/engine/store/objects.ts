/** Object operations: Put, Get (ranges, conditions), Head, Delete, DeleteObjects, Copy, listings. */
import { closeSync, createReadStream, openSync, readSync, rmSync } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { aclXml, cannedFromXml, requestAcl } from "./acl.js";
import { bucketOwner, objectOwner } from "./authorize.js";
import { type BucketState, type ObjectMeta, STORED_HEADERS } from "./backend.js";
import { newDigest } from "./checksums.js";
import { writeCondition } from "./conditions.js";
import { S3Error } from "./errors.js";
import { type Ctx, header, httpDate, recordedOwner, sendEmpty, sendXml } from "./http.js";
import { validateKey } from "./keys.js";
import {
  checkEncodingType,
  decodeToken,
  listPage,
  listV1Xml,
  listV2Xml,
  listVersionsXml,
  type OwnerOf,
  parseMaxKeys,
} from "./listing.js";
import { fdatasync, fdSink, receiveSmall, receiveToFile } from "./payload.js";
import { percentDecode } from "./sigv4.js";
import { asNode, children, parseXml, text, xmlDocument } from "./xml.js";

/** Content headers and x-amz-meta-* of a request, as S3 stores them. */
export function storedHeaders(ctx: Ctx): { headers: Record<string, string>; meta: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const h of STORED_HEADERS) {
    let v = header(ctx, h);
    if (v === undefined) continue;
    if (h === "content-encoding") {
      // aws-chunked is transfer framing, not a property of the object; the other codings are kept
      // as sent, spacing included ("aws-chunked, deflate, gzip" stores "deflate, gzip").
      v = v
        .split(",")
        .filter((s) => s.trim() !== "" && s.trim().toLowerCase() !== "aws-chunked")
        .join(",")
        .trim();
      if (v === "") continue;
    }
    headers[h] = v;
  }
  headers["content-type"] ??= "binary/octet-stream";
  const meta: Record<string, string> = {};
  for (let i = 0; i < ctx.req.rawHeaders.length; i += 2) {
    const name = ctx.req.rawHeaders[i]!.toLowerCase();
    if (name.startsWith("x-amz-meta-")) {
      const k = name.slice("x-amz-meta-".length);
      meta[k] =
        meta[k] === undefined ? ctx.req.rawHeaders[i + 1]! : `${meta[k]},${ctx.req.rawHeaders[i + 1]}`;
    }
  }
  let metaSize = 0;
  for (const [k, v] of Object.entries(meta)) metaSize += Buffer.byteLength(k) + Buffer.byteLength(v);
  if (metaSize > 2048) {
    throw new S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size", {
      Size: String(metaSize),
      MaxSizeAllowed: "2048",
    });
  }
  return { headers, meta };
}

export function objectHeaders(o: ObjectMeta, ctx: Ctx, partial = false): Record<string, string> {
  const h: Record<string, string> = {
    ETag: `"${o.etag}"`,
    "Last-Modified": httpDate(o.mtime),
    "Accept-Ranges": "bytes",
  };
  for (const [k, v] of Object.entries(o.headers)) h[k] = v;
  for (const [k, v] of Object.entries(o.meta)) h[`x-amz-meta-${k}`] = v;
  if (o.parts) h["x-amz-mp-parts-count"] = String(o.parts);
  if (o.tags?.length) h["x-amz-tagging-count"] = String(o.tags.length);
  // A checksum describes the whole object, so S3 sends none with a range.
  if (o.checksum && !partial && header(ctx, "x-amz-checksum-mode")?.toUpperCase() === "ENABLED") {
    h[`x-amz-checksum-${o.checksum.alg}`] = o.checksum.value;
    h["x-amz-checksum-type"] = o.checksum.value.includes("-") ? "COMPOSITE" : "FULL_OBJECT";
  }
  // response-* query parameters (used by presigned downloads) override stored headers.
  for (const [q, name] of [
    ["response-content-type", "content-type"],
    ["response-content-language", "content-language"],
    ["response-expires", "expires"],
    ["response-cache-control", "cache-control"],
    ["response-content-disposition", "content-disposition"],
    ["response-content-encoding", "content-encoding"],
  ] as const) {
    const v = ctx.query.get(q);
    if (v !== undefined) h[name] = v;
  }
  return h;
}

/** Parses x-amz-tagging ("k1=v1&k2=v2", URL-encoded) with S3's limits, in the order given. */
export function parseTaggingHeader(v: string | undefined): [string, string][] | undefined {
  if (v === undefined || v === "") return undefined;
  const tags: [string, string][] = [];
  for (const [k, val] of new URLSearchParams(v)) {
    if (tags.some(([have]) => have === k))
      throw new S3Error("InvalidTag", "Cannot provide multiple Tags with the same key", { TagKey: k });
    tags.push([k, val]);
  }
  checkTags(tags);
  return tags;
}

function checkTags(entries: [string, string][], max = 10): void {
  if (entries.length > max) throw new S3Error("InvalidTag", `Tags cannot be more than ${max}`);
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128 || v.length > 256) {
      throw new S3Error("InvalidTag", "The TagKey you have provided is invalid", { TagKey: k });
    }
  }
}

export function getObjectAcl(ctx: Ctx): void {
  const b = ctx.backend.bucket(ctx.bucket);
  const o = ctx.backend.head(ctx.bucket, ctx.key);
  const admin = ctx.users.admin.id;
  sendXml(
    ctx,
    200,
    aclXml(o.acl, ctx.users.user(objectOwner(b, o, admin)), ctx.users.user(bucketOwner(b, admin))),
  );
}

/** PutObjectAcl: a canned ACL by header or an AccessControlPolicy body that amounts to one. */
export async function putObjectAcl(ctx: Ctx): Promise<void> {
  const o = ctx.backend.head(ctx.bucket, ctx.key);
  const owner = objectOwner(ctx.backend.bucket(ctx.bucket), o, ctx.users.admin.id);
  const fromHeader = requestAcl(ctx);
  const body = await receiveSmall(ctx.req, ctx.signing);
  const acl = fromHeader ?? cannedFromXml(body.toString("utf8"), owner);
  await ctx.backend.updateObject(ctx.bucket, ctx.key, (o) => ({
    ...o,
    acl: acl === "private" ? undefined : acl,
  }));
  sendEmpty(ctx, 200);
}

export function getObjectTagging(ctx: Ctx): void {
  const o = ctx.backend.head(ctx.bucket, ctx.key);
  const tags = (o.tags ?? []).map(([Key, Value]) => ({ Key, Value }));
  sendXml(ctx, 200, xmlDocument("Tagging", { TagSet: { Tag: tags } }));
}

/** The <Tagging> document of PutObjectTagging / PutBucketTagging: its tags, in order, checked. */
async function taggingBody(ctx: Ctx, max: number): Promise<[string, string][]> {
  const body = await receiveSmall(ctx.req, ctx.signing);
  return parseTaggingXml(body.toString("utf8"), max);
}

/** A <Tagging> document (a request body, or POST Object's `tagging` field): its tags, in order, checked. */
export function parseTaggingXml(xml: string, max: number): [string, string][] {
  const root = parseXml(xml, "Tagging");
  const set = root.TagSet === undefined ? {} : asNode(root.TagSet);
  const tags: [string, string][] = [];
  for (const raw of children(set, "Tag")) {
    const node = asNode(raw);
    const k = text(node, "Key");
    if (k === undefined) throw new S3Error("MalformedXML");
    if (tags.some(([have]) => have === k))
      throw new S3Error("InvalidTag", "Cannot provide multiple Tags with the same key", { TagKey: k });
    tags.push([k, text(node, "Value") ?? ""]);
  }
  checkTags(tags, max);
  return tags;
}

export function getBucketTagging(ctx: Ctx): void {
  const tags = ctx.backend.bucket(ctx.bucket).tags;
  if (!tags) throw new S3Error("NoSuchTagSet", "The TagSet does not exist", { BucketName: ctx.bucket });
  sendXml(
    ctx,
    200,
    xmlDocument("Tagging", { TagSet: { Tag: tags.map(([Key, Value]) => ({ Key, Value })) } }),
  );
}

export async function putBucketTagging(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  await ctx.backend.setBucketTags(ctx.bucket, await taggingBody(ctx, 50));
  sendEmpty(ctx, 204);
}

export async function deleteBucketTagging(ctx: Ctx): Promise<void> {
  await ctx.backend.setBucketTags(ctx.bucket, null);
  sendEmpty(ctx, 204);
}

export async function putObjectTagging(ctx: Ctx): Promise<void> {
  ctx.backend.head(ctx.bucket, ctx.key);
  const tags = await taggingBody(ctx, 10);
  await ctx.backend.updateObject(ctx.bucket, ctx.key, (o) => ({ ...o, tags }));
  sendEmpty(ctx, 200);
}

export async function deleteObjectTagging(ctx: Ctx): Promise<void> {
  await ctx.backend.updateObject(ctx.bucket, ctx.key, (o) => ({ ...o, tags: undefined }));
  sendEmpty(ctx, 204);
}

export async function putObject(ctx: Ctx): Promise<void> {
  validateKey(ctx.key);
  const b = ctx.backend.bucket(ctx.bucket);
  const { headers, meta } = storedHeaders(ctx);
  const tags = parseTaggingHeader(header(ctx, "x-amz-tagging"));
  const acl = requestAcl(ctx);
  const condition = requestWriteCondition(ctx);
  const tmp = ctx.backend.newTempPath();
  const body = await receiveToFile(ctx.req, ctx.signing, ctx.backend.abs(tmp), (n) =>
    ctx.backend.ensureRoom(n),
  );
  let committed = false;
  try {
    if (!ctx.backend.buckets.has(b.name))
      throw new S3Error("NoSuchBucket", undefined, { BucketName: b.name });
    const o = await ctx.backend.commitObject(
      ctx.bucket,
      {
        key: ctx.key,
        size: body.size,
        etag: body.md5,
        headers,
        meta,
        checksum: body.checksum,
        tags,
        acl,
        owner: recordedOwner(ctx, bucketOwner(b, ctx.users.admin.id)),
      },
      tmp,
      "s3:ObjectCreated:Put",
      ctx,
      undefined,
      condition,
    );
    committed = true;
    const h: Record<string, string> = { ETag: `"${o.etag}"` };
    if (body.checksum) h[`x-amz-checksum-${body.checksum.alg}`] = body.checksum.value;
    sendEmpty(ctx, 200, h);
  } finally {
    // A committed temp file has been renamed into place; only a failed PUT leaves one behind.
    if (!committed) rmSync(ctx.backend.abs(tmp), { force: true });
  }
}

/** If-Match / If-None-Match of a write request (checked when the object is committed). */
export function requestWriteCondition(ctx: Ctx) {
  return writeCondition({
    "if-match": header(ctx, "if-match"),
    "if-none-match": header(ctx, "if-none-match"),
  });
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(",").some((t) => {
    const s = t.trim().replace(/^W\//, "");
    return s === "*" || s.replace(/^"|"$/g, "") === etag;
  });
}

/**
 * If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since, with S3's precedence. The 304
 * or 412 carries the object's ETag and Last-Modified, so a cache can tell what it has.
 */
function checkConditions(ctx: Ctx, o: ObjectMeta): void {
  try {
    evaluateConditions(ctx, o);
  } catch (e) {
    if (e instanceof S3Error) e.headers = { ETag: `"${o.etag}"`, "Last-Modified": httpDate(o.mtime) };
    throw e;
  }
}

function evaluateConditions(ctx: Ctx, o: ObjectMeta): void {
  const ifMatch = header(ctx, "if-match");
  const ifNoneMatch = header(ctx, "if-none-match");
  const ifModSince = header(ctx, "if-modified-since");
  const ifUnmodSince = header(ctx, "if-unmodified-since");
  const seconds = Math.floor(o.mtime / 1000) * 1000;
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, o.etag))
      throw new S3Error("PreconditionFailed", undefined, { Condition: "If-Match" });
  } else if (ifUnmodSince !== undefined) {
    const t = Date.parse(ifUnmodSince);
    if (!Number.isNaN(t) && seconds > t)
      throw new S3Error("PreconditionFailed", undefined, { Condition: "If-Unmodified-Since" });
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, o.etag)) throw new S3Error("NotModified");
  } else if (ifModSince !== undefined) {
    const t = Date.parse(ifModSince);
    if (!Number.isNaN(t) && seconds <= t) throw new S3Error("NotModified");
  }
}

/** Parses a single byte range; null means "whole object" (no header, or a form S3 ignores). */
function parseRange(v: string | undefined, size: number): { start: number; end: number } | null {
  if (v === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) throw rangeError(v, size);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== "" && Number(m[2]) < start) return null;
  }
  if (start >= size) throw rangeError(v, size);
  return { start, end };
}

/**
 * The byte range of `?partNumber=N` (GET/HEAD): part N of a multipart object as it was uploaded, or
 * the whole object for part 1 of any other. Null without the parameter. Downloaders fetch parts this
 * way and join them, so a wrong answer here is a corrupt file there: every doubt is an error.
 */
function partRange(ctx: Ctx, o: ObjectMeta): { start: number; end: number } | null {
  const v = ctx.query.get("partNumber");
  if (v === undefined) return null;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 10000) {
    throw new S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", {
      ArgumentName: "partNumber",
      ArgumentValue: v,
    });
  }
  if (header(ctx, "range") !== undefined) {
    throw new S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
  }
  const count = o.parts ?? 1;
  if (n > count)
    throw new S3Error("InvalidPartNumber", undefined, {
      PartNumberRequested: v,
      ActualPartCount: String(count),
    });
  if (!o.parts) return { start: 0, end: o.size - 1 };
  if (!o.partSizes || o.partSizes.length !== o.parts) {
    throw new S3Error(
      "NotImplemented",
      "This object's part sizes were not recorded (it was uploaded by an older scar store): fetch it with a Range instead",
    );
  }
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += o.partSizes[i]!;
  return { start, end: start + o.partSizes[n - 1]! - 1 };
}

function rangeError(range: string, size: number): S3Error {
  return new S3Error("InvalidRange", undefined, { RangeRequested: range, ActualObjectSize: String(size) });
}

/** A Range header's or a partNumber's bytes; null for the whole object (an empty one has no range). */
function requestedRange(ctx: Ctx, o: ObjectMeta): { start: number; end: number } | null {
  const part = partRange(ctx, o);
  if (part) return o.size === 0 ? null : part;
  return parseRange(header(ctx, "range"), o.size);
}

const SMALL_READ = 256 * 1024;

export async function getObject(ctx: Ctx): Promise<void> {
  const { meta: o, fd } = ctx.backend.openObject(ctx.bucket, ctx.key);
  let handedOff = false;
  try {
    checkConditions(ctx, o);
    const range = requestedRange(ctx, o);
    const h = objectHeaders(o, ctx, range !== null);
    const start = range?.start ?? 0;
    const end = range ? range.end : o.size - 1;
    h["Content-Length"] = String(o.size === 0 ? 0 : end - start + 1);
    if (range) h["Content-Range"] = `bytes ${start}-${end}/${o.size}`;
    ctx.res.writeHead(range ? 206 : 200, h);
    if (o.size === 0) {
      ctx.res.end();
      return;
    }
    const length = end - start + 1;
    if (length <= SMALL_READ) {
      // Small objects: one read and one write cost far less than a stream pipeline.
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, start + got);
        if (n === 0) break;
        got += n;
      }
      ctx.res.end(got === length ? buf : buf.subarray(0, got));
      return;
    }
    handedOff = true;
    const stream = createReadStream("", { fd, start, end, autoClose: true, highWaterMark: 1 << 20 });
    await pipeline(stream, ctx.res).catch(() => {
      // The client went away; nothing to report to it.
    });
  } finally {
    if (!handedOff) closeSync(fd);
  }
}

export function headObject(ctx: Ctx): void {
  const o = ctx.backend.head(ctx.bucket, ctx.key);
  checkConditions(ctx, o);
  const range = requestedRange(ctx, o);
  const h = objectHeaders(o, ctx, range !== null);
  if (range) {
    h["Content-Length"] = String(range.end - range.start + 1);
    h["Content-Range"] = `bytes ${range.start}-${range.end}/${o.size}`;
  } else h["Content-Length"] = String(o.size);
  ctx.res.writeHead(range ? 206 : 200, h);
  ctx.res.end();
}

export async function deleteObject(ctx: Ctx): Promise<void> {
  await ctx.backend.deleteObject(ctx.bucket, ctx.key, ctx);
  sendEmpty(ctx, 204);
}

export async function deleteObjects(ctx: Ctx): Promise<void> {
  ctx.backend.bucket(ctx.bucket);
  const hasChecksum = Object.keys(ctx.req.headers).some(
    (h) => h.startsWith("x-amz-checksum-") || h === "x-amz-sdk-checksum-algorithm" || h === "x-amz-trailer",
  );
  if (header(ctx, "content-md5") === undefined && !hasChecksum) {
    throw new S3Error("InvalidRequest", "Missing required header for this request: Content-MD5");
  }
  const body = await receiveSmall(ctx.req, ctx.signing);
  const root = parseXml(body.toString("utf8"), "Delete");
  const quiet = text(root, "Quiet")?.trim().toLowerCase() === "true";
  const objects = children(root, "Object").map(asNode);
  if (objects.length === 0 || objects.length > 1000) throw new S3Error("MalformedXML");
  const deleted: { Key: string }[] = [];
  const failed: { Key: string; Code: string; Message: string }[] = [];
  for (const node of objects) {
    const key = text(node, "Key");
    if (key === undefined) throw new S3Error("MalformedXML");
    try {
      validateKey(key);
      await ctx.backend.deleteObject(ctx.bucket, key, ctx);
      deleted.push({ Key: key });
    } catch (e) {
      if (!(e instanceof S3Error)) throw e;
      failed.push({ Key: key, Code: e.code, Message: e.message });
    }
  }
  sendXml(ctx, 200, xmlDocument("DeleteResult", { Deleted: quiet ? [] : deleted, Error: failed }));
}

/** Parses x-amz-copy-source: "[/]bucket/key[?versionId=...]", URL-encoded. */
export function parseCopySource(v: string): { bucket: string; key: string } {
  const noVersion = v.split("?")[0]!;
  const s = percentDecode(noVersion).replace(/^\//, "");
  const i = s.indexOf("/");
  if (i <= 0 || i === s.length - 1) {
    throw new S3Error(
      "InvalidArgument",
      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
      {
        ArgumentName: "x-amz-copy-source",
        ArgumentValue: v,
      },
    );
  }
  return { bucket: s.slice(0, i), key: s.slice(i + 1) };
}

export function checkCopyConditions(ctx: Ctx, o: ObjectMeta): void {
  const m = header(ctx, "x-amz-copy-source-if-match");
  const nm = header(ctx, "x-amz-copy-source-if-none-match");
  const ms = header(ctx, "x-amz-copy-source-if-modified-since");
  const us = header(ctx, "x-amz-copy-source-if-unmodified-since");
  const seconds = Math.floor(o.mtime / 1000) * 1000;
  const fail = () => new S3Error("PreconditionFailed", undefined, { Condition: "x-amz-copy-source-If-*" });
  if (m !== undefined && !etagMatches(m, o.etag)) throw fail();
  if (nm !== undefined && etagMatches(nm, o.etag)) throw fail();
  if (us !== undefined && m === undefined && seconds > Date.parse(us)) throw fail();
  if (ms !== undefined && nm === undefined && seconds <= Date.parse(ms)) throw fail();
}

/** Copies the bytes behind an open fd into a new temp file; returns size and MD5. */
export async function copyToTemp(
  fd: number,
  tmpAbs: string,
  start = 0,
  end?: number,
): Promise<{ size: number; md5: string }> {
  const md5 = newDigest("md5");
  let size = 0;
  const out = openSync(tmpAbs, "wx", 0o644);
  try {
    await pipeline(
      createReadStream("", { fd, start, end, autoClose: false, highWaterMark: 1 << 20 }),
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          md5.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      }),
      fdSink(out),
    );
    await fdatasync(out);
  } finally {
    closeSync(out);
  }
  return { size, md5: md5.digest().toString("hex") };
}

export async function copyObject(ctx: Ctx): Promise<void> {
  validateKey(ctx.key);
  ctx.backend.bucket(ctx.bucket);
  const src = parseCopySource(header(ctx, "x-amz-copy-source")!);
  const directive = (header(ctx, "x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") {
    throw new S3Error("InvalidArgument", "Unknown metadata directive.", {
      ArgumentName: "x-amz-metadata-directive",
      ArgumentValue: directive,
    });
  }
  if (src.bucket === ctx.bucket && src.key === ctx.key && directive === "COPY") {
    throw new S3Error(
      "InvalidRequest",
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const condition = requestWriteCondition(ctx);
  // As in S3, a copy does not take the source's ACL: it gets x-amz-acl, or private.
  const acl = requestAcl(ctx);
  const { meta: so, fd } = ctx.backend.openObject(src.bucket, src.key);
  const tmp = ctx.backend.newTempPath();
  try {
    try {
      checkCopyConditions(ctx, so);
      await ctx.backend.ensureRoom(so.size);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    const copied = await copyToTemp(fd, ctx.backend.abs(tmp));
    closeSync(fd);
    const replaced = directive === "REPLACE" ? storedHeaders(ctx) : { headers: so.headers, meta: so.meta };
    const o = await ctx.backend.commitObject(
      ctx.bucket,
      {
        key: ctx.key,
        size: copied.size,
        // A copy of a multipart object keeps its ETag in S3 only when copied whole; we keep it too.
        etag: so.parts ? so.etag : copied.md5,
        headers: replaced.headers,
        meta: replaced.meta,
        checksum: so.checksum && !so.checksum.value.includes("-") ? so.checksum : undefined,
        parts: so.parts,
        partSizes: so.partSizes,
        acl,
        owner: recordedOwner(ctx, bucketOwner(ctx.backend.bucket(ctx.bucket), ctx.users.admin.id)),
        tags:
          (header(ctx, "x-amz-tagging-directive") ?? "COPY").toUpperCase() === "REPLACE"
            ? parseTaggingHeader(header(ctx, "x-amz-tagging"))
            : so.tags,
      },
      tmp,
      "s3:ObjectCreated:Copy",
      ctx,
      undefined,
      condition,
    );
    sendXml(
      ctx,
      200,
      xmlDocument("CopyObjectResult", { LastModified: new Date(o.mtime), ETag: `"${o.etag}"` }),
    );
  } finally {
    rmSync(ctx.backend.abs(tmp), { force: true });
  }
}

export function listObjects(ctx: Ctx, v2: boolean): void {
  const b = ctx.backend.bucket(ctx.bucket);
  const q = ctx.query;
  const url = checkEncodingType(q.get("encoding-type"));
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const maxKeys = parseMaxKeys(q.get("max-keys"));
  if (v2) {
    const token = q.get("continuation-token");
    const startAfter = q.get("start-after");
    // An empty token is no token (S3 lists from the start and echoes it empty).
    const after = token !== undefined && token !== "" ? decodeToken(token) : (startAfter ?? "");
    const params = { prefix, delimiter, maxKeys, after };
    const page = listPage(b, params);
    sendXml(
      ctx,
      200,
      listV2Xml(b.name, page, params, {
        url,
        token,
        startAfter,
        fetchOwner: q.get("fetch-owner") === "true",
        owner: ownerOf(ctx, b),
      }),
    );
  } else {
    const marker = q.get("marker") ?? "";
    const params = { prefix, delimiter, maxKeys, after: marker };
    const page = listPage(b, params);
    sendXml(ctx, 200, listV1Xml(b.name, page, params, { url, marker, owner: ownerOf(ctx, b) }));
  }
}

/** ListObjectVersions: buckets are never versioned here, so each object is its "null" version. */
export function listObjectVersions(ctx: Ctx): void {
  const b = ctx.backend.bucket(ctx.bucket);
  const q = ctx.query;
  const url = checkEncodingType(q.get("encoding-type"));
  const keyMarker = q.get("key-marker") ?? "";
  const params = {
    prefix: q.get("prefix") ?? "",
    delimiter: q.get("delimiter") ?? "",
    maxKeys: parseMaxKeys(q.get("max-keys")),
    after: keyMarker,
  };
  sendXml(
    ctx,
    200,
    listVersionsXml(b.name, listPage(b, params), params, { url, keyMarker, owner: ownerOf(ctx, b) }),
  );
}

/** The Owner element of a bucket's objects in listings. */
function ownerOf(ctx: Ctx, b: BucketState): OwnerOf {
  const admin = ctx.users.admin.id;
  return (o) => {
    const u = ctx.users.user(objectOwner(b, o, admin));
    return { ID: u.id, DisplayName: u.displayName };
  };
}
