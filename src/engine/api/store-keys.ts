/**
 * scar's addition for `scar emulate` (admin): a key pair of the embedded store lent to a function
 * that runs outside the engine, limited to the function's buckets as a deployed function's own key
 * pair is (function-keys.ts), so that an emulated script never holds the store's admin key pair.
 *   POST   /system/store-keys          {buckets: [names], ttl_seconds}  201 {accessKeyId, secretAccessKey,
 *                                      buckets, expires (ISO time)}; in memory only, gone at expiry
 *   DELETE /system/store-keys/<id>     204; 404 for any id that is not a lent key pair
 */

import type { IncomingMessage } from "node:http";
import { bucketNameError } from "../../fdl/storage-path.js";
import type { Engine } from "../engine.js";
import { HttpError, type Router, readJson, sendJson } from "./http.js";

/** The longest a key pair is lent: a day, far past any function's timeout. */
const MAX_TTL_SECONDS = 86_400;
const MAX_BUCKETS = 100;

function lendRequest(body: unknown): { buckets: string[]; ttlSeconds: number } {
  const b = (body ?? {}) as { buckets?: unknown; ttl_seconds?: unknown };
  if (!Array.isArray(b.buckets) || b.buckets.length > MAX_BUCKETS)
    throw new HttpError(400, `buckets must be a list of at most ${MAX_BUCKETS} bucket names`);
  for (const name of b.buckets) {
    const error = typeof name === "string" ? bucketNameError(name) : "it is not a string";
    if (error) throw new HttpError(400, `bucket ${JSON.stringify(name)}: ${error}`);
  }
  const ttl = b.ttl_seconds;
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS)
    throw new HttpError(400, `ttl_seconds must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`);
  return { buckets: b.buckets as string[], ttlSeconds: ttl };
}

export function addStoreKeyRoutes(
  router: Router,
  engine: Engine,
  requireAdmin: (req: IncomingMessage) => void,
): Router {
  return router
    .on("POST", "/system/store-keys", async (req, res) => {
      requireAdmin(req);
      const { buckets, ttlSeconds } = lendRequest(await readJson(req, 64 * 1024));
      const pair = engine.lendStoreKeys(buckets, ttlSeconds * 1000);
      sendJson(res, 201, {
        ...pair,
        buckets,
        expires: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
      });
    })
    .on("DELETE", "/system/store-keys/:id", async (req, res, p) => {
      requireAdmin(req);
      if (!engine.returnStoreKeys(p.id!)) throw new HttpError(404, `no lent key pair '${p.id}'`);
      res.writeHead(204).end();
    });
}
