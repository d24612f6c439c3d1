/**
 * The HTTP front of the store: parses path-style (and *.localhost virtual-host style) S3 requests,
 * authenticates them with SigV4, and routes them to the bucket, object and multipart handlers.
 */

import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { anonymousCanList, anonymousCanRead, anonymousCanWrite } from "./acl.js";
import { getObjectAttributes } from "./attributes.js";
import { LIST_PARAMS, signedAllowed } from "./authorize.js";
import { Backend, type CommitHook, type EventListener, type StoreEvent } from "./backend.js";
import * as bucketCors from "./bucket-cors.js";
import { applyBucketCors } from "./bucket-cors.js";
import * as buckets from "./buckets.js";
import { applyCors, type CorsPolicy, originAllowed, S3_CORS } from "./cors.js";
import { S3Error } from "./errors.js";
import { type Ctx, sendError } from "./http.js";
import * as mp from "./multipart.js";
import * as objects from "./objects.js";
import { postObject } from "./post-object.js";
import { type Credentials, parseQuery, percentDecode, type QueryParam, verifyRequest } from "./sigv4.js";
import { insufficientStorage, isDiskFull, type SpaceReserve } from "./space.js";
import { ANONYMOUS, type KeyPair, Users } from "./users.js";

/** A key pair, the user it signs for and the buckets it may use (users.ts). */
export type StoreCredentials = KeyPair;

export interface StoreOptions {
  /** Folder that holds every bucket (created if missing). */
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * Accepted key pairs; defaults to the single pair scar / scar-secret-key. The first one's user is
   * the admin: it owns buckets of stores written before users existed (users.ts).
   */
  credentials?: StoreCredentials | StoreCredentials[];
  /** Journal compaction threshold in bytes (default 64 MiB); tests make it small. */
  compactBytes?: number;
  /** Region reported to clients and written into event records. */
  region?: string;
  /** Runs before a change that fires events is acknowledged (see CommitHook). */
  onCommit?: CommitHook;
  log?: (message: string) => void;
  /** Free space uploads must leave on the data dir's disk (default: 64 MiB, or 1% of a smaller disk). */
  reserve?: SpaceReserve;
  /** Origins whose pages may call the store (cors.ts); none by default. */
  corsOrigins?: readonly string[];
}

export interface RunningStore {
  url: string;
  host: string;
  port: number;
  region: string;
  backend: Backend;
  /** The users and key pairs; key pairs can be added and removed while the store serves. */
  users: Users;
  /** Live events of this process (not durable: use onCommit for that). Returns an unsubscribe function. */
  subscribe(listener: EventListener): () => void;
  /** Events committed but not yet acknowledged by onCommit. */
  pendingEvents(): StoreEvent[];
  close(): Promise<void>;
}

export const DEFAULT_CREDENTIALS: StoreCredentials = {
  accessKeyId: "scar",
  secretAccessKey: "scar-secret-key",
};

// Subresources we do not implement: answering NotImplemented beats silently treating them as a listing.
const UNSUPPORTED = [
  "policy",
  "lifecycle",
  "website",
  "replication",
  "encryption",
  "logging",
  "object-lock",
  "retention",
  "legal-hold",
  "torrent",
  "accelerate",
  "requestPayment",
  "analytics",
  "inventory",
  "metrics",
  "ownershipControls",
  "publicAccessBlock",
  "intelligent-tiering",
  "restore",
  "select",
];

