/** What `scar run` and `scar invoke` do. */
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { FINAL_STATUSES } from "../../engine/jobs/types.js";
import type { FdlResult } from "../../fdl/index.js";
import type { CliTarget, RunResult } from "../../targets/index.js";
import { ApiError } from "../../targets/index.js";
import { pool } from "../../targets/pool.js";
import { chooseFunction, confirm, printJson, say, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { readFdlFile } from "../fdl-file.js";
import { assignments } from "../function-flags.js";
import { countLine, showProgress } from "../progress.js";
import { interactive } from "../prompt.js";
import { splitBucketPath } from "./manage-run.js";
import type { InvokeFlags, RunFlags } from "./run.js";

function readFdl(file: string | undefined): FdlResult | undefined {
  return file ? readFdlFile(file) : undefined;
}

function readLocal(path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(path));
  } catch (err) {
    throw new CliError(`cannot read the ${what} '${path}': ${(err as NodeJS.ErrnoException).code ?? err}`, 2);
  }
}

export async function runRun(args: string[], flags: RunFlags): Promise<void> {
  const fdl = readFdl(flags.confFile);
  let rest = args;
  let name = flags.name;
  if (!name && !fdl) {
    name = rest[0];
    rest = rest.slice(1);
    if (!name) throw new CliError("say which function to run: scar run NAME, -n NAME or -f FDL", 2);
  }
  const fnName = await chooseFunction(name, fdl);
  const spec = fdl?.functions.find((f) => f.name === fnName);
  await withTarget(flags, async (target) => {
    const deployed = await target.get(fnName);
    if (!deployed)
      throw new CliError(
        `Unable to find the function '${fnName}'`,
        1,
        fdl ? `create it with 'scar init -f ${flags.confFile}'` : "see 'scar ls'",
      );
    let launchPath = flags.inputBucket ?? (flags.eventSource ? `${flags.eventSource}/input` : undefined);
    const s3Input = deployed.input.find((i) => /^(s3|minio)(\.|$)/.test(i.storage_provider));
    if (flags.yes && flags.once) throw new CliError("give either --yes or --once, not both", 2);
    if (!launchPath && s3Input && rest.length === 0 && !flags.runScript && !flags.asynchronous) {
      if (flags.yes) launchPath = s3Input.path;
      else if (!flags.once) launchPath = await askToLaunch(fnName, s3Input.path);
    }
    if (launchPath) {
      if (rest.length > 0)
        throw new CliError(
          `'${rest.join(" ")}' would be arguments for the container, which a launch over the files of '${launchPath}' does not take`,
          2,
          `put options before the function name, e.g. scar run --wait -ib ${launchPath} ${fnName}`,
        );
      return launchOverBucket(target, fnName, launchPath, flags);
    }

    const event: Record<string, unknown> = {};
    const runScript = flags.runScript
      ? readLocal(flags.runScript, "run script")
      : spec?.run_script
        ? readLocal(spec.run_script, "run script")
        : typeof (deployed.raw.scar as { run_script?: unknown } | undefined)?.run_script === "string"
          ? Buffer.from((deployed.raw.scar as { run_script: string }).run_script)
          : undefined;
    if (rest.length > 0) event.cmd_args = JSON.stringify(rest);
    else if (runScript) event.script = runScript.toString("base64");
    if (flags.environment.length > 0) event.scar_env = assignments(flags.environment, "-e");

    if (flags.asynchronous) {
      const id = await target.submit(fnName, event);
      if (flags.json || flags.verbose) printJson({ LambdaOutput: { StatusCode: 202, RequestId: id } });
      else say(`Request Id: ${id}\nFunction '${fnName}' launched correctly`);
      return;
    }
    // Without -o, SCAR shows what the script printed; with -o, OSCAR's answer (the file the script
    // left in its output folder, or a zip of them) is what gets saved.
    // Named here, so Ctrl-C before the answer can still say which job goes on (scar's engine only).
    const requestId = (await target.isScarEngine()) ? randomUUID() : undefined;
    const detach = onCtrlC(fnName, requestId);
    try {
      const r = await target.run(fnName, event, {
        ...(flags.outputFile ? {} : { answer: "logs" as const }),
        ...(requestId ? { requestId } : {}),
      });
      printResult(fnName, r, flags);
    } finally {
      detach();
    }
  });
}

