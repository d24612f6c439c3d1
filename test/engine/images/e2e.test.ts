/**
 * The seam with the runtime: an image pulled from a registry runs through engine/runtime with its
 * layer directories as overlay lowers, whiteouts applied by overlayfs, its config's Cmd/Env/WorkingDir used.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImageStore } from "../../../src/engine/images/index.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { craftTar, isRoot, tempDir } from "./helpers.js";
import { busyboxLayer, type Registry, startRegistry, uploadImage } from "./registry-harness.js";

const work = tempDir("scar-img-e2e-");
let reg: Registry;

before(async () => {
  reg = await startRegistry();
  await uploadImage(
    reg.host,
    "lab/e2e",
    "1",
    [
      await busyboxLayer(),
      craftTar([
        { name: "etc/.wh.hostname", data: "" },
        { name: "etc/added", data: "from layer 2\n" },
        { name: "work/", type: "dir" },
      ]),
    ],
    {
      config: {
        Cmd: ["/bin/sh", "-c", "echo $GREETING; pwd; cat /etc/added; ls /etc"],
        Env: ["PATH=/bin", "GREETING=hi"],
        WorkingDir: "/work",
      },
    },
  );
});
after(async () => {
  await reg?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test("a pulled image runs through the runtime with overlay lowers", {
  skip: !isRoot && "needs root",
}, async (t) => {
  const images = new ImageStore({ dataDir: join(work, "data") });
  const img = await images.ensure(`${reg.host}/lab/e2e:1`);
  assert.equal(img.overlay, true);
  let runner: Runner;
  try {
    runner = await Runner.open({ stateDir: join(work, "runtime") });
  } catch (e) {
    t.skip(`no usable container runtime here: ${(e as Error).message}`);
    return;
  }
  const release = images.lease(img);
  try {
    const r = await runner.run({ image: { config: img.config, layers: img.layerDirs }, timeoutMs: 60_000 });
    assert.equal(r.reason, "ok", `${r.stderr}`);
    assert.equal(r.stdout.toString(), "hi\n/work\nfrom layer 2\nadded\n");
  } finally {
    release();
    await runner.close();
  }
  // the run did not touch the shared layer directories
  assert.deepEqual(fs.readdirSync(join(img.layerDirs[1]!, "work")), []);
});
