/**
 * Image pull + unpack from a registry on loopback, side by side in one run (no assertions):
 *
 *   scar        ImageStore.pull() into an empty store: manifest, config, layer downloads, safe unpack
 *   scar-cli    `scar image pull` as a process (node start-up included)
 *   peer        `skopeo copy docker://… oci:DIR` + `umoci unpack --image DIR BUNDLE`
 *   warm        a second scar pull of the same image (downloads nothing) vs a second skopeo copy
 *
 * Images (built here, pushed to a docker-registry started here): busybox (2 MB rootfs, one layer)
 * and "python" (/usr/lib/python3.11 of this host split in two layers, ~50 MB, thousands of files).
 * Usage: node dist/bench/images.js [rounds=5]. Prints medians and the ratio scar / peer (goal <= 1.2).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ImageStore } from "../src/engine/images/index.js";
import { tarDirectory } from "../src/engine/images/tarwriter.js";
import { hasCommand, tempDir } from "../test/engine/images/helpers.js";
import { busyboxLayer, startRegistry, uploadImage } from "../test/engine/images/registry-harness.js";

const ROUNDS = Number(process.argv[2] ?? 5);
const bin = new URL("../../bin/scar", import.meta.url).pathname;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

async function tarOf(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of tarDirectory(dir)) parts.push(c);
  return Buffer.concat(parts);
}

async function main() {
  const work = tempDir("scar-bench-img-");
  const reg = await startRegistry();
  try {
    const images: { name: string; ref: string }[] = [];
    await uploadImage(reg.host, "bench/busybox", "1", [await busyboxLayer()]);
    images.push({ name: "busybox", ref: `${reg.host}/bench/busybox:1` });
    const py = "/usr/lib/python3.11";
    if (fs.existsSync(py)) {
      // two layers: the stdlib without its test suites, then the test suites
      const a = join(work, "py-a");
      const b = join(work, "py-b");
      fs.cpSync(py, join(a, "usr/lib/python3.11"), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (s) => !s.includes("/test"),
      });
      fs.cpSync(py, join(b, "usr/lib/python3.11"), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (s) =>
          s === py || !s.startsWith(`${py}/`) || s.includes("/test") || fs.statSync(s).isDirectory(),
      });
      const layers = [await tarOf(a), await tarOf(b)];
      await uploadImage(reg.host, "bench/python", "1", layers, { gzip: true });
      images.push({ name: "python", ref: `${reg.host}/bench/python:1` });
      const total = layers.reduce((x, l) => x + l.length, 0);
      const gz = layers.map((l) => gzipSync(l).length).reduce((x, y) => x + y, 0);
      process.stdout.write(
        `python image: ${(total / 1e6).toFixed(0)} MB of tar, ${(gz / 1e6).toFixed(0)} MB gzipped\n`,
      );
    }
    const peer = hasCommand("skopeo") && hasCommand("umoci");
    if (!peer) process.stdout.write("skopeo or umoci missing (scripts/install-deps.sh): peer not measured\n");
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;

    for (const img of images) {
      const t = {
        scar: [] as number[],
        cli: [] as number[],
        peer: [] as number[],
        warm: [] as number[],
        peerWarm: [] as number[],
      };
      for (let i = 0; i < ROUNDS; i++) {
        const d = join(work, `r${i}-${img.name}`);
        fs.mkdirSync(d);
        let t0 = performance.now();
        const store = new ImageStore({ dataDir: join(d, "scar") });
        await store.pull(img.ref);
        t.scar.push(performance.now() - t0);
        t0 = performance.now();
        await store.pull(img.ref);
        t.warm.push(performance.now() - t0);

        t0 = performance.now();
        const r = spawnSync(bin, ["image", "pull", "--data-dir", join(d, "cli"), img.ref], {
          env,
          stdio: "ignore",
        });
        if (r.status !== 0) throw new Error("scar image pull failed");
        t.cli.push(performance.now() - t0);

        if (peer) {
          const skopeoCopy = () =>
            run("skopeo", [
              "copy",
              "--quiet",
              "--src-tls-verify=false",
              `docker://${img.ref}`,
              `oci:${join(d, "oci")}:1`,
            ]);
          t0 = performance.now();
          skopeoCopy();
          run("umoci", ["unpack", "--image", `${join(d, "oci")}:1`, join(d, "bundle")]);
          t.peer.push(performance.now() - t0);
          t0 = performance.now();
          skopeoCopy();
          t.peerWarm.push(performance.now() - t0);
        }
        fs.rmSync(d, { recursive: true, force: true });
      }
      const f = (x: number) => `${x.toFixed(0)} ms`;
      process.stdout.write(`\n${img.name} (median of ${ROUNDS}):\n`);
      process.stdout.write(`  scar pull+unpack (library)   ${f(median(t.scar))}\n`);
      process.stdout.write(`  scar image pull (process)    ${f(median(t.cli))}\n`);
      if (peer) {
        process.stdout.write(`  skopeo copy + umoci unpack   ${f(median(t.peer))}\n`);
        process.stdout.write(
          `  ratio scar/peer              ${(median(t.scar) / median(t.peer)).toFixed(2)} (process: ${(median(t.cli) / median(t.peer)).toFixed(2)}; goal <= 1.2)\n`,
        );
      }
      process.stdout.write(`  second pull: scar ${f(median(t.warm))} (no blob downloaded)`);
      process.stdout.write(peer ? `, skopeo copy again ${f(median(t.peerWarm))}\n` : "\n");
    }
  } finally {
    await reg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
