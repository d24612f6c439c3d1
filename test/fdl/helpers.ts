import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { FdlError, type FdlIssue, type FdlResult, type LoadOptions, loadFdl } from "../../src/fdl/index.js";

export const fixtures = new URL("../../../test/fixtures/fdl/", import.meta.url).pathname;

export function fixture(name: string): string {
  return join(fixtures, name);
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder with `files` written into it; removed after the test file. */
export function tempDir(files: Record<string, string> = {}): string {
  const d = mkdtempSync(join(tmpdir(), "scar-fdl-"));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

/** Writes `yaml` as fn.yaml (beside a script.sh) and loads it. */
export function load(yaml: string, opts: LoadOptions = {}): FdlResult {
  const d = tempDir({ "fn.yaml": yaml, "script.sh": "echo hi\n" });
  return loadFdl(join(d, "fn.yaml"), opts);
}

/** Loads `yaml` and returns its issues; fails the test when it loads without errors. */
export function issuesOf(yaml: string, opts: LoadOptions = {}): FdlIssue[] {
  try {
    load(yaml, opts);
  } catch (err) {
    if (err instanceof FdlError) return err.issues;
    throw err;
  }
  assert.fail("expected the FDL to be rejected");
}

/** The only error of `yaml`, as `line:column path: message`. */
export function onlyError(yaml: string, opts: LoadOptions = {}): string {
  const errors = issuesOf(yaml, opts).filter((i) => i.severity === "error");
  assert.equal(
    errors.length,
    1,
    `expected exactly one error, got:\n${errors.map((e) => e.message).join("\n")}`,
  );
  const e = errors[0]!;
  return `${e.line}:${e.column} ${e.path}: ${e.message}`;
}
