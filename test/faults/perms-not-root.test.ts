/**
 * An ordinary user and the local engine. Where the kernel gives the user no user namespace, `scar
 * serve`, `scar init` and `scar engine start` are refused at once, before a data folder, a job
 * database or a port exists, with the sysctl that decides it and the fix, and `scar doctor` says the
 * same. Where it does (this host), the engine runs rootless: `scar doctor --json` says so, runs its
 * test container and names what does not hold. Real `scar` processes run as `nobody` (setpriv)
 * with a HOME of its own; the host without user namespaces is a user namespace of the test's, with
 * every id mapped, whose `user.max_user_namespaces` is 0 (that sysctl is per namespace).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
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

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function env(home: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete e.SCAR_CONFIG_FOLDER;
  delete e.SCAR_DATA_DIR;
  delete e.SCAR_TARGET;
  return e;
}

function asNobody(home: string, ...args: string[]): Ran {
  return spawnSync(NOBODY[0]!, [...NOBODY.slice(1), bin, ...args], {
    encoding: "utf8",
    env: env(home),
    cwd: home,
    timeout: 120_000,
  });
}

/**
 * `scar args` as nobody on a host whose kernel gives nobody no user namespace: in a user namespace of
 * ours (every id mapped, so nobody is nobody) with user.max_user_namespaces = 0.
 */
async function asNobodyWithoutUserns(home: string, ...args: string[]): Promise<Ran> {
  // (the shell that writes the sysctl is executed after the maps exist: capabilities are reckoned at exec)
  const script =
    'IFS= read -r go && exec sh -c \'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"\' sh "$@"';
  const child = spawn("unshare", ["--user", "sh", "-c", script, "sh", ...NOBODY, bin, ...args], {
    env: env(home),
    cwd: home,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const own = fs.readlinkSync("/proc/self/ns/user");
  for (let i = 0; i < 2000; i++) {
    try {
      if (fs.readlinkSync(`/proc/${child.pid}/ns/user`) !== own) break;
    } catch {
      // not started yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  fs.writeFileSync(`/proc/${child.pid}/uid_map`, "0 0 4294967295\n");
  fs.writeFileSync(`/proc/${child.pid}/gid_map`, "0 0 4294967295\n");
  child.stdin.end("go\n");
  const status = await new Promise<number | null>((res) => child.on("close", (code) => res(code)));
  return { status, stdout, stderr };
}

function assertRefused(home: string, r: Ran, what: string): void {
  const dataDir = join(home, ".scar", "data");
  assert.equal(r.status, 1, `${what}: ${r.stdout}${r.stderr}`);
  assert.match(
    r.stderr,
    /^error: the local engine runs rootless containers for an ordinary user \(you are uid 65534\), and this host gives you no user namespace: user\.max_user_namespaces = 0/m,
    what,
  );
  assert.match(
    r.stderr,
    /^hint: ask an administrator to allow user namespaces: sysctl -w user\.max_user_namespaces=15000 .*; or run scar as root/m,
    what,
  );
  assert.doesNotMatch(r.stderr, /SCAR_DEBUG|stack/, `${what}: no stack-trace hint`);
  assert.equal(fs.existsSync(dataDir), false, `${what} created ${dataDir}`);
}

test("without user namespaces, scar serve as nobody is refused before it makes a data folder", {
  skip,
}, async () => {
  const home = nobodyHome("serve");
  const r = await asNobodyWithoutUserns(home, "serve", "--port", "0", "--s3-port", "0");
  assertRefused(home, r, "scar serve");
  assert.equal(fs.existsSync(join(home, ".scar")), false, "serve wrote scar.cfg before refusing");
});

test("without user namespaces, scar init and scar engine start as nobody are refused", { skip }, async () => {
  const home = nobodyHome("init");
  fs.writeFileSync(
    join(home, "fn.yaml"),
    "functions:\n  oscar:\n  - local:\n      name: grayify\n      image: busybox\n      script: s.sh\n",
  );
  fs.writeFileSync(join(home, "s.sh"), "echo hi\n");
  const init = await asNobodyWithoutUserns(home, "init", "-f", "fn.yaml");
  assertRefused(home, init, "scar init");
  assert.doesNotMatch(init.stderr, /Starting the local engine/);
  const start = nobodyHome("start");
  assertRefused(start, await asNobodyWithoutUserns(start, "engine", "start"), "scar engine start");
});

test("without user namespaces, scar doctor --json as nobody fails on privileges, naming the sysctl", {
  skip,
}, async () => {
  const home = nobodyHome("doctor-no-userns");
  const r = await asNobodyWithoutUserns(home, "doctor", "--json", "--no-container");
  assert.equal(r.status, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, false);
  assert.equal(report.host.userNamespaces.available, false);
  assert.match(report.host.userNamespaces.blocker.reason, /user\.max_user_namespaces = 0/);
  const privileges = report.checks.find((c: { name: string }) => c.name === "privileges");
  assert.equal(privileges.status, "fail");
  assert.match(privileges.fix, /sysctl -w user\.max_user_namespaces=15000/);
  assert.equal(report.host.rootless, undefined);
});

test("scar doctor --json as nobody with user namespaces: rootless, a test container, what does not hold", {
  skip,
}, () => {
  const unshareWorks = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), "unshare", "-Ur", "true"]).status === 0;
  if (!unshareWorks) return; // the test above covers such a host
  const home = nobodyHome("doctor");
  const r = asNobody(home, "doctor", "--json");
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.host.root, false);
  assert.equal(report.host.userNamespaces.available, true);
  const expectMapping = fs.existsSync("/usr/bin/newuidmap") ? ["single", "ranges"] : ["single"];
  assert.ok(expectMapping.includes(report.host.rootless.mapping));
  const check = (n: string) => report.checks.find((c: { name: string }) => c.name === n);
  assert.equal(check("privileges").status, "ok");
  assert.match(check("privileges").value, /^rootless: no memory, pids or cpu limits/);
  assert.equal(check("container").status, "ok", check("container").value);
  assert.match(check("container").value, /rootless: no memory or pids limits/);
  assert.match(report.overlay, /in a user namespace \(userxattr\)/);
  for (const l of report.host.limits) assert.equal(l.rootless.holds, false, l.limit);
  assert.match(check("disk limit").value, /^rootless: not held, loop-mounted disks need root/);
  assert.equal(fs.existsSync(join(home, ".scar", "data")), false, "doctor created the data folder");
});
