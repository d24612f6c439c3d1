/**
 * Deployed functions, one folder each under `<data dir>/functions/<name>/`: `function.json` (the
 * FunctionSpec as deployed, the image digest, the invocation token) and copies of its scripts, so
 * editing or deleting the files an FDL pointed to never changes a deployed function (as SCAR packs
 * the script into the function).
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../config/scar-cfg.js";
import type { FunctionSpec } from "../fdl/spec.js";

export interface DeployedFunction {
  spec: FunctionSpec;
  /** The image as deployed: the reference the user gave and the manifest digest it resolved to. */
  image: { ref: string; digest: string };
  /** Bearer token for `/run/<name>` and `/job/<name>` (OSCAR's per-service token). */
  token: string;
  deployedAt: string;
  updatedAt: string;
}

export class FunctionRegistry {
  private readonly root: string;
  private readonly cache = new Map<string, DeployedFunction>();

  constructor(dataDir: string) {
    this.root = join(dataDir, "functions");
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.root)) {
      const file = join(this.root, name, "function.json");
      if (existsSync(file)) this.cache.set(name, JSON.parse(readFileSync(file, "utf8")) as DeployedFunction);
    }
  }

  get(name: string): DeployedFunction | undefined {
    return this.cache.get(name);
  }

  list(): DeployedFunction[] {
    return [...this.cache.values()].sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
  }

  /** Saves a new or updated function; keeps its token and first deployment time across updates. */
  save(spec: FunctionSpec, image: DeployedFunction["image"]): DeployedFunction {
    const dir = join(this.root, spec.name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const own = { ...spec };
    if (spec.script) own.script = this.keep(spec.script, join(dir, "script.sh"));
    if (spec.run_script) own.run_script = this.keep(spec.run_script, join(dir, "run_script.sh"));
    const before = this.cache.get(spec.name);
    const now = new Date().toISOString();
    const fn: DeployedFunction = {
      spec: own,
      image,
      token: before?.token ?? randomBytes(32).toString("hex"),
      deployedAt: before?.deployedAt ?? now,
      updatedAt: now,
    };
    writeFileAtomic(join(dir, "function.json"), `${JSON.stringify(fn, null, 2)}\n`);
    this.cache.set(spec.name, fn);
    return fn;
  }

  remove(name: string): boolean {
    if (!this.cache.delete(name)) return false;
    rmSync(join(this.root, name), { recursive: true, force: true });
    return true;
  }

  private keep(src: string, dest: string): string {
    if (src !== dest) copyFileSync(src, dest);
    return dest;
  }
}
