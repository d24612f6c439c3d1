/**
 * Issue 14, reliability: a warm environment and a spare bundle (prepared ahead for the next
 * environment of an image) keep overlays mounted over the image's unpacked layers between jobs. They
 * hold the image store's lease for as long as their mount lives, so `scar image rm|prune` (in
 * process, or the CLI in another process) leave those layers alone and say so, the environment keeps
 * running invocations, and once the environment, the spare and the runner are gone prune removes
 * them. Real crun, an image imported into a real store; nothing mocked.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Engine } from "../../../src/engine/engine.js";
import { ImageStore } from "../../../src/engine/images/index.js";
import { agentBinaryPath } from "../../../src/engine/runtime/agent-binary.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import type { EnvironmentRequest } from "../../../src/engine/runtime/types.js";
import { parseFdl } from "../../../src/fdl/index.js";
import { waitFor } from "../api-harness.js";
import { type Fixture, makeFixture } from "../runtime/fixtures.js";

const bin = new URL("../../../../bin/scar", import.meta.url).pathname;
let f: Fixture;
let work: string;
let dataDir: string;
let images: ImageStore;
let runner: Runner;

before(async () => {
  assert.ok(agentBinaryPath(), "the agent is built (npm run build)");
  f = makeFixture();
  work = mkdtempSync(join(tmpdir(), "scar-warm-leases-"));
  dataDir = join(work, "data");
  images = new ImageStore({ dataDir });
  runner = await Runner.open({
    stateDir: join(work, "runtime"),
    runtime: "crun",
    spareBundles: true,
    leaseLayers: (dirs) => images.leaseLayerDirs(dirs),
  });
});

after(async () => {
  await runner?.close();
  f?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `scar image ...` in its own process, on this test's data folder. */
function scar(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SCAR_DATA_DIR: dataDir,
      SCAR_CONFIG_FOLDER: join(work, "cfg"),
    };
    const p = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * The fixture's busybox as an image of the store (unpacked again after a test removed it), imported
 * by the CLI: this process then leases its layers only through the runner's mounts (an import's own
 * lease would be listed for other processes a few seconds after it ends).
 */
async function importImage(tag: string) {
  const r = await scar("image", "import", f.base, "--tag", tag, "--change", "ENV PATH=/bin");
  assert.equal(r.status, 0, r.stderr);
  const img = images.resolve(tag);
  const req: EnvironmentRequest = {
    image: { config: img.config, layers: img.layerDirs },
    diskBytes: 16 << 20,
  };
  return { img, req };
}

const sh = (script: string, requestId: string) => ({ requestId, argv: ["/bin/sh", "-c", script] });

test("a warm environment and a spare bundle keep their image's layers from rm and prune until they are gone", async () => {
  const { img, req } = await importImage("localhost/leases/bb:1");
  const layer = img.layerDirs[0]!;
  const env = await runner.startEnvironment(req);
  await runner.drain(); // the image's spare bundle is prepared after the start
  assert.equal(runner.spareBundleIds().length, 1, "a spare bundle is present");
  assert.equal((await env.invoke(sh("true", "r0"))).reason, "ok");

  // another process (the CLI) sees the engine's lease: the image stays, and it says why
  const cli = await scar("image", "prune", "--all");
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(
    cli.stdout,
    new RegExp(
      `^Kept: ${img.digest} \\(in use by a running container, a warm execution environment or an image being made\\)$`,
      "m",
    ),
  );
  assert.match(cli.stdout, /^Removed 0 images, 0 blobs, 0 unpacked layers; reclaimed /m);
  assert.ok(images.find("localhost/leases/bb:1"), "the image is kept");

  // in process: the same
  const pruned = await images.prune({ all: true });
  assert.deepEqual(pruned.images, []);
  assert.deepEqual(pruned.kept.images, [img.digest]);
  // rm --force takes its name and record, not the layers under the environment
  const removed = await images.remove(["localhost/leases/bb:1"], { force: true });
  assert.deepEqual(removed.deleted, [img.digest]);
  assert.equal(removed.kept?.layers, 1, "its layer is kept: it is mounted");
  assert.ok(existsSync(join(layer, "bin/busybox")), "the layer's files are there");
  const cliRm = await scar("image", "prune");
  assert.match(
    cliRm.stdout,
    /^Kept 1 unpacked layer \(.+\) in use by a running container, a warm execution environment or an image being made: a prune after it ends removes it$/m,
  );

  // the environment still runs invocations on those layers
  const io = await env.prepareInvocation("r1");
  const r = await env.invoke(sh("ls /bin/busybox && head -1 /etc/passwd", "r1"));
  assert.equal(r.reason, "ok", r.stderr.toString());
  assert.equal(r.stdout.toString(), "/bin/busybox\nroot:x:0:0:root:/root:/bin/sh\n");
  assert.ok(existsSync(io.hostInput));
  await env.finishInvocation("r1");

  // the environment closed: the spare still has its overlay over the layer
  await env.close();
  const afterEnv = await images.prune();
  assert.equal(afterEnv.layers, 0);
  assert.equal(afterEnv.kept.layers, 1, "the spare's mount keeps it");
  assert.ok(existsSync(join(layer, "bin/busybox")));

  // the image's last function gone, its spare goes: now nothing is mounted over the layer
  await runner.dropSpareBundles(req.image.layers);
  assert.deepEqual(runner.spareBundleIds(), []);
  const last = await images.prune();
  assert.equal(last.layers, 1, "the layer goes once nothing uses it");
  assert.equal(last.kept.layers, 0);
  assert.ok(!existsSync(layer));
});

