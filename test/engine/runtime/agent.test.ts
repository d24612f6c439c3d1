/**
 * scar's in-container agent (src/engine/runtime/agent/scar-agent.c, built by `npm run build`) and its
 * client, for real: the built binary runs on the host with pipes, and as pid 1 of a new pid namespace
 * (`unshare --pid --fork --mount-proc`), where it is init and kills every other process at the end of
 * an invocation. Nothing is timed: time limits are short, but only what they did is checked.
 */
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { after, before, describe, test } from "node:test";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import {
  AgentClient,
  type AgentClient as AgentClientType,
  type AgentExit,
  AgentLostError,
  AgentProtocolError,
  type AgentRun,
} from "../../../src/engine/runtime/agent-client.js";
import {
  type AgentFrameType,
  decodeFields,
  encodeFrame,
  FrameDecoder,
  killFrame,
  runFrame,
} from "../../../src/engine/runtime/agent-protocol.js";

const AGENT = agentBinaryPath();
/** a payload of NUL-terminated fields */
const nul = (...fields: string[]) => Buffer.from(fields.map((f) => `${f}\0`).join(""));
const HOST_PATH = "/usr/local/bin:/usr/bin:/bin";

type Mode = "host" | "pid 1";
const MODES: Mode[] = ["host", "pid 1"];

interface Spawned {
  child: ChildProcessWithoutNullStreams;
  stderr(): string;
  /** the agent's (or, in pid 1 mode, unshare's, which passes it on) exit code */
  exited: Promise<number | null>;
}

const started: Spawned[] = [];

function spawnAgent(mode: Mode): Spawned {
  assert.ok(AGENT, "the agent was not built: `npm run build` needs gcc and libc6-dev");
  // --kill-child: should unshare die first, the agent goes with it
  const argv =
    mode === "host" ? [AGENT] : ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", AGENT];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const s = { child, stderr: () => err, exited };
  started.push(s);
  return s;
}

async function connect(mode: Mode): Promise<Spawned & { client: AgentClientType }> {
  const s = spawnAgent(mode);
  const client = await AgentClient.connect(s.child.stdin, s.child.stdout);
  return { ...s, client };
}

interface Collected {
  x: AgentExit;
  stdout: Buffer;
  stderr: Buffer;
}

