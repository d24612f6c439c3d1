/** What `scar init` and `scar update` do: FDL or flags -> FunctionSpecs -> the target. */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { LoadedConfig } from "../../config/scar-cfg.js";
import { FdlError, type FdlResult, type FunctionSpec, loadFdl, parseFdl } from "../../fdl/index.js";
import type { AwsTarget, CliTarget, FunctionInfo, OscarTarget, TargetName } from "../../targets/index.js";
import { targetName } from "../../targets/index.js";
import { cliErrorOf, fdlFailure, loadConfig, printJson, printWarnings, say, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { assignments, awsOverrides, nameFromImage } from "../function-flags.js";
import { progressLine, showProgress } from "../progress.js";
import type { InitFlags } from "./init.js";

/** An FDL made of command-line flags only; problems are reported against the command line. */
const COMMAND_LINE_FDL = "functions:\n  aws:\n    - lambda: {}\n";

function targetOf(flags: InitFlags, cfg: LoadedConfig): TargetName {
  try {
    return targetName(flags.target, process.env, cfg.config).name;
  } catch (err) {
    throw cliErrorOf(err);
  }
}

/** The FDL (or the command line) for target `to`, whose name rule applies (fdl/names.ts). */
export function readDefinition(flags: InitFlags, cfg: LoadedConfig, to: TargetName): FdlResult {
  const opts = {
    config: cfg,
    overrides: { aws: awsOverrides(flags) },
    ...(to.kind === "oscar" ? { nameRule: "service" as const } : {}),
  };
  try {
    if (flags.confFile) return loadFdl(flags.confFile, opts);
    return parseFdl(join(process.cwd(), "(command line)"), COMMAND_LINE_FDL, opts);
  } catch (err) {
    if (err instanceof FdlError) throw fdlFailure(err, flags.confFile ?? "the command line");
    throw err;
  }
}

/** The functions of an FDL that go to this target: all of them, except other OSCAR clusters' services. */
function forTarget(fns: FunctionSpec[], name: TargetName): FunctionSpec[] {
  if (name.kind === "local") return fns;
  if (name.kind === "aws") return fns.filter((f) => f.provider === "aws");
  return fns.filter((f) => f.provider === "aws" || f.cluster === name.cluster);
}

function describe(fn: FunctionInfo, target: CliTarget, verbose: boolean) {
  return {
    LambdaOutput: verbose
      ? fn.raw
      : {
          FunctionName: fn.name,
          FunctionArn:
            target.name === "aws"
              ? String(fn.raw.FunctionArn ?? "")
              : `arn:scar:lambda:${target.name}:function:${fn.name}`,
          Timeout: fn.timeout,
          MemorySize: fn.memory,
          Image: fn.image,
          ...(fn.apiUrl ? { ApiEndpoint: fn.apiUrl } : {}),
        },
  };
}

function pullProgress(flags: InitFlags, fn: string) {
  if (!showProgress(flags.json || flags.verbose)) return {};
  const line = progressLine(`getting the image of '${fn}'`);
  let drawn = false;
  return {
    onPull: (e: import("../../engine/images/pull.js").PullEvent) => {
      if (e.type === "layer") {
        line.size(e.digest, e.size);
        if (e.status !== "downloading") line.bytes(e.digest, e.size);
        drawn = true;
      } else if (e.type === "progress") line.bytes(e.digest, e.bytes);
      else if (e.type === "done" && drawn) line.finish(`image ${e.ref}: ${e.digest}`);
    },
  };
}

/**
 * The functions of the definition to act on. SCAR's -n overrides the name of the functions of an
 * FDL, which makes sense for a one-function file only; with several, `-f FILE -n NAME` picks the
 * function of that name (to finish or redo one function of a file).
 */
function selectFunctions(
  flags: InitFlags,
  cfg: LoadedConfig,
  to: TargetName,
): { def: FdlResult; fns: FunctionSpec[]; several: boolean } {
  if (flags.confFile && flags.name) {
    const { name, ...rest } = flags;
    const def = readDefinition(rest, cfg, to);
    const all = forTarget(def.functions, to);
    if (all.length > 1) {
      const fns = all.filter((f) => f.name === name);
      if (fns.length === 0)
        throw new CliError(
          `${flags.confFile} has no function '${name}'`,
          2,
          `its functions: ${all.map((f) => f.name).join(", ")}`,
        );
      return { def, fns, several: true };
    }
  }
  const def = readDefinition(flags, cfg, to);
  const fns = forTarget(def.functions, to);
  return { def, fns, several: fns.length > 1 };
}

/** An error that says nothing was changed (a deployment of several functions is all or nothing). */
function nothingChanged(err: unknown, target: CliTarget, fn: string, what = "deployed"): unknown {
  const e = cliErrorOf(err, target);
  if (!(e instanceof CliError)) return e;
  return new CliError(`function '${fn}': ${e.message}; nothing was ${what}`, e.exitCode, e.hint);
}

export async function runInit(positional: string | undefined, flags: InitFlags): Promise<void> {
  if (positional && flags.image) throw new CliError("give the image once: as IMAGE or with -i, not both", 2);
  const image = positional ?? flags.image;
  const given = [image, flags.imageFile, flags.confFile].filter(Boolean).length;
  if (given === 0)
    throw new CliError(
      "scar init needs an image (IMAGE or -i), an image file (-if) or a function definition (-f)",
      2,
    );
  if (given > 1 && !flags.confFile) throw new CliError("give either an image (-i) or an image file (-if)", 2);
  const cfg = loadConfig();
  const generated = !flags.name && !flags.confFile;
  const base = flags.name ?? (image ? nameFromImage(image) : flags.imageFile ? "scar-image" : undefined);
  const tname = targetOf(flags, cfg);
  const { def, fns } = selectFunctions(
    { ...flags, ...(image ? { image } : {}), ...(base ? { name: base } : {}) },
    cfg,
    tname,
  );
  printWarnings(def);
  if (fns.length === 0) throw new CliError(`${def.file} has no function for target ${flags.target}`);

  await withTarget(
    flags,
    async (target) => {
      // 1. Check every function and get every image before changing anything.
      if (target.name === "aws") for (const spec of fns) (target as AwsTarget).check(spec);
      const planned: FunctionSpec[] = [];
      const taken: string[] = [];
      for (let spec of fns) {
        if (await target.get(spec.name)) {
          if (!generated) {
            taken.push(spec.name);
            continue;
          }
          // SCAR 1.x: a generated name that is taken gets -1, -2, ...
          let i = 1;
          while (await target.get(`${spec.name}-${i}`)) i++;
          spec = { ...spec, name: `${spec.name}-${i}` };
        }
        planned.push(spec);
      }
      if (taken.length > 0) throw alreadyExists(taken, planned, flags);
      const ready: FunctionSpec[] = [];
      for (const spec of planned) {
        try {
          ready.push(await target.prepare(spec, pullProgress(flags, spec.name)));
        } catch (err) {
          throw planned.length > 1 ? nothingChanged(err, target, spec.name) : err;
        }
      }
      // 2. Create them; if one fails, remove the ones this command created.
      const created: FunctionInfo[] = [];
      let failing = "";
      try {
        for (const spec of ready) {
          failing = spec.name;
          created.push(
            await target.deploy(spec, {
              storageProviders: def.storage_providers,
              ...(def.clusters ? { clusters: def.clusters } : {}),
              update: false,
              prepared: true,
            }),
          );
        }
      } catch (err) {
        if (created.length === 0) throw planned.length > 1 ? nothingChanged(err, target, failing) : err;
        const left: string[] = [];
        for (const fn of [...created].reverse()) {
          try {
            await target.remove(fn.name);
          } catch {
            left.push(fn.name);
          }
        }
        const e = cliErrorOf(err, target);
        if (!(e instanceof CliError)) throw e;
        const removed = created.map((f) => `'${f.name}'`).join(", ");
        throw new CliError(
          left.length === 0
            ? `function '${failing}': ${e.message}; nothing was deployed (${removed} removed again)`
            : `function '${failing}': ${e.message}; could not remove again ${left.map((n) => `'${n}'`).join(", ")}`,
          e.exitCode,
          left.length === 0
            ? e.hint
            : `remove ${left.length === 1 ? "it" : "them"} with 'scar rm -n NAME' before running this again`,
        );
      }
      // 3. Say what was created, then preheat.
      for (const fn of created) {
        if (flags.json || flags.verbose) printJson(describe(fn, target, Boolean(flags.verbose)));
        else {
          say(`Function '${fn.name}' successfully created.`);
          for (const i of fn.input) say(`Files uploaded to '${i.path}' run '${fn.name}'.`);
          for (const o of fn.output) say(`Its results go to '${o.path}'.`);
          if (fn.apiUrl) say(`API endpoint: ${fn.apiUrl}`);
        }
      }
      for (const [i, spec] of ready.entries()) {
        if (!(spec.raw.lambda as { preheat?: boolean } | undefined)?.preheat) continue;
        const fn = created[i]!;
        if (!flags.json) say("Preheating function");
        const r = await target.run(fn.name, {});
        if (!r.ok) throw new CliError(`preheating '${fn.name}' failed (request ${r.requestId})`);
        if (!flags.json) say("Preheating successful");
      }
    },
    cfg,
  );
}

/** Some functions of the definition exist: nothing is created, and the hint says how to go on. */
function alreadyExists(taken: string[], missing: FunctionSpec[], flags: InitFlags): CliError {
  const list = (names: string[]) => names.map((n) => `'${n}'`).join(", ");
  if (!flags.confFile)
    return new CliError(
      `Function '${taken[0]}' already exists`,
      1,
      `change it with 'scar update -n ${taken[0]}', or remove it first with 'scar rm -n ${taken[0]}'`,
    );
  const file = flags.confFile;
  if (missing.length === 0)
    return new CliError(
      taken.length === 1 ? `Function '${taken[0]}' already exists` : `Functions ${list(taken)} already exist`,
      1,
      `change ${taken.length === 1 ? "it" : "them"} with 'scar update -f ${file}', or remove ${taken.length === 1 ? "it" : "them"} first with 'scar rm -f ${file}'`,
    );
  return new CliError(
    `${list(taken)} of ${file} already ${taken.length === 1 ? "exists" : "exist"}, ${list(missing.map((f) => f.name))} ${missing.length === 1 ? "does" : "do"} not; nothing was deployed`,
    1,
    `create only what is missing with ${missing.map((f) => `'scar init -f ${file} -n ${f.name}'`).join(", ")}; or start again with 'scar rm -f ${file}' and 'scar init -f ${file}'`,
  );
}

export async function runUpdate(flags: InitFlags): Promise<void> {
  if (!flags.name && !flags.confFile) throw new CliError("say what to update: -n NAME or -f FDL", 2);
  const cfg = loadConfig();
  await withTarget(
    flags,
    async (any) => {
      if (any.name === "aws") return updateOnAws(any as AwsTarget, flags, cfg);
      const target = any as OscarTarget;
      if (flags.confFile) {
        const tname = targetOf(flags, cfg);
        const { def, fns, several } = selectFunctions(flags, cfg, tname);
        printWarnings(def);
        if (fns.length === 0) throw new CliError(`${def.file} has no function for target ${flags.target}`);
        // Check every function and get every image before changing anything.
        const before: FunctionInfo[] = [];
        const missing = [];
        for (const spec of fns) {
          const current = await target.get(spec.name);
          if (current) before.push(current);
          else missing.push(spec.name);
        }
        if (missing.length > 0)
          throw new CliError(
            `Unable to find the function${missing.length === 1 ? "" : "s"} ${missing.map((n) => `'${n}'`).join(", ")}`,
            1,
            several
              ? `create ${missing.length === 1 ? "it" : "them"} with ${missing.map((n) => `'scar init -f ${flags.confFile} -n ${n}'`).join(", ")}${before.length > 0 ? "; nothing was updated" : ""}`
              : `create it with 'scar init -f ${flags.confFile}'`,
          );
        const ready: FunctionSpec[] = [];
        for (const spec of fns) {
          try {
            ready.push(await target.prepare(spec, pullProgress(flags, spec.name)));
          } catch (err) {
            throw several ? nothingChanged(err, target, spec.name, "updated") : err;
          }
        }
        // Update them; if one fails, put back the definitions of those already updated.
        const updated: FunctionInfo[] = [];
        let failing = "";
        try {
          for (const spec of ready) {
            failing = spec.name;
            updated.push(
              await target.deploy(spec, {
                storageProviders: def.storage_providers,
                ...(def.clusters ? { clusters: def.clusters } : {}),
                ...(def.clusters ? { clusters: def.clusters } : {}),
                update: true,
                prepared: true,
              }),
            );
          }
        } catch (err) {
          if (updated.length === 0) throw several ? nothingChanged(err, target, failing, "updated") : err;
          const e = cliErrorOf(err, target);
          if (!(e instanceof CliError)) throw e;
          return putBackAndThrow(updated, failing, e, async (name) => {
            const old = { ...before.find((b) => b.name === name)!.raw };
            delete old.token;
            await target.client.json("PUT", "/system/services", { json: old });
          });
        }
        for (const fn of updated) report(fn);
        return;
      }
      const current = await target.get(flags.name!);
      if (!current) throw new CliError(`Unable to find the function '${flags.name}'`);
      const service = patchService(current.raw, flags);
      await target.client.json("PUT", "/system/services", { json: service });
      report((await target.get(flags.name!))!);

      function report(fn: FunctionInfo) {
        if (flags.json || flags.verbose) printJson(describe(fn, target, Boolean(flags.verbose)));
        else say(`Function '${fn.name}' successfully updated.`);
      }
    },
    cfg,
  );
}

/**
 * The flags whose values live in the function image (its function_config.yaml, its script): on AWS,
 * `scar update -n NAME` cannot apply them without the FDL's files.
 */
const IMAGE_FLAGS: [keyof InitFlags, string][] = [
  ["image", "-i"],
  ["imageFile", "--if"],
  ["initScript", "-s"],
  ["environment", "-e"],
  ["timeoutThreshold", "--tt"],
  ["logLevel", "--ll"],
  ["layers", "-l"],
  ["inputBucket", "--ib"],
  ["outputBucket", "--ob"],
  ["eventSource", "--es"],
  ["executionMode", "--em"],
  ["supervisorVersion", "--sv"],
  ["runtime", "--rt"],
  ["batchMemory", "--bm"],
  ["batchVcpus", "--bc"],
  ["enableGpu", "-g"],
];

/**
 * `scar update` on AWS. With -f: every function of the FDL checked as init checks it, then updated
 * (image rebuilt and pushed, code and configuration); if one fails, those already updated are put
 * back. With -n alone: memory, timeout, description, role and Lambda variables (the rest lives in
 * the function image, which is built from the FDL's files).
 */
async function updateOnAws(target: AwsTarget, flags: InitFlags, cfg: LoadedConfig): Promise<void> {
  const report = (fn: FunctionInfo) => {
    if (flags.json || flags.verbose) printJson(describe(fn, target, Boolean(flags.verbose)));
    else say(`Function '${fn.name}' successfully updated.`);
  };
  if (!flags.confFile) {
    const imageFlags = IMAGE_FLAGS.filter(([k]) => {
      const v = flags[k];
      return Array.isArray(v) ? v.length > 0 : v !== undefined;
    }).map(([, flag]) => flag);
    if (imageFlags.length > 0)
      throw new CliError(
        `on the aws target, 'scar update -n' changes memory (-m), timeout (-t), description (-d), role (-r) and Lambda variables (--le); ${imageFlags.join(", ")} change${imageFlags.length === 1 ? "s" : ""} the function image`,
        2,
        `give the function definition: scar update -f FDL -n ${flags.name}`,
      );
    const number = (v: string | undefined, flag: string) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n)) throw new CliError(`${flag} must be a whole number, not '${v}'`, 2);
      return n;
    };
    const memory = number(flags.memory, "-m");
    const timeout = number(flags.timeout, "-t");
    const fn = await target.updateSettings(flags.name!, {
      ...(memory !== undefined ? { memory } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
      ...(flags.description !== undefined ? { description: flags.description } : {}),
      ...(flags.iamRole !== undefined ? { role: flags.iamRole } : {}),
      ...(flags.lambdaEnvironment.length > 0
        ? { variables: assignments(flags.lambdaEnvironment, "--le") }
        : {}),
    });
    report(fn);
    return;
  }
  const { def, fns, several } = selectFunctions(flags, cfg, { kind: "aws" });
  printWarnings(def);
  if (fns.length === 0) throw new CliError(`${def.file} has no function for target aws`);
  // Everything checked, and every function found, before anything changes.
  for (const spec of fns) target.check(spec);
  const before: NonNullable<Awaited<ReturnType<typeof target.snapshot>>>[] = [];
  const missing: string[] = [];
  for (const spec of fns) {
    const snap = await target.snapshot(spec.name, target.regionOf(spec));
    if (snap) before.push(snap);
    else missing.push(spec.name);
  }
  if (missing.length > 0)
    throw new CliError(
      `Unable to find the function${missing.length === 1 ? "" : "s"} ${missing.map((n) => `'${n}'`).join(", ")}`,
      1,
      several
        ? `create ${missing.length === 1 ? "it" : "them"} with ${missing.map((n) => `'scar init -f ${flags.confFile} -n ${n}'`).join(", ")}; nothing was updated`
        : `create it with 'scar init -f ${flags.confFile}'`,
    );
  for (const spec of fns) {
    try {
      await target.prepare(spec);
    } catch (err) {
      throw several ? nothingChanged(err, target, spec.name, "updated") : err;
    }
  }
  const updated: FunctionInfo[] = [];
  let failing = "";
  try {
    for (const spec of fns) {
      failing = spec.name;
      updated.push(
        await target.deploy(spec, { storageProviders: def.storage_providers, update: true, prepared: true }),
      );
    }
  } catch (err) {
    if (updated.length === 0) throw several ? nothingChanged(err, target, failing, "updated") : err;
    const e = cliErrorOf(err, target);
    if (!(e instanceof CliError)) throw e;
    return putBackAndThrow(updated, failing, e, (name) =>
      target.restore(before.find((b) => b.config.FunctionName === name)!),
    );
  }
  for (const fn of updated) report(fn);
}

