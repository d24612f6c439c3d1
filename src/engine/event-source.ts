/**
 * SCAR 1.x's event launcher, `scar run -es BUCKET NAME`: one S3 event per file of `BUCKET/input/`,
 * for any function, and the function's results went to `BUCKET/output/` (1.x functions had no
 * outputs of their own: the bucket of the event was the output bucket). The scar CLI marks the
 * events it sends for `-es` with `"scar_event_source": true`; for a function without outputs the
 * engine then uploads its results there, as SCAR 1.x did. A function with outputs keeps its own.
 *
 * Only the `output/` folder of the event's own bucket on the engine's store can be named this way,
 * never another place, so the mark adds no destination an invoker could choose.
 */
import type { FunctionSpec } from "../fdl/spec.js";
import { parseEvent } from "../supervisor/events.js";
import { EMBEDDED_PROVIDERS } from "./triggers.js";

export const EVENT_SOURCE_MARK = "scar_event_source";
const OUTPUT_FOLDER = "output";

/** `spec`, with `BUCKET/output` as its output when `payload` is a marked event and it has none. */
export function withEventSourceOutput(spec: FunctionSpec, payload: unknown): FunctionSpec {
  if (spec.output.length > 0) return spec;
  let value = payload;
  if (value instanceof Uint8Array) {
    try {
      value = JSON.parse(Buffer.from(value).toString("utf8"));
    } catch {
      return spec;
    }
  }
  if (
    typeof value !== "object" ||
    value === null ||
    (value as Record<string, unknown>)[EVENT_SOURCE_MARK] !== true
  )
    return spec;
  let ev: ReturnType<typeof parseEvent>["event"];
  try {
    ev = parseEvent(value).event;
  } catch {
    return spec; // the supervisor reports the broken event
  }
  if (ev.kind !== "storage" || ev.providerId) return spec;
  const provider = ev.source === "minio:s3" ? "minio.default" : "s3.default";
  if (!EMBEDDED_PROVIDERS.has(provider)) return spec;
  return {
    ...spec,
    output: [
      {
        storage_provider: provider,
        path: `${ev.bucket}/${OUTPUT_FOLDER}`,
        bucket: ev.bucket,
        folder: OUTPUT_FOLDER,
        suffix: [],
        prefix: [],
      },
    ],
  };
}
