/**
 * The scar dashboard: a page served by the engine at /ui/ that uses the engine's HTTP API only.
 * Pages by the URL's hash (#/functions, #/buckets/<name>, #/jobs, #/jobs/<id>, #/dead), so a reload
 * or a link keeps the page and the server serves one file.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { engineUrl, onAuthChange, signedIn, signIn, signOut } from "./api";
import { BucketsPage } from "./buckets";
import { EnginePage } from "./engine";
import { FunctionsPage } from "./functions";
import { DeadLettersPage, JobPage, JobsPage } from "./jobs";
import { onLiveState } from "./live";

function useHash(): string[] {
  const parts = () =>
    location.hash
      .replace(/^#\/?/, "")
      .split("/")
      .filter(Boolean)
      .map((p) => decodeURIComponent(p));
  const [hash, setHash] = useState(parts);
  useEffect(() => {
    const on = () => setHash(parts());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Login() {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    setError("");
    try {
      await signIn(
        String(data.get("user") ?? ""),
        String(data.get("password") ?? ""),
        String(data.get("engine") ?? ""),
      );
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">scar</h1>
        <p>
          Sign in with the engine's admin user (in its data folder's <code>credentials</code> file).
        </p>
        <label>
          User
          <input name="user" autocomplete="username" required defaultValue="scar" />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <label>
          Engine URL (optional: another scar engine; empty: this one)
          <input name="engine" type="url" defaultValue={engineUrl()} placeholder={location.origin} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const PAGES = [
  ["functions", "Functions"],
  ["buckets", "Buckets"],
  ["jobs", "Jobs"],
  ["dead", "Dead letters"],
  ["engine", "Engine"],
] as const;

function LiveBadge() {
  const [live, setLive] = useState(false);
  useEffect(() => onLiveState(setLive), []);
  return (
    <span class={live ? "live on" : "live"} title="the engine's job events">
      {live ? "live" : "not live"}
    </span>
  );
}

function Page({ hash }: { hash: string[] }) {
  const [page, arg] = hash;
  switch (page) {
    case "buckets":
      return <BucketsPage bucket={arg} />;
    case "jobs":
      return arg ? <JobPage id={arg} /> : <JobsPage />;
    case "jobs-of":
      return <JobsPage fn={arg} />;
    case "dead":
      return <DeadLettersPage />;
    case "engine":
      return <EnginePage />;
    default:
      return <FunctionsPage />;
  }
}

function App() {
  const [inside, setInside] = useState(signedIn());
  const hash = useHash();
  useEffect(() => onAuthChange(setInside), []);
  if (!inside) return <Login />;
  const current = hash[0] === "jobs-of" ? "jobs" : (hash[0] ?? "functions");
  return (
    <>
      <header>
        <a class="brand" href="#/functions">
          scar
        </a>
        <nav aria-label="pages">
          {PAGES.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={current === id ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {engineUrl() && (
          <span class="engine-url" title="the engine this page works on">
            {engineUrl()}
          </span>
        )}
        <LiveBadge />
        <button type="button" class="link" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Page hash={hash} />
      </main>
    </>
  );
}

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading…" line of index.html
render(<App />, root);
