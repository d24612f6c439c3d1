/** What `scar init` and `scar update` do: FDL or flags -> FunctionSpecs -> the target. */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { LoadedConfig } from "../../config/scar-cfg.js";
import { FdlError, type FdlResult, type FunctionSpec, loadFdl, parseFdl } from "../../fdl/index.js";
import type { FunctionInfo, OscarTarget, TargetName } from "../../targets/index.js";
import { targetName } from "../../targets/index.js";
import { fdlFailure, loadConfig, printJson, printWarnings, say, withTarget } from "../context.js";
import { CliError } from "../errors.js";
import { assignments, awsOverrides, nameFromImage } from "../function-flags.js";
import { progressLine, showProgress } from "../progress.js";
import type { InitFlags } from "./init.js";

/** An FDL made of command-line flags only; problems are reported against the command line. */
const COMMAND_LINE_FDL = "functions:\n  aws:\n    - lambda: {}\n";

export function readDefinition(flags: InitFlags, cfg: LoadedConfig): FdlResult {
  const overrides = { aws: awsOverrides(flags) };
  try {
    if (flags.confFile) return loadFdl(flags.confFile, { config: cfg, overrides });
    return parseFdl(join(process.cwd(), "(command line)"), COMMAND_LINE_FDL, { config: cfg, overrides });
  } catch (err) {
    if (err instanceof FdlError) throw fdlFailure(err, flags.confFile ?? "the command line");
    throw err;
  }
}

/** The functions of an FDL that go to this target: all of them, except other OSCAR clusters' services. */
function forTarget(fns: FunctionSpec[], name: TargetName): FunctionSpec[] {
  if (name.kind === "local") return fns;
  return fns.filter((f) => f.provider === "aws" || f.cluster === name.cluster);
}

function describe(fn: FunctionInfo, target: OscarTarget, verbose: boolean) {
  return {
    LambdaOutput: verbose
      ? fn.raw
      : {
          FunctionName: fn.name,
          FunctionArn: `arn:scar:lambda:${target.name}:function:${fn.name}`,
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
  const def = readDefinition({ ...flags, ...(image ? { image } : {}), ...(base ? { name: base } : {}) }, cfg);
  printWarnings(def);
  const { name: tname } = targetName(flags.target, process.env, cfg.config);
  const fns = forTarget(def.functions, tname);
  if (fns.length === 0) throw new CliError(`${def.file} has no function for target ${flags.target}`);

  await withTarget(
    flags,
    async (target) => {
      for (let spec of fns) {
        if (await target.get(spec.name)) {
          if (!generated)
            throw new CliError(
              `Function '${spec.name}' already exists`,
              1,
              `change it with 'scar update -n ${spec.name}', or remove it first with 'scar rm -n ${spec.name}'`,
            );
          // SCAR 1.x: a generated name that is taken gets -1, -2, ...
          let i = 1;
          while (await target.get(`${spec.name}-${i}`)) i++;
          spec = { ...spec, name: `${spec.name}-${i}` };
        }
        const fn = await target.deploy(spec, {
          storageProviders: def.storage_providers,
          update: false,
          ...pullProgress(flags, spec.name),
        });
        if (flags.json || flags.verbose) printJson(describe(fn, target, Boolean(flags.verbose)));
        else {
          say(`Function '${fn.name}' successfully created.`);
          for (const i of fn.input) say(`Files uploaded to '${i.path}' run '${fn.name}'.`);
          for (const o of fn.output) say(`Its results go to '${o.path}'.`);
          if (fn.apiUrl) say(`API endpoint: ${fn.apiUrl}`);
        }
        if ((spec.raw.lambda as { preheat?: boolean } | undefined)?.preheat) {
          if (!flags.json) say("Preheating function");
          const r = await target.run(fn.name, {});
          if (!r.ok) throw new CliError(`preheating '${fn.name}' failed (request ${r.requestId})`);
          if (!flags.json) say("Preheating successful");
        }
      }
    },
    cfg,
  );
}

export async function runUpdate(flags: InitFlags): Promise<void> {
  if (!flags.name && !flags.confFile) throw new CliError("say what to update: -n NAME or -f FDL", 2);
  const cfg = loadConfig();
  await withTarget(
    flags,
    async (target) => {
      if (flags.confFile) {
        const def = readDefinition(flags, cfg);
        printWarnings(def);
        const { name: tname } = targetName(flags.target, process.env, cfg.config);
        const fns = forTarget(def.functions, tname).filter((f) => !flags.name || f.name === flags.name);
        if (fns.length === 0) throw new CliError(`no function '${flags.name}' in ${def.file}`);
        for (const spec of fns) {
          if (!(await target.get(spec.name)))
            throw new CliError(
              `Unable to find the function '${spec.name}'`,
              1,
              `create it with 'scar init -f ${flags.confFile}'`,
            );
          const fn = await target.deploy(spec, {
            storageProviders: def.storage_providers,
            update: true,
            ...pullProgress(flags, spec.name),
          });
          report(fn);
        }
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
