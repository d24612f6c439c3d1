import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { installCommand } from "../../../src/engine/runtime/detect.js";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;

test("scar doctor --json reports runtime, cgroups, overlay, user namespaces and runs a test container", () => {
  const r = spawnSync(bin, ["doctor", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.match(report.runtime, /^(crun|runc) /);
  assert.ok(["v1", "v2", "hybrid"].includes(report.cgroupMode));
  assert.match(report.overlay, /overlayfs|copy/);
  assert.equal(typeof report.userNamespaces, "string");
  const names = report.checks.map((c: { name: string }) => c.name);
  for (const n of [
    "privileges",
    "cgroups",
    "crun",
    "runc",
    "user namespaces",
    "runtime",
    "overlay",
    "container",
    "seccomp",
    "cgroup delegation",
    "systemd",
    "subordinate ids",
    "overlay flavour",
    "memory limit",
    "pids limit",
    "cpu limit",
    "disk limit",
    "warm environments",
  ]) {
    assert.ok(names.includes(n), `missing check ${n}`);
  }
  assert.equal(report.checks.find((c: { name: string }) => c.name === "container").status, "ok");
  assert.equal(report.checks.find((c: { name: string }) => c.name === "seccomp").status, "ok");
  // the build made scar's agent here (gcc and libc6-dev are installed by scripts/install-deps.sh)
  assert.match(
    report.checks.find((c: { name: string }) => c.name === "warm environments").value,
    /^available/,
  );
  assert.match(report.userNamespaces, /^available .*an ordinary user's engine runs its containers in one/);
  // The host's mode as data: root here, and what holds where.
  assert.equal(report.host.root, true);
  assert.equal(report.host.cgroupMode, report.cgroupMode);
  assert.equal(typeof report.host.systemdPid1, "boolean");
  assert.equal(report.host.userNamespaces.available, true);
  assert.ok(["kernel overlay", "copy fallback"].includes(report.host.overlayFlavour.root));
  const disk = report.host.limits.find((l: { limit: string }) => l.limit === "disk");
  assert.equal(disk.root.holds, true, "the runner made a disk: the root side says so");
  assert.equal(disk.rootless.holds, false);
  for (const l of report.host.limits) assert.equal(typeof l.root.how, "string");
});

const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const nobodyCanRead = spawnSync(asNobody[0]!, [...asNobody.slice(1), "test", "-r", bin]).status === 0;

test("scar doctor as a normal user: rootless, with what does not hold and what to ask for", {
  skip: !nobodyCanRead && "checkout not readable by nobody",
}, () => {
  const home = mkdtempSync(join(tmpdir(), "scar-doctor-nobody-"));
  chownSync(home, 65534, 65534);
  try {
    const r = spawnSync(asNobody[0]!, [...asNobody.slice(1), bin, "doctor"], {
      encoding: "utf8",
      env: { ...process.env, HOME: home },
    });
    const userns = spawnSync(asNobody[0]!, [...asNobody.slice(1), "unshare", "-Ur", "true"]).status === 0;
    if (!userns) {
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stdout, /privileges\s+FAIL/);
      assert.match(r.stdout, /cannot run containers here/);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /privileges\s+ok\s+rootless: no memory, pids or cpu limits/);
    assert.match(r.stdout, /disk limit\s+WARN\s+rootless: not held/);
    assert.match(r.stdout, /To fix:/);
    assert.match(r.stdout, /can run containers here/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("install hints name the package manager's command", () => {
  assert.match(installCommand("crun"), /crun/);
});
