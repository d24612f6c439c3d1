/**
 * The YAML of SCAR 2.x/3.x: `functions` is a map keyed by function name, with flat keys
 * (`image`, `memory`, `time`, `s3: {input_bucket, ...}`). Converted to a SCAR 4 `functions.aws[]`
 * entry, remembering where each value was written so problems point at the old file's lines.
 */
import { isPlainObject, ownValue, setOwn } from "../config/merge.js";
import type { KeyPath } from "./issues.js";

const KEYS: [legacy: string, v4: KeyPath][] = [
  ["image", ["lambda", "container", "image"]],
  ["image_id", ["lambda", "container", "image"]],
  ["image_file", ["lambda", "container", "image_file"]],
  ["memory", ["lambda", "memory"]],
  ["time", ["lambda", "timeout"]],
  ["timeout", ["lambda", "timeout"]],
  ["timeout_threshold", ["lambda", "container", "timeout_threshold"]],
  ["description", ["lambda", "description"]],
  ["init_script", ["lambda", "init_script"]],
  ["run_script", ["lambda", "run_script"]],
  ["log_level", ["lambda", "log_level"]],
  ["execution_mode", ["lambda", "execution_mode"]],
  ["layers", ["lambda", "layers"]],
  ["extra_payload", ["lambda", "extra_payload"]],
  ["deployment_bucket", ["lambda", "deployment", "bucket"]],
  ["environment", ["lambda", "container", "environment"]],
  ["iam", ["iam"]],
  ["cloudwatch", ["cloudwatch"]],
  ["api_gateway", ["api_gateway"]],
  ["batch", ["batch"]],
];

/** True for `functions: {my-func: {...}}` (no `aws`/`oscar` lists). */
export function isLegacyFunctions(functions: unknown): functions is Record<string, unknown> {
  if (!isPlainObject(functions)) return false;
  const keys = Object.keys(functions);
  return (
    keys.length > 0 &&
    !keys.includes("aws") &&
    !keys.includes("oscar") &&
    keys.every((k) => isPlainObject(functions[k]))
  );
}

export interface LegacyConversion {
  entry: Record<string, unknown>;
  /** A path in the converted entry to the path in the legacy function map. */
  map: (rel: KeyPath) => KeyPath;
  /** Legacy keys with no SCAR 4 meaning, kept under `lambda` and reported. */
  unknown: string[];
}

export function convertLegacy(name: string, fn: Record<string, unknown>): LegacyConversion {
  const lambda: Record<string, unknown> = { name };
  const entry: Record<string, unknown> = { lambda };
  const unknown: string[] = [];
  const reverse: [KeyPath, KeyPath][] = [[["lambda", "name"], []]];
  for (const [key, value] of Object.entries(fn)) {
    if (key === "s3" && isPlainObject(value)) {
      const io = (bucket: unknown, folder: unknown) =>
        [bucket, folder].filter((x) => typeof x === "string" && x !== "").join("/");
      if (value.input_bucket) {
        lambda.input = [{ storage_provider: "s3", path: io(value.input_bucket, value.input_folder) }];
        reverse.push([
          ["lambda", "input"],
          ["s3", "input_bucket"],
        ]);
      }
      if (value.output_bucket) {
        lambda.output = [{ storage_provider: "s3", path: io(value.output_bucket, value.output_folder) }];
        reverse.push([
          ["lambda", "output"],
          ["s3", "output_bucket"],
        ]);
      }
      continue;
    }
    const target = KEYS.find(([k]) => k === key)?.[1];
    if (!target) {
      unknown.push(key);
      setOwn(lambda, key, value);
      reverse.push([["lambda", key], [key]]);
      continue;
    }
    const v =
      key === "environment" && isPlainObject(value) && !Object.hasOwn(value, "Variables")
        ? { Variables: value }
        : value;
    setIn(entry, target, v);
    reverse.push([target, [key]]);
  }
  const map = (rel: KeyPath): KeyPath => {
    let best: [KeyPath, KeyPath] | undefined;
    for (const r of reverse) {
      if (
        r[0].length <= rel.length &&
        r[0].every((s, i) => s === rel[i]) &&
        (!best || r[0].length > best[0].length)
      )
        best = r;
    }
    if (!best) return [];
    // Below a renamed key the shape is the same (e.g. batch.vcpus), except for the paths built from s3.*.
    return best[1][0] === "s3" ? best[1] : [...best[1], ...rel.slice(best[0].length)];
  };
  return { entry, map, unknown };
}

function setIn(obj: Record<string, unknown>, path: KeyPath, value: unknown): void {
  let cur = obj;
  for (const seg of path.slice(0, -1)) {
    const k = String(seg);
    if (!isPlainObject(ownValue(cur, k))) setOwn(cur, k, {});
    cur = cur[k] as Record<string, unknown>;
  }
  setOwn(cur, String(path[path.length - 1]), value);
}
