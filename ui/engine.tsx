/**
 * Engine: its version, its images (a pull, an archive's upload, with their progress), and charts over time of the jobs
 * it ran: jobs/s, latency (queued to done, p50 and p95), cold and warm starts, queue depth. The
 * series are computed from the job records (the most recent 5,000), read again after job events
 * (at most every 2 s), so they need nothing the engine does not keep already.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { call, getJson, upload } from "./api";
import { subscribe } from "./live";
import type { Job } from "./types";
import { ErrorLine, message, size, useLoad, when } from "./util";

interface ImageInfo {
  ref: string;
  names: string[];
  digest: string;
  size: number;
  added: string;
}

const RECENT = 5000;

async function recentJobs(): Promise<Job[]> {
  const out: Job[] = [];
  let page = "";
  do {
    const r = await getJson<{ jobs: Job[]; next_page?: string }>(
      `/system/jobs?limit=1000${page ? `&page=${encodeURIComponent(page)}` : ""}`,
    );
    out.push(...r.jobs);
    page = r.next_page ?? "";
  } while (page && out.length < RECENT);
  return out;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * q))]!;
}

export interface Series {
  /** Bucket starts, in seconds (uPlot's x). */
  t: number[];
  perSecond: number[];
  p50: (number | null)[];
  p95: (number | null)[];
  cold: number[];
  warm: number[];
  queued: number[];
}

/** The jobs' times in about 60 buckets from the first job queued to now. */
export function series(jobs: Job[], now = Date.now()): Series {
  const queuedTimes = jobs.map((j) => j.stages.queued).filter((x): x is number => x !== null);
  const start = queuedTimes.length > 0 ? Math.min(...queuedTimes) : now - 60000;
  const step = Math.max(1000, Math.ceil((now - start) / 60 / 1000) * 1000);
  const n = Math.max(1, Math.ceil((now - start) / step));
  const s: Series = { t: [], perSecond: [], p50: [], p95: [], cold: [], warm: [], queued: [] };
  const latencies: number[][] = [];
  for (let i = 0; i < n; i++) {
    s.t.push((start + i * step) / 1000);
    s.perSecond.push(0);
    s.cold.push(0);
    s.warm.push(0);
    s.queued.push(0);
    latencies.push([]);
  }
  const at = (ms: number) => Math.min(n - 1, Math.max(0, Math.floor((ms - start) / step)));
  for (const j of jobs) {
    const done = j.stages.done;
    const q = j.stages.queued;
    if (done !== null && j.status !== "queued" && j.status !== "running") {
      const b = at(done);
      s.perSecond[b]! += 1000 / step;
      if (q !== null) latencies[b]!.push(done - q);
      if (j.environment?.start === "cold") s.cold[b]!++;
      else if (j.environment?.start === "warm") s.warm[b]!++;
    }
    // waiting at the end of a bucket: queued before it, not started by then
    if (q !== null) {
      const left = j.startedAt ?? (j.status === "queued" ? Number.POSITIVE_INFINITY : q);
      for (let b = at(q); b < n && start + (b + 1) * step <= left; b++) s.queued[b]!++;
    }
  }
  for (const l of latencies) {
    l.sort((a, b) => a - b);
    s.p50.push(quantile(l, 0.5));
    s.p95.push(quantile(l, 0.95));
  }
  return s;
}

function Chart(props: {
  title: string;
  data: uPlot.AlignedData;
  series: { label: string; stroke: string }[];
  unit: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(280, el.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        series: [
          {},
          ...props.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, spanGaps: true })),
        ],
        axes: [{}, { label: props.unit, size: 50 }],
        legend: { live: false },
      },
      props.data,
      el,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => plot.current?.setData(props.data), [props.data]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={props.title} />
    </figure>
  );
}

function Charts() {
  const jobs = useLoad(recentJobs, []);
  const { reload } = jobs;
  useEffect(() => {
    let pending = false;
    return subscribe(() => {
      if (pending) return;
      pending = true;
      window.setTimeout(() => {
        pending = false;
        reload();
      }, 2000);
    });
  }, [reload]);
  if (jobs.error) return <ErrorLine error={jobs.error} />;
  if (!jobs.value) return <p class="hint">Reading the jobs…</p>;
  if (jobs.value.length === 0) return <p class="hint">No job yet: the charts start with the first one.</p>;
  const s = series(jobs.value);
  return (
    <>
      <p class="hint">From the {jobs.value.length} most recent jobs.</p>
      <div class="charts">
        <Chart
          title="Jobs finished per second"
          unit="jobs/s"
          data={[s.t, s.perSecond]}
          series={[{ label: "jobs/s", stroke: "#1f5fbf" }]}
        />
        <Chart
          title="Latency, queued to done"
          unit="ms"
          data={[s.t, s.p50, s.p95]}
          series={[
            { label: "p50", stroke: "#1d7a3c" },
            { label: "p95", stroke: "#b3261e" },
          ]}
        />
        <Chart
          title="Execution environments: cold and warm starts"
          unit="jobs"
          data={[s.t, s.cold, s.warm]}
          series={[
            { label: "cold", stroke: "#e39b2d" },
            { label: "warm", stroke: "#2a8fbd" },
          ]}
        />
        <Chart
          title="Queue depth"
          unit="jobs"
          data={[s.t, s.queued]}
          series={[{ label: "queued", stroke: "#7c5cbf" }]}
        />
      </div>
    </>
  );
}