/**
 * After the update of `failing` failed, with `updated` already changed: puts each of those back
 * with `putBack`, then throws the error, saying that nothing was updated or what could not be put back.
 */
async function putBackAndThrow(
  updated: readonly { name: string }[],
  failing: string,
  e: CliError,
  putBack: (name: string) => Promise<unknown>,
): Promise<never> {
  const failed: string[] = [];
  for (const fn of updated) {
    try {
      await putBack(fn.name);
    } catch {
      failed.push(fn.name);
    }
  }
  const names = updated.map((f) => `'${f.name}'`).join(", ");
  throw new CliError(
    failed.length === 0
      ? `function '${failing}': ${e.message}; nothing was updated (${names} put back as ${updated.length === 1 ? "it was" : "they were"})`
      : `function '${failing}': ${e.message}; could not put back ${failed.map((n) => `'${n}'`).join(", ")} as before`,
    e.exitCode,
    e.hint,
  );
}

/** `scar update -n NAME -m 512 -e K=V ...`: the deployed service definition with those changes. */
function patchService(raw: Record<string, unknown>, f: InitFlags): Record<string, unknown> {
  const s: Record<string, unknown> = structuredClone(raw);
  const scar = { ...((s.scar as Record<string, unknown> | undefined) ?? {}) };
  const number = (v: string, flag: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new CliError(`${flag} must be a positive number, not '${v}'`, 2);
    return n;
  };
  if (f.memory) s.memory = `${number(f.memory, "-m")}Mi`;
  if (f.timeout) scar.timeout = number(f.timeout, "-t");
  if (f.timeoutThreshold) scar.timeout_threshold = number(f.timeoutThreshold, "-tt");
  if (f.executionMode) scar.execution_mode = f.executionMode;
  if (f.description) scar.description = f.description;
  if (f.logLevel) s.log_level = f.logLevel.toUpperCase();
  if (f.image) s.image = f.image;
  if (f.initScript) s.script = readFileSync(resolve(f.initScript), "utf8");
  if (f.environment.length > 0) {
    const env = (s.environment as { variables?: Record<string, string> } | undefined) ?? {};
    s.environment = { ...env, variables: { ...(env.variables ?? {}), ...assignments(f.environment, "-e") } };
  }
  s.scar = scar;
  delete s.token;
  return s;
}
