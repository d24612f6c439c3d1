/**
 * scar.cfg: where it lives, creating it on first use, upgrading older versions (JSON from SCAR
 * 2.x-4.x, and the INI file of SCAR's first versions) without losing what the user set.
 *
 * Unlike SCAR, a missing file is created and the command goes on: the local target needs no IAM
 * role. The aws target checks for the role itself when it needs one.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseIni } from "ini";
import { FdlError } from "../fdl/issues.js";
import { SourceFile } from "../fdl/source.js";
import { CONFIG_VERSION, defaultConfig, type ScarConfigFile } from "./defaults.js";
import { deepMerge, isPlainObject } from "./merge.js";

export interface LoadedConfig {
  path: string;
  config: ScarConfigFile;
  /** The parsed file, for pointing at the line of a bad value that came from scar.cfg. */
  source: SourceFile;
  /** What happened to the file on the way (created, upgraded, converted): tell the user. */
  notices: string[];
}

/** `$SCAR_CONFIG_FOLDER`, else `~/.scar`. */
export function configFolder(env: NodeJS.ProcessEnv = process.env): string {
  return env.SCAR_CONFIG_FOLDER || join(homedir(), ".scar");
}

export function loadScarConfig(folder: string = configFolder()): LoadedConfig {
  const path = join(folder, "scar.cfg");
  const notices: string[] = [];
  if (!existsSync(path)) {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    writeFileAtomic(path, render(defaultConfig()));
    notices.push(`Config file '${path}' created with default values.`);
    return { path, config: defaultConfig(), source: parseSource(path, render(defaultConfig())), notices };
  }

  const text = readFileSync(path, "utf8");
  let user: unknown;
  try {
    user = JSON.parse(text);
  } catch (err) {
    if (looksLikeIni(text)) {
      const converted = fromIni(text, notices);
      const backup = backupFile(path);
      writeFileAtomic(path, render(converted));
      notices.push(
        `Converted the INI configuration of SCAR's first versions in '${path}' to the current format; the old file is saved in '${backup}'.`,
      );
      return { path, config: converted, source: parseSource(path, render(converted)), notices };
    }
    throw jsonSyntaxError(path, text, err as Error);
  }
  if (!isPlainObject(user)) {
    throw new FdlError([
      {
        severity: "error",
        file: path,
        line: 1,
        column: 1,
        path: "",
        message: "scar.cfg must hold a JSON object",
      },
    ]);
  }

  const version = isPlainObject(user.scar) ? String(user.scar.config_version ?? "") : "";
  if (compareVersions(version, CONFIG_VERSION) < 0) {
    const upgraded = upgrade(user);
    const backup = backupFile(path);
    writeFileAtomic(path, render(upgraded));
    notices.push(
      `Upgraded '${path}' from config_version ${version || "(none)"} to ${CONFIG_VERSION}, keeping your values; the old file is saved in '${backup}'.`,
    );
    return { path, config: upgraded, source: parseSource(path, render(upgraded)), notices };
  }
  // A file from a newer scar: use it as it is, with our defaults under it for keys it lacks.
  return { path, config: deepMerge(defaultConfig(), user), source: parseSource(path, text), notices };
}

/**
 * Older JSON layouts to the current one. Values the user set are kept; values equal to an old
 * default that can no longer work are replaced by the new default (runtime python3.7, udocker
 * variables).
 */