async function route(ctx: Ctx, credentials: Credentials): Promise<void> {
  const { req, bucket, key, query } = ctx;
  const method = req.method ?? "GET";
  if (bucket === "") {
    if (method === "GET") return buckets.listBuckets(ctx);
    throw new S3Error("MethodNotAllowed");
  }
  if (query.has("acl")) {
    if (key !== "") {
      if (method === "GET") return objects.getObjectAcl(ctx);
      if (method === "PUT") return objects.putObjectAcl(ctx);
      throw new S3Error("MethodNotAllowed");
    }
    if (method === "GET") return buckets.getBucketAcl(ctx);
    if (method === "PUT") return buckets.putBucketAcl(ctx);
    throw new S3Error("MethodNotAllowed");
  }
  if (key === "" && query.has("tagging")) {
    if (method === "GET") return objects.getBucketTagging(ctx);
    if (method === "PUT") return objects.putBucketTagging(ctx);
    if (method === "DELETE") return objects.deleteBucketTagging(ctx);
    throw new S3Error("MethodNotAllowed");
  }
  if (key === "" && query.has("cors")) {
    if (method === "GET") return bucketCors.getBucketCors(ctx);
    if (method === "PUT") return bucketCors.putBucketCors(ctx);
    if (method === "DELETE") return bucketCors.deleteBucketCors(ctx);
    throw new S3Error("MethodNotAllowed");
  }
  if (key !== "" && query.has("tagging")) {
    if (method === "GET") return objects.getObjectTagging(ctx);
    if (method === "PUT") return objects.putObjectTagging(ctx);
    if (method === "DELETE") return objects.deleteObjectTagging(ctx);
    throw new S3Error("MethodNotAllowed");
  }
  for (const s of UNSUPPORTED) {
    if (query.has(s))
      throw new S3Error("NotImplemented", `The ${s} subresource is not implemented by scar store`);
  }
  if (key === "") {
    switch (method) {
      case "PUT":
        if (query.has("notification")) return buckets.putBucketNotification(ctx);
        if (query.has("versioning"))
          throw new S3Error("NotImplemented", "Versioning is not implemented by scar store");
        return buckets.createBucket(ctx);
      case "HEAD":
        return buckets.headBucket(ctx);
      case "DELETE":
        return buckets.deleteBucket(ctx);
      case "POST":
        if (query.has("delete")) return objects.deleteObjects(ctx);
        if (isForm(req)) return postObject(ctx, credentials);
        throw new S3Error("MethodNotAllowed");
      case "GET":
        if (query.has("location")) return buckets.getBucketLocation(ctx);
        if (query.has("notification")) return buckets.getBucketNotification(ctx);
        if (query.has("uploads")) return mp.listUploads(ctx);
        if (query.has("versioning")) return buckets.getBucketVersioning(ctx);
        if (query.has("versions")) return objects.listObjectVersions(ctx);
        return objects.listObjects(ctx, query.get("list-type") === "2");
      default:
        throw new S3Error("MethodNotAllowed");
    }
  }
  switch (method) {
    case "PUT":
      if (req.headers["x-amz-copy-source"] !== undefined) {
        if (query.has("uploadId")) return mp.uploadPartCopy(ctx);
        return objects.copyObject(ctx);
      }
      if (query.has("uploadId")) return mp.uploadPart(ctx);
      return objects.putObject(ctx);
    case "GET":
      if (query.has("uploadId")) return mp.listParts(ctx);
      if (query.has("attributes")) return getObjectAttributes(ctx);
      return objects.getObject(ctx);
    case "HEAD":
      return objects.headObject(ctx);
    case "DELETE":
      if (query.has("uploadId")) return mp.abortUpload(ctx);
      return objects.deleteObject(ctx);
    case "POST":
      if (query.has("uploads")) return mp.createUpload(ctx);
      if (query.has("uploadId")) return mp.completeUpload(ctx);
      throw new S3Error("MethodNotAllowed");
    default:
      throw new S3Error("MethodNotAllowed");
  }
}

/**
 * What an anonymous request may do (acl.ts): list a bucket whose ACL is public-read(-write); read an
 * object whose own ACL is public-read(-write); write into a public-read-write bucket (what it writes is
 * anonymous's: users.ts ANONYMOUS), and read and set the ACL of what anonymous owns. A bucket the
 * engine made public (publicObjects, OSCAR's public visibility) lets anyone list and read.
 */
function anonymousAllowed(
  backend: Backend,
  method: string,
  bucket: string,
  key: string,
  query: QueryParam[],
  copy: boolean,
  form: boolean,
): boolean {
  const b = bucket === "" ? undefined : backend.buckets.get(bucket);
  if (!b) return false;
  // An object an anonymous writer owns: its ACL is anonymous's to read and set, as its owner's (S3's
  // way for a bucket owner to take such an object: bucket-owner-full-control set unsigned, then a copy).
  if (
    (method === "PUT" || method === "GET") &&
    key !== "" &&
    query.length === 1 &&
    query[0]!.name === "acl"
  ) {
    const o = b.objects.get(key);
    return o !== undefined && o.owner === ANONYMOUS.id && !copy;
  }
  if (method === "PUT" || method === "DELETE") {
    // A copy would read its source with nobody's rights: never anonymous.
    return key !== "" && anonymousCanWrite(b.acl) && query.length === 0 && !copy;
  }
  // A browser form upload carries its authority in its fields (post-object.ts checks them).
  if (method === "POST") return key === "" && query.length === 0 && form;
  if (method !== "GET" && method !== "HEAD") return false;
  if (key === "")
    return (b.publicObjects || anonymousCanList(b.acl)) && query.every((q) => LIST_PARAMS.has(q.name));
  if (!query.every((q) => q.name.startsWith("response-") || q.name === "partNumber")) return false;
  return b.publicObjects === true || anonymousCanRead(b.objects.get(key)?.acl);
}

