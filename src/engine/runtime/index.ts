/**
 * The engine's container runtime: run one image as an isolated, limited container, with crun or runc.
 *
 *   const runner = await Runner.open({ stateDir: "/var/lib/scar/runtime" });
 *   const r = await runner.run({ image: { config, layers }, cmd: ["/bin/sh", "/script.sh"], mounts, limits, timeoutMs });
 *   // r.reason: ok | error | timeout | oom | disk | start-error; r.exitCode, r.stdout, r.stderr, r.timings
 *   const env = await runner.startEnvironment({ image, limits, diskBytes }); // warm: one container, the agent its process
 *   const io = await env.prepareInvocation(id); const x = await env.invoke({ requestId: id, argv, env: vars });
 *   await env.finishInvocation(id); await env.close();
 *   await runner.close();
 */
export type { ContainerRuntime, RuntimeName } from "./adapters.js";
export type { CgroupMode } from "./cgroups.js";
export { cgroupMode } from "./cgroups.js";
export { findBinary, installCommand, RuntimeUnavailableError } from "./detect.js";
export { AGENT_PATH, EnvironmentStartError } from "./environment.js";
export { runInUserNamespace, spawnInUserNamespace } from "./mountns.js";
export type { OverlaySupport } from "./rootfs.js";
export { type RootlessMode, rootlessMode, rootlessNote, rootlessUser } from "./rootless.js";
export { Runner, type RunnerOptions, type RuntimeInfo } from "./runner.js";
export { buildSpec, processArgs, processEnv } from "./spec.js";
export type { SweepReport } from "./sweep.js";
export type {
  BindMount,
  Environment,
  EnvironmentInvocation,
  EnvironmentInvocationResult,
  EnvironmentRequest,
  ImageInput,
  OciImageConfig,
  RunLimits,
  RunReason,
  RunRequest,
  RunResult,
  RunTimings,
} from "./types.js";
export { type ResolvedUser, resolveUser, UserError } from "./user.js";
