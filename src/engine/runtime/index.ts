/**
 * The engine's container runtime: run one image as an isolated, limited container, with crun or runc.
 *
 *   const runner = await Runner.open({ stateDir: "/var/lib/scar/runtime" });
 *   const r = await runner.run({ image: { config, layers }, cmd: ["/bin/sh", "/script.sh"], mounts, limits, timeoutMs });
 *   // r.reason: ok | error | timeout | oom | disk | start-error; r.exitCode, r.stdout, r.stderr, r.timings
 *   await runner.close();
 */
export type { ContainerRuntime, RuntimeName } from "./adapters.js";
export type { CgroupMode } from "./cgroups.js";
export { cgroupMode } from "./cgroups.js";
export { findBinary, installCommand, RuntimeUnavailableError } from "./detect.js";
export type { OverlaySupport } from "./rootfs.js";
export { Runner, type RunnerOptions, type RuntimeInfo } from "./runner.js";
export { buildSpec, processArgs, processEnv } from "./spec.js";
export type { SweepReport } from "./sweep.js";
export type {
  BindMount,
  ImageInput,
  OciImageConfig,
  RunLimits,
  RunReason,
  RunRequest,
  RunResult,
  RunTimings,
} from "./types.js";
export { type ResolvedUser, resolveUser, UserError } from "./user.js";
