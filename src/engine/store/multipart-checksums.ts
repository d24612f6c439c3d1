/**
 * Checksums of multipart uploads, as the S3 User Guide's "Checking object integrity" describes them:
 * - COMPOSITE: the checksum of the parts' checksums, written `<base64>-<parts>` (CRC32, CRC32C,
 *   SHA1, SHA256);
 * - FULL_OBJECT: the checksum of the whole object's bytes (CRC32, CRC32C, CRC64NVME; the only
 *   type CRC64NVME has).
 * CreateMultipartUpload picks both (x-amz-checksum-algorithm, x-amz-checksum-type);
 * CompleteMultipartUpload may restate each part's checksum and the object's (x-amz-checksum-<alg>):
 * what does not match is refused, so a client's end-to-end check means something here too.
 */
import type { PartMeta } from "./backend.js";
import { type ChecksumAlgorithm, newDigest } from "./checksums.js";
import { S3Error } from "./errors.js";

export type ChecksumType = "COMPOSITE" | "FULL_OBJECT";

const TYPES: Record<ChecksumAlgorithm, ChecksumType[]> = {
  crc32: ["COMPOSITE", "FULL_OBJECT"],
  crc32c: ["COMPOSITE", "FULL_OBJECT"],
  crc64nvme: ["FULL_OBJECT"],
  sha1: ["COMPOSITE"],
  sha256: ["COMPOSITE"],
};

/** The checksum type of a new upload: the x-amz-checksum-type header, or the algorithm's default. */
export function uploadChecksumType(
  alg: ChecksumAlgorithm | undefined,
  header: string | undefined,
): ChecksumType | undefined {
  if (header === undefined) return alg ? TYPES[alg][0] : undefined;
  const type = header.toUpperCase();
  if (type !== "COMPOSITE" && type !== "FULL_OBJECT") {
    throw new S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.");
  }
  if (!alg) {
    throw new S3Error(
      "InvalidRequest",
      "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
    );
  }
  if (!TYPES[alg].includes(type)) {
    throw new S3Error(
      "InvalidRequest",
      `The ${alg.toUpperCase()} checksum algorithm does not support the ${type} checksum type.`,
    );
  }
  return type;
}

/** `Checksum<ALG>` element name of a CompletedPart / result (ChecksumCRC64NVME, ChecksumSHA256...). */
export function checksumElement(alg: ChecksumAlgorithm): string {
  return `Checksum${alg.toUpperCase()}`;
}

/** The composite checksum of parts that all carry one of `alg`, or undefined when one does not. */
export function compositeChecksum(alg: ChecksumAlgorithm, parts: PartMeta[]): string | undefined {
  if (!parts.every((p) => p.checksum?.alg === alg)) return undefined;
  const d = newDigest(alg);
  for (const p of parts) d.update(Buffer.from(p.checksum!.value, "base64"));
  return `${d.digest().toString("base64")}-${parts.length}`;
}

/** Two statements of one checksum; the `-<parts>` suffix is optional on the client's side. */
export function sameChecksum(stored: string, given: string): boolean {
  const bare = (s: string) => s.trim().replace(/-\d+$/, "");
  return bare(stored) === bare(given);
}

/** A CompletedPart's checksum that differs from the part's: InvalidPart, as for a wrong ETag. */
export function checkPartChecksum(
  p: PartMeta,
  alg: ChecksumAlgorithm,
  given: string | undefined,
  uploadId: string,
): void {
  if (given === undefined) return;
  if (p.checksum?.alg !== alg || !sameChecksum(p.checksum.value, given)) {
    throw new S3Error(
      "InvalidPart",
      `The ${checksumElement(alg)} given for part ${p.n} does not match the part's`,
      {
        UploadId: uploadId,
        PartNumber: String(p.n),
      },
    );
  }
}
