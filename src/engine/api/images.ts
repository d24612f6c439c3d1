/**
 * scar's image routes (admin): import an image archive sent as the request body, pull an image with
 * its progress streamed as NDJSON, list the images the engine has. The CLI uses them to get images
 * onto an engine it reaches only over HTTP.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import type { Engine } from "../engine.js";
import { ImageReferenceError, parseReference } from "../images/index.js";
import { bodyToFile, HttpError, query, readJson, sendJson } from "./http.js";

/**
 * `POST /system/images?tag=REF`: the body is a `docker save` tarball or an OCI archive (or a root
 * file system tar, which needs `tag`). It is streamed to a temporary file under the data folder,
 * imported, and the file removed. 201 `{ref, digest, images: [{ref, names, digest}]}`.
 */
export async function importImage(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  limit: number,
): Promise<void> {
  const tag = query(url, "tag");
  if (tag !== undefined) checkRef(tag);
  const dir = join(engine.dataDir, "work", "image-uploads");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${randomUUID()}.tar`);
  try {
    const size = await bodyToFile(req, file, limit);
    if (size === 0)
      throw new HttpError(400, "the body is empty: send a `docker save` tarball or an OCI archive");
    let result: Awaited<ReturnType<Engine["images"]["import"]>>;
    try {
      result = await engine.images.import(file, tag ? { tag } : {});
    } catch (err) {
      throw new HttpError(400, `cannot import the image: ${(err as Error).message}`);
    }
    const first = result.images[0];
    if (!first) throw new HttpError(400, "the archive holds no image");
    sendJson(res, 201, {
      ref: tag ?? first.names[0] ?? first.digest,
      digest: first.digest,
      images: result.images.map((i) => ({ ref: i.names[0] ?? i.digest, names: i.names, digest: i.digest })),
    });
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * `POST /system/images/pull` with `{"image": REF}`: 200 and NDJSON, one PullEvent per line while the
 * image is pulled, then `{"done": {ref, digest}}`, or `{"error": message, "code"?: RegistryError's code}` when the pull fails (the
 * status is already sent by then). An image already present gives the done line alone.
 */
export async function pullImage(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
): Promise<void> {
  const body = await readJson(req, limit);
  const image = (body as { image?: unknown } | null)?.image;
  if (typeof image !== "string" || image.trim() === "")
    throw new HttpError(400, 'the body must be {"image": "<reference>"}');
  checkRef(image);
  res.on("error", () => {}); // a client that goes away does not stop the pull
  res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-cache" });
  const line = (v: unknown) => {
    if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify(v)}\n`);
  };
  try {
    const have = present(engine, image);
    const digest = have ?? (await engine.images.pull(image, { onProgress: line })).digest;
    line({ done: { ref: image, digest } });
  } catch (err) {
    // the code lets a client say what to do (UNREACHABLE: import the image instead)
    const code = (err as { code?: unknown }).code;
    line({ error: (err as Error).message, ...(typeof code === "string" ? { code } : {}) });
  }
  res.end();
}

/** `GET /system/images`: `{images: [{ref, names, digest, size, added}]}`, newest first. */
export function listImages(engine: Engine, res: ServerResponse): void {
  const images = engine.images.list().map((i) => ({
    ref: i.names[0] ?? i.digest,
    names: i.names,
    digest: i.digest,
    // As distributed (compressed layers), like a registry reports it.
    size: i.layers.reduce((n, l) => n + l.size, 0),
    added: i.added,
  }));
  sendJson(res, 200, { images });
}

function present(engine: Engine, ref: string): string | undefined {
  if (!engine.images.find(ref)) return undefined;
  try {
    return engine.images.resolve(ref).digest;
  } catch {
    return undefined; // a layer is missing: pull again
  }
}

function checkRef(ref: string): void {
  try {
    parseReference(ref);
  } catch (err) {
    if (err instanceof ImageReferenceError) throw new HttpError(400, err.message);
    throw err;
  }
}
