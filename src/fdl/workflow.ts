/**
 * Checks across all functions of a file: workflows are functions whose output path is another's
 * input path, which makes three mistakes easy, and each one only shows up at run time on S3:
 *  - a function whose output lands in its own input (every result triggers it again, forever);
 *  - a cycle through several functions (the same endless loop, longer);
 *  - two inputs on one bucket whose prefixes overlap (S3 rejects the notification configuration,
 *    and one upload would start both functions).
 */
import type { FdlIssue, KeyPath } from "./issues.js";
import type { Locator } from "./locator.js";
import type { FunctionSpec, StoragePath } from "./spec.js";
import { notificationPrefix } from "./storage-path.js";

export interface PlacedFunction {
  spec: FunctionSpec;
  /** Where to report a problem: a Locator into the FDL, or anything else that names the function. */
  loc: Pick<Locator, "issue">;
  /** Where input/output lists live relative to the function: `["lambda"]` for aws, `[]` for oscar. */
  ioBase: KeyPath;
}

/** Keys written under output `o` start with `o.folder/`; does input `i` fire for them? */
function feeds(o: StoragePath, i: StoragePath): boolean {
  return (
    o.storage_provider === i.storage_provider &&
    o.bucket === i.bucket &&
    `${o.folder}/`.startsWith(notificationPrefix(i))
  );
}

function bucketKey(p: StoragePath): string {
  return `${p.storage_provider}\0${p.bucket}`;
}

function overlaps(a: StoragePath, b: StoragePath): boolean {
  if (a.storage_provider !== b.storage_provider || a.bucket !== b.bucket) return false;
  const pa = notificationPrefix(a);
  const pb = notificationPrefix(b);
  return pa.startsWith(pb) || pb.startsWith(pa);
}

export function checkWorkflows(fns: PlacedFunction[]): FdlIssue[] {
  const issues: FdlIssue[] = [];
  const ioPath = (f: PlacedFunction, kind: "input" | "output", i: number): KeyPath => [
    ...f.ioBase,
    kind,
    i,
    "path",
  ];

  // Unique names: two functions of one name would replace each other on deployment.
  const seen = new Map<string, PlacedFunction>();
  for (const f of fns) {
    const key = `${f.spec.provider}:${f.spec.cluster ?? ""}:${f.spec.name}`;
    const first = seen.get(key);
    if (first) {
      const at = first.spec.source;
      issues.push(
        f.loc.issue(
          "error",
          f.spec.provider === "aws" ? ["lambda", "name"] : ["name"],
          `the name '${f.spec.name}' is already used by the function at line ${at.line}; names must be unique`,
        ),
      );
    } else seen.set(key, f);
  }

  // Inputs by store and bucket: only inputs on one bucket can overlap or be fed by an output, and
  // looking them up keeps a file of a thousand functions fast.
  const inputsByBucket = new Map<string, { f: PlacedFunction; p: StoragePath; i: number }[]>();
  for (const f of fns) {
    f.spec.input.forEach((p, i) => {
      const key = bucketKey(p);
      const list = inputsByBucket.get(key) ?? [];
      list.push({ f, p, i });
      inputsByBucket.set(key, list);
    });
  }

  // Overlapping inputs, within a function and across functions.
  for (const inputs of inputsByBucket.values()) {
    for (let a = 0; a < inputs.length; a++) {
      for (let b = a + 1; b < inputs.length; b++) {
        const x = inputs[a]!;
        const y = inputs[b]!;
        if (!overlaps(x.p, y.p)) continue;
        const whose =
          x.f === y.f
            ? "another input of this function"
            : `the input '${x.p.path}' of function '${x.f.spec.name}'`;
        issues.push(
          y.f.loc.issue(
            "error",
            ioPath(y.f, "input", y.i),
            `input '${y.p.path}' overlaps ${whose}: notifications on one bucket cannot have overlapping prefixes (S3 rejects them, and one upload would start both); use folders side by side, e.g. '${y.p.bucket}/${y.f.spec.name}-input'`,
          ),
        );
      }
    }
  }

  // A function feeding itself.
  for (const f of fns) {
    f.spec.output.forEach((o, oi) => {
      for (const inp of f.spec.input) {
        if (feeds(o, inp)) {
          issues.push(
            f.loc.issue(
              "error",
              ioPath(f, "output", oi),
              `output '${o.path}' is inside this function's own input '${inp.path}': every result would trigger the function again, endlessly; write results to a folder outside the input, e.g. '${inp.bucket}/output'`,
            ),
          );
        } else if (
          o.storage_provider === inp.storage_provider &&
          o.bucket === inp.bucket &&
          inp.folder.startsWith(`${o.folder}/`)
        ) {
          issues.push(
            f.loc.issue(
              "warning",
              ioPath(f, "output", oi),
              `the input '${inp.path}' is a sub-folder of output '${o.path}': if the script writes into '${inp.folder.slice(o.folder.length + 1)}/' under $TMP_OUTPUT_DIR, the function triggers itself`,
            ),
          );
        }
      }
    });
  }

  // Cycles through several functions.
  const edges = new Map<PlacedFunction, { to: PlacedFunction; output: number }[]>();
  for (const f of fns) {
    const out: { to: PlacedFunction; output: number }[] = [];
    f.spec.output.forEach((o, oi) => {
      for (const { f: g, p } of inputsByBucket.get(bucketKey(o)) ?? []) {
        if (g !== f && feeds(o, p) && !out.some((e) => e.to === g)) out.push({ to: g, output: oi });
      }
    });
    edges.set(f, out);
  }
  const reported = new Set<string>();
  const state = new Map<PlacedFunction, "open" | "done">();
  const stack: { f: PlacedFunction; output: number }[] = [];
  const visit = (f: PlacedFunction) => {
    state.set(f, "open");
    for (const e of edges.get(f) ?? []) {
      stack.push({ f, output: e.output });
      if (state.get(e.to) === "open") {
        const start = stack.findIndex((s) => s.f === e.to);
        const cycle = stack.slice(start);
        const names = cycle.map((s) => s.f.spec.name);
        const key = [...names].sort().join("\0");
        if (!reported.has(key)) {
          reported.add(key);
          const first = cycle[0]!;
          issues.push(
            first.f.loc.issue(
              "error",
              ioPath(first.f, "output", first.output),
              `these functions form a loop: ${[...names, names[0]].join(" -> ")}; each one's output triggers the next, endlessly. Send the last step's results to a folder that is no function's input`,
            ),
          );
        }
      } else if (!state.has(e.to)) visit(e.to);
      stack.pop();
    }
    state.set(f, "done");
  };
  for (const f of fns) if (!state.has(f)) visit(f);
  return issues;
}
