/**
 * An ordinary user starting the local engine (`scar serve`, `scar init`, `scar engine start`) is
 * refused at once, before a data folder, a job database or a port exists: rootless containers are
 * not supported yet (issue 20), run as root. `scar doctor --json` says the same and what this host
 * would offer rootless. Real `scar` processes run as `nobody` (setpriv) with a HOME of its own.
 */
import assert from "node:assert/strict";
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { tempDir } from "../engine/images/helpers.js";

const bin = new URL("../../../bin/scar", import.meta.url).pathname;
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
const work = tempDir("scar-not-root-");
fs.chmodSync(work, 0o755);
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** A HOME of nobody's own, one per test: what one test leaves cannot pass or fail another. */
function nobodyHome(name: string): string {
  const home = join(work, name);
  fs.mkdirSync(home);
  fs.chownSync(home, 65534, 65534);
  return home;
}

const nobodyCanRun = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), "test", "-x", bin]).status === 0;
const skip = !nobodyCanRun && "the checkout is not reachable by nobody (a folder above it is closed)";

function asNobody(home: string, ...args: string[]): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.SCAR_CONFIG_FOLDER;
  delete env.SCAR_DATA_DIR;
  delete env.SCAR_TARGET;
  return spawnSync(NOBODY[0]!, [...NOBODY.slice(1), bin, ...args], {
    encoding: "utf8",
    env,
    cwd: home,
    timeout: 120_000,
  });
}

function assertRefused(home: string, r: SpawnSyncReturns<string>, what: string): void {
  const dataDir = join(home, ".scar", "data");
  assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
  assert.match(
    r.stderr,
    /^error: the local engine needs root \(you are uid 65534\): rootless containers are not supported yet \(issue 20\)/m,
    what,
  );
  assert.match(r.stderr, /^hint: run scar as root \(for example with sudo\)/m, what);
  assert.doesNotMatch(r.stderr, /SCAR_DEBUG|stack/, `${what}: no stack-trace hint`);
  assert.equal(fs.existsSync(dataDir), false, `${what} created ${dataDir}`);
}

test("scar serve as nobody is refused before it makes a data folder", { skip }, () => {
  const home = nobodyHome("serve");
  assertRefused(home, asNobody(home, "serve", "--port", "0", "--s3-port", "0"), "scar serve");
  assert.equal(fs.existsSync(join(home, ".scar")), false, "serve wrote scar.cfg before refusing");
});

test("scar init and scar engine start as nobody are refused before an engine is started", { skip }, () => {
  const home = nobodyHome("init");
  fs.writeFileSync(
    join(home, "fn.yaml"),
    "functions:\n  oscar:\n  - local:\n      name: grayify\n      image: busybox\n      script: s.sh\n",
  );
  fs.writeFileSync(join(home, "s.sh"), "echo hi\n");
  const init = asNobody(home, "init", "-f", "fn.yaml");
  assertRefused(home, init, "scar init");
  assert.doesNotMatch(init.stderr, /Starting the local engine/);
  const start = nobodyHome("start");
  assertRefused(start, asNobody(start, "engine", "start"), "scar engine start");
});

test("scar doctor --json as nobody: the refusal, and what rootless would have here", { skip }, () => {
  const home = nobodyHome("doctor");
  const r = asNobody(home, "doctor", "--json", "--no-container");
  assert.equal(r.status, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, false);
  assert.equal(report.host.root, false);
  const privileges = report.checks.find((c: { name: string }) => c.name === "privileges");
  assert.equal(privileges.status, "fail");
  assert.match(privileges.value, /rootless containers are not supported yet \(issue 20\)/);
  assert.match(privileges.fix, /run scar as root/);
  // What the doctor says of user namespaces is what `unshare -Ur true` does for nobody.
  const unshareWorks = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), "unshare", "-Ur", "true"]).status === 0;
  assert.equal(report.host.userNamespaces.available, unshareWorks);
  assert.deepEqual(
    report.host.limits.map((l: { limit: string }) => l.limit),
    ["memory", "pids", "cpu", "disk"],
  );
  const disk = report.host.limits.find((l: { limit: string }) => l.limit === "disk");
  assert.equal(disk.rootless.holds, false, "no loop disks without root");
  for (const n of ["cgroup delegation", "systemd", "subordinate ids", "overlay flavour", "memory limit"])
    assert.ok(
      report.checks.some((c: { name: string }) => c.name === n),
      `missing check ${n}`,
    );
  assert.equal(fs.existsSync(join(home, ".scar", "data")), false, "doctor created the data folder");
});
