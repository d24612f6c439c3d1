/**
 * ListObjects (v1) and ListObjectsV2 over a bucket's sorted keys: prefix, delimiter (common prefixes
 * count against max-keys as in S3), markers and opaque continuation tokens, encoding-type=url.
 */
import type { BucketState, ObjectMeta } from "./backend.js";
import { S3Error } from "./errors.js";
import { compareKeys, lowerBound, prefixSuccessor } from "./keys.js";
import { uriEncode } from "./sigv4.js";
import { type XmlObject, xmlDocument } from "./xml.js";

export interface ListParams {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  /** List strictly after this key (marker, start-after or the decoded continuation token). */
  after: string;
}

export interface ListPage {
  contents: ObjectMeta[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned (next marker / continuation point). */
  last: string | null;
}

export function listPage(b: BucketState, p: ListParams): ListPage {
  const { prefix, delimiter, maxKeys } = p;
  // S3: max-keys=0 lists nothing and is not truncated.
  if (maxKeys === 0) return { contents: [], commonPrefixes: [], truncated: false, last: null };
  const sorted = b.sorted;
  let i = lowerBound(sorted, prefix);
  if (p.after !== "" && compareKeys(p.after, prefix) >= 0) {
    // A marker that is a common prefix means "after everything under it".
    const isPrefixMarker =
      delimiter !== "" &&
      p.after.startsWith(prefix) &&
      p.after.endsWith(delimiter) &&
      p.after.indexOf(delimiter, prefix.length) === p.after.length - delimiter.length;
    if (isPrefixMarker) i = lowerBound(sorted, prefixSuccessor(p.after));
    else {
      i = lowerBound(sorted, p.after);
      if (sorted[i] === p.after) i++;
    }
  }
  const contents: ObjectMeta[] = [];
  const commonPrefixes: string[] = [];
  let last: string | null = null;
  let count = 0;
  while (i < sorted.length) {
    const key = sorted[i]!;
    if (!key.startsWith(prefix)) break;
    if (count >= maxKeys) return { contents, commonPrefixes, truncated: true, last };
    const d = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
    if (d >= 0) {
      const cp = key.slice(0, d + delimiter.length);
      commonPrefixes.push(cp);
      last = cp;
      i = lowerBound(sorted, prefixSuccessor(cp));
    } else {
      contents.push(b.objects.get(key)!);
      last = key;
      i++;
    }
    count++;
  }
  return { contents, commonPrefixes, truncated: false, last };
}

export function parseMaxKeys(v: string | undefined): number {
  if (v === undefined || v === "") return 1000;
  if (!/^-?\d+$/.test(v))
    throw new S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range", {
      ArgumentName: "max-keys",
      ArgumentValue: v,
    });
  const n = Number(v);
  if (n < 0)
    throw new S3Error("InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647", {
      ArgumentName: "maxKeys",
      ArgumentValue: v,
    });
  return Math.min(n, 1000);
}

export function checkEncodingType(v: string | undefined): boolean {
  if (v === undefined) return false;
  if (v.toLowerCase() !== "url") {
    throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", {
      ArgumentName: "encoding-type",
      ArgumentValue: v,
    });
  }
  return true;
}

export const OWNER = {
  ID: "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a",
  DisplayName: "scar",
};

/** An object's Owner element in listings (authorize.ts objectOwner and users.ts name it). */
export type OwnerOf = (o: ObjectMeta) => { ID: string; DisplayName: string };

function contentXml(o: ObjectMeta, enc: (s: string) => string, owner: OwnerOf | undefined): XmlObject {
  const x: XmlObject = {
    Key: enc(o.key),
    LastModified: new Date(o.mtime),
    ETag: `"${o.etag}"`,
  };
  if (o.checksum) x.ChecksumAlgorithm = o.checksum.alg.toUpperCase();
  x.Size = o.size;
  if (owner) x.Owner = owner(o);
  x.StorageClass = "STANDARD";
  return x;
}

export function encoder(url: boolean): (s: string) => string {
  return url ? (s) => uriEncode(s, true) : (s) => s;
}

