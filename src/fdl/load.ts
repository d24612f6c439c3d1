/**
 * Reading an FDL file into FunctionSpecs: parse with positions, merge each function over scar.cfg
 * and under the command line (CLI > FDL > scar.cfg), check every function, then check them together.
 * All problems of a file are collected and reported at once; nothing throws a stack trace at a user.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { defaultConfig, type ScarConfigFile } from "../config/defaults.js";
import { isPlainObject, mergeLayers, ownValue } from "../config/merge.js";
import { normalizeAwsFunction } from "./aws.js";
import type { FunctionContext } from "./common.js";
import { FdlError, type FdlIssue, type KeyPath } from "./issues.js";
import { convertLegacy, isLegacyFunctions } from "./legacy.js";
import { type Layer, Locator } from "./locator.js";
import type { NameRule } from "./names.js";
import { nearMiss } from "./near-miss.js";
import { normalizeOscarService } from "./oscar.js";
import { parseProviders } from "./providers.js";
import {
  awsFunctionSchema,
  oscarServiceSchema,
  topLevelSchema,
  type UnknownKey,
  unknownKeys,
} from "./schema.js";
import { SourceFile } from "./source.js";
import type { FdlResult, FunctionSpec } from "./spec.js";
import { checkWorkflows, type PlacedFunction } from "./workflow.js";

export interface LoadOptions {
  /** scar.cfg, the lowest layer; its defaults when absent. `source` lets problems point into it. */
  config?: { config: ScarConfigFile; source?: SourceFile };
  /** The command-line layer, merged over every function of its provider (as SCAR does). */
  overrides?: { aws?: Record<string, unknown>; oscar?: Record<string, unknown> };
  /**
   * The name rule of the platform every function goes to (an OSCAR cluster: "service"); absent,
   * each provider's own (aws: Lambda's, oscar: OSCAR's), which is what scar's engine applies.
   */
  nameRule?: NameRule;
}

export function loadFdl(file: string, opts: LoadOptions = {}): FdlResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === "ENOENT"
        ? "file not found"
        : e.code === "EISDIR"
          ? "this is a folder, not a file"
          : e.message;
    throw new FdlError([
      { severity: "error", file, line: 0, column: 0, path: "", message: `cannot read the FDL file: ${why}` },
    ]);
  }
  return parseFdl(file, text, opts);
}

