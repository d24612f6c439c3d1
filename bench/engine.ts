/**
 * The engine end to end, next to its peers in the same run (no assertions; ratios printed):
 *
 *   latency     upload -> output object for one small file on an idle engine (p50/p95), through the
 *               S3 API, the commit hook, the job queue, the supervisor and a crun/runc container
 *   throughput  N tiny files uploaded at once (by a worker thread, as another process would) through
 *               the same trivial script, with the engine's concurrency = cores; peers:
 *               - the same script over the same files on the host with `xargs -P <cores>` (no
 *                 isolation, no staging, no queue): the budget's reference
 *               - the floor of per-file isolation: `xargs -P <cores>` running one bare `crun|runc run`
 *                 per file (the same image folder read-only, the same namespaces and limits, input and
 *                 output bind-mounted; bundles written before the clock starts, nothing cleaned up)
 *
 * Budgets (DESIGN.md): latency p50 <= 60 ms; throughput >= 100 files/s and >= 0.6x xargs -P.
 * Usage: node dist/bench/engine.js [files=1000] [latency samples=30]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../src/engine/engine.js";
import { Runner } from "../src/engine/runtime/index.js";
import { buildSpec } from "../src/engine/runtime/spec.js";
import { parseFdl } from "../src/fdl/index.js";
import type { UploadJob } from "./lib/upload-worker.js";

const FILES = Number(process.argv[2] ?? 1000);
const SAMPLES = Number(process.argv[3] ?? 30);
const CORES = availableParallelism();
const SCRIPT = 'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").n"\n';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

function visible(engine: Engine, bucket: string, key: string): boolean {
  try {
    engine.store.backend.head(bucket, key);
    return true;
  } catch {
    return false;
  }
}

const root = mkdtempSync(join(tmpdir(), "scar-bench-engine-"));
try {
  // A busybox root file system as the function's image.
  const rootfs = join(root, "rootfs");
  for (const d of ["bin", "tmp", "proc", "dev", "sys", "etc"])
    mkdirSync(join(rootfs, d), { recursive: true });
  execFileSync("cp", ["/bin/busybox", join(rootfs, "bin/busybox")]);
  for (const a of execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n")) {
    if (a && a !== "busybox") execFileSync("ln", ["-sf", "busybox", join(rootfs, "bin", a)]);
  }
  const engine = await Engine.start({
    dataDir: join(root, "data"),
    s3Port: 0,
    concurrency: CORES,
  });
  await engine.images.import(rootfs, {
    format: "rootfs",
    tag: "localhost/bench/busybox:1",
    changes: ["ENV PATH=/bin"],
  });
  const fdlDir = join(root, "fdl");
  mkdirSync(fdlDir);
  writeFileSync(join(fdlDir, "count.sh"), SCRIPT);
  const yaml = (name: string, b: string) =>
    `functions:\n  oscar:\n  - local:\n      name: ${name}\n      image: localhost/bench/busybox:1\n      script: count.sh\n      memory: 128Mi\n      input:\n      - path: ${b}/in\n      output:\n      - path: ${b}/out\n`;
  for (const [name, b] of [
    ["lat", "lat"],
    ["tput", "tput"],
  ]) {
    const text = yaml(name!, b!);
    await engine.deploy(parseFdl(join(fdlDir, `${name}.yaml`), text).functions[0]!);
  }
  const c = engine.credentials.s3;
  const s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: c,
  });

  // Latency: one file at a time on an idle engine.
  const lat: number[] = [];
  for (let i = 0; i < SAMPLES + 3; i++) {
    const key = `in/l${i}.txt`;
    const t0 = performance.now();
    await s3.send(new PutObjectCommand({ Bucket: "lat", Key: key, Body: "x" }));
    // Watch for the output in process (a HEAD through the SDK every few ms would add its own cost).
    while (!visible(engine, "lat", `out/l${i}.txt.n`)) await new Promise((r) => setTimeout(r, 1));
    if (i >= 3) lat.push(performance.now() - t0); // the first runs warm up caches
  }

  // Throughput: FILES tiny files at once, uploaded by another thread.
  const t0 = performance.now();
  const upload: UploadJob = {
    endpoint: engine.store.url,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    bucket: "tput",
    prefix: "in/t",
    count: FILES,
    inFlight: 16,
  };
  const uploaded = new Promise<number>((resolve, reject) => {
    const w = new Worker(new URL("./lib/upload-worker.js", import.meta.url), { workerData: upload });
    w.once("message", resolve);
    w.once("error", reject);
  });
  for (;;) {
    const counts = engine.jobs.counts("tput").tput;
    if (counts && counts.succeeded + counts.failed + counts.dead >= FILES) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const uploadSecs = await uploaded;
  const engineSecs = (performance.now() - t0) / 1000;
  const failed =
    (engine.jobs.counts("tput").tput?.failed ?? 0) + (engine.jobs.counts("tput").tput?.dead ?? 0);
  s3.destroy();
  await engine.close();

  // Peer: the same script over the same number of files, on the host, xargs -P cores.
  const hostDir = join(root, "host");
  mkdirSync(join(hostDir, "in"), { recursive: true });
  mkdirSync(join(hostDir, "out"));
  for (let i = 0; i < FILES; i++) writeFileSync(join(hostDir, "in", `t${i}.txt`), `file ${i}`);
  writeFileSync(
    join(hostDir, "count.sh"),
    `INPUT_FILE_PATH="$1" TMP_OUTPUT_DIR="${join(hostDir, "out")}"\n${SCRIPT}`,
  );
  const h0 = performance.now();
  execFileSync("sh", ["-c", `ls in/*.txt | xargs -P ${CORES} -n 1 sh count.sh`], { cwd: hostDir });
  const hostSecs = (performance.now() - h0) / 1000;

  // Floor: one bare runtime run per file, xargs -P cores, in a runner's namespace (the hybrid-cgroup
  // workaround) with its runtime, the image's folder as a read-only root.
  const floor = await bareRuntimeFloor(rootfs, hostDir);
  const engineRate = FILES / engineSecs;
  const hostRate = FILES / hostSecs;
  const floorRate = FILES / floor.secs;
  console.log(`engine: ${CORES} cores, busybox image, script: ${SCRIPT.trim()}`);
  console.log(
    `  upload -> output latency, idle engine (${SAMPLES} samples): p50 ${pct(lat, 0.5).toFixed(1)} ms, p95 ${pct(lat, 0.95).toFixed(1)} ms   (budget p50 <= 60 ms)`,
  );
  console.log(
    `  ${FILES} tiny files, engine:          ${engineSecs.toFixed(2)} s = ${engineRate.toFixed(1)} files/s${failed ? ` (${failed} failed)` : ""}   (budget >= 100 files/s)`,
  );
  console.log(
    `  ${FILES} tiny files, xargs -P ${CORES} (peer): ${hostSecs.toFixed(2)} s = ${hostRate.toFixed(1)} files/s`,
  );
  console.log(
    `  ${FILES} tiny files, xargs -P ${CORES} bare ${floor.runtime} run (floor): ${floor.secs.toFixed(2)} s = ${floorRate.toFixed(1)} files/s${floor.failed ? ` (${floor.failed} failed)` : ""}`,
  );
  console.log(
    `  ratio engine/xargs: ${(engineRate / hostRate).toFixed(2)}x   (budget >= 0.6x); engine/floor: ${(engineRate / floorRate).toFixed(2)}x; floor/xargs: ${(floorRate / hostRate).toFixed(2)}x`,
  );
  console.log(`  (uploads of the ${FILES} files took ${uploadSecs.toFixed(2)} s of the engine's time)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}

/**
 * `xargs -P cores` over FILES bundles, each a bare `run` of the runtime with the same namespaces and
 * memory limit as the engine's containers, the image folder as read-only root, `in` and `out` of
 * `hostDir` bind-mounted (inputs from the host peer's run; outputs to a fresh folder).
 */