export function listV2Xml(
  bucket: string,
  page: ListPage,
  p: ListParams,
  opts: { url: boolean; token?: string; startAfter?: string; fetchOwner: boolean; owner: OwnerOf },
): string {
  const enc = encoder(opts.url);
  return xmlDocument("ListBucketResult", {
    Name: bucket,
    Prefix: enc(p.prefix),
    KeyCount: page.contents.length + page.commonPrefixes.length,
    MaxKeys: p.maxKeys,
    Delimiter: p.delimiter ? enc(p.delimiter) : undefined,
    IsTruncated: page.truncated,
    Contents: page.contents.map((o) => contentXml(o, enc, opts.fetchOwner ? opts.owner : undefined)),
    CommonPrefixes: page.commonPrefixes.map((cp) => ({ Prefix: enc(cp) })),
    EncodingType: opts.url ? "url" : undefined,
    ContinuationToken: opts.token,
    NextContinuationToken: page.truncated && page.last !== null ? encodeToken(page.last) : undefined,
    StartAfter: opts.startAfter !== undefined ? enc(opts.startAfter) : undefined,
  });
}

export function listV1Xml(
  bucket: string,
  page: ListPage,
  p: ListParams,
  opts: { url: boolean; marker: string; owner: OwnerOf },
): string {
  const enc = encoder(opts.url);
  return xmlDocument("ListBucketResult", {
    Name: bucket,
    Prefix: enc(p.prefix),
    Marker: enc(opts.marker),
    MaxKeys: p.maxKeys,
    Delimiter: p.delimiter ? enc(p.delimiter) : undefined,
    IsTruncated: page.truncated,
    // S3 sends NextMarker only with a delimiter; without one clients use the last key.
    NextMarker: page.truncated && p.delimiter && page.last !== null ? enc(page.last) : undefined,
    Contents: page.contents.map((o) => contentXml(o, enc, opts.owner)),
    CommonPrefixes: page.commonPrefixes.map((cp) => ({ Prefix: enc(cp) })),
    EncodingType: opts.url ? "url" : undefined,
  });
}

export function encodeToken(last: string): string {
  return Buffer.from(`v1:${last}`, "utf8").toString("base64");
}

export function decodeToken(token: string): string {
  const s = Buffer.from(token, "base64").toString("utf8");
  if (!s.startsWith("v1:") || Buffer.from(s, "utf8").toString("base64") !== token) {
    throw new S3Error("InvalidArgument", "The continuation token provided is incorrect", {
      ArgumentName: "continuation-token",
      ArgumentValue: token,
    });
  }
  return s.slice(3);
}

/**
 * ListObjectVersions of a bucket that never had versioning: every object is its only version, with
 * the version id "null", as S3 answers it (tools that empty a bucket list versions first).
 */
export function listVersionsXml(
  bucket: string,
  page: ListPage,
  p: ListParams,
  opts: { url: boolean; keyMarker: string; owner: OwnerOf },
): string {
  const enc = encoder(opts.url);
  return xmlDocument("ListVersionsResult", {
    Name: bucket,
    Prefix: enc(p.prefix),
    KeyMarker: enc(opts.keyMarker),
    VersionIdMarker: "",
    NextKeyMarker: page.truncated && page.last !== null ? enc(page.last) : undefined,
    NextVersionIdMarker: page.truncated ? "null" : undefined,
    MaxKeys: p.maxKeys,
    Delimiter: p.delimiter ? enc(p.delimiter) : undefined,
    IsTruncated: page.truncated,
    Version: page.contents.map((o) => ({
      Key: enc(o.key),
      VersionId: "null",
      IsLatest: true,
      LastModified: new Date(o.mtime),
      ETag: `"${o.etag}"`,
      Size: o.size,
      Owner: opts.owner(o),
      StorageClass: "STANDARD",
    })),
    CommonPrefixes: page.commonPrefixes.map((cp) => ({ Prefix: enc(cp) })),
    EncodingType: opts.url ? "url" : undefined,
  });
}
