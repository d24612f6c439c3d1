/**
 * Warm execution environments through the engine (issue 14), once per OCI runtime (warm-crun.test.ts,
 * warm-runc.test.ts): real containers over a busybox image, jobs through the scheduler and the
 * supervisor, nothing mocked and nothing timed. Each function runs one script whose event says what
 * to do; the script first tells whether its container ran an invocation before (the file /seen in
 * the container's own root file system, which only a reused container can have).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Engine } from "../../../src/engine/engine.js";
import { cgroupMode, cgroupParent, childCgroups } from "../../../src/engine/runtime/cgroups.js";
import { parseFdl } from "../../../src/fdl/index.js";
import type { FunctionSpec } from "../../../src/fdl/spec.js";
import { BUSYBOX, type Fixture, makeFixture, hostProcesses as processesOnHost } from "../runtime/fixtures.js";

const IMAGE = "localhost/scar-test/warm:1";

/** sleep lengths no other process on this machine has: their command lines mark this run's processes */
const base = 900_000 + Math.floor(Math.random() * 90_000) * 10;
const MARK = { background: base + 1, child: base + 2, foreground: base + 3 };

/**
 * The script every function runs: "warm <request id of the previous invocation>" or "cold", then
 * what its event asks for.
 */
const SCRIPT = `mode=$(cat "$INPUT_FILE_PATH")
if [ -e /seen ]; then echo "warm $(cat /seen)"; else echo cold; fi
echo "$AWS_LAMBDA_REQUEST_ID" > /seen
case "$mode" in
  *background*) sleep ${MARK.background} & echo "left sleep $!" ;;
  *hang*) sleep ${MARK.child} & sleep ${MARK.foreground} ;;
  *hungry*) awk 'BEGIN { s = "x"; while (1) s = s s }' ;;
  *child-oom*) awk 'BEGIN { s = "x"; while (1) s = s s }'; echo "child $?" ;;
  *self-oom*) x=0123456789; while :; do x=$x$x; done ;;
  *processes*) echo "$(ps -o args | grep -c "^sleep ${MARK.background}")" ;;
  *agent*) tr '\\0' ' ' < /proc/1/cmdline; echo ;;
esac
`;

/** Host processes whose command line contains `marker`, not zombies (dead, waiting to be reaped). */
export const hostProcesses = (marker: string): number[] => processesOnHost(marker, { skipZombies: true });

/** What an engine's runner left in its state folder: run folders, containers, cgroups. */
export function runnerLeftovers(stateDir: string, runtime: string) {
  const tag = createHash("sha256").update(stateDir).digest("hex").slice(0, 10);
  return {
    runs: readdirSync(join(stateDir, "runs")),
    containers: readdirSync(join(stateDir, runtime)).filter((n) => !n.startsWith(".")),
    cgroups: childCgroups(cgroupParent(cgroupMode(), tag)),
  };
}