async function collect(
  client: AgentClientType,
  r: Omit<AgentRun, "onStdout" | "onStderr">,
): Promise<Collected> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const x = await client.run({
    ...r,
    onStdout: (c) => out.push(Buffer.from(c)),
    onStderr: (c) => err.push(Buffer.from(c)),
  });
  return { x, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

const sh = (id: string, script: string, extra: Partial<AgentRun> = {}) => ({
  id,
  argv: ["/bin/sh", "-c", script],
  env: [`PATH=${HOST_PATH}`],
  ...extra,
});

/** whether a host pid is alive (or a zombie nobody reaped) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, "ESRCH");
    return false;
  }
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "scar-agent-test-"));
});
after(async () => {
  // agents a failed test left running: their stdin's end makes them kill their invocations; one
  // that does not answer is killed (unshare passes its SIGKILL on to the agent: --kill-child)
  const left = started.filter((s) => s.child.exitCode === null && s.child.signalCode === null);
  for (const s of left) s.child.stdin.end();
  const timer = setTimeout(() => {
    for (const s of left) s.child.kill("SIGKILL");
  }, 5000);
  await Promise.all(started.map((s) => s.exited));
  clearTimeout(timer);
  rmSync(tmp, { recursive: true, force: true });
});

for (const mode of MODES) {
  describe(`the agent (${mode})`, () => {
    test("says hello with protocol 1 and its pid", async () => {
      const a = await connect(mode);
      assert.equal(a.client.hello?.version, "1");
      if (mode === "pid 1") assert.equal(a.client.hello?.pid, 1);
      else assert.equal(a.client.hello?.pid, a.child.pid);
      await a.client.close();
      assert.equal(await a.exited, 0);
      assert.equal(a.stderr(), "");
    });

    test("runs invocations one after another: exit codes, signals, stdout and stderr apart", async () => {
      const a = await connect(mode);
      const one = await collect(a.client, sh("one", "echo out; echo err >&2; exit 7"));
      assert.deepEqual(
        { ...one.x, startedAt: 0, endedAt: 0 },
        {
          kind: "exited",
          code: 7,
          message: "",
          pid: one.x.pid,
          startedAt: 0,
          endedAt: 0,
        },
      );
      assert.equal(one.stdout.toString(), "out\n");
      assert.equal(one.stderr.toString(), "err\n");
      assert.ok(one.x.startedAt <= one.x.endedAt);
      const two = await collect(a.client, sh("two", "echo second"));
      assert.equal(two.x.kind, "exited");
      assert.equal(two.x.code, 0);
      assert.equal(two.stdout.toString(), "second\n");
      const sig = await collect(a.client, sh("three", "kill -USR1 $$"));
      assert.equal(sig.x.kind, "signaled");
      assert.equal(sig.x.code, 10);
      // the agent ignores SIGPIPE and blocks SIGCHLD and others; the invocation gets none of that
      const sigs = await collect(a.client, {
        id: "sigs",
        argv: ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"],
        env: [`PATH=${HOST_PATH}`],
      });
      assert.equal(sigs.stdout.toString(), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
      await a.client.close();
      assert.equal(await a.exited, 0);
    });

    test("the environment is exactly the one given; argv[0] is looked up in its PATH", async () => {
      const a = await connect(mode);
      const exact = await collect(a.client, {
        id: "env",
        argv: ["env"],
        env: ["B=two words", "A=1", "EMPTY=", `PATH=${HOST_PATH}`],
      });
      assert.equal(exact.stdout.toString(), `B=two words\nA=1\nEMPTY=\nPATH=${HOST_PATH}\n`);
      const map = await collect(a.client, { id: "map", argv: ["/usr/bin/env"], env: { X: "y=z", Y: "" } });
      assert.equal(map.stdout.toString(), "X=y=z\nY=\n");
      // no PATH at all: the default one finds env, and env prints nothing
      const none = await collect(a.client, { id: "none", argv: ["env"], env: [] });
      assert.equal(none.x.code, 0);
      assert.equal(none.stdout.toString(), "");
      // the invocation's PATH, not the agent's: a command only in a folder of ours
      const bin = join(tmp, `bin-${mode.replace(" ", "")}`);
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, "scar-test-hello"), "#!/bin/sh\necho hello from $0\n");
      chmodSync(join(bin, "scar-test-hello"), 0o755);
      writeFileSync(join(bin, "not-executable"), "#!/bin/sh\necho never\n");
      const found = await collect(a.client, {
        id: "path",
        argv: ["scar-test-hello"],
        env: [`PATH=/nonexistent:${bin}:${HOST_PATH}`],
      });
      assert.equal(found.stdout.toString(), `hello from ${bin}/scar-test-hello\n`);
      const missing = await collect(a.client, {
        id: "missing",
        argv: ["scar-test-hello"],
        env: [`PATH=${HOST_PATH}`],
      });
      assert.deepEqual(
        [missing.x.kind, missing.x.code, missing.x.message, missing.x.pid],
        ["exec-error", 2, "exec scar-test-hello: No such file or directory", undefined],
      );
      const denied = await collect(a.client, {
        id: "denied",
        argv: ["not-executable"],
        env: [`PATH=${bin}`],
      });
      assert.deepEqual(
        [denied.x.kind, denied.x.code, denied.x.message],
        ["exec-error", 13, "exec not-executable: Permission denied"],
      );
      const absolute = await collect(a.client, {
        id: "abs",
        argv: ["/nonexistent/bin/tool", "arg"],
        env: [],
      });
      assert.deepEqual(
        [absolute.x.kind, absolute.x.code, absolute.x.message],
        ["exec-error", 2, "exec /nonexistent/bin/tool: No such file or directory"],
      );
      // an exec error is no reason to stop: the next invocation runs
      const next = await collect(a.client, sh("next", "echo still here"));
      assert.equal(next.stdout.toString(), "still here\n");
      await a.client.close();
    });

    test("cwd: the invocation starts in the folder given, or fails with what chdir said", async () => {
      const a = await connect(mode);
      const r = await collect(a.client, { id: "cwd", argv: ["/bin/pwd"], env: [], cwd: tmp });
      assert.equal(r.stdout.toString(), `${tmp}\n`);
      const bad = await collect(a.client, {
        id: "badcwd",
        argv: ["/bin/pwd"],
        env: [],
        cwd: "/nonexistent/dir",
      });
      assert.deepEqual(
        [bad.x.kind, bad.x.code, bad.x.message],
        ["exec-error", 2, "chdir /nonexistent/dir: No such file or directory"],
      );
      await a.client.close();
    });

    test("several MiB of binary output on stdout and stderr at once arrive whole and in order", async () => {
      const a = await connect(mode);
      const data = randomBytes(6 << 20);
      const file = join(tmp, `random-${mode.replace(" ", "")}`);
      writeFileSync(file, data);
      const r = await collect(
        a.client,
        sh("big", `(cat '${file}'; cat '${file}') & cat '${file}' >&2; wait`),
      );
      assert.equal(r.x.code, 0);
      assert.equal(r.stdout.length, 2 * data.length);
      assert.ok(r.stdout.equals(Buffer.concat([data, data])));
      assert.ok(r.stderr.equals(data));
      await a.client.close();
    });

    test("kill: the running invocation ends with kind killed, its background children too", async () => {
      const a = await connect(mode);
      a.child.stdin.write(killFrame("not-running")); // ignored: nothing runs
      let pid: number | undefined;
      let out = "";
      const running = a.client.run({
        ...sh("k", "sleep 1000 & echo $!; wait"),
        onStarted: (p) => {
          pid = p;
        },
        onStdout: (c) => {
          out += c.toString();
          if (out.endsWith("\n")) a.client.kill("k");
        },
      });
      const x = await running;
      assert.deepEqual([x.kind, x.code, x.pid], ["killed", 0, pid]);
      if (mode === "host") assert.equal(alive(Number(out.trim())), false);
      await a.client.close();
    });
  });
}

describe("the agent's time limit", () => {
  test("host: kills the child's whole group, a SIGTERM-proof background sleep too, before X", async () => {
    const a = await connect("host");
    const r = await collect(
      a.client,
      sh("t", "(trap '' TERM; exec sleep 1000) & echo $!; wait", { timeoutMs: 300 }),
    );
    assert.deepEqual([r.x.kind, r.x.code], ["timeout", 0]);
    const bg = Number(r.stdout.toString().trim());
    assert.ok(bg > 0);
    // X came after the sleep was killed and reaped: no such process any more (not even a zombie)
    assert.equal(alive(bg), false);
    assert.equal(alive(r.x.pid!), false);
    await a.client.close();
  });

  test("pid 1: kills every process of the namespace; the next invocation finds none", async () => {
    const a = await connect("pid 1");
    const r = await collect(
      a.client,
      sh("t", "(trap '' TERM; exec setsid sleep 1000) & echo $!; wait", { timeoutMs: 300 }),
    );
    assert.equal(r.x.kind, "timeout");
    const procs = await collect(a.client, sh("ps", "cat /proc/[0-9]*/comm"));
    const names = procs.stdout.toString().split("\n").filter(Boolean);
    assert.ok(names.includes("scar-agent"), names.join(" "));
    // the agent, and this invocation's sh (unless it exec'd cat) and cat: no sleep
    for (const n of names) assert.ok(["scar-agent", "sh", "cat"].includes(n), names.join(" "));
    await a.client.close();
  });
});

