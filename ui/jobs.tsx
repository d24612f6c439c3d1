/**
 * Jobs: a live list (the engine's job events update it in place; virtualised, so 10,000 rows
 * scroll as 40), one job's stage timeline, attempts and log (followed live: log-follow.ts), retry of
 * a failed or dead job, and the dead letters with their redrive.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { enc, getJson } from "./api";
import { subscribe } from "./live";
import { useFollowedLog } from "./log-follow";
import { type Attempt, JOB_STATUSES, type Job, type Service } from "./types";
import { duration, ErrorLine, message, useLoad, when } from "./util";

const ROW = 34;
const PAGE = 500;
/** The most rows kept in the list (older ones are dropped as new ones come). */
const MAX_ROWS = 20000;

function queuedAt(j: Job): number {
  return j.stages.queued ?? 0;
}

/** Newest first; a stable sort, so jobs queued in the same millisecond keep the engine's order. */
function newestFirst(a: Job, b: Job): number {
  return queuedAt(b) - queuedAt(a);
}

/**
 * How far a record of a job has come (its cycle, its attempts, ended or not): a list read while
 * events arrive may carry an older record than the one shown, which must not replace it.
 */
function behind(a: Job, b: Job): boolean {
  const at = (j: Job) => [
    j.cycle ?? 1,
    typeof j.attempts === "number" ? j.attempts : j.attempts.length,
    j.stages.done === null ? 0 : 1,
  ];
  const [x, y] = [at(a), at(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}

function what(j: Job): string {
  const t = j.trigger;
  if (t.type === "object") return `${t.bucket}/${t.key}`;
  if (t.type === "http") return String(t.path ?? "http");
  return t.type;
}

function jobsQuery(fn: string, status: string, page?: string): string {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (fn) q.set("service", fn);
  if (status) q.set("status", status);
  if (page) q.set("page", page);
  return `/system/jobs?${q}`;
}

export function JobsPage({ fn: fixedFn }: { fn?: string }) {
  const [fn, setFn] = useState(fixedFn ?? "");
  const [status, setStatus] = useState("");
  const [jobs, setJobs] = useState<Job[]>([]);
  /** The next page's cursor; undefined before the first page is read, null once the last one is. */
  const [next, setNext] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const services = useLoad(() => getJson<Service[]>("/system/services"), []);
  const keep = (j: Job) => (!fn || j.function === fn) && (!status || j.status === status);
  /**
   * Newer records win (never one that is behind the one shown); jobs not in the list yet go at its top (`newer`, in the order given) or its
   * end (an older page), then the list is sorted, newest first (nearly sorted already: cheap).
   */
  const merge = (prev: Job[], incoming: Iterable<Job>, newer: boolean): Job[] => {
    const latest = new Map<string, Job>();
    const dropped = new Set<string>();
    for (const j of incoming) {
      if (keep(j)) {
        latest.set(j.id, j);
        dropped.delete(j.id);
      } else {
        dropped.add(j.id);
        latest.delete(j.id);
      }
    }
    const rest: Job[] = [];
    for (const j of prev) {
      if (dropped.has(j.id)) continue;
      const now = latest.get(j.id);
      latest.delete(j.id);
      rest.push(now && !behind(now, j) ? now : j);
    }
    const added = [...latest.values()];
    return (newer ? added.concat(rest) : rest.concat(added)).sort(newestFirst).slice(0, MAX_ROWS);
  };
  useEffect(() => setFn(fixedFn ?? ""), [fixedFn]);
  useEffect(() => {
    let live = true;
    setJobs([]);
    setNext(undefined);
    setError("");
    const first = () =>
      getJson<{ jobs: Job[]; next_page?: string }>(jobsQuery(fn, status)).then(
        (r) => {
          if (!live) return;
          setJobs((prev) => merge(prev, r.jobs, true));
          // read again for new jobs: the pages read since stay read
          setNext((n) => (n === undefined ? (r.next_page ?? null) : n));
        },
        (e) => live && setError(message(e)),
      );
    void first();
    let again: number | undefined;
    // The events' records wait for the next frame and are applied in one render (the latest record
    // of each job wins): a burst of events, or a stream catching up, costs one merge, not one each.
    let pending = new Map<string, Job>();
    let frame = 0;
    const apply = () => {
      cancelAnimationFrame(frame);
      frame = 0;
      // the stream gives a batch oldest first; the list is newest first
      const batch = [...pending.values()].reverse();
      pending = new Map();
      setJobs((prev) => merge(prev, batch, true));
    };
    const unsubscribe = subscribe((e) => {
      for (const j of e.jobs) {
        pending.delete(j.id);
        pending.set(j.id, j);
      }
      // a hidden tab gets no frames: what waits stays bounded
      if (pending.size >= MAX_ROWS) apply();
      else if (pending.size > 0 && !frame) frame = requestAnimationFrame(apply);
      // new jobs are known by their function only: read the first page again (at most 3 times a second)
      if (e.queued.some((f) => !fn || f === fn))
        again ??= window.setTimeout(() => {
          again = undefined;
          void first();
        }, 300);
    });
    return () => {
      live = false;
      unsubscribe();
      cancelAnimationFrame(frame);
      if (again) clearTimeout(again);
    };
  }, [fn, status]);
  const more = async () => {
    if (!next || loading) return;
    setLoading(true);
    try {
      const r = await getJson<{ jobs: Job[]; next_page?: string }>(jobsQuery(fn, status, next));
      setJobs((prev) => merge(prev, r.jobs, false));
      setNext(r.next_page ?? null);
    } catch (e) {
      setError(message(e));
    } finally {
      setLoading(false);
    }
  };
  return (
    <>
      <h1>Jobs{fn ? ` of ${fn}` : ""}</h1>
      <div class="row filters">
        <label>
          Function
          <select value={fn} onChange={(e) => setFn(e.currentTarget.value)}>
            <option value="">all</option>
            {(services.value ?? []).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
            {fn && !(services.value ?? []).some((s) => s.name === fn) && <option value={fn}>{fn}</option>}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">all</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <span class="hint" aria-live="polite">
          {jobs.length.toLocaleString("en-US")} job{jobs.length === 1 ? "" : "s"} shown
          {next ? " (more on scroll)" : ""}
        </span>
      </div>
      <ErrorLine error={error} />
      <JobList jobs={jobs} onEnd={more} />
    </>
  );
}

/** Only the rows in view (and a few around) are in the DOM. */
function JobList({ jobs, onEnd }: { jobs: Job[]; onEnd: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setHeight(el.clientHeight);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / ROW) - 10);
  const last = Math.min(jobs.length, Math.ceil((top + height) / ROW) + 10);
  const onScroll = (e: Event) => {
    const el = e.currentTarget as HTMLDivElement;
    setTop(el.scrollTop);
    if (el.scrollTop + el.clientHeight > el.scrollHeight - ROW * 20) onEnd();
  };
  if (jobs.length === 0) return <p>No job yet. Upload a file to a function's input, or invoke it.</p>;
  return (
    <div class="joblist">
      <div class="jobrow head" aria-hidden="true">
        <span>Status</span>
        <span>Function</span>
        <span>Trigger</span>
        <span>Queued</span>
        <span>Took</span>
        <span>Start</span>
      </div>
      <div class="jobscroll" ref={box} onScroll={onScroll}>
        <ul aria-label={`jobs, newest first: ${jobs.length}`} style={{ height: `${jobs.length * ROW}px` }}>
          {jobs.slice(first, last).map((j, i) => (
            <li key={j.id} style={{ top: `${(first + i) * ROW}px` }} data-id={j.id} data-status={j.status}>
              <a class="jobrow" href={`#/jobs/${j.id}`}>
                <span class={`st ${j.status}`}>{j.status}</span>
                <span>{j.function}</span>
                <span class="trigger">{what(j)}</span>
                <span>{when(j.stages.queued)}</span>
                <span>
                  {j.stages.done !== null ? duration(j.stages.done - (j.stages.queued ?? j.stages.done)) : ""}
                </span>
                <span>{j.environment?.start ?? ""}</span>
              </a>
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}

interface Segment {
  name: string;
  from: number;
  to: number;
}

/**
 * The stages of one attempt as spans of time: the stage times are marks (stage_in: staging in
 * starts; container_start: the command is handed to its container), so each span runs from one
 * mark to the next one that is there. An environment's cold start is the first part of the run.
 */
export function segments(
  stages: Partial<Record<string, number | null>>,
  startedAt: number | null,
  env: Job["environment"] | Attempt["environment"],
): Segment[] {
  const at = (s: string) => stages[s] ?? null;
  const out: Segment[] = [];
  const add = (name: string, from: number | null, to: number | null) => {
    if (from !== null && to !== null && to >= from) out.push({ name, from, to });
  };
  const end = at("done");
  const firstAfter = (...names: string[]) => {
    for (const n of names) if (at(n) !== null) return at(n);
    return end;
  };
  add("queued", at("queued"), startedAt ?? firstAfter("image_ready", "stage_in"));
  add("image", startedAt, firstAfter("image_ready", "stage_in"));
  add("stage-in", at("image_ready") ?? startedAt, firstAfter("container_start", "script_end"));
  const run = at("container_start");
  const runEnd = firstAfter("script_end", "stage_out");
  if (run !== null && env) {
    const envEnd = Math.min(run + env.startMs, runEnd ?? run);
    add(env.start === "cold" ? "environment start (cold)" : "environment (warm)", run, envEnd);
    add("run", envEnd, runEnd);
  } else add("run", run, runEnd);
  add("stage-out", at("script_end"), end);
  return out.filter((s) => s.to > s.from || s.name.startsWith("environment"));
}

function Timeline({ segs }: { segs: Segment[] }) {
  if (segs.length === 0) return <p class="hint">No stage reached yet.</p>;
  const start = Math.min(...segs.map((s) => s.from));
  const end = Math.max(...segs.map((s) => s.to));
  const total = Math.max(1, end - start);
  return (
    <div class="timeline">
      <div
        class="bars"
        role="img"
        aria-label={segs.map((s) => `${s.name} ${duration(s.to - s.from)}`).join(", ")}
      >
        {segs.map((s) => (
          <span
            key={s.name}
            class={`seg seg-${s.name.split(" ")[0]}`}
            style={{
              left: `${((s.from - start) / total) * 100}%`,
              width: `max(2px, ${((s.to - s.from) / total) * 100}%)`,
            }}
            title={`${s.name}: ${duration(s.to - s.from)}`}
          />
        ))}
      </div>
      <table class="grid compact">
        <thead>
          <tr>
            <th scope="col">Stage</th>
            <th scope="col">From</th>
            <th scope="col">Took</th>
          </tr>
        </thead>
        <tbody>
          {segs.map((s) => (
            <tr key={s.name}>
              <th scope="row">
                <span class={`swatch seg-${s.name.split(" ")[0]}`} /> {s.name}
              </th>
              <td>+{duration(s.from - start)}</td>
              <td>{duration(s.to - s.from)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function JobPage({ id }: { id: string }) {
  const job = useLoad(() => getJson<Job>(`/system/jobs/${enc(id)}`), [id]);
  const [note, setNote] = useState("");
  const status = job.value?.status;
  const log = useFollowedLog(id, job.value?.attemptCount, status === "queued" || status === "running");
  const { reload: reloadJob } = job;
  useEffect(
    () =>
      subscribe((e) => {
        if (e.jobs.some((j) => j.id === id)) reloadJob();
      }),
    [id, reloadJob],
  );
  const retry = async () => {
    setNote("");
    try {
      const r = await getJson<{ jobID: string; redriven: boolean }>(`/system/jobs/${enc(id)}/retry`, {
        method: "POST",
      });
      if (r.redriven) {
        setNote("Redriven: the job runs again.");
        reloadJob();
      } else location.hash = `#/jobs/${r.jobID}`;
    } catch (e) {
      setNote(message(e));
    }
  };
  const j = job.value;
  const attempts = j && Array.isArray(j.attempts) ? j.attempts : [];
  const segs = useMemo(() => (j ? segments(j.stages, j.startedAt, j.environment) : []), [j]);
  return (
    <>
      <p>
        <a href="#/jobs">← Jobs</a>
      </p>
      <h1>
        Job <code>{id}</code>
      </h1>
      <ErrorLine error={job.error} />
      {j && (
        <>
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <span class={`st ${j.status}`}>{j.status}</span>
              {j.reason && j.reason !== "ok" ? ` (${j.reason})` : ""}
              {(j.status === "failed" || j.status === "dead") && (
                <button type="button" onClick={retry}>
                  {j.status === "dead" ? "Redrive" : "Retry"}
                </button>
              )}
            </dd>
            <dt>Function</dt>
            <dd>
              <a href={`#/jobs-of/${enc(j.function)}`}>{j.function}</a>
            </dd>
            <dt>Trigger</dt>
            <dd>{what(j)}</dd>
            <dt>Attempts</dt>
            <dd>{j.attemptCount ?? attempts.length}</dd>
            {j.error && (
              <>
                <dt>Error</dt>
                <dd class="error">{j.error}</dd>
              </>
            )}
            {j.outputKeys.length > 0 && (
              <>
                <dt>Outputs</dt>
                <dd>{j.outputKeys.join(", ")}</dd>
              </>
            )}
          </dl>
          {note && <p role="status">{note}</p>}
          <h2>Stages</h2>
          <Timeline segs={segs} />
          {attempts.length > 1 && (
            <>
              <h2>Attempts</h2>
              <ol class="attempts">
                {attempts.map((a) => (
                  <li key={`${a.cycle}-${a.n}`}>
                    {when(a.startedAt)}: {a.status ?? "running"}
                    {a.reason && a.reason !== "ok" ? ` (${a.reason})` : ""}
                    {a.error ? `: ${a.error}` : ""}
                  </li>
                ))}
              </ol>
            </>
          )}
        </>
      )}
      <section aria-labelledby="log-title">
        <h2 id="log-title">Log</h2>
        <ErrorLine error={log.error} />
        <pre class="log">{log.text ?? "…"}</pre>
      </section>
    </>
  );
}

export function DeadLettersPage() {
  const dead = useLoad(() => getJson<{ jobs: Job[] }>("/system/dead-letters?limit=1000"), []);
  const [note, setNote] = useState("");
  const { reload } = dead;
  useEffect(() => subscribe(() => reload()), [reload]);
  const redrive = async (body: { ids: string[] } | undefined, fn?: string) => {
    setNote("");
    try {
      const q = fn ? `?service=${enc(fn)}` : "";
      const r = await getJson<{ redriven: number; skipped?: string[] }>(`/system/dead-letters/redrive${q}`, {
        method: "POST",
        ...(body ? { body } : {}),
      });
      setNote(`Redriven: ${r.redriven}${r.skipped ? `, skipped ${r.skipped.length}` : ""}.`);
      reload();
    } catch (e) {
      setNote(message(e));
    }
  };
  const jobs = dead.value?.jobs ?? [];
  const fns = [...new Set(jobs.map((j) => j.function))];
  return (
    <>
      <h1>Dead letters</h1>
      <p class="hint">
        Jobs that failed every retry. Fix the function (its script, its image), then redrive them.
      </p>
      <ErrorLine error={dead.error} />
      {note && <p role="status">{note}</p>}
      {dead.value && jobs.length === 0 && <p>No dead letters.</p>}
      {fns.length > 0 && (
        <div class="row">
          {fns.map((f) => (
            <button key={f} type="button" onClick={() => redrive(undefined, f)}>
              Redrive all of {f}
            </button>
          ))}
        </div>
      )}
      {jobs.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Function</th>
              <th scope="col">Trigger</th>
              <th scope="col">Why</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.id}>
                <th scope="row">
                  <a href={`#/jobs/${j.id}`}>
                    <code>{j.id.slice(0, 8)}</code>
                  </a>
                </th>
                <td>{j.function}</td>
                <td>{what(j)}</td>
                <td>
                  {j.reason}
                  {j.error ? `: ${j.error}` : ""}
                </td>
                <td>
                  <button
                    type="button"
                    onClick={() => redrive({ ids: [j.id] })}
                    aria-label={`Redrive ${j.id}`}
                  >
                    Redrive
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
