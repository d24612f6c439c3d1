/**
 * The real FunctionImagePublisher: what the AWS target calls at `init` / `update` to get an ImageUri.
 *
 * SCAR's rule first (reference/scar-behaviour.md §5.3 step 2): a `container.image` that is an ECR
 * image (`.dkr.ecr.`) with `create_image` not true is used as it is, nothing built or pushed (`:latest`
 * when it has no tag; it must exist). Otherwise the function image is built into the local store
 * (the builder, src/lambda/image/builder.ts) and pushed to the ECR repository named after the function
 * (ecr.ts). Everything that can be refused locally is refused before the first call to AWS: the
 * repository name, a missing image, an image over Lambda's size limit.
 */

import { ECRClient } from "@aws-sdk/client-ecr";
import { human, progressLine } from "../../cli/progress.js";
import type { ImageStore } from "../../engine/images/index.js";
import type { FunctionSpec, StorageProviderSpec } from "../../fdl/spec.js";
import { buildFunctionImage } from "./builder.js";
import { checkRepositoryName, describeEcrImage, EcrError, pushToEcr } from "./ecr.js";
import type {
  BuildFunctionImageInput,
  BuiltFunctionImage,
  FunctionImagePublisher,
  ImageSource,
  PushedImage,
} from "./types.js";

/**
 * Lambda's limit for a container image: 10 GB uncompressed, all layers included
 * (AWS Lambda Developer Guide, "Lambda quotas": "Container image code package size").
 */
export const LAMBDA_IMAGE_LIMIT_BYTES = 10 * 1024 ** 3;

/** `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repo>[:tag]` */
const ECR_URI =
  /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([^@]+))?$/;

export interface PreparedEcrImage {
  uri: string;
  registryId: string;
  region: string;
  repository: string;
  tag: string;
}

/** SCAR's `create_image`: only a true value (YAML `true`, or the text `true`) asks for a build. */
function createImage(spec: FunctionSpec): boolean {
  const lambda = spec.raw.lambda as { container?: { create_image?: unknown } } | undefined;
  const v = lambda?.container?.create_image;
  return v === true || (typeof v === "string" && v.toLowerCase() === "true");
}

/** The ECR image to use as it is, when SCAR's rule says so; undefined when the image is to be built. */
export function preparedEcrImage(spec: FunctionSpec): PreparedEcrImage | undefined {
  const image = spec.image;
  if (!image?.includes(".dkr.ecr.") || createImage(spec)) return undefined;
  const m = ECR_URI.exec(image);
  if (!m)
    throw new EcrError(
      `'${image}' looks like an ECR image but is not '<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag]'`,
    );
  const tag = m[4] ?? "latest";
  return {
    uri: m[4] ? image : `${image}:latest`,
    registryId: m[1]!,
    region: m[2]!,
    repository: m[3]!,
    tag,
  };
}

export function imageSource(spec: FunctionSpec): ImageSource {
  if (spec.image_file) return { kind: "file", path: spec.image_file };
  if (spec.image) return { kind: "registry", reference: spec.image };
  throw new EcrError(`function '${spec.name}' has no container image (set container.image or image_file)`);
}

export interface EcrPublisherOptions {
  images: ImageStore;
  /** the builder (default: src/lambda/image/builder.ts `buildFunctionImage`; tests pass a stand-in) */
  build?: (input: BuildFunctionImageInput) => Promise<BuiltFunctionImage>;
  /** an ECR client for a region (default: the SDK's, with its default credentials chain) */
  ecr?: (region: string) => ECRClient;
  /** draw the push's byte progress on stderr (default: when stderr is a terminal) */
  tty?: boolean;
}

export class EcrFunctionImagePublisher implements FunctionImagePublisher {
  private readonly ecr: (region: string) => ECRClient;

  constructor(private readonly opts: EcrPublisherOptions) {
    this.ecr = opts.ecr ?? ((region) => new ECRClient({ region }));
  }

  async publish(
    spec: FunctionSpec,
    storageProviders: Record<string, StorageProviderSpec>,
    opts: { region: string; onProgress?: (line: string) => void },
  ): Promise<PushedImage> {
    const say = opts.onProgress ?? (() => {});
    const prepared = preparedEcrImage(spec);
    if (prepared) {
      // the image's own region: it lives there, whatever the function's region
      const digest = await describeEcrImage(this.ecr(prepared.region), prepared);
      say("Image already prepared in ECR.");
      return { imageUri: prepared.uri, digest, bytesUploaded: 0, blobsSkipped: 0, blobsMounted: 0 };
    }
    checkRepositoryName(spec.name);
    const tag = `scar-lambda/${spec.name}:latest`;
    const build = this.opts.build ?? buildFunctionImage;
    const built = await build({
      spec,
      storageProviders,
      source: imageSource(spec),
      images: this.opts.images,
      tag,
    });
    if (built.uncompressedBytes > LAMBDA_IMAGE_LIMIT_BYTES)
      throw new EcrError(
        `the function image of '${spec.name}' is ${human(built.uncompressedBytes)} uncompressed, over Lambda's limit of ${human(LAMBDA_IMAGE_LIMIT_BYTES)}`,
      );
    const line =
      (this.opts.tty ?? process.stderr.isTTY === true) ? progressLine(`pushing ${spec.name}`) : undefined;
    const pushed = await pushToEcr({
      images: this.opts.images,
      ecr: this.ecr(opts.region),
      ref: built.reference,
      repository: spec.name,
      say,
      onEvent: (e) => {
        if (!line) return;
        if (e.type === "blob") {
          line.size(e.digest, e.size);
          if (e.status !== "uploading") line.bytes(e.digest, e.size);
        } else if (e.type === "progress") line.bytes(e.digest, e.bytes);
      },
    });
    const summary = `${pushed.imageUri}: ${human(pushed.bytesUploaded)} uploaded, ${pushed.blobsSkipped} blobs already there, ${pushed.blobsMounted} mounted`;
    if (line) line.finish(summary);
    else say(summary);
    return pushed;
  }
}
