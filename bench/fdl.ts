/**
 * FDL validation speed: a file of 1,000 functions (each with a script, an input and two outputs
 * with filters, chained in pairs as workflows) through the whole pipeline (parse with positions,
 * merge over scar.cfg, per-function rules, cross-function workflow checks), side by side with the
 * floor: a bare `yaml` parse of the same text. Budget: under one second.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { loadFdl } from "../src/fdl/index.js";

const N = Number(process.argv[2] ?? 1000);
const RUNS = 7;

function fdl(n: number): string {
  const lines = ["functions:", "  aws:"];
  for (let i = 0; i < n; i++) {
    const stage = i % 2; // pairs: stage 0 writes into stage 1's input
    const pair = Math.floor(i / 2);
    lines.push(
      "  - lambda:",
      `      name: fn-${i}`,
      `      memory: ${128 + (i % 16) * 64}`,
      "      timeout: 300",
      "      init_script: script.sh",
      "      container:",
      `        image: registry.example.org/team/image-${i % 10}:1.${i % 7}`,
      "        environment:",
      "          Variables:",
      `            INDEX: ${i}`,
      "      input:",
      "      - storage_provider: s3",
      `        path: bucket-${pair}/stage${stage}`,
      "      output:",
      "      - storage_provider: s3",
      `        path: bucket-${pair}/stage${stage + 1}`,
      "        suffix: [png, jpg]",
      "      - storage_provider: s3",
      `        path: archive-${pair}/stage${stage}`,
      "        prefix: [result-]",
    );
  }
  return `${lines.join("\n")}\n`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall time and CPU time (user + system) of fn, in ms. CPU time barely moves when other processes load the machine. */
function time(fn: () => void): { wall: number; cpu: number } {
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  fn();
  const used = process.cpuUsage(c);
  return { wall: Number(process.hrtime.bigint() - t) / 1e6, cpu: (used.user + used.system) / 1000 };
}

const dir = mkdtempSync(join(tmpdir(), "scar-bench-fdl-"));
try {
  const file = join(dir, "fns.yaml");
  const text = fdl(N);
  writeFileSync(file, text);
  writeFileSync(join(dir, "script.sh"), "echo hi\n");
  const count = loadFdl(file).functions.length; // warm-up, and proof it is valid
  if (count !== N) throw new Error(`expected ${N} functions, got ${count}`);
  const ours: { wall: number; cpu: number }[] = [];
  const peer: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    peer.push(time(() => parse(text)));
    ours.push(time(() => loadFdl(file)));
  }
  const o = median(ours.map((x) => x.wall));
  const p = median(peer.map((x) => x.wall));
  const oc = median(ours.map((x) => x.cpu));
  const pc = median(peer.map((x) => x.cpu));
  console.log(
    `fdl: ${N} functions, ${(text.length / 1024).toFixed(0)} KiB, median of ${RUNS} runs (wall / CPU)`,
  );
  console.log(
    `  scar validate pipeline  ${o.toFixed(1)} ms / ${oc.toFixed(1)} ms CPU   (budget 1000 ms: ${o < 1000 ? "within" : "OVER"})`,
  );
  console.log(`  bare yaml.parse (peer)  ${p.toFixed(1)} ms / ${pc.toFixed(1)} ms CPU`);
  console.log(`  ratio scar/peer         ${(o / p).toFixed(2)}x wall, ${(oc / pc).toFixed(2)}x CPU`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