describe("pid 1: nothing of one invocation survives into the next", () => {
  test("a background process that left the invocation's group and session is dead before the next starts", async () => {
    const a = await connect("pid 1");
    // it has its own session (field 6 of its stat) before the invocation ends
    const one = await collect(
      a.client,
      sh(
        "one",
        `setsid sleep 1000 & p=$!; until [ "$(cut -d' ' -f6 /proc/$p/stat)" = $p ]; do :; done; echo $p`,
      ),
    );
    assert.equal(one.x.code, 0);
    const bg = one.stdout.toString().trim();
    const two = await collect(
      a.client,
      sh("two", `kill -0 ${bg} 2>/dev/null && echo alive || echo dead; cat /proc/[0-9]*/comm`),
    );
    const lines = two.stdout.toString().split("\n").filter(Boolean);
    assert.equal(lines[0], "dead");
    assert.ok(!lines.includes("sleep"), lines.join(" "));
    await a.client.close();
  });

  test("host: a background process in the invocation's group is dead when X arrives", async () => {
    const a = await connect("host");
    const one = await collect(a.client, sh("one", "sleep 1000 & echo $!"));
    assert.equal(one.x.code, 0);
    assert.equal(alive(Number(one.stdout.toString().trim())), false);
    await a.client.close();
  });
});

