/**
 * The checksums S3 accepts in x-amz-checksum-* headers and aws-chunked trailers. Each is an
 * incremental digest so bodies are verified while they stream to disk.
 */
import { createHash, type Hash } from "node:crypto";
import zlib from "node:zlib";

export const CHECKSUM_ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export function isChecksumAlgorithm(s: string): s is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(s);
}

export interface Digest {
  update(data: Buffer): void;
  /** The raw digest (S3 headers carry it base64-encoded). */
  digest(): Buffer;
}

class HashDigest implements Digest {
  private readonly h: Hash;
  constructor(alg: string) {
    this.h = createHash(alg);
  }
  update(data: Buffer) {
    this.h.update(data);
  }
  digest() {
    return this.h.digest();
  }
}

// zlib.crc32 exists from Node 20.15; it is native and fast.
const nativeCrc32 = (zlib as unknown as { crc32?: (d: Buffer, v?: number) => number }).crc32;

function makeTable32(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}
const CRC32_TABLE = makeTable32(0xedb88320);
const CRC32C_TABLE = makeTable32(0x82f63b78);

class Crc32Digest implements Digest {
  private crc = 0;
  constructor(private readonly table: Uint32Array | null) {}
  update(data: Buffer) {
    if (this.table === null && nativeCrc32) {
      this.crc = nativeCrc32(data, this.crc);
      return;
    }
    const t = this.table ?? CRC32_TABLE;
    let c = ~this.crc >>> 0;
    for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = ~c >>> 0;
  }
  digest() {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.crc >>> 0);
    return b;
  }
}

// CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5), which newer SDKs may choose for full-object
// checksums. The table is built with BigInt once; the hot loop works on two 32-bit halves, because
// BigInt arithmetic per byte would be hundreds of times slower.
const [CRC64_HI, CRC64_LO] = (() => {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  const poly = 0x9a6c9329ac4bc9b5n;
  for (let i = 0n; i < 256n; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    hi[Number(i)] = Number(c >> 32n);
    lo[Number(i)] = Number(c & 0xffffffffn);
  }
  return [hi, lo];
})();

class Crc64NvmeDigest implements Digest {
  private hi = 0xffffffff;
  private lo = 0xffffffff;
  update(data: Buffer) {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < data.length; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ CRC64_LO[idx]!;
      hi = (hi >>> 8) ^ CRC64_HI[idx]!;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
  }
  digest() {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(~this.hi >>> 0, 0);
    b.writeUInt32BE(~this.lo >>> 0, 4);
    return b;
  }
}

export function newDigest(alg: ChecksumAlgorithm | "md5"): Digest {
  switch (alg) {
    case "crc32":
      return new Crc32Digest(null);
    case "crc32c":
      return new Crc32Digest(CRC32C_TABLE);
    case "crc64nvme":
      return new Crc64NvmeDigest();
    case "sha1":
      return new HashDigest("sha1");
    case "sha256":
      return new HashDigest("sha256");
    case "md5":
      return new HashDigest("md5");
  }
}

export function checksumOf(alg: ChecksumAlgorithm, data: Buffer): string {
  const d = newDigest(alg);
  d.update(data);
  return d.digest().toString("base64");
}
