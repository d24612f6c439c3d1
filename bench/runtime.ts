/**
 * Per-run overhead of the runtime, side by side in one run (no assertions):
 *
 *   scar      Runner.run() of /bin/true: overlay rootfs over the layers, spec, crun, cleanup
 *   bare      `crun run` of a prepared bundle with the same rootfs (as one folder) and the same
 *             namespaces and limits, started from node the same way (through the private mount
 *             namespace when the host has hybrid cgroups)
 *   runc      the same two with runc, when installed
 *   podman    `podman run --rm` of the same rootfs, when podman is installed
 *
 * scar and bare are measured in turns (scar, bare, scar, bare, ...) so that the load of a busy machine hits
 * both alike. Usage: node dist/bench/runtime.js [runs=100]. Prints p50/p95/mean per variant and the ratios.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Runner } from "../src/engine/runtime/index.js";
import { buildSpec } from "../src/engine/runtime/spec.js";

const RUNS = Number(process.argv[2] ?? 100);
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

/** Measures several variants in turns (a, b, a, b, ...) so that load changes hit them alike. */
async function measureInTurns(
  variants: { name: string; fn: () => Promise<void> }[],
): Promise<{ name: string; p50: number; p95: number; mean: number }[]> {
  for (const v of variants) for (let i = 0; i < WARMUP; i++) await v.fn();
  const ms = variants.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, v] of variants.entries()) {
      const t = performance.now();
      await v.fn();
      ms[k]!.push(performance.now() - t);
    }
  }
  return variants.map((v, k) => ({ name: v.name, ...stats(ms[k]!) }));
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
  const rows: { name: string; p50: number; p95: number; mean: number }[] = [];
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
        const [scarRow, bareRow] = await measureInTurns([
          { name: `scar ${rt}`, fn: scarRun },
          { name: `bare ${rt} run`, fn: bareRun },
        ]);
        rows.push(scarRow!);
        for (const [k, v] of Object.entries(phases)) rows.push({ name: `  scar ${rt} ${k}`, ...stats(v) });
        rows.push(bareRow!);
        pairs.push([`scar ${rt}`, `bare ${rt} run`]);
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
  console.log(`runtime: one run of /bin/true, ${RUNS} runs after ${WARMUP} warm-up, ms`);
  console.log(`${"variant".padEnd(28)}${"p50".padStart(8)}${"p95".padStart(8)}${"mean".padStart(8)}`);
  for (const r of rows) console.log(`${r.name.padEnd(28)}${f(r.p50)}${f(r.p95)}${f(r.mean)}`);
  for (const [a, b] of pairs) {
    const x = rows.find((r) => r.name === a)!;
    const y = rows.find((r) => r.name === b)!;
    console.log(`${a} vs ${b}: p50 +${(x.p50 - y.p50).toFixed(2)} ms, ratio ${(x.p50 / y.p50).toFixed(2)}x`);
  }
}

await main();