for (const mode of MODES) {
  test(`stdin EOF (${mode}): the agent kills the running invocation and its children and exits 0`, async () => {
    const a = await connect(mode);
    let out = "";
    let closed: Promise<void> | undefined;
    const running = a.client.run({
      ...sh("eof", "sleep 1000 & echo $!; echo ready; wait"),
      onStdout: (c) => {
        out += c.toString();
        if (out.includes("ready") && !closed) closed = a.client.close();
      },
    });
    await assert.rejects(
      running,
      (e) => e instanceof AgentLostError && /closed during an invocation/.test(e.message),
    );
    await closed;
    assert.equal(await a.exited, 0);
    if (mode === "host") assert.equal(alive(Number(out.split("\n")[0])), false);
  });

  test(`a malformed frame (${mode}): the agent says why on stderr, kills everything and exits 70`, async () => {
    const cases: [Buffer, RegExp][] = [
      [encodeFrame("Z", Buffer.alloc(0)), /^scar-agent: protocol error: unknown frame type 0x5a\n$/],
      [
        Buffer.from([0x52, 0xff, 0xff, 0xff, 0xff]),
        /^scar-agent: protocol error: frame of 4294967295 bytes is larger than 4194304\n$/,
      ],
      [
        encodeFrame("R", nul("id", "soon", "", "1", "/bin/true", "0")),
        /^scar-agent: protocol error: run: timeout_ms is not a decimal number: "soon"\n$/,
      ],
      [
        encodeFrame("R", nul("id", "0", "", "2", "/bin/true")),
        /^scar-agent: protocol error: run: argv: missing or unterminated field\n$/,
      ],
      [
        encodeFrame("R", Buffer.concat([nul("id", "0", "", "1", "/bin/true", "0"), Buffer.from("extra")])),
        /^scar-agent: protocol error: run: 5 bytes after the last env entry\n$/,
      ],
    ];
    for (const [bytes, message] of cases) {
      const s = spawnAgent(mode);
      s.child.stdin.end(bytes);
      assert.equal(await s.exited, 70);
      assert.match(s.stderr(), message);
    }
    // while an invocation runs: it dies with the agent, and the client learns the agent is lost
    const a = await connect(mode);
    let out = "";
    const running = a.client.run({
      ...sh("m", "sleep 1000 & echo $!; wait"),
      onStdout: (c) => {
        out += c.toString();
        a.child.stdin.write(encodeFrame("K", Buffer.from("no terminating NUL")));
      },
    });
    await assert.rejects(running, AgentLostError);
    assert.equal(await a.exited, 70);
    assert.match(a.stderr(), /^scar-agent: protocol error: kill: id: missing or unterminated field\n$/);
    if (mode === "host") assert.equal(alive(Number(out.trim())), false);
  });
}

