/**
 * `scar jobs ls|show|retry|dead|redrive`: the job records of scar's engine (stage times, attempts,
 * dead letters). OSCAR clusters keep no such records; there `scar log` shows what they have.
 */
import type { Command } from "commander";
import type { CliTarget, OscarTarget } from "../../targets/index.js";
import { CliError } from "../errors.js";
import { addTargetOption, type TargetFlags } from "../options.js";
import { formatTable } from "../table.js";

type Flags = TargetFlags & { name?: string; status?: string; json?: boolean; limit?: string };

interface JobRecord {
  id: string;
  function: string;
  status: string;
  reason?: string | null;
  error?: string | null;
  exitCode?: number | null;
  attempts?: number | unknown[];
  trigger?: { type: string; bucket?: string; key?: string; path?: string };
  stages?: Record<string, number | null>;
  startedAt?: number | null;
  outputKeys?: string[];
  logStream?: string;
  children?: { id: string; status: string }[];
  parentId?: string | null;
  /** Where the last attempt ran, when the engine keeps warm execution environments. */
  environment?: { id: string; start: "cold" | "warm"; startMs: number } | null;
}

/** The target as scar's engine; any other has no job records to show. */
async function engineOnly(target: CliTarget): Promise<OscarTarget> {
  if (target.name === "aws" || !(await target.isScarEngine()))
    throw new CliError(
      `${target.name} keeps no job records; 'scar jobs' works with scar's engine`,
      1,
      target.name === "aws"
        ? "see a function's requests with 'scar log -n NAME'"
        : "see an OSCAR service's jobs with 'scar log -n NAME'",
    );
  return target as OscarTarget;
}

function trigger(j: JobRecord): string {
  const t = j.trigger;
  if (!t) return "";
  if (t.type === "object") return `${t.bucket}/${t.key}`;
  if (t.type === "http") return String(t.path ?? "http");
  return t.type;
}

interface Attempt {
  n?: number;
  reason?: string | null;
  error?: string | null;
  exitCode?: number | null;
}

/**
 * What went wrong in a job's last attempt: its reason and its message (the handler's error, or the
 * script's exit code when the script failed). A dead letter's own `error` is often empty: the
 * reason and message live in its attempts.
 */
export function lastError(j: JobRecord): string {
  const attempts = Array.isArray(j.attempts) ? (j.attempts as Attempt[]) : [];
  const last = attempts.reduce<Attempt | undefined>((a, b) => ((b.n ?? 0) >= (a?.n ?? 0) ? b : a), undefined);
  const reason = last?.reason ?? j.reason ?? "";
  const message = last?.error ?? j.error ?? undefined;
  const exit = last?.exitCode ?? j.exitCode;
  const parts = [
    reason,
    message ? message : typeof exit === "number" && exit !== 0 ? `exit code ${exit}` : "",
  ].filter(Boolean);
  const text = parts.join(": ");
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function ms(a: number | null | undefined, b: number | null | undefined): number | null {
  return typeof a === "number" && typeof b === "number" ? b - a : null;
}

/** An environment id short enough for a line: its start identifies it (the full id is in --json). */
function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}

/**
 * How the job's last attempt started: in a new execution environment (cold, with the time that start
 * took) or in a warm one it reused. Nothing for a job without one (a fresh container per invocation,
 * or an attempt that has not ended).
 */
function startLine(j: JobRecord): string[] {
  const e = j.environment;
  if (!e) return [];
  return e.start === "cold"
    ? [`start:       cold (environment ${shortId(e.id)} started in ${Math.round(e.startMs)} ms)`]
    : [`start:       warm (environment ${shortId(e.id)})`];
}

/** `scar jobs show`'s text: the record, then the stage times, a cold start's environment start among them. */
export function showText(j: JobRecord): string {
  const s = j.stages ?? {};
  const lines = [
    `request id:  ${j.id}`,
    `function:    ${j.function}`,
    `status:      ${j.status}${j.reason ? ` (${j.reason})` : ""}${typeof j.exitCode === "number" ? `, exit code ${j.exitCode}` : ""}`,
    `trigger:     ${trigger(j)}`,
    `attempts:    ${Array.isArray(j.attempts) ? j.attempts.length : (j.attempts ?? "")}`,
    ...startLine(j),
    ...(j.error ? [`error:       ${j.error}`] : []),
    ...(j.logStream ? [`log stream:  ${j.logStream}`] : []),
    ...(j.parentId ? [`delegated from: ${j.parentId}`] : []),
    ...(j.children ?? []).map((c) => `delegated to: ${c.id} (${c.status})`),
    "stages (ms after queued):",
  ];
  for (const [name, at] of Object.entries(s)) {
    if (typeof at !== "number") continue;
    lines.push(`  ${name.padEnd(16)} ${ms(s.queued, at)}`);
    // The environment's start is part of the container stage: shown under it, as its own duration.
    if (name === "container_start" && j.environment?.start === "cold")
      lines.push(`    environment start took ${Math.round(j.environment.startMs)} ms`);
  }
  for (const k of j.outputKeys ?? []) lines.push(`output:      ${k}`);
  return lines.join("\n");
}

