/** What `scar log` does. */
import { FINAL_STATUSES } from "../../engine/jobs/types.js";
import type { AwsTarget, CliTarget, JobInfo } from "../../targets/index.js";
import { chooseFunction, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { readFdlFile } from "../fdl-file.js";
import type { LogFlags } from "./log.js";

const FINAL = new Set<string>(FINAL_STATUSES);

export async function runLog(positional: string | undefined, flags: LogFlags): Promise<void> {
  const fdl = flags.confFile ? readFdlFile(flags.confFile) : undefined;
  const fn = await chooseFunction(flags.name ?? positional, fdl);
  await withTarget(flags, async (target) => {
    if (target.name === "aws") return awsLog(target as AwsTarget, fn, flags);
    if (!(await target.get(fn))) {
      // scar's engine keeps the jobs and logs of a deleted function (scar rm says so): show them
      const kept = (await target.isScarEngine()) && (await target.jobs(fn)).length > 0;
      if (!kept) throw new CliError(`Unable to find the function '${fn}'`);
      if (flags.follow) throw new CliError(`function '${fn}' was deleted; its logs get no new entries`);
      process.stderr.write(`(function '${fn}' was deleted; these are the logs kept of its jobs)\n`);
    }
    if (flags.requestId) {
      process.stdout.write(await requestLog(target, fn, flags.requestId));
      return;
    }
    const shown = new Set<string>();
    const printNew = async () => {
      const jobs = (await target.jobs(fn)).filter(
        (j) => !flags.logStreamName || j.logStream === flags.logStreamName,
      );
      for (const j of jobs) {
        if (shown.has(j.id) || (flags.follow && !FINAL.has(j.status))) continue;
        shown.add(j.id);
        process.stdout.write(ensureNewline(await target.jobLog(fn, j.id)));
      }
      return jobs.length;
    };
    const n = await printNew();
    if (!flags.follow) {
      if (n === 0 && flags.logStreamName)
        throw new CliError(`no log stream '${flags.logStreamName}' for function '${fn}'`);
      return;
    }
    process.stderr.write(`(following the logs of '${fn}'; Ctrl-C to stop)\n`);
    let stop = false;
    process.once("SIGINT", () => {
      stop = true;
    });
    while (!stop) {
      await new Promise((r) => setTimeout(r, 1000));
      if (!stop) await printNew();
    }
  });
}

/** One request's log, and the log of the batch job it was delegated to (SCAR's `-ri`). */
async function requestLog(target: CliTarget, fn: string, id: string): Promise<string> {
  let job: JobInfo | undefined;
  try {
    job = await target.job(id, fn);
  } catch {
    job = undefined;
  }
  if (!job || job.function !== fn)
    throw new CliError(
      `no request '${id}' of function '${fn}'`,
      1,
      `see the requests with: scar jobs ls -n ${fn}`,
    );
  let text = ensureNewline(await target.jobLog(fn, id));
  const children = (job.record?.children ?? []) as { id: string; status: string }[];
  for (const child of children) {
    text += `Batch job status: ${child.status.toUpperCase()}\n`;
    text += ensureNewline(await target.jobLog(fn, child.id));
  }
  return text;
}

function ensureNewline(s: string): string {
  return s === "" || s.endsWith("\n") ? s : `${s}\n`;
}

/**
 * How far back `--follow` asks again: CloudWatch takes events in late (their time is when they were
 * written, not when they arrived), and several share a millisecond; those already shown are left out
 * by their eventId.
 */
const LATE_MS = 5 * 60_000;

/**
 * SCAR's `log` on AWS: the log group's events (one stream with -ls), one request's lines with -ri
 * (and the Batch job it was delegated to), and with --follow what is new every two seconds.
 */
async function awsLog(target: AwsTarget, fn: string, flags: LogFlags): Promise<void> {
  if (!(await target.get(fn))) throw new CliError(`Unable to find the function '${fn}'`);
  // loaded here: log-group.ts loads the CloudWatch Logs SDK, which only the aws target needs
  const { RequestLines } = await import("../../targets/aws/log-group.js");
  const q = {
    ...(flags.logStreamName ? { stream: flags.logStreamName } : {}),
    // one filter for every poll: a request's START and REPORT may come in different ones
    ...(flags.requestId ? { request: new RequestLines(flags.requestId) } : {}),
    ...(flags.follow ? { seen: new Map<string, number>() } : {}),
  };
  let { text, last } = await target.logText(fn, q);
  if (flags.requestId) text += await target.batchJobLog(flags.requestId);
  process.stdout.write(text);
  if (!flags.follow) return;
  process.stderr.write(`(following the logs of '${fn}'; Ctrl-C to stop)\n`);
  let stop = false;
  process.once("SIGINT", () => {
    stop = true;
  });
  while (!stop) {
    await new Promise((r) => setTimeout(r, 2000));
    if (stop) break;
    const next = await target.logText(fn, { ...q, startTime: Math.max(0, last - LATE_MS) });
    process.stdout.write(next.text);
    last = Math.max(last, next.last);
  }
}
