/**
 * Buckets: every bucket of the engine's store, and in one bucket its folders (a function's input
 * and output first), upload by file input or drag-and-drop (an upload to an input runs the
 * function), download, and previews of images and text, an output beside the input it came from.
 */
import { useEffect, useState } from "preact/hooks";
import { call, enc, getJson, saveBlob } from "./api";
import { subscribe } from "./live";
import type { Service } from "./types";
import { baseName, ErrorLine, message, size, useLoad, when } from "./util";

interface BucketInfo {
  bucket_name: string;
  visibility: string;
  metadata?: { from_service?: string };
}

interface ObjectInfo {
  object_name: string;
  size_bytes: number;
  last_modified: string;
}

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|avif)$/i;
const TEXT = /\.(txt|log|csv|tsv|json|ya?ml|md|sh|py|xml|html?|ini|cfg|out|err)$/i;

export function BucketsPage({ bucket }: { bucket: string | undefined }) {
  if (bucket) return <BucketPage bucket={bucket} />;
  return <BucketList />;
}

function BucketList() {
  const buckets = useLoad(() => getJson<BucketInfo[]>("/system/buckets"), []);
  return (
    <>
      <h1>Buckets</h1>
      <ErrorLine error={buckets.error} />
      {buckets.value && buckets.value.length === 0 && (
        <p>No bucket yet: deploying a function makes its buckets.</p>
      )}
      <ul class="cards">
        {(buckets.value ?? []).map((b) => (
          <li key={b.bucket_name}>
            <a href={`#/buckets/${enc(b.bucket_name)}`}>{b.bucket_name}</a>
            <span class="hint">
              {b.visibility}
              {b.metadata?.from_service ? ` · function ${b.metadata.from_service}` : ""}
            </span>
          </li>
        ))}
      </ul>
    </>
  );
}

/** Every object of the bucket (pages of 1000 followed up to 10,000). */
async function listObjects(bucket: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let page = "";
  do {
    const r = await getJson<{ objects: ObjectInfo[]; next_page?: string }>(
      `/system/buckets/${enc(bucket)}${page ? `?page=${enc(page)}` : ""}`,
    );
    out.push(...r.objects);
    page = r.next_page ?? "";
  } while (page && out.length < 10000);
  return out;
}

/** The folders of the bucket that functions read or write, as `folder/` prefixes with their role. */
function functionFolders(services: Service[], bucket: string): { prefix: string; label: string }[] {
  const out: { prefix: string; label: string }[] = [];
  for (const s of services)
    for (const [list, role] of [
      [s.input, "input"],
      [s.output, "output"],
    ] as const)
      for (const p of list) {
        const [b, ...rest] = p.path.split("/");
        if (b !== bucket) continue;
        const prefix = rest.length > 0 ? `${rest.join("/")}/` : "";
        out.push({ prefix, label: `${prefix || "/"} (${s.name}'s ${role})` });
      }
  return out;
}

