/**
 * The engine end to end against issue 14's budgets, next to its peers in the same run (no
 * assertions; ratios printed). Every measure runs in rounds that alternate with its peer (see
 * lib/rounds.ts) and prints the median of the rounds and each side's CPU per file or invocation
 * (this process and the processes it reaps, the runner's mount helper; the uploading thread's CPU is
 * left out). Each engine measure runs twice: with the function's default isolation (warm execution
 * environments) and with `isolation: invocation` (FDL `lambda.container.isolation`: a fresh container
 * per invocation); on an engine without that key both are the same.
 *
 *   throughput  N tiny files uploaded at once (by a worker thread, as another process would) through a
 *               trivial script, at most `cores` jobs of the function at once; peer: the same script
 *               over the same number of files on the host with `xargs -P <cores>`
 *               (budget >= 250 files/s and >= 0.5x the peer)
 *   latency     upload -> output object of one small file on an idle engine, p50 of each round's
 *               samples (budget <= 25 ms); for reference one bare `crun|runc run` of the same script
 *               (here the engine's CPU includes the SDK client's, which uploads from this thread)
 *   overhead    per invocation: the job's queued -> done (its record) minus the script's own time (the
 *               same script run on the host from node, in the same rounds), p50 (budget <= 5 ms)
 *   cold start  the first invocation of a newly deployed function (container_start -> script_end in
 *               its record: the environment's start, the input moved in, the script, the output moved
 *               out) against one bare `crun|runc run` of the same script from node, with the same
 *               namespaces, seccomp profile and memory limit, the image folder as its read-only root
 *               and no clean-up (budget <= bare + 10 ms); twice: a function of the image the others use
 *               (the runner has a bundle of it prepared ahead) and a function of an image of its own
 *               deployed in its round (the deploy prepares its first environment's bundle, see
 *               Runner.prepareEnvironmentAhead: that side's CPU includes the deploy's)
 *   long        (--long) 10,000 files in a row per isolation: the engine's RSS after a warm-up and at
 *               the end, and mounts, cgroups, processes and folders left over besides what the engine
 *               keeps on purpose (its warm environments, spare bundles, pooled disks), each printed
 *               pass/fail (budget: RSS within 32 MiB, nothing left)
 *
 * Usage: node dist/bench/engine.js [--quick] [--long] [files=1000] [latency samples per round=10]
 * [rounds=5] [long files=10000]
 * --quick (or SCAR_BENCH_QUICK=1): 40 files, 3 samples, 5 rounds, 300 files in the long mode (a
 * smoke run); --long or SCAR_BENCH_LONG=1 adds the long run, --long-only runs only that.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Engine } from "../src/engine/engine.js";
import { childCgroups } from "../src/engine/runtime/cgroups.js";
import type { Runner } from "../src/engine/runtime/index.js";
import { buildSpec } from "../src/engine/runtime/spec.js";
import { mountsUnder } from "../src/engine/runtime/sweep.js";
import { parseFdl } from "../src/fdl/index.js";
import { alternate, describe, median, ratio, type SideSummary } from "./lib/rounds.js";
import type { UploadJob } from "./lib/upload-worker.js";

// The AWS SDK's notice that its 2027 releases need Node 22 is not a benchmark result (run.ts sets
// this too; here for a direct run).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const args = process.argv.slice(2);
const QUICK = args.includes("--quick") || process.env.SCAR_BENCH_QUICK === "1";
const LONG_ONLY = args.includes("--long-only");
const LONG = LONG_ONLY || args.includes("--long") || process.env.SCAR_BENCH_LONG === "1";
const nums = args.filter((a) => /^\d+$/.test(a)).map(Number);
const FILES = nums[0] ?? (QUICK ? 40 : 1000);
const SAMPLES = nums[1] ?? (QUICK ? 3 : 10);
const ROUNDS = Math.max(5, nums[2] ?? 5);
const LONG_FILES = nums[3] ?? (QUICK ? 300 : 10_000);
const CORES = availableParallelism();
const SCRIPT = 'wc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").n"\n';
const ISOLATIONS = [
  { label: "warm", fdl: "" },
  { label: "invocation", fdl: "        isolation: invocation\n" },
] as const;

function visible(engine: Engine, bucket: string, key: string): boolean {
  // The index, not head(): a miss there builds an S3Error (and its stack) on every poll.
  return engine.store.backend.bucket(bucket).objects.has(key);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
  // The host peers' files, made before anything is timed.
  const hostDir = join(root, "host");
  mkdirSync(join(hostDir, "in"), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(join(hostDir, "in", `t${i}.txt`), `file ${i}`);
  writeFileSync(join(hostDir, "count.sh"), `INPUT_FILE_PATH="$1" TMP_OUTPUT_DIR="$2"\n${SCRIPT}`);

  const engine = await Engine.start({ dataDir: join(root, "data"), s3Port: 0, concurrency: CORES });
  await engine.images.import(rootfs, {
    format: "rootfs",
    tag: "localhost/bench/busybox:1",
    changes: ["ENV PATH=/bin"],
  });
  const fdlDir = join(root, "fdl");
  mkdirSync(fdlDir);
  writeFileSync(join(fdlDir, "count.sh"), SCRIPT);
  const deploy = async (name: string, isolation: string, image = "localhost/bench/busybox:1") => {
    const text = `functions:\n  aws:\n  - lambda:\n      name: ${name}\n      memory: 128\n      init_script: count.sh\n      concurrency: ${CORES}\n      container:\n        image: ${image}\n${isolation}      input:\n      - path: ${name}/in\n      output:\n      - path: ${name}/out\n`;
    await engine.deploy(parseFdl(join(fdlDir, `${name}.yaml`), text).functions[0]!);
  };
  for (const iso of ISOLATIONS) {
    await deploy(`lat-${iso.label}`, iso.fdl);
    await deploy(`tput-${iso.label}`, iso.fdl);
  }
  // the cold starts: functions of the image the others use (the runner has a bundle of it prepared
  // ahead, runtime/runner.ts spareBundles), and images each of a function of its own (one file more
  // in the root file system: its own layer), deployed in its round: the deploy prepares its bundle
  // (the runner keeps 4 at most, so deployed here the first ones' would be gone by their round)
  for (let k = 0; k < ROUNDS; k++) {
    await deploy(`cold${k}`, "");
    writeFileSync(join(rootfs, "etc", "cold"), String(k));
    await engine.images.import(rootfs, {
      format: "rootfs",
      tag: `localhost/bench/busybox-cold${k}:1`,
      changes: ["ENV PATH=/bin"],
    });
  }
  const c = engine.credentials.s3;
  const s3 = new S3Client({
    endpoint: engine.store.url,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: c,
  });
  const helper = () => {
    const ns = engine.runner.runtime.host.namespace;
    return ns?.alive ? [ns.pid] : [];
  };

  /** prints the short measures' figures (after the engine closed) */
  let report: (() => void) | undefined;
  if (!LONG_ONLY) {
    // ---- latency and overhead: one file at a time on an idle engine
    const bare = bareBundles(engine.runner, rootfs, hostDir, "bare-out", ROUNDS * (SAMPLES + 1));
    let bareNext = 0;
    const bareRun = async (): Promise<number> => {
      const cmd = engine.runner.runtime.host.command(engine.runner.runtime.binary, bare[bareNext++]!);
      const t0 = performance.now();
      const code = await new Promise<number | null>((resolve) => {
        spawn(cmd.file, cmd.args, { stdio: "ignore" }).on("close", resolve);
      });
      if (code !== 0) throw new Error(`bare ${engine.runner.info.runtime} run exited with ${code}`);
      return performance.now() - t0;
    };
    const hostOut = join(hostDir, "host-out");
    mkdirSync(hostOut);
    const hostScript = async (i: number): Promise<number> => {
      const t0 = performance.now();
      await new Promise((resolve) =>
        spawn("sh", [join(hostDir, "count.sh"), join(hostDir, "in", `t${i % FILES}.txt`), hostOut], {
          stdio: "ignore",
        }).on("close", resolve),
      );
      return performance.now() - t0;
    };
    // warm-up: the first runs fill caches (and start the warm environments)
    for (const iso of ISOLATIONS) {
      for (let i = 0; i < 3; i++) await uploadAndWait(`lat-${iso.label}`, `in/w${i}.txt`);
    }
    const jobP50 = new Map<string, number[]>();
    const latencySides = [
      ...ISOLATIONS.map((iso) => ({
        name: `engine (${iso.label})`,
        pids: helper,
        round: async (k: number) => {
          const fn = `lat-${iso.label}`;
          const ms: number[] = [];
          for (let i = 0; i < SAMPLES; i++) ms.push(await uploadAndWait(fn, `in/r${k}-l${i}.txt`));
          // The output object lands before its job is done (its record is written after stage-out).
          const ofRound = () =>
            engine.jobs
              .list(fn, { limit: SAMPLES + 10 })
              .jobs.filter((j) => j.trigger.type === "object" && j.trigger.key.startsWith(`in/r${k}-`));
          while (ofRound().some((j) => !j.stages.done)) await sleep(5);
          const jobs = ofRound().map((j) => j.stages.done! - j.stages.queued!);
          jobP50.set(fn, [...(jobP50.get(fn) ?? []), median(jobs)]);
          return { value: median(ms), cpuUnits: SAMPLES };
        },
      })),
      {
        name: `bare ${engine.runner.info.runtime} run`,
        round: async () => {
          const ms: number[] = [];
          for (let i = 0; i < SAMPLES; i++) ms.push(await bareRun());
          return { value: median(ms), cpuUnits: SAMPLES };
        },
      },
      {
        name: "the script on the host",
        round: async (k: number) => {
          const ms: number[] = [];
          for (let i = 0; i < SAMPLES; i++) ms.push(await hostScript(k * SAMPLES + i));
          return { value: median(ms), cpuUnits: SAMPLES };
        },
      },
    ];
    const latency = await alternate(latencySides, ROUNDS);

    // ---- cold start: the first invocation of a new function, against one bare run
    const firstInvocation = async (fn: string) => {
      await uploadAndWait(fn, "in/first.txt");
      // (the output object lands before the job's record is finished)
      let j = engine.jobs.list(fn, { limit: 5 }).jobs[0]!;
      while (!j.stages.done) {
        await sleep(5);
        j = engine.jobs.list(fn, { limit: 5 }).jobs[0]!;
      }
      if (j.environment?.start !== "cold") throw new Error(`${fn}'s first invocation was not a cold start`);
      return { value: j.stages.script_end! - j.stages.container_start!, cpuUnits: 1 };
    };
    const cold = await alternate(
      [
        {
          name: "first invocation (container_start -> script_end)",
          pids: helper,
          round: (k: number) => firstInvocation(`cold${k}`),
        },
        {
          name: "first invocation after its deploy, an image of its own",
          pids: helper,
          round: async (k: number) => {
            await deploy(`coldimage${k}`, "", `localhost/bench/busybox-cold${k}:1`);
            await engine.runner.drain(); // (a user uploads seconds after a deploy, not within its ms)
            return firstInvocation(`coldimage${k}`);
          },
        },
        {
          name: `bare ${engine.runner.info.runtime} run`,
          round: async () => ({ value: await bareRun(), cpuUnits: 1 }),
        },
      ],
      ROUNDS,
    );

    // ---- throughput: FILES tiny files at once, against xargs -P on the host
    let hostRound = 0;
    const throughput = await alternate(
      [
        ...ISOLATIONS.map((iso) => ({
          name: `engine (${iso.label})`,
          pids: helper,
          round: async (k: number) => {
            const fn = `tput-${iso.label}`;
            const r = await burst(fn, `in/r${k}-t`, FILES, (k + 1) * FILES);
            return { value: FILES / r.secs, cpuUnits: FILES, cpuExcludeMs: r.uploaderCpuMs };
          },
        })),
        {
          name: `xargs -P ${CORES} on the host`,
          round: async () => {
            const out = join(hostDir, `xargs-out-${hostRound++}`);
            mkdirSync(out);
            const t0 = performance.now();
            execFileSync("sh", ["-c", `ls in/*.txt | xargs -P ${CORES} -I{} sh count.sh {} ${out}`], {
              cwd: hostDir,
            });
            return { value: FILES / ((performance.now() - t0) / 1000), cpuUnits: FILES };
          },
        },
      ],
      ROUNDS,
    );

    report = () => {
      const byName = (rows: SideSummary[], prefix: string) => rows.find((r) => r.name.startsWith(prefix))!;
      const bareLat = byName(latency, "bare");
      const hostLat = byName(latency, "the script");
      console.log(
        `engine: ${CORES} cores, busybox image, script: ${SCRIPT.trim()}; ${ROUNDS} alternating rounds per measure`,
      );
      console.log(`\nupload -> output object, one small file, idle engine (p50 of ${SAMPLES} per round):`);
      for (const r of latency) console.log(`  ${describe(r, "ms", "invocation")}`);
      for (const iso of ISOLATIONS) {
        const r = byName(latency, `engine (${iso.label})`);
        console.log(`  ${ratio(r, bareLat)}   (budget: engine p50 <= 25 ms)`);
      }
      console.log(
        "\nengine overhead per invocation (queued -> done minus the script's own time on the host):",
      );
      for (const iso of ISOLATIONS) {
        const jobs = jobP50.get(`lat-${iso.label}`) ?? [];
        const over = jobs.map((j, k) => j - hostLat.values[k]!);
        console.log(
          `  ${iso.label}: queued -> done p50 ${median(jobs).toFixed(1)} ms, script ${hostLat.value.toFixed(1)} ms: overhead ${median(over).toFixed(1)} ms (rounds: ${over.map((o) => o.toFixed(1)).join(" ")})   (budget <= 5 ms)`,
        );
      }
      console.log("\ncold start:");
      for (const r of cold) console.log(`  ${describe(r, "ms", "invocation")}`);
      const bareCold = byName(cold, "bare");
      for (const r of cold.filter((r) => r !== bareCold))
        console.log(
          `  ${r.name} - bare run: ${(r.value - bareCold.value).toFixed(1)} ms; ${ratio(r, bareCold)}   (budget <= +10 ms)`,
        );
      console.log(`\n${FILES} tiny files, at most ${CORES} jobs at once:`);
      for (const r of throughput) console.log(`  ${describe(r, "files/s", "file")}`);
      const xargs = byName(throughput, "xargs");
      for (const iso of ISOLATIONS)
        console.log(
          `  ${ratio(byName(throughput, `engine (${iso.label})`), xargs)}   (budget >= 250 files/s and >= 0.5x)`,
        );
      const warm = byName(throughput, "engine (warm)");
      const inv = byName(throughput, "engine (invocation)");
      console.log(
        `  warm environments / a container per invocation: ${(warm.value / inv.value).toFixed(2)}x`,
      );
    };
  }

  // ---- long: 10,000 files in a row per isolation
  const long: string[] = [];
  if (LONG) {
    for (const iso of ISOLATIONS) {
      const fn = `tput-${iso.label}`;
      const done0 = finished(fn);
      const warmup = Math.min(500, LONG_FILES / 5);
      await burst(fn, "in/long-w", warmup, done0 + warmup);
      await engine.runner.drain();
      const longT0 = performance.now();
      const before = await footprint(engine);
      for (let n = warmup; n < LONG_FILES; n += 500) {
        const count = Math.min(500, LONG_FILES - n);
        await burst(fn, `in/long-${n}-`, count, done0 + n + count);
      }
      await engine.runner.drain();
      // finished invocations' folders are deleted in the background (environment.ts finishInvocation)
      await sleep(1000);
      await engine.runner.drain(); // (a disk the pool made meanwhile)
      const after = await footprint(engine);
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      const grew = after.rss - before.rss;
      const check = (ok: boolean) => (ok ? "pass" : "FAIL");
      const lines = [
        `  ${iso.label}: ${LONG_FILES} files in ${((performance.now() - longT0) / 1000).toFixed(0)} s`,
        `    RSS ${mib(before.rss)} MiB after ${warmup} files, ${mib(after.rss)} MiB at the end: ${grew >= 0 ? "+" : ""}${mib(grew)} MiB (budget <= 32 MiB) ${check(grew <= 32 * 2 ** 20)}`,
        `    expected at the end: ${after.live} warm environments, ${after.spares} spare bundles, ${after.pooledDisks} pooled disks`,
      ];
      for (const k of ["mounts", "cgroups", "processes", "folders"] as const)
        lines.push(
          `    leaked ${k}: ${after.leaked[k].length}${after.leaked[k].length ? ` (${after.leaked[k].slice(0, 3).join(", ")}${after.leaked[k].length > 3 ? " ..." : ""})` : ""} ${check(after.leaked[k].length === 0)}`,
        );
      long.push(...lines);
      // printed as it comes: a long run takes minutes
      console.error(lines.join("\n"));
    }
  }

  s3.destroy();
  await engine.close();

  report?.();
  if (long.length) console.log(`\nlong run (${LONG_FILES} files in a row):\n${long.join("\n")}`);

  /** Uploads one file through the S3 API and waits (in process) until its output object exists. */
  async function uploadAndWait(fn: string, key: string): Promise<number> {
    const t0 = performance.now();
    await s3.send(new PutObjectCommand({ Bucket: fn, Key: key, Body: "x" }));
    const out = `out/${key.slice("in/".length)}.n`;
    while (!visible(engine, fn, out)) await sleep(1);
    return performance.now() - t0;
  }

  function finished(fn: string): number {
    const n = engine.jobs.counts(fn)[fn];
    return n ? n.succeeded + n.failed + n.dead : 0;
  }

  /** `count` files uploaded at once by a worker thread; resolves when `total` jobs of fn have finished. */
  async function burst(fn: string, prefix: string, count: number, total: number) {
    const t0 = performance.now();
    const job: UploadJob = {
      endpoint: engine.store.url,
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
      bucket: fn,
      prefix,
      count,
      inFlight: 16,
    };
    const uploaded = new Promise<{ secs: number; cpuMs: number }>((resolve, reject) => {
      const w = new Worker(new URL("./lib/upload-worker.js", import.meta.url), { workerData: job });
      w.once("message", resolve);
      w.once("error", reject);
    });
    while (finished(fn) < total) await sleep(20);
    const secs = (performance.now() - t0) / 1000;
    const up = await uploaded;
    await engine.runner.drain(); // the runs' cleanup, so the next round starts on a quiet engine
    return { secs, uploaderCpuMs: up.cpuMs };
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

/**
 * What the engine holds: its RSS, and what of its containers is left besides what it keeps on
 * purpose (its warm environments, the bundles prepared ahead of their starts, the pool of emptied
 * disks): mounts under the data dir (the host's and the mount helper's namespace), container cgroups,
 * processes that name the data dir (no more than one runtime per live environment), and folders: run
 * folders, the trash, job workspaces, and the invocation folders in every environment disk's /tmp and
 * aside folder (at most the one made ahead per environment).
 */
async function footprint(engine: Engine) {
  const data = engine.dataDir;
  const runner = engine.runner;
  const ns = runner.runtime.host.namespace;
  const live = runner.environmentIds();
  const spares = runner.spareBundleIds();
  const kept = [...live, ...spares];
  const runsDir = runner.runsDir;
  const disksDir = join(data, "runtime", "disks");
  const ownedBy = (p: string) =>
    kept.some((id) => p === join(runsDir, id) || p.startsWith(`${join(runsDir, id)}/`));
  const mountPoints = ["/proc/self/mountinfo", ...(ns?.alive ? [`/proc/${ns.pid}/mountinfo`] : [])].flatMap(
    (f) => mountsUnder(data, f),
  );
  // Disks: each one held by a warm environment or a spare bundle, or emptied and waiting in the pool
  // (as many as runs had them at once, their wipes included: with a fresh container per invocation
  // that is more than the jobs at once); any other disk mount is a leak.
  const disks = runner.disksInUse();
  const expectedDisks = new Set([...disks.held, ...disks.pooled]);
  const mounts = mountPoints.filter((m) => !ownedBy(m) && !expectedDisks.has(m));
  const pooledDisks = disks.pooled.length;
  const cgroups = childCgroups(runner.cgroupParent).filter((c) => !live.includes(c));
  const processes: string[] = [];
  // the mount helper, and its subshell per live environment waiting for the runtime, have its command line
  let helperCmd = "";
  try {
    if (ns?.alive) helperCmd = readFileSync(`/proc/${ns.pid}/cmdline`, "utf8");
  } catch {}
  let helpers = 0;
  for (const pid of readdirSafe("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (helperCmd && cmd === helperCmd && ++helpers <= 1 + live.length) continue;
      if (cmd.includes(data) && !live.some((id) => cmd.includes(id)))
        processes.push(`${pid} ${cmd.replace(/\0/g, " ").slice(0, 80)}`);
    } catch {}
  }
  const folders = [
    ...readdirSafe(runsDir)
      .filter((n) => !kept.includes(n))
      .map((n) => `runs/${n}`),
    ...readdirSafe(runner.trashDir).map((n) => `trash/${n}`),
    ...readdirSafe(join(data, "work"))
      .filter((n) => n !== "api" && n !== "image-uploads")
      .map((n) => `work/${n}`),
  ];
  if (ns?.alive)
    for (const d of readdirSafe(ns.view(disksDir))) {
      const tmp = readdirSafe(ns.view(join(disksDir, d, "mounts", "0")));
      const aside = readdirSafe(ns.view(join(disksDir, d, "mounts", "aside")));
      folders.push(...tmp.map((n) => `${d}:/tmp/${n}`));
      // the next invocation's folders, made ahead (one per environment)
      folders.push(...aside.filter((n) => !n.startsWith("n")).map((n) => `${d}:aside/${n}`));
      if (aside.filter((n) => n.startsWith("n")).length > 1)
        folders.push(`${d}: ${aside.length} spare invocation folders`);
    }
  // (the environments' own folders: a no-disk environment's /tmp and aside)
  for (const id of live) {
    folders.push(...readdirSafe(join(runsDir, id, "tmp")).map((n) => `${id}:/tmp/${n}`));
    folders.push(
      ...readdirSafe(join(runsDir, id, "aside"))
        .filter((n) => !n.startsWith("n"))
        .map((n) => `${id}:aside/${n}`),
    );
  }
  return {
    rss: process.memoryUsage().rss,
    live: live.length,
    spares: spares.length,
    pooledDisks,
    leaked: { mounts, cgroups, processes, folders },
  };
}

function readdirSafe(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

/**
 * `count` bundles for bare runs of the runtime (argv without the binary), each running the script
 * over a host file: the same namespaces and memory limit as the engine's containers, the image folder
 * as read-only root, `hostDir/in` and `hostDir/<outName>` bind-mounted, written before any clock
 * starts, nothing cleaned up after a run.
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
        cmd: ["/bin/sh", "-c", `wc -c < /in/t${i % FILES}.txt > /out/t${i}.txt.n`],
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
    argv.push(
      runner.runtime
        .runArgv({
          bundle,
          id: `${outName}-${i}`,
          pidFile: join(bundle, "pid"),
          logFile: join(bundle, "log"),
        })
        .slice(1),
    );
  }
  return argv;
}
