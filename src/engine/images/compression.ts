/**
 * Layer compression, detected from the first bytes (media types are not always honest): gzip through
 * node:zlib, zstd through fzstd (pure JS, decompression only), anything else is passed through as tar.
 */
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";

export type Compression = "gzip" | "zstd" | "none";

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "none";
}

async function* prepend(first: Buffer[], it: AsyncIterator<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  for (const b of first) yield b;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  }
}

async function* zstdDecode(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const { Decompress } = await import("fzstd"); // loaded only when a zstd layer shows up
  let out: Buffer[] = [];
  const d = new Decompress((data) => {
    out.push(Buffer.from(data));
  });
  for await (const chunk of source) {
    d.push(chunk);
    if (out.length > 0) {
      const o = out;
      out = [];
      yield* o;
    }
  }
  d.push(new Uint8Array(0), true);
  yield* out;
}

/** Decompresses a layer stream, whatever its compression; reports which one it found. */
export async function decompressStream(
  source: AsyncIterable<Buffer | Uint8Array>,
  onDetect?: (c: Compression) => void,
): Promise<AsyncIterable<Buffer>> {
  const it = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let len = 0;
  while (len < 4) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    len += b.length;
  }
  const kind = detectCompression(Buffer.concat(head));
  onDetect?.(kind);
  const raw = prepend(head, it);
  if (kind === "none") return raw;
  if (kind === "zstd") return zstdDecode(raw);
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const input = Readable.from(raw);
  input.on("error", (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  return gunzip;
}
