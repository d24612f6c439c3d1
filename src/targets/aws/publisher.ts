/**
 * Where the AWS target gets its `FunctionImagePublisher` (src/lambda/image/types.ts): the builder
 * of the function image followed by the ECR push (src/lambda/image/publisher.ts). Loaded only when
 * `init` needs it: it brings the image store, the registry client and the ECR client.
 */
import type { FunctionImagePublisher } from "../../lambda/image/types.js";

export function publisherFactory(
  opts: { dataDir?: string; tty?: boolean } = {},
): () => Promise<FunctionImagePublisher> {
  return async () => {
    const [{ EcrFunctionImagePublisher }, { ImageStore }] = await Promise.all([
      import("../../lambda/image/publisher.js"),
      import("../../engine/images/index.js"),
    ]);
    return new EcrFunctionImagePublisher({
      images: new ImageStore({ ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) }),
      tty: opts.tty === true,
    });
  };
}
