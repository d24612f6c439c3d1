/**
 * Per-run overhead of the runtime, side by side in one run (no assertions):
 *
 *   scar      Runner.run() of /bin/true: overlay rootfs over the layers, spec, crun, cleanup
 *   bare      `crun run` of a prepared bundle with the same rootfs (as one folder) and the same
 *             namespaces and limits, started from node (through the private mount namespace when the
 *             host has hybrid cgroups); and the same run timed by bash inside that namespace
 *             ($EPOCHREALTIME around `crun run`: no Node fork, no nsenter in the time; the strictest peer)
 *   runc      the same two with runc, when installed
 *   env       with warm execution environments (Runner.startEnvironment, issue 14): "env cold", an
 *             environment started and its first invocation of /bin/true (the cold-start budget: <= the
 *             bare run + 10 ms), and "env warm", an invocation in an environment kept up
 *   podman    `podman run --rm` of the same rootfs, when podman is installed
 *
 * The variants are measured in turns (scar, bare, bash, scar, bare, bash, ...) so that the load of a busy
 * machine hits them alike. Usage: node dist/bench/runtime.js [--quick] [runs=100] (--quick or
 * SCAR_BENCH_QUICK=1: 10 runs). Prints p50/p95/mean wall time per variant, the
 * CPU time per run (this process + its children + the runner's mount helper, from /proc; the overlay's
 * umount and the folder's deletion, which follow a scar run in the background, are waited for outside the
 * wall time and counted in the CPU time), the load average, and the ratios.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Runner } from "../src/engine/runtime/index.js";
import { buildSpec } from "../src/engine/runtime/spec.js";
import type { Environment, EnvironmentRequest } from "../src/engine/runtime/types.js";
import { cpuMsNow } from "./lib/rounds.js";

const QUICK = process.argv.includes("--quick") || process.env.SCAR_BENCH_QUICK === "1";
const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? (QUICK ? 10 : 100));
const WARMUP = 5;

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p95: q(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function spawnWait(file: string, args: string[]): Promise<number | null> {
  return new Promise((res) => {
    const c = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    c.stdout.resume();
    c.stderr.resume();
    c.on("close", (code) => res(code));
  });
}

type Row = { name: string; p50: number; p95: number; mean: number; cpu?: number };

async function measure(
  name: string,
  fn: () => Promise<void>,
): Promise<{ name: string; p50: number; p95: number; mean: number }> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return { name, ...stats(ms) };
}

/**
 * Measures several variants in turns (a, b, a, b, ...) so that load changes hit them alike. `after` runs
 * outside the wall time but inside the CPU time (background work the variant left); `pids` are extra
 * processes whose CPU counts for the variant. A variant whose fn returns a number times itself: that
 * number is its time, and its CPU is not reported (it would count the timer's own process).
 */
async function measureInTurns(
  variants: {
    name: string;
    fn: () => Promise<unknown>;
    after?: () => Promise<void>;
    pids?: () => number[];
  }[],
): Promise<Row[]> {
  for (const v of variants) for (let i = 0; i < WARMUP; i++) await v.fn();
  const ms = variants.map(() => [] as number[]);
  const cpu = variants.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, v] of variants.entries()) {
      const pids = v.pids ?? (() => [] as number[]);
      const c0 = cpuMsNow(pids());
      const t = performance.now();
      const own = await v.fn();
      ms[k]!.push(typeof own === "number" ? own : performance.now() - t);
      await v.after?.();
      cpu[k]! += cpuMsNow(pids()) - c0;
      if (typeof own === "number") cpu[k] = Number.NaN;
    }
  }
  return variants.map((v, k) => ({
    name: v.name,
    ...stats(ms[k]!),
    ...(Number.isNaN(cpu[k]!) ? {} : { cpu: cpu[k]! / RUNS }),
  }));
}