export function upgrade(user: Record<string, unknown>): ScarConfigFile {
  // biome-ignore lint/suspicious/noExplicitAny: reshaping free-form user JSON
  const u = structuredClone(user) as Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: reshaping free-form user JSON
  const aws: Record<string, any> = isPlainObject(u.aws) ? u.aws : {};
  // biome-ignore lint/suspicious/noExplicitAny: reshaping free-form user JSON
  const lambda: Record<string, any> = isPlainObject(aws.lambda) ? aws.lambda : {};
  // SCAR 2.x/3.x: `aws.region`, `aws.boto_profile` applied to every service; `lambda.time`.
  for (const key of ["region", "boto_profile"] as const) {
    if (typeof aws[key] === "string") {
      for (const svc of ["lambda", "iam", "s3", "api_gateway", "cloudwatch", "batch"]) {
        aws[svc] = isPlainObject(aws[svc]) ? aws[svc] : {};
        aws[svc][key] ??= aws[key];
      }
      delete aws[key];
    }
  }
  if (lambda.time !== undefined && lambda.timeout === undefined) lambda.timeout = lambda.time;
  delete lambda.time;
  if (lambda.timeout_threshold !== undefined) {
    lambda.container = isPlainObject(lambda.container) ? lambda.container : {};
    lambda.container.timeout_threshold ??= lambda.timeout_threshold;
    delete lambda.timeout_threshold;
  }
  if (typeof lambda.runtime === "string" && /^python3\.[0-8]$/.test(lambda.runtime)) delete lambda.runtime;
  const vars = lambda.environment?.Variables;
  if (isPlainObject(vars)) {
    for (const k of Object.keys(vars)) if (k.startsWith("UDOCKER_")) delete vars[k];
  }
  if (Object.keys(lambda).length > 0) aws.lambda = lambda;
  if (Object.keys(aws).length > 0) u.aws = aws;
  const merged = deepMerge(defaultConfig(), u);
  merged.scar.config_version = CONFIG_VERSION;
  return merged;
}

const INI_KEYS: Record<string, (cfg: ScarConfigFile, v: string) => void> = {
  lambda_description: (c, v) => {
    c.aws.lambda.description = v;
  },
  lambda_memory: (c, v) => {
    c.aws.lambda.memory = toNumber(v);
  },
  lambda_time: (c, v) => {
    c.aws.lambda.timeout = toNumber(v);
  },
  lambda_region: (c, v) => {
    for (const svc of ["lambda", "s3", "api_gateway", "cloudwatch", "batch"] as const) c.aws[svc].region = v;
  },
  lambda_role: (c, v) => {
    c.aws.iam.role = v;
  },
  lambda_timeout_threshold: (c, v) => {
    (c.aws.lambda.container as Record<string, unknown>).timeout_threshold = toNumber(v);
  },
};

/** The `[scar]` INI file of SCAR's first versions to the current JSON layout. */
export function fromIni(text: string, notices: string[] = []): ScarConfigFile {
  const ini = parseIni(text) as Record<string, unknown>;
  const cfg = defaultConfig();
  const section = isPlainObject(ini.scar) ? ini.scar : {};
  const unknown: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(section)) {
    const apply = INI_KEYS[k];
    if (apply) apply(cfg, String(v).trim());
    else unknown[k] = v;
  }
  if (Object.keys(unknown).length > 0) {
    // Kept, not dropped: the user may want them back.
    cfg.scar.legacy_ini = unknown;
    notices.push(
      `Unknown keys of the INI file were kept under scar.legacy_ini: ${Object.keys(unknown).join(", ")}.`,
    );
  }
  return cfg;
}

function looksLikeIni(text: string): boolean {
  return /^\s*\[scar\]\s*$/m.test(text);
}

function toNumber(v: string): number | string {
  const n = Number(v);
  return v !== "" && Number.isFinite(n) ? n : v;
}

/** Numeric dotted-version comparison; a missing or malformed version is older than any. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => Number.parseInt(x, 10));
  const pb = b.split(".").map((x) => Number.parseInt(x, 10));
  if (pa.some(Number.isNaN)) return -1;
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Copies `path` to `path_old` (or `path_old.1`, `.2`, ... so no earlier backup is overwritten). */
function backupFile(path: string): string {
  let backup = `${path}_old`;
  for (let n = 1; existsSync(backup); n++) backup = `${path}_old.${n}`;
  copyFileSync(path, backup);
  return backup;
}

/** Write to a temporary file, fsync, rename: a crash never leaves a half-written scar.cfg. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function render(cfg: ScarConfigFile): string {
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

function parseSource(path: string, text: string): SourceFile {
  return SourceFile.parse(path, text).source;
}

function jsonSyntaxError(path: string, text: string, err: Error): FdlError {
  const m = /position (\d+)/.exec(err.message);
  let line = 1;
  let column = 1;
  if (m) {
    const before = text.slice(0, Number(m[1]));
    line = before.split("\n").length;
    column = before.length - before.lastIndexOf("\n");
  }
  return new FdlError([
    {
      severity: "error",
      file: path,
      line,
      column,
      path: "",
      message: `scar.cfg is not valid JSON (${err.message.replace(/ in JSON at position \d+.*$/, "")}). Fix the file, or move it away to get a new one with default values.`,
    },
  ]);
}
