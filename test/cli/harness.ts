/**
 * What the CLI tests share: running the real `scar` binary with a scratch SCAR_CONFIG_FOLDER, and a
 * scratch folder with a scar.cfg whose local engine keeps its data there (stopped and removed after
 * the file's tests).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

export const bin = new URL("../../../bin/scar", import.meta.url).pathname;

export interface ScarResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ScarOptions {
  /** SCAR_CONFIG_FOLDER: always a scratch folder. */
  cfgDir: string;
  cwd?: string;
  env?: Record<string, string>;
  timeout?: number;
}

/** Runs `scar args`; its exit code and output, whatever the code. */
export function runScar(args: string[], opts: ScarOptions): Promise<ScarResult> {
  return new Promise((resolve) =>
    execFile(
      bin,
      args,
      {
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        env: { ...process.env, SCAR_CONFIG_FOLDER: opts.cfgDir, ...opts.env },
        maxBuffer: 64 << 20,
        timeout: opts.timeout ?? 120_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

/** Writes `cfgDir/scar.cfg` (config version 2.0.0) with these `local` and `scar` settings. */
export function writeScarCfg(
  cfgDir: string,
  local: Record<string, unknown>,
  scar: Record<string, unknown> = {},
): void {
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(
    join(cfgDir, "scar.cfg"),
    JSON.stringify({ scar: { config_version: "2.0.0", ...scar }, local }),
  );
}

export interface CliWorkspace {
  /** The scratch folder, the commands' working folder. */
  dir: string;
  /** `dir/cfg`, with scar.cfg. */
  cfgDir: string;
  /** `dir/data`, the local engine's data folder. */
  dataDir: string;
  scar(args: string[], env?: Record<string, string>): Promise<ScarResult>;
  /** Runs `scar args`, asserts it exits 0, and gives its standard output. */
  ok(args: string[], env?: Record<string, string>): Promise<string>;
  /** `scar image import path --tag tag --data-dir dataDir --change c …` */
  importImage(path: string, tag: string, changes: string[]): Promise<string>;
}

/**
 * A scratch folder whose scar.cfg has the local engine on free ports with its data in the folder
 * (and these `scar` settings); after the file's tests the engine is stopped and the folder removed.
 */
export function useCliWorkspace(prefix: string, scarSettings: Record<string, unknown> = {}): CliWorkspace {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cfgDir = join(dir, "cfg");
  const dataDir = join(dir, "data");
  writeScarCfg(cfgDir, { data_dir: dataDir, port: 0, s3_port: 0 }, scarSettings);
  const scar = (args: string[], env: Record<string, string> = {}) => runScar(args, { cfgDir, cwd: dir, env });
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await scar(args, env);
    assert.equal(r.code, 0, `scar ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  after(async () => {
    await scar(["engine", "stop"]);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    cfgDir,
    dataDir,
    scar,
    ok,
    importImage: (path, tag, changes) =>
      ok([
        "image",
        "import",
        path,
        "--tag",
        tag,
        "--data-dir",
        dataDir,
        ...changes.flatMap((c) => ["--change", c]),
      ]),
  };
}
