/**
 * The container tests, run once per OCI runtime (crun.test.ts, runc.test.ts). Real containers, a
 * busybox-static image built in a temp folder, nothing timed.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cgroupDir, ENGINE_LEAF, ownCgroup2 } from "../../../src/engine/runtime/cgroup2.js";
import { cgroupMode, childCgroups } from "../../../src/engine/runtime/cgroups.js";
import { Runner, type RunRequest } from "../../../src/engine/runtime/index.js";
import { type Fixture, hostProcesses, makeFixture, mountsMentioning, treeDigest } from "./fixtures.js";

const sh = (script: string): Pick<RunRequest, "cmd"> => ({ cmd: ["/bin/sh", "-c", script] });

/** What a runner left behind in its state folder, in every place a run can leave something. */
async function leftovers(runner: Runner) {
  const ns = runner.runtime.host.namespace;
  await runner.drain();
  return {
    runs: [...readdirSync(runner.runsDir), ...readdirSync(runner.trashDir)],
    containers: await runner.runtime.list(),
    cgroups: childCgroups(runner.cgroupParent),
    hostMounts: mountsMentioning(runner.stateDir),
    nsMounts: ns ? mountsMentioning(runner.stateDir, ns.pid) : [],
  };
}

const nothingLeft = { runs: [], containers: [], cgroups: [], hostMounts: [], nsMounts: [] };

