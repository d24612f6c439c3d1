/**
 * One invocation, platform-neutral: event -> stage-in -> choose the command -> run it -> stage-out
 * -> response. The local engine and the in-Lambda runtime both call this; they differ only in the
 * Executor (crun container, Lambda process) and the storage providers they pass.
 */
import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { FunctionSpec } from "../fdl/spec.js";
import type { StorageResolver } from "../storage/types.js";
import { buildEnv } from "./env.js";
import { type ParsedEvent, parseEvent, type StorageEvent } from "./events.js";
import { oneLine, SupervisorLog } from "./log.js";
import {
  collectOutputFiles,
  type KeptOutputs,
  keepOutputFiles,
  outputKey,
  outputMatches,
} from "./outputs.js";
import { type LambdaResponse, lambdaResponse } from "./response.js";
import type { Command, ExecResult, Executor, Workspace } from "./types.js";

/** Why an invocation ended. */
export type InvocationReason =
  | "ok"
  | "script-error"
  | "timeout"
  | "oom"
  | "disk"
  | "start-error"
  | "stage-error"
  | "event-error";

export interface InvocationRequest {
  fn: FunctionSpec;
  /** The event as an object, JSON text or bytes. */
  event: unknown;
  requestId?: string;
  executor: Executor;
  storage: StorageResolver;
  /** Host folder under which the request's workspace is made (and removed afterwards). */
  workRoot: string;
  /**
   * `lambda`: the function's timeout minus its threshold applies; `batch`: no timeout (batch jobs
   * run as long as they need, like SCAR's AWS Batch jobs).
   */
  queue?: "lambda" | "batch";
  /** Extra variables of the platform, e.g. the store's endpoint and keys for scripts using the S3 API. */
  platformEnv?: Record<string, string>;
  /** Log stream name reported in the response headers. */
  logStream?: string;
  /** Receives each supervisor log line and each chunk of script output as they happen. */
  onLog?: (line: string) => void;
  onOutput?: (chunk: Buffer) => void;
  /**
   * Keep the files the script leaves in its output folder, for a synchronous answer made of them
   * (OSCAR's /run): up to `maxBytes` in all, read before the workspace is removed. As faas-supervisor,
   * only for events that are not storage events; and only when the script succeeded (a failed run is
   * answered with its output, which says why).
   */
  keepOutputs?: { maxBytes: number };
  /**
   * Removes the request's workspace folder when the invocation ends; default a recursive delete
   * before the result is returned. The engine hands it to its runtime, which deletes it in the
   * background (the result does not wait for a disk).
   */
  removeWorkspace?: (root: string) => Promise<void>;
  /** Called at each stage, for the job record's timings. */
  onStage?: (stage: "stage_in" | "container_start" | "script_end" | "stage_out") => void;
  signal?: AbortSignal;
}

export interface InvocationResult {
  requestId: string;
  reason: InvocationReason;
  exitCode: number | null;
  /** The script's stdout and stderr. */
  output: Buffer;
  /** Objects written by stage-out. */
  outputs: { storage_provider: string; bucket: string; key: string }[];
  /** Supervisor log lines (the script's output is in `output`). */
  log: string[];
  /** The output folder's files, when `keepOutputs` asked for them and the run qualified. */
  kept?: KeptOutputs;
  response: LambdaResponse;
  detail?: string;
  /** The failure comes from the event itself (an input key that cannot be a file): a retry cannot mend it. */
  permanent?: boolean;
  /** The executor's execution environment, when it keeps them (cold or warm start, for the job record). */
  environment?: ExecResult["environment"];
}

