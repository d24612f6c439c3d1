/**
 * The engine end to end, next to its peers in the same run (no assertions; ratios printed):
 *
 *   latency     upload -> output object for one small file on an idle engine (p50/p95), through the
 *               S3 API, the commit hook, the job queue, the supervisor and a crun/runc container
 *   throughput  N tiny files uploaded at once through the same trivial script, with the engine's
 *               concurrency = cores; peer: the same script over the same files on the host with
 *               `xargs -P <cores>` (no isolation, no staging, no queue)
 *
 * Budgets (DESIGN.md): latency p50 <= 60 ms; throughput >= 100 files/s and >= 0.6x xargs -P.
 * Usage: node dist/bench/engine.js [files=1000] [latency samples=30]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../src/engine/engine.js";
import { parseFdl } from "../src/fdl/index.js";

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

  // Throughput: FILES tiny files at once.
  const t0 = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < FILES) {
        const i = sent++;
        await s3.send(new PutObjectCommand({ Bucket: "tput", Key: `in/t${i}.txt`, Body: `file ${i}` }));
      }
    }),
  );
  for (;;) {
    const counts = engine.jobs.counts("tput").tput;
    if (counts && counts.succeeded + counts.failed + counts.dead >= FILES) break;
    await new Promise((r) => setTimeout(r, 20));
  }
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

  const engineRate = FILES / engineSecs;
  const hostRate = FILES / hostSecs;
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
  console.log(`  ratio engine/peer: ${(engineRate / hostRate).toFixed(2)}x   (budget >= 0.6x)`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
