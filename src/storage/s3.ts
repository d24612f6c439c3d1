/**
 * S3 API provider (AWS SDK v3): Amazon S3, MinIO, and scar's embedded store. Streams both ways, so
 * file size does not change memory use.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { StorageError, type StorageProvider } from "./types.js";

/** Up to this size an upload is read into memory and sent in one piece. */
const SMALL_FILE = 8 * 1024 * 1024;

export interface S3ProviderOptions {
  /** e.g. `http://127.0.0.1:9000`; absent for Amazon S3. */
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** With temporary keys (a role's, e.g. the ones Lambda gives a function). */
  sessionToken?: string;
  /** Path-style URLs (`endpoint/bucket/key`): what MinIO and local stores need. */
  forcePathStyle?: boolean;
}

export class S3Provider implements StorageProvider {
  private readonly client: S3Client;

  constructor(
    readonly id: string,
    opts: S3ProviderOptions,
  ) {
    this.client = new S3Client({
      region: opts.region ?? "us-east-1",
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? Boolean(opts.endpoint),
      ...(opts.accessKeyId && opts.secretAccessKey
        ? {
            credentials: {
              accessKeyId: opts.accessKeyId,
              secretAccessKey: opts.secretAccessKey,
              ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}),
            },
          }
        : {}),
    });
  }

  async download(bucket: string, key: string, destFile: string): Promise<void> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await pipeline(res.Body as Readable, createWriteStream(destFile));
    } catch (err) {
      throw new StorageError(
        `downloading '${key}' from bucket '${bucket}' failed: ${describe(err)}`,
        this.id,
        {
          cause: err,
        },
      );
    }
  }

  async upload(srcFile: string, bucket: string, key: string): Promise<void> {
    try {
      const { size } = await stat(srcFile);
      // Small files go as one buffer: a stream body costs the SDK extra work per request (and a warning).
      const Body = size <= SMALL_FILE ? await readFile(srcFile) : createReadStream(srcFile);
      await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body, ContentLength: size }));
    } catch (err) {
      throw new StorageError(`uploading '${key}' to bucket '${bucket}' failed: ${describe(err)}`, this.id);
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; Code?: string };
  return [e.Code ?? e.name, e.message].filter(Boolean).join(": ");
}