export function parseFdl(file: string, text: string, opts: LoadOptions = {}): FdlResult {
  const parsed = SourceFile.parse(file, text);
  if (parsed.errors.length > 0) throw new FdlError(parsed.errors);
  const source = parsed.source;
  const issues: FdlIssue[] = [];
  const value = source.value;
  if (!isPlainObject(value)) {
    const message =
      value === undefined || value === null
        ? "the file is empty; an FDL starts with `functions:` (see scar validate --help)"
        : "an FDL must be a map starting with `functions:`";
    throw new FdlError([source.issue("error", [], message)]);
  }
  const doc: Record<string, unknown> = value;
  for (const path of reservedKeyPaths(doc))
    issues.push(
      source.issue(
        "error",
        path,
        "a key cannot be named '__proto__' (JavaScript gives that name a meaning of its own, so scar would lose its value); rename or remove it",
        "key",
      ),
    );
  // In the SCAR 2.x/3.x shape the keys under `functions` are function names, not unknown keys.
  const legacy = isLegacyFunctions(doc.functions);
  const topLevel = legacy ? { ...doc, functions: {} } : doc;
  for (const u of unknownKeys(topLevelSchema, topLevel)) issues.push(unknownKeyIssue(source, [], u));

  const cfg = opts.config?.config ?? defaultConfig();
  const cfgSource = opts.config?.source;
  const providers = parseProviders(doc.storage_providers, source, issues);
  const placed: PlacedFunction[] = [];
  const dir = dirname(resolve(file));
  const ctxFor = (loc: Locator): FunctionContext => ({
    dir,
    providers,
    issues,
    loc,
    ...(opts.nameRule ? { nameRule: opts.nameRule } : {}),
  });
  const place = (spec: FunctionSpec | undefined, loc: Locator, ioBase: KeyPath) => {
    if (spec) placed.push({ spec, loc, ioBase });
  };

  const functions = doc.functions;
  if (legacy && isLegacyFunctions(functions)) {
    issues.push(
      source.issue(
        "warning",
        ["functions"],
        "this is the SCAR 2.x/3.x format (functions keyed by name); it is read, but write new files as `functions: {aws: [{lambda: {name: ..., container: {image: ...}}}]}`",
        "key",
      ),
    );
    for (const [name, fn] of Object.entries(functions)) {
      const conv = convertLegacy(name, fn as Record<string, unknown>);
      const base = ["functions", name];
      for (const key of conv.unknown) issues.push(unknownKeyIssue(source, base, { path: [key], known: [] }));
      const loc = new Locator(
        { source, map: (rel) => [...base, ...conv.map(rel)] },
        cfgSource && { source: cfgSource, map: (rel) => ["aws", ...rel] },
        opts.overrides?.aws,
      );
      const merged = mergeLayers(cfg.aws, withAliases(conv.entry), withAliases(opts.overrides?.aws));
      place(normalizeAwsFunction(merged, ctxFor(loc)), loc, ["lambda"]);
    }
  } else if (isPlainObject(functions)) {
    readAws(functions.aws);
    readOscar(functions.oscar);
  } else if (functions !== undefined) {
    issues.push(
      source.issue("error", ["functions"], "functions must be a map with `aws:` and/or `oscar:` lists"),
    );
  }

  function readAws(list: unknown) {
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) {
      issues.push(
        source.issue(
          "error",
          ["functions", "aws"],
          "functions.aws must be a list: each item starts with `- lambda:`",
        ),
      );
      return;
    }
    list.forEach((item, i) => {
      const base = ["functions", "aws", i];
      if (!isPlainObject(item)) {
        issues.push(
          source.issue("error", base, "each functions.aws item must be a map with a `lambda:` key"),
        );
        return;
      }
      if (!isPlainObject(item.lambda)) {
        issues.push(
          source.issue(
            "error",
            base,
            "this function has no `lambda:` section; add `lambda: {name: ..., container: {image: ...}}`",
          ),
        );
        return;
      }
      for (const u of unknownKeys(awsFunctionSchema, item)) issues.push(unknownKeyIssue(source, base, u));
      const layer: Layer = { source, map: (rel) => [...base, ...rel] };
      const loc = new Locator(
        layer,
        cfgSource && { source: cfgSource, map: (rel) => ["aws", ...rel] },
        opts.overrides?.aws,
      );
      const merged = mergeLayers(cfg.aws, withAliases(item), withAliases(opts.overrides?.aws));
      place(normalizeAwsFunction(merged, ctxFor(loc)), loc, ["lambda"]);
    });
  }

  function readOscar(list: unknown) {
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) {
      issues.push(
        source.issue(
          "error",
          ["functions", "oscar"],
          "functions.oscar must be a list: each item is `- <cluster_id>: {name: ..., image: ...}`",
        ),
      );
      return;
    }
    const clusters = isPlainObject(doc.clusters) ? doc.clusters : {};
    list.forEach((item, i) => {
      const base = ["functions", "oscar", i];
      const keys = isPlainObject(item) ? Object.keys(item) : [];
      if (!isPlainObject(item) || keys.length !== 1 || !isPlainObject(item[keys[0]!])) {
        issues.push(
          source.issue(
            "error",
            base,
            "each functions.oscar item must be one cluster id mapping to a service: `- my_oscar: {name: ..., image: ...}`",
          ),
        );
        return;
      }
      const cluster = keys[0]!;
      const service = item[cluster] as Record<string, unknown>;
      for (const u of unknownKeys(oscarServiceSchema, service))
        issues.push(unknownKeyIssue(source, [...base, cluster], u, "kept and passed to OSCAR"));
      const ownCfg = cfg.oscar ? ownValue(cfg.oscar, cluster) : undefined;
      const clusterCfg = isPlainObject(ownCfg) ? (ownCfg as (typeof cfg.oscar)[string]) : undefined;
      if (!clusterCfg && !Object.hasOwn(clusters, cluster)) {
        issues.push(
          source.issue(
            "warning",
            [...base, cluster],
            `cluster '${cluster}' is not configured in scar.cfg (oscar.${cluster}: endpoint, auth_user, auth_password); the local target can run this service, deploying it to OSCAR needs the cluster`,
            "key",
          ),
        );
      }
      // Only the service defaults of a cluster's settings apply to its services.
      const defaults = {
        memory: clusterCfg?.memory ?? "256Mi",
        cpu: clusterCfg?.cpu ?? "0.2",
        log_level: clusterCfg?.log_level ?? "INFO",
      };
      const loc = new Locator(
        { source, map: (rel) => [...base, cluster, ...rel] },
        cfgSource && {
          source: cfgSource,
          map: (rel) =>
            rel.length === 1 && Object.hasOwn(defaults, String(rel[0]))
              ? ["oscar", cluster, ...rel]
              : undefined,
        },
        opts.overrides?.oscar,
      );
      const merged = mergeLayers(defaults, service, opts.overrides?.oscar);
      place(normalizeOscarService(merged, cluster, ctxFor(loc)), loc, []);
    });
  }

  const hadFunctions =
    isLegacyFunctions(functions) ||
    (isPlainObject(functions) &&
      ((Array.isArray(functions.aws) && functions.aws.length > 0) ||
        (Array.isArray(functions.oscar) && functions.oscar.length > 0)));
  if (!hadFunctions && !issues.some((i) => i.severity === "error")) {
    issues.push(
      source.issue(
        "error",
        functions === undefined ? [] : ["functions"],
        "no functions defined: add `functions:` with an `aws:` or `oscar:` list",
      ),
    );
  }

  issues.push(...checkWorkflows(placed));
  const errors = issues.filter((i) => i.severity === "error");
  if (errors.length > 0) throw new FdlError(sortIssues(issues));
  return {
    file,
    functions: placed.map((p) => p.spec),
    storage_providers: providers,
    // OSCAR's FDL: the clusters its services may delegate jobs to (oscar-cli sends them with each service)
    ...(isPlainObject(doc.clusters) ? { clusters: doc.clusters as Record<string, unknown> } : {}),
    warnings: sortIssues(issues),
  };
}

