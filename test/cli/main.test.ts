import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));

function scar(...args: string[]) {
  return spawnSync(bin, args, { encoding: "utf8" });
}

test("scar --version prints the package version", () => {
  const r = scar("--version");
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), `scar ${pkg.version}`);
});

test("scar --help lists usage and exits 0", () => {
  const r = scar("--help");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: scar/);
  assert.match(r.stdout, /Run 'scar COMMAND --help'/);
});

test("an unknown command is a usage error with exit 2", () => {
  const r = scar("frobnicate");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});

test("scar with no command prints the usage and exits 2", () => {
  const r = scar();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /Usage: scar/);
});