function busyboxLayer(dir: string): string {
  const layer = join(dir, "layer");
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc"]) mkdirSync(join(layer, d), { recursive: true });
  execFileSync("cp", ["/bin/busybox", join(layer, "bin/busybox")]);
  execFileSync("ln", ["-s", "busybox", join(layer, "bin/true")]);
  return layer;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "scar-bench-rt-"));
  const layer = busyboxLayer(dir);
  const limits = { memoryBytes: 64 << 20, pids: 64 };
  const rows: Row[] = [];
  const loadBefore = loadavg();
  const pairs: [string, string][] = [];
  try {
    for (const rt of ["crun", "runc"] as const) {
      if (spawnSync(rt, ["--version"]).status !== 0) continue;
      const runner = await Runner.open({ stateDir: join(dir, `state-${rt}`), runtime: rt });
      try {
        const image = { config: { Cmd: ["/bin/true"] }, layers: [layer] };
        const phases = { prepareMs: [] as number[], runMs: [] as number[], cleanupMs: [] as number[] };
        const scarRun = async () => {
          const r = await runner.run({ image, limits });
          if (r.reason !== "ok") throw new Error(`run failed: ${r.reason} ${r.message}`);
          phases.prepareMs.push(r.timings.prepareMs);
          phases.runMs.push(r.timings.runMs);
          phases.cleanupMs.push(r.timings.cleanupMs);
        };

        // bare: a fixed bundle, same rootfs folder, same spec (namespaces, limits), no overlay, no cleanup
        const bundle = join(dir, `bundle-${rt}`);
        mkdirSync(bundle);
        const spec = buildSpec({
          rootfs: layer,
          config: image.config,
          request: { limits },
          user: { uid: 0, gid: 0, additionalGids: [], home: "/root" },
          host: { nofileHard: 1024, swapAccounting: false, cgroupsPath: `${runner.cgroupParent}/bare` },
        });
        (spec.root as { readonly: boolean }).readonly = true;
        writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
        let n = 0;
        const bareRun = async () => {
          const c = runner.runtime.host.command(runner.runtime.binary, [
            ...(rt === "crun" ? [`--root=${runner.runtime.stateDir}`] : ["--root", runner.runtime.stateDir]),
            "run",
            "--bundle",
            bundle,
            `bare${n++}`,
          ]);
          const code = await spawnWait(c.file, c.args);
          if (code !== 0) throw new Error(`bare ${rt} run exited ${code}`);
        };
        const helper = () => {
          const ns = runner.runtime.host.namespace;
          return ns?.alive ? [ns.pid] : [];
        };
        // The strictest peer: the same bare run timed by bash's own clock ($EPOCHREALTIME, no fork to
        // read it) inside the namespace, so neither Node's fork nor nsenter is in its time.
        const bashRun = async () => {
          const c = runner.runtime.host.command("bash", [
            "-c",
            `s=$EPOCHREALTIME; ${runner.runtime.binary} ${rt === "crun" ? `--root=${runner.runtime.stateDir}` : `--root ${runner.runtime.stateDir}`} run --bundle ${bundle} bash${n++} >/dev/null 2>&1 || exit 1; e=$EPOCHREALTIME; echo "$s $e"`,
          ]);
          const r = spawnSync(c.file, c.args, { encoding: "utf8" });
          if (r.status !== 0) throw new Error(`bare ${rt} run from bash exited ${r.status}`);
          const [a, b] = r.stdout.trim().split(" ").map(Number);
          return (b! - a!) * 1000;
        };
        // Warm execution environments (issue 14), once the runner has them: the cold start (an
        // environment started and its first invocation run; its close outside the wall time, inside
        // the CPU) and a warm invocation in an environment kept up.
        const start = (
          runner as unknown as { startEnvironment?: (r: EnvironmentRequest) => Promise<Environment> }
        ).startEnvironment;
        const envVariants: Parameters<typeof measureInTurns>[0] = [];
        let kept: Environment | undefined;
        if (start) {
          let open: Environment | undefined;
          let inv = 0;
          const firstInvocation = async (env: Environment) => {
            const id = `bench-${inv++}`;
            await env.prepareInvocation(id);
            const r = await env.invoke({ requestId: id, argv: ["/bin/true"] });
            await env.finishInvocation(id);
            if (r.reason !== "ok") throw new Error(`invocation failed: ${r.reason} ${r.message}`);
          };
          kept = await start.call(runner, { image, limits });
          envVariants.push(
            {
              name: `scar ${rt} env cold`,
              fn: async () => {
                open = await start.call(runner, { image, limits });
                await firstInvocation(open);
              },
              after: async () => {
                await open?.close();
                await runner.drain();
              },
              pids: helper,
            },
            { name: `scar ${rt} env warm`, fn: () => firstInvocation(kept!), pids: helper },
          );
        }
        const [scarRow, bareRow, bashRow, ...envRows] = await measureInTurns([
          { name: `scar ${rt}`, fn: scarRun, after: () => runner.drain(), pids: helper },
          { name: `bare ${rt} run`, fn: bareRun },
          { name: `bare ${rt} run (bash)`, fn: bashRun },
          ...envVariants,
        ]);
        await kept?.close();
        rows.push(scarRow!);
        for (const [k, v] of Object.entries(phases)) rows.push({ name: `  scar ${rt} ${k}`, ...stats(v) });
        rows.push(bareRow!, bashRow!, ...envRows);
        // the cold-start budget: an environment's start and first invocation <= a bare run + 10 ms
        if (envRows.length)
          pairs.push([`scar ${rt} env cold`, `bare ${rt} run`], [`scar ${rt} env warm`, `bare ${rt} run`]);
        pairs.push([`scar ${rt}`, `bare ${rt} run (bash)`], [`scar ${rt}`, `bare ${rt} run`]);
      } finally {
        await runner.close();
      }
    }
    if (spawnSync("podman", ["--version"]).status === 0) {
      const conf = join(dir, "containers.conf");
      writeFileSync(
        conf,
        '[containers]\ndefault_ulimits=["nofile=1024:1024","nproc=4096:4096"]\n[engine]\nruntime="runc"\ncgroup_manager="cgroupfs"\nevents_logger="file"\n',
      );
      const env = { ...process.env, CONTAINERS_CONF: conf };
      const imp = spawnSync(
        "sh",
        ["-c", `tar -C '${layer}' -c . | podman import - localhost/scar-bench:rt`],
        { env },
      );
      if (imp.status === 0) {
        rows.push(
          await measure("podman run", async () => {
            const code = await new Promise<number | null>((res) => {
              const c = spawn(
                "podman",
                [
                  "run",
                  "--rm",
                  "--network=none",
                  "--memory=64m",
                  "--pids-limit=64",
                  "localhost/scar-bench:rt",
                  "/bin/true",
                ],
                { env, stdio: "ignore" },
              );
              c.on("close", res);
            });
            if (code !== 0) throw new Error(`podman run exited ${code}`);
          }),
        );
        spawnSync("podman", ["rmi", "-f", "localhost/scar-bench:rt"], { env, stdio: "ignore" });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const f = (x: number) => x.toFixed(2).padStart(8);
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  console.log(`runtime: one run of /bin/true, ${RUNS} runs after ${WARMUP} warm-up, ms`);
  console.log(
    `load average before ${load(loadBefore)}, after ${load(loadavg())} (${availableParallelism()} cores)`,
  );
  console.log(
    `${"variant".padEnd(28)}${"p50".padStart(8)}${"p95".padStart(8)}${"mean".padStart(8)}${"cpu/run".padStart(9)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(28)}${f(r.p50)}${f(r.p95)}${f(r.mean)}${r.cpu !== undefined ? ` ${f(r.cpu)}` : ""}`,
    );
  for (const [a, b] of pairs) {
    const x = rows.find((r) => r.name === a)!;
    const y = rows.find((r) => r.name === b)!;
    const signed = (d: number) => `${d >= 0 ? "+" : "-"}${Math.abs(d).toFixed(2)}`;
    const cpu =
      x.cpu !== undefined && y.cpu !== undefined
        ? `; cpu ${signed(x.cpu - y.cpu)} ms, ratio ${(x.cpu / y.cpu).toFixed(2)}x`
        : "";
    console.log(`${a} vs ${b}: p50 ${signed(x.p50 - y.p50)} ms, ratio ${(x.p50 / y.p50).toFixed(2)}x${cpu}`);
  }
}

await main();