export function warmSuite(runtime: "crun" | "runc"): void {
  describe(`warm environments on ${runtime}`, () => {
    const root = mkdtempSync(join(tmpdir(), `scar-warm-${runtime}-`));
    const dataDir = join(root, "data");
    let fixture: Fixture;
    let engine: Engine;

    let umask: number;

    before(async () => {
      fixture = makeFixture();
      // as `scar serve` runs: the files the engine makes are its own (0600), the image's user must be given them
      umask = process.umask(0o077);
      engine = await Engine.start({ dataDir, s3Port: 0, concurrency: 2, runtime });
      await engine.images.import(fixture.base, { format: "rootfs", tag: IMAGE, changes: ["ENV PATH=/bin"] });
    });
    after(async () => {
      await engine.close();
      fixture.cleanup();
      rmSync(root, { recursive: true, force: true });
      process.umask(umask);
    });

    function spec(name: string, lambda = "", script: string | null = SCRIPT, image = IMAGE): FunctionSpec {
      const dir = mkdtempSync(join(root, "fdl-"));
      if (script !== null) writeFileSync(join(dir, "script.sh"), script);
      const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n${script !== null ? "      init_script: script.sh\n" : ""}      container:\n        image: ${image}\n${lambda}`;
      const file = join(dir, "fn.yaml");
      writeFileSync(file, yaml);
      return parseFdl(file, yaml).functions[0]!;
    }

    async function call(name: string, mode: string) {
      const { job, result } = await engine.invoke(name, { mode }, { sync: true });
      return { job, out: result?.output.toString() ?? "", log: result?.log.join("\n") ?? "" };
    }

    test("two invocations of a function run in the same container, whose first process is the agent", async () => {
      await engine.deploy(spec("same"));
      const first = await call("same", "agent");
      assert.equal(first.job.status, "succeeded", first.log);
      assert.equal(first.out, "cold\n/.scar/agent \n");
      const second = await call("same", "agent");
      assert.equal(second.out, `warm ${first.job.id}\n/.scar/agent \n`);
      assert.deepEqual(engine.environmentStats().same, { idle: 1, busy: 0, started: 1, reused: 1 });
    });

    test("a deploy prepares its first environment's bundle; the first invocation starts on it", async () => {
      // a disk size no other function here has: the runner keeps one bundle per image and disk size
      const before = new Set(engine.runner.spareBundleIds());
      await engine.deploy(spec("fresh", "      ephemeral_storage: 600\n"));
      await engine.runner.drain();
      const prepared = engine.runner.spareBundleIds().filter((id) => !before.has(id));
      assert.equal(prepared.length, 1, "one bundle prepared at deploy, with no environment started");
      assert.equal(engine.environmentStats().fresh, undefined);
      const first = await call("fresh", "nothing");
      assert.equal(first.job.status, "succeeded", first.log);
      assert.equal(first.out, "cold\n");
      assert.equal(first.job.environment?.start, "cold");
      assert.equal(first.job.environment?.id, prepared[0], "its environment took over that bundle");
    });

    test("a background process of one invocation does not survive into the next", async () => {
      await engine.deploy(spec("background"));
      const first = await call("background", "background");
      assert.equal(first.job.status, "succeeded", first.log);
      assert.match(first.out, /^cold\nleft sleep \d+\n$/);
      assert.deepEqual(hostProcesses(`sleep ${MARK.background}`), [], "killed when the invocation ended");
      const next = await call("background", "processes");
      // the same container, and no such process in it
      assert.equal(next.out, `warm ${first.job.id}\n0\n`);
    });

    test("a timed-out invocation's children are dead and its environment is replaced", async () => {
      await engine.deploy(spec("slow", "      timeout: 2\n      timeout_threshold: 1\n"));
      const warmUp = await call("slow", "nothing");
      assert.equal(warmUp.out, "cold\n");
      const hung = await call("slow", "hang");
      assert.equal(hung.job.reason, "timeout", hung.log);
      assert.equal(hung.out, `warm ${warmUp.job.id}\n`, "it ran in the warm environment");
      assert.deepEqual(hostProcesses(`sleep ${MARK.child}`), [], "its background child is dead");
      assert.deepEqual(hostProcesses(`sleep ${MARK.foreground}`), [], "its foreground child is dead");
      const next = await call("slow", "nothing");
      assert.equal(next.out, "cold\n", "the next invocation runs in a fresh environment");
      assert.deepEqual(engine.environmentStats().slow, { idle: 1, busy: 0, started: 2, reused: 1 });
    });

    test("an OOM-killed invocation fails with reason oom; the next one runs in a fresh environment", async () => {
      await engine.deploy(spec("hungry"));
      const warmUp = await call("hungry", "nothing");
      assert.equal(warmUp.out, "cold\n");
      const hungry = await call("hungry", "hungry");
      assert.equal(hungry.job.reason, "oom", hungry.log);
      const next = await call("hungry", "nothing");
      assert.equal(next.out, "cold\n");
      assert.equal(next.job.status, "succeeded");
    });

    // The rule (runtime README, Reasons): an OOM kill during the invocation fails it with `oom` unless
    // the script exited 0; then it succeeds, its log says so, and an environment it ran in is replaced.
    for (const isolation of ["environment", "invocation"] as const) {
      test(`isolation ${isolation}: a child OOM-killed while the script exits 0 succeeds with a warning; a script OOM-killed is oom`, async () => {
        const name = `oom-${isolation}`;
        await engine.deploy(spec(name, `        isolation: ${isolation}\n`));
        const warmUp = await call(name, "nothing");
        assert.equal(warmUp.job.status, "succeeded", warmUp.log);
        const child = await call(name, "child-oom");
        assert.equal(child.job.status, "succeeded", child.log);
        assert.equal(child.job.reason, "ok");
        // (the shell tells of the kill on stderr too: "Killed", somewhere in the output)
        assert.match(child.out, /^(warm \S+|cold)\n(Killed\n)?child 137\n/);
        const warning =
          /WARNING - A process of this function was killed for lack of memory \(limit 128 MiB\); the script still exited 0/;
        assert.match(child.log, warning);
        assert.match(engine.jobs.log(child.job.id) ?? "", warning, "the job's stored log has it");
        if (isolation === "environment") {
          assert.ok(child.out.startsWith(`warm ${warmUp.job.id}\n`), "it ran in the warm environment");
          assert.equal((await call(name, "nothing")).out, "cold\n", "that environment was replaced");
        }
        const self = await call(name, "self-oom");
        assert.equal(self.job.reason, "oom", self.log);
        assert.equal(self.job.status, "failed");
        assert.doesNotMatch(self.log, warning);
      });
    }

    test("an update during an invocation lets it finish in the old environment; the next sees the new script", async () => {
      // The first invocation waits, inside its container, for this server's /go to answer 200.
      let open = false;
      let started!: () => void;
      const running = new Promise<void>((r) => {
        started = r;
      });
      const server: Server = createServer((req, res) => {
        if (req.url === "/started") started();
        res.statusCode = req.url === "/go" && !open ? 404 : 200;
        res.end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const v1 = `wget -q -O /dev/null ${url}/started
until wget -q -O /dev/null ${url}/go; do sleep 0.1; done
${SCRIPT}echo v1
`;
        await engine.deploy({ ...spec("updated", "", v1), network: "host" });
        const first = call("updated", "nothing");
        await running;
        await engine.deploy({ ...spec("updated", "", `${SCRIPT}echo v2\n`), network: "host" });
        const job = engine.jobs.list("updated").jobs[0]!;
        assert.equal(
          engine.jobs.get(job.id)!.status,
          "running",
          "the update did not stop the running invocation",
        );
        open = true;
        const done = await first;
        assert.equal(done.job.status, "succeeded", done.log);
        assert.equal(done.out, "cold\nv1\n", "it finished with the script it started with");
        assert.deepEqual(engine.environmentStats().updated, { idle: 0, busy: 0, started: 1, reused: 0 });
        const next = await call("updated", "nothing");
        assert.equal(next.out, "cold\nv2\n", "the new script, in a new environment");
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });

    test("the agent runs a cmd-only function on an image without /bin/sh, warm the second time", async () => {
      // one static binary and nothing else: no shell, no libc, no /etc
      const layer = join(root, "no-shell");
      mkdirSync(join(layer, "bin"), { recursive: true });
      copyFileSync(BUSYBOX, join(layer, "bin", "busybox"));
      const image = "localhost/scar-test/no-shell:1";
      await engine.images.import(layer, {
        format: "rootfs",
        tag: image,
        changes: ['CMD ["/bin/busybox", "echo", "no shell here"]'],
      });
      await engine.deploy(spec("no-shell", "", null, image));
      for (let i = 0; i < 2; i++) {
        const r = await call("no-shell", "nothing");
        assert.equal(r.job.status, "succeeded", r.log);
        assert.equal(r.out, "no shell here\n");
      }
      assert.deepEqual(engine.environmentStats()["no-shell"], { idle: 1, busy: 0, started: 1, reused: 1 });
    });

    test("an environment that cannot start is the job's start-error; the engine goes on", async () => {
      const image = "localhost/scar-test/bad-workdir:1";
      await engine.images.import(fixture.base, {
        format: "rootfs",
        tag: image,
        changes: ["ENV PATH=/bin", "WORKDIR /etc/motd"],
      });
      await engine.deploy(spec("unstartable", "", SCRIPT, image));
      const r = await call("unstartable", "nothing");
      assert.equal(r.job.status, "failed");
      assert.equal(r.job.reason, "start-error", r.log);
      const stats = engine.environmentStats().unstartable;
      assert.deepEqual(
        [stats?.idle ?? 0, stats?.busy ?? 0],
        [0, 0],
        "no environment is kept or counted busy",
      );
      await engine.deploy(spec("healthy"));
      assert.equal((await call("healthy", "nothing")).job.status, "succeeded", "other functions still run");
    });

    test("an image whose user is not root reads its input and writes its output, warm too", async () => {
      const image = "localhost/scar-test/app-user:1";
      await engine.images.import(fixture.base, {
        format: "rootfs",
        tag: image,
        changes: ["ENV PATH=/bin", "USER app"],
      });
      const script = 'cat "$INPUT_FILE_PATH"; echo; id -u; echo out > "$TMP_OUTPUT_DIR/x" && echo wrote\n';
      await engine.deploy(spec("app-user", "", script, image));
      for (let i = 0; i < 2; i++) {
        const r = await call("app-user", `round ${i}`);
        assert.equal(r.job.status, "succeeded", r.log);
        assert.equal(r.out, `{"mode":"round ${i}"}\n1000\nwrote\n`);
      }
      assert.equal(engine.environmentStats()["app-user"]?.reused, 1);
    });

    test("a function with isolation: invocation gets a fresh container for every invocation", async () => {
      await engine.deploy({ ...spec("isolated"), isolation: "invocation" });
      assert.equal((await call("isolated", "nothing")).out, "cold\n");
      assert.equal((await call("isolated", "nothing")).out, "cold\n");
      assert.equal(engine.environmentStats().isolated, undefined);
    });

    test("removing a function closes its environments; the engine's stop closes the rest and leaves nothing", async () => {
      await engine.deploy(spec("removed"));
      assert.equal((await call("removed", "nothing")).job.status, "succeeded");
      assert.equal(engine.environmentStats().removed?.idle, 1);
      await engine.remove("removed");
      assert.equal(engine.environmentStats().removed, undefined);
      assert.ok(
        Object.values(engine.environmentStats()).some((s) => s.idle > 0),
        "other functions keep theirs",
      );
      await engine.close();
      assert.deepEqual(runnerLeftovers(join(dataDir, "runtime"), runtime), {
        runs: [],
        containers: [],
        cgroups: [],
      });
      // the suite's after() closes it again: a second close is harmless, but a fresh engine is cleaner
      engine = await Engine.start({ dataDir, s3Port: 0, concurrency: 2, runtime });
    });
  });
}