/**
 * Ctrl-C while waiting for a sync run stops the waiting, not the job (as with Lambda, the invocation
 * runs on): say which request it is and how to follow it, then exit 130 as a shell expects.
 */
function onCtrlC(fn: string, requestId: string | undefined): () => void {
  const handler = () => {
    process.stderr.write(
      requestId
        ? `\nStopped waiting; the function goes on running.\nRequest Id: ${requestId}\nFollow it with: scar log -n ${fn} -ri ${requestId}   (its status: scar jobs show ${requestId})\n`
        : `\nStopped waiting; the function may go on running.\nSee its logs with: scar log -n ${fn}\n`,
    );
    process.exit(130);
  };
  process.once("SIGINT", handler);
  return () => process.off("SIGINT", handler);
}

/**
 * SCAR's question before running a function that has an input bucket: one event per file there, or
 * one run with an empty event. Without a terminal there is nobody to answer, and either guess could
 * start work (and write results) nobody asked for, so the user must say which.
 */
async function askToLaunch(fn: string, path: string): Promise<string | undefined> {
  if (!interactive())
    throw new CliError(
      `'${fn}' has an input bucket ('${path}'): on a terminal scar asks whether to invoke it once per file there; without one it does not guess`,
      2,
      `invoke it once per file with --yes (or -ib ${path}), or once with an empty event with --once`,
    );
  process.stderr.write(`This function has an associated 'S3' input bucket.\n`);
  const yes = await confirm(`Do you want to launch the function using the files in '${path}'?`, false);
  return yes ? path : undefined;
}

function printResult(
  fn: string,
  r: RunResult,
  flags: { json?: boolean; verbose?: boolean; outputFile?: string },
) {
  if (flags.outputFile) {
    writeFileSync(flags.outputFile, r.output);
    say(`Output saved in file '${flags.outputFile}'`);
  } else if (flags.json || flags.verbose) {
    printJson({
      LambdaOutput: {
        StatusCode: r.httpStatus,
        Payload: r.output.toString("utf8"),
        LogGroupName: r.logGroup,
        LogStreamName: r.logStream,
        RequestId: r.requestId,
        ...(r.status ? { Status: r.status } : {}),
        ...(r.logTail !== undefined ? { LogResult: r.logTail } : {}),
      },
    });
  } else {
    say(`Request Id: ${r.requestId}\nLog Group Name: ${r.logGroup}\nLog Stream Name: ${r.logStream}`);
    process.stdout.write(r.output);
    // Lambda's last 4 KB of the invocation's log, kept off stdout, which carries the output
    if (r.logTail)
      process.stderr.write(
        `${r.output.length && !r.output.toString().endsWith("\n") ? "\n" : ""}${r.logTail}`,
      );
  }
  if (!r.ok) {
    throw new CliError(
      `Error in function response: '${fn}' ${r.status === "failed" || !r.status ? "failed" : r.status} (request ${r.requestId})`,
      1,
      `see its log: scar log -n ${fn} -ri ${r.requestId}`,
    );
  }
}

