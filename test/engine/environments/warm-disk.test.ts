/**
 * An input larger than the function's disk, warm and cold (issue 14): with an idle environment the
 * supervisor stages the input straight onto the environment's own disk; without one the executor
 * moves it there. Either way the invocation fails with reason `disk` and the same words in its log
 * (the input does not fit the function's disk, and the key that raises it), and the next invocation
 * runs. Real crun, the embedded store's own provider, the supervisor's invoke(); nothing mocked.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { EmbeddedStoreProvider } from "../../../src/engine/embedded-provider.js";
import { WarmContainerExecutor } from "../../../src/engine/environments/executor.js";
import { EnvironmentPool } from "../../../src/engine/environments/pool.js";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { type RunningStore, startStore } from "../../../src/engine/store/index.js";
import { parseFdl } from "../../../src/fdl/index.js";
import { invoke } from "../../../src/supervisor/index.js";
import { type Fixture, makeFixture } from "../runtime/fixtures.js";

const DISK_MIB = 16;
let f: Fixture;
let work: string;
let runner: Runner;
let pool: EnvironmentPool;
let store: RunningStore;
let s3: S3Client;

before(async () => {
  assert.ok(agentBinaryPath(), "the agent is built (npm run build)");
  f = makeFixture();
  work = mkdtempSync(join(tmpdir(), "scar-warm-disk-"));
  runner = await Runner.open({ stateDir: join(work, "state"), runtime: "crun" });
  pool = new EnvironmentPool({ memoryBudgetBytes: 2 ** 40 });
  store = await startStore({ dataDir: join(work, "store"), host: "127.0.0.1", port: 0 });
  const creds = { accessKeyId: "scar", secretAccessKey: "scar-secret-key" };
  s3 = new S3Client({ endpoint: store.url, region: "us-east-1", forcePathStyle: true, credentials: creds });
  await s3.send(new CreateBucketCommand({ Bucket: "media" }));
  await s3.send(
    new PutObjectCommand({ Bucket: "media", Key: "in/big.bin", Body: Buffer.alloc(24 << 20, 7) }),
  );
  await s3.send(new PutObjectCommand({ Bucket: "media", Key: "in/small.txt", Body: "small\n" }));
});

after(async () => {
  await pool?.close();
  await runner?.close();
  s3?.destroy();
  await store?.close();
  f?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const s3Event = (key: string) => ({
  Records: [{ eventSource: "aws:s3", s3: { bucket: { name: "media" }, object: { key } } }],
});

test("an input past the environment's disk fails with reason disk and says so, warm as cold; the next one runs", async () => {
  const fdl = mkdtempSync(join(work, "fdl-"));
  writeFileSync(join(fdl, "s.sh"), 'wc -c < "$INPUT_FILE_PATH"\n');
  const yaml =
    "functions:\n  aws:\n  - lambda:\n      name: big\n      init_script: s.sh\n      container:\n        image: x\n      input:\n      - path: media/in\n";
  const fn = parseFdl(join(fdl, "fn.yaml"), yaml).functions[0]!;
  const executor = (name: string) =>
    new WarmContainerExecutor(pool, (req) => runner.startEnvironment(req), {
      image: f.image,
      memoryMiB: 64,
      diskMiB: DISK_MIB,
      key: { function: name, revision: "1" },
      maxEnvironments: 1,
    });
  const run = (name: string, key: string, requestId: string) =>
    invoke({
      fn,
      event: s3Event(key),
      requestId,
      executor: executor(name),
      storage: () => new EmbeddedStoreProvider("s3.default", store.backend),
      workRoot: join(work, "work"),
    });
  const says = new RegExp(
    `The input does not fit the function's disk of ${DISK_MIB} MiB .*lambda\\.ephemeral_storage`,
  );

  // warm: an idle environment waits, and the supervisor stages onto its disk
  await executor("warm").prewarm();
  assert.equal(pool.stats().warm?.idle, 1);
  const warm = await run("warm", "in/big.bin", "w1");
  assert.equal(warm.reason, "disk", warm.log.join("\n"));
  assert.match(warm.detail!, says);
  assert.ok(
    warm.log.some((l) => says.test(l)),
    warm.log.join("\n"),
  );
  assert.equal(warm.output.length, 0, "the script never ran");
  const next = await run("warm", "in/small.txt", "w2");
  assert.equal(next.reason, "ok", next.log.join("\n"));
  assert.equal(next.output.toString().trim(), "6");

  // cold: no environment yet; the input is moved onto the new one's disk by the executor
  const cold = await run("cold", "in/big.bin", "c1");
  assert.equal(cold.reason, "disk", cold.log.join("\n"));
  assert.equal(cold.detail, warm.detail, "the same words either way");
  assert.equal((await run("cold", "in/small.txt", "c2")).reason, "ok");
});
