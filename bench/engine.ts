/**
 * The engine end to end, next to its peers in the same run (no assertions; ratios printed):
 *
 *   latency     upload -> output object for one small file on an idle engine (p50/p95), through the
 *               S3 API, the commit hook, the job queue, the supervisor and a crun/runc container; in
 *               turns with it, one bare `crun|runc run` of the same script over one file (the floor's
 *               bundle, below, started from node)
 *   overhead    per invocation: the job's time in the engine (queued -> done in its record: queue,
 *               image, stage-in, container, stage-out, cleanup) minus that bare run, at p50; the
 *               upload before it (S3 PUT, the object's and the job's commits) is in the latency only
 *   throughput  N tiny files uploaded at once (by a worker thread, as another process would) through
 *               the same trivial script, with at most `cores` jobs of the function at once (the
 *               default limit); then the same with 2 x cores (a function's `concurrency`), which lets
 *               jobs' staging overlap other jobs' containers (for the record, not a budget); peers:
 *               - the same script over the same files on the host with `xargs -P <cores>` (no
 *                 isolation, no staging, no queue): the budget's reference
 *               - the floor of per-file isolation: `xargs -P <cores>` running one bare `crun|runc run`
 *                 per file (the same image folder read-only, the same namespaces and limits, input and
 *                 output bind-mounted; bundles written before the clock starts, nothing cleaned up)
 *
 * Budgets (DESIGN.md): overhead per invocation <= 15 ms and latency <= 60 ms at p50; throughput
 * >= 100 files/s and >= 0.6x xargs -P.
 * Usage: node dist/bench/engine.js [files=1000] [latency samples=30]
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
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
  // The index, not head(): a miss there builds an S3Error (and its stack) on every poll.
  return engine.store.backend.bucket(bucket).objects.has(key);
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
  // The host peers' files: the same script's input files, made before anything is timed.
  const hostDir = join(root, "host");
  mkdirSync(join(hostDir, "in"), { recursive: true });
  mkdirSync(join(hostDir, "out"));
  for (let i = 0; i < FILES; i++) writeFileSync(join(hostDir, "in", `t${i}.txt`), `file ${i}`);

  // The global limit leaves room for the 2 x cores row; each function has its own limit.
  const engine = await Engine.start({
    dataDir: join(root, "data"),
    s3Port: 0,
    concurrency: 2 * CORES,
  });
  await engine.images.import(rootfs, {
    format: "rootfs",
    tag: "localhost/bench/busybox:1",
    changes: ["ENV PATH=/bin"],
  });
  const fdlDir = join(root, "fdl");
  mkdirSync(fdlDir);
  writeFileSync(join(fdlDir, "count.sh"), SCRIPT);
  const yaml = (name: string, concurrency: number) =>
    `functions:\n  oscar:\n  - local:\n      name: ${name}\n      image: localhost/bench/busybox:1\n      script: count.sh\n      memory: 128Mi\n      concurrency: ${concurrency}\n      input:\n      - path: ${name}/in\n      output:\n      - path: ${name}/out\n`;
  for (const [name, concurrency] of [
    ["lat", CORES],
    ["tput", CORES],
    ["tput2x", 2 * CORES],
  ] as const) {
    const text = yaml(name, concurrency);
    await engine.deploy(parseFdl(join(fdlDir, `${name}.yaml`), text).functions[0]!);
  }
  const c = engine.credentials.s3;
  const s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: c,
  });

  // Latency: one file at a time on an idle engine, in turns with one bare run of the same script
  // (alternating which goes first, so a busy stretch of the machine hits both alike).
  const bare = bareBundles(engine.runner, rootfs, hostDir, "lat-out", SAMPLES + 3);
  const lat: number[] = [];
  const bareLat: number[] = [];
  const engineSample = async (i: number) => {
    const t0 = performance.now();
    await s3.send(new PutObjectCommand({ Bucket: "lat", Key: `in/l${i}.txt`, Body: "x" }));
    // Watch for the output in process (a HEAD through the SDK every few ms would add its own cost).
    while (!visible(engine, "lat", `out/l${i}.txt.n`)) await new Promise((r) => setTimeout(r, 1));
    return performance.now() - t0;
  };
  const bareSample = async (i: number) => {
    const c = engine.runner.runtime.host.command(engine.runner.runtime.binary, bare.argv[i]!);
    const t0 = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const p = spawn(c.file, c.args, { stdio: "ignore" });
      p.on("close", resolve);
    });
    if (code !== 0) throw new Error(`bare ${engine.runner.info.runtime} run exited with ${code}`);
    return performance.now() - t0;
  };
  for (let i = 0; i < SAMPLES + 3; i++) {
    const [e, b] =
      i % 2 === 0
        ? [await engineSample(i), await bareSample(i)]
        : [await bareSample(i), await engineSample(i)].reverse();
    if (i >= 3) {
      // the first runs warm up caches
      lat.push(e!);
      bareLat.push(b!);
    }
  }

  // Throughput: FILES tiny files at once, uploaded by another thread.
  const throughput = async (fn: string) => {
    const t0 = performance.now();
    const upload: UploadJob = {
      endpoint: engine.store.url,
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
      bucket: fn,
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
      const counts = engine.jobs.counts(fn)[fn];
      if (counts && counts.succeeded + counts.failed + counts.dead >= FILES) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const uploadSecs = await uploaded;
    const secs = (performance.now() - t0) / 1000;
    const counts = engine.jobs.counts(fn)[fn];
    await engine.runner.drain(); // the runs' cleanup, so the next row starts on a quiet engine
    return { secs, uploadSecs, failed: (counts?.failed ?? 0) + (counts?.dead ?? 0) };
  };
  const one = await throughput("tput");
  const two = await throughput("tput2x");
  // Each latency sample's job, queued -> done (its stage times are whole milliseconds).
  const jobMs = engine.jobs
    .list("lat", { limit: SAMPLES + 3 })
    .jobs.filter((j) => j.trigger.type === "object" && Number(/l(\d+)/.exec(j.trigger.key)?.[1]) >= 3)
    .map((j) => j.stages.done! - j.stages.queued!);
  s3.destroy();
  await engine.close();

  // Peer: the same script over the same number of files, on the host, xargs -P cores.
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
  const engineRate = FILES / one.secs;
  const hostRate = FILES / hostSecs;
  const floorRate = FILES / floor.secs;
  console.log(`engine: ${CORES} cores, busybox image, script: ${SCRIPT.trim()}`);
  console.log(
    `  upload -> output latency, idle engine (${SAMPLES} samples): p50 ${pct(lat, 0.5).toFixed(1)} ms, p95 ${pct(lat, 0.95).toFixed(1)} ms   (budget p50 <= 60 ms)`,
  );
  const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)} ms`;
  console.log(
    `  one bare ${engine.runner.info.runtime} run of the same script, in turns with those: p50 ${pct(bareLat, 0.5).toFixed(1)} ms, p95 ${pct(bareLat, 0.95).toFixed(1)} ms`,
  );
  console.log(
    `  those jobs in the engine, queued -> done: p50 ${pct(jobMs, 0.5).toFixed(1)} ms; engine overhead per invocation at p50: ${signed(pct(jobMs, 0.5) - pct(bareLat, 0.5))}   (budget <= 15 ms); upload -> output over the bare run: ${signed(pct(lat, 0.5) - pct(bareLat, 0.5))}`,
  );
  const failed = (n: number) => (n ? ` (${n} failed)` : "");
  console.log(
    `  ${FILES} tiny files, engine:          ${one.secs.toFixed(2)} s = ${engineRate.toFixed(1)} files/s${failed(one.failed)}   (budget >= 100 files/s)`,
  );
  console.log(
    `  ${FILES} tiny files, engine, ${2 * CORES} jobs at once: ${two.secs.toFixed(2)} s = ${(FILES / two.secs).toFixed(1)} files/s${failed(two.failed)}`,
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
  console.log(
    `  (uploads of the ${FILES} files took ${one.uploadSecs.toFixed(2)} s and ${two.uploadSecs.toFixed(2)} s of the engine's time)`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}

/**
 * `count` bundles for bare runs of the runtime (argv[i] without the binary), each running the script
 * over host file `in/t<i>.txt`: the same namespaces and memory limit as the engine's containers, the
 * image folder as read-only root, `hostDir/in` and `hostDir/<outName>` bind-mounted, bundles written
 * now (before any clock starts), nothing cleaned up after a run.
 */