function withOpts(cmd: Command): Command {
  return addTargetOption(cmd.option("-j, --json", "print JSON"));
}

export function registerJobs(program: Command): void {
  const jobs = program
    .command("jobs")
    .description(
      "Inspect jobs (one per invocation): list, show with stage times, retry, dead letters, redrive",
    );

  withOpts(
    jobs
      .command("ls")
      .description("list jobs, newest first")
      .option("-n, --name <function>", "only this function's")
      .option("--status <status>", "only queued, running, succeeded, failed or dead jobs")
      .option("--limit <n>", "at most this many (default 50)", "50"),
  ).action(async (flags: Flags) =>
    (await import("../context.js")).withTarget(flags, async (target) => {
      const { printJson, say } = await import("../context.js");
      const engine = await engineOnly(target);
      const res = await engine.client.json<{ jobs: JobRecord[] }>("GET", "/system/jobs", {
        query: { service: flags.name, status: flags.status, limit: flags.limit },
      });
      if (flags.json) return printJson(res);
      say(
        formatTable(
          ["REQUEST ID", "FUNCTION", "STATUS", "REASON", "TRIGGER", "QUEUED", "MS", "START"],
          res.jobs.map((j) => [
            j.id,
            j.function,
            j.status,
            j.reason && j.reason !== "ok" ? j.reason : "",
            trigger(j),
            j.stages?.queued ? new Date(j.stages.queued).toISOString() : "",
            ms(j.stages?.queued, j.stages?.done),
            j.environment?.start ?? "",
          ]),
        ),
      );
    }),
  );

  withOpts(
    jobs
      .command("show")
      .description("a job's record: status, attempts, stage times, outputs")
      .argument("<id>"),
  ).action(async (id: string, flags: Flags) =>
    (await import("../context.js")).withTarget(flags, async (target) => {
      const { printJson, say } = await import("../context.js");
      const engine = await engineOnly(target);
      const j = await engine.client.json<JobRecord>("GET", `/system/jobs/${encodeURIComponent(id)}`);
      if (flags.json) return printJson(j);
      say(showText(j));
    }),
  );

  withOpts(jobs.command("retry").description("run a failed or dead job again").argument("<id>")).action(
    async (id: string, flags: Flags) =>
      (await import("../context.js")).withTarget(flags, async (target) => {
        const { printJson, say } = await import("../context.js");
        const engine = await engineOnly(target);
        const r = await engine.client.json<{ jobID?: string }>(
          "POST",
          `/system/jobs/${encodeURIComponent(id)}/retry`,
        );
        if (flags.json) return printJson(r ?? {});
        say(r?.jobID && r.jobID !== id ? `retrying ${id} as ${r.jobID}` : `retrying ${id}`);
      }),
  );

  withOpts(
    jobs
      .command("dead")
      .description("list dead letters: async jobs that failed every attempt")
      .option("-n, --name <function>", "only this function's"),
  ).action(async (flags: Flags) =>
    (await import("../context.js")).withTarget(flags, async (target) => {
      const { printJson, say } = await import("../context.js");
      const engine = await engineOnly(target);
      const res = await engine.client.json<{ jobs: JobRecord[] }>("GET", "/system/dead-letters", {
        query: { service: flags.name },
      });
      if (flags.json) return printJson(res);
      say(
        formatTable(
          ["REQUEST ID", "FUNCTION", "REASON", "TRIGGER", "ERROR"],
          res.jobs.map((j) => [j.id, j.function, j.reason ?? "", trigger(j), lastError(j)]),
        ),
      );
    }),
  );

  withOpts(
    jobs
      .command("redrive")
      .description("queue dead letters again: the given ones, or all of a function's (-n), or all")
      .argument("[ids...]")
      .option("-n, --name <function>", "every dead letter of this function"),
  ).action(async (ids: string[], flags: Flags) =>
    (await import("../context.js")).withTarget(flags, async (target) => {
      const { printJson, say } = await import("../context.js");
      const engine = await engineOnly(target);
      const r = await engine.client.json<{ redriven: number }>("POST", "/system/dead-letters/redrive", {
        query: { service: flags.name },
        ...(ids.length > 0 ? { json: { ids } } : {}),
      });
      if (flags.json) return printJson(r);
      say(`queued ${r.redriven} dead letter${r.redriven === 1 ? "" : "s"} again`);
    }),
  );
}
