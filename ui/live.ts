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

/** Parses `event:`/`data:` blocks out of the stream's text; returns what is left of an unfinished one. */
function dispatch(buffer: string): string {
  let at = buffer.indexOf("\n\n");
  while (at >= 0) {
    const block = buffer.slice(0, at);
    buffer = buffer.slice(at + 2);
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (event === "jobs" && data.length > 0) {
      const e = JSON.parse(data.join("\n")) as JobEvents;
      for (const l of listeners) l(e);
    }
    at = buffer.indexOf("\n\n");
  }
  return buffer;
}

async function run(): Promise<void> {
  const c = new AbortController();
  controller = c;
  while (controller === c && !c.signal.aborted) {
    try {
      const r = await call("/system/events", { signal: c.signal });
      const reader = r.body!.getReader();
      const decoder = new TextDecoder();
      setConnected(true);
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer = dispatch(buffer + decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted, a network error, or signed out: reconnect below unless stopped
    }
    setConnected(false);
    if (c.signal.aborted) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}
