/**
 * The dashboard's one way to the engine: its HTTP API, on this page's origin or on another engine's
 * (the sign-in form's Engine URL; this engine's CSP must list it in scar.cfg's local.ui_engines and
 * that engine must list this page's origin in its local.cors_origins), with the admin's credentials
 * in an Authorization header on every call. The credentials live in sessionStorage (this tab only,
 * gone when it closes), never in a cookie: a page of another site cannot make the browser send them,
 * so cross-site request forgery has nothing to ride on.
 */
const KEY = "scar.auth";
/** The other engine's origin the page works on; absent: this page's own engine. */
const ENGINE_KEY = "scar.engine";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Tells the engine not to answer a 401 with a Basic challenge (the browser's own password dialog). */
const PAGE_CALL = { "x-requested-with": "scar-dashboard" };

let auth: string | null = sessionStorage.getItem(KEY);
/** What every API path is appended to: "" (this page's origin) or another engine's origin. */
let base = sessionStorage.getItem(ENGINE_KEY) ?? "";
const authListeners = new Set<(signedIn: boolean) => void>();

export function signedIn(): boolean {
  return auth !== null;
}

/** The other engine the page works on, or "" for the engine that served it. */
export function engineUrl(): string {
  return base;
}

export function onAuthChange(l: (signedIn: boolean) => void): () => void {
  authListeners.add(l);
  return () => authListeners.delete(l);
}

function setAuth(value: string | null): void {
  auth = value;
  if (value === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, value);
  for (const l of authListeners) l(value !== null);
}

function basic(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

/** An Engine URL as typed -> its origin, or "" for this page's own engine. */
function engineOrigin(typed: string): string {
  const text = typed.trim();
  if (text === "") return "";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ApiError(0, `the engine URL '${text}' is not a URL (like ${location.protocol}//host:8080)`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search)
    throw new ApiError(
      0,
      `the engine URL '${text}' is not an engine's address (like ${location.protocol}//host:8080)`,
    );
  return url.origin === location.origin ? "" : url.origin;
}

/** Checks the credentials against the API of `engine` ("": this page's); keeps both when right. */
export async function signIn(user: string, password: string, engine = ""): Promise<void> {
  const candidate = basic(user, password);
  const origin = engineOrigin(engine);
  let r: Response;
  try {
    r = await fetch(`${origin}/system/info`, { headers: { authorization: candidate, ...PAGE_CALL } });
  } catch {
    // the browser does not say why (down, CSP, CORS): name what to check
    throw new ApiError(
      0,
      origin === ""
        ? "the engine could not be reached"
        : `${origin} could not be reached: is it running, is it in local.ui_engines of this engine's ` +
            `scar.cfg, and is ${location.origin} in local.cors_origins of its own?`,
    );
  }
  if (r.status === 401) throw new ApiError(401, "wrong user or password");
  if (!r.ok) throw await errorOf(r);
  base = origin;
  if (origin === "") sessionStorage.removeItem(ENGINE_KEY);
  else sessionStorage.setItem(ENGINE_KEY, origin);
  setAuth(candidate);
}

export function signOut(): void {
  setAuth(null);
}

async function errorOf(r: Response): Promise<ApiError> {
  return errorFrom(r.status, r.statusText, await r.text());
}

function errorFrom(status: number, statusText: string, text: string): ApiError {
  try {
    const j = JSON.parse(text) as { error?: string; details?: unknown };
    if (typeof j.error === "string") return new ApiError(status, j.error, j.details);
  } catch {
    // errors to a browser page are plain text (OSCAR's dashboard shows them as they are)
  }
  return new ApiError(status, text.trim() || `${status} ${statusText}`);
}

export interface CallOptions {
  method?: string;
  body?: BodyInit | object;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A call to the API; a 401 signs out (the page then asks for the credentials again). */
export async function call(path: string, o: CallOptions = {}): Promise<Response> {
  if (auth === null) throw new ApiError(401, "not signed in");
  const headers: Record<string, string> = { authorization: auth, ...PAGE_CALL, ...o.headers };
  let body: BodyInit | undefined;
  if (o.body instanceof Blob || o.body instanceof ArrayBuffer || typeof o.body === "string") body = o.body;
  else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers["content-type"] = "application/json";
  }
  const r = await fetch(base + path, {
    method: o.method ?? "GET",
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (r.status === 401) {
    setAuth(null);
    throw new ApiError(401, "the engine did not accept the credentials: sign in again");
  }
  if (!r.ok) throw await errorOf(r);
  return r;
}

/**
 * Sends a file as the body of a POST with its upload's progress (`onProgress(sent, total)` in bytes):
 * XMLHttpRequest, as fetch reports no upload progress (and streams a body only over HTTP/2). The
 * answer's JSON; errors and a 401 as `call` has them.
 */
export function upload<T>(
  path: string,
  file: Blob,
  onProgress: (sent: number, total: number) => void,
): Promise<T> {
  if (auth === null) return Promise.reject(new ApiError(401, "not signed in"));
  const credentials = auth;
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", base + path);
    xhr.setRequestHeader("authorization", credentials);
    for (const [k, v] of Object.entries(PAGE_CALL)) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, "the upload failed: the engine could not be reached"));
    xhr.onload = () => {
      if (xhr.status === 401) {
        setAuth(null);
        reject(new ApiError(401, "the engine did not accept the credentials: sign in again"));
      } else if (xhr.status < 200 || xhr.status > 299)
        reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
      else {
        try {
          resolve(JSON.parse(xhr.responseText) as T);
        } catch {
          reject(
            new ApiError(xhr.status, `the engine's answer is not JSON: ${xhr.responseText.slice(0, 200)}`),
          );
        }
      }
    };
    xhr.send(file);
  });
}

export async function getJson<T>(path: string, o: CallOptions = {}): Promise<T> {
  return (await (await call(path, o)).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return (await call(path)).text();
}

/** Saves a blob as a file through a temporary link (the page's own blob: URL). */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export const enc = encodeURIComponent;
