/**
 * Run by rootless-rootfs.test.ts as an ordinary user with subordinate ranges: `scar image import`s
 * two images that share their first layer (the second writes under its closed /home/app), each given
 * its owners the way the engine gives them before its first container (LayerOwners), then `scar image
 * rm` of the first and `scar image prune`, a container of the second, and `scar image prune --all`. Prints one JSON object: the layer folders after each prune, what ran, the CLI's outputs.
 *
 *   node rootless-prune-child.js <work folder (the user's)> <scar> <first archive> <second archive>
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore } from "../../../src/engine/images/index.js";
import { foreignAccess, LayerOwners } from "../../../src/engine/layer-owners.js";
import { Runner, rootlessMode } from "../../../src/engine/runtime/index.js";

const [work, scar, first, second] = process.argv.slice(2) as [string, string, string, string];
const dataDir = join(work, "data");
const cli = (...args: string[]) => execFileSync(scar, [...args, "--data-dir", dataDir], { encoding: "utf8" });
const layers = () => readdirSync(join(dataDir, "images/layers")).sort();

const runner = await Runner.open({ stateDir: join(work, "state"), runtime: "crun" });
/** gives an image's layers their owners, as the engine does before its first container */
async function give(ref: string) {
  const images = new ImageStore({ dataDir, ...foreignAccess(rootlessMode()) });
  const img = images.resolve(ref);
  await new LayerOwners(images, runner).give(img);
  return { chainIds: img.chainIds, config: img.config, layerDirs: img.layerDirs };
}
cli("image", "import", first, "-t", "localhost/prune/first:1");
const one = await give("localhost/prune/first:1");
cli("image", "import", second, "-t", "localhost/prune/second:1");
const two = await give("localhost/prune/second:1");
const before = layers();
const rm = cli("image", "rm", "localhost/prune/first:1");
const prune = cli("image", "prune");
const afterFirst = layers();
const run = await runner.run({
  image: { config: two.config, layers: two.layerDirs },
  cmd: ["/bin/sh", "-c", "stat -c '%n %u %g %a' /home/app/data /home/app/later; cat /home/app/linked"],
});
await runner.close();
const pruneAll = cli("image", "prune", "--all", "--json");
process.stdout.write(
  `${JSON.stringify({
    mapping: runner.info.rootless?.mapping,
    first: one.chainIds,
    second: two.chainIds,
    before,
    rm,
    prune,
    afterFirst,
    run: { reason: run.reason, stdout: run.stdout.toString(), stderr: run.stderr.toString() },
    pruneAll: JSON.parse(pruneAll),
    afterAll: layers(),
  })}\n`,
);