function Pull({ onPulled }: { onPulled: () => void }) {
  const [ref, setRef] = useState("");
  const [progress, setProgress] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const pull = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    setProgress("");
    const sizes = new Map<string, { bytes: number; size: number }>();
    try {
      const r = await call("/system/images/pull", { method: "POST", body: { image: ref } });
      const reader = r.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let at = buffer.indexOf("\n");
        while (at >= 0) {
          const line = buffer.slice(0, at).trim();
          buffer = buffer.slice(at + 1);
          at = buffer.indexOf("\n");
          if (line === "") continue;
          const ev = JSON.parse(line) as Record<string, unknown>;
          if (typeof ev.error === "string") throw new Error(ev.error);
          if (ev.type === "layer" || ev.type === "progress") {
            const d = String(ev.digest);
            const bytes =
              ev.type === "progress" ? Number(ev.bytes) : ev.status === "downloading" ? 0 : Number(ev.size);
            sizes.set(d, { bytes, size: Number(ev.size) });
            const got = [...sizes.values()].reduce((n, x) => n + x.bytes, 0);
            const all = [...sizes.values()].reduce((n, x) => n + x.size, 0);
            setProgress(`${sizes.size} layer${sizes.size === 1 ? "" : "s"}: ${size(got)} of ${size(all)}`);
          }
          if (ev.done) setProgress(`Pulled ${ref}.`);
        }
      }
      onPulled();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="row" onSubmit={pull}>
      <label>
        Image to pull
        <input
          value={ref}
          onInput={(e) => setRef(e.currentTarget.value)}
          placeholder="grycap/imagemagick"
          required
        />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Pulling…" : "Pull"}
      </button>
      <span class="hint" role="status">
        {progress}
      </span>
      <ErrorLine error={error} />
    </form>
  );
}

/** An image archive (`docker save`, OCI) uploaded to POST /system/images with its progress. */
function ImportArchive({ onImported }: { onImported: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [tag, setTag] = useState("");
  const [sent, setSent] = useState<{ bytes: number; total: number } | null>(null);
  const [note, setNote] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError("");
    setNote("");
    setSent({ bytes: 0, total: file.size });
    try {
      const r = await upload<{ ref: string; digest: string }>(
        `/system/images${tag.trim() ? `?tag=${encodeURIComponent(tag.trim())}` : ""}`,
        file,
        (bytes, total) => setSent({ bytes, total }),
      );
      setNote(`Imported ${r.ref} (${r.digest.slice(0, 19)}).`);
      onImported();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
      setSent(null);
    }
  };
  const uploaded = sent !== null && sent.bytes >= sent.total;
  return (
    <form class="row" onSubmit={submit}>
      <label>
        Image archive (docker save or OCI)
        <input
          type="file"
          accept=".tar,.tar.gz,.tgz,application/x-tar"
          required
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
      </label>
      <label>
        Tag (optional)
        <input value={tag} onInput={(e) => setTag(e.currentTarget.value)} placeholder="myorg/tool:1" />
      </label>
      <button type="submit" disabled={busy || !file}>
        {busy ? "Importing…" : "Import"}
      </button>
      {sent && <progress aria-label="upload of the archive" max={sent.total || 1} value={sent.bytes} />}
      <span class="hint" role="status">
        {sent
          ? uploaded
            ? `Uploaded ${size(sent.total)}; importing…`
            : `Uploading: ${size(sent.bytes)} of ${size(sent.total)}`
          : note}
      </span>
      <ErrorLine error={error} />
    </form>
  );
}

export function EnginePage() {
  const info = useLoad(
    () =>
      getJson<{
        version: string;
        architecture: string;
        serverless_backend?: { name: string; version: string };
      }>("/system/info"),
    [],
  );
  const images = useLoad(() => getJson<{ images: ImageInfo[] }>("/system/images"), []);
  return (
    <>
      <h1>Engine</h1>
      <ErrorLine error={info.error} />
      {info.value && (
        <p class="hint">
          {/* `version` is the OSCAR API the engine answers; scar's own is the backend's */}
          {info.value.serverless_backend
            ? `${info.value.serverless_backend.name} ${info.value.serverless_backend.version}`
            : "scar"}{" "}
          on {info.value.architecture}, OSCAR API {info.value.version}
        </p>
      )}
      <h2>Activity</h2>
      <Charts />
      <h2>Images</h2>
      <ErrorLine error={images.error} />
      <Pull onPulled={images.reload} />
      <ImportArchive onImported={images.reload} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Image</th>
            <th scope="col">Digest</th>
            <th scope="col">Size</th>
            <th scope="col">Added</th>
          </tr>
        </thead>
        <tbody>
          {(images.value?.images ?? []).map((i) => (
            <tr key={i.digest}>
              <th scope="row">{i.names.join(", ") || i.ref}</th>
              <td>
                <code>{i.digest.slice(0, 19)}</code>
              </td>
              <td>{size(i.size)}</td>
              <td>{when(Date.parse(i.added))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
