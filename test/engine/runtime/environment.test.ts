/**
 * Warm execution environments (issue 14) with real crun and runc: one container with scar's agent as
 * its process, invocations run in it one at a time. A busybox-static image built in a temp folder.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import { childCgroups } from "../../../src/engine/runtime/cgroups.js";
import { EnvironmentStartError } from "../../../src/engine/runtime/environment.js";
import {
  type Environment,
  type EnvironmentRequest,
  type ImageInput,
  Runner,
} from "../../../src/engine/runtime/index.js";
import { BUSYBOX, type Fixture, hostProcesses, makeFixture, mountsMentioning } from "./fixtures.js";

/** What a runner left behind in its state folder, in every place an environment can leave something. */
async function leftovers(runner: Runner) {
  const ns = runner.runtime.host.namespace;
  const pool = ` ${join(runner.stateDir, "disks")}/`;
  await runner.drain();
  return {
    runs: [...readdirSync(runner.runsDir), ...readdirSync(runner.trashDir)],
    containers: await runner.runtime.list(),
    cgroups: childCgroups(runner.cgroupParent),
    hostMounts: mountsMentioning(runner.stateDir),
    // the disks' pool (disk.ts) keeps emptied disks mounted, by design: at most the one disk each
    // environment that had one used, checked by the tests that make them
    nsMounts: ns ? mountsMentioning(runner.stateDir, ns.pid).filter((m) => !m.includes(pool)) : [],
  };
}

const nothingLeft = { runs: [], containers: [], cgroups: [], hostMounts: [], nsMounts: [] };

/** The pid in a run folder's pid file, once the runtime wrote it. */
async function pidIn(dir: string): Promise<number> {
  const file = join(dir, "pid");
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 10));
  return Number(readFileSync(file, "utf8").trim());
}

const sh = (script: string, id = "req") => ({ requestId: id, argv: ["/bin/sh", "-c", script] });

