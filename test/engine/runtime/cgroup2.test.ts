/**
 * cgroup v2 with systemd, where the engine gets its cgroup (cgroup2.ts): only on such a host (the
 * VM of scripts/test-hosts.sh; skipped elsewhere). As an ordinary user with a systemd user session
 * (the VM's, SCAR_TEST_ROOTLESS_UID), a scope of the user's manager with memory, pids and cpu; with
 * the user bus out of reach, no limits and why; as root with the system bus out of reach, a clear
 * error and its fix. And `scar doctor --json` says the same, as root and as that user.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { cgroupMode } from "../../../src/engine/runtime/cgroups.js";
import { bin, EXPECT, NOBODY, NOBODY_UID, nobodyEnv, nobodyRoot, rootlessSkip } from "../rootless-harness.js";

const systemdV2 =
  cgroupMode() === "v2" && readFileSync("/proc/1/comm", "utf8").trim() === "systemd"
    ? false
    : "not a cgroup v2 host with systemd (scripts/test-hosts.sh runs it on one)";
const userSkip = systemdV2 || rootlessSkip() || (!EXPECT.limits && "no user with a systemd user session");
const place = systemdV2 ? undefined : nobodyRoot("scar-cgroup2-");
after(() => place?.cleanup());
const child = new URL("./cgroup2-child.js", import.meta.url).pathname;

interface Opened {
  ok: boolean;
  error?: string;
  fix?: string;
  placement?: { delegated: string; how: string; controllers: string[]; missing: string[] };
  rootlessLimits?: { held: string[]; cgroup?: string; why?: string };
  own?: string;
}

function open(asUser: boolean, name: string, env: NodeJS.ProcessEnv = {}): Opened {
  const state = place!.dir(name);
  const argv = [process.execPath, child, state];
  const r = asUser
    ? spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], {
        encoding: "utf8",
        env: { ...nobodyEnv(state), ...env },
        cwd: state,
        timeout: 600_000,
      })
    : spawnSync(argv[0]!, argv.slice(1), {
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: 600_000,
      });
  assert.equal(r.status, 0, `${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as Opened;
}

test("rootless on cgroup v2: a scope of the user's systemd, with memory, pids and cpu", {
  skip: userSkip,
}, () => {
  const o = open(true, "user");
  assert.equal(o.ok, true, o.error);
  assert.equal(o.placement?.how, "scope");
  const d = o.placement!.delegated;
  assert.match(
    d,
    new RegExp(
      `^/user\\.slice/user-${NOBODY_UID}\\.slice/user@${NOBODY_UID}\\.service/.*/scar-engine-\\d+\\.scope$`,
    ),
  );
  assert.equal(o.own, `${d}/scar-engine`, "the engine moved into its leaf");
  assert.deepEqual(o.rootlessLimits, { held: ["cpu", "memory", "pids"], cgroup: d });
});

test("rootless on cgroup v2 without the user bus: no limits, and why", { skip: userSkip }, () => {
  const o = open(true, "nobus", { DBUS_SESSION_BUS_ADDRESS: "unix:path=/run/scar-no-such-bus" });
  assert.equal(o.ok, true, o.error);
  assert.equal(o.placement, undefined);
  assert.equal(o.rootlessLimits?.held.length, 0);
  assert.match(
    o.rootlessLimits!.why!,
    /your systemd user session did not make the scope scar-engine-\d+\.scope/,
  );
  assert.match(o.rootlessLimits!.why!, /loginctl enable-linger/, "names the fix");
});

test("root on cgroup v2 without the system bus: a clear error naming the way out", {
  skip: systemdV2,
}, () => {
  const own = /^0::(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))![1]!;
  // (only where the engine has to ask: a plain service or session, not a delegated scope)
  if (!/\.service$/.test(own)) return;
  const o = open(false, "root-nobus", { DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/run/scar-no-such-bus" });
  assert.equal(o.ok, false);
  assert.match(o.error!, /systemd did not make the scope scar-engine-\d+\.scope for the containers' cgroups/);
  assert.match(o.fix!, /systemd-run --scope -p Delegate=yes scar serve/);
});

interface Doctor {
  host: {
    root: boolean;
    cgroupMode: string;
    limits: { limit: string; root: { holds: boolean }; rootless: { holds: boolean; how: string } }[];
  };
  checks: { name: string; status: string; value: string }[];
}

function doctor(asUser: boolean): Doctor {
  const home = place!.dir(asUser ? "doctor-user" : "doctor-root");
  const argv = [bin, "doctor", "--json"];
  const r = asUser
    ? spawnSync(NOBODY[0]!, [...NOBODY.slice(1), ...argv], {
        encoding: "utf8",
        env: nobodyEnv(home),
        cwd: home,
        timeout: 600_000,
      })
    : spawnSync(argv[0]!, argv.slice(1), {
        encoding: "utf8",
        env: { ...process.env, HOME: home },
        timeout: 600_000,
      });
  return JSON.parse(r.stdout) as Doctor;
}

test("scar doctor on cgroup v2 as root: v2, root, every cgroup limit holds", { skip: systemdV2 }, () => {
  const d = doctor(false);
  assert.equal(d.host.cgroupMode, "v2");
  assert.equal(d.host.root, true);
  for (const l of d.host.limits.filter((x) => x.limit !== "disk")) {
    assert.equal(l.root.holds, true, l.limit);
    // root's own cgroup (a service's) says nothing of what a user's session delegates
    assert.match(l.rootless.how, /for an ordinary user whose systemd user session delegates it/, l.limit);
  }
  const container = d.checks.find((c) => c.name === "container");
  assert.equal(container?.status, "ok", JSON.stringify(d.checks));
});

test("scar doctor on cgroup v2 as a user with a session: rootless, and the cgroup limits hold", {
  skip: userSkip,
}, () => {
  const d = doctor(true);
  assert.equal(d.host.cgroupMode, "v2");
  assert.equal(d.host.root, false);
  for (const l of d.host.limits) {
    if (l.limit === "disk") assert.equal(l.rootless.holds, false);
    else assert.equal(l.rootless.holds, true, `${l.limit}: ${l.rootless.how}`);
  }
  const privileges = d.checks.find((c) => c.name === "privileges")!;
  assert.match(privileges.value, /rootless: cpu, memory and pids limits hold/);
  const container = d.checks.find((c) => c.name === "container");
  assert.equal(container?.status, "ok", JSON.stringify(d.checks));
  assert.match(container!.value, /rootless: memory and pids limits/);
});
