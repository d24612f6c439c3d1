import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runtimeErrors, stopSignal } from "../../../src/engine/runtime/adapters.js";
import { oomKillLogged } from "../../../src/engine/runtime/cgroups.js";
import { imageBytes, isFull } from "../../../src/engine/runtime/disk.js";
import { CappedBuffer, truncationMarker } from "../../../src/engine/runtime/output.js";
import {
  ALLOWED_SYSCALLS,
  BLOCKED_SYSCALLS,
  seccompArchitectures,
} from "../../../src/engine/runtime/seccomp.js";
import {
  buildSpec,
  DEFAULT_PATH,
  processArgs,
  processEnv,
  SpecError,
} from "../../../src/engine/runtime/spec.js";
import { mountsUnder } from "../../../src/engine/runtime/sweep.js";
import { resolveUser, UserError } from "../../../src/engine/runtime/user.js";

const host = { nofileHard: 20000, swapAccounting: true, cgroupsPath: "/scar-x/r1" };
const root = { uid: 0, gid: 0, additionalGids: [], home: "/root" };

// biome-ignore lint/suspicious/noExplicitAny: reading an untyped JSON document
type Any = any;

test("process args follow Docker's entrypoint/cmd rules", () => {
  const cfg = { Entrypoint: ["/ep"], Cmd: ["a", "b"] };
  assert.deepEqual(processArgs(cfg, {}), ["/ep", "a", "b"]);
  assert.deepEqual(processArgs(cfg, { cmd: ["c"] }), ["/ep", "c"]);
  assert.deepEqual(processArgs(cfg, { entrypoint: ["/other"] }), ["/other"]);
  assert.deepEqual(processArgs(cfg, { entrypoint: ["/other"], cmd: ["x"] }), ["/other", "x"]);
  assert.deepEqual(processArgs({ Cmd: ["/bin/sh"] }, {}), ["/bin/sh"]);
  assert.deepEqual(processArgs({ Entrypoint: null, Cmd: null }, {}), []);
});

test("env: image Env, request on top, PATH and HOME filled in", () => {
  assert.deepEqual(processEnv({ Env: ["A=1", "B=x=y"] }, { A: "2", C: "" }, "/home/u"), [
    "A=2",
    "B=x=y",
    "C=",
    `PATH=${DEFAULT_PATH}`,
    "HOME=/home/u",
  ]);
  assert.deepEqual(processEnv({ Env: ["PATH=/bin", "HOME=/h"] }, undefined, "/root"), [
    "PATH=/bin",
    "HOME=/h",
  ]);
  assert.throws(() => processEnv({}, { "A=B": "x" }), SpecError);
});

test("the spec isolates: namespaces, capabilities, no-new-privileges, masked paths, limits", () => {
  const s: Any = buildSpec({
    rootfs: "/r",
    config: { Cmd: ["/bin/true"], WorkingDir: "/w" },
    request: {
      limits: { memoryBytes: 64 << 20, swapBytes: 16 << 20, pids: 32, cpus: 0.5, nofile: 1 << 20 },
      mounts: [{ source: "/in", destination: "/tmp/in", readonly: true }],
    },
    user: root,
    host,
  });
  assert.equal(s.process.terminal, false);
  assert.equal(s.process.noNewPrivileges, true);
  assert.equal(s.process.cwd, "/w");
  assert.deepEqual(
    s.linux.namespaces.map((n: Any) => n.type),
    ["pid", "ipc", "uts", "mount", "cgroup", "network"],
  );
  assert.ok(!s.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
  assert.ok(!s.process.capabilities.bounding.includes("CAP_NET_RAW"));
  assert.ok(s.process.capabilities.effective.includes("CAP_CHOWN"));
  assert.ok(s.linux.maskedPaths.includes("/proc/kcore"));
  assert.ok(s.linux.readonlyPaths.includes("/proc/sys"));
  assert.deepEqual(s.linux.resources.memory, { limit: 64 << 20, swap: 80 << 20 });
  assert.deepEqual(s.linux.resources.pids, { limit: 32 });
  assert.deepEqual(s.linux.resources.cpu, { period: 100000, quota: 50000 });
  assert.deepEqual(s.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 20000, soft: 20000 }]);
  assert.equal(s.linux.cgroupsPath, "/scar-x/r1");
  const bind = s.mounts.find((m: Any) => m.destination === "/tmp/in");
  assert.equal(bind.type, "bind");
  assert.ok(bind.options.includes("ro"));
});

