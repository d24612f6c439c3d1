/**
 * GET /system/jobs/<id>/log?follow=true (admin): one job's log as server-sent events, as `scar log`
 * shows it (START, the log, END, REPORT), that follows the job live. Events:
 *   `log`  data: a JSON string, text to append: first the START line and the log so far, then what
 *          the job prints as the engine writes it to the job store (every 200 ms while it prints);
 *   `end`  data: {"status", "attempts"} once the job reached a final status (succeeded, failed,
 *          dead), after the END and REPORT lines; then the stream closes. A job already final gets
 *          its whole log and `end` at once; a job that is retried goes on in the same stream.
 * Joined, the `log` texts are the text of GET /system/jobs/<id>/log at the end (the size cap of a
 * job's log applies to what is stored, not to what a follower was sent).
 *
 * The dashboard reads it with fetch (an Authorization header, which EventSource cannot send).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine } from "../engine.js";
import { endLine, lambdaLog, type ReportOptions, reportLine, startLine } from "../jobs/index.js";
import { FINAL_STATUSES, type JobRecord } from "../jobs/types.js";
import { openEventStream } from "./events.js";

/** How often a quiet stream gets a comment line (proxies close idle ones) and checks that its job is still there. */
const KEEP_ALIVE_MS = 15000;

export function followJobLog(
  engine: Engine,
  job: JobRecord,
  req: IncomingMessage,
  res: ServerResponse,
  report: () => ReportOptions,
): void {
  openEventStream(res);
  const send = (event: string, data: unknown) => {
    if (!res.destroyed && !res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const end = (final: JobRecord | undefined) => {
    send("end", final ? { status: final.status, attempts: final.attempts } : { status: "deleted" });
    res.end();
  };
  if (FINAL_STATUSES.includes(job.status)) {
    send("log", lambdaLog(job, engine.jobs.log(job.id) ?? "", report()));
    end(job);
    return;
  }
  // Subscribed before the log so far is read, in the same turn: no text is missed or sent twice.
  let last = "\n";
  const append = (text: string) => {
    if (text.length === 0) return;
    last = text[text.length - 1]!;
    send("log", text);
  };
  const unsubscribeLog = engine.onJobLog((id, text) => {
    if (id === job.id) append(text);
  });
  const unsubscribeJobs = engine.onJobChange((c) => {
    if (c.kind !== "job" || c.job.id !== job.id || !FINAL_STATUSES.includes(c.job.status)) return;
    // the scheduler writes (and sends) a job's last log text before its final record
    append(`${last === "\n" ? "" : "\n"}${endLine(c.job)}\n${reportLine(c.job, report())}\n`);
    close();
    end(c.job);
  });
  append(`${startLine(job)}\n${engine.jobs.log(job.id) ?? ""}`);
  const keepAlive = setInterval(() => {
    if (engine.jobs.get(job.id)) res.write(": keep-alive\n\n");
    else {
      close();
      end(undefined); // deleted while it ran (its function's jobs removed): no end will come
    }
  }, KEEP_ALIVE_MS);
  const close = () => {
    unsubscribeLog();
    unsubscribeJobs();
    clearInterval(keepAlive);
  };
  req.on("close", close);
  res.on("close", close);
}