function bareBundles(runner: Runner, rootfs: string, hostDir: string, outName: string, count: number) {
  const out = join(hostDir, outName);
  mkdirSync(out);
  const bundles = join(root, `bundles-${outName}`);
  const argv: string[][] = [];
  for (let i = 0; i < count; i++) {
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
      host: {
        nofileHard: 1024,
        swapAccounting: false,
        cgroupsPath: `${runner.cgroupParent}/${outName}-${i}`,
      },
    });
    (spec.root as { readonly: boolean }).readonly = true;
    writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
    const id = `${outName}-${i}`;
    argv.push(
      runner.runtime
        .runArgv({ bundle, id, pidFile: join(bundle, "pid"), logFile: join(bundle, "log") })
        .slice(1),
    );
  }
  return { out, bundles, argv };
}

/** The floor: `xargs -P cores` over FILES bare runs (bareBundles) in a runner's namespace. */
async function bareRuntimeFloor(
  rootfs: string,
  hostDir: string,
): Promise<{ runtime: string; secs: number; failed: number }> {
  const runner = await Runner.open({ stateDir: join(root, "floor-state") });
  try {
    const { out, bundles, argv } = bareBundles(runner, rootfs, hostDir, "floor-out", FILES);
    writeFileSync(join(bundles, "args"), `${argv.map((a) => a.join(" ")).join("\n")}\n`);
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
