/**
 * Receiving a request body: every payload mode SigV4 allows (signed hex SHA-256, UNSIGNED-PAYLOAD,
 * aws-chunked with chunk signatures, aws-chunked with trailing checksums), streamed to a temp file
 * in constant memory while the ETag (MD5), Content-MD5, x-amz-content-sha256 and x-amz-checksum-*
 * are computed. Nothing is committed unless every check passes.
 */

import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  fdatasync as fdatasyncCb,
  open as openCb,
  rmSync,
  write,
  writeSync,
} from "node:fs";
import type { IncomingMessage } from "node:http";
import { type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { type ChecksumAlgorithm, type Digest, isChecksumAlgorithm, newDigest } from "./checksums.js";
import { AwsChunkedDecoder } from "./chunked.js";
import { S3Error } from "./errors.js";
import { RemoteHash } from "./hashworker.js";
import { type SigningContext, UNSIGNED_PAYLOAD } from "./sigv4.js";
import { insufficientStorage, isDiskFull } from "./space.js";

export interface ReceivedBody {
  size: number;
  /** MD5 hex (the ETag of a single-part object). */
  md5: string;
  /** The x-amz-checksum-* the client sent and we verified, if any. */
  checksum?: { alg: ChecksumAlgorithm; value: string };
}

export const fdatasync = promisify(fdatasyncCb);

function writeAll(fd: number, buf: Buffer, cb: (e?: Error | null) => void): void {
  write(fd, buf, 0, buf.length, null, (e, n) => {
    if (e) cb(e);
    else if (n < buf.length) writeAll(fd, buf.subarray(n), cb);
    else cb();
  });
}

/**
 * A stream writing to an fd it does not own. fs.WriteStream closes its fd when a failed pipeline
 * destroys it, even with autoClose off; the caller's close then failed with EBADF (hiding the real
 * error, a full disk, and skipping the temp file's removal) or could close a reused descriptor.
 */
export function fdSink(fd: number): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb) {
      writeAll(fd, chunk, cb);
    },
    writev(chunks, cb) {
      writeAll(fd, Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb);
    },
  });
}
/**
 * Appends whole files to an fd, in order, and returns the bytes written (a multipart upload's
 * parts into its object), feeding `digest` on the way. No stream is reused: a Writable given to
 * pipeline() with `end: false` once per part kept four listeners per use, and past ten parts Node
 * warned of a leak (MaxListenersExceededWarning, issue 18).
 */
export async function appendFiles(fd: number, paths: string[], digest?: Digest): Promise<number> {
  let size = 0;
  for (const path of paths) {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      digest?.update(buf);
      await new Promise<void>((resolve, reject) => writeAll(fd, buf, (e) => (e ? reject(e) : resolve())));
      size += buf.length;
    }
  }
  return size;
}

const openFile = promisify(openCb) as (path: string, flags: string, mode: number) => Promise<number>;

const STREAMING = new Set([
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
]);

class Hasher extends Transform {
  size = 0;
  constructor(
    private readonly digests: Digest[],
    private readonly remote: RemoteHash | null,
  ) {
    super();
  }
  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.remote) this.remote.update(chunk);
    else for (const d of this.digests) d.update(chunk);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
    this.update(chunk);
    const wait = this.remote?.ready();
    if (wait) wait.then(() => cb(null, chunk));
    else cb(null, chunk);
  }
  /** Waits for the worker's digests (a no-op when hashing here). */
  async done(): Promise<void> {
    if (!this.remote) return;
    const values = await this.remote.finish();
    this.digests.forEach((d, i) => {
      (d as RemoteDigest).value = values[i]!;
    });
  }
  forget(): void {
    this.remote?.drop();
  }
}

/** A digest computed by the hash worker: its value arrives with Hasher.done(). */
class RemoteDigest implements Digest {
  value: Buffer | null = null;
  update(): void {}
  digest(): Buffer {
    if (!this.value) throw new Error("digest read before the hash worker finished");
    return this.value;
  }
}

