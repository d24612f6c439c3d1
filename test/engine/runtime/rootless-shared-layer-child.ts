/**
 * Run by rootless-rootfs.test.ts as an ordinary user with subordinate ranges: imports ownersArchive,
 * gives its layers their owners (its /home/app becomes uid 1000's of the namespace, 0750: closed to
 * the user outside it), then imports an image sharing that first layer whose second layer writes under
 * /home/app, gives its owners too, and runs `stat` and `cat` in a crun container of it; then removes
 * both images and prunes. Prints one JSON object.
 *
 *   node rootless-shared-layer-child.js <work folder (the user's)> <first archive> <second archive>
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../../src/engine/images/index.js";
import { foreignAccess, LayerOwners } from "../../../src/engine/layer-owners.js";
import { Runner, rootlessMode } from "../../../src/engine/runtime/index.js";

const [work, first, second] = process.argv.slice(2) as [string, string, string];
const images = new ImageStore({ dataDir: join(work, "data"), ...foreignAccess(rootlessMode()) });
const runner = await Runner.open({ stateDir: join(work, "state"), runtime: "crun" });
const owners = new LayerOwners(images, runner);
await images.import(first, { format: "docker-archive", tag: "localhost/rootless/first:1" });
const one = images.resolve("localhost/rootless/first:1");
await owners.give(one);
const report: Record<string, unknown> = { mapping: runner.info.rootless?.mapping };
try {
  await images.import(second, { format: "docker-archive", tag: "localhost/rootless/second:1" });
  const two = images.resolve("localhost/rootless/second:1");
  report.shared = two.chainIds[0] === one.chainIds[0];
  report.recorded = images.store.getLayer(two.chainIds[1]!)?.owners;
  await owners.give(two);
  const paths = [
    "/home/app",
    "/home/app/data",
    "/home/app/later",
    "/home/app/sub",
    "/home/app/sub/deep",
    "/home/app/linked",
  ];
  const r = await runner.run({
    image: { config: two.config, layers: two.layerDirs },
    cmd: [
      "/bin/sh",
      "-c",
      `stat -c '%n %u %g %a' ${paths.join(" ")}; cat /home/app/linked /home/app/sub/deep; ls -a /home/app`,
    ],
  });
  report.run = { reason: r.reason, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
} catch (e) {
  report.error = (e as Error).message;
}
await runner.close();
await images.remove(["localhost/rootless/first:1"]);
await images.remove(["localhost/rootless/second:1"]).catch(() => {});
await images.prune({ all: true });
report.layersLeft = readdirSync(join(work, "data/images/layers"));
process.stdout.write(`${JSON.stringify(report)}\n`);
