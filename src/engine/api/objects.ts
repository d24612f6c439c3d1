/**
 * One object of the embedded store through the API (admin, scar's addition), for a page that holds
 * the admin's credentials but not the store's S3 keys and cannot sign S3 requests (the dashboard):
 *   GET /system/objects/<bucket>?key=<key>   the object's bytes, always application/octet-stream
 *                                            with nosniff and as an attachment: a page shows what it
 *                                            chooses to, the browser never renders it as a document
 *   PUT /system/objects/<bucket>?key=<key>   the body becomes the object, committed as an S3
 *                                            PutObject is: an upload to a function's input triggers it;
 *                                            201 {bucket, key, size}
 * OSCAR's clients reach objects through MinIO's S3 API instead; this engine's store serves that too.
 */
import { createReadStream, mkdirSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { EmbeddedStoreProvider } from "../embedded-provider.js";
import type { Engine } from "../engine.js";
import { S3Error } from "../store/errors.js";
import { validateKey } from "../store/keys.js";
import { bodyToFile, HttpError, query } from "./http.js";

function keyOf(url: URL): string {
  const key = query(url, "key");
  if (key === undefined || key === "")
    throw new HttpError(400, "key: the object's key is required (?key=...)");
  if (key.endsWith("/")) throw new HttpError(400, `key '${key}' names a folder, not an object`);
  try {
    validateKey(key);
  } catch (err) {
    if (err instanceof S3Error) throw new HttpError(400, `key '${key}': ${err.message}`);
    throw err;
  }
  return key;
}

function bucketOf(engine: Engine, name: string) {
  const b = engine.store.backend.buckets.get(name);
  if (!b) throw new HttpError(404, `The bucket '${name}' does not exist`);
  return b;
}

function scratchFile(engine: Engine): string {
  const dir = join(engine.dataDir, "work", "api");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, `object-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
}

export async function getObject(
  engine: Engine,
  bucket: string,
  url: URL,
  res: ServerResponse,
): Promise<void> {
  const key = keyOf(url);
  const b = bucketOf(engine, bucket);
  const meta = b.objects.get(key);
  if (!meta) throw new HttpError(404, `no object '${key}' in bucket '${bucket}'`);
  // A copy first: the store may rename the object's file under us (a new version of the key).
  const tmp = scratchFile(engine);
  try {
    await new EmbeddedStoreProvider("minio.default", engine.store.backend).download(bucket, key, tmp);
    const name = key.slice(key.lastIndexOf("/") + 1).replace(/["\\\r\n]/g, "_");
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "x-content-type-options": "nosniff",
      "content-disposition": `attachment; filename="${name}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      "cache-control": "no-store",
    });
    await pipeline(createReadStream(tmp), res);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export async function putObject(
  engine: Engine,
  bucket: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
): Promise<void> {
  const key = keyOf(url);
  bucketOf(engine, bucket);
  const tmp = scratchFile(engine);
  try {
    const size = await bodyToFile(req, tmp, limit);
    await new EmbeddedStoreProvider("minio.default", engine.store.backend).upload(tmp, bucket, key, {
      consume: true,
    });
    const body = Buffer.from(`${JSON.stringify({ bucket, key, size })}\n`);
    res.writeHead(201, { "content-type": "application/json", "content-length": body.length }).end(body);
  } finally {
    rmSync(tmp, { force: true });
  }
}
