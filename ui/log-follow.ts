/**
 * One job's log, followed live: GET /system/jobs/<id>/log?follow=true (server-sent events, read with
 * fetch for the Authorization header) sends the log so far, then what the job prints, and ends with
 * the job. A job run again after that (a retry, a redrive: more attempts) is followed again; a
 * stream cut before its end is opened again after a pause (it starts over with the whole log).
 */
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, enc } from "./api";
import { readServerEvents } from "./live";
import { message } from "./util";

export function useFollowedLog(
  id: string,
  attempts: number | undefined,
  running: boolean,
): { text: string | undefined; error: string } {
  const [text, setText] = useState<string | undefined>(undefined);
  const [error, setError] = useState("");
  /** The attempts of the job when its stream ended (null: not ended). */
  const [endedAt, setEndedAt] = useState<number | null>(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    if (running && endedAt !== null && attempts !== undefined && attempts > endedAt) setRound((n) => n + 1);
  }, [running, attempts, endedAt]);
  useEffect(() => {
    const c = new AbortController();
    setEndedAt(null);
    const follow = async () => {
      while (!c.signal.aborted) {
        let first = true;
        let ended = false;
        try {
          const r = await call(`/system/jobs/${enc(id)}/log?follow=true`, { signal: c.signal });
          setError("");
          await readServerEvents(r, (event, data) => {
            if (event === "log") {
              const piece = JSON.parse(data) as string;
              setText((prev) => (first ? piece : (prev ?? "") + piece));
              first = false;
            } else if (event === "end") {
              ended = true;
              setEndedAt((JSON.parse(data) as { attempts?: number }).attempts ?? 0);
            }
          });
        } catch (e) {
          if (c.signal.aborted) return;
          setError(message(e));
          if (e instanceof ApiError && e.status < 500) return; // no such job, signed out: nothing to wait for
        }
        if (ended || c.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    void follow();
    return () => c.abort();
  }, [id, round]);
  return { text, error };
}
