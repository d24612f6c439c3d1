import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cgroupMode } from "../../../src/engine/runtime/cgroups.js";
import { openRuntime, RuntimeUnavailableError } from "../../../src/engine/runtime/detect.js";

let dir: string;
const PATH = process.env.PATH;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "scar-detect-"));
});

after(() => {
  process.env.PATH = PATH;
  rmSync(dir, { recursive: true, force: true });
});

/** Puts broken `names` first on PATH: they exist but fail, like a half-installed runtime. */
function brokenFirst(...names: string[]): void {
  const bin = join(dir, names.join("-"));
  mkdirSync(bin, { recursive: true });
  for (const n of names) {
    writeFileSync(join(bin, n), "#!/bin/sh\necho broken >&2\nexit 1\n");
    chmodSync(join(bin, n), 0o755);
  }
  process.env.PATH = `${bin}:${PATH}`;
}

test("crun is preferred, with the hybrid-cgroup workaround when the host needs it", async () => {
  process.env.PATH = PATH;
  const o = await openRuntime({ stateDir: join(dir, "s1") });
  try {
    assert.equal(o.runtime.name, "crun");
    assert.equal(o.workaround, cgroupMode() === "hybrid" ? "private-mount-namespace" : "none");
    if (o.workaround !== "none") assert.ok(o.runtime.host.namespace?.alive);
  } finally {
    o.runtime.host.namespace?.close();
  }
});

test("a crun that does not work is skipped for runc, and the reason is kept", async () => {
  brokenFirst("crun");
  const o = await openRuntime({ stateDir: join(dir, "s2") });
  assert.equal(o.runtime.name, "runc");
  assert.equal(o.workaround, "none");
  assert.match(o.skipped.join(), /crun: .*--version failed/);
});

test("when nothing works the error names what to install", async () => {
  brokenFirst("crun", "runc");
  await assert.rejects(openRuntime({ stateDir: join(dir, "s3") }), (e: unknown) => {
    assert.ok(e instanceof RuntimeUnavailableError);
    assert.match(e.message, /no usable OCI runtime.*crun.*runc/);
    assert.match(e.install ?? "", /install .*crun/);
    return true;
  });
});
