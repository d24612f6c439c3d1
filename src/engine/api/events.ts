/**
 * GET /system/events (admin): the job system's changes as server-sent events, for live views (the
 * dashboard). Changes are gathered and sent at most every `flushMs` (default 200 ms) as one event
 * `jobs` whose data is `{"jobs": [job record, ...], "queued": ["<function>", ...]}`: each changed job
 * once, in its latest state, and the functions that had jobs queued (a new job, a retry, a redrive;
 * the job store does not say which jobs, so a view reads its first page again). 200 jobs/s are then
 * 5 events/s, not 600. A comment line every 15 s keeps proxies from closing an idle stream.
 *
 * A browser's EventSource cannot send an Authorization header; the dashboard reads this stream with
 * fetch instead, so it needs no cookie and no token in the URL.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine } from "../engine.js";
import type { JobRecord } from "../jobs/types.js";

/** Answers 200 as a server-sent event stream that no cache or proxy buffers. */
export function openEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
}

export function streamJobEvents(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  flushMs = 200,
): void {
  openEventStream(res);
  // The first bytes tell the client the stream is open (fetch resolves on the headers alone, but a
  // proxy may hold them until a body comes).
  res.write(": scar job events\n\n");
  const jobs = new Map<string, JobRecord>();
  const queued = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    if (jobs.size === 0 && queued.size === 0) return;
    const data = JSON.stringify({ jobs: [...jobs.values()], queued: [...queued] });
    jobs.clear();
    queued.clear();
    res.write(`event: jobs\ndata: ${data}\n\n`);
  };
  const unsubscribe = engine.onJobChange((c) => {
    if (c.kind === "job") jobs.set(c.job.id, c.job);
    else queued.add(c.function);
    timer ??= setTimeout(flush, flushMs);
  });
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15000);
  const close = () => {
    unsubscribe();
    clearInterval(keepAlive);
    if (timer) clearTimeout(timer);
  };
  req.on("close", close);
  res.on("close", close);
}
