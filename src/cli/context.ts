/**
 * What the target commands share: scar.cfg, the target, SCAR's output modes (plain, -j JSON,
 * -v verbose, -o FILE), turning API and FDL errors into messages for the terminal, and choosing a
 * function of a multi-function FDL.
 */
import { type LoadedConfig, loadScarConfig } from "../config/scar-cfg.js";
import { FdlError, formatIssue } from "../fdl/issues.js";
import type { FdlResult, FunctionSpec } from "../fdl/spec.js";
import {
  ApiError,
  BucketError,
  type CliTarget,
  openTarget,
  TargetError,
  targetName,
} from "../targets/index.js";
import { CliError } from "./errors.js";
import type { TargetFlags } from "./options.js";
import { showProgress } from "./progress.js";
import { ask, interactive } from "./prompt.js";

export type { OutputFlags, TargetFlags } from "./options.js";
export { addOutputOptions, addTargetOption } from "./options.js";

export function loadConfig(): LoadedConfig {
  try {
    const cfg = loadScarConfig();
    for (const n of cfg.notices) process.stderr.write(`${n}\n`);
    return cfg;
  } catch (err) {
    if (err instanceof FdlError) throw fdlFailure(err, "scar.cfg");
    throw err;
  }
}

/** Opens the target of the command (starting the local engine if needed) and runs `fn` on it. */
export async function withTarget<T>(
  flags: TargetFlags,
  fn: (target: CliTarget, cfg: LoadedConfig) => Promise<T>,
  cfg: LoadedConfig = loadConfig(),
): Promise<T> {
  let target: CliTarget;
  try {
    const { name } = targetName(flags.target, process.env, cfg.config);
    const json = (flags as { json?: boolean }).json;
    target = await openTarget(name, cfg.config, {
      say: (l) => process.stderr.write(`${l}\n`),
      progress: showProgress(json),
    });
  } catch (err) {
    throw cliErrorOf(err);
  }
  try {
    return await fn(target, cfg);
  } catch (err) {
    throw cliErrorOf(err, target);
  } finally {
    await target.close();
  }
}

/** What to do when an image's registry cannot be reached (engine pulls and `scar image pull`). */
export const UNREACHABLE_REGISTRY_HINT =
  "get the image another way: 'scar image import' takes a 'docker save' archive, an OCI layout or a root file system; or 'scar image pull' it once the registry answers (a registry without TLS needs --insecure-registry)";

/** The terminal's version of an error from the target layer. */
export function cliErrorOf(err: unknown, target?: CliTarget): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof TargetError) return new CliError(err.message, 1, err.hint);
  if (err instanceof BucketError) return new CliError(err.message, 1);
  if (err instanceof FdlError) return fdlFailure(err);
  if (err instanceof ApiError) {
    const where = target ? ` (${target.name})` : "";
    if (err.status === 0)
      return new CliError(
        `${err.message}${where}`,
        1,
        target?.name === "local" ? "see 'scar engine status' and 'scar engine logs'" : undefined,
      );
    if ((err.details as { code?: unknown } | undefined)?.code === "UNREACHABLE")
      return new CliError(`${err.message}${where}`, 1, UNREACHABLE_REGISTRY_HINT);
    if (err.status === 401)
      return new CliError(`${err.message}${where}`, 1, "check auth_user and auth_password in scar.cfg");
    return new CliError(`${err.message}${where}`, 1);
  }
  return err;
}

/** Prints every problem of an FDL (or scar.cfg) and returns the error that ends the command. */
export function fdlFailure(err: FdlError, what?: string): CliError {
  for (const i of err.issues) process.stderr.write(`${formatIssue(i)}\n`);
  const n = err.issues.filter((i) => i.severity === "error").length;
  return new CliError(
    `${what ?? err.issues[0]?.file ?? "the definition"}: ${n} error${n === 1 ? "" : "s"}; nothing was changed`,
  );
}

export function printWarnings(result: FdlResult): void {
  for (const w of result.warnings) process.stderr.write(`${formatIssue(w)}\n`);
}

/** Writes one JSON document per line, as SCAR prints one per resource. */
export function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc)}\n`);
}

export function say(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/**
 * The function a command acts on: `-n`, else the only function of the FDL, else a choice on a
 * terminal (SCAR's chooser); without a terminal the user is asked for `-n`.
 */
export async function chooseFunction(
  name: string | undefined,
  fdl: { file: string; functions: FunctionSpec[] } | undefined,
): Promise<string> {
  if (name) return name;
  if (!fdl) throw new CliError("say which function with -n NAME (or -f FDL)", 2);
  const names = fdl.functions.map((f) => f.name);
  if (names.length === 1) return names[0]!;
  if (names.length === 0) throw new CliError(`${fdl.file} defines no function`);
  if (!interactive()) {
    throw new CliError(
      `${fdl.file} defines ${names.length} functions (${names.join(", ")}); say which with -n NAME`,
      2,
    );
  }
  process.stderr.write("Please choose a function:\n");
  names.forEach((n, i) => {
    process.stderr.write(`${i + 1}) ${n}\n`);
  });
  for (;;) {
    const i = Number(await ask("Enter number: "));
    if (Number.isInteger(i) && i >= 1 && i <= names.length) return names[i - 1]!;
    process.stderr.write(`Please enter a number from 1 to ${names.length}.\n`);
  }
}

/** A yes/no question on a terminal (empty means yes); `fallback` without one. */
export async function confirm(question: string, fallback: boolean): Promise<boolean> {
  if (!interactive()) return fallback;
  const a = (await ask(`${question} [Y/n] `)).toLowerCase();
  return a === "" || a === "y" || a === "yes";
}