/** Bodies up to this size (with a Content-Length, not aws-chunked) are received in one piece. */
const SMALL_BODY = 256 * 1024;
/**
 * Bodies larger than this (or of unknown size) are hashed on the worker thread (hashworker.ts):
 * with 16 uploads of 1 MiB at a time, MD5 on the event loop was 19% of its samples and the worker
 * made them 1.08-1.12x faster; small bodies (received in one piece) stay here.
 */
const WORKER_MIN = 512 * 1024;

/** The checksum algorithm the client announced (header, trailer declaration or SDK hint). */
function announcedChecksum(req: IncomingMessage, headersAreTheBodys: boolean): ChecksumAlgorithm | undefined {
  for (const alg of ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const) {
    if (headersAreTheBodys && req.headers[`x-amz-checksum-${alg}`] !== undefined) return alg;
  }
  const trailer = String(req.headers["x-amz-trailer"] ?? "")
    .toLowerCase()
    .trim();
  if (trailer.startsWith("x-amz-checksum-")) {
    const alg = trailer.slice("x-amz-checksum-".length);
    if (isChecksumAlgorithm(alg)) return alg;
    throw new S3Error("InvalidRequest", `Value for x-amz-trailer header is invalid.`);
  }
  const sdk = req.headers["x-amz-sdk-checksum-algorithm"];
  if (typeof sdk === "string" && isChecksumAlgorithm(sdk.toLowerCase()))
    return sdk.toLowerCase() as ChecksumAlgorithm;
  return undefined;
}

function badDigest(alg: string): S3Error {
  return new S3Error(
    "BadDigest",
    `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`,
  );
}