test("network host drops the network namespace; no swap accounting drops swap; non-root gets no effective caps", () => {
  const s: Any = buildSpec({
    rootfs: "/r",
    config: { Cmd: ["/bin/true"] },
    request: { network: "host", limits: { memoryBytes: 1 << 20 } },
    user: { uid: 1000, gid: 1000, additionalGids: [2000], home: "/home/app" },
    host: { ...host, swapAccounting: false },
  });
  assert.ok(!s.linux.namespaces.some((n: Any) => n.type === "network"));
  assert.deepEqual(s.linux.resources.memory, { limit: 1 << 20 });
  assert.deepEqual(s.process.capabilities.effective, []);
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [2000] });
  assert.equal(s.process.cwd, "/");
});

test("nothing to run, relative workdir and relative mounts are spec errors", () => {
  const base = { rootfs: "/r", user: root, host };
  assert.throws(() => buildSpec({ ...base, config: {}, request: {} }), /nothing to run/);
  assert.throws(
    () => buildSpec({ ...base, config: { Cmd: ["x"], WorkingDir: "w" }, request: {} }),
    SpecError,
  );
  assert.throws(
    () =>
      buildSpec({
        ...base,
        config: { Cmd: ["x"] },
        request: { mounts: [{ source: "in", destination: "/in" }] },
      }),
    SpecError,
  );
});

