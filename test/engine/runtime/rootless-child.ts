/**
 * Run by rootless.test.ts as an ordinary user (nobody): imports a two-layer image into a data folder
 * of its own (the way a rootless engine unpacks it), then runs containers with crun and runc through
 * the Runner, and prints what it saw as one JSON object for the test to judge. Not a test file itself.
 *
 *   node rootless-child.js <work folder (nobody's)> <archive>
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ImageStore } from "../../../src/engine/images/index.js";
import { Runner, type RunResult } from "../../../src/engine/runtime/index.js";
import { hostProcesses } from "./fixtures.js";

const [work, archive] = process.argv.slice(2) as [string, string];

const brief = (r: RunResult) => ({
  reason: r.reason,
  exitCode: r.exitCode,
  rootfs: r.rootfs,
  stdout: r.stdout.toString(),
  stderr: r.stderr.toString(),
  message: r.message,
});

const images = new ImageStore({ dataDir: join(work, "data") });
const imported = await images.import(archive, {
  format: "docker-archive",
  tag: "localhost/rootless/layers:1",
});
const img = images.resolve("localhost/rootless/layers:1");
const top = img.layerDirs[img.layerDirs.length - 1]!;
const report: Record<string, unknown> = {
  imported: imported.images.length,
  overlay: img.overlay,
  topLayerSuidMode: statSync(join(top, "bin/suid")).mode & 0o7777,
  runtimes: {},
};
for (const runtime of ["crun", "runc"] as const) {
  const runner = await Runner.open({ stateDir: join(work, `state-${runtime}`), runtime });
  const out = join(work, `out-${runtime}`);
  await mkdir(out);
  const input = join(work, `in-${runtime}`);
  await mkdir(input);
  writeFileSync(join(input, "data.txt"), "input data\n");
  const image = { config: img.config, layers: img.layerDirs };
  const seen = await runner.run({
    image,
    cmd: [
      "/bin/sh",
      "-c",
      "id -u; cat /etc/issue 2>/dev/null || echo no-issue; ls /opq; cat /etc/motd; cat /in/data.txt; echo made > /out/result.txt; echo rootfs > /written",
    ],
    mounts: [
      { source: input, destination: "/in", readonly: true },
      { source: out, destination: "/out" },
    ],
    // asked for, but not held rootless (no delegated cgroup, no loop disks): the run still goes
    limits: { memoryBytes: 64 << 20, pids: 64 },
    diskBytes: 64 << 20,
  });
  // the limits as the container's own cgroup holds them (only with a delegated cgroup); that the
  // kernel then OOM-kills at the memory limit, rootless-engine.test.ts checks
  const hog = await runner.run({
    image,
    cmd: ["/bin/sh", "-c", "cd /sys/fs/cgroup && cat memory.max pids.max cpu.max 2>/dev/null; true"],
    limits: { memoryBytes: 32 << 20, pids: 16, cpus: 0.5 },
  });
  const marker = `98${runtime === "crun" ? 71 : 72}3`;
  const timeout = await runner.run({
    image,
    cmd: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker} & echo started; wait`],
    timeoutMs: 1500,
    graceMs: 0,
  });
  const leftAfterTimeout = hostProcesses(`sleep ${marker}`, { skipSelf: true });
  // a killed helper (and its user namespace) is replaced by the next run's
  const helper = runner.runtime.host.namespace!;
  const oldHelper = helper.pid;
  process.kill(oldHelper, "SIGKILL");
  while (helper.alive) await new Promise((r) => setTimeout(r, 10));
  const afterKill = await runner.run({ image, cmd: ["/bin/sh", "-c", "id -u; cat /etc/motd"] });
  const newHelper = helper.pid;
  await runner.drain();
  const runsLeft = [...readdirSync(runner.runsDir), ...readdirSync(runner.trashDir)];
  const info = runner.info;
  await runner.close();
  (report.runtimes as Record<string, unknown>)[runtime] = {
    info: {
      runtime: info.runtime,
      rootfs: info.rootfs,
      userxattr: info.overlay.userxattr ?? false,
      disk: info.disk,
      mapping: info.rootless?.mapping,
      limits: info.rootlessLimits?.held ?? [],
      why: info.rootlessLimits?.why,
    },
    seen: brief(seen),
    hog: brief(hog),
    output: {
      text: readFileSync(join(out, "result.txt"), "utf8"),
      uid: statSync(join(out, "result.txt")).uid,
    },
    timeout: brief(timeout),
    afterHelperKill: { ...brief(afterKill), newHelper: newHelper !== oldHelper },
    leftAfterTimeout,
    runsLeft,
  };
}
// the copy fallback (no overlay): the same view of the image, whiteouts and opaque folder applied
const copier = await Runner.open({ stateDir: join(work, "state-copy"), rootfs: "copy" });
const copied = await copier.run({
  image: { config: img.config, layers: img.layerDirs },
  cmd: ["/bin/sh", "-c", "id -u; cat /etc/issue 2>/dev/null || echo no-issue; ls /opq; cat /etc/motd"],
});
await copier.drain();
report.copy = {
  ...brief(copied),
  runsLeft: [...readdirSync(copier.runsDir), ...readdirSync(copier.trashDir)],
};
await copier.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
