/**
 * An invocation that replaces its own folders (/tmp/<id>, its input or output folder) by symbolic
 * links to host paths must not make the engine read or delete host files: in a warm environment
 * these folders are plain folders the script may rename (no bind mount holds them), and the engine
 * reaches them through host paths, where an absolute link resolves against the host's root.
 * Real crun, a busybox image, the supervisor's invoke(); nothing mocked.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { WarmContainerExecutor } from "../../../src/engine/environments/executor.js";
import { EnvironmentPool } from "../../../src/engine/environments/pool.js";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { parseFdl } from "../../../src/fdl/index.js";
import { invoke } from "../../../src/supervisor/index.js";
import { type Fixture, makeFixture } from "../runtime/fixtures.js";

let f: Fixture;
let runner: Runner;

before(async () => {
  assert.ok(agentBinaryPath(), "the agent is built (npm run build)");
  f = makeFixture();
  runner = await Runner.open({ stateDir: join(f.root, "state"), runtime: "crun" });
});

after(async () => {
  await runner?.close();
  f?.cleanup();
});

async function runTwice(name: string, script: string) {
  const pool = new EnvironmentPool({ memoryBudgetBytes: 2 ** 40 });
  const fdl = join(f.root, `fdl-${name}`);
  mkdirSync(fdl);
  writeFileSync(join(fdl, "s.sh"), script);
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      init_script: s.sh\n      container:\n        image: x\n`;
  const fn = parseFdl(join(fdl, "fn.yaml"), yaml).functions[0]!;
  const run = (requestId: string) =>
    invoke({
      fn,
      event: { n: requestId },
      requestId,
      executor: new WarmContainerExecutor(pool, (req) => runner.startEnvironment(req), {
        image: f.image,
        memoryMiB: 64,
        key: { function: name, revision: "1" },
        maxEnvironments: 1,
      }),
      storage: () => {
        throw new Error("no storage in this test");
      },
      workRoot: join(f.root, `work-${name}`),
      keepOutputs: { maxBytes: 1024 },
    });
  try {
    // the first one cold (its folders moved in and out), the second warm (staged in place)
    return [await run(`${name}-1`), await run(`${name}-2`)];
  } finally {
    await pool.close(); // and with it the environment, once its folders are deleted
  }
}

test("an output folder replaced by a link to a host folder is not read: the invocation fails", async () => {
  const secret = join(f.root, "secret");
  mkdirSync(secret);
  writeFileSync(join(secret, "key.txt"), "host secret");
  const results = await runTwice("outlink", `rmdir "$TMP_OUTPUT_DIR" && ln -s ${secret} "$TMP_OUTPUT_DIR"\n`);
  for (const r of results) {
    assert.equal(r.reason, "script-error", r.log.join("\n"));
    assert.match(r.log.join("\n"), /not a folder|link/);
    const kept = r.kept?.kind === "files" ? r.kept.files.map((k) => k.data.toString()) : [];
    assert.ok(!kept.includes("host secret"), "the host file was not read as an output");
  }
  assert.equal(readFileSync(join(secret, "key.txt"), "utf8"), "host secret");
});

test("an invocation folder replaced by a link to a host folder: nothing in that folder is deleted", async () => {
  const victim = join(f.root, "victim");
  mkdirSync(join(victim, "input"), { recursive: true });
  mkdirSync(join(victim, "output"));
  writeFileSync(join(victim, "keep.txt"), "keep");
  writeFileSync(join(victim, "input", "keep.txt"), "keep");
  const results = await runTwice(
    "dirlink",
    `d=$(dirname "$TMP_OUTPUT_DIR"); mv "$d" /tmp/moved-$$ && ln -s ${victim} "$d"\n`,
  );
  for (const r of results) assert.equal(r.reason, "script-error", r.log.join("\n"));
  for (const p of ["keep.txt", "input/keep.txt"])
    assert.ok(existsSync(join(victim, p)), `${p} of the link's target is still there`);
});