async function launchOverBucket(target: CliTarget, fn: string, path: string, flags: RunFlags) {
  if (flags.wait && target.name === "aws")
    throw new CliError(
      "--wait follows the jobs of scar's engine; Lambda keeps no job list",
      2,
      `send the events without --wait, then read the results with 'scar log -n ${fn}' and 'scar ls -b BUCKET/FOLDER'`,
    );
  const [bucket, prefix] = splitBucketPath(path);
  const store = await target.buckets();
  const files: { key: string; size: number }[] = [];
  for await (const o of store.list(bucket, prefix)) if (!o.key.endsWith("/")) files.push(o);
  const progress = showProgress(flags.json);
  const quiet = flags.json || progress;
  if (!quiet) say(`Files found: '${JSON.stringify(files.map((f) => f.key))}'`);
  if (files.length === 0) {
    if (flags.json) printJson({ Launched: [], Bucket: bucket, Prefix: prefix });
    else say(`No files under '${path}'.`);
    return;
  }
  const line = progress ? countLine(`sending events to '${fn}'`, files.length) : undefined;
  const launched: { key: string; id: string; error?: string }[] = [];
  const started = Date.now();
  await pool(files, 16, async (f) => {
    if (!quiet) say(`Sending event for file '${f.key}'`);
    try {
      const event = await target.fileEvent(fn, bucket, f.key, f.size, Boolean(flags.eventSource));
      const id = await target.submit(fn, event);
      launched.push({ key: f.key, id });
      line?.add({ done: 1 });
    } catch (err) {
      launched.push({ key: f.key, id: "", error: (err as Error).message });
      line?.add({ failed: 1 });
    }
  });
  line?.finish(`sent ${launched.filter((l) => !l.error).length} events to '${fn}'`);
  const unsent = launched.filter((l) => l.error);
  if (!flags.wait) {
    if (flags.json)
      printJson({
        Launched: launched.map((l) => ({
          Key: l.key,
          RequestId: l.id,
          ...(l.error ? { Error: l.error } : {}),
        })),
      });
    if (unsent.length > 0)
      throw new CliError(`${unsent.length} events could not be sent: ${unsent[0]!.error}`);
    return;
  }
  const summary = await waitForJobs(
    target,
    fn,
    launched.filter((l) => !l.error),
    progress,
  );
  const wall = (Date.now() - started) / 1000;
  if (flags.json) {
    printJson({ ...summary, Unsent: unsent.length, WallSeconds: Math.round(wall * 1000) / 1000 });
  } else {
    say(
      `${summary.Jobs} jobs: ${summary.Succeeded} succeeded, ${summary.Failed} failed` +
        `${unsent.length ? `, ${unsent.length} not sent` : ""}; duration p50 ${fmt(summary.P50Seconds)}, p95 ${fmt(summary.P95Seconds)}; ${fmt(wall)} in all`,
    );
    for (const f of summary.Failures)
      say(`  failed: ${f.Key}  request ${f.RequestId}  (${f.Status}${f.Reason ? `: ${f.Reason}` : ""})`);
    if (summary.Failures.length > 0) say(`  see a failure's log with: scar log -n ${fn} -ri REQUEST_ID`);
  }
  if (summary.Failed > 0 || unsent.length > 0) process.exitCode = 1;
}

const fmt = (s: number | null) => (s === null ? "-" : `${s.toFixed(s < 10 ? 2 : 1)} s`);

const FINAL = new Set<string>(FINAL_STATUSES);
/**
 * Rounds (300 ms apart) a submitted job may go unlisted before it counts as unknown (6 s): OSCAR
 * creates the Job before it answers, so a job it does not list is gone or was named otherwise.
 */
const UNSEEN_POLLS = 20;

/**
 * Polls the jobs until each has a final status. A job the target does not list never ends by
 * itself: an empty id (the target could not tell the job's name) is "unknown" at once, one that was
 * listed and is gone (OSCAR deletes finished jobs after a while) is "unknown" then, and one never
 * listed is "unknown" after UNSEEN_POLLS rounds.
 */
