/**
 * What started an invocation, recognized the way faas-supervisor does it (order matters):
 * API-Gateway proxy events (their body is parsed again), delegated events (`{event, storage_provider}`,
 * OSCAR multi-cluster), S3 and MinIO records, and anything else (direct invocations such as SCAR's
 * `{"script": b64}` / `{"cmd_args": "[...]"}` payloads, HTTP bodies, bytes).
 */
import { basename } from "node:path";

export interface StorageEvent {
  kind: "storage";
  source: "aws:s3" | "minio:s3";
  /** A storage provider named by a delegated event, e.g. `minio.cluster2`. */
  providerId?: string;
  bucket: string;
  /** The object key, decoded (S3 sends it URL-encoded, spaces as '+'). */
  key: string;
  fileName: string;
  /** ISO 8601; SCAR's own event launcher left it out, so it may be absent. */
  eventTime?: string;
}

export interface OtherEvent {
  kind: "other";
  /** What is saved as `$TMP_INPUT_DIR/event-file-<uuid>`: JSON text, or the decoded bytes of a non-JSON body. */
  body: Buffer;
  /** SCAR `scar run -s script.sh` payload: the script, decoded. */
  script?: Buffer;
  /** SCAR `scar run NAME args...` payload. */
  cmdArgs?: string[];
  /** `scar run -e K=V` payload (`{"scar_env": {"K": "V"}}`): variables of this invocation only. */
  env?: Record<string, string>;
}

export interface ParsedEvent {
  event: StorageEvent | OtherEvent;
  /** Query-string parameters of an API-Gateway request, exported as `CONT_VAR_<name>`. */
  params: Record<string, string>;
  /** The event as JSON text, exported as `EVENT`. */
  raw: string;
}

export class EventError extends Error {}

/** Parses an event given as an object, JSON text, or bytes. */
export function parseEvent(input: unknown): ParsedEvent {
  const params: Record<string, string> = {};
  const raw =
    typeof input === "string"
      ? input
      : Buffer.isBuffer(input)
        ? input.toString("utf8")
        : JSON.stringify(input ?? {});
  return { event: recognize(input, params, undefined), params, raw };
}

function recognize(
  input: unknown,
  params: Record<string, string>,
  providerId: string | undefined,
): StorageEvent | OtherEvent {
  if (typeof input === "string" || Buffer.isBuffer(input)) {
    const text = typeof input === "string" ? input : input.toString("utf8");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: SCAR sends binary bodies base64-encoded; anything else is kept as it came.
      return { kind: "other", body: decodeBase64OrKeep(input) };
    }
    if (!isObject(parsed)) return { kind: "other", body: Buffer.from(text) };
    return recognize(parsed, params, providerId);
  }
  if (!isObject(input)) return { kind: "other", body: Buffer.from(JSON.stringify(input ?? {})) };

  if ("httpMethod" in input) {
    const q = input.queryStringParameters;
    if (isObject(q))
      for (const [k, v] of Object.entries(q)) if (v !== null && v !== undefined) params[k] = String(v);
    const body = input.body;
    if (body === undefined || body === null || body === "") return { kind: "other", body: Buffer.from("") };
    if (input.isBase64Encoded === true && typeof body === "string")
      return recognize(Buffer.from(body, "base64"), params, providerId);
    return recognize(typeof body === "string" ? body : JSON.stringify(body), params, providerId);
  }
  if ("event" in input && !("subscription" in input)) {
    const inner = typeof input.storage_provider === "string" ? input.storage_provider : providerId;
    return recognize(input.event, params, inner);
  }
  const record = Array.isArray(input.Records) ? input.Records[0] : undefined;
  if (isObject(record) && (record.eventSource === "aws:s3" || record.eventSource === "minio:s3")) {
    const s3 = isObject(record.s3) ? record.s3 : {};
    const bucket = isObject(s3.bucket) && typeof s3.bucket.name === "string" ? s3.bucket.name : undefined;
    const rawKey = isObject(s3.object) && typeof s3.object.key === "string" ? s3.object.key : undefined;
    if (!bucket || rawKey === undefined)
      throw new EventError("storage event without s3.bucket.name or s3.object.key");
    const key = decodeKey(rawKey);
    return {
      kind: "storage",
      source: record.eventSource,
      ...(providerId ? { providerId } : {}),
      bucket,
      key,
      fileName: basename(key),
      ...(typeof record.eventTime === "string" ? { eventTime: record.eventTime } : {}),
    };
  }
  const other: OtherEvent = { kind: "other", body: Buffer.from(JSON.stringify(input)) };
  if (typeof input.script === "string") other.script = Buffer.from(input.script, "base64");
  if (typeof input.cmd_args === "string" || Array.isArray(input.cmd_args))
    other.cmdArgs = parseArgs(input.cmd_args);
  if (input.scar_env !== undefined) other.env = parseEnv(input.scar_env);
  return other;
}

/** S3 keys in events are URL-encoded with '+' for spaces (Python's unquote_plus undoes both). */
export function decodeKey(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, " "));
  } catch {
    return key; // a literal '%' that is not an escape
  }
}

function parseEnv(v: unknown): Record<string, string> {
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === "string"))
    throw new EventError('scar_env must be a map of variable names to strings, e.g. {"TEST1": "45"}');
  // A process cannot be given a variable whose name has '=' or a NUL, or a value with a NUL.
  for (const [k, x] of Object.entries(v as Record<string, string>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new EventError(
        `scar_env: ${JSON.stringify(k)} is not a variable name (letters, digits and '_', not starting with a digit)`,
      );
    if (x.includes("\0")) throw new EventError(`scar_env: the value of ${k} contains a NUL character`);
  }
  return v as Record<string, string>;
}

function parseArgs(v: unknown): string[] {
  const list = typeof v === "string" ? JSON.parse(v) : v;
  if (!Array.isArray(list)) throw new EventError("cmd_args must be a JSON list of arguments");
  return list.map(String);
}

function decodeBase64OrKeep(input: string | Buffer): Buffer {
  const text = (typeof input === "string" ? input : input.toString("latin1")).replace(/\s+/g, "");
  if (text.length > 0 && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text))
    return Buffer.from(text, "base64");
  return typeof input === "string" ? Buffer.from(input) : input;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}