function BucketPage({ bucket }: { bucket: string }) {
  const objects = useLoad(() => listObjects(bucket), [bucket]);
  const services = useLoad(() => getJson<Service[]>("/system/services"), []);
  const [folder, setFolder] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [dragging, setDragging] = useState(false);
  const [preview, setPreview] = useState<string | null>(null);
  const { reload } = objects;
  useEffect(() => {
    // outputs land when jobs finish: read the listing again after job events (at most twice a second)
    let pending = false;
    return subscribe(() => {
      if (pending) return;
      pending = true;
      window.setTimeout(() => {
        pending = false;
        reload();
      }, 500);
    });
  }, [reload]);
  const fnFolders = functionFolders(services.value ?? [], bucket);
  const all = (objects.value ?? []).filter((o) => !o.object_name.endsWith("/"));
  const otherFolders = [
    ...new Set(
      (objects.value ?? [])
        .map((o) =>
          o.object_name.includes("/") ? `${o.object_name.slice(0, o.object_name.lastIndexOf("/"))}/` : "",
        )
        .filter((p) => p !== "" && !fnFolders.some((f) => f.prefix === p)),
    ),
  ];
  const current =
    folder ?? fnFolders.find((f) => f.label.includes("input"))?.prefix ?? fnFolders[0]?.prefix ?? "";
  const shown = all.filter(
    (o) => o.object_name.startsWith(current) && !o.object_name.slice(current.length).includes("/"),
  );
  const upload = async (files: File[]) => {
    setError("");
    let n = 0;
    for (const f of files) {
      setStatus(`Uploading ${f.name} (${n + 1} of ${files.length})…`);
      try {
        await call(`/system/objects/${enc(bucket)}?key=${enc(current + f.name)}`, { method: "PUT", body: f });
        n++;
      } catch (e) {
        setError(`${f.name}: ${message(e)}`);
        break;
      }
    }
    setStatus(`Uploaded ${n} file${n === 1 ? "" : "s"} to ${bucket}/${current}.`);
    reload();
  };
  const download = async (key: string) => {
    try {
      const r = await call(`/system/objects/${enc(bucket)}?key=${enc(key)}`);
      saveBlob(await r.blob(), baseName(key));
    } catch (e) {
      setError(message(e));
    }
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length > 0) void upload(files);
  };
  return (
    <>
      <p>
        <a href="#/buckets">← Buckets</a>
      </p>
      <h1>{bucket}</h1>
      <ErrorLine error={objects.error || error} />
      <fieldset class="row">
        <legend class="sr-only">Folders</legend>
        {[...fnFolders, ...otherFolders.map((p) => ({ prefix: p, label: p }))].map((f) => (
          <button
            key={f.label}
            type="button"
            class={f.prefix === current ? "tab on" : "tab"}
            aria-pressed={f.prefix === current}
            onClick={() => setFolder(f.prefix)}
          >
            {f.label}
          </button>
        ))}
        {fnFolders.length + otherFolders.length === 0 && <span class="hint">no folders</span>}
      </fieldset>
      <section
        class={dragging ? "drop on" : "drop"}
        aria-label={`upload to ${bucket}/${current}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>
          Drop files here to upload them to <code>{`${bucket}/${current}`}</code>, or{" "}
          <label class="filebutton">
            choose files
            <input
              type="file"
              multiple
              onChange={(e) => {
                const files = [...(e.currentTarget.files ?? [])];
                e.currentTarget.value = "";
                if (files.length > 0) void upload(files);
              }}
            />
          </label>
          .
        </p>
        <p class="hint" role="status">
          {status}
        </p>
      </section>
      <div class="split">
        <table class="grid">
          <caption class="sr-only">Objects in {`${bucket}/${current}`}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((o) => (
              <tr key={o.object_name} class={preview === o.object_name ? "selected" : ""}>
                <th scope="row">{baseName(o.object_name)}</th>
                <td>{size(o.size_bytes)}</td>
                <td>{when(Date.parse(o.last_modified))}</td>
                <td class="actions">
                  <button
                    type="button"
                    onClick={() => download(o.object_name)}
                    aria-label={`Download ${o.object_name}`}
                  >
                    Download
                  </button>
                  {(IMAGE.test(o.object_name) || TEXT.test(o.object_name)) && (
                    <button
                      type="button"
                      onClick={() => setPreview(o.object_name)}
                      aria-label={`Preview ${o.object_name}`}
                    >
                      Preview
                    </button>
                  )}
                </td>
              </tr>
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={4} class="hint">
                  Nothing in this folder yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
        {preview && (
          <Previews
            bucket={bucket}
            keyName={preview}
            all={all}
            services={services.value ?? []}
            onClose={() => setPreview(null)}
          />
        )}
      </div>
    </>
  );
}

/** The input an output came from: the same name (or stem) in the input folder of the function that writes here. */
function sourceOf(bucket: string, key: string, all: ObjectInfo[], services: Service[]): string | undefined {
  const stem = (k: string) => baseName(k).replace(/\.[^.]*$/, "");
  for (const s of services) {
    const writes = s.output.some(
      (p) => key.startsWith(`${p.path.split("/").slice(1).join("/")}/`) && p.path.split("/")[0] === bucket,
    );
    if (!writes) continue;
    for (const p of s.input) {
      const [b, ...rest] = p.path.split("/");
      if (b !== bucket) continue;
      const prefix = rest.length > 0 ? `${rest.join("/")}/` : "";
      const match =
        all.find((o) => o.object_name === prefix + baseName(key)) ??
        all.find((o) => o.object_name.startsWith(prefix) && stem(o.object_name) === stem(key));
      if (match) return match.object_name;
    }
  }
  return undefined;
}

function Previews(props: {
  bucket: string;
  keyName: string;
  all: ObjectInfo[];
  services: Service[];
  onClose: () => void;
}) {
  const source = sourceOf(props.bucket, props.keyName, props.all, props.services);
  return (
    <aside class="previews" aria-label="preview">
      <div class="row">
        <strong>Preview</strong>
        <button type="button" class="link" onClick={props.onClose}>
          Close
        </button>
      </div>
      <div class="side">
        {source && <Preview bucket={props.bucket} keyName={source} label="input" />}
        <Preview bucket={props.bucket} keyName={props.keyName} label={source ? "output" : ""} />
      </div>
    </aside>
  );
}

function Preview({ bucket, keyName, label }: { bucket: string; keyName: string; label: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let made: string | null = null;
    let live = true;
    setUrl(null);
    setText(null);
    call(`/system/objects/${enc(bucket)}?key=${enc(keyName)}`)
      .then((r) => r.blob())
      .then(async (blob) => {
        if (!live) return;
        if (IMAGE.test(keyName)) {
          made = URL.createObjectURL(blob);
          setUrl(made);
        } else setText(await blob.slice(0, 65536).text());
      })
      .catch((e) => live && setError(message(e)));
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [bucket, keyName]);
  return (
    <figure>
      {url && <img src={url} alt={`${label || "object"} ${keyName}`} />}
      {text !== null && <pre class="log">{text}</pre>}
      <ErrorLine error={error} />
      <figcaption>
        {label && <strong>{label}: </strong>}
        {keyName}
      </figcaption>
    </figure>
  );
}
