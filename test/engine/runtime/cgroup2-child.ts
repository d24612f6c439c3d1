/**
 * Run by cgroup2.test.ts (as root or as an ordinary user): opens a Runner in a state folder of its
 * own and prints, as one JSON object, where it put itself on cgroup v2 and what a rootless engine
 * holds, or the error the open failed with (and its fix). Not a test file itself.
 *
 *   node cgroup2-child.js <state folder>
 */
import { readFileSync } from "node:fs";
import { Runner } from "../../../src/engine/runtime/index.js";

const [state] = process.argv.slice(2) as [string];
try {
  const runner = await Runner.open({ stateDir: state, sweep: false });
  const out = {
    ok: true,
    placement: runner.cgroupV2?.placement,
    rootlessLimits: runner.info.rootlessLimits,
    own: /^0::(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1],
  };
  await runner.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (e) {
  const err = e as Error & { install?: string };
  process.stdout.write(`${JSON.stringify({ ok: false, error: err.message, fix: err.install })}\n`);
}
