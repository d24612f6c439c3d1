/**
 * Run by rootless-rootfs.test.ts as an ordinary user: imports an image whose tars own files by 0,
 * 1000 and 65534 into a data folder of its own, gives the layers their owners the way the engine does
 * (LayerOwners: only with subordinate ranges), runs `stat` in a crun container, then removes the image
 * and prunes (layers given to subordinate ids are deleted in a user namespace). Prints one JSON object.
 *
 *   node rootless-rootfs-child.js <work folder (the user's)> <archive>
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../../src/engine/images/index.js";
import { foreignAccess, LayerOwners } from "../../../src/engine/layer-owners.js";
import { Runner, rootlessMode } from "../../../src/engine/runtime/index.js";

const [work, archive] = process.argv.slice(2) as [string, string];
const ref = "localhost/rootless/owners:1";
const images = new ImageStore({ dataDir: join(work, "data"), ...foreignAccess(rootlessMode()) });
await images.import(archive, { format: "docker-archive", tag: ref });
const img = images.resolve(ref);
const [base, top] = img.layerDirs as [string, string];
const recorded = img.chainIds.map((c) => images.store.getLayer(c)?.owners);
const runner = await Runner.open({ stateDir: join(work, "state"), runtime: "crun" });
const logged: string[] = [];
await new LayerOwners(images, runner, (m) => logged.push(m)).give(img);
const paths = [
  "/etc/rootfile",
  "/home/app",
  "/home/app/data",
  "/home/app/new",
  "/srv/nobody",
  "/srv/link",
  "/bin/suid",
  "/bin/sgid",
];
const seen = await runner.run({
  image: { config: img.config, layers: img.layerDirs },
  cmd: ["/bin/sh", "-c", `stat -c '%n %u %g %a' ${paths.join(" ")}`],
});
// fuse-overlayfs (forced: this kernel mounts overlay in a user namespace), when it can run here:
// the same owners, and a container user other than root gets in (allow_other)
let fuse: Record<string, unknown> | undefined;
if (process.env.SCAR_TEST_FUSE === "1") {
  const fr = await Runner.open({
    stateDir: join(work, "state-fuse"),
    runtime: "crun",
    rootfs: "fuse-overlayfs",
  });
  const asRoot = await fr.run({
    image: { config: img.config, layers: img.layerDirs },
    cmd: [
      "/bin/sh",
      "-c",
      `stat -c '%n %u %g %a' ${paths.join(" ")}; grep -q fuse-overlayfs /proc/self/mountinfo && echo fuse-root; echo w > /written && cat /written`,
    ],
  });
  const asApp = await fr.run({
    image: { config: img.config, layers: img.layerDirs },
    user: "1000:1000",
    cmd: ["/bin/sh", "-c", "id -u; cat /home/app/data"],
  });
  await fr.drain();
  fuse = {
    overlay: fr.info.overlay,
    rootfs: fr.info.rootfs,
    root: { reason: asRoot.reason, stdout: asRoot.stdout.toString(), stderr: asRoot.stderr.toString() },
    app: { reason: asApp.reason, stdout: asApp.stdout.toString(), stderr: asApp.stderr.toString() },
    runsLeft: [...readdirSync(fr.runsDir), ...readdirSync(fr.trashDir)],
  };
  await fr.close();
}
const hostUid = (p: string) => lstatSync(p).uid;
const report = {
  mapping: runner.info.rootless?.mapping,
  ownersKey: runner.ownersKey,
  recorded,
  mapped: img.chainIds.map((c) => images.store.getLayer(c)?.ownersMapped),
  logged,
  reason: seen.reason,
  stdout: seen.stdout.toString(),
  stderr: seen.stderr.toString(),
  host: {
    user: process.getuid!(),
    "home/app": hostUid(join(base, "home/app")),
    "srv/nobody": hostUid(join(top, "srv/nobody")),
    "etc/rootfile": hostUid(join(top, "etc/rootfile")),
    suidMode: lstatSync(join(top, "bin/suid")).mode & 0o7777,
  },
  layersLeft: [] as string[],
  fuse,
};
await runner.close();
await images.remove([ref]);
await images.prune({ all: true });
report.layersLeft = readdirSync(join(work, "data/images/layers"));
process.stdout.write(`${JSON.stringify(report)}\n`);
