/**
 * The engine's job events (GET /system/events, server-sent events) read with fetch, so that the
 * request carries the Authorization header (EventSource cannot). Views subscribe; one stream serves
 * them all; it reconnects after a pause when the engine closes it or goes away.
 */
import { call } from "./api";
import type { Job } from "./types";

export interface JobEvents {
  jobs: Job[];
  /** Functions that had jobs queued: their lists are read again. */
  queued: string[];
}

type Listener = (e: JobEvents) => void;
const listeners = new Set<Listener>();
let controller: AbortController | null = null;
let connected = false;
const stateListeners = new Set<(connected: boolean) => void>();

function setConnected(v: boolean): void {
  if (connected === v) return;
  connected = v;
  for (const l of stateListeners) l(v);
}

export function onLiveState(l: (connected: boolean) => void): () => void {
  stateListeners.add(l);
  l(connected);
  return () => stateListeners.delete(l);
}

export function subscribe(l: Listener): () => void {
  listeners.add(l);
  if (!controller) void run();
  return () => {
    listeners.delete(l);
    if (listeners.size === 0) {
      controller?.abort();
      controller = null;
      setConnected(false);
    }
  };
}

/**
 * Reads a server-sent events body to its end, calling `on` with each event's name and data (comment
 * lines, the keep-alives, are skipped).
 */
export async function readServerEvents(
  r: Response,
  on: (event: string, data: string) => void,
): Promise<void> {
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length > 0) on(event, data.join("\n"));
    }
  }
}

function dispatch(event: string, data: string): void {
  if (event !== "jobs") return;
  const e = JSON.parse(data) as JobEvents;
  for (const l of listeners) l(e);
}

async function run(): Promise<void> {
  const c = new AbortController();
  controller = c;
  while (controller === c && !c.signal.aborted) {
    try {
      const r = await call("/system/events", { signal: c.signal });
      setConnected(true);
      await readServerEvents(r, dispatch);
    } catch {
      // aborted, a network error, or signed out: reconnect below unless stopped
    }
    setConnected(false);
    if (c.signal.aborted) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}
