/**
 * Rootless containers (rootless.ts). First the pure parts (id mappings, the spec made rootless, the
 * user a container may run as), then the real thing: an ordinary user (nobody, dropped to with
 * setpriv) unpacks a two-layer image and runs it with crun and runc (rootless-child.ts): overlay root
 * with the upper layer's whiteout and opaque folder, output files owned by that user, the time limit
 * killing every process, a killed helper replaced, the copy fallback, nothing left behind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  chooseMapping,
  containerSpec,
  mapText,
  newidmapArgs,
  rootlessNote,
  rootlessSpec,
  rootlessUser,
} from "../../../src/engine/runtime/rootless.js";
import { buildSpec } from "../../../src/engine/runtime/spec.js";
import {
  EXPECT,
  layeredArchive,
  NOBODY,
  NOBODY_UID,
  nobodyEnv,
  nobodyRoot,
  rootlessSkip,
} from "../rootless-harness.js";

const facts = { uid: 1000, gid: 1000, user: "ana", subuid: "", subgid: "" };

test("one uid/gid mapped without newuidmap or subordinate ranges; ranges follow the user's own id", () => {
  const single = chooseMapping({ ...facts, subuid: "ana:100000:65536\n", subgid: "ana:100000:65536\n" });
  assert.equal(single.mapping, "single", "no newuidmap: only the user's own id");
  assert.equal(mapText(single.uidMap), "0 1000 1\n");
  assert.equal(mapText(single.gidMap), "0 1000 1\n");
  const noRange = chooseMapping({
    ...facts,
    newuidmap: "/usr/bin/newuidmap",
    newgidmap: "/usr/bin/newgidmap",
  });
  assert.equal(noRange.mapping, "single", "no /etc/subuid range");
  const ranges = chooseMapping({
    ...facts,
    newuidmap: "/usr/bin/newuidmap",
    newgidmap: "/usr/bin/newgidmap",
    subuid: "bob:200000:65536\nana:100000:65536\n1000:300000:1000\n",
    subgid: "ana:100000:65536\n",
  });
  assert.equal(ranges.mapping, "ranges");
  assert.equal(mapText(ranges.uidMap), "0 1000 1\n1 100000 65536\n65537 300000 1000\n");
  assert.equal(mapText(ranges.gidMap), "0 1000 1\n1 100000 65536\n");
  assert.deepEqual(newidmapArgs(4242, ranges.gidMap), ["4242", "0", "1000", "1", "1", "100000", "65536"]);
  assert.match(rootlessNote(ranges), /66536 subordinate uids/);
  assert.match(rootlessNote(single), /no memory, pids or cpu limits.*no disk limit.*the time limit holds/);
  assert.match(
    rootlessNote(single, { held: ["cpu", "memory", "pids"], cgroup: "/u/scar-engine-7.scope" }),
    /^rootless: cpu, memory and pids limits hold \(cgroup \/u\/scar-engine-7\.scope, delegated to this user\); no disk limit/,
  );
  assert.match(
    rootlessNote(single, {
      held: ["memory", "pids"],
      cgroup: "/u/s.scope",
      why: "not delegated to this user",
    }),
    /^rootless: memory and pids limits hold \(cgroup \/u\/s\.scope, delegated to this user\), no cpu limit \(not delegated to this user\); no disk limit/,
  );
  assert.match(
    rootlessNote(single, { held: [], why: "no user bus" }),
    /^rootless: no memory, pids or cpu limits \(no user bus\) and no disk limit/,
  );
});

test("a non-root image user runs as the namespace's root when only one id is mapped", () => {
  const app = { uid: 1000, gid: 1000, additionalGids: [2000], home: "/home/app" };
  const single = chooseMapping(facts);
  assert.deepEqual(rootlessUser(app, single), { uid: 0, gid: 0, additionalGids: [], home: "/home/app" });
  const ranges = chooseMapping({
    ...facts,
    newuidmap: "/x",
    newgidmap: "/y",
    subuid: "ana:100000:1500\n",
    subgid: "ana:100000:1500\n",
  });
  assert.deepEqual(rootlessUser(app, ranges), { ...app, additionalGids: [] }, "gid 2000 is not mapped");
});

test("the rootless spec: no cgroup or device rules, devpts without an unmapped gid, host network binds /sys", () => {
  const input = (network: "none" | "host") => ({
    rootfs: "/r",
    config: { Cmd: ["/bin/true"] },
    request: { limits: { memoryBytes: 1 << 26, pids: 10, cpus: 1 }, network },
    user: { uid: 0, gid: 0, additionalGids: [] },
    host: { nofileHard: 1024, swapAccounting: true, cgroupsPath: "/scar-x/r1" },
  });
  const single = chooseMapping(facts);
  const s = rootlessSpec(buildSpec(input("none")), single) as {
    linux: Record<string, unknown>;
    mounts: { type: string; destination: string; source: string; options: string[] }[];
  };
  assert.equal(s.linux.cgroupsPath, undefined);
  assert.equal(s.linux.resources, undefined);
  assert.ok((s.linux.namespaces as { type: string }[]).some((n) => n.type === "network"));
  assert.ok(!(s.linux.namespaces as { type: string }[]).some((n) => n.type === "user"), "inherited");
  const devpts = s.mounts.find((m) => m.type === "devpts")!;
  assert.ok(!devpts.options.includes("gid=5"));
  assert.equal(s.mounts.find((m) => m.destination === "/sys")!.type, "sysfs", "own network: sysfs");
  const host = rootlessSpec(buildSpec(input("host")), single) as typeof s;
  const sys = host.mounts.find((m) => m.destination === "/sys")!;
  assert.deepEqual([sys.type, sys.source], ["bind", "/sys"]);
  assert.ok(sys.options.includes("ro"));
  const ranges = chooseMapping({
    ...facts,
    newuidmap: "/x",
    newgidmap: "/y",
    subuid: "ana:1:9\n",
    subgid: "ana:1:9\n",
  });
  // with a delegated cgroup (the runtimes' /sys/fs/cgroup): the cgroup and its limits, no device rules
  const delegated = containerSpec(
    {
      ...input("none"),
      host: { ...input("none").host, cgroupsPath: "/u/e.scope/scar-x/r1/ctr", cgroupRoot: "/u/e.scope" },
    },
    single,
  ) as typeof s;
  assert.equal(delegated.linux.cgroupsPath, "/scar-x/r1/ctr");
  const res = delegated.linux.resources as Record<string, unknown>;
  assert.deepEqual(res.memory, { limit: 1 << 26, swap: 1 << 26 });
  assert.deepEqual(res.pids, { limit: 10 });
  assert.equal(res.devices, undefined);
  assert.throws(
    () => containerSpec({ ...input("none"), host: { ...input("none").host, cgroupRoot: "/other" } }, single),
    /cgroup \/scar-x\/r1 is not under \/other/,
  );
  const withGid5 = rootlessSpec(buildSpec(input("none")), ranges) as typeof s;
  assert.ok(withGid5.mounts.find((m) => m.type === "devpts")!.options.includes("gid=5"));
});

const skip = rootlessSkip();
const place = skip ? undefined : nobodyRoot("scar-rootless-rt-");
after(() => place?.cleanup());

test("as nobody: an image unpacked rootless runs with crun and runc, overlay, owners, timeout", {
  skip,
}, async () => {
  const work = place!.dir("work");
  const archive = join(place!.root, "layers.tar");
  writeFileSync(archive, await layeredArchive());
  const child = new URL("./rootless-child.js", import.meta.url).pathname;
  const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, child, work, archive], {
    encoding: "utf8",
    env: nobodyEnv(work),
    cwd: work,
    timeout: 900_000,
  });
  assert.equal(r.status, 0, `the rootless child failed: ${r.stderr}${r.stdout}`);
  const report = JSON.parse(r.stdout);
  assert.equal(report.overlay, true, "layers unpacked with user.overlay.* markers");
  assert.equal(report.topLayerSuidMode, 0o755, "the setuid bit is dropped by an ordinary user's unpack");
  for (const rt of ["crun", "runc"]) {
    const x = report.runtimes[rt];
    const { why, ...info } = x.info;
    assert.deepEqual(
      info,
      {
        runtime: rt,
        rootfs: "overlay",
        userxattr: true,
        disk: "unavailable: rootless (loop disks need root)",
        mapping: EXPECT.mapping,
        limits: EXPECT.limits ? ["cpu", "memory", "pids"] : [],
      },
      `${rt}: ${why}`,
    );
    assert.equal(x.hog.reason, "ok", `${rt}: ${JSON.stringify(x.hog)}`);
    if (EXPECT.limits)
      // the user's delegated cgroup: the container's own cgroup carries the limits
      assert.equal(x.hog.stdout, `${32 << 20}\n16\n50000 100000\n`, rt);
    else assert.doesNotMatch(x.hog.stdout, new RegExp(`${32 << 20}`), `${rt}: no limit holds rootless here`);
    assert.equal(x.seen.reason, "ok", `${rt}: ${JSON.stringify(x.seen)}`);
    assert.equal(x.seen.rootfs, "overlay");
    assert.equal(
      x.seen.stdout,
      "0\nno-issue\nnew\nfrom top\ninput data\n",
      `${rt}: root of its namespace; /etc/issue whited out, /opq opaque, the top layer's motd`,
    );
    assert.deepEqual(x.output, { text: "made\n", uid: NOBODY_UID }, `${rt}: the output is the user's`);
    assert.equal(x.timeout.reason, "timeout", `${rt}: ${JSON.stringify(x.timeout)}`);
    assert.equal(x.timeout.stdout, "started\n");
    assert.deepEqual(x.leftAfterTimeout, [], `${rt}: every process of the container was killed`);
    assert.deepEqual(x.runsLeft, [], `${rt}: run folders deleted`);
    assert.equal(x.afterHelperKill.reason, "ok", `${rt}: ${JSON.stringify(x.afterHelperKill)}`);
    assert.equal(x.afterHelperKill.stdout, "0\nfrom top\n");
    assert.equal(x.afterHelperKill.newHelper, true, `${rt}: a new helper, in a new user namespace`);
  }
  assert.equal(report.copy.reason, "ok", JSON.stringify(report.copy));
  assert.equal(report.copy.rootfs, "copy");
  assert.equal(report.copy.stdout, "0\nno-issue\nnew\nfrom top\n", "user.overlay.opaque read by the copy");
  assert.deepEqual(report.copy.runsLeft, []);
});