export async function invoke(req: InvocationRequest): Promise<InvocationResult> {
  const requestId = req.requestId ?? randomUUID();
  const { fn } = req;
  const log = new SupervisorLog(fn.log_level, req.onLog);
  const root = join(req.workRoot, requestId);
  let ws: Workspace | undefined;
  const outputs: InvocationResult["outputs"] = [];
  let exec: ExecResult | undefined;
  let kept: KeptOutputs | undefined;
  let permanent = false;
  const finish = (reason: InvocationReason, detail?: string): InvocationResult => {
    const output = exec?.output ?? Buffer.alloc(0);
    if (detail) log.error(detail);
    log.info("Creating response");
    return {
      requestId,
      reason,
      exitCode: exec?.exitCode ?? null,
      output,
      outputs,
      log: log.lines,
      ...(kept ? { kept } : {}),
      response: lambdaResponse({
        fn: fn.name,
        requestId,
        logStream: req.logStream,
        ok: reason !== "stage-error" && reason !== "event-error",
        body: output,
        error: detail,
      }),
      ...(detail ? { detail } : {}),
      ...(permanent ? { permanent } : {}),
      ...(exec?.environment ? { environment: exec.environment } : {}),
    };
  };

  /**
   * Writing the input folder failed: past the function's own disk (Workspace.noRoom), or another
   * file system error (the data disk is full, ...), told in the script's paths.
   */
  const inputNotWritten = (err: unknown, w: Workspace): InvocationResult => {
    if (w.noRoom && noRoom(err)) return finish("disk", w.noRoom());
    return finish("stage-error", scriptView((err as Error).message ?? String(err), w));
  };

  try {
    try {
      ws = await req.executor.workspace(root, requestId, req.signal);
    } catch (err) {
      return finish("start-error", (err as Error).message ?? String(err));
    }
    if (!ws.release) {
      await mkdir(ws.hostInput, { recursive: true });
      await mkdir(ws.hostOutput, { recursive: true });
    }
    let parsed: ParsedEvent;
    try {
      parsed = parseEvent(req.event);
    } catch (err) {
      return finish("event-error", `The event could not be read: ${(err as Error).message}`);
    }
    log.debug(`EVENT received: ${parsed.raw.slice(0, 4096)}`);

    req.onStage?.("stage_in");
    let inputFile: string;
    try {
      inputFile = await stageIn(req, parsed, ws, log);
    } catch (err) {
      if (err instanceof InputKeyError) {
        permanent = true;
        return finish("stage-error", err.message);
      }
      return inputNotWritten(err, ws);
    }

    let command: Command;
    try {
      command = await chooseCommand(req, parsed, ws, log, basename(inputFile));
    } catch (err) {
      // the script is staged into the input folder too
      return inputNotWritten(err, ws);
    }
    const { env, warnings } = buildEnv({
      fn,
      requestId,
      workspace: ws,
      inputFile,
      parsed,
      ...(req.platformEnv ? { platform: req.platformEnv } : {}),
    });
    for (const w of warnings) log.warning(w);

    const timeoutMs =
      req.queue === "batch" || fn.timeout === null
        ? null
        : Math.max(1, fn.timeout - fn.timeout_threshold) * 1000;
    log.info(
      timeoutMs === null
        ? "Executing the function without a time limit"
        : `Executing the function. Timeout set to '${timeoutMs / 1000}' seconds`,
    );
    req.onStage?.("container_start");
    exec = await req.executor.run({
      requestId,
      command,
      env,
      workspace: ws,
      timeoutMs,
      ...(req.onOutput ? { onOutput: req.onOutput } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
    req.onStage?.("script_end");

    for (const w of exec.warnings ?? []) log.warning(w);
    const reason = scriptReason(exec);
    if (reason === "timeout")
      log.warning("Container execution timed out; uploading the outputs written so far");
    if (reason === "script-error") log.warning(`User script exited with code ${exec.exitCode}!`);
    if (reason === "oom") log.warning("The container ran out of memory and was killed");
    if (reason === "disk") log.warning("The function filled its disk: its outputs are not uploaded");
    if (reason === "start-error")
      return finish("start-error", exec.detail ?? "The container could not be started");

    // A failed script's partial files would trigger the next step of a workflow with garbage: they are
    // not uploaded (a retry produces them again). A timed-out run keeps SCAR's behaviour: the threshold
    // is reserved precisely to upload what was written before the kill.
    req.onStage?.("stage_out");
    if (reason === "ok" || reason === "timeout") {
      try {
        await stageOut(req, ws, log, outputs);
        if (reason === "timeout" && fn.output.length > 0) log.warning(timeoutUploads(outputs));
      } catch (err) {
        // Also a file system error on the output folder: a failed stage-out, told in the script's
        // terms (the host folders are the engine's business, not the log reader's).
        return finish("stage-error", scriptView((err as Error).message ?? String(err), ws));
      }
    } else log.info("The script failed: its outputs are not uploaded");
    if (req.keepOutputs && reason === "ok" && parsed.event.kind === "other") {
      kept = await keepOutputFiles(ws.hostOutput, req.keepOutputs.maxBytes);
      if (kept.kind === "too-large")
        log.warning(
          `The output folder holds ${kept.count} file${kept.count === 1 ? "" : "s"} of ${kept.bytes} bytes, more than the ${kept.maxBytes} bytes a synchronous answer may carry`,
        );
    }
    return finish(reason, reason === "ok" ? undefined : exec.detail);
  } finally {
    if (ws?.release) await ws.release();
    else if (req.removeWorkspace) await req.removeWorkspace(root);
    else await rm(root, { recursive: true, force: true });
  }
}

/** The timeout_threshold rule's uploads, named in one line: what a timed-out run wrote before the kill. */
function timeoutUploads(outputs: InvocationResult["outputs"]): string {
  if (outputs.length === 0)
    return "Uploaded after the timeout: nothing (no file was written before the kill)";
  const names = outputs.map((o) => `'${o.bucket}/${o.key}'`).join(", ");
  return `Uploaded after the timeout (written before the kill): ${outputs.length} file${outputs.length === 1 ? "" : "s"}: ${names}`;
}

function scriptReason(r: ExecResult): InvocationReason {
  switch (r.reason) {
    case "ok":
      return "ok";
    case "error":
      return "script-error";
    default:
      return r.reason;
  }
}

/** An object key that cannot be staged as a file: no retry can change that. */
class InputKeyError extends Error {}

/**
 * The name an input object gets in the input folder: its key's last part. A key whose last part is
 * not a file name (`.`, `..`, empty, a NUL, more than 255 bytes) cannot be staged: it would name the
 * input folder itself or its parent, or make the file system call fail.
 */
function inputFileName(ev: StorageEvent): string {
  const name = ev.fileName;
  const why = ev.key.includes("\0")
    ? "it contains a NUL character"
    : name === "" || name === "." || name === ".."
      ? `its last part ${name === "" ? "is empty" : `is '${name}'`}, which names a folder`
      : Buffer.byteLength(name) > 255
        ? `its last part is ${Buffer.byteLength(name)} bytes long, more than a file name may be (255)`
        : undefined;
  if (why)
    throw new InputKeyError(
      `the input key '${oneLine(ev.key)}' of bucket '${oneLine(ev.bucket)}' cannot be staged as a file: ${why}`,
    );
  return name;
}

/** The error (or one it was caused by) is a write that found no room on its disk. */
function noRoom(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") return true;
  }
  return false;
}

/** A message with the request's host folders written as the script sees them (`/tmp/<id>/input|output`). */
function scriptView(message: string, ws: Workspace): string {
  return oneLine(message.split(ws.hostInput).join(ws.input).split(ws.hostOutput).join(ws.output));
}

async function stageIn(
  req: InvocationRequest,
  parsed: ParsedEvent,
  ws: Workspace,
  log: SupervisorLog,
): Promise<string> {
  const ev = parsed.event;
  if (ev.kind === "storage") {
    log.info("Storage event found.");
    const fileName = inputFileName(ev);
    const provider = providerFor(req, ev);
    if (
      (req.fn.raw as { lambda?: { file_stage_in?: boolean } }).lambda?.file_stage_in === true ||
      req.fn.raw.file_stage_in === true
    ) {
      log.info("file_stage_in is set: the input file is not downloaded");
      return join(ws.input, fileName);
    }
    log.info(`Downloading item from bucket '${ev.bucket}' with key '${ev.key}'`);
    await req
      .storage(provider)
      .download(ev.bucket, ev.key, join(ws.hostInput, fileName), { mayLink: ws.inputReadOnly === true });
    const path = join(ws.input, fileName);
    log.info(`INPUT_FILE_PATH variable set to '${path}'`);
    return path;
  }
  const name = `event-file-${randomUUID()}`;
  await writeFile(join(ws.hostInput, name), ev.body);
  const path = join(ws.input, name);
  log.info(`INPUT_FILE_PATH variable set to '${path}'`);
  return path;
}

/** The provider of a storage event: a delegated event names it; else the function's input on that bucket; else the default of its kind. */
function providerFor(req: InvocationRequest, ev: StorageEvent): string {
  if (ev.providerId) return ev.providerId.includes(".") ? ev.providerId : `${ev.providerId}.default`;
  const input = req.fn.input.find(
    (i) => i.bucket === ev.bucket && ev.key.startsWith(i.folder ? `${i.folder}/` : ""),
  );
  if (input) return input.storage_provider;
  return ev.source === "minio:s3" ? "minio.default" : "s3.default";
}

/** SCAR's order: a run script in the event > container arguments > the function's script > the image's own command. */
async function chooseCommand(
  req: InvocationRequest,
  parsed: ParsedEvent,
  ws: Workspace,
  log: SupervisorLog,
  inputName: string,
): Promise<Command> {
  const ev = parsed.event;
  if (ev.kind === "other" && ev.script) {
    await writeFile(join(ws.hostInput, "script.sh"), ev.script);
    log.info("Running the script sent with the invocation");
    return { kind: "script", hostPath: join(ws.hostInput, "script.sh"), path: join(ws.input, "script.sh") };
  }
  if (ev.kind === "other" && ev.cmdArgs) {
    log.info(`Running the image's entrypoint with arguments ${JSON.stringify(ev.cmdArgs)}`);
    return { kind: "args", args: ev.cmdArgs };
  }
  if (req.fn.script) {
    // The input folder is also where the input object lands: an object named like the script keeps
    // its name (the script reads it), and the script is staged under another one.
    let name = `init_script-${basename(req.fn.script)}`;
    if (name === inputName) name = `init_script-${randomUUID()}-${basename(req.fn.script)}`;
    await copyFile(req.fn.script, join(ws.hostInput, name), constants.COPYFILE_EXCL);
    return { kind: "script", hostPath: join(ws.hostInput, name), path: join(ws.input, name) };
  }
  if (req.fn.c_args && req.fn.c_args.length > 0) return { kind: "args", args: req.fn.c_args };
  log.info("No script: running the image's own command");
  return { kind: "default" };
}

async function stageOut(
  req: InvocationRequest,
  ws: Workspace,
  log: SupervisorLog,
  outputs: InvocationResult["outputs"],
): Promise<void> {
  if (req.fn.output.length === 0) {
    log.info("There is no output defined for this function.");
    return;
  }
  log.info(`Searching for files to upload in folder '${ws.output}'`);
  const { files, skipped, badNames } = await collectOutputFiles(ws.hostOutput);
  for (const s of skipped) log.warning(`'${s}' is not a regular file (a link or a device): not uploaded`);
  for (const b of badNames)
    log.warning(
      `'${ws.output}/${b}' is not uploaded (nor anything in it, if it is a folder): its name is not valid UTF-8, as object keys must be`,
    );
  // A file's last upload may take the file itself (a rename into the store) unless the files are
  // read again afterwards (a synchronous answer made of them).
  const lastUse = new Map<string, number>();
  req.fn.output.forEach((out, i) => {
    for (const f of files) if (outputMatches(f.rel, out)) lastUse.set(f.abs, i);
  });
  for (const [i, out] of req.fn.output.entries()) {
    log.info(`Checking files for uploading to '${out.storage_provider}' on path: '${out.path}'`);
    const provider = req.storage(out.storage_provider);
    for (const f of files) {
      if (!outputMatches(f.rel, out)) continue;
      const key = outputKey(out, f.rel);
      log.info(`Uploading file '${key}' to bucket '${out.bucket}'`);
      await provider.upload(f.abs, out.bucket, key, {
        consume: !req.keepOutputs && !ws.onOtherFileSystem && lastUse.get(f.abs) === i,
      });
      outputs.push({ storage_provider: out.storage_provider, bucket: out.bucket, key });
    }
  }
}