const PREFLIGHT_METHODS = new Set(["GET", "PUT", "HEAD", "POST", "DELETE"]);

/** Why an OPTIONS request is not a preflight S3 can judge (400), or undefined when it is one. */
function malformedPreflight(
  origin: string | undefined,
  method: string | string[] | undefined,
): string | undefined {
  if (origin === undefined || origin === "") return "Insufficient information. Origin request header needed.";
  if (typeof method !== "string" || method === "")
    return "Insufficient information. Access-Control-Request-Method request header needed.";
  if (!PREFLIGHT_METHODS.has(method.toUpperCase())) return `Invalid Access-Control-Request-Method: ${method}`;
  return undefined;
}

function isForm(req: IncomingMessage): boolean {
  return /^multipart\/form-data\s*;/i.test(req.headers["content-type"] ?? "");
}

/** Splits "bucket/key" out of the request (path style, or virtual-host style for <bucket>.localhost). */
function addressing(req: IncomingMessage, path: string): { bucket: string; key: string } {
  const host = (req.headers.host ?? "").replace(/:\d+$/, "").toLowerCase();
  const vh = /^(.+)\.localhost$/.exec(host);
  if (vh) return { bucket: vh[1]!, key: path.replace(/^\//, "") };
  const p = path.replace(/^\//, "");
  const i = p.indexOf("/");
  return i < 0 ? { bucket: p, key: "" } : { bucket: p.slice(0, i), key: p.slice(i + 1) };
}

// Request ids only need to be unique: a random prefix per process and a counter (no syscall per request).
const idPrefix = randomBytes(4).toString("hex").toUpperCase();
let idCounter = 0;
function nextRequestId(): string {
  idCounter = (idCounter + 1) >>> 0;
  return idPrefix + idCounter.toString(16).toUpperCase().padStart(8, "0");
}

export function createHandler(
  backend: Backend,
  users: Users,
  region: string,
  corsOrigins: readonly string[] = [],
) {
  const credentials: Credentials = users.secrets;
  const cors: CorsPolicy = { origins: corsOrigins, ...S3_CORS };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = nextRequestId();
    res.setHeader("x-amz-request-id", requestId);
    res.setHeader("x-amz-id-2", requestId);
    res.setHeader("Server", "scar-store");
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = parseQuery(q < 0 ? "" : url.slice(q + 1));
    const path = percentDecode(rawPath);
    let resource = path;
    const meta = { req, res, requestId };
    // Browser pages: a preflight is answered here, before signatures (it carries none). The
    // store-wide allowlist (cors.ts) first, else the bucket's own rules (bucket-cors.ts).
    const origin = req.headers.origin;
    if (req.method === "OPTIONS") {
      const refused = malformedPreflight(origin, req.headers["access-control-request-method"]);
      if (refused) return sendError(meta, new S3Error("BadRequest", refused), path);
    }
    const corsOutcome =
      typeof origin === "string" && !originAllowed(cors, origin)
        ? applyBucketCors(
            backend.buckets.get(addressing(req, path).bucket)?.cors,
            origin,
            req,
            res,
            (message) => sendError(meta, new S3Error("AccessForbidden", message), path),
          )
        : applyCors(cors, req, res, (message) =>
            sendError(meta, new S3Error("AccessDenied", `CORS: ${message}`), path),
          );
    if (corsOutcome !== "not-cors") return;
    try {
      const { bucket, key } = addressing(req, path);
      resource = key ? `/${bucket}/${key}` : `/${bucket}`;
      const signing = verifyRequest(
        req,
        { method: req.method ?? "GET", rawPath, path, query: rawQuery },
        credentials,
        Date.now(),
        region,
      );
      const copy = req.headers["x-amz-copy-source"] !== undefined;
      const query = new Map(rawQuery.map((p) => [p.name, p.value]));
      const caller = signing ? users.principal(signing.accessKey) : undefined;
      if (
        !signing &&
        !anonymousAllowed(backend, req.method ?? "GET", bucket, key, rawQuery, copy, isForm(req))
      ) {
        // S3 tells anyone that a bucket does not exist; only existing ones are private.
        if (bucket !== "" && !backend.buckets.has(bucket)) {
          throw new S3Error("NoSuchBucket", undefined, { BucketName: bucket });
        }
        throw new S3Error("AccessDenied");
      }
      if (signing) {
        // a key pair removed while its request was on the way
        if (!caller)
          throw new S3Error("InvalidAccessKeyId", undefined, { AWSAccessKeyId: signing.accessKey });
        const source = req.headers["x-amz-copy-source"];
        const allowed = signedAllowed(backend, caller, users.admin.id, {
          method: req.method ?? "GET",
          bucket,
          key,
          query,
          ...(typeof source === "string" ? { copySource: objects.parseCopySource(source) } : {}),
        });
        if (!allowed) throw new S3Error("AccessDenied");
      }
      // Expect: 100-continue (startStore handles checkContinue here): the client sends its body
      // only once the request is known to be signed and allowed, as S3 answers it.
      if (/^100-continue$/i.test(String(req.headers.expect ?? ""))) res.writeContinue();
      const ctx: Ctx = {
        req,
        res,
        backend,
        signing,
        bucket,
        key,
        query,
        rawQuery,
        baseUrl: `http://${req.headers.host ?? "localhost"}`,
        region,
        requestId,
        principal: signing?.accessKey ?? "anonymous",
        sourceIp: req.socket.remoteAddress ?? "",
        users,
        ...(caller ? { caller } : {}),
      };
      await route(ctx, credentials);
    } catch (e) {
      if (e instanceof S3Error || isDiskFull(e)) {
        const err =
          e instanceof S3Error ? e : insufficientStorage(`the disk is full (${(e as Error).message})`);
        // The person running the store needs to know the disk is full, not only the client.
        if (err.code === "InsufficientStorage") backend.opts.log?.(`${req.method} ${url}: ${err.message}`);
        sendError(meta, err, resource);
      } else {
        const err = e as NodeJS.ErrnoException;
        // A client that hung up mid-body is not a server error worth reporting. (A request read to
        // its end is destroyed too, so that alone says nothing: its socket says whether anyone listens.)
        if (
          err?.code === "ECONNRESET" ||
          err?.code === "ERR_STREAM_PREMATURE_CLOSE" ||
          req.socket.destroyed
        ) {
          res.destroy();
          return;
        }
        backend.opts.log?.(`internal error on ${req.method} ${url}: ${err?.stack ?? String(e)}`);
        sendError(meta, new S3Error("InternalError"), resource);
      }
    }
  };
}

export async function startStore(opts: StoreOptions): Promise<RunningStore> {
  const dataDir = resolve(opts.dataDir);
  const region = opts.region ?? "us-east-1";
  const list = opts.credentials === undefined ? [DEFAULT_CREDENTIALS] : [opts.credentials].flat();
  const users = new Users(list);
  const backend = await Backend.open(dataDir, {
    region,
    onCommit: opts.onCommit,
    log: opts.log,
    compactBytes: opts.compactBytes,
    ...(opts.reserve ? { reserve: opts.reserve } : {}),
  });
  // Events that were committed before a crash but never acknowledged go out before we take requests.
  await backend.redeliver();
  const handler = createHandler(backend, users, region, opts.corsOrigins);
  const server: Server = createServer({ keepAlive: true, requestTimeout: 0 }, handler);
  // Not Node's automatic 100 Continue: the handler sends it after the signature check.
  server.on("checkContinue", handler);
  server.keepAliveTimeout = 30_000;
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(opts.port ?? 9000, host, () => {
      server.off("error", fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    region,
    backend,
    users,
    subscribe: (l) => backend.subscribe(l),
    pendingEvents: () => backend.pendingEvents(),
    close: async () => {
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      });
      await backend.close();
    },
  };
}
