/** Multipart uploads: Create, UploadPart, Complete (S3's "<md5 of part md5s>-<n>" ETag), Abort, ListParts, ListMultipartUploads. */
import { closeSync, openSync, rmSync } from "node:fs";
import { requestAcl } from "./acl.js";
import { bucketOwner } from "./authorize.js";
import type { ObjectChecksum, ObjectMeta, PartMeta, UploadMeta } from "./backend.js";
import { type ChecksumAlgorithm, isChecksumAlgorithm, newDigest } from "./checksums.js";
import { S3Error } from "./errors.js";
import { type Ctx, header, recordedOwner, sendEmpty, sendXml } from "./http.js";
import { compareKeys, validateKey } from "./keys.js";
import {
  checkPartChecksum,
  checksumElement,
  compositeChecksum,
  sameChecksum,
  uploadChecksumType,
} from "./multipart-checksums.js";
import {
  checkCopyConditions,
  copyToTemp,
  parseCopySource,
  parseTaggingHeader,
  requestWriteCondition,
  storedHeaders,
} from "./objects.js";
import { appendFiles, fdatasync, receiveSmall, receiveToFile } from "./payload.js";
import { asNode, children, parseXml, text, xmlDocument } from "./xml.js";

export const MIN_PART_SIZE = 5 * 1024 * 1024;

export async function createUpload(ctx: Ctx): Promise<void> {
  validateKey(ctx.key);
  const { headers, meta } = storedHeaders(ctx);
  const algHeader = header(ctx, "x-amz-checksum-algorithm")?.toLowerCase();
  let checksumAlg: ChecksumAlgorithm | undefined;
  if (algHeader !== undefined) {
    if (!isChecksumAlgorithm(algHeader)) {
      throw new S3Error(
        "InvalidRequest",
        "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
      );
    }
    checksumAlg = algHeader;
  }
  const checksumType = uploadChecksumType(checksumAlg, header(ctx, "x-amz-checksum-type"));
  const tags = parseTaggingHeader(header(ctx, "x-amz-tagging"));
  const acl = requestAcl(ctx);
  const u = await ctx.backend.createUpload({
    bucket: ctx.bucket,
    key: ctx.key,
    headers,
    meta,
    checksumAlg,
    checksumType,
    tags,
    ...(acl && acl !== "private" ? { acl } : {}),
    ...withOwner(recordedOwner(ctx, bucketOwner(ctx.backend.bucket(ctx.bucket), ctx.users.admin.id))),
  });
  const h: Record<string, string> = {};
  if (checksumAlg) h["x-amz-checksum-algorithm"] = checksumAlg.toUpperCase();
  if (checksumType) h["x-amz-checksum-type"] = checksumType;
  sendXml(
    ctx,
    200,
    xmlDocument("InitiateMultipartUploadResult", { Bucket: ctx.bucket, Key: ctx.key, UploadId: u.id }),
    h,
  );
}

function partNumber(v: string | undefined): number {
  const n = Number(v);
  if (!v || !/^\d+$/.test(v) || n < 1 || n > 10000) {
    throw new S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", {
      ArgumentName: "partNumber",
      ArgumentValue: v ?? "",
    });
  }
  return n;
}

export async function uploadPart(ctx: Ctx): Promise<void> {
  const n = partNumber(ctx.query.get("partNumber"));
  const u = ctx.backend.upload(ctx.bucket, ctx.key, ctx.query.get("uploadId")!);
  const begun = ctx.backend.beginPart();
  const tmp = ctx.backend.newTempPath();
  try {
    const body = await receiveToFile(ctx.req, ctx.signing, ctx.backend.abs(tmp), (b) =>
      ctx.backend.ensureRoom(b),
    );
    const p: PartMeta = { n, size: body.size, etag: body.md5, mtime: Date.now(), checksum: body.checksum };
    // Superseded by a later upload of the same part: received fine, so answered as S3 would.
    await ctx.backend.commitPart(u, p, tmp, begun);
    const h: Record<string, string> = { ETag: `"${p.etag}"` };
    if (body.checksum) h[`x-amz-checksum-${body.checksum.alg}`] = body.checksum.value;
    sendEmpty(ctx, 200, h);
  } finally {
    rmSync(ctx.backend.abs(tmp), { force: true });
  }
}

