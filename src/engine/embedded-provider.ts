/**
 * Stage-in and stage-out straight into the embedded store, in process: the engine owns the store, so
 * going through the S3 API over loopback (signing, checksums, HTTP) only adds time to every job.
 * Writes take the same path as an S3 PutObject (temp file, fsync, journal commit, rename), so they
 * fire the same notifications: a workflow's next step is triggered exactly as by an upload.
 */
import { createHash } from "node:crypto";
import { close, createReadStream, createWriteStream, read, rmSync, writeFileSync } from "node:fs";
import { open, readFile, stat, writeFile } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StorageError, type StorageProvider } from "../storage/types.js";
import type { Backend } from "./store/backend.js";
import { validateKey } from "./store/keys.js";

export class EmbeddedStoreProvider implements StorageProvider {
  constructor(
    readonly id: string,
    private readonly backend: Backend,
  ) {}

  async download(bucket: string, key: string, destFile: string): Promise<void> {
    let opened: { meta: { size: number }; fd: number };
    try {
      opened = this.backend.openObject(bucket, key);
    } catch (err) {
      throw new StorageError(
        `downloading '${key}' from bucket '${bucket}' failed: ${describe(err)}`,
        this.id,
      );
    }
    // The open descriptor keeps these bytes even if the key is overwritten meanwhile.
    const { fd, meta } = opened;
    if (meta.size <= SMALL) {
      // one read and one write instead of two streams (most inputs of a file-per-job function are small)
      let bytes: Buffer;
      try {
        bytes = await readFd(fd, meta.size);
      } finally {
        close(fd, () => {});
      }
      await writeFile(destFile, bytes);
      return;
    }
    await pipeline(createReadStream("", { fd }), createWriteStream(destFile));
  }

  async upload(srcFile: string, bucket: string, key: string): Promise<void> {
    if ((await stat(srcFile)).size <= SMALL) {
      const bytes = await readFile(srcFile);
      await this.put(bucket, key, "binary/octet-stream", async (abs) => {
        await writeFile(abs, bytes);
        return { size: bytes.length, etag: createHash("md5").update(bytes).digest("hex") };
      });
      return;
    }
    await this.put(bucket, key, "binary/octet-stream", async (abs) => {
      const md5 = createHash("md5");
      let size = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          md5.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(createReadStream(srcFile), count, createWriteStream(abs));
      return { size, etag: md5.digest("hex") };
    });
  }

  /** An empty `<folder>/` object, the folder marker SCAR and the S3 console create. */
  async putFolderMarker(bucket: string, key: string): Promise<void> {
    await this.put(bucket, key, "application/x-directory", async (abs) => {
      writeFileSync(abs, "");
      return { size: 0, etag: createHash("md5").digest("hex") };
    });
  }

  /** Writes the bytes to a temp file in the store, fsyncs them, and commits them as `key`. */
  private async put(
    bucket: string,
    key: string,
    contentType: string,
    write: (abs: string) => Promise<{ size: number; etag: string }>,
  ): Promise<void> {
    const tmp = this.backend.newTempPath();
    const abs = this.backend.abs(tmp);
    try {
      validateKey(key);
      const { size, etag } = await write(abs);
      // The object's bytes are durable before its metadata is committed; asynchronously, so that the
      // engine's main thread does not wait for the disk.
      const handle = await open(abs, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.backend.commitObject(
        bucket,
        { key, size, etag, headers: { "content-type": contentType }, meta: {} },
        tmp,
        "s3:ObjectCreated:Put",
        { requestId: `scar-${Date.now().toString(36)}`, principal: "scar-engine", sourceIp: "127.0.0.1" },
      );
    } catch (err) {
      throw new StorageError(`uploading '${key}' to bucket '${bucket}' failed: ${describe(err)}`, this.id);
    } finally {
      rmSync(abs, { force: true });
    }
  }
}

/** Objects up to this size are staged in and out with one read and one write, without streams. */
const SMALL = 1024 * 1024;

/** Reads `size` bytes from the start of `fd` (fewer if the file is shorter). */
async function readFd(fd: number, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = await new Promise<number>((resolve, reject) =>
      read(fd, buf, got, size - got, got, (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  return [e.code ?? e.name, e.message].filter(Boolean).join(": ");
}
