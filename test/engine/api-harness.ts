/**
 * The set-up the engine-API tests share: a real engine in a temp folder (with the busybox fixture
 * imported as an image when asked), the API on a free port, the admin's credentials, and a fetch
 * helper that sends them. Registers its own before/after hooks.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type ApiOptions, type RunningApi, startApi } from "../../src/engine/api/index.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { type Fixture, makeFixture } from "./runtime/fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field in the tests
export type Json = any;
export type JsonResponse = Omit<Response, "json"> & { json(): Promise<Json> };

export interface CallOptions {
  /** A string or Buffer is sent as it is, anything else as JSON. */
  body?: string | Buffer | object;
  /** The authorization header; the admin's by default, none with null. */
  auth?: string | null;
  headers?: Record<string, string>;
}

export interface ApiEngine {
  /** The temp folder; the engine's data is in its `data` folder. */
  readonly root: string;
  readonly engine: Engine;
  readonly api: RunningApi;
  /** `Basic …` of the engine's admin. */
  readonly adminAuth: string;
  call(method: string, path: string, opts?: CallOptions): Promise<JsonResponse>;
}

export interface ApiEngineOptions {
  /** The temp folder's name prefix. */
  prefix: string;
  /** Imports the busybox fixture's base layer under this tag (with PATH=/bin). */
  image?: string;
  /** More engine options (the data folder, a free S3 port and a concurrency of 2 are given). */
  engine?: Partial<EngineOptions>;
  /** More API options (a free port is given). */
  api?: ApiOptions;
}

/** Starts the engine and its API before the file's tests and stops them (and removes the folder) after. */
export function useApiEngine(opts: ApiEngineOptions): ApiEngine {
  const root = mkdtempSync(join(tmpdir(), opts.prefix));
  let fixture: Fixture | undefined;
  let engine: Engine | undefined;
  let api: RunningApi | undefined;
  let adminAuth = "";
  before(async () => {
    if (opts.image !== undefined) fixture = makeFixture();
    engine = await Engine.start({ dataDir: join(root, "data"), s3Port: 0, concurrency: 2, ...opts.engine });
    if (fixture !== undefined && opts.image !== undefined) {
      await engine.images.import(fixture.base, {
        format: "rootfs",
        tag: opts.image,
        changes: ["ENV PATH=/bin"],
      });
    }
    api = await startApi(engine, { port: 0, ...opts.api });
    const a = engine.credentials.admin;
    adminAuth = `Basic ${Buffer.from(`${a.user}:${a.password}`).toString("base64")}`;
  });
  after(async () => {
    await api?.close();
    await engine?.close();
    fixture?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("the engine API is not started yet (use it inside a test)");
    return v;
  };
  return {
    root,
    get engine() {
      return started(engine);
    },
    get api() {
      return started(api);
    },
    get adminAuth() {
      return adminAuth;
    },
    call(method, path, o = {}) {
      const body =
        o.body === undefined
          ? undefined
          : typeof o.body === "string" || Buffer.isBuffer(o.body)
            ? o.body
            : JSON.stringify(o.body);
      const headers: Record<string, string> = { ...o.headers };
      if (o.auth !== null) headers.authorization = o.auth ?? adminAuth;
      return fetch(`${started(api).url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
      });
    },
  };
}

/** Polls `fn` every `everyMs` until it returns something other than undefined; fails after `ms`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 30000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
