/**
 * The doctor's judgement of hosts unlike this one (hybrid cgroups, root, no systemd): fixture text of
 * /proc/self/cgroup, cgroup.controllers, /proc/filesystems, /etc/subuid and the userns sysctls of a
 * cgroup v2 + systemd desktop, a v1 server, a locked-down user.
 */
import assert from "node:assert/strict";
import { readFileSync, statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  type CgroupLayout,
  cgroupMode,
  classifyCgroups,
  parseProcCgroup,
} from "../../../src/engine/runtime/cgroups.js";
import {
  cgroupDelegationCheck,
  hasFilesystem,
  kernelAtLeast,
  limitChecks,
  limitsWhere,
  overlayFlavour,
  overlayFlavourCheck,
  rootlessLimitFound,
  subidRanges,
  subordinateIdsCheck,
  systemdCheck,
  userNamespacesCheck,
  usernsBlocker,
  warmEnvironmentsCheck,
} from "../../../src/engine/runtime/host-checks.js";
import { type HostInfo, readCgroup2Dir, readHostInfo } from "../../../src/engine/runtime/host-info.js";
import { engineRefusal } from "../../../src/engine/runtime/privileges.js";

const V2_CGROUP = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/scar.scope\n";
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
4:memory:/process_api/bacec134
1:cpu:/
0::/
`;
const V1_CGROUP = `12:pids:/system.slice/ssh.service
11:memory:/system.slice/ssh.service
3:cpu,cpuacct:/system.slice/ssh.service
1:name=systemd:/system.slice/ssh.service
`;
const FILESYSTEMS = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\nnodev\toverlay\nnodev\tfuse\n";
const NO_OVERLAY = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\n";

/** A cgroup v2 + systemd desktop, user 1000 in a delegated scope, all the kernel's pieces there. */
function desktop(over: Partial<HostInfo> = {}): HostInfo {
  return {
    uid: 1000,
    user: "ana",
    kernelRelease: "6.8.0-45-generic",
    cgroups: { root: "cgroup2", procSelfCgroup: V2_CGROUP },
    v2Root: {
      path: "/",
      controllers: "cpuset cpu io memory hugetlb pids rdma misc",
      subtreeControl: "cpuset cpu io memory pids",
      writable: false,
      ownerUid: 0,
    },
    v2Own: {
      path: "/user.slice/user-1000.slice/user@1000.service/app.slice/scar.scope",
      controllers: "cpu memory pids",
      subtreeControl: "",
      writable: true,
      ownerUid: 1000,
    },
    pid1: "systemd",
    sysctl: { maxUserNamespaces: 63_000 },
    userNamespacesBuilt: true,
    unshareProbe: { ok: true },
    newuidmap: "/usr/bin/newuidmap",
    newgidmap: "/usr/bin/newgidmap",
    subuid: "ana:100000:65536\n",
    subgid: "ana:100000:65536\n",
    procFilesystems: FILESYSTEMS,
    overlayModule: false,
    fuseOverlayfs: "/usr/bin/fuse-overlayfs",
    devFuse: true,
    mkfsExt4: "/usr/sbin/mkfs.ext4",
    loopControl: true,
    ...over,
  };
}

test("the cgroup mode of each layout, from /proc/self/cgroup and the mounts", () => {
  const cases: [CgroupLayout, string][] = [
    [{ root: "cgroup2", procSelfCgroup: V2_CGROUP }, "v2"],
    [{ root: "other", unifiedControllers: "hugetlb", procSelfCgroup: HYBRID_CGROUP }, "hybrid"],
    // systemd's hybrid: cgroup2 mounted for process tracking only, every controller on v1
    [{ root: "other", unifiedControllers: "", procSelfCgroup: HYBRID_CGROUP }, "v1"],
    [{ root: "other", procSelfCgroup: V1_CGROUP }, "v1"],
    [{ root: "other", procSelfCgroup: "1:name=systemd:/\n" }, "none"],
    [{ root: "missing", procSelfCgroup: "" }, "none"],
  ];
  for (const [layout, mode] of cases) assert.equal(classifyCgroups(layout), mode, JSON.stringify(layout));
  assert.equal(
    parseProcCgroup(V2_CGROUP).get(""),
    "/user.slice/user-1000.slice/user@1000.service/app.slice/scar.scope",
  );
  const v1 = parseProcCgroup(V1_CGROUP);
  assert.equal(v1.get("cpuacct"), "/system.slice/ssh.service", "a line of joined controllers names each");
  assert.equal(v1.get("systemd"), "/system.slice/ssh.service");
  assert.equal(v1.has(""), false, "no v2 line on a v1-only host");
});

test("this host's facts classify as the runtime's cgroupMode() does", () => {
  assert.equal(classifyCgroups(readHostInfo().cgroups), cgroupMode());
});

const V2_MOUNT = cgroupMode() === "v2" ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
const v2Here = statfsType(V2_MOUNT) === 0x63677270;

function statfsType(p: string): number {
  try {
    return statfsSync(p).type;
  } catch {
    return 0;
  }
}

test("a real cgroup2 folder reads as its controllers, subtree_control, owner and writability", {
  skip: !v2Here && "no cgroup2 mount on this host",
}, () => {
  const own = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8")).get("")!;
  const d = readCgroup2Dir(V2_MOUNT, own)!;
  assert.equal(d.path, own);
  assert.equal(d.controllers, readFileSync(join(V2_MOUNT, own, "cgroup.controllers"), "utf8").trim());
  assert.equal(d.subtreeControl, readFileSync(join(V2_MOUNT, own, "cgroup.subtree_control"), "utf8").trim());
  assert.equal(d.ownerUid, statSync(join(V2_MOUNT, own)).uid);
  assert.equal(d.writable, process.getuid?.() === 0, "root may write any cgroup");
  assert.equal(readCgroup2Dir(V2_MOUNT, "/scar-no-such-cgroup"), undefined);
});

test("cgroup v2: a delegated scope is ok, an undelegated session says how to get one", () => {
  assert.equal(cgroupDelegationCheck(desktop()).status, "ok");
  const ssh = desktop({
    v2Own: {
      path: "/user.slice/user-1000.slice/session-3.scope",
      controllers: "cpu memory pids",
      subtreeControl: "",
      writable: false,
      ownerUid: 0,
    },
  });
  const c = cgroupDelegationCheck(ssh);
  assert.equal(c.status, "warn");
  assert.match(
    c.value,
    /not delegated: own cgroup \/user.slice\/user-1000.slice\/session-3.scope \(not writable/,
  );
  assert.match(c.fix!, /systemd-run --user --scope -p Delegate=yes/);
  assert.doesNotMatch(cgroupDelegationCheck({ ...ssh, pid1: "init" }).fix!, /systemd-run/);
  const root = cgroupDelegationCheck(desktop({ uid: 0 }));
  assert.equal(root.status, "ok");
  assert.match(root.value, /transient scope systemd makes for it .*\(controllers: cpuset cpu io memory/);
  assert.match(
    cgroupDelegationCheck(desktop({ uid: 0, pid1: "init" })).value,
    /leaf \(scar-engine\).*in its own cgroup \(/,
  );
  assert.equal(
    cgroupDelegationCheck({ ...desktop(), cgroups: { root: "other", procSelfCgroup: V1_CGROUP } }).status,
    "skip",
  );
});

test("a delegated cgroup.subtree_control without memory: the memory limit would not hold rootless, cpu and pids would", () => {
  const host = desktop({
    v2Own: {
      path: "/user.slice/x.scope",
      controllers: "cpu pids",
      subtreeControl: "",
      writable: true,
      ownerUid: 1000,
    },
  });
  const limits = limitsWhere(host);
  const memory = limits.find((l) => l.limit === "memory")!;
  assert.equal(memory.rootless.holds, false);
  assert.match(memory.rootless.how, /memory is not delegated/);
  assert.match(memory.rootless.fix!, /Delegate=cpu cpuset io memory pids/);
  assert.equal(memory.root.holds, true, "a root engine uses the root cgroup's controllers");
  // delegated: the rootless runtime sets its limits in that cgroup (rootless.ts)
  const cpu = limits.find((l) => l.limit === "cpu")!;
  assert.equal(cpu.rootless.holds, true);
  assert.match(cpu.rootless.how, /cgroup v2 cpu controller, in the cgroup delegated to this user/);
  const checks = limitChecks(limits, false);
  assert.deepEqual(
    checks.map((c) => [c.name, c.status]),
    [
      ["memory limit", "warn"],
      ["pids limit", "ok"],
      ["cpu limit", "ok"],
      ["disk limit", "warn"],
    ],
  );
  assert.match(checks[0]!.fix!, /delegate\.conf/);
});

test("cgroup v2 root without the memory controller: no memory limit even as root, and the boot option that adds it", () => {
  const host = desktop({
    uid: 0,
    v2Root: { path: "/", controllers: "cpuset cpu io pids", subtreeControl: "", writable: true, ownerUid: 0 },
  });
  const memory = limitChecks(limitsWhere(host), true)[0]!;
  assert.equal(memory.status, "warn");
  assert.match(memory.value, /as root: no memory controller: a function may use all of the machine's memory/);
  assert.match(memory.fix!, /cgroup_enable=memory/);
});

test("what a rootless runner found: the limits its delegated cgroup holds, or why none and the fix", () => {
  const found = rootlessLimitFound("memory", {
    held: ["cpu", "memory", "pids"],
    cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/scar-engine-7.scope",
  });
  assert.equal(found.holds, true);
  assert.match(
    found.how,
    /memory controller in \/user.slice\/.*scar-engine-7\.scope, delegated to this user/,
  );
  const partial = rootlessLimitFound("cpu", { held: ["memory", "pids"], cgroup: "/x.scope" });
  assert.equal(partial.holds, false);
  assert.match(partial.how, /^cpu is not delegated to this user: a function may use every core/);
  assert.match(partial.fix!, /Delegate=cpu cpuset io memory pids/);
  const none = rootlessLimitFound("pids", {
    held: [],
    why: "your systemd user session did not make the scope",
  });
  assert.equal(none.holds, false);
  assert.match(none.how, /^your systemd user session did not make the scope: a fork bomb/);
  assert.match(none.fix!, /loginctl enable-linger <user>.*dbus-user-session/);
  // a session's undelegated cgroup under systemd: the engine asks the user's manager (the doctor run
  // as that user says what it got)
  const ssh = limitsWhere(
    desktop({
      v2Own: {
        path: "/user.slice/user-1000.slice/session-3.scope",
        controllers: "cpu memory pids",
        subtreeControl: "",
        writable: false,
        ownerUid: 0,
      },
    }),
  ).find((l) => l.limit === "memory")!;
  assert.equal(ssh.rootless.holds, false);
  assert.match(ssh.rootless.how, /asks the user's systemd user session for a scope/);
  assert.match(ssh.rootless.fix!, /loginctl enable-linger/);
});

test("cgroup v1: limits hold as root, none rootless, and the fix is cgroup v2", () => {
  const host = desktop({ uid: 0, cgroups: { root: "other", procSelfCgroup: V1_CGROUP }, pid1: "systemd" });
  for (const l of limitsWhere(host)) {
    assert.equal(l.rootless.holds, false, l.limit);
    if (l.limit !== "disk") {
      assert.equal(l.root.holds, true, l.limit);
      assert.match(l.rootless.fix!, /systemd\.unified_cgroup_hierarchy=1/);
    }
  }
  const noPids = desktop({
    uid: 0,
    cgroups: { root: "other", procSelfCgroup: "11:memory:/\n1:name=systemd:/\n" },
  });
  assert.equal(limitsWhere(noPids).find((l) => l.limit === "pids")!.root.holds, false);
});

test("/proc/filesystems without overlay: the copy fallback as root; rootless, fuse-overlayfs if it can", () => {
  assert.equal(hasFilesystem(FILESYSTEMS, "overlay"), true);
  assert.equal(hasFilesystem(NO_OVERLAY, "overlay"), false);
  assert.deepEqual(overlayFlavour(desktop({ procFilesystems: NO_OVERLAY })), {
    root: "copy fallback",
    rootless: "fuse-overlayfs",
  });
  const bare = desktop({ uid: 0, procFilesystems: NO_OVERLAY, devFuse: false });
  assert.deepEqual(overlayFlavour(bare), { root: "copy fallback", rootless: "copy fallback" });
  const c = overlayFlavourCheck(bare);
  assert.equal(c.status, "warn");
  assert.match(c.fix!, /CONFIG_OVERLAY_FS/);
  assert.equal(
    limitsWhere(bare).find((l) => l.limit === "disk")!.root.holds,
    false,
    "disks need the overlay",
  );
  // A module not loaded yet still counts: the first mount loads it.
  assert.equal(
    overlayFlavour(desktop({ procFilesystems: NO_OVERLAY, overlayModule: true })).root,
    "kernel overlay",
  );
});

test("overlay in a user namespace needs kernel 5.11; before it, the copy fallback", () => {
  assert.equal(kernelAtLeast("5.11.0", 5, 11), true);
  assert.equal(kernelAtLeast("5.10.209-1", 5, 11), false);
  assert.equal(kernelAtLeast("6.1.0-18-amd64", 5, 11), true);
  assert.equal(kernelAtLeast("4.19.0", 5, 11), false);
  assert.equal(kernelAtLeast("garbage", 5, 11), false);
  assert.equal(overlayFlavour(desktop()).rootless, "overlay in a user namespace");
  const old = desktop({ kernelRelease: "5.10.0-28-amd64" });
  assert.equal(overlayFlavour(old).rootless, "fuse-overlayfs", "the middle choice");
  assert.match(
    overlayFlavourCheck(old).value,
    /rootless: fuse-overlayfs \(kernel 5\.10\.0-28-amd64 < 5\.11: no overlay in a user namespace; fuse-overlayfs installed\): a FUSE daemon per run/,
  );
  assert.equal(overlayFlavourCheck(old).status, "ok");
  assert.match(
    overlayFlavourCheck(desktop()).value,
    /rootless: the kernel's overlay in a user namespace \(kernel 6\.\S+ >= 5\.11: overlay with userxattr\); fuse-overlayfs where the kernel refuses that mount$/,
  );
  const closedFuse = desktop({ kernelRelease: "5.10.0-28-amd64", devFuse: false });
  assert.equal(overlayFlavour(closedFuse).rootless, "copy fallback");
  assert.match(overlayFlavourCheck(closedFuse).fix!, /make \/dev\/fuse readable and writable by users/);
  const oldBare = desktop({ kernelRelease: "5.10.0-28-amd64" });
  delete oldBare.fuseOverlayfs;
  oldBare.devFuse = false;
  const c = overlayFlavourCheck(oldBare);
  assert.equal(overlayFlavour(oldBare).rootless, "copy fallback");
  assert.equal(c.status, "warn");
  assert.match(
    c.value,
    /rootless: copy fallback: each run copies the image \(kernel 5\.10\.0-28-amd64 < 5\.11: no overlay in a user namespace; fuse-overlayfs not installed\)/,
  );
  assert.match(c.fix!, /fuse-overlayfs.*, or a kernel of 5\.11 or later/);
});

test("systemd not PID 1: said as what it costs root, or the ordinary user running doctor", () => {
  const v2 = desktop({ pid1: "init" });
  assert.match(
    systemdCheck({ ...v2, uid: 0 }).value,
    /not PID 1 \(PID 1 is init\): not needed by a root engine; a rootless engine/,
  );
  assert.match(
    systemdCheck(v2).value,
    /not PID 1 \(PID 1 is init\): no systemd delegates a cgroup to you, so your rootless engine's containers get no memory, pids or cpu limits unless/,
  );
});

test("user namespaces: each blocker names its sysctl, kernel option or package", () => {
  const off = (over: Partial<HostInfo>) => usernsBlocker(desktop(over));
  assert.equal(off({}), undefined);
  assert.match(off({ sysctl: { maxUserNamespaces: 0 } })!.fix, /sysctl -w user\.max_user_namespaces=15000/);
  const debian = off({
    sysctl: { maxUserNamespaces: 63_000, unprivilegedUsernsClone: 0 },
    unshareProbe: { ok: false, error: "unshare: unshare failed: Operation not permitted" },
  })!;
  assert.match(debian.reason, /kernel\.unprivileged_userns_clone = 0/);
  assert.match(debian.fix, /sysctl -w kernel\.unprivileged_userns_clone=1/);
  // That sysctl binds only users: root may make them anyway.
  assert.equal(off({ uid: 0, sysctl: { maxUserNamespaces: 63_000, unprivilegedUsernsClone: 0 } }), undefined);
  const ubuntu = off({
    sysctl: { maxUserNamespaces: 63_000, apparmorRestrictUnprivilegedUserns: 1 },
    unshareProbe: { ok: false, error: "unshare: write failed /proc/self/uid_map: Operation not permitted" },
  })!;
  assert.match(ubuntu.fix, /kernel\.apparmor_restrict_unprivileged_userns=0/);
  assert.match(off({ userNamespacesBuilt: false })!.fix, /CONFIG_USER_NS=y/);
  assert.match(off({ unshareProbe: { ok: false, error: "unshare is not installed" } })!.fix, /util-linux/);
  assert.match(
    off({ unshareProbe: { ok: false, error: "unshare: boom" } })!.reason,
    /'unshare -Ur true' fails: unshare: boom/,
  );
  const c = userNamespacesCheck(desktop({ sysctl: { maxUserNamespaces: 0 } }));
  assert.equal(c.status, "warn");
  assert.match(c.value, /not available to ana: user\.max_user_namespaces = 0/);
});

test("/etc/subuid ranges by name or uid; a user without any is told the usermod line", () => {
  const text = "# comment\nana:100000:65536\n1001:165536:65536\nbob:231072:0\nbroken\nana:300000:10\n";
  assert.deepEqual(subidRanges(text, "ana", 1000), [
    { start: 100000, count: 65536 },
    { start: 300000, count: 10 },
  ]);
  assert.deepEqual(subidRanges(text, "eve", 1001), [{ start: 165536, count: 65536 }]);
  assert.deepEqual(subidRanges(text, "bob", 1002), [], "an empty range is none");
  const ok = subordinateIdsCheck(desktop());
  assert.equal(ok.status, "ok");
  assert.match(ok.value, /an image's files have the owners its layers give/);
  const none = desktop({ subuid: "", subgid: "" });
  delete none.newuidmap;
  const c = subordinateIdsCheck(none);
  assert.equal(c.status, "warn");
  assert.match(
    c.value,
    /newuidmap\/newgidmap not installed; no \/etc\/subuid range for ana; no \/etc\/subgid range for ana/,
  );
  assert.match(
    c.value,
    /every file of an image is yours \(root in the container, whatever owner its layers give\)/,
  );
  assert.match(c.fix!, /usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ana/);
  assert.equal(subordinateIdsCheck(desktop({ uid: 0, user: "root" })).status, "skip");
});

test("an ordinary user may start the engine (rootless) unless user namespaces are off: then the sysctl", () => {
  assert.equal(engineRefusal(desktop({ uid: 0 })), undefined);
  assert.equal(engineRefusal(desktop()), undefined, "user namespaces work: rootless");
  const locked = engineRefusal(
    desktop({
      sysctl: { maxUserNamespaces: 63_000, unprivilegedUsernsClone: 0 },
      unshareProbe: { ok: false, error: "unshare: unshare failed: Operation not permitted" },
    }),
  )!;
  assert.match(
    locked.message,
    /^the local engine runs rootless containers for an ordinary user \(you are uid 1000\), and this host gives you no user namespace: kernel\.unprivileged_userns_clone = 0/,
  );
  assert.match(
    locked.hint,
    /^ask an administrator to allow user namespaces: sysctl -w kernel\.unprivileged_userns_clone=1.*; or run scar as root$/,
  );
  assert.doesNotMatch(locked.hint, /sudo/, "a rootless engine never asks for sudo");
  const noUnshare = engineRefusal(
    desktop({ unshareProbe: { ok: false, error: "unshare is not installed" } }),
  )!;
  assert.match(noUnshare.message, /unshare is not installed/);
  assert.match(noUnshare.hint, /util-linux/);
});

test("warm environments are available with a built agent, and off with what to install without one", () => {
  const on = warmEnvironmentsCheck("/opt/scar/dist/agent/scar-agent", "apt-get install gcc libc6-dev");
  assert.equal(on.status, "ok");
  assert.match(on.value, /^available \(scar's agent: \/opt\/scar\/dist\/agent\/scar-agent\)$/);
  assert.equal(on.fix, undefined);
  const off = warmEnvironmentsCheck(undefined, "apt-get install gcc libc6-dev");
  assert.equal(off.status, "warn");
  assert.match(off.value, /^off: .*every invocation starts a container of its own/);
  assert.equal(off.fix, "apt-get install gcc libc6-dev");
});

test("doctor as root on cgroup v2 with systemd: a user's limits are their session's, not root's cgroup's", () => {
  // root in a service whose cgroup has no cpu (the VM's scar-hosts.service): says nothing of a user's
  const root = desktop({
    uid: 0,
    user: "root",
    v2Own: {
      path: "/system.slice/scar-hosts.service",
      controllers: "memory pids",
      subtreeControl: "",
      writable: true,
      ownerUid: 0,
    },
  });
  const cpu = limitsWhere(root).find((l) => l.limit === "cpu")!;
  assert.equal(cpu.rootless.holds, true);
  assert.match(cpu.rootless.how, /for an ordinary user whose systemd user session delegates it/);
  assert.match(userNamespacesCheck(root).value, /an ordinary user's engine runs its containers in one/);
  const user = userNamespacesCheck(desktop());
  assert.match(user.value, /unshare -Ur works for ana, max 63000\): your engine runs rootless/);
  assert.doesNotMatch(user.value, /root engine/);
});