test("users resolve from the topmost layer's /etc/passwd and /etc/group", () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-user-"));
  try {
    const lower = join(dir, "l");
    const upper = join(dir, "u");
    mkdirSync(join(lower, "etc"), { recursive: true });
    mkdirSync(join(upper, "etc"), { recursive: true });
    writeFileSync(join(lower, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nold:x:5:5::/old:/bin/sh\n");
    writeFileSync(
      join(upper, "etc/passwd"),
      "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    );
    writeFileSync(join(lower, "etc/group"), "root:x:0:\napp:x:1001:\nstaff:x:50:app,bob\nother:x:60:bob\n");
    const layers = [lower, upper];
    assert.deepEqual(resolveUser("app", layers), {
      uid: 1000,
      gid: 1001,
      additionalGids: [50],
      home: "/home/app",
    });
    assert.deepEqual(resolveUser("app:staff", layers), {
      uid: 1000,
      gid: 50,
      additionalGids: [],
      home: "/home/app",
    });
    assert.deepEqual(resolveUser("1234:99", layers), { uid: 1234, gid: 99, additionalGids: [], home: "/" });
    assert.deepEqual(resolveUser("", layers), { uid: 0, gid: 0, additionalGids: [], home: "/root" });
    assert.throws(() => resolveUser("old", layers), UserError);
    assert.throws(() => resolveUser("app:nogroup", layers), UserError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("captured output keeps the first bytes and ends with a truncation marker", () => {
  const b = new CappedBuffer(10);
  b.push(Buffer.from("12345"));
  b.push(Buffer.from("67890abc"));
  b.push(Buffer.from("def"));
  assert.equal(b.dropped, 6);
  assert.equal(b.result().toString(), `1234567890\n${truncationMarker(6)}\n`);
  const ok = new CappedBuffer(10);
  ok.push(Buffer.from("abc"));
  assert.equal(ok.result().toString(), "abc");
});

test("runtime JSON logs: error lines are found", () => {
  const log = '{"msg":"warn","level":"warning"}\n{"level":"error","msg":"boom"}\nnot json\n';
  assert.deepEqual(runtimeErrors(log), ["boom", "not json"]);
});

test("mountinfo parsing finds mounts under a folder, deepest first, with escapes", () => {
  const dir = mkdtempSync(join(tmpdir(), "scar-mi-"));
  try {
    const mi = join(dir, "mountinfo");
    writeFileSync(
      mi,
      [
        "27 1 254:0 / / rw - ext4 /dev/vda rw",
        "90 27 0:40 / /s/runs/a/rootfs rw - overlay overlay rw",
        "91 90 0:41 / /s/runs/a/rootfs/x\\040y rw - tmpfs tmpfs rw",
        "92 27 0:42 / /s/runsX rw - tmpfs tmpfs rw",
      ].join("\n"),
    );
    assert.deepEqual(mountsUnder("/s/runs", mi), ["/s/runs/a/rootfs/x y", "/s/runs/a/rootfs"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("stop signals are normalized for crun/runc kill", () => {
  assert.equal(stopSignal(undefined), "TERM");
  assert.equal(stopSignal("SIGINT"), "INT");
  assert.equal(stopSignal("sigquit"), "QUIT");
  assert.equal(stopSignal("9"), "9");
  assert.equal(stopSignal("SIGRTMIN+3"), "RTMIN+3");
  assert.equal(stopSignal("; rm -rf /"), "TERM");
});

test("the kernel log has no OOM kill for a cgroup that never existed", () => {
  assert.notEqual(oomKillLogged("/scar-none/never"), true);
});

test("seccomp: scar's profile by default (EPERM for the rest, no new namespaces), none when unconfined", () => {
  const base = { rootfs: "/r", config: { Cmd: ["/bin/sh"] }, user: root, host };
  const spec: Any = buildSpec({ ...base, request: {} });
  const sc = spec.linux.seccomp;
  assert.equal(sc.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(sc.defaultErrnoRet, 1);
  assert.ok(sc.architectures.length > 0);
  const allowed = new Set(sc.syscalls[0].names);
  for (const s of ["read", "write", "openat", "execve", "pipe2", "wait4", "futex", "socket"])
    assert.ok(allowed.has(s), s);
  for (const s of BLOCKED_SYSCALLS) assert.ok(!allowed.has(s), `${s} is blocked`);
  for (const s of ["unshare", "setns", "mount", "kexec_load", "init_module", "bpf", "keyctl", "userfaultfd"])
    assert.ok(BLOCKED_SYSCALLS.includes(s), s);
  assert.equal(new Set(ALLOWED_SYSCALLS).size, ALLOWED_SYSCALLS.length, "no name twice");
  const clone = sc.syscalls.find((r: Any) => r.names.includes("clone"));
  assert.deepEqual(clone.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
  assert.equal(sc.syscalls.find((r: Any) => r.names.includes("clone3")).errnoRet, 38);
  assert.deepEqual(seccompArchitectures("x64"), ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  assert.deepEqual(seccompArchitectures("arm64"), ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  const open: Any = buildSpec({ ...base, request: { seccomp: "unconfined" } });
  assert.equal(open.linux.seccomp, undefined);
});

test("disk: the image leaves room for ext4's metadata; full means < 2 MiB (or 1%) or no inode left", () => {
  const mib = 1 << 20;
  assert.ok(imageBytes(16 * mib) > 16 * mib + 4 * mib);
  assert.equal(imageBytes(512 * mib) % 4096, 0);
  const disk = { bsize: 4096, blocks: (512 * mib) / 4096 };
  assert.equal(
    isFull({ ...disk, bavail: (700 << 10) / 4096, ffree: 100 }),
    true,
    "700 KiB left after ENOSPC",
  );
  assert.equal(isFull({ ...disk, bavail: (100 * mib) / 4096, ffree: 100 }), false);
  assert.equal(isFull({ ...disk, bavail: (100 * mib) / 4096, ffree: 0 }), true, "no inode left");
});
