/** Small pieces the pages share: loading with errors, times and sizes as people read them. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/** The message of an error for the page (the API's own words). */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Loads `load()` now and whenever `reload` is called; keeps the last value while reloading. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
): {
  value: T | undefined;
  error: string;
  reload: () => void;
} {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState("");
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => {
        if (!live) return;
        setValue(v);
        setError("");
      },
      (e) => live && setError(message(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { value, error, reload };
}

export function ErrorLine({ error }: { error: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The last part of a key. */
export function baseName(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/**
 * A heading (with tabIndex -1) that takes the focus when its panel opens or shows another item:
 * a keyboard user lands in the panel, not back on the button far above it, and a screen reader
 * says which panel opened.
 */
export function useFocusOnOpen(key: unknown) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), [key]);
  return ref;
}
