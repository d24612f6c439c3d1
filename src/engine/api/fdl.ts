/**
 * POST /system/fdl[?deploy=true] (admin, scar's addition): an FDL file as `scar validate` and
 * `scar init` read it, sent by a page that cannot name files on this machine (the dashboard).
 * Body: {"name": "grayify.yaml", "text": "<the FDL>", "files": {"grayify-image.sh": "<content>"}}:
 * the FDL and the files it names (scripts), written side by side into a scratch folder and read by
 * the FDL library with the engine's scar.cfg, so the answer names the same problems at the same
 * file:line:col as `scar validate`. Answers:
 *   200 {functions: [{name, image, memory, timeout, ...}], warnings: [issue], deployed: [name]?}
 *   400 {error, details: [issue]}   issue: {severity, file, line, column, path, message, text}
 *       (`text` is formatIssue's line, the one scar validate prints)
 * With deploy=true each function is deployed (or updated) as POST /system/services would.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ScarConfigFile } from "../../config/defaults.js";
import { FdlError, type FdlIssue, formatIssue, parseFdl } from "../../fdl/index.js";
import type { FdlResult, FunctionSpec } from "../../fdl/spec.js";
import { DeployError, type Engine } from "../engine.js";
import { HttpError } from "./http.js";

export interface FdlRequest {
  name: string;
  text: string;
  files: Record<string, string>;
}

/** A plain file name: what a page can send, and nothing that reaches out of the scratch folder. */
const FILE_NAME = /^[A-Za-z0-9._-]{1,255}$/;

export function fdlRequest(body: unknown): FdlRequest {
  const b = body as { name?: unknown; text?: unknown; files?: unknown } | null;
  if (typeof b !== "object" || b === null || Array.isArray(b))
    throw new HttpError(400, 'the body must be {"name": "<file>.yaml", "text": "<FDL>", "files": {...}}');
  if (typeof b.text !== "string") throw new HttpError(400, "text: the FDL's content (a string) is required");
  const name = b.name === undefined ? "fdl.yaml" : b.name;
  if (typeof name !== "string" || !FILE_NAME.test(name) || name === "." || name === "..")
    throw new HttpError(400, `name: '${String(name)}' must be a plain file name (letters, digits, . _ -)`);
  const files: Record<string, string> = {};
  if (b.files !== undefined) {
    if (typeof b.files !== "object" || b.files === null || Array.isArray(b.files))
      throw new HttpError(400, "files: a map of file name to content is expected");
    for (const [k, v] of Object.entries(b.files)) {
      if (!FILE_NAME.test(k) || k === "." || k === ".." || k === name)
        throw new HttpError(400, `files: '${k}' must be a plain file name other than the FDL's`);
      if (typeof v !== "string") throw new HttpError(400, `files.${k}: its content must be a string`);
      files[k] = v;
    }
  }
  return { name, text: b.text, files };
}

function issueJson(i: FdlIssue, dir: string, name: string) {
  // the scratch folder is this request's: the user knows the file by the name the page sent
  const file = i.file.startsWith(`${dir}/`) ? i.file.slice(dir.length + 1) : i.file === dir ? name : i.file;
  const shown = { ...i, file };
  return { ...shown, text: formatIssue(shown) };
}

function functionJson(f: FunctionSpec) {
  return {
    name: f.name,
    provider: f.provider,
    image: f.image ?? f.image_file,
    memory: f.memory,
    timeout: f.timeout,
    execution_mode: f.execution_mode,
    input: f.input.map((p) => `${p.storage_provider}:${p.path}`),
    output: f.output.map((p) => `${p.storage_provider}:${p.path}`),
  };
}

/** Reads (and with `deploy`, deploys) an FDL sent by a page; the answer is sent here. */
export async function checkFdl(
  engine: Engine,
  request: FdlRequest,
  cfg: ScarConfigFile,
  scratch: string,
  deploy: boolean,
): Promise<{ status: number; body: unknown }> {
  const dir = join(scratch, `fdl-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  try {
    for (const [k, v] of Object.entries(request.files)) writeFileSync(join(dir, k), v);
    let result: FdlResult;
    try {
      result = parseFdl(join(dir, request.name), request.text, { config: { config: cfg } });
    } catch (err) {
      if (!(err instanceof FdlError)) throw err;
      const details = err.issues.map((i) => issueJson(i, dir, request.name));
      const errors = details.filter((i) => i.severity === "error");
      return {
        status: 400,
        body: {
          error: `${request.name}: ${errors.length} error${errors.length === 1 ? "" : "s"}; nothing was deployed.`,
          details,
        },
      };
    }
    const answer = {
      functions: result.functions.map(functionJson),
      warnings: result.warnings.map((i) => issueJson(i, dir, request.name)),
    };
    if (!deploy) return { status: 200, body: answer };
    const deployed: string[] = [];
    for (const spec of result.functions) {
      try {
        await engine.deploy(spec, { storageProviders: result.storage_providers });
      } catch (err) {
        if (!(err instanceof DeployError)) throw err;
        const done = deployed.length > 0 ? ` (deployed before it: ${deployed.join(", ")})` : "";
        throw new HttpError(400, `${err.message}${done}`);
      }
      deployed.push(spec.name);
    }
    return { status: 200, body: { ...answer, deployed } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