async function bareRuntimeFloor(
  rootfs: string,
  hostDir: string,
): Promise<{ runtime: string; secs: number; failed: number }> {
  const runner = await Runner.open({ stateDir: join(root, "floor-state") });
  try {
    const out = join(hostDir, "floor-out");
    mkdirSync(out);
    const bundles = join(root, "floor");
    const lines: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const bundle = join(bundles, String(i));
      mkdirSync(bundle, { recursive: true });
      const spec = buildSpec({
        rootfs,
        config: { Env: ["PATH=/bin"] },
        request: {
          cmd: ["/bin/sh", "-c", `wc -c < /in/t${i}.txt > /out/t${i}.txt.n`],
          mounts: [
            { source: join(hostDir, "in"), destination: "/in", readonly: true },
            { source: out, destination: "/out" },
          ],
          limits: { memoryBytes: 128 * 1024 * 1024 },
        },
        user: { uid: 0, gid: 0, additionalGids: [], home: "/root" },
        host: { nofileHard: 1024, swapAccounting: false, cgroupsPath: `${runner.cgroupParent}/f${i}` },
      });
      (spec.root as { readonly: boolean }).readonly = true;
      writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
      const argv = runner.runtime.runArgv({
        bundle,
        id: `floor-${i}`,
        pidFile: join(bundle, "pid"),
        logFile: join(bundle, "log"),
      });
      lines.push(argv.slice(1).join(" "));
    }
    writeFileSync(join(bundles, "args"), `${lines.join("\n")}\n`);
    const cmd = runner.runtime.host.command("sh", [
      "-c",
      `xargs -P ${CORES} -L 1 ${runner.runtime.binary} < ${join(bundles, "args")} > /dev/null`,
    ]);
    const t = performance.now();
    spawnSync(cmd.file, cmd.args, { stdio: "ignore" });
    const secs = (performance.now() - t) / 1000;
    const done = execFileSync("sh", ["-c", `ls ${out} | wc -l`], { encoding: "utf8" });
    return { runtime: runner.info.runtime, secs, failed: FILES - Number(done.trim()) };
  } finally {
    await runner.close();
  }
}
