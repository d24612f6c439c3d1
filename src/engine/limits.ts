/**
 * What a function may ask of this engine, checked when it is deployed: a definition the engine
 * cannot honour is refused there, naming the field, instead of failing every run. The FDL library
 * knows nothing of the machine; the values it accepts are checked here against this one.
 */
import { availableParallelism, totalmem } from "node:os";
import type { FunctionSpec } from "../fdl/spec.js";

/**
 * The longest timeout the engine can honour, in seconds: timers take at most 2^31-1 ms (~24.8
 * days); a longer one fires at once, and the run is killed as it starts.
 */
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** A FunctionSpec field (`memory`, `cpu`, `timeout`, `batch.memory`, `batch.vcpus`) and what is wrong with it. */
export interface LimitProblem {
  field: string;
  message: string;
}

/** The fields of `spec` this machine cannot give: more memory than it has, more cores, a timeout timers cannot hold. */
export function machineLimitProblems(
  spec: FunctionSpec,
  machine: { memoryMiB: number; cores: number } = machineSize(),
): LimitProblem[] {
  const problems: LimitProblem[] = [];
  const memory = (field: string, mib: number) => {
    if (mib > machine.memoryMiB)
      problems.push({
        field,
        message: `${mib} MiB is more memory than this machine has (${machine.memoryMiB} MiB)`,
      });
  };
  const cores = (field: string, n: number) => {
    if (n > machine.cores)
      problems.push({
        field,
        message: `${n} cores are more than this machine has (${machine.cores})`,
      });
  };
  memory("memory", spec.memory);
  if (spec.cpu !== undefined) cores("cpu", spec.cpu);
  if (spec.batch && spec.execution_mode !== "lambda") {
    memory("batch.memory", spec.batch.memory);
    cores("batch.vcpus", spec.batch.vcpus);
  }
  if (spec.timeout !== null && spec.timeout > MAX_TIMEOUT_SECONDS)
    problems.push({
      field: "timeout",
      message: `${spec.timeout} s is longer than the engine can time (at most ${MAX_TIMEOUT_SECONDS} s, about 24.8 days); use execution_mode batch for runs without a limit`,
    });
  return problems;
}

function machineSize(): { memoryMiB: number; cores: number } {
  return { memoryMiB: Math.floor(totalmem() / 2 ** 20), cores: availableParallelism() };
}
