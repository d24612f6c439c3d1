/**
 * scar's agent as the first process of a real crun container (Runner.run, scar's isolation and
 * seccomp profile): on an image holding nothing but the agent, and, fed through a FIFO bind-mounted
 * into the container (Runner.run gives the container no stdin of its own), running invocations as
 * pid 1. Warm environments proper (Runner.startEnvironment) are tested with them.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import { AgentClient } from "../../../src/engine/runtime/agent-client.js";
import { decodeFields, FrameDecoder } from "../../../src/engine/runtime/agent-protocol.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { type Fixture, makeFixture } from "./fixtures.js";

const AGENT = agentBinaryPath();

describe("the agent in a crun container", () => {
  let f: Fixture;
  let runner: Runner;

  before(async () => {
    assert.ok(AGENT, "the agent was not built: `npm run build` needs gcc and libc6-dev");
    f = makeFixture();
    runner = await Runner.open({ stateDir: join(f.root, "state"), runtime: "crun" });
  });

  after(async () => {
    await runner?.close();
    f?.cleanup();
  });

  test("needs nothing from the image: alone in an empty one, it says hello as pid 1 and ends at EOF", async () => {
    const empty = join(f.root, "layers", "empty");
    mkdirSync(empty, { recursive: true });
    const r = await runner.run({
      image: { config: {}, layers: [empty] },
      cmd: ["/.scar/agent"],
      mounts: [{ source: AGENT!, destination: "/.scar/agent", readonly: true }],
      limits: { memoryBytes: 64 << 20, pids: 16 },
      timeoutMs: 30_000,
    });
    // the container's stdin is /dev/null: hello, then EOF, then exit 0
    assert.equal(r.reason, "ok", r.message ?? r.stderr.toString());
    assert.equal(r.exitCode, 0);
    assert.equal(r.stderr.toString(), "");
    const frames = new FrameDecoder(["H", "S", "O", "E", "X"]).push(r.stdout);
    assert.deepEqual(
      frames.map((fr) => [fr.type, decodeFields(fr.type, fr.payload)]),
      [["H", ["scar-agent", "1", "1"]]],
    );
  });

  test("runs invocations as the container's init; nothing of one survives into the next", async () => {
    const fifo = join(f.root, "frames");
    execFileSync("mkfifo", [fifo]);
    const output = new PassThrough();
    const run = runner.run({
      image: f.image,
      cmd: ["/bin/sh", "-c", "exec /.scar/agent </.scar/frames"],
      mounts: [
        { source: AGENT!, destination: "/.scar/agent", readonly: true },
        { source: fifo, destination: "/.scar/frames", readonly: true },
      ],
      limits: { memoryBytes: 64 << 20, pids: 64 },
      timeoutMs: 60_000,
      onStdout: (c) => output.write(c),
    });
    // the container's stdout ends with it
    void run.finally(() => output.end());
    // opening the FIFO for writing waits until the container's shell opens it for reading
    const input = createWriteStream(fifo);
    const agent = await AgentClient.connect(input, output, { helloTimeoutMs: 30_000 });
    assert.equal(agent.hello?.pid, 1);

    const out: Buffer[] = [];
    const one = await agent.run({
      id: "one",
      argv: ["sh", "-c", "setsid sleep 1000 & echo started; id -u"],
      env: ["PATH=/bin"],
      cwd: "/tmp",
      onStdout: (c) => out.push(Buffer.from(c)),
    });
    assert.deepEqual([one.kind, one.code], ["exited", 0]);
    assert.equal(Buffer.concat(out).toString(), "started\n0\n");

    out.length = 0;
    const two = await agent.run({
      id: "two",
      argv: ["/bin/sh", "-c", "cat /proc/[0-9]*/comm; pwd"],
      env: [],
      onStdout: (c) => out.push(Buffer.from(c)),
    });
    assert.equal(two.code, 0);
    const lines = Buffer.concat(out).toString().split("\n").filter(Boolean);
    assert.ok(!lines.includes("sleep"), lines.join(" "));
    assert.equal(lines.at(-1), "/", "no cwd given: the agent's own");

    const timed = await agent.run({ id: "t", argv: ["sleep", "1000"], env: ["PATH=/bin"], timeoutMs: 200 });
    assert.equal(timed.kind, "timeout");
    const missing = await agent.run({ id: "m", argv: ["/bin/bash"], env: [] });
    assert.deepEqual(
      [missing.kind, missing.code, missing.message],
      ["exec-error", 2, "exec /bin/bash: No such file or directory"],
    );

    await agent.close();
    const r = await run;
    assert.equal(r.reason, "ok", r.message ?? r.stderr.toString());
    assert.equal(r.exitCode, 0);
    assert.equal(r.stderr.toString(), "");
  });
});