export function runtimeSuite(runtime: "crun" | "runc"): void {
  describe(`runtime ${runtime}`, () => {
    let f: Fixture;
    let runner: Runner;
    let image: RunRequest["image"];

    before(async () => {
      f = makeFixture();
      image = f.image;
      runner = await Runner.open({ stateDir: join(f.root, "state"), runtime });
      assert.equal(runner.info.runtime, runtime);
    });

    after(async () => {
      await runner?.close();
      f?.cleanup();
    });

    test("exit code, reason and separate stdout/stderr", async () => {
      const ok = await runner.run({ image });
      assert.equal(ok.reason, "ok");
      assert.equal(ok.exitCode, 0);
      assert.equal(ok.stdout.toString(), "image cmd\n");
      assert.equal(ok.rootfs, "overlay");
      const bad = await runner.run({ image, ...sh("echo out; echo err >&2; exit 7") });
      assert.equal(bad.reason, "error");
      assert.equal(bad.exitCode, 7);
      assert.equal(bad.stdout.toString(), "out\n");
      assert.equal(bad.stderr.toString(), "err\n");
    });

    test("discardFolder answers at once; the folder is deleted before drain() returns", async () => {
      const ws = join(f.root, `workspace-${runtime}`); // on the state folder's file system
      mkdirSync(join(ws, "input/sub"), { recursive: true });
      writeFileSync(join(ws, "input/sub/file"), "x");
      await runner.discardFolder(ws);
      await runner.drain();
      assert.equal(existsSync(ws), false);
      assert.deepEqual(readdirSync(runner.trashDir), []);
    });

    test("start errors: missing executable, unknown user, missing layer", async () => {
      const a = await runner.run({ image, cmd: ["/no/such/program"] });
      assert.equal(a.reason, "start-error");
      assert.equal(a.exitCode, null);
      assert.match(a.message ?? "", /no such program|not found|no such file/i);
      const b = await runner.run({ image, user: "nosuchuser" });
      assert.equal(b.reason, "start-error");
      assert.match(b.message ?? "", /nosuchuser/);
      const c = await runner.run({ image: { ...image, layers: [join(f.root, "missing")] } });
      assert.equal(c.reason, "start-error");
    });

    test("own pid, network (loopback only), ipc, uts, mount and cgroup namespaces", async () => {
      const r = await runner.run({
        image,
        hostname: "fn-host",
        ...sh(
          "echo pid=$$; ls /proc | grep -E '^[0-9]+$' | wc -l; ip -o link | cut -d: -f2 | tr -d ' '; hostname; for n in ipc uts mnt net cgroup pid; do readlink /proc/self/ns/$n; done",
        ),
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      const lines = r.stdout.toString().trim().split("\n");
      assert.equal(lines[0], "pid=1");
      assert.ok(Number(lines[1]) <= 4, `the container sees only its own processes, saw ${lines[1]}`);
      assert.equal(lines[2], "lo");
      assert.equal(lines[3], "fn-host");
      const nsIds = lines.slice(4);
      for (const [i, n] of ["ipc", "uts", "mnt", "net", "cgroup", "pid"].entries()) {
        assert.notEqual(nsIds[i], readlinkSync(`/proc/self/ns/${n}`), `${n} namespace is the host's`);
      }
    });

    test("cannot reach a server on the host's 127.0.0.1; network host can", async () => {
      let connections = 0;
      const server = createServer((s) => {
        connections++;
        s.end("hello\n");
      });
      await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
      const port = (server.address() as { port: number }).port;
      try {
        const r = await runner.run({ image, ...sh(`nc 127.0.0.1 ${port} </dev/null; echo rc=$?`) });
        assert.match(r.stdout.toString(), /rc=[1-9]/);
        assert.equal(connections, 0);
        const h = await runner.run({
          image,
          network: "host",
          ...sh(`nc 127.0.0.1 ${port} </dev/null; cmp /etc/resolv.conf /host-resolv.conf && echo same-dns`),
          mounts: [{ source: "/etc/resolv.conf", destination: "/host-resolv.conf", readonly: true }],
        });
        assert.equal(h.stdout.toString(), "hello\nsame-dns\n");
        assert.equal(connections, 1);
      } finally {
        server.close();
      }
    });

    test("cannot write outside its mounts (/proc/sys, /sys, no mount(2)); masked paths, capabilities, no-new-privileges", async () => {
      const r = await runner.run({
        image,
        ...sh(
          "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys-writable; touch /sys/x 2>/dev/null && echo sys-writable; mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo mounted; echo timer_list=$(wc -c < /proc/timer_list); grep -E '^(NoNewPrivs|CapEff|CapBnd)' /proc/self/status | tr -s '\t' ' '",
        ),
      });
      // podman's set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
      const caps = "00000000800405fb";
      assert.equal(r.stdout.toString(), `timer_list=0\nCapEff: ${caps}\nCapBnd: ${caps}\nNoNewPrivs: 1\n`);
    });

    test("overlay: layers stack, whiteouts and opaque dirs apply, writes go to a per-run upper, the image is untouched", async () => {
      const before = [treeDigest(f.base), treeDigest(f.top)];
      const r = await runner.run({
        image,
        ...sh(
          "cat /etc/motd; cat /etc/issue 2>/dev/null || echo no-issue; ls /opq; sh /app/hello.sh; echo changed > /etc/motd; echo new > /newfile; rm /bin/ls; echo written",
        ),
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), "from top\nno-issue\nnew\nhello from the top layer\nwritten\n");
      assert.deepEqual([treeDigest(f.base), treeDigest(f.top)], before);
      const again = await runner.run({
        image,
        ...sh("cat /etc/motd; ls /newfile 2>/dev/null || echo fresh; ls /bin/ls"),
      });
      assert.equal(again.stdout.toString(), "from top\nfresh\n/bin/ls\n");
    });

    test("bind mounts: read-only input and script, writable output", async () => {
      const io = join(f.root, `io-${runtime}`);
      mkdirSync(join(io, "in"), { recursive: true });
      mkdirSync(join(io, "out"), { recursive: true });
      writeFileSync(join(io, "in", "data.txt"), "payload\n");
      writeFileSync(
        join(io, "script.sh"),
        'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/result.txt"\necho ro > /tmp/in/x 2>/dev/null || echo input-read-only\n',
      );
      const r = await runner.run({
        image,
        cmd: ["/bin/sh", "/scar/script.sh"],
        env: { INPUT_FILE_PATH: "/tmp/in/data.txt", TMP_OUTPUT_DIR: "/tmp/out" },
        mounts: [
          { source: join(io, "in"), destination: "/tmp/in", readonly: true },
          { source: join(io, "out"), destination: "/tmp/out" },
          { source: join(io, "script.sh"), destination: "/scar/script.sh", readonly: true },
        ],
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), "input-read-only\n");
      assert.equal(readFileSync(join(io, "out", "result.txt"), "utf8"), "PAYLOAD\n");
      assert.deepEqual(readdirSync(join(io, "in")), ["data.txt"]);
    });

    test("env, working directory and user come from the image config, overridable per run", async () => {
      const img = {
        ...image,
        config: {
          ...image.config,
          User: "app",
          WorkingDir: "/home/app",
          Env: ["PATH=/bin", "GREETING=image", "KEEP=1"],
        },
      };
      const script = 'echo "$(id -u) $(id -g) $(id -G)"; pwd; echo "$GREETING $KEEP $HOME $EXTRA"';
      const r = await runner.run({ image: img, ...sh(script), env: { EXTRA: "req", GREETING: "request" } });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), "1000 1000 1000 2000\n/home/app\nrequest 1 /home/app req\n");
      const o = await runner.run({ image: img, ...sh("id -u; pwd"), user: "0", workdir: "/tmp" });
      assert.equal(o.stdout.toString(), "0\n/tmp\n");
    });

    test("memory limit: the kernel's OOM kill gives reason oom", async () => {
      const r = await runner.run({
        image,
        limits: { memoryBytes: 32 << 20 },
        ...sh(
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo no-swap-accounting; dd if=/dev/zero of=/dev/shm/fill bs=1M count=60 2>/dev/null",
        ),
      });
      assert.equal(r.reason, "oom");
      assert.equal(r.exitCode, 137);
      // no swap on top of the memory limit: memory+swap = memory
      assert.match(r.stdout.toString(), new RegExp(`^${32 << 20}\n(${32 << 20}|no-swap-accounting)\n$`));
    });

    // The rule (runtime README, Reasons): an OOM kill in the container during the run makes it `oom`
    // unless the script exited 0; then it is `ok`, with `oomKilled` for the job's log.
    test("a child OOM-killed while the script goes on: ok when it exits 0 (noted), oom when it does not", async () => {
      const hungryChild = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'";
      const survived = await runner.run({
        image,
        limits: { memoryBytes: 32 << 20 },
        ...sh(`${hungryChild}; echo "child $?"`),
      });
      assert.equal(survived.reason, "ok", `${survived.message} ${survived.stderr}`);
      assert.equal(survived.exitCode, 0);
      assert.equal(survived.stdout.toString(), "child 137\n");
      assert.equal(survived.oomKilled, true);
      const failed = await runner.run({
        image,
        limits: { memoryBytes: 32 << 20 },
        ...sh(`${hungryChild}; exit 3`),
      });
      assert.equal(failed.reason, "oom", `${failed.message} ${failed.stderr}`);
      assert.equal(failed.exitCode, 3);
      const plain = await runner.run({ image, limits: { memoryBytes: 32 << 20 }, ...sh("exit 3") });
      assert.deepEqual([plain.reason, plain.oomKilled], ["error", undefined]);
    });

    test("an exit 137 next to another container's OOM kill is not an oom", async () => {
      const [oom, other] = await Promise.all([
        runner.run({
          image,
          limits: { memoryBytes: 32 << 20 },
          ...sh("sleep 0.2; dd if=/dev/zero of=/dev/shm/f bs=1M count=60"),
        }),
        runner.run({ image, limits: { memoryBytes: 32 << 20 }, ...sh("sleep 1; exit 137") }),
      ]);
      assert.equal(oom.reason, "oom");
      assert.equal(other.reason, "error");
      assert.equal(other.exitCode, 137);
    });

    test("cpu limit is set as a CFS quota", async () => {
      const r = await runner.run({
        image,
        limits: { cpus: 0.5 },
        ...sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max"),
      });
      assert.equal(r.stdout.toString(), "50000\n");
    });

    test("pids limit holds", async () => {
      const r = await runner.run({
        image,
        limits: { pids: 10 },
        ...sh(
          // the forks happen in a child shell (a failed fork ends a shell); the count uses builtins only
          "sh -c 'for i in $(seq 1 30); do sleep 60 & done' 2>/dev/null; set -- /proc/[0-9]*; echo $#; kill -9 -1; exit 0",
        ),
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      const n = Number(r.stdout.toString().trim());
      assert.ok(n > 1 && n <= 10, `at most 10 processes, saw ${n}`);
    });

    test("cgroup v2: the engine in a leaf of a delegated cgroup, the limits in the container's cgroup below it", {
      skip: cgroupMode() !== "v2" && "not a cgroup v2 host (scripts/test-hosts.sh runs it on one)",
    }, async () => {
      const v2 = runner.cgroupV2;
      assert.ok(v2, "the runner placed itself in a delegated cgroup");
      const own = ownCgroup2();
      assert.equal(own, `${v2.placement.delegated}/${ENGINE_LEAF}`);
      assert.ok(runner.cgroupParent.startsWith(`${v2.placement.delegated}/scar-`), runner.cgroupParent);
      const unit = basename(v2.placement.delegated);
      if (readFileSync("/proc/1/comm", "utf8").trim() === "systemd" && /\.(scope|service)$/.test(unit)) {
        // systemd delegated it: the engine writes nowhere else
        const delegate = execFileSync("systemctl", ["show", "--property=Delegate", "--value", unit], {
          encoding: "utf8",
        });
        assert.equal(delegate.trim(), "yes");
      }
      const procs = (p: string) => readFileSync(join(cgroupDir(p), "cgroup.procs"), "utf8").trim();
      // The cgroups above the delegated one stay as systemd set them: the runtimes see the delegated
      // cgroup as /sys/fs/cgroup (mountns.ts), so crun's enabling of every controller in every cgroup
      // above a container's (+hugetlb, which systemd never enables) stops there. (test-hosts.sh's
      // guest also compares system.slice's subtree_control at boot and after all the runs.)
      const above = (p: string): string[] => (p === "/" ? [] : [dirname(p), ...above(dirname(p))]);
      const hugetlbAbove = () =>
        above(v2.placement.delegated).filter((p) =>
          readFileSync(join(cgroupDir(p), "cgroup.subtree_control"), "utf8").includes("hugetlb"),
        );
      let during:
        | { runs: string[]; ctrProcs: string; delegatedProcs: string; parentProcs: string }
        | undefined;
      const r = await runner.run({
        image,
        limits: { memoryBytes: 32 << 20, pids: 10, cpus: 0.5 },
        ...sh(
          "echo up; cat /proc/self/cgroup; cd /sys/fs/cgroup; cat memory.max memory.swap.max pids.max cpu.max; sleep 0.2",
        ),
        onStdout: () => {
          if (during) return;
          const runs = childCgroups(runner.cgroupParent);
          during = {
            runs,
            ctrProcs: runs[0] ? procs(`${runner.cgroupParent}/${runs[0]}/ctr`) : "",
            delegatedProcs: procs(v2.placement.delegated),
            parentProcs: procs(runner.cgroupParent),
          };
        },
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), `up\n0::/\n${32 << 20}\n0\n10\n50000 100000\n`);
      assert.deepEqual(during?.runs, [r.id]);
      assert.notEqual(during?.ctrProcs, "", "the container's processes are in <run id>/ctr");
      assert.equal(during?.delegatedProcs, "", "the delegated cgroup holds no process, only child cgroups");
      assert.equal(during?.parentProcs, "");
      assert.deepEqual(hugetlbAbove(), [], "no controller enabled above the delegated cgroup");
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("timeout: SIGTERM, grace, SIGKILL of every process of the container", async () => {
      const marker = `${runtime === "crun" ? 7001 : 7002}`;
      const r = await runner.run({
        image,
        timeoutMs: 300,
        graceMs: 300,
        // every process ignores SIGTERM (inherited), so only the SIGKILL after the grace ends them
        ...sh(`trap '' TERM; sleep ${marker}1 & sleep ${marker}2 & echo started; sleep ${marker}3`),
      });
      assert.equal(r.reason, "timeout");
      assert.equal(r.exitCode, 137);
      assert.equal(r.stdout.toString(), "started\n");
      assert.deepEqual(hostProcesses(`sleep ${marker}`), []);
      const polite = await runner.run({ image, timeoutMs: 200, ...sh("sleep 1000") });
      assert.equal(polite.reason, "timeout");
      // the image's StopSignal is what asks the container to stop (asked once the trap is set: a
      // signal that reaches the container's init before it has a handler is dropped, and a fixed
      // timeout came before that on a slow host, the VM of scripts/test-hosts.sh)
      const ac = new AbortController();
      const stop = await runner.run({
        image: { ...image, config: { ...image.config, StopSignal: "SIGUSR1" } },
        signal: ac.signal,
        onStdout: () => ac.abort(),
        graceMs: 30_000,
        ...sh("trap 'echo got USR1; exit 0' USR1; trap '' TERM; echo up; while :; do sleep 1; done"),
      });
      assert.equal(stop.message, "aborted");
      assert.equal(stop.stdout.toString(), "up\ngot USR1\n");
    });

    test("abort and close kill a running container", async () => {
      const ac = new AbortController();
      const aborted = await runner.run({
        image,
        signal: ac.signal,
        onStdout: () => ac.abort(),
        ...sh("echo up; sleep 1000"),
      });
      assert.equal(aborted.reason, "error");
      assert.equal(aborted.message, "aborted");

      const other = await Runner.open({ stateDir: join(f.root, "state-close"), runtime });
      let closing: Promise<void> | undefined;
      const r = await other.run({
        image,
        onStdout: () => {
          closing = other.close();
        },
        ...sh("trap '' TERM; echo up; sleep 1000"),
      });
      await closing;
      assert.equal(r.reason, "error");
      assert.equal(r.message, "runner closed");
      await assert.rejects(other.run({ image }), /closed/);
    });

    test("output is streamed in full and captured up to the cap, with a truncation marker", async () => {
      let streamed = 0;
      const r = await runner.run({
        image,
        outputLimitBytes: 1000,
        onStdout: (c) => {
          streamed += c.length;
        },
        ...sh("head -c 200000 /dev/zero | tr '\\0' a; echo; echo small >&2"),
      });
      assert.equal(r.reason, "ok");
      assert.equal(streamed, 200001);
      assert.equal(r.stdoutDropped, 199001);
      const out = r.stdout.toString();
      assert.ok(out.startsWith("a".repeat(1000)));
      assert.match(out, /\[scar: output truncated, 199001 more bytes not kept\]\n$/);
      assert.equal(r.stderr.toString(), "small\n");
      assert.equal(r.stderrDropped, 0);
    });

    test("runs in parallel and in a row leave no mount, cgroup, runtime state or folder behind", async () => {
      const par = await Promise.all([1, 2, 3, 4].map((i) => runner.run({ image, ...sh(`echo ${i}`) })));
      assert.deepEqual(
        par.map((r) => r.stdout.toString()),
        ["1\n", "2\n", "3\n", "4\n"],
      );
      // SCAR_RUNTIME_SOAK=1000 for the "1,000 runs in a row" check
      const soak = Number(process.env.SCAR_RUNTIME_SOAK ?? 10);
      for (let i = 0; i < soak; i++) assert.equal((await runner.run({ image, ...sh("true") })).reason, "ok");
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("a run's overlay exists only in the engine's private mount namespace, and only while the run lasts", async () => {
      const ns = runner.runtime.host.namespace;
      assert.ok(ns, "the runner has a private mount namespace for the overlays");
      let during: { host: string[]; ns: string[] } | undefined;
      const r = await runner.run({
        image,
        ...sh("echo up; sleep 0.3"),
        onStdout: () => {
          during ??= { host: mountsMentioning(runner.runsDir), ns: mountsMentioning(runner.runsDir, ns.pid) };
        },
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.rootfs, "overlay");
      assert.deepEqual(during?.host, [], "nothing is mounted in the host's namespace");
      assert.equal(during?.ns.length, 1, `one overlay in the private namespace: ${during?.ns}`);
      assert.match(during!.ns[0]!, new RegExp(` ${join(runner.runsDir, r.id, "rootfs")} .* overlay `));
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("a killed mount helper is replaced by the next run", async () => {
      const ns = runner.runtime.host.namespace!;
      const old = ns.pid;
      process.kill(old, "SIGKILL");
      while (ns.alive) await new Promise((res) => setTimeout(res, 5));
      const r = await runner.run({ image, ...sh("cat /etc/motd") });
      assert.equal(r.reason, "ok", r.message);
      assert.equal(r.rootfs, "overlay");
      assert.equal(r.stdout.toString(), "from top\n");
      assert.notEqual(ns.pid, old);
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("without a static busybox the system's sh and mount set up the overlay", async () => {
      assert.ok(runner.info.busybox, "busybox-static is installed (scripts/install-deps.sh)");
      const plain = await Runner.open({ stateDir: join(f.root, "state-plain"), runtime, busybox: false });
      try {
        assert.equal(plain.info.busybox, undefined);
        const r = await plain.run({ image, ...sh("cat /etc/motd; echo x > /etc/motd") });
        assert.equal(r.rootfs, "overlay");
        assert.equal(r.stdout.toString(), "from top\n");
        assert.deepEqual(await leftovers(plain), nothingLeft);
      } finally {
        await plain.close();
      }
    });

    test("copy fallback: same view of the image without overlayfs", async () => {
      const copy = await Runner.open({ stateDir: join(f.root, "state-copy"), runtime, rootfs: "copy" });
      try {
        const before = treeDigest(f.base);
        const r = await copy.run({
          image,
          ...sh("cat /etc/motd; cat /etc/issue 2>/dev/null || echo no-issue; ls /opq; echo x > /etc/motd"),
        });
        assert.equal(r.rootfs, "copy");
        assert.equal(r.stdout.toString(), "from top\nno-issue\nnew\n");
        assert.equal(treeDigest(f.base), before);
        assert.deepEqual(await leftovers(copy), nothingLeft);
      } finally {
        await copy.close();
      }
    });

    test("cgroup v2: the cgroups a crashed engine left in its own systemd scope go at the next sweep", async (t) => {
      if (cgroupMode() !== "v2" || runner.cgroupV2?.placement.how !== "scope") {
        t.skip("not an engine in a systemd scope of its own (scripts/test-hosts.sh runs it on one)");
        return;
      }
      const stateDir = join(f.root, "state-scope-crash");
      const marker = runtime === "crun" ? "8101" : "8102";
      const script = join(f.root, `scope-crash-${runtime}.mjs`);
      const index = new URL("../../../src/engine/runtime/index.js", import.meta.url).href;
      writeFileSync(
        script,
        `import { Runner } from ${JSON.stringify(index)};
const image = JSON.parse(process.argv[2]);
const runner = await Runner.open({ stateDir: ${JSON.stringify(stateDir)}, runtime: ${JSON.stringify(runtime)} });
process.stdout.write(runner.cgroupParent + "\\n");
await runner.run({ image, cmd: ["/bin/sh", "-c", "sleep ${marker}1 & echo up; sleep ${marker}2"], onStdout: () => process.stdout.write("running\\n") });
`,
      );
      // started outside this process's delegated cgroup (a scope of systemd-run's, not delegated), so
      // that it asks systemd for a scope of its own, as an engine started from a login shell does
      const child = spawn(
        "systemd-run",
        ["--scope", "--quiet", process.execPath, script, JSON.stringify(image)],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let said = "";
      await new Promise<void>((res, rej) => {
        child.stdout.on("data", (d: Buffer) => {
          said += d.toString();
          if (said.includes("running")) res();
        });
        child.once("exit", (c) => rej(new Error(`crash helper exited early with ${c}`)));
      });
      const staleParent = said.split("\n")[0]!;
      assert.match(staleParent, /\/scar-engine-\d+\.scope\/scar-[0-9a-f]+$/);
      assert.notEqual(dirname(staleParent), runner.cgroupV2!.placement.delegated);
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      assert.ok(hostProcesses(`sleep ${marker}`).length > 0, "the container outlived its engine");
      assert.equal(childCgroups(staleParent).length, 1, "its run's cgroup is in the gone engine's scope");

      const fresh = await Runner.open({ stateDir, runtime, sweep: false });
      try {
        assert.deepEqual(fresh.cgroupV2?.staleParents, [staleParent]);
        const report = await fresh.sweep();
        assert.equal(report.containers.length, 1);
        assert.deepEqual(hostProcesses(`sleep ${marker}`), []);
        assert.equal(existsSync(cgroupDir(staleParent)), false, "the gone engine's runner cgroup is removed");
        assert.deepEqual(await leftovers(fresh), nothingLeft);
      } finally {
        await fresh.close();
      }
    });

    test("a start-up sweep removes what a crashed engine left", async () => {
      const stateDir = join(f.root, "state-crash");
      const marker = runtime === "crun" ? "8001" : "8002";
      const script = join(f.root, `crash-${runtime}.mjs`);
      const index = new URL("../../../src/engine/runtime/index.js", import.meta.url).href;
      writeFileSync(
        script,
        `import { Runner } from ${JSON.stringify(index)};
const image = JSON.parse(process.argv[2]);
const runner = await Runner.open({ stateDir: ${JSON.stringify(stateDir)}, runtime: ${JSON.stringify(runtime)} });
await runner.run({ image, cmd: ["/bin/sh", "-c", "sleep ${marker}1 & echo up; sleep ${marker}2"], onStdout: () => process.stdout.write("running\\n") });
`,
      );
      const child = spawn(process.execPath, [script, JSON.stringify(image)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      await new Promise<void>((res, rej) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("running") && res());
        child.once("exit", (c) => rej(new Error(`crash helper exited early with ${c}`)));
      });
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      // the container outlived its engine
      assert.ok(hostProcesses(`sleep ${marker}`).length > 0);
      assert.ok(readdirSync(join(stateDir, "runs")).length === 1);

      const fresh = await Runner.open({ stateDir, runtime, sweep: false });
      try {
        const report = await fresh.sweep();
        assert.equal(report.containers.length, 1);
        assert.equal(report.dirs.length, 1);
        assert.deepEqual(hostProcesses(`sleep ${marker}`), []);
        assert.deepEqual(await leftovers(fresh), nothingLeft);
        assert.ok(!existsSync(join(fresh.runtime.stateDir, report.containers[0]!)));
      } finally {
        await fresh.close();
      }
    });
  });
}

/** Makes a file executable (helper for scripts run without /bin/sh). */
export function executable(p: string): void {
  chmodSync(p, 0o755);
}
