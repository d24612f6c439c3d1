/**
 * Run by rootless-rootfs.test.ts as an ordinary user, twice on one state folder: `crash` opens a
 * runner on fuse-overlayfs, starts a container that sleeps, and kills itself (SIGKILL) once the
 * container runs, leaving its fuse-overlayfs daemon behind; `reopen` opens a runner there again and
 * prints (JSON) the daemons left before and after, and whether a run works. (The sweep deletes the
 * dead run's folder; deleting a mount point unmounts what other namespaces mounted on it, and the
 * daemon, its FUSE mount gone, exits.)
 *
 *   node rootless-fuse-crash-child.js crash|reopen <work folder> <archive>
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../../src/engine/images/index.js";
import { Runner } from "../../../src/engine/runtime/index.js";
import { hostProcesses } from "./fixtures.js";

const [mode, work, archive] = process.argv.slice(2) as [string, string, string];
const ref = "localhost/rootless/fuse:1";
const images = new ImageStore({ dataDir: join(work, "data") });
if (mode === "crash") await images.import(archive, { format: "docker-archive", tag: ref });
const img = images.resolve(ref);
const image = { config: img.config, layers: img.layerDirs };
const stateDir = join(work, "state");
if (mode === "crash") {
  const runner = await Runner.open({ stateDir, runtime: "crun", rootfs: "fuse-overlayfs" });
  void runner.run({ image, cmd: ["/bin/sh", "-c", "sleep 98751"], timeoutMs: 600_000 });
  for (let i = 0; hostProcesses("sleep 98751", { skipSelf: true }).length === 0; i++) {
    if (i > 3000) throw new Error("the container did not start");
    await new Promise((r) => setTimeout(r, 10));
  }
  process.kill(process.pid, "SIGKILL");
}
/** fuse-overlayfs daemons serving overlays under this state folder */
const daemons = () =>
  hostProcesses("fuse-overlayfs", { skipZombies: true }).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`${stateDir}/runs/`);
    } catch {
      return false;
    }
  });
const before = daemons();
const runner = await Runner.open({ stateDir, runtime: "crun", rootfs: "fuse-overlayfs" });
// (the sweep's deletions happen in the background: wait for them)
await runner.drain();
// the daemon exits once told its mount is gone: give it up to 10 s
for (let i = 0; i < 1000 && daemons().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
const after = daemons();
const r = await runner.run({ image, cmd: ["/bin/sh", "-c", "cat /home/app/data"] });
await runner.close();
process.stdout.write(
  `${JSON.stringify({
    before: before.length,
    after: after.length,
    sleepers: hostProcesses("sleep 98751", { skipSelf: true }).length,
    reason: r.reason,
    stdout: r.stdout.toString(),
  })}\n`,
);
