/**
 * A warm invocation's files are staged straight into its environment (issue 14's hot path): with an
 * idle environment waiting, the executor's workspace is that environment's own /tmp/<id> folders, so
 * the supervisor writes the input there and reads the outputs from there, and nothing goes through a
 * workspace on the data disk. Real crun, a busybox image, the supervisor's invoke(); nothing mocked.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
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
let pool: EnvironmentPool;

before(async () => {
  assert.ok(agentBinaryPath(), "the agent is built (npm run build)");
  f = makeFixture();
  runner = await Runner.open({ stateDir: join(f.root, "state"), runtime: "crun" });
  pool = new EnvironmentPool({ memoryBudgetBytes: 2 ** 40 });
});

after(async () => {
  await pool?.close();
  await runner?.close();
  f?.cleanup();
});

test("with a warm environment idle, the input and outputs are staged in its own folders, not on the data disk", async () => {
  const fdl = join(f.root, "fdl");
  mkdirSync(fdl);
  // what the script saw, and a file in its output folder
  writeFileSync(
    join(fdl, "s.sh"),
    'cat "$INPUT_FILE_PATH"; echo; ls /tmp; echo done > "$TMP_OUTPUT_DIR/out.txt"\n',
  );
  const yaml =
    "functions:\n  aws:\n  - lambda:\n      name: inplace\n      init_script: s.sh\n      container:\n        image: x\n";
  const fn = parseFdl(join(fdl, "fn.yaml"), yaml).functions[0]!;
  const workRoot = join(f.root, "work");
  const executor = () =>
    new WarmContainerExecutor(pool, (req) => runner.startEnvironment(req), {
      image: f.image,
      memoryMiB: 64,
      key: { function: "inplace", revision: "1" },
      maxEnvironments: 1,
    });
  const run = (requestId: string, ex = executor()) =>
    invoke({
      fn,
      event: { n: requestId },
      requestId,
      executor: ex,
      storage: () => {
        throw new Error("no storage in this test");
      },
      workRoot,
      keepOutputs: { maxBytes: 1024 },
    });

  // No environment yet: the cold start's files are staged on the data disk and moved in.
  const cold = await run("first");
  assert.equal(cold.reason, "ok", cold.log.join("\n"));
  assert.equal(cold.environment?.start, "cold");
  assert.equal(cold.kept?.kind === "files" && cold.kept.files[0]?.data.toString(), "done\n");

  // Now one waits: the workspace is its folder, handed over ready, and the data disk is not used.
  const ex = executor();
  const ws = await ex.workspace(join(workRoot, "second"), "second");
  assert.ok(ws.release, "the executor owns these folders");
  assert.ok(!ws.hostInput.startsWith(workRoot), ws.hostInput);
  assert.ok(existsSync(ws.hostInput) && existsSync(ws.hostOutput));
  // on the environment's own disk: stage-out copies the outputs, no rename into the store is tried
  assert.equal(ws.onOtherFileSystem, true);
  assert.deepEqual(pool.stats().inplace, { idle: 0, busy: 1, started: 1, reused: 1 });
  await ws.release();
  assert.deepEqual(pool.stats().inplace, { idle: 1, busy: 0, started: 1, reused: 1 });
  assert.ok(!existsSync(ws.hostInput), "released: its folders are gone");

  const warm = await run("third");
  assert.equal(warm.reason, "ok", warm.log.join("\n"));
  assert.equal(warm.environment?.start, "warm");
  // the event file was written in the environment's input folder; only this invocation's folder is in /tmp
  assert.match(warm.output.toString(), /^\{"n":"third"\}\nthird\n$/);
  assert.equal(warm.kept?.kind === "files" && warm.kept.files[0]?.data.toString(), "done\n");
  assert.ok(!existsSync(join(workRoot, "third")), "nothing was made on the data disk");
  assert.deepEqual(pool.stats().inplace, { idle: 1, busy: 0, started: 1, reused: 2 });
});