test("a run (isolation: invocation) holds the lease until its overlay is unmounted", async () => {
  const { img, req } = await importImage("localhost/leases/bb:3");
  const shared = mkdtempSync(join(work, "shared-"));
  chmodSync(shared, 0o777);
  // the run waits for the test's word, so that prune runs while it is mounted
  const run = runner.run({
    image: req.image,
    entrypoint: ["/bin/sh", "-c", "touch /w/started; while [ ! -e /w/go ]; do sleep 0.05; done"],
    mounts: [{ source: shared, destination: "/w" }],
    timeoutMs: 60_000,
  });
  await waitFor("the run to start", () => (existsSync(join(shared, "started")) ? true : undefined));
  assert.deepEqual((await images.prune({ all: true })).kept.images, [img.digest]);
  writeFileSync(join(shared, "go"), "");
  assert.equal((await run).reason, "ok");
  await runner.drain(); // its overlay is unmounted in the background
  const pruned = await images.prune({ all: true });
  assert.deepEqual(pruned.images, [img.digest], "released once its overlay is gone");
  assert.ok(!existsSync(img.layerDirs[0]!));
});

test("the runner's close releases what its environments and spares held", async () => {
  const { img, req } = await importImage("localhost/leases/bb:2");
  const env = await runner.startEnvironment(req);
  await runner.drain();
  assert.equal(runner.spareBundleIds().length, 1);
  assert.equal((await env.invoke(sh("true", "s0"))).reason, "ok");
  assert.deepEqual((await images.prune({ all: true })).kept.images, [img.digest]);
  await runner.close();
  const pruned = await images.prune({ all: true });
  assert.deepEqual(pruned.images, [img.digest]);
  assert.equal(pruned.layers, 1);
  assert.ok(!existsSync(img.layerDirs[0]!));
});

test("the engine: a prewarmed function's environment and spare keep its image; removing the function lets prune have it", async () => {
  const engine = await Engine.start({
    dataDir: join(work, "engine"),
    s3Port: 0,
    concurrency: 1,
    warmPrewarm: true,
  });
  try {
    const tag = "localhost/leases/engine:1";
    await engine.images.import(f.base, { format: "rootfs", tag, changes: ["ENV PATH=/bin"] });
    const img = engine.images.resolve(tag);
    const dir = mkdtempSync(join(work, "fdl-"));
    writeFileSync(join(dir, "script.sh"), "head -1 /etc/passwd\n");
    const yaml = `functions:\n  aws:\n  - lambda:\n      name: held\n      memory: 128\n      init_script: script.sh\n      container:\n        image: ${tag}\n`;
    await engine.deploy(parseFdl(join(dir, "fn.yaml"), yaml).functions[0]!);
    await waitFor("the environment started at deploy", () =>
      engine.environmentStats().held?.idle === 1 ? true : undefined,
    );
    await engine.runner.drain();
    assert.equal(engine.runner.spareBundleIds().length, 1, "the image's spare bundle is present");

    const pruned = await engine.images.prune({ all: true });
    assert.deepEqual(pruned.images, []);
    assert.deepEqual(pruned.kept.images, [img.digest]);
    const { job, result } = await engine.invoke("held", {}, { sync: true });
    assert.equal(job.status, "succeeded", result?.log.join("\n"));
    assert.equal(job.environment?.start, "warm");
    assert.equal(result!.output.toString(), "root:x:0:0:root:/root:/bin/sh\n");

    // the function removed: its environment closes and its image's spare goes, in the background
    await engine.remove("held");
    const removed = await engine.images.remove([tag]);
    assert.deepEqual(removed.deleted, [img.digest]);
    await waitFor("the layers to be released", async () =>
      (await engine.images.prune()).kept.layers === 0 ? true : undefined,
    );
    assert.ok(!existsSync(img.layerDirs[0]!), "pruned once nothing is mounted over it");
    assert.deepEqual(engine.runner.spareBundleIds(), []);
    assert.deepEqual(engine.runner.environmentIds(), []);
  } finally {
    await engine.close();
  }
});