test("frames that reach the agent a byte at a time, and a run frame of exactly 4 MiB", async () => {
  const a = spawnAgent("host");
  const frames = new FrameDecoder<AgentFrameType>(["H", "S", "O", "E", "X"]);
  const got: { type: string; fields: string[] }[] = [];
  const waiters: (() => void)[] = [];
  a.child.stdout.on("data", (c: Buffer) => {
    for (const f of frames.push(c))
      got.push({
        type: f.type,
        fields: f.type === "O" ? [f.payload.toString()] : decodeFields(f.type, f.payload),
      });
    for (const w of waiters.splice(0)) w();
  });
  const until = async (pred: (g: { type: string; fields: string[] }) => boolean) => {
    for (;;) {
      const found = got.find(pred);
      if (found) return found.fields;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const xOf = (id: string) => until((g) => g.type === "X" && g.fields[0] === id);
  // each byte its own write, the next one only once the agent has read it (its rchar went up;
  // nothing else is read meanwhile: no signal, and the invocation is silent while its frames arrive)
  const rchar = () => Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${a.child.pid}/io`, "utf8"))![1]);
  const bytewise = async (bytes: Buffer) => {
    for (const b of bytes) {
      const before = rchar();
      a.child.stdin.write(Buffer.from([b]));
      while (rchar() === before) await new Promise((r) => setImmediate(r));
    }
  };
  await bytewise(runFrame({ id: "slow", argv: ["/bin/sh", "-c", "echo pieces; exec sleep 1000"], env: [] }));
  await until((g) => g.type === "O" && g.fields[0] === "pieces\n");
  await bytewise(killFrame("slow"));
  assert.deepEqual(await xOf("slow"), ["slow", "killed", "0", ""]);

  // the largest frame the protocol allows: accepted, and the kernel's E2BIG is an exec error
  const head = ["big", "0", "", "1", "/bin/true", "64"];
  const fixed = head.reduce((n, f) => n + Buffer.byteLength(f) + 1, 0);
  const per = Math.floor((4 * 1024 * 1024 - fixed) / 64);
  const env = Array.from({ length: 64 }, (_, i) => `V${String(i).padStart(2, "0")}=`);
  const sizes = env.map((e, i) => (i < 63 ? per : 4 * 1024 * 1024 - fixed - 63 * per) - e.length - 1);
  const entries = env.map((e, i) => e + "x".repeat(sizes[i]!));
  const frame = runFrame({ id: "big", argv: ["/bin/true"], env: entries });
  assert.equal(frame.length, 5 + 4 * 1024 * 1024);
  a.child.stdin.write(frame);
  assert.deepEqual(await xOf("big"), ["big", "exec-error", "7", "exec /bin/true: Argument list too long"]);
  a.child.stdin.end();
  assert.equal(await a.exited, 0);
  assert.equal(a.stderr(), "");
});

test("SIGTERM (host): the agent kills the running invocation's group, says so and exits 143", async () => {
  const a = await connect("host");
  let out = "";
  const running = a.client.run({
    ...sh("term", "sleep 1000 & echo $!; wait"),
    onStdout: (c) => {
      out += c.toString();
      a.child.kill("SIGTERM");
    },
  });
  await assert.rejects(running, AgentLostError);
  assert.equal(await a.exited, 143);
  assert.equal(a.stderr(), "scar-agent: stopping on signal 15\n");
  assert.equal(alive(Number(out.trim())), false);
});

describe("the client", () => {
  test("copes with frames split anywhere: the agent's output fed one byte at a time", async () => {
    const s = spawnAgent("host");
    const bytewise = new Transform({
      transform(chunk: Buffer, _enc, done) {
        for (const b of chunk) this.push(Buffer.from([b]));
        done();
      },
    });
    s.child.stdout.pipe(bytewise);
    const client = await AgentClient.connect(s.child.stdin, bytewise);
    const data = randomBytes(20_000);
    const file = join(tmp, "bytewise");
    writeFileSync(file, data);
    const r = await collect(client, sh("b", `cat '${file}'; printf 'err\\000x' >&2; exit 3`));
    assert.deepEqual([r.x.kind, r.x.code], ["exited", 3]);
    assert.ok(r.stdout.equals(data));
    assert.ok(r.stderr.equals(Buffer.from("err\0x")));
    await client.close();
  });

  test("the decoder gives the same frames for the agent's raw output whole and byte by byte", async () => {
    const s = spawnAgent("pid 1");
    const types: AgentFrameType[] = ["H", "S", "O", "E", "X"];
    const raw: Buffer[] = [];
    const watch = new FrameDecoder(types);
    s.child.stdout.on("data", (c: Buffer) => {
      raw.push(Buffer.from(c));
      if (watch.push(c).some((f) => f.type === "X")) s.child.stdin.end();
    });
    s.child.stdin.write(
      runFrame({ id: "r", argv: ["/bin/sh", "-c", "echo hi; printf 'there\\000' >&2; exit 4"], env: [] }),
    );
    assert.equal(await s.exited, 0);
    const all = Buffer.concat(raw);
    const whole = new FrameDecoder(types).push(all);
    const split = new FrameDecoder(types);
    const bytewise = [...all].flatMap((b) => split.push(Buffer.from([b])));
    assert.equal(split.pending, 0);
    assert.deepEqual(bytewise, whole);
    const byType = (t: string) => whole.filter((f) => f.type === t);
    assert.deepEqual(whole.map((f) => f.type)[0], "H");
    assert.deepEqual(decodeFields("H", whole[0]!.payload), ["scar-agent", "1", "1"]);
    assert.deepEqual(decodeFields("S", byType("S")[0]!.payload), ["r", "2"]);
    assert.equal(Buffer.concat(byType("O").map((f) => f.payload)).toString(), "hi\n");
    assert.ok(Buffer.concat(byType("E").map((f) => f.payload)).equals(Buffer.from("there\0")));
    assert.deepEqual(decodeFields("X", whole.at(-1)!.payload), ["r", "exited", "4", ""]);
  });

  test("a lost agent rejects the running invocation with AgentLostError", async () => {
    const a = await connect("host");
    let pid: number | undefined;
    const running = a.client.run({
      ...sh("lost", "exec sleep 1000"),
      onStarted: (p) => {
        pid = p;
        a.child.kill("SIGKILL");
      },
    });
    await assert.rejects(
      running,
      (e) => e instanceof AgentLostError && /during invocation lost/.test(e.message),
    );
    assert.equal(a.client.alive, false);
    await assert.rejects(a.client.run(sh("after", "true")), AgentLostError);
    // the agent died without killing it: that is what the container's end is for; here we do it
    if (pid) process.kill(-pid, "SIGKILL");
  });

  test("a malformed frame from the agent is an AgentProtocolError saying what was wrong", async () => {
    const hello = encodeFrame("H", nul("scar-agent", "1", "7"));
    // [bytes, message, whether the hello got through before the bad frame]
    const cases: [Buffer, RegExp, boolean][] = [
      [encodeFrame("H", Buffer.from("abc")), /^H frame: its last field is not NUL-terminated$/, false],
      [encodeFrame("Q", Buffer.alloc(0)), /^unknown frame type 0x51$/, false],
      [
        encodeFrame("H", nul("scar-agent", "2", "7")),
        /^the agent speaks protocol 2, this scar speaks 1$/,
        false,
      ],
      [encodeFrame("X", nul("a", "exited", "0", "")), /^a X frame before the hello$/, false],
      [
        Buffer.concat([hello, encodeFrame("O", Buffer.from("x"))]),
        /^output \(O\) with no invocation running$/,
        true,
      ],
      [Buffer.concat([hello, hello]), /^a second hello$/, true],
    ];
    for (const [bytes, message, helloFirst] of cases) {
      // a real process and pipe that speak garbage: cat of a file holding the bytes
      const file = join(tmp, "garbage");
      writeFileSync(file, bytes);
      const cat = spawn("cat", [file], { stdio: ["pipe", "pipe", "inherit"] });
      const closed = new Promise((resolve) => cat.on("close", resolve));
      if (helloFirst) {
        // the hello is fine; the stray output comes after it, so the client exists and then dies
        const client = await AgentClient.connect(cat.stdin, cat.stdout);
        await closed;
        assert.equal(client.alive, false);
        await assert.rejects(
          client.run(sh("x", "true")),
          (e) => e instanceof AgentProtocolError && message.test(e.message),
        );
      } else {
        await assert.rejects(
          AgentClient.connect(cat.stdin, cat.stdout),
          (e) => e instanceof AgentProtocolError && message.test(e.message),
        );
        await closed;
      }
    }
  });

  test("refuses a second run while one is running, and fields holding a NUL", async () => {
    const a = await connect("host");
    await assert.rejects(
      a.client.run({ id: "x", argv: ["a\0b"], env: [] }),
      (e) => e instanceof AgentProtocolError && /holds a NUL byte/.test(e.message),
    );
    const first = a.client.run(sh("first", "exec sleep 1000"));
    await assert.rejects(
      a.client.run(sh("second", "true")),
      /invocation first is still running; one at a time/,
    );
    a.client.kill("first");
    assert.equal((await first).kind, "killed");
    await a.client.close();
  });

  test("an agent that ends before its hello: connect rejects with AgentLostError", async () => {
    const gone = spawn("true", [], { stdio: ["pipe", "pipe", "inherit"] });
    await assert.rejects(
      AgentClient.connect(gone.stdin, gone.stdout),
      (e) => e instanceof AgentLostError && /^the agent's output ended$/.test(e.message),
    );
  });

  test("no hello in time: connect rejects with AgentLostError", async () => {
    const quiet = spawn("sleep", ["1000"], { stdio: ["pipe", "pipe", "inherit"] });
    await assert.rejects(
      AgentClient.connect(quiet.stdin, quiet.stdout, { helloTimeoutMs: 50 }),
      (e) => e instanceof AgentLostError && /did not say hello within 50 ms/.test(e.message),
    );
    quiet.kill("SIGKILL");
  });
});
