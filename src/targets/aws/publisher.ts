/**
 * Where the AWS target gets its `FunctionImagePublisher` (src/lambda/image/types.ts): the builder
 * of the function image followed by the ECR push, in src/lambda/image/publisher.ts. That module is
 * loaded only when `init` needs it (it brings the image store and the registry client); until it is
 * part of the build, `init --target aws` says so instead of deploying anything.
 */
import type { FunctionImagePublisher } from "../../lambda/image/types.js";
import { TargetError } from "../target-error.js";

/** The module's path, kept in a variable: it may not exist in this build, and tsc must not resolve it. */
const PUBLISHER_MODULE = "../../lambda/image/publisher.js";

type PublisherModule = {
  createPublisher?: (opts: { dataDir?: string }) => FunctionImagePublisher | Promise<FunctionImagePublisher>;
};

export function publisherFactory(opts: { dataDir?: string } = {}): () => Promise<FunctionImagePublisher> {
  return async () => {
    let mod: PublisherModule;
    try {
      mod = (await import(PUBLISHER_MODULE)) as PublisherModule;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw err;
      throw new TargetError(
        "this build of scar cannot build and push function images yet, so it cannot create functions on AWS",
        "the other commands (ls, rm, run, invoke, log, put, get) work on functions already deployed",
      );
    }
    if (typeof mod.createPublisher !== "function")
      throw new TargetError(
        "src/lambda/image/publisher.ts exports no createPublisher(): cannot build function images",
      );
    return await mod.createPublisher(opts);
  };
}
