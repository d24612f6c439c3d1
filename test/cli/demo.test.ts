import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";

const script = new URL("../../../scripts/demo.sh", import.meta.url).pathname;

// The README's main job with 5 images. Without SCAR_DEMO_CACHE it builds the ImageMagick image
// (debootstrap, 1-2 minutes) unless Docker Hub answers; CI sets SCAR_DEMO_CACHE to build it once.
test("the README's main job (scripts/demo.sh) runs end to end", () => {
  const r = spawnSync("bash", [script, "5"], { encoding: "utf8", timeout: 600_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /^Function 'grayify' successfully created\.$/m);
  assert.match(r.stdout, /^5 of 5 results in scar-demo\/output$/m);
  assert.match(r.stdout, /^5 of 5 results are grayscale images/m);
  assert.match(r.stdout, /^FILE +STATUS +WAITED +CONTAINER +QUEUED->DONE$/m);
  const rows = r.stdout.match(/^img-0[1-5]\.ppm +succeeded +\d+ +\d+ +\d+$/gm) ?? [];
  assert.equal(rows.length, 5, out);
  assert.match(r.stdout, /^files: 5, 5 succeeded$/m);
  assert.match(r.stdout, /^throughput: [\d.]+ files\/s$/m);
  assert.match(r.stdout, /^per file, queued->done: p50 \d+ ms/m);
  assert.match(r.stdout, /^Converting \/tmp\/[0-9a-f-]{36}\/input\/img-01\.ppm to grayscale/m);
  assert.match(r.stdout, /^END RequestId: [0-9a-f-]{36}$/m);
  assert.match(r.stdout, /^stopped$/m);
  // the temporary folder (scar.cfg, the engine's data) is gone, and its engine with it
  const work = /data folder (\/tmp\/scar-demo\.[^/]+)\/data/.exec(out)?.[1]; // on stderr
  assert.ok(work, out);
  assert.equal(existsSync(work), false, `${work} was left behind`);
});