/** Decoded body as a stream plus a check to run once it has been fully read. */
export function decodeBody(
  req: IncomingMessage,
  ctx: SigningContext | null,
  onWorker = false,
  headersAreTheBodys = true,
): { stream: Readable; hasher: Hasher; verify: () => ReceivedBody } {
  const mode = ctx?.payloadHash ?? UNSIGNED_PAYLOAD;
  let source: Readable = req;
  let decoder: AwsChunkedDecoder | null = null;
  if (STREAMING.has(mode)) {
    decoder = new AwsChunkedDecoder({
      signing: mode.startsWith("STREAMING-AWS4-HMAC") ? ctx! : undefined,
      signedTrailer: mode === "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    });
    source = req.pipe(decoder);
    req.on("error", (e) => decoder!.destroy(e));
  } else if (mode.startsWith("STREAMING-")) {
    throw new S3Error("NotImplemented", `The payload signing mode ${mode} is not implemented`);
  } else if (mode !== UNSIGNED_PAYLOAD && !/^[0-9a-f]{64}$/.test(mode)) {
    throw new S3Error(
      "InvalidArgument",
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value.",
      {
        ArgumentName: "x-amz-content-sha256",
        ArgumentValue: mode,
      },
    );
  }
  const algs: (ChecksumAlgorithm | "md5")[] = ["md5"];
  if (/^[0-9a-f]{64}$/.test(mode)) algs.push("sha256");
  const alg = announcedChecksum(req, headersAreTheBodys);
  if (alg) algs.push(alg);
  const digests = algs.map((a) => (onWorker ? new RemoteDigest() : newDigest(a)));
  const md5 = digests[0]!;
  const sha = algs[1] === "sha256" ? digests[1]! : null;
  const ck = alg ? digests[algs.length - 1]! : null;
  const rawMd5 = req.headers["content-md5"];
  const contentMd5 = Array.isArray(rawMd5) ? rawMd5.join(",") : rawMd5;
  if (contentMd5 !== undefined && Buffer.from(contentMd5, "base64").length !== 16)
    throw new S3Error("InvalidDigest");
  const hasher = new Hasher(digests, onWorker ? new RemoteHash(algs) : null);
  const verify = (): ReceivedBody => {
    const md5hex = md5.digest().toString("hex");
    if (sha) {
      const got = sha.digest().toString("hex");
      if (got !== mode) {
        throw new S3Error("XAmzContentSHA256Mismatch", undefined, {
          ClientComputedContentSHA256: mode,
          S3ComputedContentSHA256: got,
        });
      }
    }
    const decodedLen = req.headers["x-amz-decoded-content-length"];
    if (decoder && decodedLen !== undefined && Number(decodedLen) !== hasher.size) {
      throw new S3Error(
        "IncompleteBody",
        "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header.",
      );
    }
    if (contentMd5 !== undefined && Buffer.from(contentMd5, "base64").toString("hex") !== md5hex) {
      throw new S3Error("BadDigest", undefined, {
        ExpectedDigest: contentMd5,
        CalculatedDigest: Buffer.from(md5hex, "hex").toString("base64"),
      });
    }
    let checksum: ReceivedBody["checksum"];
    if (alg && ck) {
      const value = ck.digest().toString("base64");
      const sent = req.headers[`x-amz-checksum-${alg}`] ?? decoder?.trailers.get(`x-amz-checksum-${alg}`);
      if (typeof sent === "string") {
        if (sent !== value) throw badDigest(alg);
        checksum = { alg, value };
      } else if (req.headers["x-amz-trailer"]) {
        throw new S3Error("InvalidRequest", `The x-amz-checksum-${alg} trailer is missing.`);
      }
    }
    return { size: hasher.size, md5: md5hex, checksum };
  };
  return { stream: source, hasher, verify };
}

/**
 * Reads what is left of a request body and throws it away, so the S3 error sent next reaches a
 * client that is still sending (one that is answered mid-body often sees only a reset connection).
 */
async function discardRest(req: IncomingMessage): Promise<void> {
  if (req.complete || req.socket.destroyed) return;
  req.unpipe();
  await new Promise<void>((resolve) => {
    req.once("end", resolve);
    req.once("close", resolve);
    req.once("error", () => resolve());
    req.resume();
  });
}

/**
 * Streams a request body into `tmpAbs` and fsyncs it. On any failure (bad signature, bad digest,
 * client gone, a full disk) the temp file is removed and the S3 error thrown. `room` is asked
 * first whether the body fits (the store's free-space reserve); a full disk, there or half-way,
 * is an InsufficientStorage error sent after the rest of the body was read.
 */
export async function receiveToFile(
  req: IncomingMessage,
  ctx: SigningContext | null,
  tmpAbs: string,
  room?: (bytes: number) => Promise<void>,
): Promise<ReceivedBody> {
  try {
    if (room) {
      const expected = Number(req.headers["x-amz-decoded-content-length"] ?? req.headers["content-length"]);
      await room(Number.isFinite(expected) ? expected : 0);
    }
    return await receiveBody(req, ctx, tmpAbs);
  } catch (e) {
    const full = isDiskFull(e);
    if (!full && !(e instanceof S3Error && e.code === "InsufficientStorage")) throw e;
    await discardRest(req);
    throw full ? insufficientStorage(`the disk is full (${(e as Error).message})`) : e;
  }
}

async function receiveBody(
  req: IncomingMessage,
  ctx: SigningContext | null,
  tmpAbs: string,
): Promise<ReceivedBody> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  // Small plain bodies (with a Content-Length, not aws-chunked) are gathered and written at once.
  const small = declared <= SMALL_BODY && !(ctx?.payloadHash ?? UNSIGNED_PAYLOAD).startsWith("STREAMING-");
  // Creating a file waits for the file system's journal while fsyncs are under way: on the thread
  // pool (for small bodies while the body arrives), not blocking the event loop.
  const opening = openFile(tmpAbs, "wx", 0o644);
  opening.catch(() => {});
  let fd: number | null = null;
  let hasher: Hasher | null = null;
  let ok = false;
  try {
    // Streams are set up only once the file is open: a decoder's error needs its pipeline attached.
    if (!small) fd = await opening;
    // Large or unsized bodies are hashed on the worker thread, overlapping with the writes.
    const size = Number(req.headers["x-amz-decoded-content-length"] ?? declared);
    const decoded = decodeBody(req, ctx, !(size <= WORKER_MIN));
    const { stream, verify } = decoded;
    hasher = decoded.hasher;
    if (small && stream === req) {
      // Small plain bodies: gather (bounded by Content-Length) and write once; far cheaper than a
      // stream pipeline for the many-small-files case.
      const parts: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) {
        hasher.update(chunk);
        parts.push(chunk);
      }
      const buf = Buffer.concat(parts);
      fd = await opening;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    } else {
      fd ??= await opening;
      const sink = fdSink(fd);
      if (stream === req) {
        // Outside the pipeline, so a failing write (a full disk) does not destroy the request: its
        // socket has to carry the S3 error back.
        const h = hasher;
        req.once("error", (e) => h.destroy(e));
        req.once("close", () => {
          if (!req.complete) h.destroy(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
        });
        req.pipe(h);
        await pipeline(h, sink);
      } else await pipeline(stream, hasher, sink);
    }
    await hasher.done();
    const r = verify();
    // Through the thread pool, so concurrent uploads wait for the disk in parallel, not in turn.
    // An empty file has no data to flush; its name is made durable by the temp folder's fsync
    // that precedes every journal commit.
    if (r.size > 0) await fdatasync(fd);
    ok = true;
    return r;
  } finally {
    fd ??= await opening.catch(() => null);
    try {
      if (fd !== null) closeSync(fd);
    } finally {
      // Even if closing failed: a temp file or a busy hash worker left behind fills the disk or
      // keeps the process from exiting.
      if (!ok) {
        hasher?.forget();
        rmSync(tmpAbs, { force: true });
      }
    }
  }
}

/** Reads a small body (XML documents) into memory, verified like any other payload. */
/**
 * A small request body (XML documents) in memory. `objectChecksums`: the request's x-amz-checksum-*
 * headers describe the object being made (CompleteMultipartUpload), not this body.
 */
export async function receiveSmall(
  req: IncomingMessage,
  ctx: SigningContext | null,
  limit = 1 << 20,
  objectChecksums = false,
): Promise<Buffer> {
  const { stream, hasher, verify } = decodeBody(req, ctx, false, !objectChecksums);
  const parts: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      size += chunk.length;
      if (size > limit) cb(new S3Error("MaxMessageLengthExceeded", "Your request was too big."));
      else {
        parts.push(chunk);
        cb();
      }
    },
  });
  await pipeline(stream, hasher, sink);
  verify();
  return Buffer.concat(parts);
}