for (const runtime of ["crun", "runc"] as const) {
  describe(`environments on ${runtime}`, () => {
    let f: Fixture;
    let runner: Runner;
    let image: ImageInput;
    /** environments a test started, closed after it whatever happened */
    const open: Environment[] = [];
    const start = async (req: Partial<EnvironmentRequest> = {}) => {
      const env = await runner.startEnvironment({ image, ...req });
      open.push(env);
      return env;
    };
    /**
     * the host pid of an environment's agent (its container's init), from the runtime's pid file
     * (which crun may write only after the agent said hello)
     */
    const agentPid = (env: Environment) => pidIn(join(runner.runsDir, env.id));
    /** a marker for host processes, different per runtime */
    const mark = (n: number) => `${runtime === "crun" ? 61 : 62}${n}`;

    before(async () => {
      assert.ok(agentBinaryPath(), "the agent is built (npm run build)");
      f = makeFixture();
      image = f.image;
      runner = await Runner.open({ stateDir: join(f.root, "state"), runtime });
    });

    afterEach(async () => {
      for (const e of open.splice(0)) await e.close();
    });

    after(async () => {
      await runner?.close();
      f?.cleanup();
    });

    test("two invocations run in one container whose process is the agent", async () => {
      const env = await start();
      assert.ok(env.alive);
      assert.ok(env.startMs > 0);
      assert.equal(env.memoryBytes, 0);
      const first = await env.invoke(
        sh("tr '\\0' ' ' </proc/1/cmdline; echo; echo one > /marker; echo $$ > /tmp/pid-of-first", "a"),
      );
      assert.equal(first.reason, "ok", first.stderr.toString());
      assert.equal(first.reusable, true);
      assert.equal(first.stdout.toString(), "/.scar/agent \n");
      assert.ok(first.startedAt <= first.endedAt);
      // the runner's sweep leaves a live environment alone
      const swept = await runner.sweep();
      assert.deepEqual([swept.containers, swept.cgroups, swept.mounts, swept.dirs], [[], [], [], []]);
      const second = await env.invoke(sh("cat /marker; cat /tmp/pid-of-first", "b"));
      assert.equal(second.reason, "ok", second.stderr.toString());
      assert.match(second.stdout.toString(), /^one\n\d+\n$/);
      // and only one at a time
      const long = env.invoke(sh("sleep 0.2", "c"));
      await assert.rejects(env.invoke(sh("true", "d")), /one invocation at a time/);
      assert.equal((await long).reason, "ok");
      // exit codes and signals are the invocation's, the environment stays
      const bad = await env.invoke(sh("echo out; echo err >&2; exit 7", "e"));
      assert.deepEqual([bad.reason, bad.exitCode, bad.reusable], ["error", 7, true]);
      assert.equal(bad.stdout.toString(), "out\n");
      assert.equal(bad.stderr.toString(), "err\n");
      const killed = await env.invoke(sh("kill -9 $$", "f"));
      assert.deepEqual([killed.reason, killed.exitCode, killed.reusable], ["error", 137, true]);
      await env.close();
      assert.equal(env.alive, false);
      await env.close(); // twice is fine
      const late = await env.invoke(sh("true", "g"));
      assert.deepEqual([late.reason, late.reusable], ["error", false]);
    });

    test("environment, argv and working folder: the image's, merged with the invocation's; the image's user", async () => {
      const img: ImageInput = {
        ...image,
        config: {
          ...image.config,
          User: "app",
          WorkingDir: "/home/app",
          Env: ["PATH=/bin", "GREETING=image", "KEEP=1"],
        },
      };
      // on its own disk (its /tmp reached through the helper's namespace)
      const env = await start({ image: img, diskBytes: 16 << 20 });
      const io = await env.prepareInvocation("r-42");
      writeFileSync(join(io.hostInput, "data.txt"), "payload\n");
      const r = await env.invoke({
        requestId: "r-42",
        argv: [
          "sh",
          "-c",
          'id -u; pwd; echo "$GREETING $KEEP $HOME $EXTRA"; printf "[%s]" "$@"; echo; tr a-z A-Z < /tmp/r-42/input/data.txt > /tmp/r-42/output/result.txt',
          "sh",
          "a b",
          "",
          "c",
        ],
        env: { EXTRA: "inv", GREETING: "invocation" },
      });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), "1000\n/home/app\ninvocation 1 /home/app inv\n[a b][][c]\n");
      assert.equal(readFileSync(join(io.hostOutput, "result.txt"), "utf8"), "PAYLOAD\n");
      assert.equal(statSync(io.hostOutput).uid, 1000);
      // the next invocation does not see the first one's variables
      const next = await env.invoke({ requestId: "r-43", argv: ["sh", "-c", 'echo "[$EXTRA] $GREETING"'] });
      assert.equal(next.stdout.toString(), "[] image\n");
      await env.finishInvocation("r-42");
      assert.equal(existsSync(io.hostInput), false);
      const gone = await env.invoke(sh("ls /tmp/r-42 2>&1 || echo gone"));
      assert.match(gone.stdout.toString(), /gone\n$/);
      await assert.rejects(env.prepareInvocation("../etc"), /invalid request id/);
      // without a disk (its /tmp in its run folder), and a workdir of the request's
      const other = await start({ image: img, workdir: "/tmp" });
      const o = await other.prepareInvocation("r-44");
      const w = await other.invoke(
        sh("pwd; id -u > /tmp/r-44/output/who; touch /tmp/mine && echo tmp-writable", "r-44"),
      );
      assert.equal(w.stdout.toString(), "/tmp\ntmp-writable\n");
      assert.equal(readFileSync(join(o.hostOutput, "who"), "utf8"), "1000\n");
      assert.ok(o.hostOutput.startsWith(runner.runsDir), o.hostOutput);
    });

    test("output is streamed in full and captured up to the cap", async () => {
      const env = await start();
      let streamed = 0;
      const r = await env.invoke({
        ...sh("head -c 200000 /dev/zero | tr '\\0' a; echo; echo small >&2"),
        outputLimitBytes: 1000,
        onStdout: (c) => {
          streamed += c.length;
        },
      });
      assert.equal(r.reason, "ok");
      assert.equal(streamed, 200001);
      assert.equal(r.stdoutDropped, 199001);
      assert.ok(r.stdout.toString().startsWith("a".repeat(1000)));
      assert.match(r.stdout.toString(), /\[scar: output truncated, 199001 more bytes not kept\]\n$/);
      assert.equal(r.stderr.toString(), "small\n");
    });

    test("a timeout kills the invocation's whole process tree and makes the environment unusable", async () => {
      const env = await start();
      const r = await env.invoke({
        ...sh(`sleep ${mark(1)} & sleep ${mark(2)} & echo started; sleep ${mark(3)}`),
        timeoutMs: 300,
      });
      assert.equal(r.reason, "timeout");
      assert.equal(r.reusable, false);
      assert.equal(r.stdout.toString(), "started\n");
      for (const n of [1, 2, 3]) assert.deepEqual(hostProcesses(`sleep ${mark(n)}`), []);
    });

    test("an agent that does not report the time limit's kill: the engine kills the container", async () => {
      const env = await start();
      const agent = await agentPid(env);
      // the agent stops answering (SIGSTOP from the host: it cannot catch it): no X will come
      process.kill(agent, "SIGSTOP");
      const r = await env.invoke({ ...sh("echo never"), timeoutMs: 100 });
      assert.equal(r.reason, "timeout");
      assert.equal(r.reusable, false);
      assert.match(r.message ?? "", /did not answer/);
      assert.equal(env.alive, false);
      assert.throws(() => process.kill(agent, 0), /ESRCH/);
    });

    test("an agent killed during an invocation: error, not reusable, its processes gone", async () => {
      const env = await start();
      const agent = await agentPid(env);
      const r = await env.invoke({
        ...sh(`echo up; sleep ${mark(9)}`),
        onStdout: () => process.kill(agent, "SIGKILL"),
      });
      assert.equal(r.reason, "error");
      assert.equal(r.reusable, false);
      assert.match(r.message ?? "", /agent was lost/);
      assert.equal(env.alive, false);
      assert.deepEqual(hostProcesses(`sleep ${mark(9)}`), []);
      await assert.rejects(env.prepareInvocation("next"), /has ended/);
    });

    test("aborting kills the invocation; the environment stays usable", async () => {
      const env = await start();
      const ac = new AbortController();
      const r = await env.invoke({
        ...sh("echo up; sleep 1000"),
        signal: ac.signal,
        onStdout: () => ac.abort(),
      });
      assert.deepEqual([r.reason, r.message, r.reusable], ["error", "aborted", true]);
      assert.equal((await env.invoke(sh("echo again"))).stdout.toString(), "again\n");
    });

    test("the memory limit is the environment's: an OOM kill gives reason oom, not reusable", async () => {
      const env = await start({ limits: { memoryBytes: 32 << 20 } });
      assert.equal(env.memoryBytes, 32 << 20);
      const ok = await env.invoke(sh("echo fine"));
      assert.equal(ok.reason, "ok");
      // a shell variable doubling in size until the kernel kills the shell
      const r = await env.invoke(sh("x=0123456789; while :; do x=$x$x; done"));
      assert.equal(r.reason, "oom", `${r.message} ${r.stderr}`);
      assert.equal(r.reusable, false);
    });

    test("a child OOM-killed while the script exits 0: ok, noted, and the environment is not reused", async () => {
      const env = await start({ limits: { memoryBytes: 32 << 20 } });
      const r = await env.invoke(sh(`awk 'BEGIN { s = "x"; while (1) s = s s }'; echo "child $?"`));
      assert.equal(r.reason, "ok", `${r.message} ${r.stderr}`);
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout.toString(), "child 137\n");
      assert.equal(r.oomKilled, true);
      assert.equal(r.reusable, false, "an environment that had an OOM kill is replaced");
      const env2 = await start({ limits: { memoryBytes: 32 << 20 } });
      const failed = await env2.invoke(sh(`awk 'BEGIN { s = "x"; while (1) s = s s }'; exit 3`));
      assert.deepEqual([failed.reason, failed.exitCode, failed.reusable], ["oom", 3, false]);
    });

    test("a background process of one invocation is dead before the next starts", async () => {
      const env = await start();
      const one = await env.invoke(sh(`(trap '' TERM HUP; sleep ${mark(4)}) & sleep ${mark(5)} & echo left`));
      assert.equal(one.reason, "ok");
      assert.deepEqual(hostProcesses(`sleep ${mark(4)}`), []);
      assert.deepEqual(hostProcesses(`sleep ${mark(5)}`), []);
      const two = await env.invoke(sh("ps -o comm | grep -c sleep"));
      assert.equal(two.stdout.toString(), "0\n");
    });

    test("a cmd on an image with no /bin/sh: one static busybox, run by its absolute path", async () => {
      const layer = join(f.root, `bare-${runtime}`);
      mkdirSync(layer, { recursive: true });
      execFileSync("cp", [BUSYBOX, join(layer, "busybox")]);
      const bare: ImageInput = { config: { Cmd: ["/busybox", "true"] }, layers: [layer] };
      const env = await start({ image: bare });
      const r = await env.invoke({ requestId: "bare", argv: ["/busybox", "echo", "no shell needed"] });
      assert.equal(r.reason, "ok", r.stderr.toString());
      assert.equal(r.stdout.toString(), "no shell needed\n");
      const noSh = await env.invoke({ requestId: "bare2", argv: ["/bin/sh", "-c", "true"] });
      assert.equal(noSh.reason, "start-error");
      assert.match(noSh.message ?? "", /\/bin\/sh/);
      assert.equal(noSh.reusable, true);
      assert.equal((await env.invoke({ requestId: "bare3", argv: ["/busybox", "true"] })).reason, "ok");
    });

    test("a disk limit: /tmp is on the environment's disk; filling it gives reason disk", async () => {
      const env = await start({ diskBytes: 16 << 20 });
      const io = await env.prepareInvocation("d1");
      writeFileSync(join(io.hostInput, "in"), "x");
      const r = await env.invoke(
        sh(
          "cat /tmp/d1/input/in; df -k /tmp | tail -1; head -c 40000000 /dev/zero > /tmp/d1/output/big; echo rc=$?",
          "d1",
        ),
      );
      assert.equal(r.reason, "disk", r.stderr.toString());
      assert.equal(r.reusable, false);
      assert.match(r.stdout.toString(), /^x/);
      assert.match(r.stdout.toString(), /rc=1\n$/);
    });

    test("close() leaves no container, mount, cgroup or folder", async () => {
      const a = await start({ diskBytes: 16 << 20, limits: { memoryBytes: 64 << 20 } });
      const b = await start();
      await a.prepareInvocation("x");
      // one closed while an invocation runs: the invocation fails, reusable false
      const running = b.invoke(sh(`echo up; sleep ${mark(6)}`));
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all([a.close(), b.close()]);
      const r = await running;
      assert.equal(r.reason, "error");
      assert.equal(r.reusable, false);
      assert.equal(r.message, "the environment was closed during the invocation");
      assert.deepEqual(hostProcesses(`sleep ${mark(6)}`), []);
      assert.deepEqual(await leftovers(runner), nothingLeft);
      // a's disk is back in the pool, emptied: the next environment of that size gets it
      const c = await start({ diskBytes: 16 << 20 });
      const listing = await c.invoke(sh("ls -A /tmp; df -k /tmp | tail -1"));
      assert.doesNotMatch(listing.stdout.toString(), /^x$/m);
    });

    test("Runner.close() closes its environments", async () => {
      const other = await Runner.open({ stateDir: join(f.root, "state-close"), runtime });
      const env = await other.startEnvironment({ image, diskBytes: 16 << 20 });
      const busy = await other.startEnvironment({ image });
      assert.equal((await env.invoke(sh(`sleep ${mark(12)} & echo up`))).reason, "ok");
      const running = busy.invoke(sh(`sleep ${mark(13)}`));
      await other.close();
      assert.equal((await running).reusable, false);
      assert.equal(env.alive, false);
      assert.equal(busy.alive, false);
      assert.deepEqual(hostProcesses(`sleep ${mark(12)}`), []);
      assert.deepEqual(hostProcesses(`sleep ${mark(13)}`), []);
      assert.deepEqual(readdirSync(other.runsDir), []);
      assert.deepEqual(childCgroups(other.cgroupParent), []);
      await assert.rejects(other.startEnvironment({ image }), /closed/);
    });

    test("spareBundles: the next environment of an image starts on a bundle prepared ahead; sweep and close leave none", async () => {
      const stateDir = join(f.root, `state-spares`);
      const spares = await Runner.open({ stateDir, runtime, spareBundles: true });
      const ns = spares.runtime.host.namespace;
      try {
        const req = { image, diskBytes: 16 << 20 };
        const a = await spares.startEnvironment(req);
        // prepared after the start, in the background: drain() waits for it
        await spares.drain();
        const ids = spares.spareBundleIds();
        assert.equal(ids.length, 1);
        assert.notEqual(ids[0], a.id);
        assert.ok(existsSync(join(spares.runsDir, ids[0]!, "config.json")) === false);
        if (ns)
          assert.ok(
            mountsMentioning(join(spares.runsDir, ids[0]!, "rootfs"), ns.pid).length > 0,
            "the spare's overlay is mounted ahead",
          );
        // the runner's sweep leaves it alone
        const swept = await spares.sweep();
        assert.deepEqual(swept.dirs, []);
        assert.deepEqual(swept.mounts, []);
        const b = await spares.startEnvironment(req);
        assert.equal(b.id, ids[0], "the second environment took the spare");
        const r = await b.invoke(
          sh("echo hi > /tmp/x && cat /tmp/x && ls /bin/busybox && df -k /tmp | tail -1"),
        );
        assert.equal(r.reason, "ok", r.stderr.toString());
        assert.match(r.stdout.toString(), /^hi\n\/bin\/busybox\n/);
        // on its own 16 MiB disk
        const kib = Number(r.stdout.toString().trim().split("\n").pop()!.split(/\s+/)[1]);
        assert.ok(kib > 8 * 1024 && kib < 24 * 1024, `a 16 MiB /tmp: ${kib} KiB`);
        await Promise.all([a.close(), b.close()]);
        await spares.drain();
        assert.equal(spares.spareBundleIds().length, 1, "one spare per image and disk size");
      } finally {
        await spares.close();
      }
      assert.deepEqual(readdirSync(join(stateDir, "runs")), []);
      assert.deepEqual(mountsMentioning(stateDir), []);
      assert.deepEqual(childCgroups(spares.cgroupParent), []);
    });

    test("on the copy fallback (without a mount helper when the host needs no workaround: the runtime a child of this process, with pipes)", async () => {
      const copy = await Runner.open({ stateDir: join(f.root, "state-copy"), runtime, rootfs: "copy" });
      try {
        assert.equal(copy.info.rootfs, "copy");
        // crun on this hybrid host needs the helper's namespace anyway; runc here does not; on cgroup
        // v2 every runner has one (it binds the delegated cgroup as the runtimes' /sys/fs/cgroup)
        assert.equal(
          copy.runtime.host.namespace === undefined,
          copy.info.workaround === "none" && copy.cgroupV2 === undefined,
        );
        const env = await copy.startEnvironment({ image });
        const io = await env.prepareInvocation("c1");
        writeFileSync(join(io.hostInput, "in"), "copied\n");
        const a = await env.invoke(sh("cat /tmp/c1/input/in; echo x > /left", "c1"));
        assert.equal(a.stdout.toString(), "copied\n");
        const b = await env.invoke(sh("cat /left; tr '\\0' ' ' </proc/1/cmdline"));
        assert.equal(b.stdout.toString(), "x\n/.scar/agent ");
        await env.finishInvocation("c1");
        await env.close();
        assert.deepEqual(await leftovers(copy), nothingLeft);
      } finally {
        await copy.close();
      }
    });

    test("a killed mount helper: an environment on a disk it mounted is no longer alive, one without goes on", async () => {
      const onDisk = await start({ diskBytes: 16 << 20 });
      const plain = await start();
      const ns = runner.runtime.host.namespace!;
      const old = ns.pid;
      process.kill(old, "SIGKILL");
      while (ns.alive) await new Promise((res) => setTimeout(res, 5));
      assert.equal(onDisk.alive, false);
      await assert.rejects(onDisk.prepareInvocation("p1"), /has ended/);
      assert.equal(plain.alive, true);
      const io = await plain.prepareInvocation("p2");
      writeFileSync(join(io.hostInput, "in"), "still\n");
      const r = await plain.invoke(sh("cat /tmp/p2/input/in", "p2"));
      assert.equal(r.stdout.toString(), "still\n");
      await plain.finishInvocation("p2");
      // a new helper for what comes next; both close cleanly
      const next = await start();
      assert.notEqual(ns.pid, old);
      assert.equal((await next.invoke(sh("echo next"))).stdout.toString(), "next\n");
      await Promise.all([onDisk.close(), plain.close(), next.close()]);
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("a start error: unknown user, missing layer", async () => {
      await assert.rejects(runner.startEnvironment({ image, user: "nosuchuser" }), (e: unknown) => {
        assert.ok(e instanceof EnvironmentStartError);
        assert.match(e.message, /nosuchuser/);
        return true;
      });
      await assert.rejects(
        runner.startEnvironment({ image: { ...image, layers: [join(f.root, "missing")] } }),
        EnvironmentStartError,
      );
      assert.deepEqual(await leftovers(runner), nothingLeft);
    });

    test("a runner opened on the state folder of one that was dropped without close() sweeps its environment", async () => {
      const stateDir = join(f.root, "state-abandoned");
      const dropped = await Runner.open({ stateDir, runtime });
      const env = await dropped.startEnvironment({ image, diskBytes: 16 << 20 });
      assert.equal((await env.invoke(sh(`sleep ${mark(7)} & echo up`))).reason, "ok");
      await env.prepareInvocation("left");
      assert.equal((await dropped.runtime.list()).length, 1);
      // the engine "crashed": a new runner on the same folder, as after a restart
      const fresh = await Runner.open({ stateDir, runtime });
      try {
        assert.deepEqual(await leftovers(fresh), nothingLeft);
        assert.deepEqual(readdirSync(join(stateDir, "runs")), []);
        assert.equal(env.alive, false);
      } finally {
        await fresh.close();
        // what only the dropped runner's own namespace held (its overlay and disk mounts) goes with it
        await dropped.close();
      }
    });

    test("after kill -9 of the engine, the start-up sweep removes its environment's container", async () => {
      const stateDir = join(f.root, "state-crash");
      const script = join(f.root, `crash-env-${runtime}.mjs`);
      const index = new URL("../../../src/engine/runtime/index.js", import.meta.url).href;
      writeFileSync(
        script,
        `import { Runner } from ${JSON.stringify(index)};
const image = JSON.parse(process.argv[2]);
const runner = await Runner.open({ stateDir: ${JSON.stringify(stateDir)}, runtime: ${JSON.stringify(runtime)} });
const env = await runner.startEnvironment({ image, diskBytes: 16 << 20, limits: { memoryBytes: 64 << 20 } });
await env.prepareInvocation("crash");
await env.invoke({ requestId: "crash", argv: ["/bin/sh", "-c", "sleep ${mark(10)} & echo up; sleep ${mark(11)}"], onStdout: () => process.stdout.write("running " + env.id + "\\n") });
`,
      );
      const child = spawn(process.execPath, [script, JSON.stringify(image)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const id = await new Promise<string>((res, rej) => {
        child.stdout.on("data", (d: Buffer) => {
          const m = /running (\S+)/.exec(d.toString());
          if (m) res(m[1]!);
        });
        child.once("exit", (c) => rej(new Error(`crash helper exited early with ${c}`)));
      });
      // the agent is stopped, so that it cannot end its container itself when its stdin closes
      process.kill(await pidIn(join(stateDir, "runs", id)), "SIGSTOP");
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      assert.ok(hostProcesses(`sleep ${mark(11)}`).length > 0, "the container outlived its engine");
      assert.deepEqual(readdirSync(join(stateDir, "runs")), [id]);

      const fresh = await Runner.open({ stateDir, runtime, sweep: false });
      try {
        const report = await fresh.sweep();
        assert.deepEqual(report.containers, [id]);
        assert.deepEqual(report.dirs, [id]);
        assert.deepEqual(hostProcesses(`sleep ${mark(10)}`), []);
        assert.deepEqual(hostProcesses(`sleep ${mark(11)}`), []);
        assert.deepEqual(await leftovers(fresh), nothingLeft);
      } finally {
        await fresh.close();
      }
    });
  });
}
