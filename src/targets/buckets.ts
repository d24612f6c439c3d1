/**
 * The object store of a target, as `scar put`, `get`, `ls -b` and the event launcher of `scar run`
 * use it: any S3 API (the embedded store, OSCAR's MinIO, Amazon S3) through AWS SDK v3. Large files
 * go up in parallel multipart parts that resume after an interruption, and come down as streams.
 */

import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { Agent as HttpsAgent } from "node:https";
import { dirname, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { BucketError } from "./bucket-error.js";
import { pool } from "./pool.js";

export { BucketError };

export interface BucketStoreOptions {
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** False to accept a self-signed certificate (OSCAR's `minio_provider.verify`). */
  verify?: boolean;
}

export interface ObjectEntry {
  key: string;
  size: number;
  lastModified?: Date;
}

/** Parts of multipart uploads; files up to this size go in one PUT. */
const PART_SIZE = 16 * 1024 * 1024;

export class BucketStore {
  private readonly client: S3Client;

  /** Where the ids of unfinished multipart uploads are kept (none: uploads do not resume). */
  resumeDir?: string;

  constructor(
    readonly endpoint: string | undefined,
    opts: BucketStoreOptions,
  ) {
    this.client = new S3Client({
      region: opts.region || "us-east-1",
      // The SDK would compute a CRC32 of every body in JavaScript (and check every download's) on
      // top of the MD5 the store verifies: only where an operation requires it.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      ...(opts.verify === false
        ? { requestHandler: { httpsAgent: new HttpsAgent({ rejectUnauthorized: false }) } }
        : {}),
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
    });
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw wrap(err, `checking bucket '${bucket}'`);
    }
  }

  /** Creates the bucket and the folder marker (`folder/`, as SCAR does) when missing; says what it made. */
  async ensureFolder(bucket: string, folder: string): Promise<{ bucket: boolean; folder: boolean }> {
    const made = { bucket: false, folder: false };
    if (!(await this.bucketExists(bucket))) {
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: bucket }));
        made.bucket = true;
      } catch (err) {
        const code = (err as { name?: string }).name;
        if (code !== "BucketAlreadyOwnedByYou") throw wrap(err, `creating bucket '${bucket}'`);
      }
    }
    const marker = folder.replace(/\/+$/, "");
    if (marker) {
      const key = `${marker}/`;
      try {
        await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        if (statusOf(err) !== 404) throw wrap(err, `checking folder '${key}' in '${bucket}'`);
        await this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: "",
            // said outright: the SDK sends no length for an empty body and warns on the terminal
            // that the body may be a stream of unknown length
            ContentLength: 0,
            ContentType: "application/x-directory",
          }),
        );
        made.folder = true;
      }
    }
    return made;
  }

  /** Every object under `prefix` (not slash-terminated, as SCAR lists), folder markers included. */
  async *list(bucket: string, prefix: string): AsyncGenerator<ObjectEntry> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            ...(prefix ? { Prefix: prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchBucket")
          throw new BucketError(`Unable to find the bucket '${bucket}'.`);
        throw wrap(err, `listing bucket '${bucket}'`);
      }
      for (const o of page.Contents ?? []) {
        yield { key: o.Key!, size: o.Size ?? 0, ...(o.LastModified ? { lastModified: o.LastModified } : {}) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Uploads a file; `onBytes` is told of the bytes sent. Files larger than one part go up as a
   * multipart upload; with a `resumeDir`, its id is kept there until it completes, and running the
   * same upload again after an interruption sends only the parts the store does not have yet.
   * Everything else goes through lib-storage's Upload (one PUT, or parallel parts, with the SDK's
   * retries). Upload cannot take over an upload that exists already, so it cannot resume: that
   * path keeps its own parts.
   */
  async upload(
    file: string,
    bucket: string,
    key: string,
    onBytes?: (n: number) => void,
  ): Promise<{ resumedParts: number }> {
    const { size, mtimeMs } = await stat(file);
    try {
      if (size > PART_SIZE && this.resumeDir)
        return await this.multipart(file, size, mtimeMs, bucket, key, onBytes);
      await this.plainUpload(file, size, bucket, key, onBytes);
      return { resumedParts: 0 };
    } catch (err) {
      const e = wrap(err, `uploading '${file}' to '${bucket}/${key}'`);
      if (size > PART_SIZE && this.resumeDir) e.message += " (run the same command again to resume)";
      throw e;
    }
  }

  private async plainUpload(
    file: string,
    size: number,
    bucket: string,
    key: string,
    onBytes?: (n: number) => void,
  ): Promise<void> {
    // Small files (the common case) as one buffer: read once, one PUT with its length.
    const Body = size <= PART_SIZE ? await readFile(file) : createReadStream(file);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: bucket, Key: key, Body, ContentLength: size },
      partSize: PART_SIZE,
      queueSize: 4,
      leavePartsOnError: false,
    });
    let sent = 0;
    upload.on("httpUploadProgress", (p) => {
      const loaded = p.loaded ?? 0;
      if (loaded > sent) onBytes?.(loaded - sent);
      sent = Math.max(sent, loaded);
    });
    await upload.done();
    if (size > sent) onBytes?.(size - sent);
  }

  private async multipart(
    file: string,
    size: number,
    mtimeMs: number,
    bucket: string,
    key: string,
    onBytes?: (n: number) => void,
  ): Promise<{ resumedParts: number }> {
    const stateFile = this.resumeDir
      ? join(
          this.resumeDir,
          `${createHash("sha256")
            .update(JSON.stringify([this.endpoint ?? "", bucket, key, file, size, mtimeMs]))
            .digest("hex")
            .slice(0, 32)}.json`,
        )
      : undefined;
    const done = new Map<number, string>(); // part number -> ETag
    let uploadId: string | undefined;
    if (stateFile) {
      try {
        uploadId = (JSON.parse(await readFile(stateFile, "utf8")) as { uploadId: string }).uploadId;
        let marker: string | undefined;
        do {
          const page = await this.client.send(
            new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
          );
          for (const p of page.Parts ?? []) if (p.PartNumber && p.ETag) done.set(p.PartNumber, p.ETag);
          marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
        } while (marker);
      } catch {
        uploadId = undefined; // no state, or the store forgot the upload: start again
        done.clear();
      }
    }
    if (!uploadId) {
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      uploadId = created.UploadId!;
      if (stateFile) {
        await mkdir(dirname(stateFile), { recursive: true });
        await writeFile(stateFile, JSON.stringify({ uploadId, bucket, key, file }));
      }
    }
    const parts = Math.ceil(size / PART_SIZE);
    const todo: number[] = [];
    for (let n = 1; n <= parts; n++) {
      if (done.has(n)) onBytes?.(Math.min(PART_SIZE, size - (n - 1) * PART_SIZE));
      else todo.push(n);
    }
    const fh = await open(file, "r");
    try {
      await pool(todo, 4, async (n) => {
        const start = (n - 1) * PART_SIZE;
        const length = Math.min(PART_SIZE, size - start);
        const buf = Buffer.alloc(length);
        await fh.read(buf, 0, length, start);
        const res = await this.client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: buf }),
        );
        done.set(n, res.ETag!);
        onBytes?.(length);
      });
    } finally {
      await fh.close();
    }
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: [...done.entries()]
            .sort((x, y) => x[0] - y[0])
            .map(([PartNumber, ETag]) => ({ PartNumber, ETag })),
        },
      }),
    );
    if (stateFile) await rm(stateFile, { force: true });
    return { resumedParts: parts - todo.length };
  }

  /**
   * Downloads an object to a file, through a temporary name: an interrupted download never leaves a
   * half file under the real name.
   */
  async download(bucket: string, key: string, file: string, onBytes?: (n: number) => void): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const partial = `${file}.scar-partial`;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      await pipeline(res.Body as NodeJS.ReadableStream, count, createWriteStream(partial));
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      throw wrap(err, `downloading '${bucket}/${key}'`);
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function wrap(err: unknown, what: string): BucketError {
  if (err instanceof BucketError) return err;
  const e = err as Error & { code?: string };
  const why =
    err instanceof S3ServiceException
      ? `${err.name}: ${err.message}`
      : e.code === "ECONNREFUSED"
        ? "the object store refused the connection"
        : e.message;
  return new BucketError(`${what} failed: ${why}`);
}
