/**
 * A function image run as Lambda runs it: one container of the image from the local store, started
 * by scar's container runtime (engine/runtime Runner) with the image's own Entrypoint (scar's runtime
 * under /opt/scar), served the Runtime API by a RuntimeApiEmulator on loopback.
 *
 * - Network: the host's, so the runtime reaches the emulator (and a local object store) on 127.0.0.1,
 *   as a Lambda runtime reaches its Runtime API on 127.0.0.1:9001.
 * - Memory: the function's `memory` is the container's limit, no swap, for everything it runs (the
 *   runtime and the script), as on Lambda; an OOM kill ends the environment and the invocation gets
 *   Lambda's `Runtime.OutOfMemory`.
 * - Timeout: the emulator ends the invocation at its deadline and kills the container (SIGKILL to every
 *   process, no grace); the next invocation gets a fresh container (a cold start), as on Lambda.
 * - /tmp: the container's own, within `ephemeral_storage` when the runner has disks.
 *
 *   const fn = await ImageFunction.start({ runner, images, reference, memoryMB: 512, env });
 *   const r = await fn.invoke(event, { timeoutMs: 30_000 }); // r.status, r.body, r.logs (START...REPORT)
 *   await fn.close();
 */
import type { ImageStore } from "../../engine/images/index.js";
import type { Runner } from "../../engine/runtime/index.js";
import {
  type InvokeOptions,
  type InvokeResult,
  type LaunchedRuntime,
  RuntimeApiEmulator,
  type RuntimeExit,
} from "./runtime-api-server.js";

export interface ImageFunctionOptions {
  runner: Runner;
  images: ImageStore;
  /** the function image in the local store (buildFunctionImage's `reference`) */
  reference: string;
  functionName?: string;
  /** Lambda's memory size, MB: the container's memory limit */
  memoryMB?: number;
  /** Lambda's ephemeral storage, MB: the container's disk (root file system and /tmp) */
  ephemeralMB?: number;
  region?: string;
  /** the function's environment (Lambda's `Environment.Variables`, credentials, AWS_ENDPOINT_URL...) */
  env?: Record<string, string>;
}

/** The output of a runtime that prints nothing for a while still reaches the logs: no cap per run. */
const OUTPUT_KEPT = 64 * 1024;

export class ImageFunction {
  private releaseImage: (() => void) | undefined;

  private constructor(
    readonly emulator: RuntimeApiEmulator,
    release: () => void,
  ) {
    this.releaseImage = release;
  }

  static async start(opts: ImageFunctionOptions): Promise<ImageFunction> {
    const image = opts.images.resolve(opts.reference);
    const release = opts.images.lease(image);
    const memoryMB = opts.memoryMB ?? 512;
    try {
      const emulator = await RuntimeApiEmulator.start({
        ...(opts.functionName ? { functionName: opts.functionName } : {}),
        memoryMB,
        ...(opts.region ? { region: opts.region } : {}),
        launcher: (lambdaEnv): LaunchedRuntime => {
          const listeners: ((text: string) => void)[] = [];
          const abort = new AbortController();
          const emit = (chunk: Buffer) => {
            for (const l of listeners) l(chunk.toString("utf8"));
          };
          const exited: Promise<RuntimeExit> = opts.runner
            .run({
              image: { config: image.config, layers: image.layerDirs },
              env: {
                AWS_REGION: opts.region ?? "us-east-1",
                ...opts.env,
                ...lambdaEnv,
                AWS_EXECUTION_ENV: "AWS_Lambda_Image",
              },
              network: "host",
              limits: { memoryBytes: memoryMB * 1024 * 1024, swapBytes: 0 },
              ...(opts.ephemeralMB ? { diskBytes: opts.ephemeralMB * 1024 * 1024 } : {}),
              graceMs: 0,
              outputLimitBytes: OUTPUT_KEPT,
              onStdout: emit,
              onStderr: emit,
              signal: abort.signal,
            })
            .then(
              (r) => ({
                code: r.exitCode,
                reason: r.reason,
                ...(r.reason === "start-error"
                  ? { message: `Runtime could not be started: ${r.message ?? "?"}` }
                  : {}),
              }),
              (err: Error) => ({ code: null, message: `Runtime could not be started: ${err.message}` }),
            );
          return {
            onOutput: (l) => listeners.push(l),
            exited,
            kill: () => abort.abort(),
          };
        },
      });
      return new ImageFunction(emulator, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  invoke(event: unknown, opts: InvokeOptions): Promise<InvokeResult> {
    return this.emulator.invoke(event, opts);
  }

  async close(): Promise<void> {
    await this.emulator.close();
    this.releaseImage?.();
    this.releaseImage = undefined;
  }
}
