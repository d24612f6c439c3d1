/**
 * What every benchmark reports the same way (issue 14): each side of a comparison is measured in
 * rounds that alternate (ours, peer, ours, peer ...; the order flips every round, so a busy stretch
 * of the shared machine hits both alike), and the median of the rounds is printed with each side's
 * CPU seconds, so a reader can tell noise from a real change.
 */
import { readFileSync } from "node:fs";

/** CPU ms of a process from /proc (user + system, 10 ms ticks), with its reaped children's when asked. */
export function procCpuMs(pid: number | "self", children: boolean): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
    return ticks * 10; // USER_HZ = 100
  } catch {
    return 0;
  }
}

/**
 * CPU ms used so far by this process (all its threads, precise), the children it has reaped (from
 * /proc, 10 ms ticks: fine over a round) and `extra` processes with their reaped children (a runner's
 * mount-namespace helper, which starts and cleans up the containers).
 */
export function cpuMsNow(extra: number[] = []): number {
  const own = process.cpuUsage();
  const kids = procCpuMs("self", true) - procCpuMs("self", false);
  return (own.user + own.system) / 1000 + kids + extra.reduce((a, p) => a + procCpuMs(p, true), 0);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/** One round of one side: its own figure (files/s, a p50 in ms ...) and the CPU it used, per unit. */
export interface RoundResult {
  value: number;
  /** CPU ms the round used, divided by `units` (per file, per invocation) */
  cpuMsPerUnit: number;
}

export interface Side {
  name: string;
  /** Runs one round and says its figure; `cpuUnits` is what its CPU is divided by. */
  round: (k: number) => Promise<{ value: number; cpuUnits: number; cpuExcludeMs?: number }>;
  /** extra processes whose CPU counts for this side (see cpuMsNow) */
  pids?: () => number[];
}

export interface SideSummary {
  name: string;
  values: number[];
  value: number;
  cpuMsPerUnit: number;
}

/**
 * Runs `rounds` rounds of every side, alternating: round k runs the sides in order, round k+1 in
 * reverse order, and so on. Returns each side's median figure and median CPU per unit.
 */
export async function alternate(sides: Side[], rounds: number): Promise<SideSummary[]> {
  const results = sides.map(() => [] as RoundResult[]);
  for (let k = 0; k < rounds; k++) {
    const order = sides.map((_, i) => i);
    if (k % 2 === 1) order.reverse();
    for (const i of order) {
      const side = sides[i]!;
      const c0 = cpuMsNow(side.pids?.() ?? []);
      const r = await side.round(k);
      const cpu = cpuMsNow(side.pids?.() ?? []) - c0 - (r.cpuExcludeMs ?? 0);
      results[i]!.push({ value: r.value, cpuMsPerUnit: cpu / Math.max(1, r.cpuUnits) });
    }
  }
  return sides.map((s, i) => ({
    name: s.name,
    values: results[i]!.map((r) => r.value),
    value: median(results[i]!.map((r) => r.value)),
    cpuMsPerUnit: median(results[i]!.map((r) => r.cpuMsPerUnit)),
  }));
}

/** `a` against `b`: their ratio, with the CPU ratio. */
export function ratio(a: SideSummary, b: SideSummary): string {
  return `${a.name} / ${b.name}: ${(a.value / b.value).toFixed(2)}x; CPU per unit ${(a.cpuMsPerUnit / b.cpuMsPerUnit).toFixed(2)}x`;
}

/** `name: median (rounds: ...), CPU x ms per unit`. */
export function describe(s: SideSummary, unit: string, cpuUnit: string, digits = 1): string {
  return `${s.name}: ${s.value.toFixed(digits)} ${unit} (median of ${s.values.length} rounds: ${s.values.map((v) => v.toFixed(digits)).join(" ")}), CPU ${s.cpuMsPerUnit.toFixed(2)} ms per ${cpuUnit}`;
}