function sortIssues(issues: FdlIssue[]): FdlIssue[] {
  return [...issues].sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1,
  );
}

/**
 * Where the file has a key named `__proto__`. The parser keeps it as an own key, but every copy by
 * assignment, and zod, drop it (or would set a prototype with it), so its value cannot reach the
 * spec: an error rather than a warning that says it is kept. Other names of Object.prototype's
 * members (`constructor`, `toString`) are ordinary keys: every lookup here is of own keys.
 * A loop, not recursion: YAML can nest deeper than the stack.
 */
function reservedKeyPaths(doc: Record<string, unknown>): KeyPath[] {
  const found: KeyPath[] = [];
  const todo: [unknown, KeyPath][] = [[doc, []]];
  for (let item = todo.pop(); item !== undefined; item = todo.pop()) {
    const [value, path] = item;
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) todo.push([v, [...path, i]]);
    } else if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (k === "__proto__") found.push([...path, k]);
        else todo.push([v, [...path, k]]);
      }
    }
  }
  return found;
}

/**
 * `lambda.timeout_threshold` (where SCAR's -tt flag put it) means `lambda.container.timeout_threshold`.
 * Resolved within each layer before merging, so an FDL's alias beats scar.cfg's container default.
 */
function withAliases(layer: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const lambda = layer?.lambda;
  if (!isPlainObject(lambda) || lambda.timeout_threshold === undefined) return layer;
  const container = isPlainObject(lambda.container) ? lambda.container : {};
  if (container.timeout_threshold !== undefined) return layer;
  return {
    ...layer,
    lambda: { ...lambda, container: { ...container, timeout_threshold: lambda.timeout_threshold } },
  };
}

/**
 * An unknown key: an error when it is a near miss of a key scar knows at that place (its value would
 * otherwise be dropped without a sound, e.g. `init_scrpt`), else a warning (OSCAR and newer SCAR
 * versions add keys, which are kept).
 */
function unknownKeyIssue(source: SourceFile, base: KeyPath, u: UnknownKey, what = "kept, not used by scar") {
  const key = String(u.path[u.path.length - 1]);
  const meant = nearMiss(key, u.known);
  if (meant !== undefined)
    return source.issue(
      "error",
      [...base, ...u.path],
      `unknown key '${key}': did you mean '${meant}'? Rename it; as written, scar would ignore its value`,
      "key",
    );
  return source.issue("warning", [...base, ...u.path], `unknown key '${key}' (${what})`, "key");
}
