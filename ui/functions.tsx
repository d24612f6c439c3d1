/**
 * Functions: the deployed ones with their job counts (updated live), a new one from an FDL (pasted
 * or read from a file, with the scripts it names) checked by the engine as `scar validate` checks
 * it, invocation (sync or async, a payload typed or a file), and removal.
 */
import { useEffect, useState } from "preact/hooks";
import { call, enc, getJson, saveBlob } from "./api";
import { subscribe } from "./live";
import type { Counts, FdlIssue, Service } from "./types";
import { ErrorLine, message, useFocusOnOpen, useLoad } from "./util";

export function FunctionsPage() {
  const services = useLoad(() => getJson<Service[]>("/system/services"), []);
  const counts = useLoad(() => getJson<Record<string, Counts>>("/system/jobs/counts"), []);
  const [invoking, setInvoking] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const reloadCounts = counts.reload;
  useEffect(() => {
    // counts change with every job event: read them again at most twice a second
    let pending = false;
    return subscribe(() => {
      if (pending) return;
      pending = true;
      window.setTimeout(() => {
        pending = false;
        reloadCounts();
      }, 500);
    });
  }, [reloadCounts]);
  const remove = async (name: string) => {
    if (!confirm(`Delete the function '${name}'? Its buckets, files, jobs and logs are kept.`)) return;
    try {
      await call(`/system/services/${enc(name)}`, { method: "DELETE" });
      services.reload();
      counts.reload();
    } catch (e) {
      alert(message(e));
    }
  };
  const list = services.value ?? [];
  return (
    <>
      <h1>Functions</h1>
      <ErrorLine error={services.error || counts.error} />
      {services.value && list.length === 0 && (
        <p>No function is deployed yet: deploy one from its FDL below.</p>
      )}
      {list.length > 0 && (
        <table class="grid">
          <caption class="sr-only">Deployed functions and their jobs</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Image</th>
              <th scope="col">Memory</th>
              <th scope="col">Timeout</th>
              <th scope="col">Input → output</th>
              <th scope="col">Jobs</th>
              <th scope="col">Starts</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <FunctionRow
                key={s.name}
                service={s}
                counts={counts.value?.[s.name]}
                onInvoke={() => setInvoking(s.name)}
                onEdit={() => setEditing(s.name)}
                onDelete={() => remove(s.name)}
              />
            ))}
          </tbody>
        </table>
      )}
      {invoking && <InvokePanel name={invoking} onClose={() => setInvoking(null)} />}
      {editing && (
        <EditPanel
          key={editing}
          name={editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            services.reload();
          }}
        />
      )}
      <DeployPanel
        onDeployed={() => {
          services.reload();
          counts.reload();
        }}
      />
      <CreatePanel
        onCreated={() => {
          services.reload();
          counts.reload();
        }}
      />
    </>
  );
}

function paths(list: { storage_provider: string; path: string }[]): string {
  return list.map((p) => p.path).join(", ") || "–";
}

function FunctionRow(props: {
  service: Service;
  counts: Counts | undefined;
  onInvoke: () => void;
  onEdit: () => void;
  onDelete: () => void;
}) {
  const { service: s, counts: c } = props;
  const [showToken, setShowToken] = useState(false);
  const timeout = s.scar?.timeout;
  return (
    <tr>
      <th scope="row">
        <a href={`#/jobs-of/${enc(s.name)}`} title={`the jobs of ${s.name}`}>
          {s.name}
        </a>
        {showToken && (
          <div class="token">
            token <code>{s.token}</code>
          </div>
        )}
      </th>
      <td>
        <code>{s.image}</code>
      </td>
      <td>{s.memory}</td>
      <td>{timeout === null || timeout === undefined ? "none" : `${timeout} s`}</td>
      <td>
        {paths(s.input)} → {paths(s.output)}
      </td>
      <td class="counts">
        {c ? (
          <>
            <span class="st queued" title="queued">
              {c.queued}
            </span>
            <span class="st running" title="running">
              {c.running}
            </span>
            <span class="st succeeded" title="succeeded">
              {c.succeeded}
            </span>
            <span class="st failed" title="failed">
              {c.failed}
            </span>
            <span class="st dead" title="dead">
              {c.dead}
            </span>
          </>
        ) : (
          "–"
        )}
      </td>
      <td>{c?.starts ? `${c.starts.cold} cold, ${c.starts.warm} warm` : "–"}</td>
      <td class="actions">
        <button type="button" onClick={props.onInvoke} aria-label={`Invoke ${s.name}`}>
          Invoke
        </button>
        <button type="button" onClick={props.onEdit} aria-label={`Edit ${s.name}`}>
          Edit
        </button>
        <button type="button" class="link" onClick={() => setShowToken(!showToken)}>
          {showToken ? "Hide token" : "Show token"}
        </button>
        <button type="button" class="danger" onClick={props.onDelete} aria-label={`Delete ${s.name}`}>
          Delete
        </button>
      </td>
    </tr>
  );
}