/**
 * The file of a browser form upload (POST Object) into a temp file: its MD5 (the ETag), its size
 * checked against the policy's content-length-range (EntityTooLarge as soon as it passes `max`,
 * without reading the rest), written and flushed like a PUT's body. The temp file is removed on failure.
 */
export async function receiveFormFile(
  file: Readable,
  tmpAbs: string,
  range: { min: number; max: number },
): Promise<ReceivedBody> {
  const md5 = createHash("md5");
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      size += chunk.length;
      if (size > range.max)
        return cb(
          new S3Error("EntityTooLarge", undefined, {
            ProposedSize: String(size),
            MaxSizeAllowed: String(range.max),
          }),
        );
      md5.update(chunk);
      cb(null, chunk);
    },
  });
  const fd = await openFile(tmpAbs, "wx", 0o644);
  let ok = false;
  try {
    await pipeline(file, count, fdSink(fd));
    if (size < range.min)
      throw new S3Error("EntityTooSmall", undefined, {
        ProposedSize: String(size),
        MinSizeAllowed: String(range.min),
      });
    if (size > 0) await fdatasync(fd);
    ok = true;
    return { size, md5: md5.digest("hex") };
  } catch (e) {
    if (isDiskFull(e)) throw insufficientStorage(`the disk is full (${(e as Error).message})`);
    throw e;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmpAbs, { force: true });
  }
}
