/**
 * The engine's recycling settings with real environments (crun or runc, whichever the engine picks):
 * a memory budget of one and a half environments closes the idle one of another function before a
 * start, and an idle time of one second closes an environment nobody uses (each with its own engine). The pool's policy in
 * detail is in pool.test.ts; this checks that the engine's options reach it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Engine } from "../../../src/engine/engine.js";
import { parseFdl } from "../../../src/fdl/index.js";
import type { FunctionSpec } from "../../../src/fdl/spec.js";
import { waitFor } from "../api-harness.js";
import { type Fixture, makeFixture } from "../runtime/fixtures.js";

const IMAGE = "localhost/scar-test/recycle:1";
const root = mkdtempSync(join(tmpdir(), "scar-warm-recycle-"));
let fixture: Fixture;
let engine: Engine;

async function startEngine(
  name: string,
  opts: { warmMemoryPercent?: number; warmIdleSeconds?: number; warmPrewarm?: boolean },
) {
  if (engine) await engine.close();
  engine = await Engine.start({ dataDir: join(root, name), s3Port: 0, concurrency: 2, ...opts });
  await engine.images.import(fixture.base, { format: "rootfs", tag: IMAGE, changes: ["ENV PATH=/bin"] });
}

before(() => {
  fixture = makeFixture();
});
after(async () => {
  await engine?.close();
  fixture.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function spec(name: string): FunctionSpec {
  const dir = mkdtempSync(join(root, "fdl-"));
  writeFileSync(join(dir, "script.sh"), "if [ -e /seen ]; then echo warm; else echo cold; fi; touch /seen\n");
  const yaml = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n      init_script: script.sh\n      container:\n        image: ${IMAGE}\n`;
  writeFileSync(join(dir, "fn.yaml"), yaml);
  return parseFdl(join(dir, "fn.yaml"), yaml).functions[0]!;
}

async function call(name: string): Promise<string> {
  const { job, result } = await engine.invoke(name, {}, { sync: true });
  assert.equal(job.status, "succeeded", result?.log.join("\n"));
  return result!.output.toString();
}

test("past the memory budget, another function's idle environment closes before a start", async () => {
  // room for one and a half environments of 128 MiB
  await startEngine("memory", { warmMemoryPercent: (1.5 * 128 * 2 ** 20 * 100) / totalmem() });
  await engine.deploy(spec("first"));
  await engine.deploy(spec("second"));
  assert.equal(await call("first"), "cold\n");
  assert.equal(await call("first"), "warm\n");
  assert.equal(await call("second"), "cold\n");
  assert.equal(engine.environmentStats().first?.idle, 0, "first's idle environment made room");
  assert.equal(engine.environmentStats().second?.idle, 1);
  assert.equal(await call("first"), "cold\n");
});

test("an environment idle for longer than warm_idle_seconds is closed", async () => {
  await startEngine("idle", { warmIdleSeconds: 1 });
  await engine.deploy(spec("idle"));
  assert.equal(await call("idle"), "cold\n");
  await waitFor("the idle environment to close", () =>
    engine.environmentStats().idle?.idle === 0 ? true : undefined,
  );
  assert.equal(await call("idle"), "cold\n");
});

test("warm_prewarm: an environment started at deploy takes the function's first invocation", async () => {
  await startEngine("prewarm", { warmPrewarm: true });
  await engine.deploy(spec("pre"));
  await waitFor("the environment started at deploy", () =>
    engine.environmentStats().pre?.idle === 1 ? true : undefined,
  );
  const { job, result } = await engine.invoke("pre", {}, { sync: true });
  assert.equal(job.status, "succeeded", result?.log.join("\n"));
  // the first invocation in that container, and no start on its way
  assert.equal(result!.output.toString(), "cold\n");
  assert.equal(job.environment?.start, "warm");
  assert.deepEqual(engine.environmentStats().pre, { idle: 1, busy: 0, started: 1, reused: 1 });
  // an engine started with deployed functions prewarms them too
  await engine.close();
  engine = await Engine.start({
    dataDir: join(root, "prewarm"),
    s3Port: 0,
    concurrency: 2,
    warmPrewarm: true,
  });
  await waitFor("the environment started with the engine", () =>
    engine.environmentStats().pre?.idle === 1 ? true : undefined,
  );
  assert.equal(await call("pre"), "cold\n");
  assert.equal(engine.environmentStats().pre?.reused, 1);
});
