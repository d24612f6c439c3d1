/**
 * Pins a problem in one function to the place a person must edit. A function's settings come from
 * three layers (command line > FDL > scar.cfg); the problem is reported where the bad value was
 * written, and at the function's place in the FDL when nobody wrote it.
 */
import { isPlainObject, ownValue } from "../config/merge.js";
import { type FdlIssue, formatPath, type KeyPath } from "./issues.js";
import type { SourceFile } from "./source.js";

export interface Layer {
  source: SourceFile;
  /** The path in that file of a key path relative to the function, or undefined if it cannot hold it. */
  map: (rel: KeyPath) => KeyPath | undefined;
}

export class Locator {
  constructor(
    private readonly fdl: Layer,
    private readonly cfg?: Layer,
    private readonly overrides?: Record<string, unknown>,
  ) {}

  issue(
    severity: FdlIssue["severity"],
    rel: KeyPath,
    message: string,
    on: "key" | "value" = "value",
  ): FdlIssue {
    if (this.overrides && hasPath(this.overrides, rel)) {
      return { severity, file: "(command line)", line: 0, column: 0, path: formatPath(rel), message };
    }
    const fdlPath = this.fdl.map(rel) ?? this.fdl.map([])!;
    if (!this.fdl.source.has(fdlPath) && this.cfg) {
      const cfgPath = this.cfg.map(rel);
      if (cfgPath && this.cfg.source.has(cfgPath))
        return this.cfg.source.issue(severity, cfgPath, message, on);
    }
    return this.fdl.source.issue(severity, fdlPath, message, on);
  }

  /** The file and position of the function itself. */
  origin(): { file: string; path: string; line: number; column: number } {
    const p = this.fdl.map([])!;
    const pos = this.fdl.source.position(p, "value");
    return { file: this.fdl.source.file, path: formatPath(p), line: pos.line, column: pos.column };
  }
}

function hasPath(obj: Record<string, unknown>, path: KeyPath): boolean {
  let cur: unknown = obj;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === "number") cur = cur[seg];
    else if (isPlainObject(cur)) cur = ownValue(cur, String(seg));
    else return false;
    if (cur === undefined) return false;
  }
  return cur !== undefined;
}
