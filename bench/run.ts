/**
 * `npm run bench`: runs every benchmark in bench/ (each a standalone script that measures scar
 * side by side with its peer in the same run and prints ratios), one after another so they do not
 * compete for the two cores. `npm run bench -- fdl store` runs only those whose name matches;
 * `--quick` (a smoke run with small counts) and `--long` (the engine's 10,000-file run) reach the
 * benchmarks that have them as SCAR_BENCH_QUICK=1 / SCAR_BENCH_LONG=1.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const filters = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const benches = readdirSync(here)
  .filter((f) => f.endsWith(".js") && f !== "run.js")
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // ~40 ms per node start, and benchmarks talk to loopback only
// The AWS SDK's notice that its 2027 releases need Node 22 is not a benchmark result.
env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
if (flags.includes("--quick")) env.SCAR_BENCH_QUICK = "1";
if (flags.includes("--long")) env.SCAR_BENCH_LONG = "1";
let failed = 0;
for (const f of benches) {
  process.stdout.write(`\n=== bench ${basename(f, ".js")} ===\n`);
  const r = spawnSync(process.execPath, [join(here, f)], { stdio: "inherit", env });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`bench ${f} exited with ${r.status ?? r.signal}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