/** UploadPartCopy: a part made of (a range of) an existing object, as `aws s3 cp` uses for big copies. */
export async function uploadPartCopy(ctx: Ctx): Promise<void> {
  const n = partNumber(ctx.query.get("partNumber"));
  const u = ctx.backend.upload(ctx.bucket, ctx.key, ctx.query.get("uploadId")!);
  const begun = ctx.backend.beginPart();
  const src = parseCopySource(header(ctx, "x-amz-copy-source")!);
  const { meta: so, fd } = ctx.backend.openObject(src.bucket, src.key);
  const tmp = ctx.backend.newTempPath();
  let fdOpen = true;
  try {
    checkCopyConditions(ctx, so);
    let start = 0;
    let end = so.size - 1;
    const range = header(ctx, "x-amz-copy-source-range");
    if (range !== undefined) {
      const m = /^bytes=(\d+)-(\d+)$/.exec(range.trim());
      // A well-formed range past the source's end is S3's InvalidRange; a malformed one InvalidArgument.
      if (m && Number(m[1]) <= Number(m[2]) && Number(m[2]) >= so.size) {
        throw new S3Error("InvalidRange", undefined, {
          RangeRequested: range,
          ActualObjectSize: String(so.size),
        });
      }
      if (!m || Number(m[1]) > Number(m[2])) {
        throw new S3Error(
          "InvalidArgument",
          `Range specified is not valid for source object of size: ${so.size}`,
          {
            ArgumentName: "x-amz-copy-source-range",
            ArgumentValue: range,
          },
        );
      }
      start = Number(m[1]);
      end = Number(m[2]);
    }
    await ctx.backend.ensureRoom(so.size === 0 ? 0 : end - start + 1);
    const copied = await copyToTemp(fd, ctx.backend.abs(tmp), start, so.size === 0 ? undefined : end);
    closeSync(fd);
    fdOpen = false;
    const p: PartMeta = { n, size: copied.size, etag: copied.md5, mtime: Date.now() };
    await ctx.backend.commitPart(u, p, tmp, begun);
    sendXml(
      ctx,
      200,
      xmlDocument("CopyPartResult", { LastModified: new Date(p.mtime), ETag: `"${p.etag}"` }),
    );
  } finally {
    if (fdOpen) closeSync(fd);
    rmSync(ctx.backend.abs(tmp), { force: true });
  }
}

/** The object a completed upload made, while the key still holds it (see completeUpload). */
function completedBy(ctx: Ctx, id: string): ObjectMeta | undefined {
  const o = ctx.backend.bucket(ctx.bucket).objects.get(ctx.key);
  return o?.upload === id ? o : undefined;
}

function sendCompleted(ctx: Ctx, o: ObjectMeta): void {
  const result: Record<string, string> = {
    Location: `${ctx.baseUrl}/${ctx.bucket}/${encodeURIComponent(ctx.key).replace(/%2F/g, "/")}`,
    Bucket: ctx.bucket,
    Key: ctx.key,
    ETag: `"${o.etag}"`,
  };
  if (o.checksum) {
    result[checksumElement(o.checksum.alg)] = o.checksum.value;
    result.ChecksumType = o.checksum.value.includes("-") ? "COMPOSITE" : "FULL_OBJECT";
  }
  sendXml(ctx, 200, xmlDocument("CompleteMultipartUploadResult", result));
}

