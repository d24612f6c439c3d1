/**
 * Decoder for aws-chunked request bodies (Content-Encoding: aws-chunked), the framing SDKs use for
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD (every chunk signed), STREAMING-UNSIGNED-PAYLOAD-TRAILER and
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (checksum sent as a trailing header after the data):
 *
 *   <hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer-name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
 *
 * Data passes through without copying; a chunk's signature is checked when the chunk ends, before the
 * caller commits anything, so a forged chunk can never become part of a stored object.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { S3Error } from "./errors.js";
import { chunkSignature, type SigningContext, safeEqualHex, trailerSignature } from "./sigv4.js";

const MAX_LINE = 4096;

export interface ChunkedOptions {
  /** Present when chunks are signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]). */
  signing?: SigningContext;
  /** Whether a signed trailer (x-amz-trailer-signature) is expected. */
  signedTrailer?: boolean;
}

type State = "size" | "data" | "data-crlf" | "trailer" | "done";

function malformed(detail: string): S3Error {
  return new S3Error("IncompleteBody", `The request body is not valid aws-chunked encoding: ${detail}`);
}

export class AwsChunkedDecoder extends Transform {
  /** Trailing headers (lower-cased names), available once the stream has ended. */
  readonly trailers = new Map<string, string>();
  private state: State = "size";
  private line = "";
  private remaining = 0;
  private chunkHash: Hash | null = null;
  private expectedSig: string | null = null;
  private previousSig: string;

  constructor(private readonly opts: ChunkedOptions) {
    super();
    this.previousSig = opts.signing?.seedSignature ?? "";
  }

  override _transform(buf: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(buf);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.state !== "done") cb(malformed("the body ended before the final chunk"));
    else cb();
  }

  private consume(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case "data": {
          const n = Math.min(this.remaining, buf.length - i);
          const piece = buf.subarray(i, i + n);
          this.chunkHash?.update(piece);
          this.push(piece);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) {
            this.state = "data-crlf";
            this.line = "";
          }
          break;
        }
        case "data-crlf":
        case "size":
        case "trailer": {
          const nl = buf.indexOf(10, i);
          const end = nl < 0 ? buf.length : nl + 1;
          this.line += buf.toString("latin1", i, end);
          i = end;
          if (this.line.length > MAX_LINE) throw malformed("a chunk header line is too long");
          if (nl >= 0) {
            const line = this.line.endsWith("\r\n") ? this.line.slice(0, -2) : this.line.slice(0, -1);
            this.line = "";
            this.onLine(line);
          }
          break;
        }
        case "done":
          // Some clients send a final CRLF after the trailer block; anything else is garbage.
          if (buf.subarray(i).toString("latin1").trim() !== "") throw malformed("data after the final chunk");
          return;
      }
    }
  }

  private onLine(line: string): void {
    if (this.state === "data-crlf") {
      if (line !== "") throw malformed("chunk data is not followed by CRLF");
      this.endChunk();
      this.state = "size";
      return;
    }
    if (this.state === "size") {
      const semi = line.indexOf(";");
      const sizeText = (semi < 0 ? line : line.slice(0, semi)).trim();
      if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw malformed(`bad chunk size "${sizeText.slice(0, 20)}"`);
      const size = Number.parseInt(sizeText, 16);
      if (this.opts.signing) {
        const m = /chunk-signature=([0-9a-f]{64})/.exec(line.slice(semi + 1));
        if (semi < 0 || !m)
          throw new S3Error("SignatureDoesNotMatch", "A chunk is missing its chunk-signature.");
        this.expectedSig = m[1]!;
        this.chunkHash = createHash("sha256");
      }
      if (size === 0) {
        this.endChunk();
        this.state = "trailer";
      } else {
        this.remaining = size;
        this.state = "data";
      }
      return;
    }
    // trailer section
    if (line === "") {
      if (this.opts.signedTrailer && !this.trailers.has("x-amz-trailer-signature")) {
        throw new S3Error("SignatureDoesNotMatch", "The trailer signature is missing.");
      }
      this.state = "done";
      return;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("bad trailer line");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature" && this.opts.signing) {
      const canonical = [...this.trailers].map(([k, v]) => `${k}:${v}\n`).join("");
      const want = trailerSignature(this.opts.signing, this.previousSig, canonical);
      if (!safeEqualHex(want, value))
        throw new S3Error("SignatureDoesNotMatch", "The trailer signature does not match.");
    }
    this.trailers.set(name, value);
  }

  private endChunk(): void {
    if (!this.opts.signing || !this.chunkHash || !this.expectedSig) return;
    const want = chunkSignature(this.opts.signing, this.previousSig, this.chunkHash.digest("hex"));
    if (!safeEqualHex(want, this.expectedSig)) {
      throw new S3Error(
        "SignatureDoesNotMatch",
        "The chunk signature we calculated does not match the signature you provided.",
      );
    }
    this.previousSig = this.expectedSig;
    this.chunkHash = null;
    this.expectedSig = null;
  }
}
