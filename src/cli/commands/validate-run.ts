import { loadScarConfig } from "../../config/scar-cfg.js";
import { FdlError, type FdlIssue, type FunctionSpec, formatIssue, loadFdl } from "../../fdl/index.js";
import { type TargetName, targetName } from "../../targets/index.js";
import { cliErrorOf } from "../context.js";
import { formatTable } from "../table.js";

/**
 * Returns the exit code: 0 valid (warnings allowed), 1 invalid. `target` (--target) is resolved as
 * scar init resolves it, so the file is checked with the rules of where init would deploy it.
 */
export function runValidate(file: string, json: boolean, target?: string): number {
  try {
    const cfg = loadScarConfig();
    for (const n of cfg.notices) process.stderr.write(`${n}\n`);
    let to: TargetName;
    try {
      to = targetName(target, process.env, cfg.config).name;
    } catch (err) {
      throw cliErrorOf(err);
    }
    const result = loadFdl(file, { config: cfg, ...(to.kind === "oscar" ? { nameRule: "service" } : {}) });
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ functions: result.functions.map(toJson), warnings: result.warnings.map(issueJson) }, null, 2)}\n`,
      );
    } else {
      for (const w of result.warnings) process.stderr.write(`${formatIssue(w)}\n`);
      process.stdout.write(`${functionsTable(result.functions)}\n`);
      const n = result.functions.length;
      process.stdout.write(`\n${file}: ${n} function${n === 1 ? "" : "s"}, valid.\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof FdlError)) throw err;
    const errors = err.issues.filter((i) => i.severity === "error");
    if (json) process.stdout.write(`${JSON.stringify({ errors: errors.map(issueJson) }, null, 2)}\n`);
    else {
      for (const i of err.issues) process.stderr.write(`${formatIssue(i)}\n`);
      process.stderr.write(
        `${file}: ${errors.length} error${errors.length === 1 ? "" : "s"}; nothing was deployed.\n`,
      );
    }
    return 1;
  }
}

function issueJson(i: FdlIssue) {
  return { file: i.file, line: i.line, column: i.column, path: i.path, message: i.message };
}

/** The documented JSON of a function: everything but `raw`, and secret names without their values. */
function toJson(f: FunctionSpec) {
  const { raw: _raw, secrets, ...rest } = f;
  return { ...rest, secrets: Object.keys(secrets) };
}

function functionsTable(fns: FunctionSpec[]): string {
  const paths = (f: FunctionSpec, list: { storage_provider: string; path: string }[]) => {
    const dflt = f.provider === "aws" ? "s3.default" : "minio.default";
    return list
      .map((p) => (p.storage_provider === dflt ? p.path : `${p.storage_provider}:${p.path}`))
      .join(", ");
  };
  return formatTable(
    ["NAME", "PROVIDER", "IMAGE", "MEMORY", "TIMEOUT", "MODE", "INPUT", "OUTPUT"],
    fns.map((f) => [
      f.name,
      f.provider === "oscar" ? `oscar:${f.cluster}` : "aws",
      f.image ?? f.image_file,
      f.memory,
      f.timeout,
      f.execution_mode,
      paths(f, f.input),
      paths(f, f.output),
    ]),
  );
}