export async function completeUpload(ctx: Ctx): Promise<void> {
  const id = ctx.query.get("uploadId")!;
  const condition = requestWriteCondition(ctx);
  let u: UploadMeta;
  try {
    u = ctx.backend.upload(ctx.bucket, ctx.key, id);
  } catch (e) {
    // A retry after a success whose answer was lost (SDKs retry on a dropped connection): S3 answers
    // it as it answered the first time, as long as the key still holds what that upload made.
    const done = completedBy(ctx, id);
    if (!done) throw e;
    await receiveSmall(ctx.req, ctx.signing, undefined, true);
    sendCompleted(ctx, done);
    return;
  }
  const body = await receiveSmall(ctx.req, ctx.signing, undefined, true);
  const root = parseXml(body.toString("utf8"), "CompleteMultipartUpload");
  const alg = u.checksumAlg;
  const listed = children(root, "Part").map((raw) => {
    const node = asNode(raw);
    const n = Number(text(node, "PartNumber"));
    const etag = (text(node, "ETag") ?? "")
      .trim()
      .replace(/^"|"$/g, "")
      .replace(/&quot;/g, "");
    if (!Number.isInteger(n)) throw new S3Error("MalformedXML");
    return { n, etag, checksum: alg ? text(node, checksumElement(alg)) : undefined };
  });
  if (listed.length === 0) throw new S3Error("MalformedXML");
  const parts: PartMeta[] = [];
  for (let i = 0; i < listed.length; i++) {
    const { n, etag, checksum: given } = listed[i]!;
    if (i > 0 && n <= listed[i - 1]!.n) throw new S3Error("InvalidPartOrder", undefined, { UploadId: id });
    const p = u.parts.get(n);
    if (!p || p.etag !== etag)
      throw new S3Error("InvalidPart", undefined, { UploadId: id, PartNumber: String(n), ETag: etag });
    if (alg) checkPartChecksum(p, alg, given, id);
    parts.push(p);
  }
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    if (p.size < MIN_PART_SIZE) {
      throw new S3Error("EntityTooSmall", undefined, {
        ProposedSize: String(p.size),
        MinSizeAllowed: String(MIN_PART_SIZE),
        PartNumber: String(p.n),
        ETag: p.etag,
      });
    }
  }
  const md5 = newDigest("md5");
  for (const p of parts) md5.update(Buffer.from(p.etag, "hex"));
  const etag = `${md5.digest().toString("hex")}-${parts.length}`;
  const fullObject = alg && u.checksumType === "FULL_OBJECT" ? newDigest(alg) : undefined;
  let checksum: ObjectChecksum | undefined;
  if (alg && !fullObject) {
    const value = compositeChecksum(alg, parts);
    if (value) checksum = { alg, value };
  }
  await ctx.backend.ensureRoom(parts.reduce((n, p) => n + p.size, 0));
  const tmp = ctx.backend.newTempPath();
  const out = openSync(ctx.backend.abs(tmp), "wx", 0o644);
  let size = 0;
  try {
    size = await appendFiles(
      out,
      parts.map((p) => ctx.backend.abs(ctx.backend.partPath(id, p.n))),
      fullObject,
    );
    if (alg && fullObject) checksum = { alg, value: fullObject.digest().toString("base64") };
    const expected = alg ? header(ctx, `x-amz-checksum-${alg}`) : undefined;
    if (expected !== undefined && (!checksum || !sameChecksum(checksum.value, expected))) {
      throw new S3Error(
        "BadDigest",
        `The x-amz-checksum-${alg} you specified did not match the calculated checksum.`,
      );
    }
    await fdatasync(out);
    closeSync(out);
    const o = await ctx.backend.commitObject(
      ctx.bucket,
      {
        key: ctx.key,
        size,
        etag,
        headers: u.headers,
        meta: u.meta,
        checksum,
        parts: parts.length,
        partSizes: parts.map((p) => p.size),
        acl: u.acl,
        owner: u.owner,
        partChecksums:
          alg && parts.every((p) => p.checksum?.alg === alg)
            ? parts.map((p) => p.checksum!.value)
            : undefined,
        tags: u.tags,
      },
      tmp,
      "s3:ObjectCreated:CompleteMultipartUpload",
      ctx,
      id,
      condition,
    );
    ctx.backend.dropUploadFiles(id);
    sendCompleted(ctx, o);
  } catch (e) {
    try {
      closeSync(out);
    } catch {}
    throw e;
  } finally {
    rmSync(ctx.backend.abs(tmp), { force: true });
  }
}

