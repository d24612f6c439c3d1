import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { busyboxRootfs } from "../engine/images/helpers.js";
import { NOBODY, nobodyEnv, nobodyRoot, rootlessSkip } from "../engine/rootless-harness.js";

const script = new URL("../../../scripts/demo.sh", import.meta.url).pathname;

// A stand-in for ImageMagick's `convert IN -type Grayscale OUT` on the demo's plain PPMs (P3): it
// writes a binary PPM (P6) whose pixels have R = G = B, the demo's check. Busybox's awk writes
// bytes 0-255 with %c.
const CONVERT = `#!/bin/sh
in="$1"; for a in "$@"; do out="$a"; done
awk '{ for (i = 1; i <= NF; i++) { n++
  if (n == 1) continue
  if (n == 2) { w = $i; continue }
  if (n == 3) { h = $i; continue }
  if (n == 4) { printf "P6\\n%d %d\\n255\\n", w, h; continue }
  k = (n - 5) % 3; v[k] = $i
  if (k == 2) { g = int((v[0] * 299 + v[1] * 587 + v[2] * 114) / 1000); printf "%c%c%c", g, g, g } } }' "$in" >"$out"
`;

const dir = mkdtempSync(join(tmpdir(), "scar-demo-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// The README's main job with 5 images and a small image: a busybox root file system with the
// stand-in above instead of ImageMagick (whose image the demo builds with debootstrap, minutes:
// CI runs that once, in `npm run demo`). Everything else is the demo's own path: scar init, put,
// the engine's triggers and containers, ls -b, get, jobs, log, engine stop.
test("the README's main job (scripts/demo.sh) runs end to end", () => {
  const rootfs = join(dir, "rootfs");
  busyboxRootfs(rootfs, ["sh", "awk", "basename", "echo", "cat"]);
  mkdirSync(join(rootfs, "usr/bin"), { recursive: true });
  writeFileSync(join(rootfs, "usr/bin/convert"), CONVERT);
  chmodSync(join(rootfs, "usr/bin/convert"), 0o755);
  const r = spawnSync("bash", [script, "5"], {
    encoding: "utf8",
    timeout: 600_000,
    env: { ...process.env, SCAR_DEMO_ROOTFS: rootfs },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /^using the root file system in .* as grycap\/imagemagick/m);
  assert.match(r.stdout, /^Function 'grayify' successfully created\.$/m);
  assert.match(r.stdout, /^the dashboard, while the demo runs: http:\/\/127\.0\.0\.1:\d+\/ui\/ /m);
  assert.match(r.stdout, /^5 of 5 results in scar-demo\/output$/m);
  assert.match(r.stdout, /^5 of 5 results are grayscale images/m);
  assert.match(r.stdout, /^FILE +STATUS +WAITED +CONTAINER +QUEUED->DONE$/m);
  const rows = r.stdout.match(/^img-0[1-5]\.ppm +succeeded +\d+ +\d+ +\d+$/gm) ?? [];
  assert.equal(rows.length, 5, out);
  assert.match(r.stdout, /^files: 5, 5 succeeded$/m);
  assert.match(r.stdout, /^throughput: [\d.]+ files\/s$/m);
  assert.match(r.stdout, /^per file, queued->done: p50 \d+ ms/m);
  assert.match(r.stdout, /^5 of 5 results in scar-demo-isolated\/output$/m);
  assert.match(
    r.stdout,
    /^5 conversions: [\d.]+ s in warm environments, [\d.]+ s with a container per image: speed-up [\d.]+x$/m,
  );
  assert.match(r.stdout, /^Converting \/tmp\/[0-9a-f-]{36}\/input\/img-01\.ppm to grayscale/m);
  assert.match(r.stdout, /^END RequestId: [0-9a-f-]{36}$/m);
  assert.match(r.stdout, /^stopped$/m);
  // the temporary folder (scar.cfg, the engine's data) is gone, and its engine with it
  const work = /data folder (\/tmp\/scar-demo\.[^/]+)\/data/.exec(out)?.[1]; // on stderr
  assert.ok(work, out);
  assert.equal(existsSync(work), false, `${work} was left behind`);
});

// The same main job as an ordinary user (nobody), once the packages are there: no sudo anywhere, the
// engine started by `scar init` runs rootless, and the job's log printed by the demo says so.
const skipRootless = rootlessSkip();
const place = skipRootless ? undefined : nobodyRoot("scar-demo-rootless-");
after(() => place?.cleanup());

test("the main job runs as an ordinary user, rootless, without sudo", { skip: skipRootless }, () => {
  const home = place!.dir("home");
  const rootfs = join(place!.root, "rootfs");
  busyboxRootfs(rootfs, ["sh", "awk", "basename", "echo", "cat"]);
  mkdirSync(join(rootfs, "usr/bin"), { recursive: true });
  writeFileSync(join(rootfs, "usr/bin/convert"), CONVERT);
  chmodSync(join(rootfs, "usr/bin/convert"), 0o755);
  const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), "bash", script, "3"], {
    encoding: "utf8",
    timeout: 600_000,
    cwd: home,
    // nobody may not sudo and has no terminal to ask a password on: a step that wanted it would fail
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...nobodyEnv(home), SCAR_DEMO_ROOTFS: rootfs },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /^3 of 3 results are grayscale images/m);
  assert.match(r.stdout, /WARNING - rootless: no memory, pids or cpu limits/);
  assert.match(r.stdout, /^stopped$/m);
});
