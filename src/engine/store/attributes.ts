/**
 * GetObjectAttributes (GET /<bucket>/<key>?attributes): an object's ETag, checksum, parts, storage
 * class and size in one call, the attributes named by x-amz-object-attributes. Parts are listed
 * only for a multipart object whose parts carried a checksum, as the S3 API reference says; their
 * count is given for any multipart object.
 */

import { S3Error } from "./errors.js";
import { type Ctx, header, httpDate, sendXml } from "./http.js";
import { checksumElement } from "./multipart-checksums.js";
import { type XmlObject, xmlDocument } from "./xml.js";

const ATTRIBUTES = new Set(["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]);

export function getObjectAttributes(ctx: Ctx): void {
  const o = ctx.backend.head(ctx.bucket, ctx.key);
  const raw = header(ctx, "x-amz-object-attributes");
  const wanted = new Set(
    (raw ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  );
  if (wanted.size === 0) {
    throw new S3Error(
      "InvalidRequest",
      "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
    );
  }
  for (const a of wanted) {
    if (!ATTRIBUTES.has(a))
      throw new S3Error("InvalidArgument", "Invalid attribute name specified.", {
        ArgumentName: "x-amz-object-attributes",
        ArgumentValue: a,
      });
  }
  const doc: XmlObject = {};
  if (wanted.has("ETag")) doc.ETag = o.etag;
  if (wanted.has("Checksum") && o.checksum) {
    doc.Checksum = {
      [checksumElement(o.checksum.alg)]: o.checksum.value,
      ChecksumType: o.checksum.value.includes("-") ? "COMPOSITE" : "FULL_OBJECT",
    };
  }
  if (wanted.has("ObjectParts") && o.parts) {
    const marker = Number(header(ctx, "x-amz-part-number-marker") ?? 0) || 0;
    const max = Math.min(Number(header(ctx, "x-amz-max-parts") ?? 1000) || 1000, 1000);
    const parts: XmlObject = { PartsCount: o.parts };
    if (o.checksum && o.partChecksums && o.partSizes) {
      const all = o.partSizes
        .map((size, i) => ({ n: i + 1, size, sum: o.partChecksums![i]! }))
        .filter((p) => p.n > marker);
      const page = all.slice(0, max);
      Object.assign(parts, {
        PartNumberMarker: marker,
        NextPartNumberMarker: page.length ? page[page.length - 1]!.n : marker,
        MaxParts: max,
        IsTruncated: all.length > max,
        Part: page.map((p) => ({ PartNumber: p.n, Size: p.size, [checksumElement(o.checksum!.alg)]: p.sum })),
      });
    }
    doc.ObjectParts = parts;
  }
  if (wanted.has("StorageClass")) doc.StorageClass = "STANDARD";
  if (wanted.has("ObjectSize")) doc.ObjectSize = o.size;
  sendXml(ctx, 200, xmlDocument("GetObjectAttributesResponse", doc), { "Last-Modified": httpDate(o.mtime) });
}