export async function abortUpload(ctx: Ctx): Promise<void> {
  const u = ctx.backend.upload(ctx.bucket, ctx.key, ctx.query.get("uploadId")!);
  await ctx.backend.abortUpload(u.id);
  sendEmpty(ctx, 204);
}

export function listParts(ctx: Ctx): void {
  const u = ctx.backend.upload(ctx.bucket, ctx.key, ctx.query.get("uploadId")!);
  const marker = Number(ctx.query.get("part-number-marker") ?? 0) || 0;
  const max = Math.min(Number(ctx.query.get("max-parts") ?? 1000) || 1000, 1000);
  const all = [...u.parts.values()].sort((a, b) => a.n - b.n).filter((p) => p.n > marker);
  const page = all.slice(0, max);
  const truncated = all.length > max;
  sendXml(
    ctx,
    200,
    xmlDocument("ListPartsResult", {
      Bucket: u.bucket,
      Key: u.key,
      UploadId: u.id,
      PartNumberMarker: marker,
      NextPartNumberMarker: page.length ? page[page.length - 1]!.n : marker,
      MaxParts: max,
      IsTruncated: truncated,
      Part: page.map((p) => ({
        PartNumber: p.n,
        LastModified: new Date(p.mtime),
        ETag: `"${p.etag}"`,
        Size: p.size,
        ...(p.checksum ? { [`Checksum${p.checksum.alg.toUpperCase()}`]: p.checksum.value } : {}),
      })),
      Initiator: uploadOwner(ctx, u),
      Owner: uploadOwner(ctx, u),
      StorageClass: "STANDARD",
    }),
  );
}

export function listUploads(ctx: Ctx): void {
  ctx.backend.bucket(ctx.bucket);
  const prefix = ctx.query.get("prefix") ?? "";
  const keyMarker = ctx.query.get("key-marker") ?? "";
  const max = Math.min(Number(ctx.query.get("max-uploads") ?? 1000) || 1000, 1000);
  const all = [...ctx.backend.uploads.values()]
    .filter(
      (u) =>
        u.bucket === ctx.bucket &&
        u.key.startsWith(prefix) &&
        (keyMarker === "" || compareKeys(u.key, keyMarker) > 0),
    )
    .sort((a, b) => compareKeys(a.key, b.key) || a.initiated - b.initiated);
  const page = all.slice(0, max);
  const last = page[page.length - 1];
  sendXml(
    ctx,
    200,
    xmlDocument("ListMultipartUploadsResult", {
      Bucket: ctx.bucket,
      KeyMarker: keyMarker,
      UploadIdMarker: ctx.query.get("upload-id-marker") ?? "",
      NextKeyMarker: all.length > max && last ? last.key : undefined,
      NextUploadIdMarker: all.length > max && last ? last.id : undefined,
      Prefix: prefix || undefined,
      MaxUploads: max,
      IsTruncated: all.length > max,
      Upload: page.map((u) => ({
        Key: u.key,
        UploadId: u.id,
        Initiator: uploadOwner(ctx, u),
        Owner: uploadOwner(ctx, u),
        StorageClass: "STANDARD",
        Initiated: new Date(u.initiated),
      })),
    }),
  );
}

function withOwner(owner: string | undefined): { owner?: string } {
  return owner ? { owner } : {};
}

/** Who initiated an upload (and will own its object), as an Owner/Initiator element. */
function uploadOwner(ctx: Ctx, u: UploadMeta): { ID: string; DisplayName: string } {
  const b = ctx.backend.buckets.get(u.bucket);
  const user = ctx.users.user(u.owner ?? (b ? bucketOwner(b, ctx.users.admin.id) : undefined));
  return { ID: user.id, DisplayName: user.displayName };
}