async function waitForJobs(
  target: CliTarget,
  fn: string,
  jobs: { key: string; id: string }[],
  progress: boolean,
) {
  const pending = new Map(jobs.filter((j) => j.id).map((j) => [j.id, j]));
  const results = new Map<string, { status: string; seconds: number | null; reason?: string }>();
  const unnamed = jobs.filter((j) => !j.id).length;
  const seen = new Set<string>();
  const unseenRounds = new Map<string, number>();
  const line = progress ? countLine(`waiting for '${fn}'`, jobs.length) : undefined;
  while (pending.size > 0) {
    let running = 0;
    const batch = [...pending.values()].slice(0, 400);
    const found = await target.jobsByIds(
      fn,
      batch.map((j) => j.id),
    );
    for (const j of batch) {
      const info = found.get(j.id);
      if (!info) {
        const rounds = (unseenRounds.get(j.id) ?? 0) + 1;
        unseenRounds.set(j.id, rounds);
        if (seen.has(j.id) || rounds >= UNSEEN_POLLS) {
          results.set(j.id, { status: "unknown", seconds: null });
          pending.delete(j.id);
        }
        continue;
      }
      seen.add(j.id);
      if (info.status === "running") running++;
      if (!FINAL.has(info.status)) continue;
      const rec = info.record as
        | { startedAt?: number; stages?: { done?: number }; reason?: string }
        | undefined;
      const seconds =
        rec?.startedAt && rec.stages?.done
          ? (rec.stages.done - rec.startedAt) / 1000
          : info.started && info.finished
            ? (Date.parse(info.finished) - Date.parse(info.started)) / 1000
            : null;
      results.set(j.id, { status: info.status, seconds, ...(rec?.reason ? { reason: rec.reason } : {}) });
      pending.delete(j.id);
    }
    const failed = [...results.values()].filter((r) => r.status !== "succeeded").length + unnamed;
    line?.update({ done: results.size - failed + unnamed, failed, running });
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 300));
  }
  line?.finish();
  const secs = [...results.values()]
    .map((r) => r.seconds)
    .filter((s): s is number => s !== null)
    .sort((a, b) => a - b);
  const pct = (p: number) =>
    secs.length ? secs[Math.min(secs.length - 1, Math.floor(p * secs.length))]! : null;
  const failures = jobs
    .filter((j) => !j.id || results.get(j.id)?.status !== "succeeded")
    .map((j) => ({
      Key: j.key,
      RequestId: j.id,
      Status: results.get(j.id)?.status ?? "unknown",
      ...(results.get(j.id)?.reason ? { Reason: results.get(j.id)!.reason } : {}),
    }));
  return {
    Jobs: jobs.length,
    Succeeded: jobs.length - failures.length,
    Failed: failures.length,
    P50Seconds: pct(0.5),
    P95Seconds: pct(0.95),
    Failures: failures,
  };
}

export async function runInvoke(positional: string | undefined, flags: InvokeFlags): Promise<void> {
  const fdl = readFdl(flags.confFile);
  const fnName = await chooseFunction(flags.name ?? positional, fdl);
  let query: Record<string, string | string[]> | undefined;
  if (flags.parameters) {
    try {
      query = JSON.parse(flags.parameters) as Record<string, string | string[]>;
    } catch {
      throw new CliError(`-p expects a JSON object, e.g. '{"key1": "value1"}', not '${flags.parameters}'`, 2);
    }
  }
  let body: string | undefined;
  let contentType: string | undefined;
  if (flags.dataBinary) {
    body = readLocal(flags.dataBinary, "file").toString("base64");
    contentType = "application/octet-stream";
  } else if (flags.jsonData) {
    try {
      body = JSON.stringify(JSON.parse(flags.jsonData));
    } catch {
      throw new CliError(`-jd expects JSON, not '${flags.jsonData}'`, 2);
    }
    contentType = "application/json";
  }
  await withTarget(flags, async (target) => {
    let r: RunResult;
    try {
      r = await target.invokeHttp(fnName, {
        method: body === undefined ? "GET" : "POST",
        ...(body !== undefined ? { body } : {}),
        ...(contentType ? { contentType } : {}),
        ...(query ? { query } : {}),
        asynchronous: Boolean(flags.asynchronous),
      });
    } catch (err) {
      // the engine's 404 says the same in its own words: one message, one hint
      if (err instanceof ApiError && err.status === 404)
        throw (await target.get(fnName))
          ? new CliError(
              `Error retrieving API ID for lambda function '${fnName}'`,
              1,
              "the function has no HTTP endpoint: create it with -api NAME (or api_gateway.name in the FDL)",
            )
          : new CliError(`Unable to find the function '${fnName}'`);
      throw err;
    }
    if (flags.asynchronous) {
      say(`Request Id: ${r.requestId}\nFunction '${fnName}' launched correctly`);
      return;
    }
    printResult(fnName, r, flags);
  });
}