function readFile(file: File): Promise<string> {
  return file.text();
}

function DeployPanel({ onDeployed }: { onDeployed: () => void }) {
  const [name, setName] = useState("function.yaml");
  const [text, setText] = useState("");
  const [files, setFiles] = useState<Record<string, string>>({});
  const [issues, setIssues] = useState<FdlIssue[]>([]);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const send = async (deploy: boolean) => {
    setBusy(true);
    setError("");
    setDone("");
    setIssues([]);
    try {
      const r = await fetchFdl({ name, text, files }, deploy);
      setIssues(r.body.warnings ?? r.body.details ?? []);
      if (!r.ok) setError(r.body.error ?? "the FDL is not valid");
      else if (deploy) {
        setDone(`Deployed ${(r.body.deployed ?? []).join(", ")}.`);
        onDeployed();
      } else setDone(`Valid: ${(r.body.functions ?? []).map((f) => f.name).join(", ")}.`);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  const onFdlFile = async (e: Event) => {
    const f = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!f) return;
    setName(f.name);
    setText(await readFile(f));
  };
  const onScripts = async (e: Event) => {
    const list = [...((e.currentTarget as HTMLInputElement).files ?? [])];
    const read: Record<string, string> = { ...files };
    for (const f of list) read[f.name] = await readFile(f);
    setFiles(read);
  };
  return (
    <section class="panel" aria-labelledby="deploy-title">
      <h2 id="deploy-title">Deploy from an FDL</h2>
      <div class="row">
        <label>
          FDL file
          <input type="file" accept=".yaml,.yml,.json" onChange={onFdlFile} />
        </label>
        <label>
          Scripts it names
          <input type="file" multiple onChange={onScripts} />
        </label>
        <label>
          File name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      </div>
      {Object.keys(files).length > 0 && (
        <p class="hint">
          With: {Object.keys(files).join(", ")}{" "}
          <button type="button" class="link" onClick={() => setFiles({})}>
            clear
          </button>
        </p>
      )}
      <label class="block">
        FDL (YAML)
        <textarea
          rows={12}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          placeholder={"functions:\n  aws:\n  - lambda:\n      name: ..."}
        />
      </label>
      <div class="row">
        <button type="button" disabled={busy || text === ""} onClick={() => send(false)}>
          Validate
        </button>
        <button type="button" class="primary" disabled={busy || text === ""} onClick={() => send(true)}>
          {busy ? "Working…" : "Deploy"}
        </button>
      </div>
      <ErrorLine error={error} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
      {issues.length > 0 && (
        <ul class="issues" aria-label="problems in the FDL">
          {issues.map((i) => (
            <li key={i.text} class={i.severity}>
              <code>{i.text}</code>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

interface FdlAnswer {
  error?: string;
  details?: FdlIssue[];
  warnings?: FdlIssue[];
  functions?: { name: string }[];
  deployed?: string[];
}

/** POST /system/fdl: a 400 with the FDL's issues is an answer to show, not an error. */
async function fetchFdl(
  body: { name: string; text: string; files: Record<string, string> },
  deploy: boolean,
): Promise<{ ok: boolean; body: FdlAnswer }> {
  try {
    const r = await call(`/system/fdl${deploy ? "?deploy=true" : ""}`, { method: "POST", body });
    return { ok: true, body: (await r.json()) as FdlAnswer };
  } catch (e) {
    const details = (e as { details?: unknown }).details;
    if (Array.isArray(details))
      return { ok: false, body: { error: message(e), details: details as FdlIssue[] } };
    throw e;
  }
}

async function base64(file: Blob): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function InvokePanel({ name, onClose }: { name: string; onClose: () => void }) {
  const heading = useFocusOnOpen(name);
  const [mode, setMode] = useState<"sync" | "async">("sync");
  const [payload, setPayload] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [answer, setAnswer] = useState<{ text: string; output: string; job: string; blob?: Blob } | null>(
    null,
  );
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const invoke = async () => {
    setBusy(true);
    setError("");
    setAnswer(null);
    try {
      // a file goes base64-encoded, as oscar-cli sends one (the function gets its bytes as its input
      // file); a typed payload as it is (an event: JSON, or text)
      const body = file ? await base64(file) : payload;
      if (mode === "async") {
        const r = await getJson<{ jobID: string }>(`/job/${enc(name)}`, { method: "POST", body });
        setAnswer({ text: "", output: "queued", job: r.jobID });
      } else {
        const r = await call(`/run/${enc(name)}`, { method: "POST", body });
        const b64 = (await r.text()).trim();
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const output = r.headers.get("x-scar-output") ?? "";
        const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes.slice(0, 65536));
        setAnswer({
          text,
          output,
          job: r.headers.get("x-scar-request-id") ?? "",
          blob: new Blob([bytes]),
        });
      }
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  const outName = answer?.output.startsWith("file:") ? answer.output.slice(5) : "answer.bin";
  return (
    <section class="panel" aria-labelledby="invoke-title">
      <h2 id="invoke-title" tabIndex={-1} ref={heading}>
        Invoke {name}
      </h2>
      <fieldset class="row">
        <legend>Mode</legend>
        <label>
          <input type="radio" name="mode" checked={mode === "sync"} onChange={() => setMode("sync")} /> sync
          (wait for the answer)
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === "async"} onChange={() => setMode("async")} />{" "}
          async (a job)
        </label>
      </fieldset>
      <label class="block">
        Payload
        <textarea
          rows={4}
          value={payload}
          disabled={file !== null}
          onInput={(e) => setPayload(e.currentTarget.value)}
          placeholder='{"key": "value"}'
        />
      </label>
      <label>
        or a file as the payload (sent base64-encoded)
        <input type="file" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
      </label>
      <div class="row">
        <button type="button" class="primary" disabled={busy} onClick={invoke}>
          {busy ? "Running…" : "Invoke"}
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <ErrorLine error={error} />
      {answer && (
        <div class="answer" role="status">
          <p>
            Job <a href={`#/jobs/${answer.job}`}>{answer.job}</a>
            {answer.output && ` · ${answer.output}`}
            {answer.blob && (
              <>
                {" · "}
                <button type="button" class="link" onClick={() => saveBlob(answer.blob!, outName)}>
                  download the answer
                </button>
              </>
            )}
          </p>
          {answer.text && <pre class="log">{answer.text}</pre>}
        </div>
      )}
    </section>
  );
}

/** KEY=VALUE lines <-> a map (the value is everything after the first '='). */
function envText(vars: Record<string, string> | undefined): string {
  return Object.entries(vars ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

function envVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`environment: '${line}' is not KEY=VALUE`);
    out[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return out;
}

/**
 * Memory, timeout, environment and script of a deployed function: its service definition read,
 * changed and sent back (PUT /system/services keeps what is not shown, secrets included).
 */
function EditPanel({ name, onClose, onSaved }: { name: string; onClose: () => void; onSaved: () => void }) {
  const heading = useFocusOnOpen(name);
  const service = useLoad(
    () => getJson<Service & Record<string, unknown>>(`/system/services/${enc(name)}`),
    [name],
  );
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const s = service.value;
  const save = async (e: Event) => {
    e.preventDefault();
    if (!s) return;
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError("");
    setDone("");
    try {
      const timeout = String(form.get("timeout") ?? "").trim();
      const body = {
        ...s,
        memory: `${String(form.get("memory") ?? "").trim()}Mi`,
        script: String(form.get("script") ?? ""),
        environment: { ...s.environment, variables: envVars(String(form.get("environment") ?? "")) },
        scar: { ...s.scar, timeout: timeout === "" ? null : Number(timeout) },
      };
      await call("/system/services", { method: "PUT", body });
      setDone(`Saved ${name}: new jobs run with it.`);
      onSaved();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="edit-title">
      <h2 id="edit-title" tabIndex={-1} ref={heading}>
        Edit {name}
      </h2>
      <ErrorLine error={service.error} />
      {s && (
        <form onSubmit={save}>
          <div class="row">
            <label>
              Memory (MiB)
              <input
                name="memory"
                inputMode="numeric"
                required
                defaultValue={String(parseInt(s.memory, 10))}
              />
            </label>
            <label>
              Timeout (s, empty: none)
              <input
                name="timeout"
                inputMode="numeric"
                defaultValue={s.scar?.timeout == null ? "" : String(s.scar.timeout)}
              />
            </label>
          </div>
          <label class="block">
            Environment (KEY=VALUE lines)
            <textarea
              name="environment"
              rows={3}
              spellcheck={false}
              defaultValue={envText(s.environment?.variables)}
            />
          </label>
          <label class="block">
            Script
            <textarea name="script" rows={8} spellcheck={false} defaultValue={s.script ?? ""} />
          </label>
          <div class="row">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? "Saving…" : "Save"}
            </button>
            <button type="button" onClick={onClose}>
              Close
            </button>
          </div>
        </form>
      )}
      <ErrorLine error={error} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </section>
  );
}

/** A new function from a form: an OSCAR service definition (POST /system/services), inputs and outputs on the engine's store. */
function CreatePanel({ onCreated }: { onCreated: () => void }) {
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const create = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    const name = text("name");
    const timeout = text("timeout");
    setBusy(true);
    setError("");
    setDone("");
    try {
      const body = {
        name,
        image: text("image"),
        memory: `${text("memory")}Mi`,
        script: String(f.get("script") ?? ""),
        environment: { variables: envVars(String(f.get("environment") ?? "")) },
        input: text("input") ? [{ storage_provider: "minio.default", path: text("input") }] : [],
        output: text("output") ? [{ storage_provider: "minio.default", path: text("output") }] : [],
        ...(timeout ? { scar: { timeout: Number(timeout) } } : {}),
      };
      await call("/system/services", { method: "POST", body });
      setDone(`Created ${name}.`);
      onCreated();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="panel">
      <summary>
        <h2>Create from a form</h2>
      </summary>
      <form onSubmit={create}>
        <div class="row">
          <label>
            Name
            <input name="name" required pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" />
          </label>
          <label>
            Image
            <input name="image" required placeholder="grycap/imagemagick" />
          </label>
          <label>
            Memory (MiB)
            <input name="memory" inputMode="numeric" required defaultValue="256" />
          </label>
          <label>
            Timeout (s)
            <input name="timeout" inputMode="numeric" />
          </label>
        </div>
        <div class="row">
          <label>
            Input (bucket/folder)
            <input name="input" placeholder="my-bucket/input" />
          </label>
          <label>
            Output (bucket/folder)
            <input name="output" placeholder="my-bucket/output" />
          </label>
        </div>
        <label class="block">
          Environment (KEY=VALUE lines)
          <textarea name="environment" rows={2} spellcheck={false} />
        </label>
        <label class="block">
          Script
          <textarea name="script" rows={6} spellcheck={false} required placeholder={"#!/bin/sh\n..."} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create"}
        </button>
      </form>
      <ErrorLine error={error} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
    </details>
  );
}
